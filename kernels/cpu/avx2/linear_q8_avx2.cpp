// I8 Linear (w8a8) on plain AVX2 (no VNNI): widen to 16 bits, vpmaddwd.
//
// Math:     acc[m, n] = sum_k (q[m, k] - zp[m]) * w[n, k]   (exact int32)
//           y[m, n]   = (float(acc) * s[m]) * w_scale[n]     (two F32 roundings)
// Why not vpmaddubsw: it is unsigned x signed and SATURATES its int16 pair sums
// (255*127*2 > 32767), and the sign trick (|w| with sign moved onto q) breaks on
// q = -128 (its negation does not fit int8), which asymmetric and static activations
// produce. Widening is exact for every code: the prep stores the activation codes as
// int16 (so only the weights are widened in the loop, vpmovsxbw), and vpmaddwd sums
// pairs of int16 products into int32 (|pair| <= 2 * 128 * 128 = 32768: no overflow).
// Asymmetric activations: rs[n] = sum_k w[n, k] by vpmaddwd(w16, ones) in the same
// loop (only when some token has zp != 0); acc = dot - zp[m] * rs[n]. int32
// wrap-around arithmetic; exact for K <= 65536.
// Layout:   w [N, K] int8 as stored, 16 bytes per load; the K % 16 tail of a row is
//           copied into a zero-filled stack buffer (no reads past a row). Activation
//           codes: int16 rows of lda = roundup(K, 64), zero padded (shared prep).
// Blocking: NB = 4 weight rows x MB <= 2 tokens (8 ymm accumulators).
// Results are bit-identical to the Ref kernel (shared prep and epilogue).
#include "../common/linear_q8_ymm.h"
#include "../hooks.h"

namespace llrt::kernels {
namespace {

struct Avx2Madd {  // weights widened to int16, vpmaddwd with the int16 activation codes
  using Code = int16_t;
  static constexpr int kStep = 16;
  static constexpr int64_t kQsumCoef = 0;
  static int64_t rsum_offset(int64_t) { return 0; }
  static __m256i load_w(const int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static __m256i dot(__m256i acc, __m256i w, __m256i x) { return _mm256_add_epi32(acc, _mm256_madd_epi16(w, x)); }
  static __m256i row_sum(__m256i rs, __m256i w) { return _mm256_add_epi32(rs, _mm256_madd_epi16(w, _mm256_set1_epi16(1))); }
};

const LinearKernel k_avx2{q8_prep_bytes<int16_t>, q8_prep<int16_t>, q8y_run<Avx2Madd>, true};

}  // namespace

void register_linear_q8_avx2(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::Avx2, "linear_i8w_f32a__avx2", &k_avx2});
}
}  // namespace llrt::kernels
