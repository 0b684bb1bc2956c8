// RMSNorm over rows: y[r, i] = x[r, i] * (1 / sqrt(mean_i(x[r, i]^2) + eps)) * w[i].
//
// Layout:   x [rows, ldx] F32, y [rows, ldy] F32 (may alias x), w [dim] in its stored
//           dtype (F32 / F16 / BF16). One block of 256 threads per row.
// Rounding: the reference's contract: the sum of squares in F64 (per-thread partial
//           sums, then a fixed-order tree), inv = 1 / sqrt(ss / dim + eps) in F64, and
//           y = float(double(x) * inv * double(w)), rounded once. Only the summation order
//           differs from the reference (F64, so the F32 result is almost always
//           identical). FP64 work is dim multiply-adds per row: negligible next to the
//           Linear that follows.
#include "fused_math.cuh"

namespace llrt::cuda {
namespace {

template <class W>
__global__ void __launch_bounds__(kRowThreads) rmsnorm_k(const float* x, int64_t ldx, const typename W::T* __restrict__ w,
                                                         float* y, int64_t ldy, int64_t dim, float eps) {
  const int64_t r = blockIdx.x;
  const float* xr = x + r * ldx;
  const double inv = block_rms_inv(xr, dim, eps);  // fused_math.cuh (shared with the fused decode GEMV)
  float* yr = y + r * ldy;
  for (int64_t i = threadIdx.x; i < dim; i += kRowThreads) yr[i] = rms_apply(xr[i], inv, widen(W{}, w[i]));
}

template <class W>
void rmsnorm_t(const RmsNormCall& c, cudaStream_t s) {
  if (c.rows <= 0) return;
  rmsnorm_k<W><<<unsigned(c.rows), kRowThreads, 0, s>>>(c.x, c.ldx, static_cast<const typename W::T*>(c.w), c.y, c.ldy, c.dim,
                                                c.eps);
  check_launch("rmsnorm");
}

}  // namespace

void rmsnorm_f32w(const RmsNormCall& c, cudaStream_t s) { rmsnorm_t<WF32>(c, s); }
void rmsnorm_f16w(const RmsNormCall& c, cudaStream_t s) { rmsnorm_t<WF16>(c, s); }
void rmsnorm_bf16w(const RmsNormCall& c, cudaStream_t s) { rmsnorm_t<WBF16>(c, s); }

}  // namespace llrt::cuda
