// Prefill matrix products through cuBLAS: y[M, N] (+)= x[M, K] . W[N, K]^T, M > 8.
//
// Why cuBLAS: at prefill sizes the products are compute-bound and cuBLAS has tuned
// tensor-core kernels for every architecture we target (sm_80, sm_90); a hand-written
// GEMM would only re-derive them. The weight is used in place in its stored dtype.
//
// Math and rounding contract:
//   BF16 / F16 weights: the F32 activations are converted ONCE per call to the weight
//     dtype (round to nearest even; `conv` scratch, M*K elements), then cublasGemmEx
//     with A = W (stored dtype), B = converted x, C = y in F32, CUBLAS_COMPUTE_32F: the
//     tensor cores multiply exactly and accumulate in F32. The only extra rounding vs.
//     the F32 contract is that of the activations (relative 2^-8 for BF16, 2^-11 for
//     F16), the same one the CPU's AVX512_BF16/AMX kernels make. (cuBLAS has no
//     BF16 x F32 mixed product; converting the weights instead would break the rule
//     that weights are used as stored, and cost 2x the memory traffic.) For F16 weights
//     an activation beyond the F16 range (65504) becomes Inf and shows up as Inf/NaN
//     logits, never as a silently clipped value.
//   F32 weights: cublasGemmEx in F32 with CUBLAS_COMPUTE_32F and the default math mode,
//     i.e. TF32 tensor cores DISABLED: TF32 keeps 10 mantissa bits, which would make an
//     F32 checkpoint less exact than a BF16 one run through the path above; an F32 model
//     is run in F32 because someone wants F32 results.
//   accumulate: beta = 1, y = 1 * (x.W^T) + 1 * y, one F32 rounding of the sum (the
//     fused residual add; the CPU engine does x += xb with the same single rounding).
// Layout: cuBLAS is column-major, so we compute y^T[N, M] = op_T(W as K x N) . x^T (K x M),
//   i.e. the "TN" product with lda = K, ldb = K (or ldx for F32), ldc = ldy.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "common.cuh"
#include "llrt/error.h"

namespace llrt::cuda {

struct Blas {
  cublasHandle_t h = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
};

namespace {
void check_blas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    fail(ErrorCode::Cuda, std::string("cuBLAS: ") + what + " failed: " + cublasGetStatusString(st));
}

__global__ void convert_rows(const float* __restrict__ x, int64_t ldx, int64_t M, int64_t K, uint16_t* out, bool bf16) {
  const int64_t m = blockIdx.y;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < K; k += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[m * ldx + k];
    out[m * K + k] = bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
  }
  (void)M;
}
}  // namespace

Blas* blas_create() {
  auto* b = new Blas();
  try {
    check_blas(cublasCreate(&b->h), "cublasCreate");
    check_blas(cublasLtCreate(&b->lt), "cublasLtCreate");
    // No TF32 (see the contract above), no reduced-precision reductions.
    check_blas(cublasSetMathMode(b->h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    check(cudaMalloc(&b->ws, kBlasWorkspaceBytes), "cudaMalloc(cuBLAS workspace)");
    b->ws_bytes = kBlasWorkspaceBytes;
    check_blas(cublasSetWorkspace(b->h, b->ws, b->ws_bytes), "cublasSetWorkspace");
  } catch (...) {
    blas_destroy(b);
    throw;
  }
  return b;
}

void blas_destroy(Blas* b) {
  if (!b) return;
  if (b->h) cublasDestroy(b->h);
  if (b->lt) cublasLtDestroy(b->lt);
  if (b->ws) cudaFree(b->ws);
  delete b;
}

// Used by q8.cu for the cuBLASLt int8 product.
cublasLtHandle_t blas_lt(Blas* b, void** ws, size_t* ws_bytes) {
  *ws = b->ws;
  *ws_bytes = b->ws_bytes;
  return b->lt;
}

size_t linear_conv_bytes(DType w, int64_t M, int64_t K) {
  if (M <= kGemvMaxM || w == DType::F32) return 0;
  return size_t(M) * size_t(K) * 2;
}

void gemm(DType w, const LinearCall& c, cudaStream_t s) {
  if (c.M <= 0 || c.N <= 0) return;
  if (!c.blas) check(cudaErrorInvalidValue, "gemm: no cuBLAS state");
  check_blas(cublasSetStream(c.blas->h, s), "cublasSetStream");
  const float alpha = 1.0f, beta = c.accumulate ? 1.0f : 0.0f;
  const int N = int(c.N), M = int(c.M), K = int(c.K);
  if (c.K == 0) {  // empty sum: y = 0 (or unchanged)
    if (!c.accumulate) check(cudaMemset2DAsync(c.y, size_t(c.ldy) * 4, 0, size_t(c.N) * 4, size_t(c.M), s), "memset");
    return;
  }
  if (w == DType::F32) {
    check_blas(cublasGemmEx(c.blas->h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, c.w, CUDA_R_32F, K, c.x, CUDA_R_32F,
                            int(c.ldx), &beta, c.y, CUDA_R_32F, int(c.ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx (F32)");
    return;
  }
  if (w != DType::BF16 && w != DType::F16) check(cudaErrorInvalidValue, "gemm: weight dtype must be F32, F16 or BF16");
  if (!c.conv) check(cudaErrorInvalidValue, "gemm: no activation conversion buffer");
  const bool bf16 = w == DType::BF16;
  const dim3 grid(unsigned(std::min<int64_t>(ceil_div(c.K, 256), 64)), unsigned(c.M));
  convert_rows<<<grid, 256, 0, s>>>(c.x, c.ldx, c.M, c.K, static_cast<uint16_t*>(c.conv), bf16);
  check_launch("convert_rows");
  const cudaDataType t = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  check_blas(cublasGemmEx(c.blas->h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, c.w, t, K, c.conv, t, K, &beta, c.y,
                          CUDA_R_32F, int(c.ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             bf16 ? "cublasGemmEx (BF16 x BF16 -> F32)" : "cublasGemmEx (F16 x F16 -> F32)");
}

}  // namespace llrt::cuda
