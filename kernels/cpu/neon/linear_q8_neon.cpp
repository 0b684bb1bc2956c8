// I8 Linear (w8a8) on plain NEON (any ARMv8 core, no FEAT_DotProd): widening multiplies.
//
// Math, layout, blocking: linear_q8_neon.h (exact int32 sums, bit-identical to Ref).
// Inner product: SMULL / SMULL2 multiply 8 + 8 int8 pairs into int16 (|w q| <= 128 * 128 =
// 16384 fits; no pair is summed in 16 bits, where -128 * -128 * 2 would overflow), then SADALP
// adds adjacent int16 products into the int32 lanes. Exact for every code, asymmetric included.
#include "linear_q8_neon.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
struct NeonMull {
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
  }
};
const LinearKernel k_neon{q8_prep_bytes<int8_t>, q8_prep<int8_t>, q8n_run<NeonMull>, true};
}  // namespace

void register_linear_q8_neon(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::Neon, "linear_i8w_f32a__neon", &k_neon});
}
}  // namespace llrt::kernels
