// llrt: what this CPU can run.
//
// Detection: on x86-64, CPUID for the instruction sets and XGETBV for what the OS has
// enabled (AVX needs XMM|YMM state, AVX-512 also opmask|ZMM state, AMX tile state); on
// aarch64, the kernel's getauxval(AT_HWCAP / AT_HWCAP2) bits (the kernel only sets them
// for features it lets user space use).
// LLRT_ISA=<backend name> caps the backends that may be used ("avx2" keeps an
// AVX-512 machine on the AVX2 kernels, "neon" keeps an ARMv8.6 core on the plain NEON
// ones); an unknown value, or a name of the other architecture, is an error, not ignored.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llrt {

struct CpuInfo {
  std::string vendor, model;
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false, avx512_fp16 = false, avx512_vnni = false, avx_vnni = false;
  bool amx_tile = false, amx_bf16 = false, amx_int8 = false;
  bool os_avx = false, os_avx512 = false, os_amx = false;  // XGETBV-enabled state
  // aarch64 (HWCAP / HWCAP2): ASIMD, FEAT_FP16 arithmetic, FEAT_DotProd (SDOT/UDOT),
  // FEAT_BF16 (BFDOT/BFMMLA/BFCVT), FEAT_I8MM (SMMLA/USMMLA), SVE
  bool asimd = false, asimd_fp16 = false, asimd_dotprod = false, arm_bf16 = false, arm_i8mm = false, sve = false;
  int logical_cores = 1, physical_cores = 1;
  uint64_t mem_total_bytes = 0, mem_available_bytes = 0;
};

const CpuInfo& cpu_info();

// Backends, in increasing rank. A backend is usable when the hardware (and OS)
// support it and its rank is <= the LLRT_ISA cap. Ref (scalar) is only chosen when
// asked for explicitly (LLRT_ISA=ref or tests), never as a silent fallback.
enum class Backend : uint8_t {
  Ref = 0,
  Avx2,        // AVX2 + FMA + F16C
  AvxVnni,     // Avx2 + AVX-VNNI
  Avx512,      // AVX-512 F/BW/VL/DQ
  Avx512Vnni,  // Avx512 + AVX512_VNNI
  Avx512Bf16,  // Avx512Vnni + AVX512_BF16
  Amx,         // Avx512Bf16 + AMX tiles (BF16, INT8), OS permission granted
  // aarch64 levels (each the one above plus one feature; x86 levels never usable there,
  // and these never on x86):
  Neon,         // ARMv8 ASIMD (every aarch64 core): F32/F16/BF16 by exact widening
  NeonDotprod,  // Neon + FEAT_DotProd (SDOT: w8a8 int8)
  NeonBf16,     // NeonDotprod + FEAT_BF16 (BFDOT / BFMMLA)
  NeonI8mm,     // NeonBf16 + FEAT_I8MM (SMMLA: w8a8 prefill)
  Cuda,         // the CUDA backend
};
constexpr int kNumBackends = 12;
// The highest CPU backend of this build's architecture (the default LLRT_ISA cap).
#if defined(__aarch64__)
constexpr Backend kTopCpuBackend = Backend::NeonI8mm;
#else
constexpr Backend kTopCpuBackend = Backend::Amx;
#endif
constexpr bool backend_is_arm(Backend b) { return b >= Backend::Neon && b <= Backend::NeonI8mm; }

// Every backend but Cuda runs on the CPU (CPU code may call its entries' functions).
constexpr bool backend_is_cpu(Backend b) { return b != Backend::Cuda; }

const char* backend_name(Backend b);
bool parse_backend(const std::string& s, Backend* out);
bool backend_hw_supported(Backend b);  // hardware + OS only (Cuda: a usable GPU is present)
bool backend_usable(Backend b);        // hw supported and within the LLRT_ISA cap
// Highest CPU backend allowed by LLRT_ISA (read once per process; tests may override).
// LLRT_ISA=none allows no SIMD backend at all (what a CPU without AVX2 gets): models
// fail before loading. LLRT_ISA=ref explicitly selects the scalar reference oracle.
Backend isa_cap();
bool ref_kernels_allowed();  // true only for LLRT_ISA=ref
void set_isa_cap_for_testing(Backend cap, bool allow_ref = true);  // overrides the environment
void reset_isa_cap_for_testing();
// Human-readable: "Intel Xeon ... | AVX2 FMA F16C AVX512F ... | 2 cores"
std::string cpu_summary();
std::vector<std::string> cpu_flag_names();  // the flags present

}  // namespace llrt
