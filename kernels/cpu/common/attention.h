// Attention for the query rows of one GQA group (n_q heads sharing one KV head) over a
// strided KV cache (F32, F16 or BF16 elements T, widened exactly to F32 by Isa::load as
// they are read), written once over an ISA traits type and compiled per ISA and KV dtype
// (kernels/cpu/<isa>/attention_<isa>.cpp). Anonymous namespace on purpose (each ISA TU gets
// its own copy).
//
// Math (per query row r):
//          s[j] = scale * sum_i q_r[i] * k_j[i]     j in [0, n_kv)   (n_kv >= 1)
//          p[j] = exp(s[j] - max s) / sum_j' exp(s[j'] - max s)
//          out_r[i] = sum_j p[j] * v_j[i]
// Layout:  k_j = k + j*kv_stride, v_j = v + j*kv_stride, head_dim contiguous T each; query
//          row r at q + r*q_stride, its output at out + r*out_stride; scratch holds
//          n_q*n_kv floats (the scores, then the unnormalised weights, row after row).
// Why groups: the n_q query heads of a KV head read the same K/V rows. Taken together (up to
//          4 at a time), each K and V row is loaded once for all of them: at long contexts
//          the cache no longer fits the caches and was streamed n_q times (measured: 1B at
//          depth 8192 decoded at 60% of the bandwidth limit with one row at a time).
// Rounding (NQ = 1, 2 or 4 rows per pass). Pass 1: L/NQ keys at a time, each dot product
//          (row, key) in one F32 FMA accumulator vector (lanes = i mod L), the L
//          accumulators reduced together (Isa::sum_rows), times scale, rounded to F32; keys
//          past the last full block one at a time (hadd). Softmax per row: max exact;
//          exp(s - max) with xsimd's F32 exp; the sum in F32 vector lanes. Pass 2: out
//          accumulated in F32 vectors (two partial sums, even/odd j) over head_dim chunks
//          (kAttnChunk vectors for one row, kAttnGroupChunk per row for more), then times
//          1/sum (rounded to F32). The number of roundings per value does not depend on NQ;
//          only which keys fall in the hadd tail does.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "src/engine/kernels.h"
#include "xsimd/xsimd.hpp"

