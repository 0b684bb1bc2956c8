// I8 Linear (w8a8) pieces shared by every ISA variant: the prep buffer layout, the
// activation quantization (written once in plain C++, compiled per ISA: the compiler
// vectorizes it; every operation is an exactly-rounded IEEE op, so every variant makes
// bit-identical codes), the weight-scale load and the epilogue.
// Anonymous namespace on purpose: each ISA translation unit gets its own copy.
//
// Prep buffer (64-byte aligned, `Code` = int8_t for Ref/VNNI, int16_t for AVX2):
//   float   scale[M]      per-token activation scale s (NaN: the token has Inf/NaN)
//   int32_t zp[M]         per-token zero point (0 for symmetric)
//   int32_t qsum[M]       sum_k q[m, k] (used by the VNNI kernels' offset correction)
//   Code    codes[M][lda] lda = K rounded up to 64; codes past K are 0
// each array starting on a 64-byte boundary.
//
// Quantization (see include/llrt/quant.h; rint = nearbyint in the default
// round-to-nearest-even mode):
//   dynamic symmetric:  a = max|x|, s = a / 127, inv = 127 / a, q = clamp(rint(x * inv))
//   dynamic asymmetric: lo = min(min x, 0), hi = max(max x, 0), s = (hi - lo) / 255,
//                       zp = clamp(rint(-128 - lo / s)), q = clamp(rint(x / s) + zp)
//   static:             s, zp given, q = clamp(rint(x / s) + zp)
// Epilogue: y = (float(acc) * s[m]) * w_scale[n], acc the exact int32 sum
//   sum_k (q[m,k] - zp[m]) * w[n,k].
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "llrt/dtype.h"
#include "prefetch.h"
#include "src/quant/quant.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kQ8Align = 64;
inline int64_t q8_round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }
inline int64_t q8_lda(int64_t K) { return q8_round_up(std::max<int64_t>(K, 1), kQ8Align); }

template <class Code>
struct Q8Prep {
  float* scale;
  int32_t* zp;
  int32_t* qsum;
  Code* codes;
  int64_t lda;
  static size_t bytes(int64_t M, int64_t K) {
    size_t head = size_t(q8_round_up(int64_t(sizeof(float)) * M, kQ8Align)) * 3;
    return head + size_t(M) * size_t(q8_lda(K)) * sizeof(Code);
  }
  static Q8Prep at(void* buf, int64_t M, int64_t K) {
    char* p = static_cast<char*>(buf);
    const int64_t arr = q8_round_up(int64_t(sizeof(float)) * M, kQ8Align);
    Q8Prep r;
    r.scale = reinterpret_cast<float*>(p);
    r.zp = reinterpret_cast<int32_t*>(p + arr);
    r.qsum = reinterpret_cast<int32_t*>(p + 2 * arr);
    r.codes = reinterpret_cast<Code*>(p + 3 * arr);
    r.lda = q8_lda(K);
    return r;
  }
  static Q8Prep at(const void* buf, int64_t M, int64_t K) { return at(const_cast<void*>(buf), M, K); }
};

inline float q8_clamp_code(float v) { return std::min(std::max(v, -128.0f), 127.0f); }

inline uint32_t q8_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float q8_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Order-preserving signed key of a float's bits (self-inverse): integer min/max of keys
// is float min/max, and integer reductions vectorize exactly in any order.
inline int32_t q8_key(uint32_t u) { return int32_t(u ^ (uint32_t(int32_t(u) >> 31) & 0x7fffffffu)); }

