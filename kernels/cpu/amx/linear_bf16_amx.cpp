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
//           denormals flushed); for K > 2048 the F32 tile is carried across K chunks in
//           F32 memory without extra rounding. Same contract as linear_bf16w_f32a__avx512bf16
//           (different summation order).
// Blocking: tiles 0-3 = C (2 x 2 blocks of 16 rows x 16 tokens), 4-5 = A (W), 6-7 = B.
//           For each chunk of 256 tokens, each 32-row W block, each 2048-wide K chunk:
//           sweep the token pairs, so the 128 KiB W block and the 1 MiB B chunk stay in
//           L2 and W is read from memory once per 256 tokens. C^T tiles are transposed
//           (16x16 in zmm registers) into y.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/avx512bf16/dot_bf16.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kAmxMinM = 2;  // M = 1: vdpbf16ps rows (bandwidth bound either way; AMX is
                                  // bandwidth bound from M = 2 on, measured in bench_kernels)
constexpr int64_t kAmxKChunkBlocks = 64;   // 64 x 32 = 2048 k per C pass
constexpr int64_t kAmxMChunkBlocks = 16;   // 16 x 16 = 256 tokens per chunk
constexpr int kNR = 4, kMR = 6, kNRD = 4;  // vdpbf16ps path (same as avx512bf16)

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

int64_t tiles_elems(int64_t M, int64_t K) { return (M + 15) / 16 * 16 * bf16_row_stride(K); }

// In-register transpose of a 16 x 16 matrix of 32-bit elements.
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4q + c], lane l = column 4l + c, rows 4q .. 4q+3
  for (int c = 0; c < 4; ++c) {
    const __m512i ab02 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);
    const __m512i ab13 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
    const __m512i cd02 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
    const __m512i cd13 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
    t[c] = _mm512_shuffle_i32x4(ab02, cd02, 0x88);
    t[8 + c] = _mm512_shuffle_i32x4(ab02, cd02, 0xdd);
    t[4 + c] = _mm512_shuffle_i32x4(ab13, cd13, 0x88);
    t[12 + c] = _mm512_shuffle_i32x4(ab13, cd13, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

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

// C tiles 0-3 and A tiles 4-5 get `rows` rows (16, or the row tail), B tiles 6-7 16.
void tile_config(int rows) {
  TileConfig c;
  std::memset(&c, 0, sizeof c);
  c.palette_id = 1;
  for (int i = 0; i < 8; ++i) {
    c.colsb[i] = 64;
    c.rows[i] = uint8_t(i < 6 ? rows : 16);
  }
  _tile_loadconfig(&c);
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

// C^T tile (nr <= 16 rows n x 16 tokens) -> y[m0 + c, n0 .. n0+nr) for tokens m0 + c < M.
inline void store_transposed(const float* ct, int nr, float* y, int64_t ldy, int64_t m0,
                             int64_t M, int64_t n0) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) r[i] = i < nr ? _mm512_loadu_si512(ct + i * 16) : _mm512_setzero_si512();
  transpose16x16(r);
  const int64_t mc = std::min<int64_t>(16, M - m0);
  const __mmask16 keep = __mmask16((1u << nr) - 1u);
  for (int64_t c = 0; c < mc; ++c) _mm512_mask_storeu_epi32(y + (m0 + c) * ldy + n0, keep, r[c]);
}

// Rows [nb0, nb1) of y, in blocks of 32 rows (2 A tiles), the last block possibly 16 or,
// with `rows` < 16, one partial A tile of `rows` rows (the caller configured the tiles).
void run_tiles(const LinearArgs& a, int64_t nb0, int64_t nb1, int rows) {
  const int64_t K = a.K, M = a.M, Kp = bf16_row_stride(K), nkb = Kp / 32, kb_full = K / 32;
  const int64_t nmb = (M + 15) / 16;
  const uint16_t* W = static_cast<const uint16_t*>(a.w);
  const uint16_t* tiles = static_cast<const uint16_t*>(a.xp);
  alignas(64) float cs[kAmxMChunkBlocks * 2 * 256];
  alignas(64) uint16_t wpad[2][16 * 32];
  for (int64_t mc0 = 0; mc0 < nmb; mc0 += kAmxMChunkBlocks) {
    const int64_t mc1 = std::min(nmb, mc0 + kAmxMChunkBlocks);
    for (int64_t nb = nb0; nb < nb1; nb += 32) {
      const int na = nb1 - nb >= 32 ? 2 : 1;
      const uint16_t* wi[2] = {W + nb * K, W + (nb + 16) * K};
      const uint16_t* wp[2] = {wpad[0], wpad[1]};
      if (kb_full < nkb) {  // zero-padded copy of the partial last k block (K % 32 != 0)
        std::memset(wpad, 0, sizeof wpad);
        for (int i = 0; i < na; ++i)
          for (int r = 0; r < rows; ++r)
            std::memcpy(wpad[i] + r * 32, wi[i] + r * K + kb_full * 32, size_t(K - kb_full * 32) * 2);
      }
      for (int64_t kb0 = 0; kb0 < nkb; kb0 += kAmxKChunkBlocks) {
        const int64_t kb1 = std::min(nkb, kb0 + kAmxKChunkBlocks);
        for (int64_t mb = mc0; mb < mc1; mb += 2) {
          const int nbt = mc1 - mb >= 2 ? 2 : 1;
          const uint16_t* bj[2] = {tiles + mb * nkb * 512, tiles + (mb + 1) * nkb * 512};
          float* c = cs + (mb - mc0) * 2 * 256;
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
