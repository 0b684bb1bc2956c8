// I8 Linear (w8a8) with AVX-VNNI (VEX-encoded vpdpbusd on 256-bit registers: Alder
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
#include "../common/linear_q8_ymm.h"
#include "../hooks.h"

namespace llrt::kernels {
namespace {

struct AvxVnniDpbusd {  // u = w ^ 0x80 (unsigned side), vpdpbusd with the int8 codes
  using Code = int8_t;
  static constexpr int kStep = 32;
  static constexpr int64_t kQsumCoef = 128;
  // rs sums u = w + 128 over the padded row (kp lanes; padded lanes hold u = 128).
  static int64_t rsum_offset(int64_t K) { return -128 * q8_round_up(K, 32); }
  static __m256i load_w(const int8_t* p) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(char(0x80)));
  }
  static __m256i dot(__m256i acc, __m256i w, __m256i x) { return _mm256_dpbusd_avx_epi32(acc, w, x); }
  static __m256i row_sum(__m256i rs, __m256i w) { return _mm256_dpbusd_avx_epi32(rs, w, _mm256_set1_epi8(1)); }
};

const LinearKernel k_avxvnni{q8_prep_bytes<int8_t>, q8_prep<int8_t>, q8y_run<AvxVnniDpbusd>, true};

}  // namespace

void register_linear_q8_avxvnni(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::AvxVnni, "linear_i8w_f32a__avx_vnni", &k_avxvnni});
}
}  // namespace llrt::kernels
