#include "src/engine/cpu.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <sys/syscall.h>
#include <unistd.h>

#include "llrt/cuda.h"
#include "llrt/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define LLRT_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define LLRT_ARM64 1
// asm/hwcap.h names (arm64); defined here so an older libc header set still builds.
constexpr unsigned long kHwcapAsimd = 1ul << 1, kHwcapAsimdHp = 1ul << 10, kHwcapAsimdDp = 1ul << 20,
                        kHwcapSve = 1ul << 22;
constexpr unsigned long kHwcap2I8mm = 1ul << 13, kHwcap2Bf16 = 1ul << 14;
#endif

namespace llrt {

namespace {

#ifdef LLRT_X86
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

uint64_t meminfo_kb(const char* key) {
  std::ifstream f("/proc/meminfo");
  std::string k;
  uint64_t v;
  std::string unit;
  while (f >> k >> v) {
    std::getline(f, unit);
    if (k == key) return v;
  }
  return 0;
}

int count_physical_cores() {
  // Unique (physical id, core id) pairs from /proc/cpuinfo.
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  std::set<std::pair<int, int>> cores;
  int phys = 0, core = -1;
  while (std::getline(f, line)) {
    auto val = [&]() { return std::atoi(line.substr(line.find(':') + 1).c_str()); };
    if (line.rfind("physical id", 0) == 0) phys = val();
    else if (line.rfind("core id", 0) == 0) core = val();
    else if (line.empty() && core >= 0) { cores.insert({phys, core}); core = -1; }
  }
  if (core >= 0) cores.insert({phys, core});
  return cores.empty() ? 0 : int(cores.size());
}

CpuInfo detect() {
  CpuInfo c;
#ifdef LLRT_X86
  unsigned r[4];
  cpuid(0, 0, r);
  unsigned max_leaf = r[0];
  char vendor[13];
  std::memcpy(vendor, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  c.vendor = vendor;
  cpuid(1, 0, r);
  bool osxsave = r[2] & (1u << 27);
  c.sse42 = r[2] & (1u << 20);
  c.fma = r[2] & (1u << 12);
  c.f16c = r[2] & (1u << 29);
  c.avx = r[2] & (1u << 28);
  if (osxsave) {
    uint64_t xcr0 = xgetbv0();
    c.os_avx = (xcr0 & 0x6) == 0x6;
    c.os_avx512 = (xcr0 & 0xe6) == 0xe6;
    c.os_amx = (xcr0 & 0x60000) == 0x60000;
  }
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    c.avx2 = r[1] & (1u << 5);
    c.avx512f = r[1] & (1u << 16);
    c.avx512dq = r[1] & (1u << 17);
    c.avx512bw = r[1] & (1u << 30);
    c.avx512vl = r[1] & (1u << 31);
    c.avx512_vnni = r[2] & (1u << 11);
    c.avx512_fp16 = r[3] & (1u << 23);
    c.amx_bf16 = r[3] & (1u << 22);
    c.amx_tile = r[3] & (1u << 24);
    c.amx_int8 = r[3] & (1u << 25);
    cpuid(7, 1, r);
    c.avx_vnni = r[0] & (1u << 4);
    c.avx512_bf16 = r[0] & (1u << 5);
  }
  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    std::string b = brand;
    size_t s = b.find_first_not_of(' ');
    c.model = s == std::string::npos ? "" : b.substr(s);
  }
  // Without OS support the instructions fault: report them as absent.
  if (!c.os_avx) c.avx = c.avx2 = c.fma = c.f16c = c.avx_vnni = false;
  if (!c.os_avx512) c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = c.avx512_bf16 = c.avx512_fp16 = c.avx512_vnni = false;
  if (!c.os_amx) c.amx_tile = c.amx_bf16 = c.amx_int8 = false;
#endif
#ifdef LLRT_ARM64
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  c.asimd = hw & kHwcapAsimd;
  c.asimd_fp16 = hw & kHwcapAsimdHp;
  c.asimd_dotprod = hw & kHwcapAsimdDp;
  c.sve = hw & kHwcapSve;
  c.arm_bf16 = hw2 & kHwcap2Bf16;
  c.arm_i8mm = hw2 & kHwcap2I8mm;
  {  // "CPU implementer" / "CPU part" of /proc/cpuinfo: there is no brand string on ARM
    std::ifstream f("/proc/cpuinfo");
    std::string line, impl, part;
    while (std::getline(f, line)) {
      auto val = [&] { size_t i = line.find(':'); return i == std::string::npos ? std::string() : line.substr(i + 2); };
      if (impl.empty() && line.rfind("CPU implementer", 0) == 0) impl = val();
      if (part.empty() && line.rfind("CPU part", 0) == 0) part = val();
    }
    c.vendor = "ARM";
    c.model = impl.empty() ? "aarch64" : "aarch64 (implementer " + impl + ", part " + part + ")";
  }
#endif
  c.logical_cores = int(std::thread::hardware_concurrency());
  if (c.logical_cores <= 0) c.logical_cores = 1;
  int phys = count_physical_cores();
  c.physical_cores = phys > 0 ? phys : c.logical_cores;
  c.mem_total_bytes = meminfo_kb("MemTotal:") * 1024;
  c.mem_available_bytes = meminfo_kb("MemAvailable:") * 1024;
  return c;
}

struct CapState {
  std::once_flag once;
  Backend env_cap = kTopCpuBackend;
  bool env_allow_ref = false;
  bool override_set = false;
  Backend override_cap = kTopCpuBackend;
  bool override_allow_ref = false;
};
CapState& cap_state() {
  static CapState s;
  return s;
}

// Linux hands out the AMX tile-data state only on request (arch_prctl).
bool amx_permission() {
  static const bool ok = [] {
#if defined(LLRT_X86) && defined(__linux__)
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return ok;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Ref: return "ref";
    case Backend::Avx2: return "avx2";
    case Backend::AvxVnni: return "avx_vnni";
    case Backend::Avx512: return "avx512";
    case Backend::Avx512Vnni: return "avx512_vnni";
    case Backend::Avx512Bf16: return "avx512_bf16";
    case Backend::Amx: return "amx";
    case Backend::Neon: return "neon";
    case Backend::NeonDotprod: return "neon_dotprod";
    case Backend::NeonBf16: return "neon_bf16";
    case Backend::NeonI8mm: return "neon_i8mm";
    case Backend::Cuda: return "cuda";
  }
  return "?";
}

bool parse_backend(const std::string& s, Backend* out) {
  for (int i = 0; i < kNumBackends; ++i) {
    if (s == backend_name(Backend(i))) {
      *out = Backend(i);
      return true;
    }
  }
  return false;
}

bool backend_hw_supported(Backend b) {
  const CpuInfo& c = cpu_info();
  bool avx2 = c.avx2 && c.fma && c.f16c;
  bool avx512 = avx2 && c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq;
  switch (b) {
    case Backend::Ref: return true;
    case Backend::Avx2: return avx2;
    case Backend::AvxVnni: return avx2 && c.avx_vnni;
    case Backend::Avx512: return avx512;
    case Backend::Avx512Vnni: return avx512 && c.avx512_vnni;
    case Backend::Avx512Bf16: return avx512 && c.avx512_vnni && c.avx512_bf16;
    case Backend::Amx:
      return avx512 && c.avx512_vnni && c.avx512_bf16 && c.amx_tile && c.amx_bf16 && c.amx_int8 &&
             amx_permission();
#ifdef LLRT_ARM64
    case Backend::Neon: return c.asimd;
    case Backend::NeonDotprod: return c.asimd && c.asimd_dotprod;
    case Backend::NeonBf16: return c.asimd && c.asimd_dotprod && c.arm_bf16;
    case Backend::NeonI8mm: return c.asimd && c.asimd_dotprod && c.arm_bf16 && c.arm_i8mm;
#else
    case Backend::Neon:
    case Backend::NeonDotprod:
    case Backend::NeonBf16:
    case Backend::NeonI8mm: return false;
#endif
    case Backend::Cuda: return cuda_available();  // a GPU this build runs on (llrt/cuda.h)
  }
  return false;
}

Backend isa_cap() {
  CapState& s = cap_state();
  std::call_once(s.once, [&] {
    const char* env = std::getenv("LLRT_ISA");
    if (env && std::string(env) == "none") {
      s.env_cap = Backend::Ref;
      s.env_allow_ref = false;
    } else if (env && *env) {
      Backend b;
#ifdef __aarch64__
      const bool ok = parse_backend(env, &b) && (b == Backend::Ref || backend_is_arm(b));
      const char* names = "none ref neon neon_dotprod neon_bf16 neon_i8mm";
#else
      const bool ok = parse_backend(env, &b) && b != Backend::Cuda && !backend_is_arm(b);
      const char* names = "none ref avx2 avx_vnni avx512 avx512_vnni avx512_bf16 amx";
#endif
      if (!ok)
        fail(ErrorCode::InvalidArgument,
             std::string("LLRT_ISA=") + env + " is not a CPU backend name on this architecture; use one of: " + names);
      s.env_cap = b;
      s.env_allow_ref = b == Backend::Ref;
    }
  });
  return s.override_set ? s.override_cap : s.env_cap;
}

bool ref_kernels_allowed() {
  isa_cap();
  CapState& s = cap_state();
  return s.override_set ? s.override_allow_ref : s.env_allow_ref;
}

void set_isa_cap_for_testing(Backend cap, bool allow_ref) {
  isa_cap();
  cap_state().override_set = true;
  cap_state().override_cap = cap;
  cap_state().override_allow_ref = allow_ref && cap == Backend::Ref;
}
void reset_isa_cap_for_testing() { cap_state().override_set = false; }

bool backend_usable(Backend b) {
  if (b == Backend::Cuda) return backend_hw_supported(b);
  return backend_hw_supported(b) && int(b) <= int(isa_cap());
}

std::vector<std::string> cpu_flag_names() {
  const CpuInfo& c = cpu_info();
  std::vector<std::string> f;
  auto add = [&](bool b, const char* n) { if (b) f.push_back(n); };
  add(c.avx2, "AVX2"); add(c.fma, "FMA"); add(c.f16c, "F16C");
  add(c.avx512f, "AVX512F"); add(c.avx512bw, "AVX512BW"); add(c.avx512vl, "AVX512VL");
  add(c.avx512dq, "AVX512DQ"); add(c.avx512_bf16, "AVX512_BF16"); add(c.avx512_fp16, "AVX512_FP16");
  add(c.avx512_vnni, "AVX512_VNNI"); add(c.avx_vnni, "AVX_VNNI");
  add(c.amx_tile, "AMX_TILE"); add(c.amx_bf16, "AMX_BF16"); add(c.amx_int8, "AMX_INT8");
  add(c.asimd, "ASIMD"); add(c.asimd_fp16, "FP16"); add(c.asimd_dotprod, "DOTPROD"); add(c.arm_bf16, "BF16");
  add(c.arm_i8mm, "I8MM"); add(c.sve, "SVE");
  return f;
}

std::string cpu_summary() {
  const CpuInfo& c = cpu_info();
  std::ostringstream os;
  os << (c.model.empty() ? "unknown CPU" : c.model) << " |";
  for (auto& f : cpu_flag_names()) os << " " << f;
  os << " | " << c.physical_cores << " cores (" << c.logical_cores << " threads)";
  return os.str();
}

}  // namespace llrt
