// llrt CUDA kernels: the host-side interface of kernels/cuda/*.cu.
//
// Every function here launches work on `stream` and returns without synchronizing; all
// pointers are device pointers unless a comment says otherwise. Launch errors are
// reported as llrt::Error{Cuda} (cudaGetLastError after each launch).
//
// The registry (kernels/cuda/register_cuda.cpp) holds these functions under
// Backend::Cuda, keyed (op, weight dtype, F32 activations) with the lowest compute
// capability each needs; the CUDA engine (src/cuda) and the op checker
// (tests/test_cuda.cpp) look them up there. Each .cu file states its math, layout and
// rounding contract at the top. Activations are F32 everywhere, as on the CPU.
//
// This header is plain C++ (no CUDA syntax) so the engine and tests compile with g++.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "llrt/dtype.h"

namespace llrt::cuda {

// Throws Error{Cuda} naming `what` when `e` is an error (also clears sticky launch errors).
void check(cudaError_t e, const char* what);
// cudaGetLastError after a launch.
void check_launch(const char* kernel);

// ------------------------------------------------------------------ cuBLAS state
// One cuBLAS + cuBLASLt handle pair and a fixed workspace, bound to a stream at each call
// (gemm.cu). Graph capture of a cuBLAS call needs the explicit workspace.
struct Blas;
constexpr size_t kBlasWorkspaceBytes = size_t(32) << 20;
Blas* blas_create();  // allocates kBlasWorkspaceBytes of device memory
void blas_destroy(Blas* b);

// ------------------------------------------------------------------ Linear
// y[m*ldy + n] (+)= sum_k x[m*ldx + k] * W[n*K + k]   for m < M, n < N.
// M <= kGemvMaxM: the bandwidth GEMV (matvec.cu); else cuBLAS (gemm.cu), which needs
// `conv` (linear_conv_bytes) for BF16/F16 weights.
struct LinearCall {
  const void* w = nullptr;  // [N, K] row-major, the kernel's weight dtype
  int64_t N = 0, K = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  int64_t M = 0;
  bool accumulate = false;  // y += x.W^T (the fused residual add)
  void* conv = nullptr;     // GEMM path: M*K activations converted to the weight dtype
  Blas* blas = nullptr;     // GEMM path
};
constexpr int64_t kGemvMaxM = 8;
size_t linear_conv_bytes(DType w, int64_t M, int64_t K);
using LinearFn = void (*)(const LinearCall& c, cudaStream_t stream);
void linear_f32w(const LinearCall& c, cudaStream_t stream);
void linear_f16w(const LinearCall& c, cudaStream_t stream);
void linear_bf16w(const LinearCall& c, cudaStream_t stream);
// The two paths by name (the op checker runs both at every M).
void gemv(DType w, const LinearCall& c, cudaStream_t stream);  // M <= kGemvMaxM
void gemm(DType w, const LinearCall& c, cudaStream_t stream);  // any M

// How w8a8 activations are quantized (include/llrt/quant.h).
enum class Q8Mode : int32_t { DynamicSymmetric = 0, DynamicAsymmetric = 1, Static = 2 };

// ------------------------------------------------------------------ decode (matvec_fused.cu)
// One token's Linear with its input transform fused in (fewer launches per decode step):
// the block stages the transformed row in shared memory, then runs the GEMV of
// matvec.cu (F32/F16/BF16 weights) or q8.cu (I8 weights, the activation quantization
// fused too). Bit-identical to running the separate kernels (fused_math.cuh).
enum class DecodeInput : int32_t {
  Plain = 0,    // x[K]
  RmsNorm = 1,  // rmsnorm(x[K]) with norm_w (rmsnorm.cu)
  SiluMul = 2,  // silu(x[k]) * x[up_off + k] (elementwise.cu)
};
struct DecodeLinearCall {
  DType wtype = DType::BF16;  // F32 / F16 / BF16 / I8
  const void* w = nullptr;    // [N, K]
  int64_t N = 0, K = 0;
  DecodeInput input = DecodeInput::Plain;
  const float* x = nullptr;
  const void* norm_w = nullptr;
  DType norm_dtype = DType::BF16;
  float eps = 0;
  int64_t up_off = 0;
  float* y = nullptr;  // [N]
  bool accumulate = false;
  // I8 weights: scales, row sums and the activation quantization (as Q8QuantizeCall / Q8LinearCall)
  const void* w_scale = nullptr;
  DType w_scale_dtype = DType::BF16;
  bool per_channel = true;
  const int32_t* w_rowsum = nullptr;
  Q8Mode mode = Q8Mode::DynamicSymmetric;
  float static_scale = 0;
  int32_t static_zp = 0;
  bool pdl = false;  // programmatic dependent launch (sm_90+; see common.cuh)
  // RmsNorm input: x and norm_w staged with cp.async in one round trip (same bits; used when
  // K % 4 == 0 and x, norm_w are 16-byte aligned, else the classic prologue)
  bool async_norm = false;
};
// False when the shapes/alignment don't allow it (then use the separate kernels).
bool decode_linear_supported(const DecodeLinearCall& c);
void decode_linear(const DecodeLinearCall& c, cudaStream_t stream);
// One-time kernel attributes (shared memory opt-in); call before capturing a graph.
void decode_linear_init();

// ------------------------------------------------------------------ w8a8 (q8.cu)
// Codes row stride for K (K rounded up to 16; the pad is written as 0).
inline int64_t q8_ldq(int64_t K) { return (K + 15) / 16 * 16; }
struct Q8QuantizeCall {
  const float* x = nullptr;
  int64_t ldx = 0, M = 0, K = 0;
  Q8Mode mode = Q8Mode::DynamicSymmetric;
  float static_scale = 0;  // Static
  int32_t static_zp = 0;   // Static
  int8_t* q = nullptr;     // [M, q8_ldq(K)]
  float* scale = nullptr;  // [M]
  int32_t* zp = nullptr;   // [M]
};
struct Q8LinearCall {
  const int8_t* w = nullptr;  // [N, K] as stored
  int64_t N = 0, K = 0;
  const void* w_scale = nullptr;  // [N] (per channel) or [1]
  DType w_scale_dtype = DType::BF16;
  bool per_channel = true;
  const int32_t* w_rowsum = nullptr;  // sum_k w[n, k]; needed when any token zp != 0
  const int8_t* q = nullptr;          // quantized activations (Q8QuantizeCall outputs)
  const float* scale = nullptr;
  const int32_t* zp = nullptr;
  int64_t M = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  bool accumulate = false;
  int32_t* acc = nullptr;  // GEMM path: [M, N] int32 (linear_q8_acc_bytes)
  Blas* blas = nullptr;    // GEMM path
};
size_t linear_q8_acc_bytes(int64_t M, int64_t N);
// Decode: out = silu(g) * u over one row of n (elementwise.cu's bits; out may alias g) AND
// its codes/scale/zp for the next Linear (q8_quantize's bits) in one launch; `sync` is
// q8_silu_mul_sync_bytes() of device memory zeroed once, reused by every launch (one
// launch at a time per buffer).
struct Q8SiluMulCall {
  const float* g = nullptr;
  const float* u = nullptr;
  float* out = nullptr;
  int64_t n = 0;
  Q8Mode mode = Q8Mode::DynamicSymmetric;
  float static_scale = 0;
  int32_t static_zp = 0;
  int8_t* q = nullptr;  // [q8_ldq(n)]
  float* scale = nullptr;
  int32_t* zp = nullptr;
  void* sync = nullptr;
};
constexpr int kQ8SiluMaxBlocks = 256;
size_t q8_silu_mul_sync_bytes();
void q8_silu_mul(const Q8SiluMulCall& c, cudaStream_t stream);
struct LinearQ8Kernels {
  void (*quantize)(const Q8QuantizeCall& c, cudaStream_t stream);
  void (*run)(const Q8LinearCall& c, cudaStream_t stream);
};
void q8_quantize(const Q8QuantizeCall& c, cudaStream_t stream);
void linear_q8(const Q8LinearCall& c, cudaStream_t stream);
void q8_gemv(const Q8LinearCall& c, cudaStream_t stream);  // M <= kGemvMaxM (dp4a)
void q8_gemm(const Q8LinearCall& c, cudaStream_t stream);  // cuBLASLt int8 (dp4a tiles if unsupported)
void q8_row_sums(const int8_t* w, int64_t N, int64_t K, int32_t* out, cudaStream_t stream);

// ------------------------------------------------------------------ elementwise.cu
struct EmbeddingCall {
  const void* table = nullptr;  // [V, D]
  int64_t D = 0;
  const int32_t* ids = nullptr;  // [n], already validated
  int64_t n = 0;
  float* out = nullptr;  // [n, D]
};
using EmbeddingFn = void (*)(const EmbeddingCall& c, cudaStream_t stream);
void embedding_f32w(const EmbeddingCall& c, cudaStream_t stream);
void embedding_f16w(const EmbeddingCall& c, cudaStream_t stream);
void embedding_bf16w(const EmbeddingCall& c, cudaStream_t stream);

// out[r*ldo + i] = silu(g[r*ldg + i]) * u[r*ldg + i]  (out may alias g)
struct SiluMulCall {
  const float* g = nullptr;
  const float* u = nullptr;
  int64_t ldg = 0;
  float* out = nullptr;
  int64_t ldo = 0;
  int64_t rows = 0, n = 0;
};
using SiluMulFn = void (*)(const SiluMulCall& c, cudaStream_t stream);
void silu_mul_f32(const SiluMulCall& c, cudaStream_t stream);
using AddFn = void (*)(float* y, const float* x, int64_t n, cudaStream_t stream);  // y += x
void add_f32(float* y, const float* x, int64_t n, cudaStream_t stream);

// ------------------------------------------------------------------ rmsnorm.cu
struct RmsNormCall {
  const float* x = nullptr;
  int64_t ldx = 0;
  const void* w = nullptr;  // [dim], the kernel's dtype
  float* y = nullptr;       // may alias x
  int64_t ldy = 0;
  int64_t rows = 0, dim = 0;
  float eps = 0;
};
using RmsNormFn = void (*)(const RmsNormCall& c, cudaStream_t stream);
void rmsnorm_f32w(const RmsNormCall& c, cudaStream_t stream);
void rmsnorm_f16w(const RmsNormCall& c, cudaStream_t stream);
void rmsnorm_bf16w(const RmsNormCall& c, cudaStream_t stream);

// ------------------------------------------------------------------ rope.cu
// Rotates q (n_heads) and k (n_kv_heads) heads of T tokens in place, token t at position
// p0 + t (p0 = *p0_dev when p0_dev is set: the decode graph), with the cos/sin table
// [ctx][head_dim/2]; then, when kc is set, writes k and v of token t into the cache
// kc/vc [n_kv_heads][ctx][head_dim] at that position.
struct RopeCall {
  float* q = nullptr;
  float* k = nullptr;
  const float* v = nullptr;
  int64_t ld = 0;  // row stride of q, k and v (the fused qkv buffer)
  int64_t T = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const float* cos = nullptr;
  const float* sin = nullptr;
  float* kc = nullptr;
  float* vc = nullptr;
  int64_t ctx = 0;
  int64_t p0 = 0;
  const int32_t* p0_dev = nullptr;
};
using RopeFn = void (*)(const RopeCall& c, cudaStream_t stream);
void rope_f32(const RopeCall& c, cudaStream_t stream);

// ------------------------------------------------------------------ attention.cu
// Causal GQA attention of T query tokens at positions p0.. over the cache of one layer:
//   out[t, h] = softmax_j<=p0+t(scale * q[t, h] . k[h/rep, j]) . v[h/rep, j]
struct AttentionCall {
  const float* q = nullptr;
  int64_t ldq = 0;  // q[t*ldq + h*head_dim + d]
  const float* kc = nullptr;
  const float* vc = nullptr;  // [n_kv_heads][ctx][head_dim]
  int64_t ctx = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t T = 0, p0 = 0;
  const int32_t* p0_dev = nullptr;
  float scale = 1;
  float* out = nullptr;
  int64_t ldo = 0;
  void* scratch = nullptr;  // attention_scratch_bytes; zero-filled once at allocation
  // Decode (T = 1) with RoPE fused in: when cos/sin are set, q is rotated on the fly and the
  // token's k (rotated) and v rows (k_new, v_new, unrotated as the Linear wrote them) are
  // written to the cache at the position first: rope.cu's arithmetic, bit for bit.
  const float* cos = nullptr;
  const float* sin = nullptr;
  const float* k_new = nullptr;
  const float* v_new = nullptr;
  bool pdl = false;  // programmatic dependent launch (rows kernel, sm_90+)
};
size_t attention_scratch_bytes(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t ctx);
constexpr int64_t kAttentionMaxHeadDim = 256;
using AttentionFn = void (*)(const AttentionCall& c, cudaStream_t stream);
void attention_f32(const AttentionCall& c, cudaStream_t stream);
// The two prefill paths by name (the op checker runs both).
void attention_rows(const AttentionCall& c, cudaStream_t stream);   // any head_dim, split decode
void attention_tiled(const AttentionCall& c, cudaStream_t stream);  // head_dim 64/128, T > 1
bool attention_tiled_supported(int64_t head_dim);

// ------------------------------------------------------------------ sampling.cu
// Index of the largest value (the lowest index among equal maxima; NaN never wins).
void argmax_f32(const float* x, int64_t n, int32_t* out, cudaStream_t stream);
// The k largest (k <= kTopKMax), descending, ties by lower index.
constexpr int kTopKMax = 64;
void topk_f32(const float* x, int64_t n, int k, float* vals, int32_t* ids, cudaStream_t stream);

}  // namespace llrt::cuda
