// w8a8 (compressed-tensors int8) on the GPU: dynamic/static activation quantization, the
// int8 GEMV for decode (dp4a) and the int8 GEMM for prefill (cuBLASLt IMMA).
//
// Arithmetic: exactly include/llrt/quant.h's, so outputs are BIT-IDENTICAL to the CPU
// reference kernel (kernels/cpu/ref/linear_q8_ref.cpp); the op checker requires it.
//   quantize, per token m (every step one IEEE F32 operation, as in
//   kernels/cpu/common/linear_q8.h; division and rint are correctly rounded in CUDA
//   without --use_fast_math, and the products use __fmul_rn so nothing is contracted):
//     any Inf/NaN in the row   s = NaN, zp = 0, codes 0 (the outputs become NaN)
//     dynamic symmetric        a = max|x|; s = a / 127; mul = a > 0 ? min(127 / a, FLT_MAX) : 0;
//                              q = clamp(rint(x * mul), -128, 127)
//     dynamic asymmetric       lo = min(min x, 0); hi = max(max x, 0); s = (hi - lo) / 255;
//                              zp = clamp(rint(-128 - lo / s)); q = clamp(rint(x / s) + zp)
//     static                   s, zp given; q = clamp(rint(x / s) + zp)
//     s not > 0 (zero token)   codes 0
//   matmul: acc = sum_k q[m,k] w[n,k] - zp[m] * sum_k w[n,k]   exact integers (the
//     row sums are precomputed on the device once, q8_row_sums)
//   output: y = (float(acc) * s[m]) * w_scale[n], two F32 roundings; with accumulate
//     y = y_old + that (one more F32 add, the fused residual).
// Layout: W int8 [N, K] as stored; codes [M, ldq] with ldq = K rounded up to 16 and the
//   pad written as 0; s [M] F32; zp [M] int32.
// Decode GEMV: one warp per output row, 16 bytes of W and of each token's codes per lane
//   and chunk, 4 x dp4a (sm_61+); 4 chunks in flight per lane.
// SiLU*up + quantization (decode, q8_silu_mul): out = silu(g) * u as elementwise.cu, and
//   the codes of out as quantize above, in ONE launch: each block takes a slice, publishes
//   its (max |h|, min, max, any Inf/NaN) and waits at a grid barrier; then every block
//   derives the same parameters (max/min are order-free, so the bits equal q8_quantize's)
//   and codes its slice. The barrier needs every block resident: the grid is at most one
//   block per SM of 256 threads, and nothing else runs on the stream meanwhile.
// Prefill GEMM: cuBLASLt int8 x int8 -> int32 (CUBLAS_COMPUTE_32I, the "TN" layout the
//   int8 tensor-core kernels take), then an epilogue kernel. Where cuBLASLt offers no
//   algorithm for the shape (K not a multiple of 4, odd alignment), the dp4a GEMV runs
//   over groups of 8 tokens instead: same integers, same outputs.
#include <cublasLt.h>

#include <cfloat>
#include <string>

#include "fused_math.cuh"
#include "llrt/error.h"

