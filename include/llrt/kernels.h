// llrt: the kernel registry. The table IS the capability answer (STYLE.md rule 1).
//
// Every kernel is registered under (op, weight dtype, activation dtype, backend).
// "Can this model run here?" means: for every (op, wdtype, adtype) the forward pass
// needs, find_best() returns an entry. There is no second predicate.
//
// All CPU kernels are single-threaded over an explicit range (rows, heads...); the
// engine splits work across OpenMP threads. Activations are F32 everywhere (see the
// math contract in each kernel file); weights are read in their stored dtype.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llrt/cpu.h"
#include "llrt/dtype.h"

namespace llrt {

enum class Op : uint8_t {
  Linear,     // y[M,N] = x[M,K] . W[N,K]^T           (W: F32/F16/BF16; x,y: F32)
  LinearQ8,   // w8a8: int8 W[N,K] + scales, x F32 quantized to int8 per token
  Embedding,  // out[n,D] = table[ids[n], :]            (table: F32/F16/BF16 -> F32)
  RmsNorm,    // y = x / sqrt(mean(x^2) + eps) * w       (w: F32/F16/BF16)
  Rope,       // rotate_half RoPE on F32 heads with a cos/sin row
  Attention,  // one query row over a KV cache span, softmax, weighted V sum (F32)
  SiluMul,    // out = silu(gate) * up                   (F32)
  Add,        // y += x                                  (F32)
};
constexpr int kNumOps = 8;
const char* op_name(Op op);

// ---------------- per-op kernel signatures ----------------

// Linear. Computes y[m, n] for m in [0, M), n in [n0, n1):
//   y[m*ldy + n] = sum_k x[m*ldx + k] * W[n*K + k]
// `prep` (optional, may be null) converts the F32 activations once per call into the
// kernel's preferred form (e.g. BF16 for vdpbf16ps); `run` then reads `xp`.
struct LinearArgs {
  const void* w = nullptr;   // [N, K] row-major, wdtype
  int64_t K = 0;
  const float* x = nullptr;  // [M, ldx] F32
  int64_t ldx = 0;
  const void* xp = nullptr;  // output of prep (or null if the kernel has no prep)
  float* y = nullptr;        // [M, ldy] F32
  int64_t ldy = 0;
  int64_t M = 0;
  int64_t n0 = 0, n1 = 0;
};
struct LinearKernel {
  size_t (*prep_bytes)(int64_t M, int64_t K);  // null: no prep
  void (*prep)(const float* x, int64_t ldx, int64_t M, int64_t K, void* xp);
  void (*run)(const LinearArgs& a);
  // Optional (null: prep runs on one thread): the part of prep(x, ..., M, K, xp) that token
  // rows [m0, m1) own, so threads can share the prep. m0 is a multiple of 16, m1 a multiple
  // of 16 or M; the ranges of one call cover [0, M) exactly once. The union of the calls
  // writes the same bytes as prep.
  void (*prep_rows)(const float* x, int64_t ldx, int64_t M, int64_t K, int64_t m0, int64_t m1, void* xp) = nullptr;
};

// Embedding: out[i*D + d] = table[ids[i]*D + d] widened to F32. ids already validated.
using EmbeddingFn = void (*)(const void* table, int64_t D, const int32_t* ids, int64_t n,
                             float* out);

// RmsNorm over one row: y[i] = x[i] * (1/sqrt(mean(x^2) + eps)) * w[i].
// Sum of squares accumulated in F32; y may alias x.
using RmsNormFn = void (*)(const float* x, const void* w, float* y, int64_t dim, float eps);

// Rope (HF rotate_half layout) on n_heads heads of head_dim, in place:
//   for i < half: a = x[i], b = x[i+half]
//     x[i] = a*cos[i] - b*sin[i];  x[i+half] = b*cos[i] + a*sin[i]
// cos/sin have head_dim/2 entries for this position; heads are head_stride apart.
using RopeFn = void (*)(float* x, int64_t n_heads, int64_t head_stride, int64_t head_dim,
                        const float* cos, const float* sin);

// Attention for n_q query rows (the heads of one GQA group, sharing one KV head) over
// n_kv cached positions, each row r independently:
//   s[j] = scale * dot(q_r, k_j);  p = softmax(s);  out_r = sum_j p[j] * v_j
// q_r = q + r*q_stride, out_r = out + r*out_stride (F32); k_j = k + j*kv_stride,
// v_j = v + j*kv_stride elements, in the KV cache's dtype (the kernel's registered wtype:
// F32, F16 or BF16, widened exactly to F32 as they are read). scratch holds n_q*n_kv
// floats. Kernels read each K/V row once for several rows where they can. When lse is set,
// lse[r] = max_j s[j] + log(sum_j exp(s[j] - max)) (F32): the engine merges attention over
// disjoint position ranges of one row with it (out = sum_i exp(lse_i - L) out_i, with
// L = log sum_i exp(lse_i)).
struct AttentionArgs {
  const float* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t kv_stride = 0;
  int64_t n_kv = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;
  float* out = nullptr;
  float* scratch = nullptr;
  int64_t n_q = 1;
  int64_t q_stride = 0, out_stride = 0;
  float* lse = nullptr;  // [n_q], optional
};
using AttentionFn = void (*)(const AttentionArgs& a);

using SiluMulFn = void (*)(const float* gate, const float* up, float* out, int64_t n);
using AddFn = void (*)(float* y, const float* x, int64_t n);

// ---------------- the registry ----------------

struct KernelEntry {
  Op op;
  DType wtype;  // weight dtype (F32 for ops without weights)
  DType atype;  // activation dtype
  Backend backend;
  const char* name;  // e.g. "linear_bf16w_f32a__avx512bf16"
  const void* fn;    // points to the op's function (or LinearKernel struct); Backend::Cuda
                     // entries point to the launchers of kernels/cuda/cuda_ops.h instead
  uint16_t min_cc = 0;  // Backend::Cuda: lowest compute capability (major*10+minor) it runs on
};

// Which kind of device a lookup is for. CPU lookups never return Backend::Cuda entries
// (their functions take device pointers); CUDA lookups return only Backend::Cuda entries
// whose min_cc the selected GPU meets (llrt/cuda.h).
enum class DeviceKind : uint8_t { Cpu, Cuda };

class KernelRegistry {
 public:
  static KernelRegistry& global();  // all compiled-in kernels, registered on first use
  void add(const KernelEntry& e);
  const std::vector<KernelEntry>& all() const { return entries_; }
  // Highest-ranked usable entry for the pair on that kind of device, or null. For the CPU:
  // the highest usable backend rank; for CUDA: the highest min_cc <= the GPU's.
  const KernelEntry* find_best(Op op, DType w, DType a, DeviceKind d = DeviceKind::Cpu) const;
  // Exactly this backend (usable or not), or null.
  const KernelEntry* find(Op op, DType w, DType a, Backend b) const;

