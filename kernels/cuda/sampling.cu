// Sampling on the device: argmax (greedy decoding) and top-k over F32 logits.
//
// Order: a total order on (value, index): larger value first, then lower index; NaN is
//   below everything (never chosen while a number exists). argmax is the first element
//   in that order: the same token std::max_element picks on the host for finite logits.
// top-k: k passes of a block-wide arg-max, pass i restricted to the elements after
//   the (i-1)-th winner in the order: exact, no sorting, O(k n) reads of a vector that
//   sits in L2 (k <= 64).
// One block of 1024 threads (a vocabulary is ~10^5 floats: a few microseconds).
#include "common.cuh"

namespace llrt::cuda {
namespace {

struct Best {
  float v;
  int32_t i;
};

// a comes before b in the order.
__device__ __forceinline__ bool before(float av, int32_t ai, float bv, int32_t bi) {
  if (ai < 0) return false;
  if (bi < 0) return true;
  const bool an = av != av, bn = bv != bv;
  if (an != bn) return bn;
  if (!an && av != bv) return av > bv;
  return ai < bi;
}

__device__ Best block_best(Best b) {
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, b.v, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, b.i, o);
    if (before(ov, oi, b.v, b.i)) b.v = ov, b.i = oi;
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sv[w] = b.v, si[w] = b.i;
  __syncthreads();
  if (w == 0) {
    b.v = lane < int(blockDim.x >> 5) ? sv[lane] : 0.0f;
    b.i = lane < int(blockDim.x >> 5) ? si[lane] : -1;
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, b.v, o);
      const int32_t oi = __shfl_xor_sync(0xffffffffu, b.i, o);
      if (before(ov, oi, b.v, b.i)) b.v = ov, b.i = oi;
    }
    if (lane == 0) sv[0] = b.v, si[0] = b.i;
  }
  __syncthreads();
  return Best{sv[0], si[0]};
}

__global__ void __launch_bounds__(1024) topk_k(const float* __restrict__ x, int64_t n, int k, float* vals, int32_t* ids) {
  float pv = 0.0f;
  int32_t pi = -1;  // previous winner (none yet)
  for (int r = 0; r < k; ++r) {
    Best b{0.0f, -1};
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = x[i];
      if (pi >= 0 && !before(pv, pi, v, int32_t(i))) continue;  // not after the previous winner
      if (before(v, int32_t(i), b.v, b.i)) b.v = v, b.i = int32_t(i);
    }
    b = block_best(b);
    if (threadIdx.x == 0) {
      if (vals) vals[r] = b.v;
      ids[r] = b.i;
    }
    pv = b.v;
    pi = b.i;
  }
}

}  // namespace

void argmax_f32(const float* x, int64_t n, int32_t* out, cudaStream_t s) {
  if (n <= 0 || n > INT32_MAX) check(cudaErrorInvalidValue, "argmax: n must be in [1, 2^31)");
  topk_k<<<1, 1024, 0, s>>>(x, n, 1, nullptr, out);
  check_launch("argmax");
}

void topk_f32(const float* x, int64_t n, int k, float* vals, int32_t* ids, cudaStream_t s) {
  if (k < 1 || k > kTopKMax || k > n || n > INT32_MAX) check(cudaErrorInvalidValue, "topk: need 1 <= k <= min(64, n)");
  topk_k<<<1, 1024, 0, s>>>(x, n, k, vals, ids);
  check_launch("topk");
}

}  // namespace llrt::cuda
