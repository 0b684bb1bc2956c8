#include <mutex>
#include <sstream>

#include "llrt/cuda.h"
#include "llrt/error.h"
#include "src/engine/kernels.h"

namespace llrt {

const char* op_name(Op op) {
  switch (op) {
    case Op::Linear: return "linear";
    case Op::Embedding: return "embedding";
    case Op::RmsNorm: return "rmsnorm";
    case Op::Rope: return "rope";
    case Op::Attention: return "attention";
    case Op::SiluMul: return "silu_mul";
    case Op::Add: return "add";
    case Op::RopeKvStore: return "rope_kv_store";
    case Op::AttentionAllHeads: return "attention_all_heads";
    case Op::LinearDecodeFused: return "linear_decode_fused";
  }
  return "?";
}

void fail_kernel_type(const char* entry_name) {
  fail(ErrorCode::Internal, std::string("kernel entry ") + entry_name + " holds a function of another type than the caller asked for");
}

KernelRegistry& KernelRegistry::global() {
  static KernelRegistry r;
  static std::once_flag once;
  std::call_once(once, [] { register_all_kernels(r); });
  return r;
}

void KernelRegistry::add(const KernelEntry& e) {
  if (find(e.op, e.wtype, e.atype, e.backend))
    fail(ErrorCode::Internal, std::string("kernel registered twice: ") + e.name);
  entries_.push_back(e);
}

const KernelEntry* KernelRegistry::find(Op op, DType w, DType a, Backend b) const {
  for (const auto& e : entries_)
    if (e.op == op && e.wtype == w && e.atype == a && e.backend == b) return &e;
  return nullptr;
}

const KernelEntry* KernelRegistry::find_best(Op op, DType w, DType a, DeviceKind d) const {
  const KernelEntry* best = nullptr;
  if (d == DeviceKind::Cuda) {
    const int cc = cuda_device_cc();  // 0: no usable GPU
    for (const auto& e : entries_)
      if (e.op == op && e.wtype == w && e.atype == a && e.backend == Backend::Cuda && cc > 0 && e.min_cc <= cc &&
          (!best || e.min_cc > best->min_cc))
        best = &e;
    return best;
  }
  bool ref_allowed = ref_kernels_allowed();
  for (const auto& e : entries_) {
    if (e.op != op || e.wtype != w || e.atype != a) continue;
    if (!backend_is_cpu(e.backend) || !backend_usable(e.backend)) continue;
    // The scalar reference is an oracle, never chosen silently: only with LLRT_ISA=ref.
    if (e.backend == Backend::Ref && !ref_allowed) continue;
    if (!best || int(e.backend) > int(best->backend)) best = &e;
  }
  return best;
}

std::vector<KernelVerdict> check_kernels(const std::vector<KernelNeed>& needs, DeviceKind d) {
  const auto& reg = KernelRegistry::global();
  std::vector<KernelVerdict> out;
  for (const auto& n : needs) {
    KernelVerdict v;
    v.need = n;
    v.device = d;
    v.chosen = reg.find_best(n.op, n.wtype, n.atype, d);
    for (const auto& e : reg.all())
      if (e.op == n.op && e.wtype == n.wtype && e.atype == n.atype && backend_is_cpu(e.backend) == (d == DeviceKind::Cpu))
        v.compiled.push_back(&e);
    out.push_back(std::move(v));
  }
  return out;
}

namespace {
std::string unsupported_cuda_message(const KernelVerdict& v) {
  std::ostringstream os;
  os << "no usable CUDA kernel for op '" << op_name(v.need.op) << "' with weights " << dtype_name(v.need.wtype)
     << " and activations " << dtype_name(v.need.atype);
  if (!v.need.what.empty()) os << " (needed by " << v.need.what << ")";
  os << " [" << cuda_status() << "]. ";
  if (!cuda_built()) {
    os << "The CUDA module (libllrt-cuda.so) is not loaded. What to do: run with --device cpu, or build it (meson setup "
          "-Dcuda=enabled, needs nvcc) and install it beside llrt";
  } else if (v.compiled.empty()) {
    os << "The CUDA backend has no kernel for this dtype. What to do: run with --device cpu";
  } else if (cuda_device_cc() == 0) {
    os << "There is no usable CUDA device. What to do: run with --device cpu";
  } else {
    os << "Compiled-in CUDA variants need compute capability:";
    for (auto* e : v.compiled) os << " " << e->min_cc / 10 << "." << e->min_cc % 10 << " (" << e->name << ")";
    os << "; this GPU has " << cuda_device_cc() / 10 << "." << cuda_device_cc() % 10 << ". What to do: use a newer GPU or --device cpu";
  }
  os << ". llrt never falls back to a slower path silently.";
  return os.str();
}
}  // namespace

std::string unsupported_kernel_message(const KernelVerdict& v) {
  if (v.device == DeviceKind::Cuda) return unsupported_cuda_message(v);
  std::ostringstream os;
  os << "no usable kernel for op '" << op_name(v.need.op) << "' with weights "
     << dtype_name(v.need.wtype) << " and activations " << dtype_name(v.need.atype);
  if (!v.need.what.empty()) os << " (needed by " << v.need.what << ")";
  os << " on this machine [" << cpu_summary() << "; LLRT_ISA cap: "
     << (isa_cap() == Backend::Ref && !ref_kernels_allowed() ? "none" : backend_name(isa_cap()))
     << "]. ";
  std::vector<const KernelEntry*> elsewhere;
  for (auto* e : v.compiled)
    if (e->backend != Backend::Ref) elsewhere.push_back(e);
  bool has_ref = elsewhere.size() != v.compiled.size();
  if (elsewhere.empty()) {
    os << "This build has no optimized kernel for it on any backend: the model's dtype is not supported by llrt";
    if (has_ref) os << " (only the scalar reference oracle exists; LLRT_ISA=ref runs it for debugging, very slowly)";
  } else {
    os << "Compiled-in variants need:";
    for (auto* e : elsewhere)
      os << " " << backend_name(e->backend) << (backend_hw_supported(e->backend) ? "" : " (CPU lacks it)");
    os << ". What to do: run on a CPU with one of those instruction sets";
    if (isa_cap() != kTopCpuBackend) os << ", or raise/unset LLRT_ISA";
  }
  os << ". llrt never falls back to a slower path silently.";
  return os.str();
}

void require_kernels(const std::vector<KernelNeed>& needs, DeviceKind d) {
  for (const auto& v : check_kernels(needs, d))
    if (!v.chosen) fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
}

const LinearKernel& linear_kernel(DType w, Backend b) {
  // Only CPU entries are LinearKernels (Backend::Cuda points at kernels/cuda/cuda_ops.h).
  const auto* e = backend_is_cpu(b) ? KernelRegistry::global().find(Op::Linear, w, DType::F32, b) : nullptr;
  if (!e) {
    KernelVerdict v;
    v.need = {Op::Linear, w, DType::F32, ""};
    fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
  }
  return e->linear();
}

}  // namespace llrt
