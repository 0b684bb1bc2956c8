// Per-ISA registration hooks. Each is defined in a library compiled with that ISA's
// flags (kernels/meson.build) and only adds its entries; selection happens in the
// registry using CPUID/XGETBV and LLRT_ISA.
#pragma once
#include "src/engine/kernels.h"

namespace llrt::kernels {
void register_ref(KernelRegistry& r);
void register_linear_q8_ref(KernelRegistry& r);  // w8a8 I8 Linear (kernels/cpu/*/linear_q8_*.cpp)
#if LLRT_HAVE_X86_KERNELS
void register_linear_q8_avx2(KernelRegistry& r);
void register_linear_q8_avxvnni(KernelRegistry& r);
void register_linear_q8_avx512vnni(KernelRegistry& r);
void register_linear_q8_amx(KernelRegistry& r);
void register_avx2(KernelRegistry& r);
void register_avx512(KernelRegistry& r);
void register_avx512bf16(KernelRegistry& r);
void register_amx(KernelRegistry& r);
#endif
#if LLRT_HAVE_ARM_KERNELS
void register_neon(KernelRegistry& r);                  // kernels/cpu/neon/
void register_linear_q8_neondot(KernelRegistry& r);     // kernels/cpu/neon_dotprod/
void register_linear_bf16_neonbf16(KernelRegistry& r);  // kernels/cpu/neon_bf16/
void register_linear_q8_neoni8mm(KernelRegistry& r);    // kernels/cpu/neon_i8mm/
#endif
}  // namespace llrt::kernels
