// Linear with BF16 weights and F32 activations on AMX tiles (TDPBF16PS): the prefill
// fast path. One kernel, two inner loops chosen by shape: M >= kAmxMinM runs on tiles;
// smaller M (decode) runs the vdpbf16ps rows of kernels/cpu/avx512bf16/dot_bf16.h.
//
// Math:     y[m, n] = sum_k bf16_rne(x[m, k]) * W[n, k]   for m < M, n in [n0, n1)
//           computed as C^T[n, m] = W[n, :] . X^T[:, m] so W is the A operand.
// Layout:   W row-major [N, K] BF16, used in place (zero-copy from the file): an A tile
//           (16 rows x 32 k) is loaded straight from W with a row stride of 2K bytes;
//           the last n1 - n0 mod 16 rows use A/C tiles configured with that many rows.
//           Only when K % 32 != 0 is the last partial rows x (K % 32) piece of a 16-row
//           group copied into a zero-padded 1 KiB stack tile (per call, never stored).
//           prep (M >= kAmxMinM): B tiles in the VNNI pair layout, Kp = round_up(K, 32):
//             tile (mb, kb) = 1 KiB at ((mb*Kp/32)+kb)*1024 bytes, dword [r][c] =
//             {xb[16mb+c][32kb+2r], xb[16mb+c][32kb+2r+1]}, xb = bf16_rne(x), zero for
//             k >= K and tokens >= M; prep_bytes = round_up(M, 16) * Kp * 2. One pass
//             over x (F32 -> BF16 -> 16x16 dword transpose per tile).
//           prep (M < kAmxMinM): BF16 rows [M, Kp] as in dot_bf16.h. y [M, ldy] F32.
// Rounding: activations rounded once to BF16 (RNE, denormals to zero, |err| <= 2^-8|x|);
//           exact BF16 products accumulated in F32 inside the tile (per k pair, RNE,
//           denormals flushed); for K > 1024 the F32 tile is carried across K chunks in
//           F32 memory without extra rounding. Same contract as linear_bf16w_f32a__avx512bf16
//           (different summation order).
// Blocking: tiles 0-3 = C (2 x 2 blocks of 16 rows x 16 tokens), 4-5 = A (W), 6-7 = B;
//           the loop nest is described at run_tiles. C^T tiles are transposed (16x16 in
//           zmm registers) into y.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/amx/amx_tiles.h"
#include "kernels/cpu/avx512bf16/dot_bf16.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kAmxMinM = 2;  // M = 1: vdpbf16ps rows (bandwidth bound either way; AMX is
                                  // bandwidth bound from M = 2 on, measured in bench_kernels)
constexpr int64_t kAmxKChunkBlocks = 32;   // 32 x 32 = 1024 k per C pass
constexpr int64_t kAmxMChunkBlocks = 8;    // 8 x 16 = 128 tokens per chunk
constexpr int64_t kAmxSuperRows = 256;     // rows whose C tiles are carried across K chunks
constexpr int kNR = 4, kMR = 6, kNRD = 4;  // vdpbf16ps path (same as avx512bf16)

int64_t tiles_elems(int64_t M, int64_t K) { return (M + 15) / 16 * 16 * bf16_row_stride(K); }

size_t prep_bytes_amx(int64_t M, int64_t K) {
  return size_t(M < kAmxMinM ? M * bf16_row_stride(K) : tiles_elems(M, K)) * 2;
}

// B tiles of token block mb, straight from the F32 rows (RNE to BF16, then a 16 x 16
// dword transpose into the VNNI pair layout).
void prep_tiles_block(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t mb, uint16_t* out) {
  const int64_t nkb = bf16_row_stride(K) / 32;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    __m512i r[16];
    for (int c = 0; c < 16; ++c) {
      const int64_t m = mb * 16 + c;
      r[c] = m < M ? bf16_pack32(x + m * ldx + kb * 32, K - kb * 32) : _mm512_setzero_si512();
    }
    transpose16x16(r);
    uint16_t* tile = out + (mb * nkb + kb) * 512;
    for (int i = 0; i < 16; ++i) _mm512_storeu_si512(tile + i * 32, r[i]);
  }
}