// Quantizes one token row (codes past K up to lda are zeroed).
// The reductions (max |x|, min/max) run on the float bit patterns as integers: exact,
// vectorizable, and they double as the Inf/NaN check (|bits| >= 0x7f800000).
template <class Code>
inline void q8_quantize_row(const float* x, int64_t K, const ActQuantParams& p, float* scale_out,
                            int32_t* zp_out, int32_t* qsum_out, Code* codes, int64_t lda) {
  float s = 0.0f, mul = 0.0f;
  int32_t zp = 0;
  bool divide = false;  // q = rint(x / s) + zp   vs   q = rint(x * mul)
  uint32_t amax = 0;    // max |x| as bits
  if (p.mode == ActQuantMode::DynamicAsymmetric) {
    int32_t kmin = 0, kmax = 0;  // keys of +0.0: the range always contains 0
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t u = q8_bits(x[k]);
      amax = std::max(amax, u & 0x7fffffffu);
      kmin = std::min(kmin, q8_key(u));
      kmax = std::max(kmax, q8_key(u));
    }
    const float lo = q8_float(uint32_t(q8_key(uint32_t(kmin)))), hi = q8_float(uint32_t(q8_key(uint32_t(kmax))));
    s = (hi - lo) / 255.0f;
    if (s > 0.0f) {
      zp = int32_t(q8_clamp_code(std::nearbyint(-128.0f - lo / s)));
      divide = true;
    }
  } else {
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, q8_bits(x[k]) & 0x7fffffffu);
    if (p.mode == ActQuantMode::DynamicSymmetric) {
      const float a = q8_float(amax);
      s = a / 127.0f;
      // (capped: 127 / a overflows for subnormal a; |x * mul| <= 127 either way)
      mul = a > 0.0f ? std::min(127.0f / a, std::numeric_limits<float>::max()) : 0.0f;
    } else {
      s = p.scale;
      zp = p.zero_point;
      divide = true;
    }
  }
  if (amax >= 0x7f800000u) s = std::numeric_limits<float>::quiet_NaN();  // Inf/NaN: poison the token
  int32_t sum = 0;
  if (!(s > 0.0f)) {  // zero token or poisoned: all codes 0
    for (int64_t k = 0; k < lda; ++k) codes[k] = 0;
    if (!(s == s)) zp = 0;
  } else if (divide) {
    const float fzp = float(zp);
    for (int64_t k = 0; k < K; ++k) {
      const int32_t q = int32_t(q8_clamp_code(std::nearbyint(x[k] / s) + fzp));
      codes[k] = Code(q);
      sum += q;
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      const int32_t q = int32_t(q8_clamp_code(std::nearbyint(x[k] * mul)));
      codes[k] = Code(q);
      sum += q;
    }
  }
  for (int64_t k = K; k < lda; ++k) codes[k] = 0;
  *scale_out = s;
  *zp_out = zp;
  *qsum_out = sum;
}

template <class Code>
void q8_prep(const LinearPrepArgs& a) {
  auto P = Q8Prep<Code>::at(a.xp, a.M, a.K);
  for (int64_t m = a.m0; m < a.m1; ++m)
    q8_quantize_row<Code>(a.x + m * a.ldx, a.K, *a.act, P.scale + m, P.zp + m, P.qsum + m, P.codes + m * P.lda,
                          P.lda);
}

inline const int8_t* q8_weights(const LinearArgs& a) { return static_cast<const int8_t*>(a.w.data); }

template <class Code>
size_t q8_prep_bytes(int64_t M, int64_t K) { return Q8Prep<Code>::bytes(M, K); }

// Exact IEEE half -> float, inline (the library's f16_to_f32 is out of line).
inline float q8_f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return q8_float(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return q8_float(sign | ((exp + 112) << 23) | (man << 13));
  const float sub = float(man) * 5.9604644775390625e-8f;  // man * 2^-24, exact
  return q8_float(sign | q8_bits(sub));
}

inline float q8_w_scale(const LinearArgs& a, int64_t n) {
  const int64_t i = a.w.granularity == ScaleGranularity::Channel ? n : 0;
  switch (a.w.scale_dtype) {
    case DType::F32: return static_cast<const float*>(a.w.scales)[i];
    case DType::F16: return q8_f16_to_f32(static_cast<const uint16_t*>(a.w.scales)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(a.w.scales)[i]);
  }
}

// Two separately rounded F32 products (no addition, so nothing for FMA contraction).
inline float q8_epilogue(int32_t acc, float a_scale, float w_scale) {
  return (float(acc) * a_scale) * w_scale;
}

}  // namespace
}  // namespace llrt::kernels