namespace llrt::cuda {

cublasLtHandle_t blas_lt(Blas* b, void** ws, size_t* ws_bytes);  // gemm.cu

namespace {

__global__ void __launch_bounds__(kRowThreads) quantize_rows(const float* __restrict__ x, int64_t ldx, int64_t K, int mode,
                                                             float static_scale, int32_t static_zp, int8_t* q, int64_t ldq,
                                                             float* scale_out, int32_t* zp_out) {
  const int64_t m = blockIdx.x;
  const float* xr = x + m * ldx;
  const Q8Params p = block_q8_params(xr, K, mode, static_scale, static_zp);  // fused_math.cuh
  if (threadIdx.x == 0) scale_out[m] = p.s, zp_out[m] = p.zp;
  int8_t* qr = q + m * ldq;
  for (int64_t k = threadIdx.x; k < ldq; k += kRowThreads) qr[k] = k < K ? q8_code(xr[k], p) : int8_t(0);
}


struct Epi {
  const void* w_scale;
  int ws_dtype;
  bool per_channel;
  const int32_t* rowsum;
  const float* scale;
  const int32_t* zp;
  bool accumulate;
};

__device__ __forceinline__ void epilogue(const Epi& e, int32_t qw, int64_t m, int64_t n, float* yp) {
  const float v = q8_out(qw, e.zp[m], e.rowsum ? e.rowsum[n] : 0, e.scale[m], load_any(e.w_scale, e.ws_dtype, e.per_channel ? n : 0));
  *yp = e.accumulate ? __fadd_rn(*yp, v) : v;
}

constexpr int kRowsPerBlock = 8;
constexpr int kUnroll = 4;

template <int MT>
__global__ void __launch_bounds__(256) q8_gemv_vec(const int8_t* __restrict__ w, int64_t N, int64_t K,
                                                   const int8_t* __restrict__ q, int64_t ldq, int M, float* y,
                                                   int64_t ldy, Epi e) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  const int64_t nch = K / 16;
  const int4* wr = reinterpret_cast<const int4*>(w + n * K);
  int32_t acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0;
  for (int64_t c0 = lane; c0 < nch; c0 += 32 * kUnroll) {
    int4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      wv[u] = c < nch ? __ldcs(wr + c) : make_int4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      if (c < nch) {
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          if (m < M) {
            const int4 xv = __ldg(reinterpret_cast<const int4*>(q + m * ldq) + c);
            acc[m] = __dp4a(wv[u].x, xv.x, acc[m]);
            acc[m] = __dp4a(wv[u].y, xv.y, acc[m]);
            acc[m] = __dp4a(wv[u].z, xv.z, acc[m]);
            acc[m] = __dp4a(wv[u].w, xv.w, acc[m]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const int32_t s = warp_sum_i(acc[m]);
    if (lane == 0 && m < M) epilogue(e, s, m, n, y + m * ldy + n);
  }
}

__global__ void __launch_bounds__(256) q8_gemv_any(const int8_t* __restrict__ w, int64_t N, int64_t K,
                                                   const int8_t* __restrict__ q, int64_t ldq, int M, float* y,
                                                   int64_t ldy, Epi e) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  int32_t acc[kGemvMaxM];
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) acc[m] = 0;
  for (int64_t k = lane; k < K; k += 32) {
    const int32_t wk = w[n * K + k];
#pragma unroll
    for (int m = 0; m < kGemvMaxM; ++m)
      if (m < M) acc[m] += wk * int32_t(q[m * ldq + k]);
  }
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) {
    const int32_t s = warp_sum_i(acc[m]);
    if (lane == 0 && m < M) epilogue(e, s, m, n, y + m * ldy + n);
  }
}

__global__ void q8_epilogue_k(const int32_t* __restrict__ acc, int64_t M, int64_t N, float* y, int64_t ldy, Epi e) {
  const int64_t m = blockIdx.y;
  for (int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x)
    epilogue(e, acc[m * N + n], m, n, y + m * ldy + n);
  (void)M;
}

__global__ void row_sums_k(const int8_t* __restrict__ w, int64_t N, int64_t K, int32_t* out) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  int32_t s = 0;
  for (int64_t k = lane; k < K; k += 32) s += w[n * K + k];
  s = warp_sum_i(s);
  if (lane == 0) out[n] = s;
}

// ---- SiLU*up quantized in one launch (grid barrier; see the top of the file)
struct SiluSync {
  unsigned arrived, generation;
  float4 part[kQ8SiluMaxBlocks];  // per block: max |h|, min(h, 0), max(h, 0), any Inf/NaN
};

