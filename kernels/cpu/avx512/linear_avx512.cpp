// Linear (F32 / F16 / BF16 weights, F32 activations) for AVX-512 (F/BW/VL/DQ).
//
// Math:     y[m, n] = sum_k x[m, k] * W[n, k]  for m < M, n in [n0, n1)
// Layout:   W row-major [N, K] in the stored dtype, used in place; x [M, ldx] F32,
//           y [M, ldy] F32. No prep, but for BF16 at M == 1 (below).
// Rounding: weights widened exactly to F32 (vcvtph2ps / bf16 << 16, or for BF16 decode the
//           even/odd split of common/linear_bf16_evenodd.h); products fused
//           into F32 accumulators (16 lanes, lane = k mod 16); lanes summed in F32; K
//           blocks (an MR-token x-panel in 24 KiB of L1) summed into y in F32 (common/linear_blocked.h).
//           M > 16: the broadcast form of common/linear_packed.h (W panels widened and
//           transposed per call, one F32 FMA per product, K blocks of 256 summed into y).
// Blocking: decode (M == 1) 4 rows x 2 accumulators; 2 <= M <= 16 (batched decode) tiles of
//           2 rows x 8 tokens over the whole K (linear_few: each weight row read once from
//           memory; gate_proj M = 8 on one Sapphire Rapids core 7.7 -> 3.3 ms); prefill micro-tile
//           4 rows x 6 tokens (24 accumulators + 4 weight vectors + 1 activation vector = 29 of 32 zmm).
#include "isa_avx512.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_packed.h"
#include "kernels/cpu/common/linear_bf16_evenodd.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 4, kMR = 6, kNRD = 4;

constexpr int kPackNV = 2, kPackMR = 12;  // broadcast-form tile: 12 tokens x 2 vectors

constexpr int kFewNR = 2, kFewMR = 8, kFewMaxM = 16;  // batched decode: 16 accumulators

template <class W>
void linear_run_avx512(const LinearArgs& a) {
  if (a.M >= 2 && a.M <= kFewMaxM)
    linear_few<FmaPolicy<IsaAvx512, W>, kFewNR, kFewMR>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else if (a.M >= kPackedMinM)
    linear_packed<IsaAvx512, W, kPackNV, kPackMR>(static_cast<const W*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else
    linear_blocked<FmaPolicy<IsaAvx512, W>, kNR, kMR, kNRD>(static_cast<const W*>(a.w.data), a.K, a.x,
                                                        a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
}
const LinearKernel linear_f32w_f32a__avx512{nullptr, nullptr, &linear_run_avx512<float>};
const LinearKernel linear_f16w_f32a__avx512{nullptr, nullptr, &linear_run_avx512<f16_t>};
// BF16: common/linear_bf16_evenodd.h (even/odd decode, the same dot and packed forms as above).
const LinearKernel linear_bf16w_f32a__avx512{&bf16_linear_prep_bytes<IsaAvx512>, &bf16_linear_prep<IsaAvx512>,
                                          &bf16_linear_run<IsaAvx512, kNR, kMR, kNRD, kPackNV, kPackMR, kFewNR, kFewMR, kFewMaxM>};
}  // namespace

void register_linear_avx512(KernelRegistry& r) {
  r.add({Op::Linear, DType::F32, DType::F32, Backend::Avx512, "linear_f32w_f32a__avx512", &linear_f32w_f32a__avx512});
  r.add({Op::Linear, DType::F16, DType::F32, Backend::Avx512, "linear_f16w_f32a__avx512", &linear_f16w_f32a__avx512});
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Avx512, "linear_bf16w_f32a__avx512", &linear_bf16w_f32a__avx512});
}
}  // namespace llrt::kernels
