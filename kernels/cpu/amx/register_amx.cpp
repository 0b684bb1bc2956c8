// Registers every AMX kernel (one function per op-family file). The AMX backend is
// usable only once Linux granted the tile-data permission (llrt/cpu.h).
#include "../hooks.h"

namespace llrt::kernels {
void register_linear_bf16_amx(KernelRegistry& r);
void register_linear_f16_amx(KernelRegistry& r);

void register_amx(KernelRegistry& r) {
  register_linear_bf16_amx(r);
  register_linear_f16_amx(r);
}
}  // namespace llrt::kernels
