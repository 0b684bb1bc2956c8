// The vdpbf16ps building blocks shared by the avx512bf16 Linear and the AMX Linear
// (whose small-M path and row tail use them). Include only from files compiled with the
// avx512bf16 flags; anonymous namespace on purpose (one copy per ISA TU).
//
// BF16 activation rows (the "prep" form):
//   xb[m * Kp + k] = bf16_rne(x[m * ldx + k]) for k < K, 0 for K <= k < Kp = round_up(K, 32).
//   bf16_rne is vcvtne2ps2bf16: round to nearest even; denormal inputs become signed
//   zero; NaN stays NaN. |bf16_rne(v) - v| <= 2^-8 |v|.
// Bf16DotPolicy (for kernels/cpu/common/linear_blocked.h): 32 k per step,
//   acc[l] += W[2l]*xb[2l] + W[2l+1]*xb[2l+1] (vdpbf16ps: each BF16 product exact in
//   F32, sums rounded to F32 nearest-even, denormals flushed). The W tail (K % 32) is
//   a masked load so nothing past a row end is read.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/avx512/reduce_avx512.h"

namespace llrt::kernels {
namespace {

inline int64_t bf16_row_stride(int64_t K) { return (K + 31) / 32 * 32; }

inline __mmask16 bf16_mask16(int64_t n) {
  n = std::clamp<int64_t>(n, 0, 16);
  return __mmask16((1u << n) - 1u);
}

// 32 floats (masked by n_valid, zero beyond) -> 32 bf16 (RNE) in one zmm.
inline __m512i bf16_pack32(const float* p, int64_t n_valid) {
  const __m512 lo = _mm512_maskz_loadu_ps(bf16_mask16(n_valid), p);
  const __m512 hi = _mm512_maskz_loadu_ps(bf16_mask16(n_valid - 16), p + 16);
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

inline void prep_bf16_rows(const float* x, int64_t ldx, int64_t M, int64_t K, uint16_t* xb) {
  const int64_t Kp = bf16_row_stride(K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < Kp; k += 32)
      _mm512_storeu_si512(xb + m * Kp + k, bf16_pack32(x + m * ldx + k, K - k));
}

struct Bf16DotPolicy {
  using WT = uint16_t;
  using XT = uint16_t;
  using wvec = __m512i;
  using xvec = __m512i;
  using acc = __m512;
  static constexpr int KS = 32;
  static __mmask32 mask(int n) { return __mmask32((1ull << n) - 1ull); }
  static acc zero() { return _mm512_setzero_ps(); }
  static wvec load_w(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static wvec load_w_tail(const uint16_t* p, int n) { return _mm512_maskz_loadu_epi16(mask(n), p); }
  static xvec load_x(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static xvec load_x_tail(const uint16_t* p, int n) { return _mm512_maskz_loadu_epi16(mask(n), p); }
  static acc madd(acc a, wvec w, xvec x) { return _mm512_dpbf16_ps(a, (__m512bh)w, (__m512bh)x); }
  static acc sum(acc a, acc b) { return _mm512_add_ps(a, b); }
  static float reduce(acc a) { return _mm512_reduce_add_ps(a); }
  static void reduce4(acc a, acc b, acc c, acc d, float* out) { reduce4_zmm(a, b, c, d, out); }
};

}  // namespace
}  // namespace llrt::kernels
