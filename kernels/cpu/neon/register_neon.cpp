// Registers every plain-NEON kernel (one function per op-family file). The feature levels
// above (neon_dotprod, neon_bf16, neon_i8mm) are separate libraries with their own -march
// flags, registered from kernels/register.cpp.
#include "../hooks.h"

namespace llrt::kernels {
void register_linear_neon(KernelRegistry& r);
void register_elementwise_neon(KernelRegistry& r);
void register_attention_neon(KernelRegistry& r);
void register_linear_q8_neon(KernelRegistry& r);

void register_neon(KernelRegistry& r) {
  register_linear_neon(r);
  register_elementwise_neon(r);
  register_attention_neon(r);
  register_linear_q8_neon(r);
}
}  // namespace llrt::kernels
