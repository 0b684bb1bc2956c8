#include "cpu/hooks.h"

namespace llrt {
void register_all_kernels(KernelRegistry& r) {
  kernels::register_ref(r);
  kernels::register_linear_q8_ref(r);
#if LLRT_HAVE_X86_KERNELS
  kernels::register_linear_q8_avx2(r);
  kernels::register_linear_q8_avxvnni(r);
  kernels::register_linear_q8_avx512vnni(r);
  kernels::register_linear_q8_amx(r);
  kernels::register_avx2(r);
  kernels::register_avx512(r);
  kernels::register_avx512bf16(r);
  kernels::register_amx(r);
#endif
}
}  // namespace llrt
