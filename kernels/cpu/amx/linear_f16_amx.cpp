// Linear with F16 weights and F32 activations on AMX-BF16 tiles, by exact splitting:
// the F16 prefill path (this CPU has no AMX-FP16). Small M uses the AVX-512 F16C + FMA
// rows of kernels/cpu/common/linear_blocked.h (exact F32 products), chosen by shape.
//
// Math:     every F16 weight is the exact sum of two BF16 numbers, w = wh + wl
//           (wh = bf16_rne(w); w has 11 significant bits, so w - wh has at most 3 and is
//           a BF16 exactly); every activation is approximated by two, x ~ xh + xl
//           (xh = bf16_rne(x), xl = bf16_rne(x - xh): dot_bf16.h). Then
//             y[m, n] = sum_k wh*xh + wh*xl + wl*xh      (three TDPBF16PS per tile step)
//           leaving out wl*xl (|wl| <= 2^-8|w|, |xl| <= 2^-8|x|).
//           Computed as C^T[n, m] = W[n, :] . X^T[:, m] (W is the A operand).
// Layout:   W row-major [N, K] F16, read in place from the file on every call. For each
//           32-row block and 256-wide K chunk, the rows are split into wh / wl A tiles
//           (16 rows x 32 k BF16, row-major like W) in a 32 KiB stack buffer, reused by
//           the 128 tokens of the chunk: per-call arithmetic, not a repacked copy of W.
//           prep (M >= kF16AmxMinM): split B tile pairs (amx_tiles.h), prep_bytes =
//           round_up(M, 16) * round_up(K, 32) * 4. For M < kF16AmxMinM there is nothing
//           to prepare (prep_bytes 0) and run reads x.
//           The last (n1 - n0) mod 16 rows run on A/C tiles configured with that many rows.
// Rounding: |(xh + xl) - x| <= 2^-16 |x| (RNE twice; denormals flushed to zero) and the
//           dropped wl*xl <= 2^-16 |w x|: error <= 2^-15 sum_k |x w| before accumulation.
//           Products of BF16 pairs are exact in F32; accumulation in F32 inside the tile
//           (RNE, denormals flushed), carried across K chunks in F32 memory.
// Blocking: tiles 0-1 = C (2 row groups x 16 tokens), 2-5 = wh/wl of the 2 row groups,
//           6-7 = xh/xl of one token block: 6 tile loads and 6 TDPs per 32 k.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/avx512/isa_avx512.h"
#include "kernels/cpu/avx512bf16/dot_bf16.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kF16AmxMinM = 16;       // below: F16C + FMA rows (exact products)
constexpr int64_t kKStepBlocks = 8;       // 8 x 32 = 256 k per W split
constexpr int64_t kBChunkBytes = 512 << 10;  // B tiles kept in L2 across a super block
constexpr int64_t kMChunkBlocks = 8;      // 8 x 16 = 128 tokens per chunk
constexpr int64_t kSuperRows = 256;       // rows whose C tiles are carried across K chunks
constexpr int kNR = 4, kMR = 6, kNRD = 4;  // FMA path (as linear_f16w_f32a__avx512)

size_t prep_bytes_f16amx(int64_t M, int64_t K) { return M < kF16AmxMinM ? 0 : split_tiles_bytes(M, K); }

void prep_f16amx(const LinearPrepArgs& p) {
  if (p.M >= kF16AmxMinM) prep_split_tiles_rows(p.x, p.ldx, p.M, p.K, p.m0, p.m1, static_cast<uint16_t*>(p.xp));
}

// Splits rows [0, rows) x k blocks [kb0, kb1) of W (row stride K) into wh / wl tiles:
// buf[(kb - kb0) * 2 + 0] = wh tile, [.. + 1] = wl tile, 512 BF16 each (16 x 32).
void split_w(const uint16_t* w, int64_t K, int rows, int64_t kb0, int64_t kb1, uint16_t* buf) {
  for (int64_t kb = kb0; kb < kb1; ++kb) {
    uint16_t* th = buf + (kb - kb0) * 1024;
    uint16_t* tl = th + 512;
    const int64_t kv = K - kb * 32;
    const __mmask32 m = kv >= 32 ? __mmask32(~0u) : __mmask32((1u << kv) - 1u);
    for (int r = 0; r < 16; ++r) {
      if (r >= rows) {
        _mm512_storeu_si512(th + r * 32, _mm512_setzero_si512());
        _mm512_storeu_si512(tl + r * 32, _mm512_setzero_si512());
        continue;
      }
      const __m512i h16 = _mm512_maskz_loadu_epi16(m, w + r * K + kb * 32);
      const __m512 f0 = _mm512_cvtph_ps(_mm512_castsi512_si256(h16));
      const __m512 f1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h16, 1));
      const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(f1, f0);
      const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
      const __m512 h1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
      _mm512_storeu_si512(th + r * 32, h);
      _mm512_storeu_si512(tl + r * 32, (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(f1, h1), _mm512_sub_ps(f0, h0)));
    }
  }
}

