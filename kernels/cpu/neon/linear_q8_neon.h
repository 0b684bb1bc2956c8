// The NEON I8 Linear (w8a8) tile walk shared by the plain-NEON, SDOT and I8MM variants; each
// variant supplies only its 16-byte inner product through a traits struct `T`:
//   dot(acc, w, x)   acc (int32x4) += the products w[i] * x[i] of 16 int8 pairs, summed into
//                    lanes (which lane holds which k does not matter: lanes are summed at the end)
// Math:     acc[m, n] = sum_k q[m, k] * w[n, k] - zp[m] * sum_k w[n, k]   (exact int32 wrap-around
//           arithmetic; exact for K <= 65536), y = q8_epilogue (two F32 roundings). Activation
//           codes are the shared int8 prep of common/linear_q8.h (the same codes as Ref), so
//           every variant is bit-identical to the Ref kernel.
// Layout:   w [N, K] int8 as stored, 16 bytes per load; the K % 16 tail of a row is copied
//           into a zero-filled stack buffer (no reads past a row). Codes: int8 rows of
//           lda = roundup(K, 64), zero past K (aligned 16-byte loads never leave the row).
// Blocking: NB = 4 weight rows x MB <= 4 tokens (16 accumulators of the 32 v-registers).
// Anonymous namespace: each ISA library compiles its own copy with its flags.
#pragma once
#include <arm_neon.h>

#include <cstring>

#include "kernels/cpu/common/linear_q8.h"

namespace llrt::kernels {
namespace {

// Row sums of w for asymmetric tokens: pairwise widening adds (exact).
inline int32x4_t q8n_row_sum(int32x4_t rs, int8x16_t w) { return vpadalq_s16(rs, vpaddlq_s8(w)); }

template <class T, int MB, int NB, bool ASYM>
inline void q8n_block(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  int32x4_t acc[MB][NB], rs[NB];
  const int8_t* w[NB];
  const int8_t* x[MB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) {
    w[j] = q8_weights(a) + (n0 + j) * K;
    rs[j] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) acc[i][j] = vdupq_n_s32(0);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) x[i] = P.codes + (m0 + i) * P.lda;

  auto step = [&](const int8x16_t* wv, int64_t k) __attribute__((always_inline)) {
    if constexpr (ASYM) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) rs[j] = q8n_row_sum(rs[j], wv[j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const int8x16_t xv = vld1q_s8(x[i] + k);
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[i][j] = T::dot(acc[i][j], wv[j], xv);
    }
  };
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    int8x16_t wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) wv[j] = vld1q_s8(w[j] + k);
    step(wv, k);
  }
  if (k < K) {
    int8x16_t wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      int8_t tail[16] = {};
      std::memcpy(tail, w[j] + k, size_t(K - k));
      wv[j] = vld1q_s8(tail);
    }
    step(wv, k);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) {
    const int64_t m = m0 + i;
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      const int32_t rsum = ASYM ? vaddvq_s32(rs[j]) : 0;
      const int32_t s = int32_t(uint32_t(vaddvq_s32(acc[i][j])) - uint32_t(P.zp[m]) * uint32_t(rsum));
      a.y[m * a.ldy + n0 + j] = q8_epilogue(s, P.scale[m], q8_w_scale(a, n0 + j));
    }
  }
}

template <class T, int NB, bool ASYM>
inline void q8n_rows(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t n0, int64_t m0, int64_t m1) {
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) q8n_block<T, 4, NB, ASYM>(a, P, m, n0);
  switch (m1 - m) {
    case 3: q8n_block<T, 3, NB, ASYM>(a, P, m, n0); break;
    case 2: q8n_block<T, 2, NB, ASYM>(a, P, m, n0); break;
    case 1: q8n_block<T, 1, NB, ASYM>(a, P, m, n0); break;
    default: break;
  }
}

template <class T, bool ASYM>
void q8n_walk(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t m0, int64_t m1) {
  int64_t n = a.n0;
  for (; n + 4 <= a.n1; n += 4) q8n_rows<T, 4, ASYM>(a, P, n, m0, m1);
  switch (a.n1 - n) {
    case 3: q8n_rows<T, 3, ASYM>(a, P, n, m0, m1); break;
    case 2: q8n_rows<T, 2, ASYM>(a, P, n, m0, m1); break;
    case 1: q8n_rows<T, 1, ASYM>(a, P, n, m0, m1); break;
    default: break;
  }
}

inline bool q8n_any_asym(const Q8Prep<int8_t>& P, int64_t M) {
  bool asym = false;
  for (int64_t m = 0; m < M; ++m) asym |= P.zp[m] != 0;
  return asym;
}

// Tokens [m0, m1) of y for rows [n0, n1).
template <class T>
void q8n_run_tokens(const LinearArgs& a, int64_t m0, int64_t m1) {
  const auto P = Q8Prep<int8_t>::at(a.xp, a.M, a.K);
  if (q8n_any_asym(P, a.M)) q8n_walk<T, true>(a, P, m0, m1);
  else q8n_walk<T, false>(a, P, m0, m1);
}

// The kernel's run(): rows [n0, n1) of y for all M tokens.
template <class T>
void q8n_run(const LinearArgs& a) { q8n_run_tokens<T>(a, 0, a.M); }

}  // namespace
}  // namespace llrt::kernels
