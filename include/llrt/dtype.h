// llrt: element types.
//
// DType lists every dtype name a safetensors header may carry. Only the "compute"
// dtypes (F32, F16, BF16, I8, I32, U8) are used by kernels; the rest are recognised
// so a file that holds them parses, and using such a tensor gives a clear error.
//
// Conversions here are scalar helpers for references, tests and tools. There is
// deliberately no API that converts a weight tensor's dtype: kernels read weights in
// the dtype the file stores.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace llrt {

enum class DType : uint8_t {
  F32, F16, BF16, I8, I32, U8,                   // compute dtypes
  F64, I16, I64, U16, U32, U64, BOOL,            // recognised, not computed with
  F8_E4M3, F8_E5M2, F8_E8M0, F4, F6_E2M3, F6_E3M2,
};

const char* dtype_name(DType t);                       // safetensors spelling: "BF16"
std::optional<DType> parse_dtype(std::string_view s);  // nullopt: not a dtype name at all
// Bits per element (F4 = 4, F6_* = 6); bytes for whole tensors via tensor_nbytes.
int dtype_bits(DType t);
// Byte size of one element; 0 for sub-byte dtypes.
size_t dtype_size(DType t);
bool dtype_is_compute(DType t);  // F32 F16 BF16 I8 I32 U8
bool dtype_is_float(DType t);

// ---- scalar conversions (round to nearest even, NaN kept NaN) ----
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// NaN/Inf elements among n elements of a float dtype (F32, F16, BF16, F64: by the exponent bits,
// without converting); 0 for integer dtypes, which cannot hold one. *first (if given) is set to the
// index of the first one (-1 when none).
uint64_t count_non_finite(DType t, const void* data, int64_t n, int64_t* first = nullptr);

}  // namespace llrt