namespace llrt::kernels {
namespace {

// The softmax numerator of s[0..n) in place; returns 1 / its sum; *lse = max + log(sum)
// when lse is set (for merging splits of one row: include/llrt/kernels.h).
template <class Isa>
inline float attn_softmax(float* s, int64_t n, float* lse) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  int64_t j = 0;
  float mx = -INFINITY;
  {
    vf mv(-INFINITY);
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
  if (lse) *lse = mx + std::log(sum);
  return 1.0f / sum;
}

// Pass 2 of NQ rows: out_r[0 .. NV*L) = (sum_j e_r[j] * v_j[d0 ..]) * inv_r, each V chunk
// loaded once for the NQ rows (two partial sums per row, even/odd j).
template <class Isa, int NQ, int NV, class T>
inline void attn_pv_group(const T* v, int64_t stride, const float* e, int64_t n, const float* inv, float* out,
                          int64_t out_stride) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  vf a0[NQ][NV], a1[NQ][NV];
#pragma GCC unroll 16
  for (int r = 0; r < NQ; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) a0[r][c] = a1[r][c] = vf(0.0f);
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    vf v0[NV], v1[NV];
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) v0[c] = Isa::load(v + j * stride + c * L), v1[c] = Isa::load(v + (j + 1) * stride + c * L);
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r) {
      const vf p0(e[r * n + j]), p1(e[r * n + j + 1]);
#pragma GCC unroll 16
      for (int c = 0; c < NV; ++c) a0[r][c] = xsimd::fma(p0, v0[c], a0[r][c]), a1[r][c] = xsimd::fma(p1, v1[c], a1[r][c]);
    }
  }
  if (j < n) {
    vf v0[NV];
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) v0[c] = Isa::load(v + j * stride + c * L);
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r) {
      const vf p0(e[r * n + j]);
#pragma GCC unroll 16
      for (int c = 0; c < NV; ++c) a0[r][c] = xsimd::fma(p0, v0[c], a0[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < NQ; ++r) {
    const vf iv(inv[r]);
#pragma GCC unroll 16
    for (int c = 0; c < NV; ++c) Isa::store(out + r * out_stride + c * L, (a0[r][c] + a1[r][c]) * iv);
  }
}

template <class Isa, int NQ, int NV, class T>
inline void attn_pv_group_edge(int nv, const T* v, int64_t stride, const float* e, int64_t n, const float* inv,
                               float* out, int64_t out_stride) {
  if constexpr (NV > 1)
    if (nv < NV) return attn_pv_group_edge<Isa, NQ, NV - 1, T>(nv, v, stride, e, n, inv, out, out_stride);
  attn_pv_group<Isa, NQ, NV, T>(v, stride, e, n, inv, out, out_stride);
}

// NQ (1, 2 or 4) query rows q + r*q_stride over the same K/V; scores in s[r*n ..].
template <class Isa, class T, int NQ>
void attention_group_t(const AttentionArgs& a, const float* q, float* out, float* s, float* lse) {
  using vf = typename Isa::vf;
  constexpr int L = Isa::L;
  constexpr int KB = L / NQ;  // keys per block in pass 1: NQ*KB = L accumulators
  static_assert(KB * NQ == L);
  const int64_t D = a.head_dim, n = a.n_kv, ks = a.kv_stride, qs = a.q_stride;
  const T* K = static_cast<const T*>(a.k);
  const T* V = static_cast<const T*>(a.v);
  const int64_t Dv = D / L * L;
  const int dt = int(D - Dv);
  const vf scale(a.scale);

  // ---- pass 1: scores, each K row loaded once for the NQ rows ----
  int64_t j = 0;
  for (; j + KB <= n; j += KB) {
    vf acc[L];
#pragma GCC unroll 16
    for (int t = 0; t < L; ++t) acc[t] = vf(0.0f);
    const T* kb = K + j * ks;
    for (int64_t d = 0; d < Dv; d += L) {
      vf qv[NQ];
#pragma GCC unroll 16
      for (int r = 0; r < NQ; ++r) qv[r] = Isa::load(q + r * qs + d);
#pragma GCC unroll 16
      for (int t = 0; t < KB; ++t) {
        const vf kv = Isa::load(kb + t * ks + d);
#pragma GCC unroll 16
        for (int r = 0; r < NQ; ++r) acc[r * KB + t] = xsimd::fma(qv[r], kv, acc[r * KB + t]);
      }
    }
    if (dt) {
      vf qv[NQ];
#pragma GCC unroll 16
      for (int r = 0; r < NQ; ++r) qv[r] = Isa::load_tail(q + r * qs + Dv, dt);
#pragma GCC unroll 16
      for (int t = 0; t < KB; ++t) {
        const vf kv = Isa::load_tail(kb + t * ks + Dv, dt);
#pragma GCC unroll 16
        for (int r = 0; r < NQ; ++r) acc[r * KB + t] = xsimd::fma(qv[r], kv, acc[r * KB + t]);
      }
    }
    alignas(64) float sc[L];
    Isa::store(sc, Isa::sum_rows(acc) * scale);
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < KB; ++t) s[r * n + j + t] = sc[r * KB + t];
  }
  for (; j < n; ++j) {
    const T* kj = K + j * ks;
    vf acc[NQ];
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r) acc[r] = vf(0.0f);
    for (int64_t d = 0; d < Dv; d += L) {
      const vf kv = Isa::load(kj + d);
#pragma GCC unroll 16
      for (int r = 0; r < NQ; ++r) acc[r] = xsimd::fma(Isa::load(q + r * qs + d), kv, acc[r]);
    }
    if (dt) {
      const vf kv = Isa::load_tail(kj + Dv, dt);
#pragma GCC unroll 16
      for (int r = 0; r < NQ; ++r) acc[r] = xsimd::fma(Isa::load_tail(q + r * qs + Dv, dt), kv, acc[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < NQ; ++r) s[r * n + j] = xsimd::hadd(acc[r]) * a.scale;
  }

  // ---- softmax per row ----
  float inv[NQ];
  for (int r = 0; r < NQ; ++r) inv[r] = attn_softmax<Isa>(s + r * n, n, lse ? lse + r : nullptr);

  // ---- pass 2: weighted V sums, each V chunk loaded once for the NQ rows ----
  constexpr int CH = NQ == 1 ? Isa::kAttnChunk : Isa::kAttnGroupChunk;  // head_dim vectors per row in registers
  const int64_t os = a.out_stride;
  int64_t d = 0;
  for (; d + CH * L <= Dv; d += CH * L) attn_pv_group<Isa, NQ, CH, T>(V + d, ks, s, n, inv, out + d, os);
  if (d < Dv) attn_pv_group_edge<Isa, NQ, CH, T>(int((Dv - d) / L), V + d, ks, s, n, inv, out + d, os);
  if (dt) {
    for (int r = 0; r < NQ; ++r) {
      const float* e = s + r * n;
      vf a0(0.0f), a1(0.0f);
      int64_t jj = 0;
      for (; jj + 2 <= n; jj += 2) {
        a0 = xsimd::fma(vf(e[jj]), Isa::load_tail(V + jj * ks + Dv, dt), a0);
        a1 = xsimd::fma(vf(e[jj + 1]), Isa::load_tail(V + (jj + 1) * ks + Dv, dt), a1);
      }
      if (jj < n) a0 = xsimd::fma(vf(e[jj]), Isa::load_tail(V + jj * ks + Dv, dt), a0);
      Isa::store_tail(out + r * os + Dv, (a0 + a1) * vf(inv[r]), dt);
    }
  }
}

// The registered kernel: the n_q rows in groups of 4, then 2, then 1.
template <class Isa, class T>
void attention_t(const AttentionArgs& a) {
  const int64_t nq = std::max<int64_t>(a.n_q, 1), n = a.n_kv;
  int64_t r = 0;
  auto lse = [&](int64_t i) { return a.lse ? a.lse + i : nullptr; };
  for (; r + 4 <= nq; r += 4)
    attention_group_t<Isa, T, 4>(a, a.q + r * a.q_stride, a.out + r * a.out_stride, a.scratch + r * n, lse(r));
  for (; r + 2 <= nq; r += 2)
    attention_group_t<Isa, T, 2>(a, a.q + r * a.q_stride, a.out + r * a.out_stride, a.scratch + r * n, lse(r));
  for (; r < nq; ++r)
    attention_group_t<Isa, T, 1>(a, a.q + r * a.q_stride, a.out + r * a.out_stride, a.scratch + r * n, lse(r));
}

}  // namespace
}  // namespace llrt::kernels
