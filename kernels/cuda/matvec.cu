// Decode GEMV for F32 / F16 / BF16 weights: y[m, n] (+)= sum_k x[m, k] * W[n, k], M <= 8.
//
// Math:     one warp per output row n; every lane sums its share of k for all M tokens.
// Layout:   W row-major [N, K] in its stored dtype (read once per call: streaming loads
//           that do not allocate in L1); x [M, ldx] F32 (re-read by every warp: L1/L2
//           hits); y [M, ldy] F32. 8 warps (8 rows) per block.
// Vector path (K * sizeof(W) a multiple of 16, W and x 16-byte aligned, ldx % 4 == 0):
//           each lane loads 16 bytes of W per chunk (8 BF16/F16 or 4 F32 weights) and has
//           4 such chunks in flight before using them: 2 KB per warp, enough bytes in
//           flight to run at the memory-bandwidth limit. Otherwise a scalar path.
// Rounding: weights widened exactly to F32; per lane one F32 FMA chain over its chunks
//           (chunk c goes to lane c % 32), then a butterfly sum over the 32 lanes in F32;
//           with `accumulate` one more F32 add (y + dot), as the CPU engine's x += xb.
//           No F64 anywhere: the op checker bounds the difference to the F64 reference by
//           8 sqrt(K/8 + 32) u sum|x w|.
#include "common.cuh"

namespace llrt::cuda {
namespace {

constexpr int kRowsPerBlock = 8;
constexpr int kUnroll = 4;

template <class W, int MT>
__global__ void __launch_bounds__(256) gemv_vec(const typename W::T* __restrict__ w, int64_t N, int64_t K,
                                                const float* __restrict__ x, int64_t ldx, float* y, int64_t ldy,
                                                int M, bool accumulate) {
  constexpr int E = Chunk<W>::n;
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  const int64_t nch = K / E;
  const uint4* wr = reinterpret_cast<const uint4*>(w + n * K);
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  for (int64_t c0 = lane; c0 < nch; c0 += 32 * kUnroll) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      wv[u] = c < nch ? __ldcs(wr + c) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = c0 + u * 32;
      if (c < nch) {
        float wf[E];
        widen_chunk(W{}, wv[u], wf);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          if (m < M) {
            const float4* xp = reinterpret_cast<const float4*>(x + m * ldx + c * E);
#pragma unroll
            for (int e = 0; e < E / 4; ++e) {
              const float4 xv = __ldg(xp + e);
              acc[m] = fmaf(wf[4 * e + 0], xv.x, acc[m]);
              acc[m] = fmaf(wf[4 * e + 1], xv.y, acc[m]);
              acc[m] = fmaf(wf[4 * e + 2], xv.z, acc[m]);
              acc[m] = fmaf(wf[4 * e + 3], xv.w, acc[m]);
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0 && m < M) {
      float* yp = y + m * ldy + n;
      *yp = accumulate ? *yp + s : s;
    }
  }
}

// Any alignment, any K: element loads, same summation scheme (k % 32 per lane).
template <class W>
__global__ void __launch_bounds__(256) gemv_any(const typename W::T* __restrict__ w, int64_t N, int64_t K,
                                                const float* __restrict__ x, int64_t ldx, float* y, int64_t ldy,
                                                int M, bool accumulate) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  float acc[kGemvMaxM];
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) acc[m] = 0.0f;
  for (int64_t k = lane; k < K; k += 32) {
    const float wf = widen(W{}, w[n * K + k]);
#pragma unroll
    for (int m = 0; m < kGemvMaxM; ++m)
      if (m < M) acc[m] = fmaf(wf, x[m * ldx + k], acc[m]);
  }
#pragma unroll
  for (int m = 0; m < kGemvMaxM; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0 && m < M) {
      float* yp = y + m * ldy + n;
      *yp = accumulate ? *yp + s : s;
    }
  }
}

template <class W>
void gemv_t(const LinearCall& c, cudaStream_t s) {
  if (c.M < 1 || c.M > kGemvMaxM) check(cudaErrorInvalidValue, "gemv: M outside [1, 8]");
  if (c.N == 0) return;
  using T = typename W::T;
  const T* w = static_cast<const T*>(c.w);
  const dim3 grid(unsigned(ceil_div(c.N, kRowsPerBlock))), block(256);
  const int M = int(c.M);
  const bool vec = (c.K * int64_t(sizeof(T))) % 16 == 0 && aligned16(c.w) && aligned16(c.x) && c.ldx % 4 == 0;
  if (!vec) {
    gemv_any<W><<<grid, block, 0, s>>>(w, c.N, c.K, c.x, c.ldx, c.y, c.ldy, M, c.accumulate);
  } else if (M == 1) {
    gemv_vec<W, 1><<<grid, block, 0, s>>>(w, c.N, c.K, c.x, c.ldx, c.y, c.ldy, M, c.accumulate);
  } else if (M <= 4) {
    gemv_vec<W, 4><<<grid, block, 0, s>>>(w, c.N, c.K, c.x, c.ldx, c.y, c.ldy, M, c.accumulate);
  } else {
    gemv_vec<W, 8><<<grid, block, 0, s>>>(w, c.N, c.K, c.x, c.ldx, c.y, c.ldy, M, c.accumulate);
  }
  check_launch("gemv");
}

}  // namespace

void gemv(DType w, const LinearCall& c, cudaStream_t s) {
  switch (w) {
    case DType::F32: return gemv_t<WF32>(c, s);
    case DType::F16: return gemv_t<WF16>(c, s);
    case DType::BF16: return gemv_t<WBF16>(c, s);
    default: check(cudaErrorInvalidValue, "gemv: weight dtype must be F32, F16 or BF16");
  }
}

namespace {
void linear_any(DType w, const LinearCall& c, cudaStream_t s) {
  if (c.M <= 0) return;
  if (c.M <= kGemvMaxM) gemv(w, c, s);
  else gemm(w, c, s);
}
}  // namespace

void linear_f32w(const LinearCall& c, cudaStream_t s) { linear_any(DType::F32, c, s); }
void linear_f16w(const LinearCall& c, cudaStream_t s) { linear_any(DType::F16, c, s); }
void linear_bf16w(const LinearCall& c, cudaStream_t s) { linear_any(DType::BF16, c, s); }

}  // namespace llrt::cuda
