// Test helpers shared by the kernel op checkers (tests/test_kernels.cpp, tests/test_cuda.cpp):
// a seeded random source and weights stored in a dtype together with their exact F32 values.
#pragma once
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "llrt/dtype.h"

namespace llrt::test {

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  float normal(float sd = 1.0f) { return std::normal_distribution<float>(0.0f, sd)(g); }
  float uniform(float a, float b) { return std::uniform_real_distribution<float>(a, b)(g); }
  int64_t index(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(g); }
};

// Weights stored in `t`, plus their exact F32 values.
struct Weights {
  DType t;
  std::vector<uint8_t> bytes;
  std::vector<float> f;
  const void* data() const { return bytes.data(); }
};

// n values ~ N(0, sd^2), rounded to t (F32, F16 or BF16).
inline Weights make_weights(DType t, size_t n, Rng& rng, float sd = 1.0f) {
  Weights w{t, std::vector<uint8_t>(n * dtype_size(t)), std::vector<float>(n)};
  for (size_t i = 0; i < n; ++i) {
    float v = rng.normal(sd);
    if (t == DType::F16) {
      uint16_t h = f32_to_f16(v);
      std::memcpy(&w.bytes[2 * i], &h, 2);
      v = f16_to_f32(h);
    } else if (t == DType::BF16) {
      uint16_t h = f32_to_bf16(v);
      std::memcpy(&w.bytes[2 * i], &h, 2);
      v = bf16_to_f32(h);
    } else {
      std::memcpy(&w.bytes[4 * i], &v, 4);
    }
    w.f[i] = v;
  }
  return w;
}

}  // namespace llrt::test
