// Device helpers shared by kernels/cuda/*.cu: exact widening of stored weight dtypes to
// F32, 16-byte chunk loads, warp reductions. Header-only, no templates beyond the three
// weight types, to keep nvcc time small.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda_ops.h"

namespace llrt::cuda {

// Weight element types as stored (F16/BF16 kept as raw 16-bit patterns).
struct WF32 { using T = float; };
struct WF16 { using T = uint16_t; };
struct WBF16 { using T = uint16_t; };

__device__ __forceinline__ float widen(WF32, float v) { return v; }
__device__ __forceinline__ float widen(WF16, uint16_t v) { return __half2float(__ushort_as_half(v)); }
__device__ __forceinline__ float widen(WBF16, uint16_t v) { return __uint_as_float(uint32_t(v) << 16); }

// Elements per 16-byte chunk.
template <class W> struct Chunk { static constexpr int n = 16 / int(sizeof(typename W::T)); };

// Widens one 16-byte chunk (exact).
__device__ __forceinline__ void widen_chunk(WF32, uint4 c, float* f) {
  f[0] = __uint_as_float(c.x); f[1] = __uint_as_float(c.y);
  f[2] = __uint_as_float(c.z); f[3] = __uint_as_float(c.w);
}
__device__ __forceinline__ void widen_pair_bf16(uint32_t u, float* f) {
  f[0] = __uint_as_float(u << 16);
  f[1] = __uint_as_float(u & 0xffff0000u);
}
__device__ __forceinline__ void widen_chunk(WBF16, uint4 c, float* f) {
  widen_pair_bf16(c.x, f); widen_pair_bf16(c.y, f + 2);
  widen_pair_bf16(c.z, f + 4); widen_pair_bf16(c.w, f + 6);
}
__device__ __forceinline__ void widen_pair_f16(uint32_t u, float* f) {
  __half2 h = *reinterpret_cast<__half2*>(&u);
  float2 v = __half22float2(h);
  f[0] = v.x;
  f[1] = v.y;
}
__device__ __forceinline__ void widen_chunk(WF16, uint4 c, float* f) {
  widen_pair_f16(c.x, f); widen_pair_f16(c.y, f + 2);
  widen_pair_f16(c.z, f + 4); widen_pair_f16(c.w, f + 6);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ int32_t warp_sum_i(int32_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__host__ __device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }
// Programmatic dependent launch (sm_90+): a kernel launched with pdl waits here for its
// predecessor's completion (and memory) before touching anything it produced or reads;
// `pdl_trigger` lets the next kernel start launching (and prefetching weights) early.
// Both are no-ops below sm_90 and for kernels launched without the attribute.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// <<<>>> or, with pdl, cudaLaunchKernelEx with programmatic stream serialization.
template <class... P, class... A>
inline void launch_kernel(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool pdl, A... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute at[1];
  at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  at[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = at;
  cfg.numAttrs = pdl ? 1 : 0;
  check(cudaLaunchKernelEx(&cfg, k, P(args)...), "cudaLaunchKernelEx");
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace llrt::cuda
