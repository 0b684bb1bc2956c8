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
#if LLRT_HAVE_ARM_KERNELS
  kernels::register_neon(r);
  kernels::register_linear_q8_neondot(r);
  kernels::register_linear_bf16_neonbf16(r);
  kernels::register_linear_q8_neoni8mm(r);
#endif
  // Backend::Cuda entries: added by the CUDA module when it loads (src/engine/cuda/cuda_loader.cpp).
}
}  // namespace llrt
