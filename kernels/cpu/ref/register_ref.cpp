#include "../hooks.h"

namespace llrt::kernels {
void register_linear_ref(KernelRegistry& r);
void register_elementwise_ref(KernelRegistry& r);
void register_ref(KernelRegistry& r) {
  register_linear_ref(r);
  register_elementwise_ref(r);
}
}  // namespace llrt::kernels
