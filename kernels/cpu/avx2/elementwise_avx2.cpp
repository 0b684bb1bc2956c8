// Embedding, RmsNorm, Rope, SiluMul, Add for AVX2 + FMA + F16C: the templates of
// kernels/cpu/common/elementwise.h (math, layout and rounding stated there) compiled
// with the avx2 flags and IsaAvx2 (8 F32 lanes; exact F16/BF16 widening).
#include "isa_avx2.h"
#include "kernels/cpu/common/elementwise.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_elementwise_avx2(KernelRegistry& r) {
  using I = IsaAvx2;
  const Backend b = Backend::Avx2;
  r.add({Op::Embedding, DType::F32, DType::F32, b, "embedding_f32w_f32a__avx2", &embedding_t<I, float>});
  r.add({Op::Embedding, DType::F16, DType::F32, b, "embedding_f16w_f32a__avx2", &embedding_t<I, f16_t>});
  r.add({Op::Embedding, DType::BF16, DType::F32, b, "embedding_bf16w_f32a__avx2", &embedding_t<I, bf16_t>});
  r.add({Op::RmsNorm, DType::F32, DType::F32, b, "rmsnorm_f32w_f32a__avx2", &rmsnorm_t<I, float>});
  r.add({Op::RmsNorm, DType::F16, DType::F32, b, "rmsnorm_f16w_f32a__avx2", &rmsnorm_t<I, f16_t>});
  r.add({Op::RmsNorm, DType::BF16, DType::F32, b, "rmsnorm_bf16w_f32a__avx2", &rmsnorm_t<I, bf16_t>});
  r.add({Op::Rope, DType::F32, DType::F32, b, "rope_f32a__avx2", &rope_t<I>});
  r.add({Op::SiluMul, DType::F32, DType::F32, b, "silu_mul_f32a__avx2", &silu_mul_t<I>});
  r.add({Op::Add, DType::F32, DType::F32, b, "add_f32a__avx2", &add_t<I>});
}
}  // namespace llrt::kernels
