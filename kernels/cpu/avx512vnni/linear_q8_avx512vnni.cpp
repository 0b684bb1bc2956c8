// I8 Linear (w8a8) with AVX512-VNNI: the kernel entry. The math, layout and rounding
// contract are at the top of linear_q8_vnni512.h.
#include "../hooks.h"
#include "linear_q8_vnni512.h"

namespace llrt::kernels {
namespace {

void linear_q8_run_avx512vnni(const LinearArgs& a) { q8_vnni512_run(a, Q8Prep<int8_t>::at(a.xp, a.M, a.K)); }

const LinearKernel k_avx512vnni{q8_prep_bytes<int8_t>, q8_prep<int8_t>, linear_q8_run_avx512vnni, true};

}  // namespace

void register_linear_q8_avx512vnni(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::Avx512Vnni, "linear_i8w_f32a__avx512_vnni",
         &k_avx512vnni});
}
}  // namespace llrt::kernels
