// I8 Linear (w8a8) with AVX512-VNNI vpdpbusd: 64 int8 products per instruction.
// Written once here, compiled into the avx512_vnni library (linear_q8_avx512vnni.cpp)
// and into the amx library (linear_q8_amx.cpp: small M, row remainders). Anonymous
// namespace on purpose: each ISA translation unit gets its own copy.
//
// Math:     acc[m, n] = sum_k (q[m, k] - zp[m]) * w[n, k]   (exact int32)
//           y[m, n]   = (float(acc) * s[m]) * w_scale[n]     (two F32 roundings)
// vpdpbusd multiplies UNSIGNED bytes by SIGNED bytes. The weights are the unsigned
// side, flipped in registers with one XOR: u = w ^ 0x80 = w + 128 (so -128 -> 0,
// 127 -> 255: every code exact, nothing converted in memory). The activation codes
// q (signed, -128 allowed) are the signed side. Then
//   sum_k u[n,k] q[m,k] = sum_k w q + 128 * qsum[m]       (qsum from the prep)
// and for asymmetric activations rs[n] = sum_k w[n, k] comes from a second vpdpbusd of
// u with a vector of ones, in the same loop (only when some token has zp != 0):
//   acc = dot - 128 * qsum[m] - zp[m] * rs[n].
// Every step is int32 wrap-around arithmetic, so acc is exact whenever the true value
// fits int32 (K <= 65536 guarantees it). No saturation anywhere (vpdpbusd, not vpdpbusds).
// Layout:   w [N, K] int8 row-major as stored, read with unaligned loads (a masked load
//           for the K % 64 tail: never past the end of a row); activation codes
//           64-byte aligned rows of lda = roundup(K, 64) with zero padding (shared prep).
// Blocking: NB = 4 weight rows x MB <= 4 tokens per pass over K: 16 zmm accumulators,
//           one 512-bit lane-sum per (m, n) at the end. Weights stream once per 4 tokens.
// The epilogue and the prep are the shared scalar code: results are bit-identical to
// the Ref kernel.
#pragma once
#include <immintrin.h>

#include "../common/linear_q8.h"

namespace llrt::kernels {
namespace {

template <int MB, int NB, bool ASYM>
inline void q8_block(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc[MB][NB], rs[NB];
  const int8_t* w[NB];
  const int8_t* x[MB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) {
    w[j] = q8_weights(a) + (n0 + j) * K;
    rs[j] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) acc[i][j] = _mm512_setzero_si512();
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) x[i] = P.codes + (m0 + i) * P.lda;

  auto step = [&](const __m512i* wv) __attribute__((always_inline)) {
    if constexpr (ASYM) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) rs[j] = _mm512_dpbusd_epi32(rs[j], wv[j], ones);
    }
  };
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    __m512i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      wv[j] = _mm512_xor_si512(_mm512_loadu_si512(w[j] + k), flip);
      prefetch_next_tile<true>(w[j] + NB * K + k);  // the next tile's row j (common/prefetch.h)
    }
    step(wv);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m512i xv = _mm512_load_si512(x[i] + k);
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[j], xv);
    }
  }
  if (k < K) {
    const __mmask64 mask = _cvtu64_mask64((~0ull) >> (64 - (K - k)));
    __m512i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) wv[j] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, w[j] + k), flip);
    step(wv);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m512i xv = _mm512_load_si512(x[i] + k);  // zero padded past K
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv[j], xv);
    }
  }
  // Padded lanes held u = 128 (w = 0): rs = sum(u) - 128 * Kp with Kp = roundup(K, 64).
  const int64_t kp = q8_round_up(K, 64);
  int64_t rsum[NB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j)
    rsum[j] = ASYM ? int64_t(_mm512_reduce_add_epi32(rs[j])) - 128 * kp : 0;
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) {
    const int64_t m = m0 + i;
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      const int64_t dot = _mm512_reduce_add_epi32(acc[i][j]);
      const int32_t s = int32_t(dot - 128 * int64_t(P.qsum[m]) - int64_t(P.zp[m]) * rsum[j]);
      a.y[m * a.ldy + n0 + j] = q8_epilogue(s, P.scale[m], q8_w_scale(a, n0 + j));
    }
  }
}

template <int NB, bool ASYM>
inline void q8_rows(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t n0) {
  int64_t m = 0;
  for (; m + 4 <= a.M; m += 4) q8_block<4, NB, ASYM>(a, P, m, n0);
  switch (a.M - m) {
    case 3: q8_block<3, NB, ASYM>(a, P, m, n0); break;
    case 2: q8_block<2, NB, ASYM>(a, P, m, n0); break;
    case 1: q8_block<1, NB, ASYM>(a, P, m, n0); break;
    default: break;
  }
}

template <bool ASYM>
void q8_run(const LinearArgs& a, const Q8Prep<int8_t>& P) {
  int64_t n = a.n0;
  for (; n + 4 <= a.n1; n += 4) q8_rows<4, ASYM>(a, P, n);
  switch (a.n1 - n) {
    case 3: q8_rows<3, ASYM>(a, P, n); break;
    case 2: q8_rows<2, ASYM>(a, P, n); break;
    case 1: q8_rows<1, ASYM>(a, P, n); break;
    default: break;
  }
}

// Rows [a.n0, a.n1) of all M tokens from row-major prepped codes P.
inline void q8_vnni512_run(const LinearArgs& a, const Q8Prep<int8_t>& P) {
  bool asym = false;
  for (int64_t m = 0; m < a.M; ++m) asym |= P.zp[m] != 0;
  if (asym) q8_run<true>(a, P);
  else q8_run<false>(a, P);
}

}  // namespace
}  // namespace llrt::kernels
