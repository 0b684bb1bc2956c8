// Attention (one query row, strided F32 / F16 / BF16 KV cache) for AVX-512: the template of
// kernels/cpu/common/attention.h (math, layout, rounding stated there) compiled with the
// avx512 flags: 16 keys per haddp in pass 1, 8 x 16 head_dim lanes (x2 partial sums) held in
// registers in pass 2.
#include "isa_avx512.h"
#include "kernels/cpu/common/attention.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_attention_avx512(KernelRegistry& r) {
  r.add({Op::Attention, DType::F32, DType::F32, Backend::Avx512, "attention_f32kv_f32a__avx512",
         &attention_t<IsaAvx512, float>});
  r.add({Op::Attention, DType::F16, DType::F32, Backend::Avx512, "attention_f16kv_f32a__avx512",
         &attention_t<IsaAvx512, f16_t>});
  r.add({Op::Attention, DType::BF16, DType::F32, Backend::Avx512, "attention_bf16kv_f32a__avx512",
         &attention_t<IsaAvx512, bf16_t>});
}
}  // namespace llrt::kernels
