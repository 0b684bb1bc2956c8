// Linear BF16w/BF16a with FEAT_BF16 (ARMv8.6): BFDOT. Registered as Linear (BF16 weights,
// BF16 activations), like linear_bf16w_bf16a__avx512bf16: chosen only where measured faster
// than every F32-activation kernel or with LLRT_ACT=native, never with LLRT_ACT=f32 (the
// F32-activation BF16 Linear on ARM is linear_bf16w_f32a__neon, exact widening).
//
// Math:     y[m, n] = sum_k W[n, k] * bf16_rne(x[m, k])   for m < M, n in [n0, n1)
// Layout:   prep: x F32 -> [M, Kp] BF16, Kp = round_up(K, 8), zero padded (prep_bytes
//           M * Kp * 2; the prep splits over token rows). W [N, K] BF16 in place; y F32.
// Rounding: x to BF16 nearest even in the prep (llrt::f32_to_bf16): |x - xb| <= 2^-8 |x|, as
//           HF's own BF16 run rounds its activations. BFDOT: lane l += w[2l] xb[2l] +
//           w[2l+1] xb[2l+1] per 8 k; the BF16 x BF16 products are exact in F32, the pair sum
//           and the accumulation follow FEAT_BF16's rules (without FEAT_EBF16: round-to-odd
//           inside the pair sum, denormal inputs and results flushed to zero), an error of the
//           order of one F32 rounding per pair. Lanes summed in F32 (FADDP); K blocks summed
//           into y in F32 (common/linear_blocked.h).
// Blocking: the dot form of common/linear_blocked.h for every M: decode 4 rows x 2
//           accumulators, prefill micro-tile 4 rows x 4 tokens. (BFMMLA, the 2 x 4 x 2 matrix
//           form, is not used yet.)
// Compiled with -march=armv8.2-a+bf16 (kernels/meson.build); chosen only where HWCAP2_BF16.
#include <arm_neon.h>

#include <cstring>

#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/hooks.h"
#include "llrt/dtype.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 4, kMR = 4, kNRD = 4;

inline int64_t bf16a_stride(int64_t K) { return (K + 7) / 8 * 8; }

struct BfdotPolicy {
  using WT = uint16_t;
  using XT = uint16_t;
  using wvec = bfloat16x8_t;
  using xvec = bfloat16x8_t;
  using acc = float32x4_t;
  static constexpr int KS = 8;
  static acc zero() { return vdupq_n_f32(0.0f); }
  static wvec load_w(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
  static wvec load_w_tail(const uint16_t* p, int n) {  // n < 8 weights; the rest zero, unread
    uint16_t b[8] = {};
    std::memcpy(b, p, size_t(n) * 2);
    return vreinterpretq_bf16_u16(vld1q_u16(b));
  }
  static xvec load_x(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
  static xvec load_x_tail(const uint16_t* p, int) { return load_x(p); }  // prep zero-pads to Kp
  static acc madd(acc a, wvec w, xvec x) { return vbfdotq_f32(a, w, x); }
  static acc sum(acc a, acc b) { return vaddq_f32(a, b); }
  static float reduce(acc a) { return vaddvq_f32(a); }
  static void reduce4(acc a, acc b, acc c, acc d, float* out) {
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d)));
  }
};

// Token rows [p.m0, p.m1) rounded to BF16 (RNE), each row padded with zeros to the stride.
void prep_bf16a(const LinearPrepArgs& p) {
  const int64_t K = p.K, s = bf16a_stride(K);
  uint16_t* out = static_cast<uint16_t*>(p.xp);
  for (int64_t m = p.m0; m < p.m1; ++m) {
    uint16_t* o = out + m * s;
    for (int64_t k = 0; k < K; ++k) o[k] = f32_to_bf16(p.x[m * p.ldx + k]);
    for (int64_t k = K; k < s; ++k) o[k] = 0;
  }
}
size_t prep_bytes_bf16a(int64_t M, int64_t K) { return size_t(std::max<int64_t>(M, 1)) * size_t(bf16a_stride(K)) * 2; }
void run_bf16a(const LinearArgs& a) {
  linear_blocked<BfdotPolicy, kNR, kMR, kNRD>(static_cast<const uint16_t*>(a.w.data), a.K, static_cast<const uint16_t*>(a.xp),
                                              bf16a_stride(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
}
const LinearKernel linear_bf16w_bf16a__neonbf16{&prep_bytes_bf16a, &prep_bf16a, &run_bf16a, true};
}  // namespace

void register_linear_bf16_neonbf16(KernelRegistry& r) {
  r.add({Op::Linear, DType::BF16, DType::BF16, Backend::NeonBf16, "linear_bf16w_bf16a__neonbf16",
         &linear_bf16w_bf16a__neonbf16});
}
}  // namespace llrt::kernels
