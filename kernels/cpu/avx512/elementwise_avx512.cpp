// Embedding, RmsNorm, Rope, SiluMul, Add for AVX-512 (F/BW/VL/DQ): the templates of
// kernels/cpu/common/elementwise.h (math, layout and rounding stated there) compiled
// with the avx512 flags and IsaAvx512 (16 F32 lanes; exact F16/BF16 widening).
#include "isa_avx512.h"
#include "kernels/cpu/common/elementwise.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_elementwise_avx512(KernelRegistry& r) {
  using I = IsaAvx512;
  const Backend b = Backend::Avx512;
  r.add({Op::Embedding, DType::F32, DType::F32, b, "embedding_f32w_f32a__avx512", &embedding_t<I, float>});
  r.add({Op::Embedding, DType::F16, DType::F32, b, "embedding_f16w_f32a__avx512", &embedding_t<I, f16_t>});
  r.add({Op::Embedding, DType::BF16, DType::F32, b, "embedding_bf16w_f32a__avx512", &embedding_t<I, bf16_t>});
  r.add({Op::RmsNorm, DType::F32, DType::F32, b, "rmsnorm_f32w_f32a__avx512", &rmsnorm_t<I, float>});
  r.add({Op::RmsNorm, DType::F16, DType::F32, b, "rmsnorm_f16w_f32a__avx512", &rmsnorm_t<I, f16_t>});
  r.add({Op::RmsNorm, DType::BF16, DType::F32, b, "rmsnorm_bf16w_f32a__avx512", &rmsnorm_t<I, bf16_t>});
  r.add({Op::Rope, DType::F32, DType::F32, b, "rope_f32a__avx512", &rope_t<I>});
  r.add({Op::SiluMul, DType::F32, DType::F32, b, "silu_mul_f32a__avx512", &silu_mul_t<I>});
  r.add({Op::Add, DType::F32, DType::F32, b, "add_f32a__avx512", &add_t<I>});
}
}  // namespace llrt::kernels
