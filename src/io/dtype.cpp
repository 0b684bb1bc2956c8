#include "llrt/dtype.h"

#include <cmath>

#include "llrt/error.h"

namespace llrt {

namespace {
struct DTypeInfo {
  DType t;
  const char* name;
  int bits;
};
constexpr DTypeInfo kInfo[] = {
    {DType::F32, "F32", 32},         {DType::F16, "F16", 16},         {DType::BF16, "BF16", 16},
    {DType::I8, "I8", 8},            {DType::I32, "I32", 32},         {DType::U8, "U8", 8},
    {DType::F64, "F64", 64},         {DType::I16, "I16", 16},         {DType::I64, "I64", 64},
    {DType::U16, "U16", 16},         {DType::U32, "U32", 32},         {DType::U64, "U64", 64},
    {DType::BOOL, "BOOL", 8},        {DType::F8_E4M3, "F8_E4M3", 8}, {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E8M0, "F8_E8M0", 8}, {DType::F4, "F4", 4},           {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
};
const DTypeInfo& info(DType t) {
  for (const auto& i : kInfo)
    if (i.t == t) return i;
  fail(ErrorCode::Internal, "dtype enum value out of range");
}
}  // namespace

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::Io: return "Io";
    case ErrorCode::Format: return "Format";
    case ErrorCode::Config: return "Config";
    case ErrorCode::Checkpoint: return "Checkpoint";
    case ErrorCode::UnsupportedDType: return "UnsupportedDType";
    case ErrorCode::UnsupportedModel: return "UnsupportedModel";
    case ErrorCode::UnsupportedKernel: return "UnsupportedKernel";
    case ErrorCode::ContextOverflow: return "ContextOverflow";
    case ErrorCode::Tokenizer: return "Tokenizer";
    case ErrorCode::Template: return "Template";
    case ErrorCode::Cuda: return "Cuda";
    case ErrorCode::NonFinite: return "NonFinite";
    case ErrorCode::Internal: return "Internal";
  }
  return "?";
}

const char* dtype_name(DType t) { return info(t).name; }

uint64_t count_non_finite(DType t, const void* data, int64_t n, int64_t* first) {
  // A float is NaN or Inf exactly when its exponent bits are all ones.
  auto scan = [&](auto* p, auto mask) {
    uint64_t count = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; ++i) {
      auto bits = decltype(mask)(0);
      std::memcpy(&bits, p + i, sizeof bits);
      if ((bits & mask) == mask) {
        if (at < 0) at = i;
        ++count;
      }
    }
    if (first) *first = at;
    return count;
  };
  const auto* b = static_cast<const uint8_t*>(data);
  switch (t) {
    case DType::F32: return scan(reinterpret_cast<const uint32_t*>(b), uint32_t(0x7f800000u));
    case DType::F16: return scan(reinterpret_cast<const uint16_t*>(b), uint16_t(0x7c00u));
    case DType::BF16: return scan(reinterpret_cast<const uint16_t*>(b), uint16_t(0x7f80u));
    case DType::F64: return scan(reinterpret_cast<const uint64_t*>(b), uint64_t(0x7ff0000000000000ull));
    default:
      if (first) *first = -1;
      return 0;
  }
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (const auto& i : kInfo)
    if (s == i.name) return i.t;
  return std::nullopt;
}

int dtype_bits(DType t) { return info(t).bits; }
size_t dtype_size(DType t) { return info(t).bits % 8 == 0 ? size_t(info(t).bits / 8) : 0; }

bool dtype_is_compute(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::I8: case DType::I32: case DType::U8: return true;
    default: return false;
  }
}
bool dtype_is_float(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::F64:
    case DType::F8_E4M3: case DType::F8_E5M2: case DType::F8_E8M0: case DType::F4:
    case DType::F6_E2M3: case DType::F6_E3M2: return true;
    default: return false;
  }
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: value = man * 2^-24
      float f = std::ldexp(float(man), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t au = u & 0x7fffffffu;
  if (au > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (au >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow (incl. rounding) -> inf
  if (au < 0x38800000u) {                                  // subnormal or zero in f16
    float af;
    std::memcpy(&af, &au, 4);
    // round to nearest even multiple of 2^-24
    float scaled = af * 16777216.0f;  // exact
    float r = std::nearbyint(scaled);  // default rounding mode: to nearest even
    return uint16_t(sign | uint32_t(r));
  }
  // normal: round mantissa from 23 to 10 bits, nearest even
  uint32_t rounded = au + 0xfffu + ((au >> 13) & 1u);
  uint32_t exp = (rounded >> 23) - 112u;
  uint32_t man = (rounded >> 13) & 0x3ffu;
  return uint16_t(sign | (exp << 10) | man);
}

}  // namespace llrt
