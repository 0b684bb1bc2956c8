// Internal: which registered CPU kernel the engine runs, per phase, on this machine.
//
// The registry answers "can this run here" (find_best: any usable entry). Which of several
// usable entries is FASTEST depends on the microarchitecture, not on the ISA level: on a
// core that issues 512-bit operations as two 256-bit halves (AMD Zen 4/5) the AVX2 kernel
// can beat the AVX-512 one, and on a core with more bandwidth than arithmetic the kernel
// with the fewest instructions per weight byte wins decode. So the engine ranks the usable
// entries of an (op, weight dtype) by a short measurement on this machine:
//
//   decode  (M == 1): weight GB/s per CPU-second of one thread streaming a buffer larger than the last-level
//                     cache (max(256 MiB, 1.5 x LLC), at most 512 MiB and 1/8 of free memory);
//   prefill (M > 1):  GFLOP/s of one thread on a 128-token x 2048 x 256 product (in cache).
//
// Choice: among the entries within kChoiceMargin (5%) of the fastest, the one preferred by
// rank: F32 activations before rounded ones (the F32-grade contract), then the higher ISA.
// So a lower ISA is chosen only when it is measurably faster, and ties keep today's kernel.
// Measurements are cached per machine (key: CPU model, flags, the registered kernel names
// and the probe version) in $LLRT_KERNEL_CACHE, else $XDG_CACHE_HOME/llrt or ~/.cache/llrt;
// `llrt caps --retune` measures again. LLRT_KERNEL_CHOICE=rank skips measuring (ISA rank
// only: deterministic, what the test suite uses by default). LLRT_ACT=f32 keeps the
// F32-activation kernels only (no activations rounded to BF16 before the dot product);
// LLRT_ACT=native prefers the rounded-activation kernels where one is registered (HF's own
// native-dtype arithmetic); default auto (rounded ones only where measured faster).
// LLRT_ISA still caps the candidates.
#pragma once
#include <string>
#include <vector>

#include "src/engine/kernels.h"

namespace llrt {

enum class Phase : uint8_t { Decode, Prefill };
constexpr double kChoiceMargin = 1.05;

struct KernelMeasure {
  double decode_gbs = 0;      // one thread, weights streamed from memory
  double prefill_gflops = 0;  // one thread, M = 128
};

struct KernelChoice {
  const KernelEntry* entry = nullptr;
  std::string why;  // e.g. "fastest measured (19.9 GB/s; avx512 16.5, ...)" or "ISA rank"
};

// The entry the engine runs for the need (op, w, a=F32) in `phase`, or null when none is
// usable (the capability check has failed before). Measures (once per machine) on first use.
KernelChoice choose_kernel(Op op, DType w, Phase phase);

// The candidates choose_kernel ranks for (op, w): usable CPU entries of (op, w, F32), plus
// (op, w, w) entries (activations rounded to the weight dtype) unless LLRT_ACT=f32.
std::vector<const KernelEntry*> kernel_candidates(Op op, DType w);

// True when choose_kernel(op, w, ...) would run the probe now (measured policy, several
// candidates, some without cached numbers): callers can say so before the pause (~1-3 s).
bool kernel_choice_pending(Op op, DType w);

// Measured numbers of an entry (measuring its (op, w) group now if needed); zeros in rank mode.
KernelMeasure kernel_measure(const KernelEntry& e);

// "measured" or "rank" (LLRT_KERNEL_CHOICE), and where the cache lives.
std::string kernel_choice_policy();
std::string kernel_cache_path();
// Forgets the cached numbers (file and memory); the next choice measures again.
void kernel_choice_retune();

// Tests: the pure choice rule over given numbers (candidates in any order).
const KernelEntry* choose_by_measure(const std::vector<const KernelEntry*>& cands,
                                     const std::vector<double>& measure, std::string* why = nullptr);
// Tests: the probe itself, on `bytes` of streamed weights (small values keep it quick).
KernelMeasure measure_kernel_for_testing(const KernelEntry& e, size_t bytes);
void set_kernel_choice_for_testing(const char* policy);  // "rank", "measured" or null (environment)

}  // namespace llrt
