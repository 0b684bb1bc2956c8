// ISA traits for the aarch64 NEON (ARMv8 ASIMD) build of the shared kernel templates
// (kernels/cpu/common/*.h): an xsimd neon64 batch (4 F32 lanes) for the arithmetic plus
// the loads xsimd lacks: F16 by FCVTL (vcvt_f32_f16, base ARMv8: no FEAT_FP16 needed), BF16
// by a 16-bit left shift into the top half of each 32-bit lane (USHLL). Both widenings are
// exact. Tails go through a zero-filled stack copy (NEON has no masked loads): lanes >= n
// are zero and memory past n elements is never read or written.
// Include only from files of the neon* kernel libraries (kernels/meson.build).
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/common/wtypes.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

struct IsaNeon {
  using arch = xsimd::neon64;
  using vf = xsimd::batch<float, arch>;
  static constexpr int L = 4;
  static constexpr int kAttnChunk = 8;       // head_dim vectors kept in registers (x2 partial sums; 32 v-regs)
  static constexpr int kAttnGroupChunk = 2;  // ... per query row when 2-4 rows share the pass

  static vf load(const float* p) { return vld1q_f32(p); }
  static vf load(const f16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)))); }
  static vf load(const bf16_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
  template <class T>
  static vf load_tail(const T* p, int n) {  // n in [0, L)
    T b[L];
    std::memset(b, 0, sizeof b);
    std::memcpy(b, p, size_t(n) * sizeof(T));
    return load(b);
  }
  static void store(float* p, vf v) { vst1q_f32(p, v); }
  static void store_tail(float* p, vf v, int n) {
    float b[L];
    vst1q_f32(b, v);
    std::memcpy(p, b, size_t(n) * 4);
  }
  // out[i] = sum of the lanes of rows[i], i < 4: pairwise adds (FADDP), in F32.
  static vf sum_rows(const vf* rows) {
    return vpaddq_f32(vpaddq_f32(rows[0], rows[1]), vpaddq_f32(rows[2], rows[3]));
  }
  static void reduce4(vf a, vf b, vf c, vf d, float* out) {
    const vf r[4] = {a, b, c, d};
    vst1q_f32(out, sum_rows(r));
  }
  // In place: rows[j] becomes column j of the 4 x 4 block (common/linear_packed.h).
  static void transpose(vf* rows) {
    const float32x4_t t0 = vtrn1q_f32(rows[0], rows[1]), t1 = vtrn2q_f32(rows[0], rows[1]);
    const float32x4_t t2 = vtrn1q_f32(rows[2], rows[3]), t3 = vtrn2q_f32(rows[2], rows[3]);
    auto lo = [](float32x4_t x, float32x4_t y) {
      return vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)));
    };
    auto hi = [](float32x4_t x, float32x4_t y) {
      return vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(x), vreinterpretq_f64_f32(y)));
    };
    rows[0] = lo(t0, t2);
    rows[1] = lo(t1, t3);
    rows[2] = hi(t0, t2);
    rows[3] = hi(t1, t3);
  }
};

}  // namespace
}  // namespace llrt::kernels
