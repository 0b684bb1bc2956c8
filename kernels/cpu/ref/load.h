// Scalar element loads used by the reference kernels: widen one stored element to F32.
#pragma once
#include <cstdint>

#include "llrt/dtype.h"

namespace llrt::kernels::ref {
struct LoadF32 { static float at(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; } };
struct LoadBF16 { static float at(const void* p, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(p)[i]); } };
struct LoadF16 { static float at(const void* p, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(p)[i]); } };
}  // namespace llrt::kernels::ref
