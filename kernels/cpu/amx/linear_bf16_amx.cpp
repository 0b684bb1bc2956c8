// Linear with BF16 weights and F32 activations on AMX tiles (TDPBF16PS): the prefill
// fast path. One kernel, two inner loops chosen by shape: M >= kAmxMinM runs on tiles;
// M = 1 (decode) runs the even/odd F32 rows of kernels/cpu/common/linear_bf16_evenodd.h
// (exact F32 products, as linear_bf16w_f32a__avx512bf16 at M = 1).
//
// Math:     y[m, n] = sum_k W[n, k] * xh[m, k] + W[n, k] * xl[m, k],  x ~ xh + xl split
//           into two BF16 (dot_bf16.h), for m < M, n in [n0, n1); computed as
//           C^T[n, m] = W[n, :] . X^T[:, m] so W is the A operand.
// Layout:   W row-major [N, K] BF16, used in place (zero-copy from the file): an A tile
//           (16 rows x 32 k) is loaded straight from W with a row stride of 2K bytes;
//           the last n1 - n0 mod 16 rows use A/C tiles configured with that many rows.
//           Only when K % 32 != 0 is the last partial rows x (K % 32) piece of a 16-row
//           group copied into a zero-padded 1 KiB stack tile (per call, never stored).
//           prep (M >= kAmxMinM): split B tile pairs (xh, xl) in the VNNI pair layout
//           (amx_tiles.h), prep_bytes = round_up(M, 16) * round_up(K, 32) * 4; one pass
//           over x. prep (M = 1): x in the even/odd block order (Kp F32). y [M, ldy] F32.
// Rounding (M >= 2; M = 1 is exact F32 products, F32 sums): |x - (xh + xl)| <= 2^-16 |x| (denormals to zero); the BF16 products are exact
//           and accumulated in F32 inside the tile (per k pair, RNE, denormals flushed);
//           for K > 2048 the F32 tile is carried across K chunks in F32 memory without
//           extra rounding. Error vs. exact: <= 2^-16 sum|x w| plus F32 accumulation, the
//           contract of linear_bf16w_f32a__avx512bf16 (different summation order).
// Blocking: tiles 0-3 = C (2 x 2 blocks of 16 rows x 16 tokens), 4-5 = A (W), 6-7 = the
//           xh / xl tiles of one token block at a time: per 32 k, 2 A + 4 B loads for 8
//           TDPs. The loop nest is described at run_tiles. C^T tiles are transposed
//           (16x16 in zmm registers) into y.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/avx512bf16/dot_bf16.h"
#include "kernels/cpu/avx512/isa_avx512.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_bf16_evenodd.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kAmxMinM = 2;  // M = 1: vdpbf16ps rows (bandwidth bound either way; AMX is
                                  // bandwidth bound from M = 2 on, measured in bench_kernels)
constexpr int64_t kAmxKChunkBlocks = 64;   // 64 x 32 = 2048 k per C pass
constexpr int64_t kAmxMChunkBlocks = 8;    // 8 x 16 = 128 tokens per chunk
constexpr int64_t kAmxSuperRows = 256;     // rows whose C tiles are carried across K chunks
constexpr int kNR = 4, kMR = 6, kNRD = 4;  // M = 1 path (as avx512bf16)

size_t prep_bytes_amx(int64_t M, int64_t K) {
  return M < kAmxMinM ? size_t(M * evenodd_row_stride<IsaAvx512>(K)) * 4 : split_tiles_bytes(M, K);
}

// Token rows [m0, m1) (M = 1: the one row, one range).
void prep_amx(const LinearPrepArgs& p) {
  uint16_t* out = static_cast<uint16_t*>(p.xp);
  if (p.M >= kAmxMinM) prep_split_tiles_rows(p.x, p.ldx, p.M, p.K, p.m0, p.m1, out);
  else if (p.M == 1 && p.m0 == 0) prep_evenodd_row<IsaAvx512>(p.x, p.K, reinterpret_cast<float*>(out));
}

