// F32 elementwise ops written once over an ISA traits type and compiled per ISA by
// kernels/cpu/<isa>/elementwise_<isa>.cpp. Anonymous namespace on purpose (each ISA TU
// gets its own copy, see linear_blocked.h).
//
// Isa provides: vf (xsimd::batch<float, arch>), L (lanes), load/load_tail for float,
// f16_t, bf16_t (widening exactly to F32), store(p, v), store_tail(p, v, n), and
// sum_rows(rows[L]) -> the L row sums (attention.h).
//
// Ops, math and rounding (F32 throughout; weights widened exactly):
//   embedding: out[i, :] = table[ids[i], :]                       (exact)
//   rmsnorm:   ss = sum x^2 in F32 (4 vector accumulators, lanes summed at the end);
//              inv = 1/sqrt(ss/dim + eps) in F64 from that F32 sum, rounded to F32;
//              y = (x * inv) * w, each product rounded to F32 (HF order for F32).
//   rope:      x[i] = a*c - (b*s), x[i+half] = b*c + (a*s) (inner product rounded, then
//              one fused multiply-add).
//   silu_mul:  out = g / (1 + exp(-g)) * u with xsimd's F32 exp (about 1 ulp).
//   add:       y += x (one F32 add, bit-identical to the reference).
#pragma once
#include <cmath>
#include <cstdint>

#include "wtypes.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

template <class Isa, class W>
void embedding_t(const void* table, int64_t D, const int32_t* ids, int64_t n, float* out) {
  constexpr int L = Isa::L;
  const W* tab = static_cast<const W*>(table);
  for (int64_t i = 0; i < n; ++i) {
    const W* row = tab + int64_t(ids[i]) * D;
    float* o = out + i * D;
    int64_t d = 0;
    for (; d + L <= D; d += L) Isa::store(o + d, Isa::load(row + d));
    if (d < D) Isa::store_tail(o + d, Isa::load_tail(row + d, int(D - d)), int(D - d));
  }
}

template <class Isa, class W>
void rmsnorm_t(const float* x, const void* wv, float* y, int64_t dim, float eps) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  const W* w = static_cast<const W*>(wv);
  vf a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  int64_t i = 0;
  for (; i + 4 * L <= dim; i += 4 * L) {
    vf v0 = Isa::load(x + i), v1 = Isa::load(x + i + L);
    vf v2 = Isa::load(x + i + 2 * L), v3 = Isa::load(x + i + 3 * L);
    a0 = xsimd::fma(v0, v0, a0);
    a1 = xsimd::fma(v1, v1, a1);
    a2 = xsimd::fma(v2, v2, a2);
    a3 = xsimd::fma(v3, v3, a3);
  }
  for (; i + L <= dim; i += L) {
    vf v = Isa::load(x + i);
    a0 = xsimd::fma(v, v, a0);
  }
  if (i < dim) {
    vf v = Isa::load_tail(x + i, int(dim - i));
    a1 = xsimd::fma(v, v, a1);
  }
  const float ss = xsimd::hadd((a0 + a1) + (a2 + a3));
  const vf inv(float(1.0 / std::sqrt(double(ss) / double(dim) + double(eps))));
  i = 0;
  for (; i + L <= dim; i += L) Isa::store(y + i, (Isa::load(x + i) * inv) * Isa::load(w + i));
  if (i < dim) {
    const int t = int(dim - i);
    Isa::store_tail(y + i, (Isa::load_tail(x + i, t) * inv) * Isa::load_tail(w + i, t), t);
  }
}

template <class Isa>
void rope_t(float* x, int64_t n_heads, int64_t head_stride, int64_t head_dim, const float* c,
            const float* s) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* p = x + h * head_stride;
    int64_t i = 0;
    for (; i + L <= half; i += L) {
      vf a = Isa::load(p + i), b = Isa::load(p + half + i);
      vf cv = Isa::load(c + i), sv = Isa::load(s + i);
      Isa::store(p + i, xsimd::fms(a, cv, b * sv));
      Isa::store(p + half + i, xsimd::fma(b, cv, a * sv));
    }
    if (i < half) {
      const int t = int(half - i);
      vf a = Isa::load_tail(p + i, t), b = Isa::load_tail(p + half + i, t);
      vf cv = Isa::load_tail(c + i, t), sv = Isa::load_tail(s + i, t);
      Isa::store_tail(p + i, xsimd::fms(a, cv, b * sv), t);
      Isa::store_tail(p + half + i, xsimd::fma(b, cv, a * sv), t);
    }
  }
}

template <class Isa>
inline typename Isa::vf silu_mul_v(typename Isa::vf g, typename Isa::vf u) {
  using vf = typename Isa::vf;
  return g / (vf(1.0f) + xsimd::exp(-g)) * u;
}

template <class Isa>
void silu_mul_t(const float* g, const float* u, float* out, int64_t n) {
  constexpr int L = Isa::L;
  int64_t i = 0;
  for (; i + L <= n; i += L) Isa::store(out + i, silu_mul_v<Isa>(Isa::load(g + i), Isa::load(u + i)));
  if (i < n) {
    const int t = int(n - i);
    Isa::store_tail(out + i, silu_mul_v<Isa>(Isa::load_tail(g + i, t), Isa::load_tail(u + i, t)), t);
  }
}

template <class Isa>
void add_t(float* y, const float* x, int64_t n) {
  constexpr int L = Isa::L;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    Isa::store(y + i, Isa::load(y + i) + Isa::load(x + i));
    Isa::store(y + i + L, Isa::load(y + i + L) + Isa::load(x + i + L));
  }
  for (; i + L <= n; i += L) Isa::store(y + i, Isa::load(y + i) + Isa::load(x + i));
  if (i < n) {
    const int t = int(n - i);
    Isa::store_tail(y + i, Isa::load_tail(y + i, t) + Isa::load_tail(x + i, t), t);
  }
}

}  // namespace
}  // namespace llrt::kernels
