// llrt: the kernel registry. The table IS the capability answer (docs/STYLE.md, rule 1).
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
#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "kernels/cuda/cuda_fn.h"

#include "src/engine/cpu.h"
#include "llrt/dtype.h"

namespace llrt {

enum class Op : uint8_t {
  Linear,     // y[M,N] = x[M,K] . W[N,K]^T  (W: F32/F16/BF16, or I8 + scales with x quantized
              // to int8 by the kernel's prep (w8a8); x, y: F32)
  Embedding,  // out[n,D] = table[ids[n], :]            (table: F32/F16/BF16 -> F32)
  RmsNorm,    // y = x / sqrt(mean(x^2) + eps) * w       (w: F32/F16/BF16)
  Rope,       // rotate_half RoPE on F32 heads with a cos/sin row
  Attention,  // one query row over a KV cache span, softmax, weighted V sum (F32)
  SiluMul,    // out = silu(gate) * up                   (F32)
  Add,        // y += x                                  (F32)
  // Ops whose work differs from the ops above get their own names (the CUDA engine's):
  RopeKvStore,       // RoPE on the q and k rows of T tokens, then k and v written into the KV cache
  AttentionAllHeads, // causal GQA attention of T tokens over every head of one layer's cache
  LinearDecodeFused, // one token's Linear with its input transform fused in (plain, rmsnorm(x),
                     // silu(gate) * up) and an optional residual add; W as Linear's (F32/F16/BF16/I8)
};
constexpr int kNumOps = 10;
const char* op_name(Op op);

// ---------------- per-op kernel signatures ----------------

// Linear: one interface for every weight format. Computes y[m, n] for m in [0, M), n in [n0, n1):
//   float weights   y[m*ldy + n] = sum_k x[m*ldx + k] * W[n*K + k]
//   I8 + scales     y[m*ldy + n] = (float(sum_k q[m, k] * W[n, k] - zp[m] * sum_k W[n, k]) * s[m]) * scale[n]
//                   with q, s, zp the activations quantized by prep (arithmetic: llrt/quant.h)
// `prep` (null when the kernel has none) converts the F32 activations once per call into the
// kernel's form (BF16 for vdpbf16ps, AMX tiles, int8 codes + per-token scales); `run` reads
// `xp`. A buffer prepared by one kernel may only be run by the same kernel.

// How a w8a8 kernel's prep quantizes activations (compressed-tensors' input_activations).
enum class ActQuantMode : uint8_t { DynamicSymmetric, DynamicAsymmetric, Static };
struct ActQuantParams {
  ActQuantMode mode = ActQuantMode::DynamicSymmetric;
  float scale = 0.0f;      // Static only
  int32_t zero_point = 0;  // Static only, in [-128, 127]
};

// How a weight's scales apply: none (float weights), one for the tensor, one per output row.
enum class ScaleGranularity : uint8_t { None, Tensor, Channel };

// One Linear's weights as the file stores them: what a kernel needs to read them.
struct WeightView {
  const void* data = nullptr;  // [N, K] row-major in `dtype`, in place
  DType dtype = DType::F32;    // F32 / F16 / BF16, or I8
  const void* scales = nullptr;  // I8: [N] (Channel) or [1] (Tensor)
  DType scale_dtype = DType::F32;  // BF16 / F16 / F32
  ScaleGranularity granularity = ScaleGranularity::None;
  ActQuantParams act;  // I8: how prep quantizes the activations
};

struct LinearPrepArgs {
  const float* x = nullptr;  // [M, ldx] F32
  int64_t ldx = 0, M = 0, K = 0;
  int64_t m0 = 0, m1 = 0;    // the token rows this call prepares (all: 0, M)
  const ActQuantParams* act = nullptr;  // I8 kernels: the weight's activation quantization
  void* xp = nullptr;        // prep_bytes(M, K) bytes, 64-byte aligned
};

struct LinearArgs {
  WeightView w;
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
  void (*prep)(const LinearPrepArgs& p);
  void (*run)(const LinearArgs& a);
  // true: prep may be called on disjoint token ranges [m0, m1) in parallel (m0 a multiple of
  // 16, m1 a multiple of 16 or M; the union writes the same bytes as one call over [0, M)).
  // false: prep is called once with [0, M).
  bool prep_splits = false;
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

// The function an entry holds, typed: the CPU signatures above, or (Backend::Cuda) the
// launchers of kernels/cuda/cuda_ops.h, which take device pointers and a stream. Which
// alternative an entry holds follows from (op, backend, weight dtype); KernelEntry::fn<F>()
// checks it (Error{Internal} on a mismatch), so no caller reinterprets a pointer.
using KernelFn = std::variant<std::monostate, const LinearKernel*, EmbeddingFn, RmsNormFn, RopeFn, AttentionFn,
                              SiluMulFn, AddFn, cuda::LinearFn, const cuda::LinearQ8Kernels*, cuda::EmbeddingFn,
                              cuda::RmsNormFn, cuda::RopeFn, cuda::AttentionFn, cuda::SiluMulFn, cuda::AddFn,
                              cuda::DecodeLinearFn>;

[[noreturn]] void fail_kernel_type(const char* entry_name);

struct KernelEntry {
  Op op;
  DType wtype;  // weight dtype (F32 for ops without weights)
  DType atype;  // activation dtype
  Backend backend;
  const char* name;  // e.g. "linear_bf16w_f32a__avx512bf16"
  KernelFn impl;
  uint16_t min_cc = 0;  // Backend::Cuda: lowest compute capability (major*10+minor) it runs on

  template <class F>
  F fn() const {
    if (const F* f = std::get_if<F>(&impl)) return *f;
    fail_kernel_type(name);
  }
  const LinearKernel& linear() const { return *fn<const LinearKernel*>(); }
};

// Which kind of device a lookup is for. CPU lookups never return Backend::Cuda entries
// (their functions take device pointers); CUDA lookups return only Backend::Cuda entries
// whose min_cc the selected GPU meets (llrt/cuda.h).
enum class DeviceKind : uint8_t { Cpu, Cuda };

class KernelRegistry {
 public:
  // All compiled-in kernels, registered on first use; the CUDA module adds its Backend::Cuda
  // entries when it is loaded (src/engine/cuda/cuda_loader.cpp). Entries never move (a deque),
  // so pointers taken before the module loads stay valid.
  static KernelRegistry& global();
  void add(const KernelEntry& e);
  const std::deque<KernelEntry>& all() const { return entries_; }
  // Highest-ranked usable entry for the pair on that kind of device, or null. For the CPU:
  // the highest usable backend rank; for CUDA: the highest min_cc <= the GPU's.
  const KernelEntry* find_best(Op op, DType w, DType a, DeviceKind d = DeviceKind::Cpu) const;
  // Exactly this backend (usable or not), or null.
  const KernelEntry* find(Op op, DType w, DType a, Backend b) const;

 private:
  std::deque<KernelEntry> entries_;
};

// Typed lookups that throw Error{UnsupportedKernel} with a full message.
const LinearKernel& linear_kernel(DType w, Backend b);
template <class Fn>
Fn kernel_fn(const KernelEntry& e) { return e.fn<Fn>(); }

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
