// Linear with BF16 weights for AVX512_BF16: two kernels.
//
// linear_bf16w_f32a__avx512bf16 (F32-grade activations), the AVX-512 BF16 Linear:
//   M == 1 (decode, memory bound): the even/odd split of kernels/cpu/common/
//     linear_bf16_evenodd.h (exact F32 products, no widening shuffle). Measured faster than
//     vdpbf16ps on split activations (x ~ xh + xl in two BF16, two instructions per 64 weight
//     bytes): linear_hot 75 vs 53 GB/s per core, and exact instead of 2^-16.
//   M >= 2 (prefill, compute bound): W widened exactly to F32 and FMA with the F32
//     activations (2..16: linear_few, 2 rows x 8 tokens over the whole K, each weight row
//     read once; M > 16: the packed broadcast form of common/linear_packed.h): vdpbf16ps
//     issues one per cycle on Sapphire Rapids, half the FMA rate.
// Layout:   W row-major [N, K] BF16, used in place (zero-copy from the file).
//           prep (M == 1): x in the even/odd block order, Kp = round_up(K, 32) F32
//           (prep_bytes = Kp * 4). M >= 2: prep writes nothing and run reads x [M, ldx].
// Rounding: exact F32 products fused into F32 accumulators; lanes summed in F32; K blocks
//           (an MR-token x-panel in 24 KiB of L1) summed into y in F32.
// Blocking: decode 4 rows x 2 accumulators; prefill micro-tile 4 rows x 6 tokens (24 zmm).
//
// linear_bf16w_bf16a__avx512bf16 (activations rounded once to BF16, registered as
// Linear BF16w/BF16a; chosen only where measured faster, never with LLRT_ACT=f32):
// Math:     y[m, n] = sum_k W[n, k] * bf16_rne(x[m, k]), every M.
// Layout:   prep: x F32 -> [M, Kp] BF16, Kp = round_up(K, 32), zero padded (prep_bytes
//           M * Kp * 2; prep_rows lets threads share it). W [N, K] BF16 in place; y F32.
// Rounding: x to BF16 nearest even (denormals to zero): |x - xb| <= 2^-8 |x|, as HF's own
//           BF16 run rounds its activations; BF16 x BF16 products exact in F32, pair-summed
//           into F32 accumulators by vdpbf16ps (lane l: k = 2l, 2l+1 mod 32); lanes summed
//           in F32; K blocks summed into y in F32.
// Blocking: decode (M < 8) 4 rows x 2 accumulators (one vdpbf16ps per 64 weight bytes);
//           prefill (M >= 8) the broadcast form of linear_bf16a_packed.h (12 tokens x 32 rows).
#include "dot_bf16.h"
#include "linear_bf16a_packed.h"
#include "kernels/cpu/avx512/isa_avx512.h"
#include "kernels/cpu/common/linear_blocked.h"
#include "kernels/cpu/common/linear_packed.h"
#include "kernels/cpu/common/linear_bf16_evenodd.h"
#include "kernels/cpu/hooks.h"

namespace llrt::kernels {
namespace {
constexpr int kNR = 4, kMR = 6, kNRD = 4;

const LinearKernel linear_bf16w_f32a__avx512bf16{&bf16_linear_prep_bytes<IsaAvx512>, &bf16_linear_prep<IsaAvx512>,
                                                 &bf16_linear_run<IsaAvx512, kNR, kMR, kNRD, 2, 12, 2, 8, 16>};

size_t prep_bytes_bf16a(int64_t M, int64_t K) { return size_t(std::max<int64_t>(M, 1)) * size_t(bf16_row_stride(K)) * 2; }
void prep_bf16a(const LinearPrepArgs& p) {
  prep_bf16_round_rows(p.x, p.ldx, p.m0, p.m1, p.K, static_cast<uint16_t*>(p.xp));
}
void run_bf16a(const LinearArgs& a) {
  if (a.M >= kPackedMinM)
    return linear_bf16a_packed(static_cast<const uint16_t*>(a.w.data), a.K, static_cast<const uint16_t*>(a.xp),
                               bf16_row_stride(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
  linear_blocked<Bf16DotPolicy, kNR, kMR, kNRD>(static_cast<const uint16_t*>(a.w.data), a.K, static_cast<const uint16_t*>(a.xp),
                                                bf16_row_stride(a.K), a.M, a.n0, a.n1, a.y, a.ldy);
}
const LinearKernel linear_bf16w_bf16a__avx512bf16{&prep_bytes_bf16a, &prep_bf16a, &run_bf16a, true};
}  // namespace

void register_linear_bf16_avx512bf16(KernelRegistry& r) {
  r.add({Op::Linear, DType::BF16, DType::F32, Backend::Avx512Bf16, "linear_bf16w_f32a__avx512bf16",
         &linear_bf16w_f32a__avx512bf16});
  r.add({Op::Linear, DType::BF16, DType::BF16, Backend::Avx512Bf16, "linear_bf16w_bf16a__avx512bf16",
         &linear_bf16w_bf16a__avx512bf16});
}
}  // namespace llrt::kernels