// All blocks of the grid meet here (sense by generation: reusable launch after launch, and
// inside graph replays, with no reset). Thread 0 of each block arrives; the last one opens.
__device__ __forceinline__ void grid_barrier(SiluSync* sy) {
  __syncthreads();
  if (threadIdx.x == 0) {
    volatile unsigned* gen = &sy->generation;
    const unsigned g0 = *gen;
    __threadfence();  // this block's partial is visible before it arrives
    if (atomicAdd(&sy->arrived, 1u) == gridDim.x - 1) {
      sy->arrived = 0;
      __threadfence();
      atomicAdd(&sy->generation, 1u);
    } else {
      while (*gen == g0) __nanosleep(64);
    }
    __threadfence();
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kRowThreads) silu_mul_q8_k(const float* g, const float* u, float* out, int64_t n, int64_t ldq,
                                                             int mode, float static_scale, int32_t static_zp, int8_t* q,
                                                             float* scale_out, int32_t* zp_out, SiluSync* sy) {
  __shared__ Q8Params s_p;
  const int64_t stride = int64_t(gridDim.x) * kRowThreads;
  Q8Stats st;
  constexpr int U = 4;  // loads in flight per thread
  int64_t i = int64_t(blockIdx.x) * kRowThreads + threadIdx.x;
  for (; i + (U - 1) * stride < n; i += U * stride) {
    float gv[U], uv[U];
#pragma unroll
    for (int j = 0; j < U; ++j) gv[j] = g[i + j * stride], uv[j] = u[i + j * stride];
#pragma unroll
    for (int j = 0; j < U; ++j) {
      const float h = silu_mul_one(gv[j], uv[j]);
      out[i + j * stride] = h;
      st.take(h);
    }
  }
  for (; i < n; i += stride) {
    const float h = silu_mul_one(g[i], u[i]);
    out[i] = h;
    st.take(h);
  }
  st = block_reduce_q8_stats(st);
  if (threadIdx.x == 0) sy->part[blockIdx.x] = make_float4(st.amax, st.lo, st.hi, st.bad ? 1.0f : 0.0f);
  grid_barrier(sy);
  if (threadIdx.x == 0) {
    Q8Stats all;
    for (unsigned b = 0; b < gridDim.x; ++b) {
      const float4 p = __ldcg(&sy->part[b]);  // written by other SMs: read past L1
      all.merge(Q8Stats{p.x, p.y, p.z, p.w != 0.0f});
    }
    s_p = q8_params_of(all.amax, all.lo, all.hi, all.bad, mode, static_scale, static_zp);
    if (blockIdx.x == 0) scale_out[0] = s_p.s, zp_out[0] = s_p.zp;
  }
  __syncthreads();
  const Q8Params p = s_p;
  // The codes of this thread's own elements (it wrote them: program order), pad as 0.
  for (int64_t k = int64_t(blockIdx.x) * kRowThreads + threadIdx.x; k < ldq; k += stride)
    q[k] = k < n ? q8_code(out[k], p) : int8_t(0);
}

Epi epi_of(const Q8LinearCall& c) {
  return Epi{c.w_scale, int(c.w_scale_dtype), c.per_channel, c.w_rowsum, c.scale, c.zp, c.accumulate};
}

void check_lt(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    fail(ErrorCode::Cuda, std::string("cuBLASLt: ") + what + " failed: " + cublasGetStatusString(st));
}

// cuBLASLt int8 product into c.acc; false when cuBLASLt has no algorithm for the shape.
bool lt_int8(const Q8LinearCall& c, cudaStream_t s) {
  if (c.K % 4 != 0 || !aligned16(c.w) || !aligned16(c.q)) return false;
  void* ws = nullptr;
  size_t wsb = 0;
  cublasLtHandle_t lt = blas_lt(c.blas, &ws, &wsb);
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  bool ok = false;
  try {
    check_lt(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I), "MatmulDescCreate");
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "TRANSA");
    check_lt(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "TRANSB");
    check_lt(cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, uint64_t(c.K), uint64_t(c.N), c.K), "layout W");
    check_lt(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, uint64_t(c.K), uint64_t(c.M), q8_ldq(c.K)), "layout x");
    check_lt(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, uint64_t(c.N), uint64_t(c.M), c.N), "layout acc");
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb),
             "workspace");
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found);
    if (hs == CUBLAS_STATUS_SUCCESS && found > 0) {
      const int32_t alpha = 1, beta = 0;
      check_lt(cublasLtMatmul(lt, op, &alpha, c.w, la, c.q, lb, &beta, c.acc, lc, c.acc, lc, &res.algo, ws, wsb, s),
               "Matmul (int8)");
      ok = true;
    }
  } catch (...) {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    throw;
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatmulDescDestroy(op);
  return ok;
}

}  // namespace

void q8_quantize(const Q8QuantizeCall& c, cudaStream_t s) {
  if (c.M <= 0) return;
  quantize_rows<<<unsigned(c.M), kRowThreads, 0, s>>>(c.x, c.ldx, c.K, int(c.mode), c.static_scale, c.static_zp, c.q,
                                              q8_ldq(c.K), c.scale, c.zp);
  check_launch("q8_quantize");
}

