// LinearQ8 (w8a8) with AVX-VNNI (VEX-encoded vpdpbusd on 256-bit registers: Alder
// Lake and later client cores, Sapphire Rapids). Same scheme as the AVX512-VNNI
// variant, 32 products per instruction.
//
// Math:     acc[m, n] = sum_k (q[m, k] - zp[m]) * w[n, k]   (exact int32)
//           y[m, n]   = (float(acc) * s[m]) * w_scale[n]     (two F32 roundings)
// vpdpbusd is unsigned x signed: the weights become the unsigned side with one XOR in
// registers, u = w ^ 0x80 = w + 128 (-128 -> 0: exact), the signed activation codes
// q (-128 allowed) the other; then acc = sum u*q - 128*qsum[m] - zp[m]*rs[n], where
// rs[n] = sum_k w[n,k] comes from vpdpbusd(u, ones) in the same loop, only when some
// token is asymmetric. int32 wrap-around arithmetic throughout (exact for K <= 65536).
// Layout:   w [N, K] int8 as stored (unaligned loads); the K % 32 tail of each row is
//           copied into a zero-filled 32-byte stack buffer (no reads past a row).
//           Activation codes: 64-byte aligned rows, zero padded (shared prep).
// Blocking: NB = 4 weight rows x MB <= 2 tokens (8 ymm accumulators of 16 registers).
// Results are bit-identical to the Ref kernel (shared prep and epilogue).
#include <immintrin.h>

#include <cstring>

#include "../common/linear_q8.h"
#include "../hooks.h"

namespace llrt::kernels {
namespace {

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <int MB, int NB, bool ASYM>
inline void q8_block(const LinearQ8Args& a, const Q8Prep<int8_t>& P, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  const __m256i ones = _mm256_set1_epi8(1);
  __m256i acc[MB][NB], rs[NB];
  const int8_t* w[NB];
  const int8_t* x[MB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) {
    w[j] = a.w + (n0 + j) * K;
    rs[j] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) acc[i][j] = _mm256_setzero_si256();
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) x[i] = P.codes + (m0 + i) * P.lda;

  auto step = [&](const __m256i* wv, int64_t k) __attribute__((always_inline)) {
    if constexpr (ASYM) {
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) rs[j] = _mm256_dpbusd_avx_epi32(rs[j], wv[j], ones);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[i] + k));
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_dpbusd_avx_epi32(acc[i][j], wv[j], xv);
    }
  };
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j)
      wv[j] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[j] + k)), flip);
    step(wv, k);
  }
  if (k < K) {
    __m256i wv[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      alignas(32) int8_t tail[32] = {};
      std::memcpy(tail, w[j] + k, size_t(K - k));
      wv[j] = _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)), flip);
    }
    step(wv, k);  // activation codes are zero past K
  }
  const int64_t kp = q8_round_up(K, 32);  // padded lanes held u = 128
  int64_t rsum[NB];
#pragma GCC unroll 4
  for (int j = 0; j < NB; ++j) rsum[j] = ASYM ? int64_t(hsum_epi32(rs[j])) - 128 * kp : 0;
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i) {
    const int64_t m = m0 + i;
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      const int64_t dot = hsum_epi32(acc[i][j]);
      const int32_t s = int32_t(dot - 128 * int64_t(P.qsum[m]) - int64_t(P.zp[m]) * rsum[j]);
      a.y[m * a.ldy + n0 + j] = q8_epilogue(s, P.scale[m], q8_w_scale(a, n0 + j));
    }
  }
}

template <int NB, bool ASYM>
inline void q8_rows(const LinearQ8Args& a, const Q8Prep<int8_t>& P, int64_t n0) {
  int64_t m = 0;
  for (; m + 2 <= a.M; m += 2) q8_block<2, NB, ASYM>(a, P, m, n0);
  if (m < a.M) q8_block<1, NB, ASYM>(a, P, m, n0);
}

template <bool ASYM>
void q8_run(const LinearQ8Args& a, const Q8Prep<int8_t>& P) {
  int64_t n = a.n0;
  for (; n + 4 <= a.n1; n += 4) q8_rows<4, ASYM>(a, P, n);
  switch (a.n1 - n) {
    case 3: q8_rows<3, ASYM>(a, P, n); break;
    case 2: q8_rows<2, ASYM>(a, P, n); break;
    case 1: q8_rows<1, ASYM>(a, P, n); break;
    default: break;
  }
}

void linear_q8_run_avxvnni(const LinearQ8Args& a) {
  const auto P = Q8Prep<int8_t>::at(a.xq, a.M, a.K);
  bool asym = false;
  for (int64_t m = 0; m < a.M; ++m) asym |= P.zp[m] != 0;
  if (asym) q8_run<true>(a, P);
  else q8_run<false>(a, P);
}

const LinearQ8Kernel k_avxvnni{q8_prep_bytes<int8_t>, q8_prep<int8_t>, linear_q8_run_avxvnni};

}  // namespace

void register_linear_q8_avxvnni(KernelRegistry& r) {
  r.add({Op::LinearQ8, DType::I8, DType::F32, Backend::AvxVnni, "linear_q8_i8w_f32a__avx_vnni", &k_avxvnni});
}
}  // namespace llrt::kernels
