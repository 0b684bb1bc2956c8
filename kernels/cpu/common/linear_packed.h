// Linear for many tokens (prefill) in broadcast form, written once over an ISA traits type and
// compiled per ISA by kernels/cpu/<isa>/linear_*.cpp. Header-only, anonymous namespace: one
// copy per ISA TU.
//
// Math:     y[m, n] = sum_k x[m, k] * W[n, k]   for m in [0, M), n in [n0, n1)
// Layout:   W row-major [N, K] in its stored dtype (F32/F16/BF16), read in place. Per K block
//           of kc and N panel of nc rows, the panel is widened exactly to F32 and transposed
//           into a per-thread buffer P[group][k][NB] (NB = NV * L output columns per group;
//           zero for rows past n1): a copy that lives for one panel, never stored with the
//           model (rule 1: the weights stay as the file has them). x [M, ldx] F32, y [M, ldy].
// Rounding: weights widened exactly; one F32 FMA per product into the accumulator of its
//           (token, column), k in order inside a K block; K blocks summed into y in F32
//           (y += block sum). No lane reduction: each accumulator lane is one output.
// Blocking: micro-tile MR tokens x NB columns in registers (AVX-512: 12 x 32 = 24 zmm,
//           AVX2: 6 x 16 = 12 ymm): per k, NV packed W loads, MR broadcasts of x, NV*MR FMAs.
//           Unlike the dot form (common/linear_blocked.h), the widening of W is paid once per
//           panel instead of once per MR tokens, and no shuffle sits in the inner loop.
//           kc = 256 (the MR x kc x-panel, 12 KiB, in L1), nc = 256 rows (a 256 KiB panel in L2).
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>

#include "llrt/tensor.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

constexpr int64_t kPackedKc = 256, kPackedNc = 256;
constexpr int64_t kPackedMinM = 8;  // below: the dot form (memory bound, no panel worth packing)

// The per-thread panel buffer: kPackedNc x kPackedKc F32 (256 KiB), allocated on first use.
inline float* packed_panel_buffer() {
  thread_local AlignedBuffer buf;
  if (!buf) buf = aligned_alloc_bytes(size_t(kPackedNc * kPackedKc) * 4, 64);
  return static_cast<float*>(buf.get());
}

// P[g][k][NB] for rows [nb, ne) (groups of NB; rows >= ne zero), k in [k0, k0 + kn).
template <class Isa, class W, int NV>
inline void pack_panel(const W* w, int64_t K, int64_t nb, int64_t ne, int64_t k0, int64_t kn, float* P) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L, NB = NV * L;
  for (int64_t g = nb; g < ne; g += NB) {
    float* Pg = P + (g - nb) * kn;  // group (g - nb) / NB starts at (g - nb) * kn floats
    for (int v = 0; v < NV; ++v) {
      const int64_t r0 = g + v * L;
      for (int64_t k = 0; k < kn; k += L) {
        const int kt = int(std::min<int64_t>(L, kn - k));
        vf rows[L];
        for (int i = 0; i < L; ++i) {
          const int64_t r = r0 + i;
          if (r >= ne) rows[i] = vf(0.0f);
          else if (kt == L) rows[i] = Isa::load(w + r * K + k0 + k);
          else rows[i] = Isa::load_tail(w + r * K + k0 + k, kt);
        }
        Isa::transpose(rows);  // rows[j] = column k + j of the L rows
        for (int j = 0; j < kt; ++j) Isa::store(Pg + (k + j) * NB + v * L, rows[j]);
      }
    }
  }
}

// acc[m][v] over kn k of one packed group; then y (+)= acc for mr tokens, nr valid columns.
template <class Isa, int NV, int MR>
inline void packed_tile(const float* Pg, const float* x, int64_t ldx, int64_t kn, float* y, int64_t ldy, int nr,
                        bool add) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L, NB = NV * L;
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[m][v] = vf(0.0f);
  for (int64_t k = 0; k < kn; ++k) {
    vf wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = Isa::load(Pg + k * NB + v * L);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const vf xb(x[m * ldx + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[m][v] = xsimd::fma(wv[v], xb, acc[m][v]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int valid = std::clamp(nr - v * L, 0, L);
      if (valid == 0) continue;
      float* out = y + m * ldy + v * L;
      vf r = acc[m][v];
      if (valid == L) {
        if (add) r = r + Isa::load(out);
        Isa::store(out, r);
      } else {
        if (add) r = r + Isa::load_tail(out, valid);
        Isa::store_tail(out, r, valid);
      }
    }
}

template <class Isa, int NV, int MR>
inline void packed_tile_edge(int mr, const float* Pg, const float* x, int64_t ldx, int64_t kn, float* y, int64_t ldy,
                             int nr, bool add) {
  if constexpr (MR > 1)
    if (mr < MR) return packed_tile_edge<Isa, NV, MR - 1>(mr, Pg, x, ldx, kn, y, ldy, nr, add);
  packed_tile<Isa, NV, MR>(Pg, x, ldx, kn, y, ldy, nr, add);
}

template <class Isa, class W, int NV, int MR>
void linear_packed(const W* w, int64_t K, const float* x, int64_t ldx, int64_t M, int64_t n0, int64_t n1, float* y,
                   int64_t ldy) {
  constexpr int NB = NV * Isa::L;
  if (M <= 0 || n1 <= n0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + n0, y + m * ldy + n1, 0.0f);
    return;
  }
  float* P = packed_panel_buffer();
  for (int64_t k0 = 0; k0 < K; k0 += kPackedKc) {
    const int64_t kn = std::min(kPackedKc, K - k0);
    for (int64_t nb = n0; nb < n1; nb += kPackedNc) {
      const int64_t ne = std::min(nb + kPackedNc, n1);
      pack_panel<Isa, W, NV>(w, K, nb, ne, k0, kn, P);
      for (int64_t m = 0; m < M; m += MR) {
        const int mr = int(std::min<int64_t>(MR, M - m));
        for (int64_t g = nb; g < ne; g += NB) {
          const int nr = int(std::min<int64_t>(NB, ne - g));
          const float* Pg = P + (g - nb) * kn;
          if (mr == MR) packed_tile<Isa, NV, MR>(Pg, x + m * ldx + k0, ldx, kn, y + m * ldy + g, ldy, nr, k0 > 0);
          else packed_tile_edge<Isa, NV, MR>(mr, Pg, x + m * ldx + k0, ldx, kn, y + m * ldy + g, ldy, nr, k0 > 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace llrt::kernels