void prep_amx(const float* x, int64_t ldx, int64_t M, int64_t K, void* xp) {
  uint16_t* out = static_cast<uint16_t*>(xp);
  if (M < kAmxMinM) return prep_bf16_rows(x, ldx, M, K, out);
  for (int64_t mb = 0; mb < (M + 15) / 16; ++mb) prep_tiles_block(x, ldx, M, K, mb, out);
}

// One K chunk [kb0, kb1) of the NA x NB tile block. C(i, j) = tile 2i + j lives in
// cs[(j*2 + i) * 256] between chunks. A_i rows start at wi[i] (stride 2K bytes) for full
// k blocks (kb < kb_full) and at wpad[i] (stride 64) for the padded last one. B_j tiles
// of k block kb at bj[j] + kb*512.
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
  const int64_t kf = std::min(kb1, kb_full);
  for (int64_t kb = kb0; kb < kf; ++kb) {
    _tile_loadd(4, wi[0] + kb * 32, sa);
    if constexpr (NA == 2) _tile_loadd(5, wi[1] + kb * 32, sa);
    _tile_loadd(6, bj[0] + kb * 512, 64);
    if constexpr (NB == 2) _tile_loadd(7, bj[1] + kb * 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NB == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (NA == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (NA == 2 && NB == 2) _tile_dpbf16ps(3, 5, 7);
  }
  if (kb1 > kb_full) {  // the zero-padded partial last k block
    _tile_loadd(4, wpad[0], 64);
    if constexpr (NA == 2) _tile_loadd(5, wpad[1], 64);
    _tile_loadd(6, bj[0] + kb_full * 512, 64);
    if constexpr (NB == 2) _tile_loadd(7, bj[1] + kb_full * 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NB == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (NA == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (NA == 2 && NB == 2) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, cs, kCs);
  if constexpr (NB == 2) _tile_stored(1, cs + 2 * 256, kCs);
  if constexpr (NA == 2) _tile_stored(2, cs + 256, kCs);
  if constexpr (NA == 2 && NB == 2) _tile_stored(3, cs + 3 * 256, kCs);
}

// Rows [nb0, nb1) of y in blocks of 32 rows (2 A tiles; the last block possibly 16, or
// with `rows` < 16 one partial A tile of `rows` rows: the caller configured the tiles).
// Loop nest: 128-token chunk > 256-row super block > 1024-wide K chunk > 32-row block >
// token-block pair. The B chunk (128 tokens x 1024 k, 256 KiB) stays in L2 while all
// 32-row blocks of the super block pass over it; a 32-row block's W chunk (64 KiB) stays
// in L2 across the token pairs; the C tiles of the super block (128 KiB) carry the sums
// across K chunks. W is read from memory once per 128 tokens.
void run_tiles(const LinearArgs& a, int64_t nb0, int64_t nb1, int rows) {
  const int64_t K = a.K, M = a.M, Kp = bf16_row_stride(K), nkb = Kp / 32, kb_full = K / 32;
  const int64_t nmb = (M + 15) / 16;
  const uint16_t* W = static_cast<const uint16_t*>(a.w);
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
            const uint16_t* bj[2] = {tiles + mb * nkb * 512, tiles + (mb + 1) * nkb * 512};
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
    linear_blocked<Bf16DotPolicy, kNR, kMR, kNRD>(static_cast<const uint16_t*>(a.w), a.K,
                                                  static_cast<const uint16_t*>(a.xp),
                                                  bf16_row_stride(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
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

const LinearKernel linear_bf16w_f32a__amx{&prep_bytes_amx, &prep_amx, &run_amx};
}  // namespace

void register_linear_bf16_amx(KernelRegistry& r) {
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Amx, "linear_bf16w_f32a__amx",
         &linear_bf16w_f32a__amx});
}
}  // namespace llrt::kernels
