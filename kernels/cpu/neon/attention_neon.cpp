// Attention (query rows of one GQA group, strided F32 / F16 / BF16 KV cache) for aarch64 NEON:
// the template of kernels/cpu/common/attention.h (math, layout, rounding stated there)
// compiled with IsaNeon: 4 keys per FADDP reduction in pass 1, 8 x 4 head_dim lanes (x2
// partial sums) held in registers in pass 2. K/V widened exactly (FCVTL / << 16).
#include "isa_neon.h"
#include "kernels/cpu/common/attention.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
void register_attention_neon(KernelRegistry& r) {
  r.add({Op::Attention, DType::F32, DType::F32, Backend::Neon, "attention_f32kv_f32a__neon",
         &attention_t<IsaNeon, float>});
  r.add({Op::Attention, DType::F16, DType::F32, Backend::Neon, "attention_f16kv_f32a__neon",
         &attention_t<IsaNeon, f16_t>});
  r.add({Op::Attention, DType::BF16, DType::F32, Backend::Neon, "attention_bf16kv_f32a__neon",
         &attention_t<IsaNeon, bf16_t>});
}
}  // namespace llrt::kernels
