// ISA traits for the AVX-512 (F/BW/VL/DQ) build of the shared kernel templates
// (kernels/cpu/common/*.h): an xsimd batch for F32 arithmetic plus the loads xsimd
// lacks (F16 via vcvtph2ps, BF16 via zero-extend + shift, masked tails).
// All widenings are exact. Include only from files compiled with the avx512 flags.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/avx512/reduce_avx512.h"
#include "kernels/cpu/common/wtypes.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

struct IsaAvx512 {
  using arch = xsimd::avx512bw;
  using vf = xsimd::batch<float, arch>;
  static constexpr int L = 16;
  static constexpr int kAttnChunk = 8;  // head_dim vectors kept in registers (x2 partial sums)
  static constexpr int kAttnGroupChunk = 2;  // ... per query row when 2-4 rows share the pass

  static __mmask16 mask(int n) { return __mmask16((1u << n) - 1u); }

  static vf load(const float* p) { return _mm512_loadu_ps(p); }
  static vf load(const f16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static vf bf16_widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static vf load(const bf16_t* p) {
    return bf16_widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  // n in [0, L): lanes >= n are zero and their memory is not touched.
  static vf load_tail(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static vf load_tail(const f16_t* p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(n), p));
  }
  static vf load_tail(const bf16_t* p, int n) { return bf16_widen(_mm256_maskz_loadu_epi16(mask(n), p)); }
  static void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
  static void store_tail(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  // out[i] = sum of the lanes of rows[i], i < 16. (xsimd 8.1's avx512 haddp permutes
  // its result, so this is ours.)
  static vf sum_rows(const vf* rows) {
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = rows[i];
    return reduce16_zmm(r);
  }
  static void reduce4(vf a, vf b, vf c, vf d, float* out) { reduce4_zmm(a, b, c, d, out); }
  // In place: rows[j] becomes column j of the 16 x 16 block (common/linear_packed.h).
  static void transpose(vf* rows) {
    __m512 a[16], b[16];
    for (int i = 0; i < 8; ++i) {
      a[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
      a[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    auto lo = [](__m512 x, __m512 y) { return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y))); };
    auto hi = [](__m512 x, __m512 y) { return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y))); };
    for (int q = 0; q < 4; ++q) {  // b[4q + c]: column 4l + c of rows 4q..4q+3, per 128-bit lane l
      b[4 * q + 0] = lo(a[4 * q], a[4 * q + 2]);
      b[4 * q + 1] = hi(a[4 * q], a[4 * q + 2]);
      b[4 * q + 2] = lo(a[4 * q + 1], a[4 * q + 3]);
      b[4 * q + 3] = hi(a[4 * q + 1], a[4 * q + 3]);
    }
    for (int c = 0; c < 4; ++c) {
      const __m512 e0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x44), e1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xEE);
      const __m512 e2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x44), e3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xEE);
      rows[c] = _mm512_shuffle_f32x4(e0, e2, 0x88);
      rows[4 + c] = _mm512_shuffle_f32x4(e0, e2, 0xDD);
      rows[8 + c] = _mm512_shuffle_f32x4(e1, e3, 0x88);
      rows[12 + c] = _mm512_shuffle_f32x4(e1, e3, 0xDD);
    }
  }
};

}  // namespace
}  // namespace llrt::kernels
