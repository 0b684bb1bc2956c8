// Linear in dot-product form, written once over a "dot policy" and compiled per ISA by
// the files that include it (kernels/cpu/<isa>/linear_*.cpp). Header-only ON PURPOSE
// and in an anonymous namespace: every including TU is compiled with its own ISA flags
// and must get its own copy (no COMDAT shared between ISAs).
//
// Math:    y[m, n] = sum_k x[m, k] * W[n, k]   for m in [0, M), n in [n0, n1)
// Layout:  W row-major [N, K] in its stored dtype, read in place (never repacked);
//          x row-major [M, ldx] in the policy's activation form; y row-major [M, ldy] F32.
// Rounding: the policy's `madd` defines the products (exact F32 FMA for the F32-
//          activation policies; BF16 pair dots of split activations for vdpbf16ps,
//          kernels/cpu/avx512bf16/dot_bf16.h). Each (row, token) keeps
//          one accumulator vector (two for M == 1) whose lanes hold k mod KS; lanes are
//          summed in F32 at the end of each K block; for K > kc the block sums are
//          added into y in F32.
//
// Blocking: M == 1 (decode) streams NRD weight rows at once with 2 accumulators each
// (memory bound: enough independent loads in flight); 1 < M < MR (a few tokens, still
// memory bound) streams whole rows once, NR rows x M tokens. Larger M (prefill) is the
// GEMM loop nest: K blocks of kc (an MR x kc x-panel stays in L1), N panels of nc rows (an nc x kc
// W-panel stays in L2 and is read from memory once), micro-tile NR rows x MR tokens in
// registers. Each W vector is loaded/widened once per MR tokens.
//
// A policy P provides: WT, XT (element types), wvec/xvec/acc vector types, KS (k per
// step), optionally xk(k) (where activation k sits in a row of x, default k), zero(),
// load_w(p), load_w_tail(p, n), load_x(p), load_x_tail(p, n),
// madd(acc, w, x), sum(acc, acc), reduce(acc) -> float, and optionally
// reduce4(a, b, c, d, float out[4]) (four lane sums at once, used when NR == 4).
#pragma once
#include <algorithm>
#include <cstdint>

#include "prefetch.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

constexpr int64_t kLinearXPanel = 24 << 10;     // bytes of the MR x kc x-panel (L1)
constexpr int64_t kLinearL2Panel = 1 << 20;     // bytes of W panel kept in L2
constexpr int64_t kLinearSmallX = 256 << 10;     // x bytes below which M < MR skips K blocks

// Offset of activation k in a row of x: k, unless the policy stores x in another
// layout (P::xk, e.g. split BF16 blocks).
template <class P>
constexpr int64_t x_off(int64_t k) {
  if constexpr (requires { P::xk(k); }) return P::xk(k);
  else return k;
}

template <class P, int NR, int MR, int KU>
inline void dot_tile(const typename P::WT* w, int64_t ldw, const typename P::XT* x,
                     int64_t ldx, int64_t kn, float* y, int64_t ldy, bool add) {
  using acc_t = typename P::acc;
  constexpr int KS = P::KS;
  acc_t acc[KU][NR][MR];
#pragma GCC unroll 16
  for (int u = 0; u < KU; ++u)
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[u][r][m] = P::zero();

  int64_t k = 0;
  for (; k + KU * KS <= kn; k += KU * KS) {
#pragma GCC unroll 16
    for (int u = 0; u < KU; ++u) {
      typename P::wvec wv[NR];
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) {
        wv[r] = P::load_w(w + r * ldw + k + u * KS);
        // The next tile's row r at the same k (common/prefetch.h): once per cache line into
        // L2 where an unrolled iteration covers a line, else once per step into L1.
        constexpr int kStepBytes = KS * int(sizeof(typename P::WT));
        constexpr bool kLine = KU * kStepBytes >= 64;
        if (!kLine || (u * kStepBytes) % 64 == 0) prefetch_next_tile<kLine>(w + (NR + r) * ldw + k + u * KS);
      }
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        typename P::xvec xv = P::load_x(x + m * ldx + x_off<P>(k + u * KS));
#pragma GCC unroll 16
        for (int r = 0; r < NR; ++r) acc[u][r][m] = P::madd(acc[u][r][m], wv[r], xv);
      }
    }
  }
  if constexpr (KU > 1) {
    for (; k + KS <= kn; k += KS) {
      typename P::wvec wv[NR];
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) wv[r] = P::load_w(w + r * ldw + k);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        typename P::xvec xv = P::load_x(x + m * ldx + x_off<P>(k));
#pragma GCC unroll 16
        for (int r = 0; r < NR; ++r) acc[0][r][m] = P::madd(acc[0][r][m], wv[r], xv);
      }
    }
  }
  if (k < kn) {
    const int t = int(kn - k);
    typename P::wvec wv[NR];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) wv[r] = P::load_w_tail(w + r * ldw + k, t);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      typename P::xvec xv = P::load_x_tail(x + m * ldx + x_off<P>(k), t);
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[0][r][m] = P::madd(acc[0][r][m], wv[r], xv);
    }
  }
