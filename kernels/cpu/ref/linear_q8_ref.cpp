// Reference (scalar) I8 Linear: the oracle for every SIMD variant.
//
// Math:     acc[m, n] = sum_k (q[m, k] - zp[m]) * w[n, k]     exact, in int64
//           y[m, n]   = (float(acc) * s[m]) * w_scale[n]       two F32 roundings
// Layout:   w int8 [N, K] row-major as stored; w_scale [N] or [1] in BF16/F16/F32;
//           activations quantized by the shared prep (kernels/cpu/common/linear_q8.h)
//           into int8 codes, per-token scale and zero point.
// Rounding: activation codes round half to even (the shared prep); the integer sum is
//           exact (int64, then checked to fit int32 as the contract promises for
//           K <= 65536); the epilogue rounds twice in F32. SIMD variants must match
//           this bit for bit.
#include "../common/linear_q8.h"
#include "../hooks.h"

namespace llrt::kernels {
namespace {

void linear_q8_run_ref(const LinearArgs& a) {
  const auto P = Q8Prep<int8_t>::at(a.xp, a.M, a.K);
  for (int64_t m = 0; m < a.M; ++m) {
    const int8_t* q = P.codes + m * P.lda;
    const int64_t zp = P.zp[m];
    for (int64_t n = a.n0; n < a.n1; ++n) {
      const int8_t* w = q8_weights(a) + n * a.K;
      int64_t acc = 0;
      for (int64_t k = 0; k < a.K; ++k) acc += (int64_t(q[k]) - zp) * int64_t(w[k]);
      a.y[m * a.ldy + n] = q8_epilogue(int32_t(acc), P.scale[m], q8_w_scale(a, n));
    }
  }
}

const LinearKernel k_ref{q8_prep_bytes<int8_t>, q8_prep<int8_t>, linear_q8_run_ref, true};

}  // namespace

void register_linear_q8_ref(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::Ref, "linear_i8w_f32a__ref", &k_ref});
}
}  // namespace llrt::kernels
