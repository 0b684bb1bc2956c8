// Registers every AVX2 + FMA + F16C kernel (one function per op-family file).
#include "../hooks.h"

namespace llrt::kernels {
void register_linear_avx2(KernelRegistry& r);
void register_elementwise_avx2(KernelRegistry& r);
void register_attention_avx2(KernelRegistry& r);

void register_avx2(KernelRegistry& r) {
  register_linear_avx2(r);
  register_elementwise_avx2(r);
  register_attention_avx2(r);
}
}  // namespace llrt::kernels