#pragma GCC unroll 16
  for (int u = 1; u < KU; ++u)
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) acc[0][r][m] = P::sum(acc[0][r][m], acc[u][r][m]);
  if constexpr (NR == 4 && requires(acc_t v, float* o) { P::reduce4(v, v, v, v, o); }) {
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      float v[4];
      P::reduce4(acc[0][0][m], acc[0][1][m], acc[0][2][m], acc[0][3][m], v);
      float* out = y + m * ldy;
      for (int r = 0; r < 4; ++r) out[r] = add ? out[r] + v[r] : v[r];
    }
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        const float v = P::reduce(acc[0][r][m]);
        float* out = y + m * ldy + r;
        *out = add ? *out + v : v;
      }
  }
}

// Runs dot_tile<P, nr, mr> for a run-time edge tile (nr <= NR, mr <= MR).
template <class P, int NR, int MR>
inline void dot_tile_edge(int nr, int mr, const typename P::WT* w, int64_t ldw,
                          const typename P::XT* x, int64_t ldx, int64_t kn, float* y,
                          int64_t ldy, bool add) {
  if constexpr (NR > 1)
    if (nr < NR) return dot_tile_edge<P, NR - 1, MR>(nr, mr, w, ldw, x, ldx, kn, y, ldy, add);
  if constexpr (MR > 1)
    if (mr < MR) return dot_tile_edge<P, NR, MR - 1>(nr, mr, w, ldw, x, ldx, kn, y, ldy, add);
  dot_tile<P, NR, MR, 1>(w, ldw, x, ldx, kn, y, ldy, add);
}