 private:
  std::vector<KernelEntry> entries_;
};

// Typed lookups that throw Error{UnsupportedKernel} with a full message.
const LinearKernel& linear_kernel(DType w, Backend b);
template <class Fn>
Fn kernel_fn(const KernelEntry& e) { return reinterpret_cast<Fn>(const_cast<void*>(e.fn)); }

// One requirement a model has: op x dtypes, with who needs it (for messages).
struct KernelNeed {
  Op op;
  DType wtype;
  DType atype;
  std::string what;  // e.g. "model.layers.*.mlp.down_proj (BF16)"
};
struct KernelVerdict {
  KernelNeed need;
  DeviceKind device = DeviceKind::Cpu;
  const KernelEntry* chosen = nullptr;  // null: missing
  std::vector<const KernelEntry*> compiled;  // compiled-in entries for the pair, any backend
};
std::vector<KernelVerdict> check_kernels(const std::vector<KernelNeed>& needs, DeviceKind d = DeviceKind::Cpu);
// Throws Error{UnsupportedKernel} naming op, dtype, hardware and what to do, if any need is unmet.
void require_kernels(const std::vector<KernelNeed>& needs, DeviceKind d = DeviceKind::Cpu);
std::string unsupported_kernel_message(const KernelVerdict& v);

// Registers every compiled-in kernel (kernels/register.cpp; per-ISA hooks live in
// kernels/cpu/hooks.h). Called once by KernelRegistry::global().
void register_all_kernels(KernelRegistry& r);

}  // namespace llrt