size_t q8_silu_mul_sync_bytes() { return sizeof(SiluSync); }

void q8_silu_mul(const Q8SiluMulCall& c, cudaStream_t s) {
  if (c.n <= 0) return;
  static const int sms = [] {
    int dev = 0, x = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&x, cudaDevAttrMultiProcessorCount, dev);
    return x;
  }();
  // Four elements per thread when the row allows; never more blocks than SMs (all resident
  // for the barrier) nor than the partials array holds.
  const int64_t blocks = std::clamp<int64_t>(ceil_div(c.n, int64_t(kRowThreads) * 4), 1,
                                             std::min<int64_t>(std::max(sms, 1), kQ8SiluMaxBlocks));
  silu_mul_q8_k<<<unsigned(blocks), kRowThreads, 0, s>>>(c.g, c.u, c.out, c.n, q8_ldq(c.n), int(c.mode), c.static_scale,
                                                         c.static_zp, c.q, c.scale, c.zp, static_cast<SiluSync*>(c.sync));
  check_launch("q8_silu_mul");
}

void q8_gemv(const Q8LinearCall& c, cudaStream_t s) {
  if (c.M < 1 || c.M > kGemvMaxM) check(cudaErrorInvalidValue, "q8_gemv: M outside [1, 8]");
  if (c.N == 0) return;
  const dim3 grid(unsigned(ceil_div(c.N, kRowsPerBlock))), block(256);
  const int64_t ldq = q8_ldq(c.K);
  const int M = int(c.M);
  const Epi e = epi_of(c);
  const bool vec = c.K % 16 == 0 && aligned16(c.w) && aligned16(c.q);
  if (!vec) q8_gemv_any<<<grid, block, 0, s>>>(c.w, c.N, c.K, c.q, ldq, M, c.y, c.ldy, e);
  else if (M == 1) q8_gemv_vec<1><<<grid, block, 0, s>>>(c.w, c.N, c.K, c.q, ldq, M, c.y, c.ldy, e);
  else if (M <= 4) q8_gemv_vec<4><<<grid, block, 0, s>>>(c.w, c.N, c.K, c.q, ldq, M, c.y, c.ldy, e);
  else q8_gemv_vec<8><<<grid, block, 0, s>>>(c.w, c.N, c.K, c.q, ldq, M, c.y, c.ldy, e);
  check_launch("q8_gemv");
}

size_t linear_q8_acc_bytes(int64_t M, int64_t N) { return M <= kGemvMaxM ? 0 : size_t(M) * size_t(N) * 4; }

void q8_gemm(const Q8LinearCall& c, cudaStream_t s) {
  if (c.M <= 0 || c.N <= 0) return;
  if (c.blas && c.acc && lt_int8(c, s)) {
    const dim3 grid(unsigned(std::min<int64_t>(ceil_div(c.N, 256), 64)), unsigned(c.M));
    q8_epilogue_k<<<grid, 256, 0, s>>>(c.acc, c.M, c.N, c.y, c.ldy, epi_of(c));
    check_launch("q8_epilogue");
    return;
  }
  const int64_t ldq = q8_ldq(c.K);
  for (int64_t m0 = 0; m0 < c.M; m0 += kGemvMaxM) {
    Q8LinearCall g = c;
    g.M = std::min<int64_t>(kGemvMaxM, c.M - m0);
    g.q = c.q + m0 * ldq;
    g.scale = c.scale + m0;
    g.zp = c.zp + m0;
    g.y = c.y + m0 * c.ldy;
    q8_gemv(g, s);
  }
}

void linear_q8(const Q8LinearCall& c, cudaStream_t s) {
  if (c.M <= 0) return;
  if (c.M <= kGemvMaxM) q8_gemv(c, s);
  else q8_gemm(c, s);
}

void q8_row_sums(const int8_t* w, int64_t N, int64_t K, int32_t* out, cudaStream_t s) {
  if (N <= 0) return;
  row_sums_k<<<unsigned(ceil_div(N, kRowsPerBlock)), 256, 0, s>>>(w, N, K, out);
  check_launch("q8_row_sums");
}

}  // namespace llrt::cuda
