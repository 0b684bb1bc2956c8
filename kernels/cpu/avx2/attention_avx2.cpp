// Attention (one query row, strided F32 / F16 / BF16 KV cache) for AVX2 + FMA: the template of
// kernels/cpu/common/attention.h (math, layout, rounding stated there) compiled with the
// avx2 flags: 8 keys per haddp in pass 1, 4 x 8 head_dim lanes (x2 partial sums) held in
// registers in pass 2.
#include "isa_avx2.h"
#include "kernels/cpu/common/attention.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_attention_avx2(KernelRegistry& r) {
  r.add({Op::Attention, DType::F32, DType::F32, Backend::Avx2, "attention_f32kv_f32a__avx2",
         &attention_t<IsaAvx2, float>});
  r.add({Op::Attention, DType::F16, DType::F32, Backend::Avx2, "attention_f16kv_f32a__avx2",
         &attention_t<IsaAvx2, f16_t>});
  r.add({Op::Attention, DType::BF16, DType::F32, Backend::Avx2, "attention_bf16kv_f32a__avx2",
         &attention_t<IsaAvx2, bf16_t>});
}
}  // namespace llrt::kernels
