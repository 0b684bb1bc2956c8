// The prefill (M >= 8) loop of linear_bf16w_bf16a__avx512bf16: broadcast form on vdpbf16ps.
// Include only from files compiled with the avx512bf16 flags; anonymous namespace on purpose.
//
// Math:     y[m, n] = sum_k W[n, k] * xb[m, k]   (xb: x rounded once to BF16, the kernel's prep)
// Layout:   per K block of 256 (128 k pairs) and N panel of 256 rows, the panel is transposed
//           as 32-bit k pairs (no conversion: BF16 stays BF16) into a per-thread 128 KiB
//           buffer P[group][pair][16 rows] (VNNI pair layout; rows past n1 and k past K zero),
//           which lives for that panel only. xb [M, Kp] BF16 (prep_bf16_round_rows).
// Rounding: BF16 x BF16 products exact in F32; vdpbf16ps adds the pair into the accumulator of
//           its (token, column) (RNE, denormals flushed), pairs in k order inside a K block;
//           K blocks summed into y in F32.
// Blocking: micro-tile 12 tokens x 32 columns (24 zmm): per k pair, 2 packed loads, 12 pair
//           broadcasts, 24 vdpbf16ps = 768 multiply-adds (32 per instruction, the FMA form's 16):
//           the fastest prefill where vdpbf16ps issues as often as an FMA (AMD Zen 4/5).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/avx512/isa_avx512.h"
#include "kernels/cpu/avx512bf16/dot_bf16.h"
#include "llrt/tensor.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kPairKc = 256, kPairNc = 256;  // k per block (128 pairs), rows per panel
constexpr int kPairNV = 2, kPairMR = 12;

inline uint32_t* pair_panel_buffer() {
  thread_local AlignedBuffer buf;
  if (!buf) buf = aligned_alloc_bytes(size_t(kPairNc * kPairKc / 2) * 4, 64);
  return static_cast<uint32_t*>(buf.get());
}

// P for rows [nb, ne), k in [k0, k0 + kn): group g (32 rows) at (g - nb) * np words, np =
// ceil(kn / 2) pairs; pair p of vector v (rows g + 16v ..) at + p * 32 + 16 v.
inline void pack_pair_panel(const uint16_t* w, int64_t K, int64_t nb, int64_t ne, int64_t k0, int64_t kn, uint32_t* P) {
  const int64_t np = (kn + 1) / 2;
  for (int64_t g = nb; g < ne; g += 32) {
    uint32_t* Pg = P + (g - nb) * np;
    for (int v = 0; v < kPairNV; ++v)
      for (int64_t p = 0; p < np; p += 16) {  // 16 pairs = 32 k per row load
        const int64_t kt = std::min<int64_t>(32, kn - 2 * p);
        __m512 rows[16];
        for (int i = 0; i < 16; ++i) {
          const int64_t r = g + 16 * v + i;
          rows[i] = r < ne ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(__mmask32((kt >= 32 ? ~0ull : (1ull << kt) - 1)),
                                                                           w + r * K + k0 + 2 * p))
                           : _mm512_setzero_ps();
        }
        IsaAvx512::vf t[16];
        for (int i = 0; i < 16; ++i) t[i] = rows[i];
        IsaAvx512::transpose(t);  // t[j] = pair p + j of the 16 rows
        const int64_t pt = std::min<int64_t>(16, np - p);
        for (int j = 0; j < pt; ++j) _mm512_storeu_ps(reinterpret_cast<float*>(Pg + (p + j) * 32 + 16 * v), t[j]);
      }
  }
}

template <int MR>
inline void pair_tile(const uint32_t* Pg, const uint16_t* xb, int64_t ldx, int64_t np, float* y, int64_t ldy, int nr,
                      bool add) {
  __m512 acc[MR][kPairNV];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < kPairNV; ++v) acc[m][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; ++p) {
    const __m512i w0 = _mm512_loadu_si512(Pg + p * 32), w1 = _mm512_loadu_si512(Pg + p * 32 + 16);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      uint32_t pair;
      __builtin_memcpy(&pair, xb + m * ldx + 2 * p, 4);
      const __m512i xv = _mm512_set1_epi32(int(pair));
      acc[m][0] = _mm512_dpbf16_ps(acc[m][0], (__m512bh)w0, (__m512bh)xv);
      acc[m][1] = _mm512_dpbf16_ps(acc[m][1], (__m512bh)w1, (__m512bh)xv);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < kPairNV; ++v) {
      const int valid = std::clamp(nr - 16 * v, 0, 16);
      if (valid == 0) continue;
      const __mmask16 mk = __mmask16((1u << valid) - 1u);
      float* out = y + m * ldy + 16 * v;
      __m512 r = acc[m][v];
      if (add) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, out));
      _mm512_mask_storeu_ps(out, mk, r);
    }
}

template <int MR>
inline void pair_tile_edge(int mr, const uint32_t* Pg, const uint16_t* xb, int64_t ldx, int64_t np, float* y, int64_t ldy,
                           int nr, bool add) {
  if constexpr (MR > 1)
    if (mr < MR) return pair_tile_edge<MR - 1>(mr, Pg, xb, ldx, np, y, ldy, nr, add);
  pair_tile<MR>(Pg, xb, ldx, np, y, ldy, nr, add);
}

// xb: [M, ldx] BF16 with zeros past K up to an even count (prep pads to a multiple of 32).
inline void linear_bf16a_packed(const uint16_t* w, int64_t K, const uint16_t* xb, int64_t ldx, int64_t M, int64_t n0,
                                int64_t n1, float* y, int64_t ldy) {
  if (M <= 0 || n1 <= n0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + n0, y + m * ldy + n1, 0.0f);
    return;
  }
  uint32_t* P = pair_panel_buffer();
  for (int64_t k0 = 0; k0 < K; k0 += kPairKc) {
    const int64_t kn = std::min(kPairKc, K - k0), np = (kn + 1) / 2;
    for (int64_t nb = n0; nb < n1; nb += kPairNc) {
      const int64_t ne = std::min(nb + kPairNc, n1);
      pack_pair_panel(w, K, nb, ne, k0, kn, P);
      for (int64_t m = 0; m < M; m += kPairMR) {
        const int mr = int(std::min<int64_t>(kPairMR, M - m));
        for (int64_t g = nb; g < ne; g += 32) {
          const int nr = int(std::min<int64_t>(32, ne - g));
          const uint32_t* Pg = P + (g - nb) * np;
          if (mr == kPairMR) pair_tile<kPairMR>(Pg, xb + m * ldx + k0, ldx, np, y + m * ldy + g, ldy, nr, k0 > 0);
          else pair_tile_edge<kPairMR>(mr, Pg, xb + m * ldx + k0, ldx, np, y + m * ldy + g, ldy, nr, k0 > 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace llrt::kernels
