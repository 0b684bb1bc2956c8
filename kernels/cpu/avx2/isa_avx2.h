// ISA traits for the AVX2 + FMA + F16C build of the shared kernel templates
// (kernels/cpu/common/*.h): an xsimd batch for F32 arithmetic plus the loads xsimd
// lacks (F16 via vcvtph2ps, BF16 via zero-extend + shift, tails via vmaskmovps or a
// zero-padded copy for 16-bit elements). All widenings are exact. Include only from
// files compiled with the avx2 flags.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/common/wtypes.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

struct IsaAvx2 {
  using arch = xsimd::fma3<xsimd::avx2>;
  using vf = xsimd::batch<float, arch>;
  static constexpr int L = 8;
  static constexpr int kAttnChunk = 4;  // head_dim vectors kept in registers (x2 partial sums)
  static constexpr int kAttnGroupChunk = 1;  // ... per query row when 2-4 rows share the pass

  static __m256i mask(int n) {
    alignas(32) static const int32_t tbl[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tbl + 8 - n));
  }
  static __m128i load8_tail(const uint16_t* p, int n) {
    alignas(16) uint16_t b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(b, p, size_t(n) * 2);
    return _mm_load_si128(reinterpret_cast<const __m128i*>(b));
  }
  static vf bf16_widen(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }

  static vf load(const float* p) { return _mm256_loadu_ps(p); }
  static vf load(const f16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static vf load(const bf16_t* p) {
    return bf16_widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // n in [0, L): lanes >= n are zero and their memory is not touched.
  static vf load_tail(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static vf load_tail(const f16_t* p, int n) {
    return _mm256_cvtph_ps(load8_tail(reinterpret_cast<const uint16_t*>(p), n));
  }
  static vf load_tail(const bf16_t* p, int n) {
    return bf16_widen(load8_tail(reinterpret_cast<const uint16_t*>(p), n));
  }
  static void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
  // out[i] = sum of the lanes of rows[i], i < 8 (xsimd's avx haddp).
  static vf sum_rows(const vf* rows) { return xsimd::haddp(rows); }
  static void store_tail(float* p, vf v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  // In place: rows[j] becomes column j of the 8 x 8 block (common/linear_packed.h).
  static void transpose(vf* rows) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    for (int q = 0; q < 2; ++q) {  // u[4q + c]: column 4l + c of rows 4q..4q+3, per 128-bit lane l
      u[4 * q + 0] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * q + 1] = _mm256_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[4 * q + 2] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * q + 3] = _mm256_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; ++c) {
      rows[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
      rows[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
  }
};

}  // namespace
}  // namespace llrt::kernels
