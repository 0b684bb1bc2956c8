// Attention for one query row of one head over a strided KV cache (F32, F16 or BF16
// elements T, widened exactly to F32 by Isa::load as they are read), written once over an
// ISA traits type and compiled per ISA and KV dtype (kernels/cpu/<isa>/attention_<isa>.cpp).
// Anonymous namespace on purpose (each ISA TU gets its own copy).
//
// Math:    s[j] = scale * sum_i q[i] * k_j[i]     j in [0, n_kv)   (n_kv >= 1)
//          p[j] = exp(s[j] - max s) / sum_j' exp(s[j'] - max s)
//          out[i] = sum_j p[j] * v_j[i]
// Layout:  k_j = k + j*kv_stride, v_j = v + j*kv_stride, head_dim contiguous T each;
//          scratch holds n_kv floats (the scores, then the unnormalised weights).
// Two passes. Pass 1: L keys at a time, each dot product in one F32 FMA accumulator
//          vector (lanes = i mod L), the L accumulators reduced together (Isa::sum_rows), times
//          scale, rounded to F32. Softmax: max exact; exp(s - max) with xsimd's F32 exp;
//          the sum in F32 vector lanes. Pass 2: out accumulated in F32 vectors (two
//          partial sums, even/odd j) over head_dim chunks, then multiplied by 1/sum
//          (the reciprocal rounded to F32).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "llrt/kernels.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

// out[0 .. NV*L) (+= into registers) = sum_j e[j] * v_j[d0 ..], scaled by inv.
template <class Isa, int NV, class T>
inline void attn_pv_chunk(const T* v, int64_t stride, const float* e, int64_t n, float inv,
                          float* out) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  vf a0[NV], a1[NV];
#pragma GCC unroll 16
  for (int c = 0; c < NV; ++c) a0[c] = a1[c] = vf(0.0f);
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const vf p0(e[j]), p1(e[j + 1]);
    const T* v0 = v + j * stride;
    const T* v1 = v0 + stride;
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) {
      a0[c] = xsimd::fma(p0, Isa::load(v0 + c * L), a0[c]);
      a1[c] = xsimd::fma(p1, Isa::load(v1 + c * L), a1[c]);
    }
  }
  if (j < n) {
    const vf p0(e[j]);
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) a0[c] = xsimd::fma(p0, Isa::load(v + j * stride + c * L), a0[c]);
  }
  const vf iv(inv);
#pragma GCC unroll 16
  for (int c = 0; c < NV; ++c) Isa::store(out + c * L, (a0[c] + a1[c]) * iv);
}

template <class Isa, int NV, class T>
inline void attn_pv_edge(int nv, const T* v, int64_t stride, const float* e, int64_t n,
                         float inv, float* out) {
  if constexpr (NV > 1)
    if (nv < NV) return attn_pv_edge<Isa, NV - 1, T>(nv, v, stride, e, n, inv, out);
  attn_pv_chunk<Isa, NV, T>(v, stride, e, n, inv, out);
}

template <class Isa, class T>
void attention_t(const AttentionArgs& a) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  const int64_t D = a.head_dim, n = a.n_kv, ks = a.kv_stride;
  const T* K = static_cast<const T*>(a.k);
  const T* V = static_cast<const T*>(a.v);
  const int64_t Dv = D / L * L;
  const int dt = int(D - Dv);
  float* s = a.scratch;
  const vf scale(a.scale);

  // ---- pass 1: scores ----
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    vf acc[L];
#pragma GCC unroll 16
    for (int t = 0; t < L; ++t) acc[t] = vf(0.0f);
    const T* kb = K + j * ks;
    for (int64_t d = 0; d < Dv; d += L) {
      const vf qv = Isa::load(a.q + d);
#pragma GCC unroll 16
      for (int t = 0; t < L; ++t) acc[t] = xsimd::fma(qv, Isa::load(kb + t * ks + d), acc[t]);
    }
    if (dt) {
      const vf qv = Isa::load_tail(a.q + Dv, dt);
#pragma GCC unroll 16
      for (int t = 0; t < L; ++t) acc[t] = xsimd::fma(qv, Isa::load_tail(kb + t * ks + Dv, dt), acc[t]);
    }
    Isa::store(s + j, Isa::sum_rows(acc) * scale);
  }
  for (; j < n; ++j) {
    const T* kj = K + j * ks;
    vf acc(0.0f);
    for (int64_t d = 0; d < Dv; d += L) acc = xsimd::fma(Isa::load(a.q + d), Isa::load(kj + d), acc);
    if (dt) acc = xsimd::fma(Isa::load_tail(a.q + Dv, dt), Isa::load_tail(kj + Dv, dt), acc);
    s[j] = xsimd::hadd(acc) * a.scale;
  }

  // ---- softmax numerator (in place) and its sum ----
  float mx = -INFINITY;
  {
    vf mv(-INFINITY);
    j = 0;
    for (; j + L <= n; j += L) mv = xsimd::max(mv, Isa::load(s + j));
    alignas(64) float lanes[L];
    Isa::store(lanes, mv);
    for (int t = 0; t < L; ++t) mx = std::max(mx, lanes[t]);
    for (; j < n; ++j) mx = std::max(mx, s[j]);
  }
  float sum = 0.0f;
  {
    const vf mv(mx);
    vf sv(0.0f);
    j = 0;
    for (; j + L <= n; j += L) {
      const vf e = xsimd::exp(Isa::load(s + j) - mv);
      Isa::store(s + j, e);
      sv += e;
    }
    sum = xsimd::hadd(sv);
    if (j < n) {
      const int t = int(n - j);
      alignas(64) float lanes[L];
      Isa::store(lanes, xsimd::exp(Isa::load_tail(s + j, t) - mv));
      for (int i = 0; i < t; ++i) sum += (s[j + i] = lanes[i]);
    }
  }
  const float inv = 1.0f / sum;

  // ---- pass 2: weighted V sum ----
  constexpr int CH = Isa::kAttnChunk;  // vectors of head_dim held in registers
  int64_t d = 0;
  for (; d + CH * L <= Dv; d += CH * L) attn_pv_chunk<Isa, CH, T>(V + d, ks, s, n, inv, a.out + d);
  if (d < Dv) attn_pv_edge<Isa, CH, T>(int((Dv - d) / L), V + d, ks, s, n, inv, a.out + d);
  if (dt) {
    vf a0(0.0f), a1(0.0f);
    j = 0;
    for (; j + 2 <= n; j += 2) {
      a0 = xsimd::fma(vf(s[j]), Isa::load_tail(V + j * ks + Dv, dt), a0);
      a1 = xsimd::fma(vf(s[j + 1]), Isa::load_tail(V + (j + 1) * ks + Dv, dt), a1);
    }
    if (j < n) a0 = xsimd::fma(vf(s[j]), Isa::load_tail(V + j * ks + Dv, dt), a0);
    Isa::store_tail(a.out + Dv, (a0 + a1) * vf(inv), dt);
  }
}

}  // namespace
}  // namespace llrt::kernels
