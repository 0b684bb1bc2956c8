// BF16 weights x F32 activations without a widening shuffle: the decode (M == 1) policy of the
// AVX2 and AVX-512 BF16 Linears. Header-only, anonymous namespace: one copy per ISA TU.
//
// A BF16 number is the top half of an F32. Loaded as 32-bit words, 2L BF16 weights give
//   even = word << 16         (weights k = 2i, as F32, exactly)
//   odd  = word & 0xffff0000  (weights k = 2i+1, as F32, exactly)
// with two in-lane integer operations, where the usual widening (zero-extend 16 -> 32, then
// shift) costs a cross-lane shuffle per L weights (one port on Intel; split 512-bit shuffles
// on AMD Zen 4). The activations are prepared to match: per block of 2L k, the L even k then
// the L odd k.
//
// Math:     y[0, n] = sum_k W[n, k] * x[k]
// Layout:   W [N, K] BF16 row-major, in place. prep (M == 1): x F32 -> [Kp] F32, Kp =
//           round_up(K, 2L), block b: x[2Lb + 2i] at 2Lb + i, x[2Lb + 2i + 1] at 2Lb + L + i,
//           zero for k >= K.
// Rounding: exact F32 products (BF16 -> F32 is exact), fused into F32 accumulators: lane i of
//           the even accumulator holds k = 2i mod 2L, of the odd one k = 2i+1 mod 2L; both
//           summed in F32 at the end (the F32-grade contract of the FMA Linears, another order).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_packed.h"
#include "kernels/cpu/common/wtypes.h"
#include "src/engine/kernels.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

template <class Isa>
inline int64_t evenodd_row_stride(int64_t K) {
  constexpr int64_t B = 2 * Isa::L;
  return (K + B - 1) / B * B;
}

template <class Isa>
inline void prep_evenodd_row(const float* x, int64_t K, float* xp) {
  constexpr int64_t L = Isa::L, B = 2 * L;
  const int64_t Kp = evenodd_row_stride<Isa>(K);
  for (int64_t b = 0; b < Kp; b += B)
    for (int64_t i = 0; i < L; ++i) {
      const int64_t ke = b + 2 * i, ko = ke + 1;
      xp[b + i] = ke < K ? x[ke] : 0.0f;
      xp[b + L + i] = ko < K ? x[ko] : 0.0f;
    }
}

template <class Isa>
struct Bf16EvenOddPolicy {
  using arch = typename Isa::arch;
  using vf = xsimd::batch<float, arch>;
  using vu = xsimd::batch<uint32_t, arch>;
  static constexpr int L = Isa::L;
  using WT = uint16_t;
  using XT = float;
  using wvec = vu;
  struct xvec {
    vf e, o;
  };
  using acc = vf;
  static constexpr int KS = 2 * L;
  static acc zero() { return vf(0.0f); }
  static wvec load_w(const uint16_t* p) { return vu::load_unaligned(reinterpret_cast<const uint32_t*>(p)); }
  static wvec load_w_tail(const uint16_t* p, int n) {  // n < 2L weights; the rest zero, unread
    alignas(64) uint16_t b[2 * L] = {};
    std::memcpy(b, p, size_t(n) * 2);
    return vu::load_aligned(reinterpret_cast<const uint32_t*>(b));
  }
  static xvec load_x(const float* p) { return {vf::load_unaligned(p), vf::load_unaligned(p + L)}; }
  static xvec load_x_tail(const float* p, int) { return load_x(p); }  // prep zero-pads to Kp
  static acc madd(acc a, wvec w, xvec x) {
    const vf even = xsimd::bitwise_cast<vf>(w << 16);
    const vf odd = xsimd::bitwise_cast<vf>(w & vu(0xffff0000u));
    return xsimd::fma(odd, x.o, xsimd::fma(even, x.e, a));
  }
  static acc sum(acc a, acc b) { return a + b; }
  static float reduce(acc a) { return xsimd::hadd(a); }
  static void reduce4(acc a, acc b, acc c, acc d, float* out)
    requires requires { Isa::reduce4(a, b, c, d, out); }
  {
    Isa::reduce4(a, b, c, d, out);
  }
};

// The F32-activation BF16 Linear of every x86 ISA file (avx2, avx512, avx512bf16), written once:
//   M == 1: the even/odd policy above (prep writes x in that order, Kp F32);
//   2 <= M <= FewMaxM (when the ISA file sets it): linear_few, FewNR rows x FewMR tokens over
//     the whole K, each weight row read once (batched decode);
//   2 <= M < kPackedMinM otherwise: the dot form (common/linear_blocked.h), weights widened per MR tokens;
//   M >= kPackedMinM: the packed broadcast form (common/linear_packed.h).
// prep_bytes is the M == 1 size for every M >= 1 (non-decreasing; M >= 2 reads x directly).
template <class Isa>
size_t bf16_linear_prep_bytes(int64_t M, int64_t K) {
  return M >= 1 ? size_t(evenodd_row_stride<Isa>(K)) * 4 : 0;
}
template <class Isa>
void bf16_linear_prep(const LinearPrepArgs& p) {
  if (p.M == 1) prep_evenodd_row<Isa>(p.x, p.K, static_cast<float*>(p.xp));
}
template <class Isa, int NR, int MR, int NRD, int PackNV, int PackMR, int FewNR = 0, int FewMR = 0, int FewMaxM = 0>
void bf16_linear_run(const LinearArgs& a) {
  if constexpr (FewMaxM > 0)
    if (a.M >= 2 && a.M <= FewMaxM)
      return linear_few<FmaPolicy<Isa, bf16_t>, FewNR, FewMR>(static_cast<const bf16_t*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0,
                                                              a.n1, a.y, a.ldy);
  if (a.M == 1)
    linear_blocked<Bf16EvenOddPolicy<Isa>, NR, MR, NRD>(static_cast<const uint16_t*>(a.w.data), a.K, static_cast<const float*>(a.xp),
                                                       evenodd_row_stride<Isa>(a.K), 1, a.n0, a.n1, a.y, a.ldy);
  else if (a.M >= kPackedMinM)
    linear_packed<Isa, bf16_t, PackNV, PackMR>(static_cast<const bf16_t*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y, a.ldy);
  else
    linear_blocked<FmaPolicy<Isa, bf16_t>, NR, MR, NRD>(static_cast<const bf16_t*>(a.w.data), a.K, a.x, a.ldx, a.M, a.n0, a.n1, a.y,
                                                        a.ldy);
}

}  // namespace
}  // namespace llrt::kernels
