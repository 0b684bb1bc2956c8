// Registers every AVX512_BF16 kernel (one function per op-family file).
#include "../hooks.h"

namespace llrt::kernels {
void register_linear_bf16_avx512bf16(KernelRegistry& r);

void register_avx512bf16(KernelRegistry& r) { register_linear_bf16_avx512bf16(r); }
}  // namespace llrt::kernels