// One K chunk [kb0, kb1) of the NA x NB tile block: C(i, j) (tile 2i + j, rows of A_i x
// tokens of block j) += A_i . Bh_j + A_i . Bl_j, kept in cs[(j*2 + i) * 256] between
// chunks. A_i rows start at wi[i] (stride 2K bytes) for full k blocks (kb < kb_full)
// and at wpad[i] (stride 64) for the padded last one. The split B pair of token block j
// and k block kb is at bj[j] + kb*1024; tiles 6 / 7 take its xh / xl, block after block.
template <int NA, int NB>
void amx_block(const uint16_t* const wi[2], int64_t K, const uint16_t* const wpad[2],
               int64_t kb_full, const uint16_t* const bj[2], int64_t kb0, int64_t kb1, float* cs,
               bool load_c) {
  constexpr int64_t kCs = 64;  // C scratch row stride, bytes
  if (load_c) {
    _tile_loadd(0, cs, kCs);
    if constexpr (NB == 2) _tile_loadd(1, cs + 2 * 256, kCs);
    if constexpr (NA == 2) _tile_loadd(2, cs + 256, kCs);
    if constexpr (NA == 2 && NB == 2) _tile_loadd(3, cs + 3 * 256, kCs);
  } else {
    _tile_zero(0);
    if constexpr (NB == 2) _tile_zero(1);
    if constexpr (NA == 2) _tile_zero(2);
    if constexpr (NA == 2 && NB == 2) _tile_zero(3);
  }
  const int64_t sa = K * 2;
  for (int64_t kb = kb0; kb < kb1; ++kb) {
    if (kb < kb_full) {
      _tile_loadd(4, wi[0] + kb * 32, sa);
      if constexpr (NA == 2) _tile_loadd(5, wi[1] + kb * 32, sa);
    } else {  // the zero-padded partial last k block
      _tile_loadd(4, wpad[0], 64);
      if constexpr (NA == 2) _tile_loadd(5, wpad[1], 64);
    }
    _tile_loadd(6, bj[0] + kb * 1024, 64);
    _tile_loadd(7, bj[0] + kb * 1024 + 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(0, 4, 7);
    if constexpr (NA == 2) {
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(2, 5, 7);
    }
    if constexpr (NB == 2) {
      _tile_loadd(6, bj[1] + kb * 1024, 64);
      _tile_loadd(7, bj[1] + kb * 1024 + 512, 64);
      _tile_dpbf16ps(1, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      if constexpr (NA == 2) {
        _tile_dpbf16ps(3, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  _tile_stored(0, cs, kCs);
  if constexpr (NB == 2) _tile_stored(1, cs + 2 * 256, kCs);
  if constexpr (NA == 2) _tile_stored(2, cs + 256, kCs);
  if constexpr (NA == 2 && NB == 2) _tile_stored(3, cs + 3 * 256, kCs);
}

// Rows [nb0, nb1) of y in blocks of 32 rows (2 A tiles; the last block possibly 16, or
// with `rows` < 16 one partial A tile of `rows` rows: the caller configured the tiles).
// Loop nest: 128-token chunk > 256-row super block > 2048-wide K chunk > 32-row block >
// token-block pair. The B chunk (128 tokens x 2048 k x 2 parts, 1 MiB) stays in L2 while all
// 32-row blocks of the super block pass over it; a 32-row block's W chunk (128 KiB) stays
// in L2 across the token pairs; the C tiles of the super block (128 KiB) carry the sums
// across K chunks. W is read from memory once per 128 tokens.
void run_tiles(const LinearArgs& a, int64_t nb0, int64_t nb1, int rows) {
  const int64_t K = a.K, M = a.M, Kp = bf16_row_stride(K), nkb = Kp / 32, kb_full = K / 32;
  const int64_t nmb = (M + 15) / 16;
  const uint16_t* W = static_cast<const uint16_t*>(a.w.data);
  const uint16_t* tiles = static_cast<const uint16_t*>(a.xp);
  alignas(64) float cs[kAmxSuperRows / 32 * kAmxMChunkBlocks * 2 * 256];
  alignas(64) uint16_t wpad[2][16 * 32];
  for (int64_t mc0 = 0; mc0 < nmb; mc0 += kAmxMChunkBlocks) {
    const int64_t mc1 = std::min(nmb, mc0 + kAmxMChunkBlocks);
    for (int64_t ns0 = nb0; ns0 < nb1; ns0 += kAmxSuperRows) {
      const int64_t ns1 = std::min(nb1, ns0 + kAmxSuperRows);
      for (int64_t kb0 = 0; kb0 < nkb; kb0 += kAmxKChunkBlocks) {
        const int64_t kb1 = std::min(nkb, kb0 + kAmxKChunkBlocks);
        for (int64_t nb = ns0; nb < ns1; nb += 32) {
          const int na = ns1 - nb >= 32 ? 2 : 1;
          const uint16_t* wi[2] = {W + nb * K, W + (nb + 16) * K};
          const uint16_t* wp[2] = {wpad[0], wpad[1]};
          if (kb1 > kb_full) {  // zero-padded copy of the partial last k block (K % 32 != 0)
            std::memset(wpad, 0, sizeof wpad);
            for (int i = 0; i < na; ++i)
              for (int r = 0; r < rows; ++r)
                std::memcpy(wpad[i] + r * 32, wi[i] + r * K + kb_full * 32, size_t(K - kb_full * 32) * 2);
          }
          float* cg = cs + (nb - ns0) / 32 * kAmxMChunkBlocks * 2 * 256;
          for (int64_t mb = mc0; mb < mc1; mb += 2) {
            const int nbt = mc1 - mb >= 2 ? 2 : 1;
            const uint16_t* bj[2] = {tiles + mb * nkb * 1024, tiles + (mb + 1) * nkb * 1024};
            float* c = cg + (mb - mc0) * 2 * 256;
            const bool load_c = kb0 > 0;
            if (na == 2 && nbt == 2) amx_block<2, 2>(wi, K, wp, kb_full, bj, kb0, kb1, c, load_c);
            else if (na == 2) amx_block<2, 1>(wi, K, wp, kb_full, bj, kb0, kb1, c, load_c);
            else if (nbt == 2) amx_block<1, 2>(wi, K, wp, kb_full, bj, kb0, kb1, c, load_c);
            else amx_block<1, 1>(wi, K, wp, kb_full, bj, kb0, kb1, c, load_c);
            if (kb1 == nkb)
              for (int j = 0; j < nbt; ++j)
                for (int i = 0; i < na; ++i)
                  store_transposed(c + (j * 2 + i) * 256, rows, a.y, a.ldy, (mb + j) * 16, M, nb + 16 * i);
          }
        }
      }
    }
  }
}

void run_amx(const LinearArgs& a) {
  if (a.M < kAmxMinM || a.K <= 0) {
    linear_blocked<Bf16EvenOddPolicy<IsaAvx512>, kNR, kMR, kNRD>(static_cast<const uint16_t*>(a.w.data), a.K,
                                                               static_cast<const float*>(a.xp),
                                                               evenodd_row_stride<IsaAvx512>(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
    return;
  }
  const int64_t n_end = a.n0 + (a.n1 - a.n0) / 16 * 16;
  if (n_end > a.n0) {
    tile_config(16);
    run_tiles(a, a.n0, n_end, 16);
  }
  if (n_end < a.n1) {  // the last n1 - n_end < 16 rows: A and C tiles of that many rows
    const int rows = int(a.n1 - n_end);
    tile_config(rows);
    run_tiles(a, n_end, a.n1, rows);
  }
  _tile_release();
}

const LinearKernel linear_bf16w_f32a__amx{&prep_bytes_amx, &prep_amx, &run_amx, true};
}  // namespace

void register_linear_bf16_amx(KernelRegistry& r) {
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Amx, "linear_bf16w_f32a__amx",
         &linear_bf16w_f32a__amx});
}
}  // namespace llrt::kernels
