// I8 Linear (w8a8) with FEAT_DotProd (ARMv8.2+ optional, ARMv8.4 mandatory): SDOT.
//
// Math, layout, blocking: kernels/cpu/neon/linear_q8_neon.h (exact int32 sums, bit-identical
// to Ref). Inner product: one SDOT per 16 int8 pairs: lane l += sum of the 4 signed products
// of bytes 4l..4l+3 (|sum| <= 4 * 16384: exact in int32). Signed x signed, so no offset
// correction (unlike x86 VNNI's unsigned x signed vpdpbusd) and -128 codes are exact.
// Compiled with -march=armv8.2-a+dotprod (kernels/meson.build); chosen only where HWCAP_ASIMDDP.
#include "kernels/cpu/neon/linear_q8_neon.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
struct NeonSdot {
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }
};
const LinearKernel k_dot{q8_prep_bytes<int8_t>, q8_prep<int8_t>, q8n_run<NeonSdot>, true};
}  // namespace

void register_linear_q8_neondot(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::NeonDotprod, "linear_i8w_f32a__neondot", &k_dot});
}
}  // namespace llrt::kernels
