// Linear (F32 / F16 / BF16 weights, F32 activations) for AVX2 + FMA + F16C.
//
// Math:     y[m, n] = sum_k x[m, k] * W[n, k]  for m < M, n in [n0, n1)
// Layout:   W row-major [N, K] in the stored dtype, used in place; x [M, ldx] F32,
//           y [M, ldy] F32. No prep, but for BF16 at M == 1 (below).
// Rounding: weights widened exactly to F32 (vcvtph2ps / bf16 << 16, or for BF16 decode the
//           even/odd split of common/linear_bf16_evenodd.h); products fused
//           into F32 accumulators (8 lanes, lane = k mod 8); lanes summed in F32; K
//           blocks (an MR-token x-panel in 24 KiB of L1) summed into y in F32 (common/linear_blocked.h).
//           M > 16: the broadcast form of common/linear_packed.h (W panels widened and
//           transposed per call, one F32 FMA per product, K blocks of 256 summed into y).
// Blocking: decode (M == 1) 4 rows x 2 accumulators; 2 <= M <= 16 (batched decode) tiles of
//           2 rows x 4 tokens over the whole K (linear_few: each weight row read once from
//           memory; gate_proj M = 8 on one Sapphire Rapids core 9.6 -> 4.6 ms); prefill
//           micro-tile 3 rows x 4 tokens (12 accumulators + 3 weight vectors + 1 activation
//           vector = 16 ymm).
#include "isa_avx2.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_packed.h"
#include "kernels/cpu/common/linear_bf16_evenodd.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 3, kMR = 4, kNRD = 4;

constexpr int kPackNV = 2, kPackMR = 6;  // broadcast-form tile: 6 tokens x 2 vectors

constexpr int kFewNR = 2, kFewMR = 4, kFewMaxM = 16;  // batched decode: 8 accumulators of 16 ymm

template <class W>
void linear_run_avx2(const LinearArgs& a) {
  if (a.M >= 2 && a.M <= kFewMaxM)
    linear_few<FmaPolicy<IsaAvx2, W>, kFewNR, kFewMR>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else if (a.M >= kPackedMinM)
    linear_packed<IsaAvx2, W, kPackNV, kPackMR>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else
    linear_blocked<FmaPolicy<IsaAvx2, W>, kNR, kMR, kNRD>(static_cast<const W*>(a.w.data), a.K, a.x,
                                                        a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
}
const LinearKernel linear_f32w_f32a__avx2{nullptr, nullptr, &linear_run_avx2<float>};
const LinearKernel linear_f16w_f32a__avx2{nullptr, nullptr, &linear_run_avx2<f16_t>};
// BF16: common/linear_bf16_evenodd.h (even/odd decode, the same dot and packed forms as above).
const LinearKernel linear_bf16w_f32a__avx2{&bf16_linear_prep_bytes<IsaAvx2>, &bf16_linear_prep<IsaAvx2>,
                                          &bf16_linear_run<IsaAvx2, kNR, kMR, kNRD, kPackNV, kPackMR, kFewNR, kFewMR, kFewMaxM>};
}  // namespace

void register_linear_avx2(KernelRegistry& r) {
  r.add({Op::Linear, DType::F32, DType::F32, Backend::Avx2, "linear_f32w_f32a__avx2", &linear_f32w_f32a__avx2});
  r.add({Op::Linear, DType::F16, DType::F32, Backend::Avx2, "linear_f16w_f32a__avx2", &linear_f16w_f32a__avx2});
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Avx2, "linear_bf16w_f32a__avx2", &linear_bf16w_f32a__avx2});
}
}  // namespace llrt::kernels
