// RoPE (HF rotate_half) on the q and k heads of T tokens, fused with the KV-cache write.
//
// Math:     for token t at position p = p0 + t, every head, i < half = head_dim / 2:
//             a = x[i], b = x[i + half]
//             x[i] = a cos[p][i] - b sin[p][i];  x[i + half] = b cos[p][i] + a sin[p][i]
//           then (when kc is set) kc[j][p][:] = k head j, vc[j][p][:] = v head j.
// Layout:   q, k, v rows `ld` floats apart (the fused qkv buffer: q | k | v per token);
//           cos/sin [ctx][half] F32, computed on the host exactly as the CPU engine does
//           (float(pos) * inv_freq in F32, cos/sin in F64 rounded to F32); cache
//           [n_kv_heads][ctx][head_dim] F32 for one layer. p0 comes from the device
//           (p0_dev) inside the captured decode graph, so one graph serves every step.
// Rounding: each rotated value is computed in F64 from the F32 inputs and rounded once,
//           the reference kernel's contract: results are bit-identical to it.
#include "common.cuh"

namespace llrt::cuda {
namespace {

__global__ void rope_k(float* q, float* k, const float* v, int64_t ld, int64_t nh, int64_t nkv, int64_t hd,
                       const float* __restrict__ cs, const float* __restrict__ sn, float* kc, float* vc, int64_t ctx,
                       int64_t p0, const int32_t* p0_dev) {
  const int64_t t = blockIdx.x;
  const int64_t p = (p0_dev ? int64_t(*p0_dev) : p0) + t;
  const int64_t half = hd / 2;
  const float* c = cs + p * half;
  const float* s = sn + p * half;
  const int64_t nq = nh * half, nk = nkv * half;
  for (int64_t e = threadIdx.x; e < nq + nk; e += blockDim.x) {
    float* x = e < nq ? q + t * ld + (e / half) * hd : k + t * ld + ((e - nq) / half) * hd;
    const int64_t i = (e < nq ? e : e - nq) % half;
    const double a = x[i], b = x[i + half];
    x[i] = float(a * double(c[i]) - b * double(s[i]));
    x[i + half] = float(b * double(c[i]) + a * double(s[i]));
  }
  if (!kc) return;
  __syncthreads();  // k of this token rotated by the whole block
  for (int64_t e = threadIdx.x; e < nkv * hd; e += blockDim.x) {
    const int64_t j = e / hd, d = e % hd;
    kc[(j * ctx + p) * hd + d] = k[t * ld + e];
    vc[(j * ctx + p) * hd + d] = v[t * ld + e];
  }
}

}  // namespace

void rope_f32(const RopeCall& c, cudaStream_t s) {
  if (c.T <= 0) return;
  if (c.head_dim % 2 != 0) check(cudaErrorInvalidValue, "rope: head_dim must be even");
  rope_k<<<unsigned(c.T), 256, 0, s>>>(c.q, c.k, c.v, c.ld, c.n_heads, c.n_kv_heads, c.head_dim, c.cos, c.sin, c.kc,
                                       c.vc, c.ctx, c.p0, c.p0_dev);
  check_launch("rope");
}

}  // namespace llrt::cuda
