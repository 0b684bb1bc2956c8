// The 256-bit I8 Linear tile walk shared by the AVX2 and AVX-VNNI variants; each
// variant supplies only its inner product through a traits struct `T`:
//   using Code                      activation code type in the prep (int16 / int8)
//   kStep                           weight bytes per load (16 widened / 32 raw)
//   load_w(const int8_t* p)         kStep weight bytes -> one ymm in the form dot() takes
//   dot(acc, w, x), row_sum(rs, w)  int32 lane sums of w*x / of w (for asymmetric tokens)
//   kQsumCoef, rsum_offset(K)       the correction the weight encoding needs
//                                   (VNNI's u = w + 128: acc -= 128*qsum[m], rs -= 128*kp)
// acc[m, n] = dot - kQsumCoef*qsum[m] - zp[m]*(rowsum + rsum_offset), exact int32
// wrap-around arithmetic (exact for K <= 65536); y = q8_epilogue (two F32 roundings).
// Blocking: NB = 4 weight rows x MB <= 2 tokens (8 ymm accumulators). The K % kStep tail
// of a row is copied into a zero-filled stack buffer (no reads past a row); activation
// codes are zero past K (shared prep).
// Anonymous namespace: each ISA translation unit compiles its own copy with its flags.
#pragma once
#include <immintrin.h>

#include <cstring>

#include "linear_q8.h"

namespace llrt::kernels {
namespace {

inline int32_t q8y_hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <class T, int MB, int NB, bool ASYM>
inline void q8y_block(const LinearArgs& a, const Q8Prep<typename T::Code>& P, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  __m256i acc[MB][NB], rs[NB];
  const int8_t* w[NB];
  const typename T::Code* x[MB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) {
    w[j] = q8_weights(a) + (n0 + j) * K;
    rs[j] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) acc[i][j] = _mm256_setzero_si256();
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) x[i] = P.codes + (m0 + i) * P.lda;

  auto step = [&](const __m256i* wv, int64_t k) __attribute__((always_inline)) {
    if constexpr (ASYM) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) rs[j] = T::row_sum(rs[j], wv[j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[i] + k));
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[i][j] = T::dot(acc[i][j], wv[j], xv);
    }
  };
  int64_t k = 0;
  // 64 bytes (one cache line) per row per pass, prefetching the next tile's rows once per
  // line (common/prefetch.h). Not for the widening (16-byte) variant with two tokens: there
  // the unrolled 64-byte body cost a quarter of its prefill speed (bench_q8 M = 128: 112 -> 82
  // GOP/s), while the AVX-VNNI variant gains from it at every M (M = 16: 149 -> 180, 2 threads).
  if constexpr (MB == 1 || T::kStep >= 32) {
    for (; k + 64 <= K; k += 64) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) prefetch_next_tile<true>(w[j] + NB * K + k);
#pragma GCC unroll 4
      for (int u = 0; u < 64; u += T::kStep) {
        __m256i wv[NB];
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) wv[j] = T::load_w(w[j] + k + u);
        step(wv, k + u);
      }
    }
  }
  for (; k + T::kStep <= K; k += T::kStep) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) wv[j] = T::load_w(w[j] + k);
    step(wv, k);
  }
  if (k < K) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      alignas(32) int8_t tail[T::kStep] = {};
      std::memcpy(tail, w[j] + k, size_t(K - k));
      wv[j] = T::load_w(tail);
    }
    step(wv, k);
  }
  int64_t rsum[NB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) rsum[j] = ASYM ? int64_t(q8y_hsum_epi32(rs[j])) + T::rsum_offset(K) : 0;
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) {
    const int64_t m = m0 + i;
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      const int64_t dot = q8y_hsum_epi32(acc[i][j]);
      const int32_t s = int32_t(dot - T::kQsumCoef * int64_t(P.qsum[m]) - int64_t(P.zp[m]) * rsum[j]);
      a.y[m * a.ldy + n0 + j] = q8_epilogue(s, P.scale[m], q8_w_scale(a, n0 + j));
    }
  }
}

template <class T, int NB, bool ASYM>
inline void q8y_rows(const LinearArgs& a, const Q8Prep<typename T::Code>& P, int64_t n0) {
  int64_t m = 0;
  for (; m + 2 <= a.M; m += 2) q8y_block<T, 2, NB, ASYM>(a, P, m, n0);
  if (m < a.M) q8y_block<T, 1, NB, ASYM>(a, P, m, n0);
}

template <class T, bool ASYM>
void q8y_walk(const LinearArgs& a, const Q8Prep<typename T::Code>& P) {
  int64_t n = a.n0;
  for (; n + 4 <= a.n1; n += 4) q8y_rows<T, 4, ASYM>(a, P, n);
  switch (a.n1 - n) {
    case 3: q8y_rows<T, 3, ASYM>(a, P, n); break;
    case 2: q8y_rows<T, 2, ASYM>(a, P, n); break;
    case 1: q8y_rows<T, 1, ASYM>(a, P, n); break;
    default: break;
  }
}

// The kernel's run(): rows [n0, n1) of y for all M tokens.
template <class T>
void q8y_run(const LinearArgs& a) {
  const auto P = Q8Prep<typename T::Code>::at(a.xp, a.M, a.K);
  bool asym = false;
  for (int64_t m = 0; m < a.M; ++m) asym |= P.zp[m] != 0;
  if (asym) q8y_walk<T, true>(a, P);
  else q8y_walk<T, false>(a, P);
}

}  // namespace
}  // namespace llrt::kernels
