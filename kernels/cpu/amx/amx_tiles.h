// AMX tile helpers shared by the AMX Linear kernels (compiled with the amx flags):
// the tile configuration, a 16 x 16 dword transpose in zmm registers (VNNI packing of
// activations, and C^T tiles back to row-major y), and the transposed C store.
// Convention of both kernels: tiles 0-5 hold C and A (rows = rows of W), 6-7 hold B.
//
// Split B tiles (prep of both AMX Linears, M >= 2): activations split as in
// kernels/cpu/avx512bf16/dot_bf16.h (x ~ xh + xl), in the VNNI pair layout. For token
// block mb and k block kb (32 k), Kp = round_up(K, 32): a 2 KiB pair at
// ((mb * Kp/32) + kb) * 2048 bytes, the xh tile then the xl tile; dword [r][c] of a tile
// = {v[16mb+c][32kb+2r], v[16mb+c][32kb+2r+1]}; zero for k >= K and tokens >= M.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/avx512bf16/dot_bf16.h"

namespace llrt::kernels {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

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

// Tiles 0-5 (C and A: their rows are W rows) get `rows` rows (16, or a row tail),
// tiles 6-7 (B: 16 k pairs) 16 rows; every row 64 bytes.
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

inline size_t split_tiles_bytes(int64_t M, int64_t K) {
  return size_t((M + 15) / 16 * 16 * bf16_row_stride(K)) * 4;
}

// Token blocks [mb0, mb1) of the split tiles (each block's pairs are its own bytes).
inline void prep_split_tiles_blocks(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t mb0, int64_t mb1,
                                    uint16_t* out) {
  const int64_t nkb = bf16_row_stride(K) / 32;
  for (int64_t mb = mb0; mb < mb1; ++mb)
    for (int64_t kb = 0; kb < nkb; ++kb) {
      __m512i hi[16], lo[16];
      for (int c = 0; c < 16; ++c) {
        const int64_t m = mb * 16 + c;
        if (m < M) bf16_split32(x + m * ldx + kb * 32, K - kb * 32, &hi[c], &lo[c]);
        else hi[c] = lo[c] = _mm512_setzero_si512();
      }
      transpose16x16(hi);
      transpose16x16(lo);
      uint16_t* tile = out + (mb * nkb + kb) * 1024;
      for (int i = 0; i < 16; ++i) {
        _mm512_storeu_si512(tile + i * 32, hi[i]);
        _mm512_storeu_si512(tile + 512 + i * 32, lo[i]);
      }
    }
}

inline void prep_split_tiles(const float* x, int64_t ldx, int64_t M, int64_t K, uint16_t* out) {
  prep_split_tiles_blocks(x, ldx, M, K, 0, (M + 15) / 16, out);
}

// prep_rows of the split-tile layout: rows [m0, m1) are token blocks [m0/16, ceil(m1/16)).
inline void prep_split_tiles_rows(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t m0, int64_t m1,
                                  uint16_t* out) {
  prep_split_tiles_blocks(x, ldx, M, K, m0 / 16, (m1 + 15) / 16, out);
}

}  // namespace
}  // namespace llrt::kernels
