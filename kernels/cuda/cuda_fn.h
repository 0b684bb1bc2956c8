// llrt CUDA kernels: the launcher types the registry's Backend::Cuda entries hold (the calls
// themselves are declared in cuda_ops.h). Plain C++ with no CUDA header, so the registry's
// typed entries (llrt/kernels.h) name them on machines without the toolkit.
#pragma once
#include <cstdint>

struct CUstream_st;  // cudaStream_t is CUstream_st* (cuda_runtime_api.h)

namespace llrt::cuda {
struct LinearCall;
struct LinearQ8Kernels;
struct EmbeddingCall;
struct SiluMulCall;
struct RmsNormCall;
struct RopeCall;
struct AttentionCall;
using LinearFn = void (*)(const LinearCall& c, CUstream_st* stream);
using EmbeddingFn = void (*)(const EmbeddingCall& c, CUstream_st* stream);
using SiluMulFn = void (*)(const SiluMulCall& c, CUstream_st* stream);
using AddFn = void (*)(float* y, const float* x, int64_t n, CUstream_st* stream);  // y += x
using RmsNormFn = void (*)(const RmsNormCall& c, CUstream_st* stream);
using RopeFn = void (*)(const RopeCall& c, CUstream_st* stream);
using AttentionFn = void (*)(const AttentionCall& c, CUstream_st* stream);
}  // namespace llrt::cuda
