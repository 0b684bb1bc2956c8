// compressed-tensors w8a8: the LinearQ8 kernel lookup (the registry side of llrt/quant.h), kept
// apart from the config parsing in quant.cpp so that the quantization_config fuzz target links
// the parser without the kernel registry.
#include "llrt/error.h"
#include "llrt/kernels.h"
#include "llrt/quant.h"

namespace llrt {

// ==================================================================== kernels

namespace {
[[noreturn]] void no_q8_kernel(const std::string& what) {
  KernelVerdict v;
  v.need = {Op::LinearQ8, DType::I8, DType::F32, what};
  for (const auto& x : KernelRegistry::global().all())
    if (x.op == Op::LinearQ8 && backend_is_cpu(x.backend)) v.compiled.push_back(&x);
  fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
}
}  // namespace

// CPU backends only: other backends (CUDA) register their own kernel structs under
// Op::LinearQ8 with a different signature.
const LinearQ8Kernel& linear_q8_kernel(Backend b) {
  const auto* e = KernelRegistry::global().find(Op::LinearQ8, DType::I8, DType::F32, b);
  if (!e || !backend_is_cpu(b)) no_q8_kernel(std::string("the CPU LinearQ8 kernel for backend ") + backend_name(b));
  return *static_cast<const LinearQ8Kernel*>(e->fn);
}

const KernelEntry& best_linear_q8_entry() {
  const KernelEntry* best = nullptr;
  for (const auto& e : KernelRegistry::global().all()) {
    if (e.op != Op::LinearQ8 || e.wtype != DType::I8 || e.atype != DType::F32 || !backend_is_cpu(e.backend)) continue;
    if (!backend_usable(e.backend)) continue;
    if (e.backend == Backend::Ref && !ref_kernels_allowed()) continue;  // the oracle only when asked for
    if (!best || int(e.backend) > int(best->backend)) best = &e;
  }
  if (!best) no_q8_kernel("w8a8 int8 linear layers");
  return *best;
}

}  // namespace llrt
