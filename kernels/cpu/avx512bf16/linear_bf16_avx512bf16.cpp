// Linear with BF16 weights and F32 activations for AVX512_BF16 (vdpbf16ps).
//
// Math:     y[m, n] = sum_k bf16_rne(x[m, k]) * W[n, k]   for m < M, n in [n0, n1)
// Layout:   W row-major [N, K] BF16, used in place (zero-copy from the file).
//           prep: x [M, ldx] F32 -> xb [M, Kp] BF16, Kp = round_up(K, 32), zero padded
//           (prep_bytes = M * Kp * 2); run reads xb and writes y [M, ldy] F32.
// Rounding: activations rounded once to BF16 (RNE, denormals to zero: |err| <= 2^-8|x|),
//           then exact BF16 x BF16 products summed pairwise into F32 accumulators
//           (vdpbf16ps, lane l holds k = 2l, 2l+1 mod 32); lanes summed in F32; K
//           blocks (an MR-token x-panel in 24 KiB of L1) summed into y in F32 (common/linear_blocked.h).
//           Error vs. exact: <= 2^-8 sum|x w| from the activation rounding plus F32
//           accumulation error.
// Blocking: decode (M == 1) 4 rows x 2 accumulators; prefill micro-tile 4 rows x 6 tokens
//           (24 zmm accumulators), no weight conversion at all in the inner loop.
#include "dot_bf16.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 4, kMR = 6, kNRD = 4;

size_t prep_bytes_bf16(int64_t M, int64_t K) { return size_t(M * bf16_row_stride(K)) * 2; }
void prep_bf16(const float* x, int64_t ldx, int64_t M, int64_t K, void* xp) {
  prep_bf16_rows(x, ldx, M, K, static_cast<uint16_t*>(xp));
}
void run_bf16(const LinearArgs& a) {
  linear_blocked<Bf16DotPolicy, kNR, kMR, kNRD>(static_cast<const uint16_t*>(a.w), a.K,
                                                static_cast<const uint16_t*>(a.xp),
                                                bf16_row_stride(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
}
const LinearKernel linear_bf16w_f32a__avx512bf16{&prep_bytes_bf16, &prep_bf16, &run_bf16};
}  // namespace

void register_linear_bf16_avx512bf16(KernelRegistry& r) {
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Avx512Bf16, "linear_bf16w_f32a__avx512bf16",
         &linear_bf16w_f32a__avx512bf16});
}
}  // namespace llrt::kernels
