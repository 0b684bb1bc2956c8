#include "../hooks.h"

namespace llrt::kernels {
void register_avx512bf16(KernelRegistry& r) {
  (void)r;  // kernels for this ISA are added here
}
}  // namespace llrt::kernels
