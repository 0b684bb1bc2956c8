#include "../hooks.h"

namespace llrt::kernels {
void register_avx512(KernelRegistry& r) {
  (void)r;  // kernels for this ISA are added here
}
}  // namespace llrt::kernels
