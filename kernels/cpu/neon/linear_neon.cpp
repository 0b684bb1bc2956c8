// Linear (F32 / F16 / BF16 weights, F32 activations) for aarch64 NEON (every ARMv8 core).
//
// Math:     y[m, n] = sum_k x[m, k] * W[n, k]  for m < M, n in [n0, n1)
// Layout:   W row-major [N, K] in the stored dtype, used in place; x [M, ldx] F32,
//           y [M, ldy] F32. No prep, but for BF16 at M == 1 (the even/odd order below).
// Rounding: weights widened exactly to F32 (FCVTL for F16, << 16 for BF16, or for BF16 decode
//           the even/odd split of common/linear_bf16_evenodd.h); products fused (FMLA) into
//           F32 accumulators (4 lanes, lane = k mod 4; BF16 decode k mod 8 in two halves);
//           lanes summed in F32 (FADDP); K blocks summed into y in F32 (common/linear_blocked.h).
//           M >= 8: the broadcast form of common/linear_packed.h (W panels widened and
//           transposed per call, one F32 FMA per product, K blocks of 256 summed into y).
// Blocking: decode (M == 1) 4 rows x 2 accumulators; 2..7 tokens: micro-tile 4 rows x 4 tokens
//           (16 accumulators + 4 weight vectors + 1 activation of the 32 v-registers);
//           M >= 8: 8 tokens x 2 vectors (16 accumulators).
#include "isa_neon.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_packed.h"
#include "kernels/cpu/common/linear_bf16_evenodd.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 4, kMR = 4, kNRD = 4;
constexpr int kPackNV = 2, kPackMR = 8;

template <class W>
void linear_run_neon(const LinearArgs& a) {
  if (a.M >= kPackedMinM)
    linear_packed<IsaNeon, W, kPackNV, kPackMR>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else
    linear_blocked<FmaPolicy<IsaNeon, W>, kNR, kMR, kNRD>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1,
                                                         a.y, a.ldy);
}
const LinearKernel linear_f32w_f32a__neon{nullptr, nullptr, &linear_run_neon<float>};
const LinearKernel linear_f16w_f32a__neon{nullptr, nullptr, &linear_run_neon<f16_t>};
const LinearKernel linear_bf16w_f32a__neon{&bf16_linear_prep_bytes<IsaNeon>, &bf16_linear_prep<IsaNeon>,
                                          &bf16_linear_run<IsaNeon, kNR, kMR, kNRD, kPackNV, kPackMR>};
}  // namespace

void register_linear_neon(KernelRegistry& r) {
  r.add({Op::Linear, DType::F32, DType::F32, Backend::Neon, "linear_f32w_f32a__neon", &linear_f32w_f32a__neon});
  r.add({Op::Linear, DType::F16, DType::F32, Backend::Neon, "linear_f16w_f32a__neon", &linear_f16w_f32a__neon});
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Neon, "linear_bf16w_f32a__neon", &linear_bf16w_f32a__neon});
}
}  // namespace llrt::kernels
