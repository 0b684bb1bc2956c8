// The BF16 building blocks shared by the avx512bf16 Linears and the AMX Linears (the split
// activations of their tile prep). Include only from files compiled with the avx512bf16 flags;
// anonymous namespace on purpose (one copy per ISA TU).
//
// Split activations. An F32 activation is carried as two BF16 numbers:
//   xh = bf16_rne(x),  xl = bf16_rne(x - xh)   so   |x - (xh + xl)| <= 2^-16 |x|
//   (x - xh is exact in F32; bf16_rne is vcvtne2ps2bf16: round to nearest even, denormal
//   inputs become signed zero, NaN stays NaN). With BF16 weights, which are exact, a
//   product w*x is then w*xh + w*xl: two exact BF16 products instead of one F32 one.
//   This keeps BF16 models within about 2^-16 of the exact F32 computation (the float32
//   references) at twice the vdpbf16ps / TDPBF16PS work, which decode (memory bound)
//   does not notice.
//
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

inline __m512 bf16_widen_lo(__m512i v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16));
}
inline __m512 bf16_widen_hi(__m512i v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
}

// 32 floats at p (the first n_valid of them; zero beyond) -> xh, xl (32 BF16 each).
inline void bf16_split32(const float* p, int64_t n_valid, __m512i* xh, __m512i* xl) {
  const __m512 x0 = _mm512_maskz_loadu_ps(bf16_mask16(n_valid), p);
  const __m512 x1 = _mm512_maskz_loadu_ps(bf16_mask16(n_valid - 16), p + 16);
  const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
  *xh = h;
  *xl = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, bf16_widen_hi(h)), _mm512_sub_ps(x0, bf16_widen_lo(h)));
}

// Rounded activations (the BF16-activation kernels, Linear BF16w/BF16a): x rounded ONCE to
// BF16 (vcvtne2ps2bf16: nearest even, denormals to zero), as HF's own BF16 model computes.
//   token m: xb[m * Kp + k], Kp = round_up(K, 32), zero for k >= K. Row stride Kp.
// Bf16DotPolicy: 32 k per step, acc[l] = vdpbf16ps(acc[l], w, xb) (lane l: k = 2l, 2l+1 mod
// 32; each BF16 product exact in F32, sums rounded to F32 nearest even): one instruction per
// 64 bytes of weights, half the split form's.
inline void prep_bf16_round_rows(const float* x, int64_t ldx, int64_t m0, int64_t m1, int64_t K, uint16_t* xb) {
  const int64_t Kp = bf16_row_stride(K);
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t k = 0; k < Kp; k += 32) {
      const float* p = x + m * ldx + k;
      const __m512 x0 = _mm512_maskz_loadu_ps(bf16_mask16(K - k), p);
      const __m512 x1 = _mm512_maskz_loadu_ps(bf16_mask16(K - k - 16), p + 16);
      _mm512_storeu_si512(xb + m * Kp + k, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
    }
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
