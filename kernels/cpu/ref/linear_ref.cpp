// Reference (scalar) linear kernels: the oracle for every SIMD variant.
//
// Math:     y[m, n] = sum_k x[m, k] * W[n, k]
// Layout:   W row-major [N, K] in its stored dtype (F32 / F16 / BF16); x, y F32.
// Rounding: each weight widened exactly to F32; products and the running sum in
//           F64, rounded once to F32 at the end. This is the most exact answer the
//           SIMD kernels (F32 accumulation) are compared against.
#include "../hooks.h"
#include "load.h"

namespace llrt::kernels {
namespace {
template <class L>
void linear_run(const LinearArgs& a) {
  for (int64_t m = 0; m < a.M; ++m) {
    const float* x = a.x + m * a.ldx;
    for (int64_t n = a.n0; n < a.n1; ++n) {
      double s = 0;
      for (int64_t k = 0; k < a.K; ++k) s += double(x[k]) * double(L::at(a.w.data, n * a.K + k));
      a.y[m * a.ldy + n] = float(s);
    }
  }
}
const LinearKernel k_f32{nullptr, nullptr, linear_run<ref::LoadF32>};
const LinearKernel k_f16{nullptr, nullptr, linear_run<ref::LoadF16>};
const LinearKernel k_bf16{nullptr, nullptr, linear_run<ref::LoadBF16>};
}  // namespace

void register_linear_ref(KernelRegistry& r) {
  r.add({Op::Linear, DType::F32, DType::F32, Backend::Ref, "linear_f32w_f32a__ref", &k_f32});
  r.add({Op::Linear, DType::F16, DType::F32, Backend::Ref, "linear_f16w_f32a__ref", &k_f16});
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Ref, "linear_bf16w_f32a__ref", &k_bf16});
}
}  // namespace llrt::kernels
