// compressed-tensors w8a8: the I8 Linear kernel lookup (the registry side of llrt/quant.h), kept
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
  v.need = {Op::Linear, DType::I8, DType::F32, what};
  for (const auto& x : KernelRegistry::global().all())
    if (x.op == Op::Linear && x.wtype == DType::I8 && backend_is_cpu(x.backend)) v.compiled.push_back(&x);
  fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
}
}  // namespace

// CPU backends only: CUDA registers its own launchers (cuda::LinearQ8Kernels).
const LinearKernel& linear_q8_kernel(Backend b) {
  const auto* e = KernelRegistry::global().find(Op::Linear, DType::I8, DType::F32, b);
  if (!e || !backend_is_cpu(b)) no_q8_kernel(std::string("the CPU I8 Linear kernel for backend ") + backend_name(b));
  return e->linear();
}

}  // namespace llrt
