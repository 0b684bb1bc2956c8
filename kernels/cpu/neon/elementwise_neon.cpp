// Embedding, RmsNorm, Rope, SiluMul, Add for aarch64 NEON: the templates of
// kernels/cpu/common/elementwise.h (math, layout and rounding stated there) compiled
// with the neon flags and IsaNeon (4 F32 lanes; exact F16/BF16 widening).
#include "isa_neon.h"
#include "kernels/cpu/common/elementwise.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_elementwise_neon(KernelRegistry& r) {
  using I = IsaNeon;
  const Backend b = Backend::Neon;
  r.add({Op::Embedding, DType::F32, DType::F32, b, "embedding_f32w_f32a__neon", &embedding_t<I, float>});
  r.add({Op::Embedding, DType::F16, DType::F32, b, "embedding_f16w_f32a__neon", &embedding_t<I, f16_t>});
  r.add({Op::Embedding, DType::BF16, DType::F32, b, "embedding_bf16w_f32a__neon", &embedding_t<I, bf16_t>});
  r.add({Op::RmsNorm, DType::F32, DType::F32, b, "rmsnorm_f32w_f32a__neon", &rmsnorm_t<I, float>});
  r.add({Op::RmsNorm, DType::F16, DType::F32, b, "rmsnorm_f16w_f32a__neon", &rmsnorm_t<I, f16_t>});
  r.add({Op::RmsNorm, DType::BF16, DType::F32, b, "rmsnorm_bf16w_f32a__neon", &rmsnorm_t<I, bf16_t>});
  r.add({Op::Rope, DType::F32, DType::F32, b, "rope_f32a__neon", &rope_t<I>});
  r.add({Op::SiluMul, DType::F32, DType::F32, b, "silu_mul_f32a__neon", &silu_mul_t<I>});
  r.add({Op::Add, DType::F32, DType::F32, b, "add_f32a__neon", &add_t<I>});
}
}  // namespace llrt::kernels
