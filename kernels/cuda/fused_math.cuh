// Per-row input transforms written once and used both by their own kernels
// (rmsnorm.cu, elementwise.cu, q8.cu) and by the fused decode GEMV (matvec_fused.cu),
// so a fused step computes exactly the same bits as the separate kernels.
// All block-level helpers assume blockDim.x == 256 (the summation order is part of
// the RMSNorm result).
#pragma once
#include <cfloat>

#include "common.cuh"

namespace llrt::cuda {

constexpr int kRowThreads = 256;

// 1 / sqrt(mean(x^2) + eps) in F64 from each thread's partial sum `ss` (its elements
// threadIdx.x, +256, ... accumulated in index order): a butterfly within each warp, the
// 8 warp sums added in order by thread 0. Every thread gets the result.
__device__ __forceinline__ double block_reduce_rms(double ss, int64_t dim, float eps) {
  __shared__ double part[kRowThreads / 32];
  __shared__ double s_inv;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < kRowThreads / 32; ++i) t += part[i];
    s_inv = 1.0 / sqrt(t / double(dim) + double(eps));
  }
  __syncthreads();
  return s_inv;
}

// The same over a row x (eight loads in flight per thread; the sum in index order).
__device__ __forceinline__ double block_rms_inv(const float* x, int64_t dim, float eps) {
  double ss = 0;
  int64_t i = threadIdx.x;
  for (; i + 7 * kRowThreads < dim; i += 8 * kRowThreads) {
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = x[i + j * kRowThreads];
#pragma unroll
    for (int j = 0; j < 8; ++j) ss = fma(double(v[j]), double(v[j]), ss);
  }
  for (; i < dim; i += kRowThreads) ss = fma(double(x[i]), double(x[i]), ss);
  return block_reduce_rms(ss, dim, eps);
}
__device__ __forceinline__ float rms_apply(float x, double inv, float w) { return float(double(x) * inv * double(w)); }

__device__ __forceinline__ float silu_mul_one(float g, float u) {
  return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

__device__ __forceinline__ float load_any(const void* p, int dtype, int64_t i) {
  if (dtype == int(DType::F32)) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  return dtype == int(DType::F16) ? __half2float(__ushort_as_half(h)) : __uint_as_float(uint32_t(h) << 16);
}

// ---- w8a8 activation quantization (include/llrt/quant.h's arithmetic)
struct Q8Params {
  float s, mul;
  int32_t zp;
  bool divide;
};
__device__ __forceinline__ float q8_clamp(float v) { return fminf(fmaxf(v, -128.0f), 127.0f); }

// The parameters from a row's statistics: max |x|, min(x, 0), max(x, 0) and whether any
// element is Inf/NaN (max/min are order-free, so any reduction order gives these bits).
__device__ __forceinline__ Q8Params q8_params_of(float amax, float lo, float hi, int bad, int mode, float static_scale,
                                                 int32_t static_zp) {
  Q8Params p{0.0f, 0.0f, 0, false};
  if (bad) {
    p.s = __int_as_float(0x7fc00000);  // quiet NaN: the token's outputs become NaN
  } else if (mode == int(Q8Mode::DynamicSymmetric)) {
    p.s = __fdiv_rn(amax, 127.0f);
    p.mul = amax > 0.0f ? fminf(__fdiv_rn(127.0f, amax), FLT_MAX) : 0.0f;
  } else if (mode == int(Q8Mode::DynamicAsymmetric)) {
    p.s = __fdiv_rn(__fsub_rn(hi, lo), 255.0f);
    if (p.s > 0.0f) {
      p.zp = int32_t(q8_clamp(rintf(__fsub_rn(-128.0f, __fdiv_rn(lo, p.s)))));
      p.divide = true;
    }
  } else {
    p.s = static_scale;
    p.zp = static_zp;
    p.divide = true;
  }
  if (!(p.s == p.s)) p.zp = 0;
  return p;
}

// A row's statistics for the parameters, accumulated per thread then reduced.
struct Q8Stats {
  float amax = 0.0f, lo = 0.0f, hi = 0.0f;
  int bad = 0;
  __device__ __forceinline__ void take(float v) {
    if (!isfinite(v)) bad = 1;
    amax = fmaxf(amax, fabsf(v));
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  __device__ __forceinline__ void merge(const Q8Stats& o) {
    amax = fmaxf(amax, o.amax);
    lo = fminf(lo, o.lo);
    hi = fmaxf(hi, o.hi);
    bad |= o.bad;
  }
};

// The block's statistics from each thread's (valid in thread 0 only; order-free).
__device__ __forceinline__ Q8Stats block_reduce_q8_stats(Q8Stats st) {
  __shared__ Q8Stats s_st[kRowThreads / 32];
  st.amax = warp_max(st.amax);
  st.hi = warp_max(st.hi);
  st.lo = -warp_max(-st.lo);
  st.bad = __any_sync(0xffffffffu, st.bad);
  if ((threadIdx.x & 31) == 0) s_st[threadIdx.x >> 5] = st;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int i = 1; i < kRowThreads / 32; ++i) st.merge(s_st[i]);
  return st;
}

// The quantization parameters of one row (all threads of the block get them).
__device__ __forceinline__ Q8Params block_q8_params(const float* x, int64_t K, int mode, float static_scale,
                                                    int32_t static_zp) {
  __shared__ Q8Params s_p;
  Q8Stats st;
  int64_t k = threadIdx.x;
  for (; k + 7 * kRowThreads < K; k += 8 * kRowThreads) {  // eight loads in flight (max/min: order-free)
    float v[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = x[k + j * kRowThreads];
#pragma unroll
    for (int j = 0; j < 8; ++j) st.take(v[j]);
  }
  for (; k < K; k += kRowThreads) st.take(x[k]);
  st = block_reduce_q8_stats(st);
  if (threadIdx.x == 0) s_p = q8_params_of(st.amax, st.lo, st.hi, st.bad, mode, static_scale, static_zp);
  __syncthreads();
  return s_p;
}

// The code of one element (0 for a zero or poisoned token).
__device__ __forceinline__ int8_t q8_code(float v, const Q8Params& p) {
  if (!(p.s > 0.0f)) return 0;
  const float q = p.divide ? __fadd_rn(rintf(__fdiv_rn(v, p.s)), float(p.zp)) : rintf(__fmul_rn(v, p.mul));
  return int8_t(int32_t(q8_clamp(q)));
}

// y = (float(acc) * s) * w_scale (+ y), acc = sum q w - zp * sum w exactly.
__device__ __forceinline__ float q8_out(int32_t qw, int32_t zp, int32_t rowsum, float s, float ws) {
  const int32_t acc = int32_t(int64_t(qw) - int64_t(zp) * rowsum);
  return __fmul_rn(__fmul_rn(float(acc), s), ws);
}

}  // namespace llrt::cuda
