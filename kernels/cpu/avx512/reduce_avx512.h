// Horizontal sums of AVX-512 F32 accumulators, shared by the AVX-512 kernel files
// (compiled with at least the avx512 flags). Adds are F32, rounded to nearest even; the
// order is a pairwise tree.
#pragma once
#include <immintrin.h>

namespace llrt::kernels {
namespace {

// out[0..4) = the lane sums of a, b, c, d (13 instructions instead of 4 full reductions).
inline void reduce4_zmm(__m512 a, __m512 b, __m512 c, __m512 d, float* out) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  // per 128-bit lane l: [a_l, b_l, c_l, d_l]
  const __m512 s = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                                 _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

// out[i] = sum of the lanes of rows[i], i < 16 (pairwise unpack/shuffle folds).
inline __m512 reduce16_zmm(const __m512* rows) {
  __m512 u[4];
  for (int k = 0; k < 4; ++k) {
    __m512 t[2];
    for (int h = 0; h < 2; ++h) {
      const __m512 a = rows[4 * k + 2 * h], b = rows[4 * k + 2 * h + 1];
      t[h] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    }
    const __m512d t0 = _mm512_castps_pd(t[0]), t1 = _mm512_castps_pd(t[1]);
    u[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(t0, t1)), _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t1)));
  }
  const __m512 v0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xdd));
  const __m512 v1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x88), _mm512_shuffle_f32x4(v0, v1, 0xdd));
}

}  // namespace
}  // namespace llrt::kernels
