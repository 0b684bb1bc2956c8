// Reference (scalar) kernels for the non-matmul ops: embedding, rmsnorm, rope,
// silu_mul, add, attention.
//
// Rounding contract: inputs F32 (weights widened exactly), internal sums in F64,
// results rounded once to F32. exp/silu via std::exp in double.
#include <cmath>
#include <vector>

#include "../hooks.h"
#include "load.h"

namespace llrt::kernels {
namespace {

template <class L>
void embedding(const void* table, int64_t D, const int32_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) out[i * D + d] = L::at(table, int64_t(ids[i]) * D + d);
}

template <class L>
void rmsnorm(const float* x, const void* w, float* y, int64_t dim, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += double(x[i]) * double(x[i]);
  double inv = 1.0 / std::sqrt(ss / double(dim) + double(eps));
  for (int64_t i = 0; i < dim; ++i) y[i] = float(double(x[i]) * inv * double(L::at(w, i)));
}

void rope(float* x, int64_t n_heads, int64_t head_stride, int64_t head_dim, const float* c,
          const float* s) {
  int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* p = x + h * head_stride;
    for (int64_t i = 0; i < half; ++i) {
      double a = p[i], b = p[i + half];
      p[i] = float(a * c[i] - b * s[i]);
      p[i + half] = float(b * c[i] + a * s[i]);
    }
  }
}

void silu_mul(const float* g, const float* u, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double x = g[i];
    out[i] = float(x / (1.0 + std::exp(-x)) * double(u[i]));
  }
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <class Load>
void attention_row(const AttentionArgs& a, const float* q, float* out, float* lse) {
  std::vector<double> s(size_t(a.n_kv));
  double mx = -INFINITY;
  for (int64_t j = 0; j < a.n_kv; ++j) {
    double d = 0;
    for (int64_t i = 0; i < a.head_dim; ++i) d += double(q[i]) * double(Load::at(a.k, j * a.kv_stride + i));
    s[size_t(j)] = d * double(a.scale);
    mx = std::max(mx, s[size_t(j)]);
  }
  double sum = 0;
  for (auto& v : s) sum += (v = std::exp(v - mx));
  if (lse) *lse = float(mx + std::log(sum));
  for (int64_t i = 0; i < a.head_dim; ++i) {
    double o = 0;
    for (int64_t j = 0; j < a.n_kv; ++j) o += s[size_t(j)] * double(Load::at(a.v, j * a.kv_stride + i));
    out[i] = float(o / sum);
  }
}

template <class Load>
void attention(const AttentionArgs& a) {
  for (int64_t r = 0; r < std::max<int64_t>(a.n_q, 1); ++r)
    attention_row<Load>(a, a.q + r * a.q_stride, a.out + r * a.out_stride, a.lse ? a.lse + r : nullptr);
}

}  // namespace

void register_elementwise_ref(KernelRegistry& r) {
  r.add({Op::Embedding, DType::F32, DType::F32, Backend::Ref, "embedding_f32w_f32a__ref", &embedding<ref::LoadF32>});
  r.add({Op::Embedding, DType::F16, DType::F32, Backend::Ref, "embedding_f16w_f32a__ref", &embedding<ref::LoadF16>});
  r.add({Op::Embedding, DType::BF16, DType::F32, Backend::Ref, "embedding_bf16w_f32a__ref", &embedding<ref::LoadBF16>});
  r.add({Op::RmsNorm, DType::F32, DType::F32, Backend::Ref, "rmsnorm_f32w_f32a__ref", &rmsnorm<ref::LoadF32>});
  r.add({Op::RmsNorm, DType::F16, DType::F32, Backend::Ref, "rmsnorm_f16w_f32a__ref", &rmsnorm<ref::LoadF16>});
  r.add({Op::RmsNorm, DType::BF16, DType::F32, Backend::Ref, "rmsnorm_bf16w_f32a__ref", &rmsnorm<ref::LoadBF16>});
  r.add({Op::Rope, DType::F32, DType::F32, Backend::Ref, "rope_f32a__ref", &rope});
  r.add({Op::SiluMul, DType::F32, DType::F32, Backend::Ref, "silu_mul_f32a__ref", &silu_mul});
  r.add({Op::Add, DType::F32, DType::F32, Backend::Ref, "add_f32a__ref", &add});
  r.add({Op::Attention, DType::F32, DType::F32, Backend::Ref, "attention_f32kv_f32a__ref", &attention<ref::LoadF32>});
  r.add({Op::Attention, DType::F16, DType::F32, Backend::Ref, "attention_f16kv_f32a__ref", &attention<ref::LoadF16>});
  r.add({Op::Attention, DType::BF16, DType::F32, Backend::Ref, "attention_bf16kv_f32a__ref", &attention<ref::LoadBF16>});
}
}  // namespace llrt::kernels