// One K chunk of one token block for NA (1 or 2) row groups. wb[i]: the split tiles of
// row group i for this chunk; b: the (xh, xl) tile pairs of the token block.
template <int NA>
void f16_block(const uint16_t* const wb[2], const uint16_t* b, int64_t nk, float* cs, bool load_c) {
  if (load_c) {
    _tile_loadd(0, cs, 64);
    if constexpr (NA == 2) _tile_loadd(1, cs + 256, 64);
  } else {
    _tile_zero(0);
    if constexpr (NA == 2) _tile_zero(1);
  }
  for (int64_t j = 0; j < nk; ++j) {
    _tile_loadd(6, b + j * 1024, 64);
    _tile_loadd(7, b + j * 1024 + 512, 64);
    _tile_loadd(2, wb[0] + j * 1024, 64);
    _tile_loadd(3, wb[0] + j * 1024 + 512, 64);
    _tile_dpbf16ps(0, 2, 6);
    _tile_dpbf16ps(0, 2, 7);
    _tile_dpbf16ps(0, 3, 6);
    if constexpr (NA == 2) {
      _tile_loadd(4, wb[1] + j * 1024, 64);
      _tile_loadd(5, wb[1] + j * 1024 + 512, 64);
      _tile_dpbf16ps(1, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(1, 5, 6);
    }
  }
  _tile_stored(0, cs, 64);
  if constexpr (NA == 2) _tile_stored(1, cs + 256, 64);
}

// Loop nest: 128-token chunk > 256-row super block > K chunk (as wide as keeps the B
// chunk of the token chunk within 512 KiB of L2) > 32-row block > 256-wide K step
// (the W rows split into wh/wl tiles, 32 KiB, L1) > token block. Its C tiles (128 KiB)
// carry the sums across K steps. W is read from memory once per 128 tokens, in runs of
// K chunk.
void run_tiles_f16(const LinearArgs& a, int64_t nb0, int64_t nb1, int rows) {
  const int64_t K = a.K, M = a.M, nkb = bf16_row_stride(K) / 32, nmb = (M + 15) / 16;
  const uint16_t* W = static_cast<const uint16_t*>(a.w.data);
  const uint16_t* tiles = static_cast<const uint16_t*>(a.xp);
  alignas(64) uint16_t wbuf[2][kKStepBlocks * 1024];                  // 2 x 16 KiB
  alignas(64) float cs[kSuperRows / 32 * kMChunkBlocks * 2 * 256];    // 128 KiB
  for (int64_t mc0 = 0; mc0 < nmb; mc0 += kMChunkBlocks) {
    const int64_t mc1 = std::min(nmb, mc0 + kMChunkBlocks);
    // B bytes per k block for this chunk: (mc1 - mc0) tiles pairs of 2 KiB.
    const int64_t kcb = std::max<int64_t>(kKStepBlocks, kBChunkBytes / ((mc1 - mc0) * 2048)) / kKStepBlocks * kKStepBlocks;
    for (int64_t ns0 = nb0; ns0 < nb1; ns0 += kSuperRows) {
      const int64_t ns1 = std::min(nb1, ns0 + kSuperRows);
      for (int64_t kc0 = 0; kc0 < nkb; kc0 += kcb) {
        const int64_t kc1 = std::min(nkb, kc0 + kcb);
        for (int64_t nb = ns0; nb < ns1; nb += 32) {
          const int na = ns1 - nb >= 32 ? 2 : 1;
          const uint16_t* wb[2] = {wbuf[0], wbuf[1]};
          float* cg = cs + (nb - ns0) / 32 * kMChunkBlocks * 2 * 256;
          for (int64_t kb0 = kc0; kb0 < kc1; kb0 += kKStepBlocks) {
            const int64_t kb1 = std::min(kc1, kb0 + kKStepBlocks);
            for (int i = 0; i < na; ++i) split_w(W + (nb + 16 * i) * K, K, rows, kb0, kb1, wbuf[i]);
            for (int64_t mb = mc0; mb < mc1; ++mb) {
              float* c = cg + (mb - mc0) * 2 * 256;
              const uint16_t* b = tiles + (mb * nkb + kb0) * 1024;
              if (na == 2) f16_block<2>(wb, b, kb1 - kb0, c, kb0 > 0);
              else f16_block<1>(wb, b, kb1 - kb0, c, kb0 > 0);
              if (kb1 == nkb)
                for (int i = 0; i < na; ++i) store_transposed(c + i * 256, rows, a.y, a.ldy, mb * 16, M, nb + 16 * i);
            }
          }
        }
      }
    }
  }
}

void run_f16amx(const LinearArgs& a) {
  if (a.M < kF16AmxMinM || a.K <= 0) {
    linear_blocked<FmaPolicy<IsaAvx512, f16_t>, kNR, kMR, kNRD>(
        static_cast<const f16_t*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
    return;
  }
  const int64_t n_end = a.n0 + (a.n1 - a.n0) / 16 * 16;
  if (n_end > a.n0) {
    tile_config(16);
    run_tiles_f16(a, a.n0, n_end, 16);
  }
  if (n_end < a.n1) {
    const int rows = int(a.n1 - n_end);
    tile_config(rows);
    run_tiles_f16(a, n_end, a.n1, rows);
  }
  _tile_release();
}

const LinearKernel linear_f16w_f32a__amx{&prep_bytes_f16amx, &prep_f16amx, &run_f16amx, true};
}  // namespace

void register_linear_f16_amx(KernelRegistry& r) {
  r.add({Op::Linear, DType::F16, DType::F32, Backend::Amx, "linear_f16w_f32a__amx", &linear_f16w_f32a__amx});
}
}  // namespace llrt::kernels
