// I8 Linear (w8a8) with FEAT_I8MM (ARMv8.6): SMMLA for two or more tokens, SDOT otherwise.
//
// Math:     as every I8 Linear (kernels/cpu/common/linear_q8.h): acc[m, n] = sum_k q[m, k] w[n, k]
//           - zp[m] sum_k w[n, k], exact int32 wrap-around (exact for K <= 65536);
//           y = (float(acc) * s[m]) * w_scale[n]. Bit-identical to Ref.
// SMMLA:    vmmlaq_s32(c, a, b) with a = 2 tokens x 8 codes, b = 2 weight rows x 8 bytes adds the
//           2 x 2 block of 8-long signed dot products to c (lanes: (t0,r0) (t0,r1) (t1,r0) (t1,r1)),
//           exact in int32. Per 16 k, two SMMLA per (token pair, row pair): the 16-byte loads of
//           two rows are interleaved by 64-bit zips (ZIP1/ZIP2) into their k 0..7 and 8..15 halves.
// Layout:   w [N, K] int8 in place, 16 bytes per load; the K % 16 tail of a row goes through a
//           zero-filled stack copy. Codes: the shared int8 prep (lda = roundup(K, 64), zero past K).
// Blocking: 4 tokens x 8 rows (8 accumulators, 4 activation and 8 weight registers). Rows that
//           do not fill a row pair and a last odd token go through the SDOT walk
//           (kernels/cpu/neon/linear_q8_neon.h); M == 1 (decode) is the SDOT walk.
// Compiled with -march=armv8.2-a+dotprod+i8mm; chosen only where HWCAP2_I8MM (+ the levels below).
#include "kernels/cpu/neon/linear_q8_neon.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
struct NeonSdot {
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_s32(acc, w, x); }
};

inline int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// Tokens m0 .. m0 + 2*MP, rows n0 .. n0 + 2*NP.
template <int MP, int NP, bool ASYM>
inline void mm_block(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  int32x4_t acc[MP][NP], rs[2 * NP];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) {
    rs[2 * q] = rs[2 * q + 1] = vdupq_n_s32(0);
#pragma GCC unroll 4
    for (int p = 0; p < MP; ++p) acc[p][q] = vdupq_n_s32(0);
  }
  const int8_t* w = q8_weights(a) + n0 * K;
  const int8_t* x = P.codes + m0 * P.lda;
  auto step = [&](const int8x16_t* wr, int64_t k) __attribute__((always_inline)) {
    int8x16_t wl[NP], wh[NP], xl[MP], xh[MP];
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      if constexpr (ASYM) rs[2 * q] = q8n_row_sum(rs[2 * q], wr[2 * q]), rs[2 * q + 1] = q8n_row_sum(rs[2 * q + 1], wr[2 * q + 1]);
      wl[q] = zip_lo(wr[2 * q], wr[2 * q + 1]);
      wh[q] = zip_hi(wr[2 * q], wr[2 * q + 1]);
    }
#pragma GCC unroll 4
    for (int p = 0; p < MP; ++p) {
      const int8x16_t x0 = vld1q_s8(x + (2 * p) * P.lda + k), x1 = vld1q_s8(x + (2 * p + 1) * P.lda + k);
      xl[p] = zip_lo(x0, x1);
      xh[p] = zip_hi(x0, x1);
    }
#pragma GCC unroll 4
    for (int p = 0; p < MP; ++p)
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) acc[p][q] = vmmlaq_s32(vmmlaq_s32(acc[p][q], xl[p], wl[q]), xh[p], wh[q]);
  };
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    int8x16_t wr[2 * NP];
#pragma GCC unroll 16
    for (int j = 0; j < 2 * NP; ++j) wr[j] = vld1q_s8(w + j * K + k);
    step(wr, k);
  }
  if (k < K) {
    int8x16_t wr[2 * NP];
#pragma GCC unroll 16
    for (int j = 0; j < 2 * NP; ++j) {
      int8_t tail[16] = {};
      std::memcpy(tail, w + j * K + k, size_t(K - k));
      wr[j] = vld1q_s8(tail);
    }
    step(wr, k);
  }
#pragma GCC unroll 4
  for (int p = 0; p < MP; ++p)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) {
      int32_t v[4];
      vst1q_s32(v, acc[p][q]);
      for (int t = 0; t < 2; ++t)
        for (int r = 0; r < 2; ++r) {
          const int64_t m = m0 + 2 * p + t, n = n0 + 2 * q + r;
          const int32_t rsum = ASYM ? vaddvq_s32(rs[2 * q + r]) : 0;
          const int32_t s = int32_t(uint32_t(v[2 * t + r]) - uint32_t(P.zp[m]) * uint32_t(rsum));
          a.y[m * a.ldy + n] = q8_epilogue(s, P.scale[m], q8_w_scale(a, n));
        }
    }
}

template <int NP, bool ASYM>
inline void mm_rows(const LinearArgs& a, const Q8Prep<int8_t>& P, int64_t n0, int64_t mpairs) {
  int64_t p = 0;
  for (; p + 2 <= mpairs; p += 2) mm_block<2, NP, ASYM>(a, P, 2 * p, n0);
  if (p < mpairs) mm_block<1, NP, ASYM>(a, P, 2 * p, n0);
}

template <bool ASYM>
void mm_walk(const LinearArgs& a, const Q8Prep<int8_t>& P) {
  const int64_t mpairs = a.M / 2;
  int64_t n = a.n0;
  for (; n + 8 <= a.n1; n += 8) mm_rows<4, ASYM>(a, P, n, mpairs);
  switch ((a.n1 - n) / 2) {
    case 3: mm_rows<3, ASYM>(a, P, n, mpairs); break;
    case 2: mm_rows<2, ASYM>(a, P, n, mpairs); break;
    case 1: mm_rows<1, ASYM>(a, P, n, mpairs); break;
    default: break;
  }
  n += (a.n1 - n) / 2 * 2;
  if (n < a.n1) {  // the last odd row, every paired token: SDOT
    LinearArgs b = a;
    b.n0 = n;
    q8n_run_tokens<NeonSdot>(b, 0, mpairs * 2);
  }
}

void run_i8mm(const LinearArgs& a) {
  if (a.M < 2) return q8n_run<NeonSdot>(a);
  const auto P = Q8Prep<int8_t>::at(a.xp, a.M, a.K);
  if (q8n_any_asym(P, a.M)) mm_walk<true>(a, P);
  else mm_walk<false>(a, P);
  if (a.M % 2) q8n_run_tokens<NeonSdot>(a, a.M - 1, a.M);  // the last odd token
}

const LinearKernel k_i8mm{q8_prep_bytes<int8_t>, q8_prep<int8_t>, run_i8mm, true};
}  // namespace

void register_linear_q8_neoni8mm(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::NeonI8mm, "linear_i8w_f32a__neoni8mm", &k_i8mm});
}
}  // namespace llrt::kernels