template <class P, int NR, int MR, int NRD>
void linear_blocked(const typename P::WT* w, int64_t K, const typename P::XT* x, int64_t ldx,
                    int64_t M, int64_t n0, int64_t n1, float* y, int64_t ldy) {
  if (M <= 0 || n1 <= n0) return;
  if (K <= 0) {  // empty sum
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + n0, y + m * ldy + n1, 0.0f);
    return;
  }
  if (M == 1) {
    int64_t n = n0;
    for (; n + NRD <= n1; n += NRD) dot_tile<P, NRD, 1, 2>(w + n * K, K, x, ldx, K, y + n, ldy, false);
    for (; n < n1; ++n) dot_tile<P, 1, 1, 2>(w + n * K, K, x, ldx, K, y + n, ldy, false);
    return;
  }
  const int64_t x_bytes_per_k = int64_t(sizeof(typename P::XT)) * x_off<P>(1);
  if (M < MR && M * K * x_bytes_per_k <= kLinearSmallX) {
    // A few tokens (memory bound): one pass over W, whole rows, x stays in L1/L2.
    int64_t n = n0;
    for (; n + NR <= n1; n += NR) dot_tile_edge<P, NR, MR - 1>(NR, int(M), w + n * K, K, x, ldx, K, y + n, ldy, false);
    for (; n < n1; ++n) dot_tile_edge<P, 1, MR - 1>(1, int(M), w + n * K, K, x, ldx, K, y + n, ldy, false);
    return;
  }
  const int64_t kc_max = std::max<int64_t>(P::KS, kLinearXPanel / (MR * x_bytes_per_k));
  const int64_t nkb = (K + kc_max - 1) / kc_max;
  const int64_t kc = ((K + nkb - 1) / nkb + P::KS - 1) / P::KS * P::KS;
  const int64_t nc = std::max<int64_t>(
      NR, kLinearL2Panel / (kc * int64_t(sizeof(typename P::WT))) / NR * NR);
  for (int64_t k0 = 0; k0 < K; k0 += kc) {
    const int64_t kn = std::min(kc, K - k0);
    for (int64_t nb = n0; nb < n1; nb += nc) {
      const int64_t ne = std::min(nb + nc, n1);
      for (int64_t m = 0; m < M; m += MR) {
        const int mr = int(std::min<int64_t>(MR, M - m));
        const typename P::XT* xm = x + m * ldx + x_off<P>(k0);
        float* ym = y + m * ldy;
        int64_t n = nb;
        if (mr == MR)
          for (; n + NR <= ne; n += NR)
            dot_tile<P, NR, MR, 1>(w + n * K + k0, K, xm, ldx, kn, ym + n, ldy, k0 > 0);
        for (; n < ne; n += NR) {
          const int nr = int(std::min<int64_t>(NR, ne - n));
          dot_tile_edge<P, NR, MR>(nr, mr, w + n * K + k0, K, xm, ldx, kn, ym + n, ldy, k0 > 0);
        }
      }
    }
  }
}

// A few tokens (batched decode: 2 <= M <= 16, memory bound): tiles of NR weight rows x MR
// tokens over the whole K, rows in order, so each weight row is read from memory once (the
// row panel stays in L1 for the next MR tokens) and every product is the dot form's (the same
// math and rounding as linear_blocked). No K blocks: the M x K activations stay in L2.
template <class P, int NR, int MR>
void linear_few(const typename P::WT* w, int64_t K, const typename P::XT* x, int64_t ldx, int64_t M, int64_t n0,
                int64_t n1, float* y, int64_t ldy) {
  if (M <= 0 || n1 <= n0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(y + m * ldy + n0, y + m * ldy + n1, 0.0f);
    return;
  }
  for (int64_t n = n0; n < n1; n += NR) {
    const int nr = int(std::min<int64_t>(NR, n1 - n));
    for (int64_t m = 0; m < M; m += MR) {
      const int mr = int(std::min<int64_t>(MR, M - m));
      if (nr == NR && mr == MR) dot_tile<P, NR, MR, 1>(w + n * K, K, x + m * ldx, ldx, K, y + m * ldy + n, ldy, false);
      else dot_tile_edge<P, NR, MR>(nr, mr, w + n * K, K, x + m * ldx, ldx, K, y + m * ldy + n, ldy, false);
    }
  }
}

// F32-activation policy over an ISA traits type (Isa::vf is an xsimd batch<float>):
// weights widened exactly to F32 by Isa::load, products fused (FMA) into F32.
template <class Isa, class W>
struct FmaPolicy {
  using WT = W;
  using XT = float;
  using vf = typename Isa::vf;
  using wvec = vf;
  using xvec = vf;
  using acc = vf;
  static constexpr int KS = Isa::L;
  static acc zero() { return vf(0.0f); }
  static wvec load_w(const W* p) { return Isa::load(p); }
  static wvec load_w_tail(const W* p, int n) { return Isa::load_tail(p, n); }
  static xvec load_x(const float* p) { return Isa::load(p); }
  static xvec load_x_tail(const float* p, int n) { return Isa::load_tail(p, n); }
  static acc madd(acc a, wvec w, xvec x) { return xsimd::fma(w, x, a); }
  static acc sum(acc a, acc b) { return a + b; }
  static float reduce(acc a) { return xsimd::hadd(a); }
  static void reduce4(acc a, acc b, acc c, acc d, float* out)
    requires requires { Isa::reduce4(a, b, c, d, out); }
  {
    Isa::reduce4(a, b, c, d, out);
  }
};

}  // namespace
}  // namespace llrt::kernels
