// Storage tags for 16-bit weight elements, so one kernel template can be written over
// the weight type (float / f16_t / bf16_t) and each ISA's traits can overload its loads
// on them. They are layout-identical to the uint16_t the file stores.
#pragma once
#include <cstdint>

namespace llrt::kernels {
struct f16_t { uint16_t bits; };   // IEEE binary16
struct bf16_t { uint16_t bits; };  // bfloat16: the top half of an F32
static_assert(sizeof(f16_t) == 2 && sizeof(bf16_t) == 2);
}  // namespace llrt::kernels
