// Registers the CUDA kernels under Backend::Cuda, each with the lowest compute capability
// it runs on (KernelEntry::min_cc). This build's device code is sm_80 and sm_90 machine
// code plus compute_90 PTX (kernels/cuda/meson.build), so nothing runs below 8.0; BF16
// tensor-core GEMMs and the int8 IMMA path need 8.0 anyway. A kernel that needs more
// (e.g. a Hopper-only variant) registers with its own min_cc and wins where usable.
//
// Entries point at the launchers of kernels/cuda/cuda_ops.h (their own signatures, not
// the CPU ones): only the CUDA engine and the CUDA op checker call them.
#include <string>

#include "cuda_ops.h"
#include "llrt/error.h"
#include "llrt/kernels.h"

namespace llrt::cuda {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky launch error so the next call starts clean
  fail(ErrorCode::Cuda, std::string("CUDA: ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail(ErrorCode::Cuda, std::string("CUDA: launching ") + kernel + " failed: " + cudaGetErrorName(e) + " (" +
                              cudaGetErrorString(e) + ")");
}

namespace {
const LinearQ8Kernels k_q8{q8_quantize, linear_q8};
}  // namespace

}  // namespace llrt::cuda

namespace llrt::kernels {

void register_cuda(KernelRegistry& r) {
  using namespace llrt::cuda;
  constexpr uint16_t sm80 = 80;
  const Backend B = Backend::Cuda;
  const DType F32 = DType::F32;
  r.add({Op::Linear, DType::F32, F32, B, "linear_f32w_f32a__cuda", &linear_f32w, sm80});
  r.add({Op::Linear, DType::F16, F32, B, "linear_f16w_f32a__cuda", &linear_f16w, sm80});
  r.add({Op::Linear, DType::BF16, F32, B, "linear_bf16w_f32a__cuda", &linear_bf16w, sm80});
  r.add({Op::Linear, DType::I8, F32, B, "linear_i8w_f32a__cuda", &k_q8, sm80});
  r.add({Op::Embedding, DType::F32, F32, B, "embedding_f32w_f32a__cuda", &embedding_f32w, sm80});
  r.add({Op::Embedding, DType::F16, F32, B, "embedding_f16w_f32a__cuda", &embedding_f16w, sm80});
  r.add({Op::Embedding, DType::BF16, F32, B, "embedding_bf16w_f32a__cuda", &embedding_bf16w, sm80});
  r.add({Op::RmsNorm, DType::F32, F32, B, "rmsnorm_f32w_f32a__cuda", &rmsnorm_f32w, sm80});
  r.add({Op::RmsNorm, DType::F16, F32, B, "rmsnorm_f16w_f32a__cuda", &rmsnorm_f16w, sm80});
  r.add({Op::RmsNorm, DType::BF16, F32, B, "rmsnorm_bf16w_f32a__cuda", &rmsnorm_bf16w, sm80});
  r.add({Op::Rope, F32, F32, B, "rope_f32a__cuda", &rope_f32, sm80});
  r.add({Op::Attention, F32, F32, B, "attention_f32kv_f32a__cuda", &attention_f32, sm80});
  r.add({Op::SiluMul, F32, F32, B, "silu_mul_f32a__cuda", &silu_mul_f32, sm80});
  r.add({Op::Add, F32, F32, B, "add_f32a__cuda", &add_f32, sm80});
}

}  // namespace llrt::kernels
