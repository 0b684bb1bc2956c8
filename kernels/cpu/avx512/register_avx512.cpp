// Registers every AVX-512 (F/BW/VL/DQ) kernel (one function per op-family file).
#include "../hooks.h"

namespace llrt::kernels {
void register_linear_avx512(KernelRegistry& r);
void register_elementwise_avx512(KernelRegistry& r);
void register_attention_avx512(KernelRegistry& r);

void register_avx512(KernelRegistry& r) {
  register_linear_avx512(r);
  register_elementwise_avx512(r);
  register_attention_avx512(r);
}
}  // namespace llrt::kernels
