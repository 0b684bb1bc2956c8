// Causal GQA attention over the F32 KV cache.
//
// Math:     for query token t (position p = p0 + t) and head h, kv head j = h / rep:
//             s_i = scale * (q . k_j,i) for i <= p;  out = sum_i softmax(s)_i v_j,i
// Layout:   q rows ldq apart, head h at h*head_dim; cache of one layer
//           [n_kv_heads][ctx][head_dim] F32 (each head's positions contiguous, the CPU
//           engine's layout); out rows ldo apart.
// Rounding: F32 throughout: dot products by F32 FMA chains, expf (<= 2 ulp), online
//           softmax (running max, rescaled sums), normalization by one division at the
//           end. The op checker bounds the difference to the F64 reference.
//
// Three kernels:
//   decode (one token): one block per (split, kv head) serving the rep query heads of the
//         kv head together, so every K/V row is read once per token; each step stages 32
//         positions of K and V in shared memory with all loads in flight at once. The
//         positions are split over up to kMaxSplits blocks (flash-decoding); each writes
//         (o, max, sum) and the last block to finish (atomic counter, reset by that block
//         for the next call) merges them. The split count follows the position read from
//         the device, so the grid is fixed and the decode step is captured in a CUDA graph
//         once and replayed. RoPE of q and k and the cache write can be fused in.
//   rows  (prefill at any head_dim): one block per (kv head, token), the same online
//         softmax over chunks of 64 positions, K rows read by warps.
//   tiled (prefill, head_dim 64 / 128): flash-attention in F32 on the CUDA cores: a
//         block takes 64 query rows of one head, walks the keys in tiles of 64 through
//         shared memory (Q and K transposed so each thread reads float4s), keeps a
//         4 x 4 score tile and a 4 x head_dim/16 output tile per thread in registers.
#include <cfloat>

#include "common.cuh"

namespace llrt::cuda {
namespace {

constexpr int kChunk = 64;       // positions per inner step of the rows kernel
constexpr int kSplitMin = 32;    // fewest positions per decode split
constexpr int kMaxSplits = 64;   // decode splits per kv head
constexpr int kRowsThreads = 128;
constexpr int kMaxHdLane = kAttentionMaxHeadDim / 32;  // head_dim elements per lane

int64_t decode_splits(int64_t ctx) { return std::min<int64_t>(ceil_div(ctx, kSplitMin), kMaxSplits); }

// rope.cu's rotation of one pair, in F64 (bit-identical to it).
__device__ __forceinline__ void rotate(float a, float b, float c, float s, float* x0, float* x1) {
  *x0 = float(double(a) * double(c) - double(b) * double(s));
  *x1 = float(double(b) * double(c) + double(a) * double(s));
}

// Writes out = o / l for the block's heads, or (several splits) publishes (o, max, sum)
// and lets the last block of the kv head merge them; that block resets the counter.
// Called by every thread of the block; os/ms/ls in shared memory.
__device__ void split_finish(float* os, float* ms, float* ls, int rep, int hd, int64_t S, int split, int j, float* part,
                             int* counters, float* ob) {
  __shared__ int s_last;
  const int tid = threadIdx.x, RH = rep * hd;
  const int64_t nsplit_max = gridDim.x;
  if (S == 1) {
    for (int e = tid; e < RH; e += blockDim.x) ob[e] = os[e] / ls[e / hd];
    return;
  }
  const int PS = RH + 2 * rep;
  float* pp = part + (int64_t(j) * nsplit_max + split) * PS;
  for (int e = tid; e < RH; e += blockDim.x) pp[e] = os[e];
  for (int r = tid; r < rep; r += blockDim.x) pp[RH + r] = ms[r], pp[RH + rep + r] = ls[r];
  __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(&counters[j], 1) == int(S) - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const float* pj = part + int64_t(j) * nsplit_max * PS;
  for (int r = tid; r < rep; r += blockDim.x) {
    float M = -INFINITY;
    for (int64_t q = 0; q < S; ++q) M = fmaxf(M, __ldcg(pj + q * PS + RH + r));
    float L = 0.0f;
    for (int64_t q = 0; q < S; ++q) L += __ldcg(pj + q * PS + RH + rep + r) * expf(__ldcg(pj + q * PS + RH + r) - M);
    ms[r] = M;
    ls[r] = L;
  }
  __syncthreads();
  for (int e = tid; e < RH; e += blockDim.x) {
    const int r = e / hd;
    float acc = 0.0f;
    for (int64_t q = 0; q < S; ++q) acc += __ldcg(pj + q * PS + e) * expf(__ldcg(pj + q * PS + RH + r) - ms[r]);
    ob[e] = acc / ls[r];
  }
  if (tid == 0) counters[j] = 0;
}

struct RopeIn {
  const float* cos;  // null: q is already rotated and k/v are in the cache
  const float* sin;
  const float* k_new;
  const float* v_new;
};

__global__ void __launch_bounds__(kRowsThreads) attn_rows_k(const float* __restrict__ q, int64_t ldq, float* kc,
                                                            float* vc, int64_t ctx, int rep, int hd, int64_t p0,
                                                            const int32_t* p0_dev, float scale, float* out, int64_t ldo,
                                                            int* counters, float* part, RopeIn rope) {
  extern __shared__ float sm[];
  pdl_wait();
  pdl_trigger();
  const int t = blockIdx.z, j = blockIdx.y, split = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = blockDim.x >> 5;
  const int64_t n_kv = (p0_dev ? int64_t(*p0_dev) : p0) + t + 1;
  const int64_t nsplit_max = gridDim.x;
  const int64_t span = imax64(kSplitMin, (n_kv + nsplit_max - 1) / nsplit_max);
  const int64_t S = (n_kv + span - 1) / span;
  if (split >= S) return;
  const int64_t i0 = split * span, i1 = imin64(n_kv, i0 + span);
  const int RH = rep * hd;
  float* qs = sm;            // [rep][hd]
  float* os = qs + RH;       // [rep][hd]
  float* sc = os + RH;       // [rep][kChunk]
  float* ms = sc + rep * kChunk;
  float* ls = ms + rep;
  float* fac = ls + rep;
  const float* qr = q + t * ldq + int64_t(j) * RH;
  if (rope.cos) {  // decode with RoPE fused: rotate q here; the last split writes k, v at n_kv - 1
    const int half = hd / 2;
    const float* cs = rope.cos + (n_kv - 1) * half;
    const float* sn = rope.sin + (n_kv - 1) * half;
    for (int e = tid; e < rep * half; e += blockDim.x) {
      const int r = e / half, i = e - r * half;
      rotate(qr[r * hd + i], qr[r * hd + i + half], cs[i], sn[i], &qs[r * hd + i], &qs[r * hd + i + half]);
    }
    if (split == S - 1) {
      float* kd = kc + (int64_t(j) * ctx + n_kv - 1) * hd;
      float* vd = vc + (int64_t(j) * ctx + n_kv - 1) * hd;
      const float* kn = rope.k_new + int64_t(j) * hd;
      for (int i = tid; i < half; i += blockDim.x) rotate(kn[i], kn[i + half], cs[i], sn[i], &kd[i], &kd[i + half]);
      for (int i = tid; i < hd; i += blockDim.x) vd[i] = rope.v_new[int64_t(j) * hd + i];
    }
  } else {
    for (int e = tid; e < RH; e += blockDim.x) qs[e] = qr[e];
  }
  for (int e = tid; e < RH; e += blockDim.x) os[e] = 0.0f;
  for (int r = tid; r < rep; r += blockDim.x) ms[r] = -INFINITY, ls[r] = 0.0f;
  __syncthreads();  // (also makes this block's cache write visible to it)
  const float* kb = kc + int64_t(j) * ctx * hd;
  const float* vb = vc + int64_t(j) * ctx * hd;
  for (int64_t c0 = i0; c0 < i1; c0 += kChunk) {
    const int cn = int(imin64(kChunk, i1 - c0));
    // Scores: each warp takes positions warp, warp + nwarps, ...; 4 K rows loaded at once.
    for (int jj0 = warp; jj0 < cn; jj0 += 4 * nwarps) {
      float kv[4][kMaxHdLane];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int jj = jj0 + u * nwarps;
        const float* kr = kb + (c0 + jj) * hd;
#pragma unroll
        for (int e = 0; e < kMaxHdLane; ++e) {
          const int i = lane + 32 * e;
          kv[u][e] = jj < cn && i < hd ? kr[i] : 0.0f;
        }
      }
      for (int r = 0; r < rep; ++r) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int e = 0; e < kMaxHdLane; ++e) {
          const int i = lane + 32 * e;
          if (i < hd) {
            const float qv = qs[r * hd + i];
#pragma unroll
            for (int u = 0; u < 4; ++u) d[u] = fmaf(qv, kv[u][e], d[u]);
          }
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const float dd = warp_sum(d[u]);
          const int jj = jj0 + u * nwarps;
          if (lane == 0 && jj < cn) sc[r * kChunk + jj] = dd * scale;
        }
      }
    }
    __syncthreads();
    for (int r = warp; r < rep; r += nwarps) {
      float mx = -INFINITY;
      for (int i = lane; i < cn; i += 32) mx = fmaxf(mx, sc[r * kChunk + i]);
      mx = warp_max(mx);
      const float m_old = ms[r], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int i = lane; i < cn; i += 32) {
        const float p = expf(sc[r * kChunk + i] - m_new);
        sc[r * kChunk + i] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float f = expf(m_old - m_new);
        ls[r] = ls[r] * f + sum;
        ms[r] = m_new;
        fac[r] = f;
      }
    }
    __syncthreads();
    for (int e = tid; e < RH; e += blockDim.x) {
      const int r = e / hd, d = e - r * hd;
      float o = os[e] * fac[r];
      const float* pr = sc + r * kChunk;
#pragma unroll 8
      for (int i = 0; i < cn; ++i) o = fmaf(pr[i], vb[(c0 + i) * hd + d], o);
      os[e] = o;
    }
    __syncthreads();
  }
  split_finish(os, ms, ls, rep, hd, S, split, j, part, counters, out + t * ldo + int64_t(j) * RH);
}

// ------------------------------------------------------------------ decode (one token)
// One block per (split, kv head), 256 threads. Each step stages kDecChunk cached positions
// of K and V in shared memory with all loads issued at once (positions are contiguous in
// the cache), overlapped with loading (and rotating) q, then computes from shared memory:
// scores by one thread per (head, position) (4 interleaved F32 FMA chains over head_dim,
// summed pairwise), the online softmax by one warp per head, the output by one thread
// per (head, dim). The token's own k (rotated) and v come from registers, not the cache.
constexpr int kDecChunk = 32;
constexpr int kDecThreads = 256;

__host__ __device__ inline int dec_smem_floats(int rep, int hd) {
  return kDecChunk * (hd + 1) + kDecChunk * hd + 2 * rep * hd + rep * kDecChunk + 3 * rep;
}

__global__ void __launch_bounds__(kDecThreads) attn_decode_k(const float* __restrict__ q, float* kc, float* vc, int64_t ctx,
                                                             int rep, int hd, int64_t p0, const int32_t* p0_dev, float scale,
                                                             float* out, int* counters, float* part, RopeIn rope) {
  extern __shared__ float sm[];
  pdl_wait();
  pdl_trigger();
  const int j = blockIdx.y, split = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t n_kv = (p0_dev ? int64_t(*p0_dev) : p0) + 1;
  const int64_t nsplit_max = gridDim.x;
  const int64_t span = imax64(kSplitMin, (n_kv + nsplit_max - 1) / nsplit_max);
  const int64_t S = (n_kv + span - 1) / span;
  if (split >= S) return;
  const int64_t i0 = split * span, i1 = imin64(n_kv, i0 + span);
  const int RH = rep * hd, LK = hd + 1;
  float* Ks = sm;                      // [kDecChunk][hd + 1]
  float* Vs = Ks + kDecChunk * LK;     // [kDecChunk][hd]
  float* qs = Vs + kDecChunk * hd;     // [rep][hd]
  float* os = qs + RH;                 // [rep][hd]
  float* sc = os + RH;                 // [rep][kDecChunk]
  float* ms = sc + rep * kDecChunk;
  float* ls = ms + rep;
  float* fac = ls + rep;
  const float* kb = kc + int64_t(j) * ctx * hd;
  const float* vb = vc + int64_t(j) * ctx * hd;
  const int64_t own = rope.cos ? n_kv - 1 : -1;  // the token's own position (from registers)
  auto stage = [&](int64_t c0, int cn) {  // K, V rows [c0, c0 + cn) into shared memory
    const int n = cn * hd;
    const int64_t lim = (own >= c0 && own < c0 + cn ? own - c0 : cn) * hd;  // skip the own row
    float kr[8], vr[8];
    for (int base = 0; base < n; base += 8 * kDecThreads) {
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int e = base + u * kDecThreads + tid;
        const bool ok = e < n && e < lim;
        kr[u] = ok ? kb[c0 * hd + e] : 0.0f;
        vr[u] = ok ? vb[c0 * hd + e] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) {
        const int e = base + u * kDecThreads + tid;
        if (e < n && e < lim) {
          const int r = e / hd, d = e - r * hd;
          Ks[r * LK + d] = kr[u];
          Vs[e] = vr[u];
        }
      }
    }
  };
  const int first_cn = int(imin64(kDecChunk, i1 - i0));
  stage(i0, first_cn);
  // q (rotated when RoPE is fused) and the own k / v
  const float* qr = q + int64_t(j) * RH;
  if (rope.cos) {
    const int half = hd / 2;
    const float* cs = rope.cos + own * half;
    const float* sn = rope.sin + own * half;
    for (int e = tid; e < rep * half; e += kDecThreads) {
      const int r = e / half, i = e - r * half;
      rotate(qr[r * hd + i], qr[r * hd + i + half], cs[i], sn[i], &qs[r * hd + i], &qs[r * hd + i + half]);
    }
    if (split == S - 1) {  // this block's last chunk holds the own position: cache and shared memory
      const int64_t last_c0 = i0 + (i1 - 1 - i0) / kDecChunk * kDecChunk;
      float* kd = kc + (int64_t(j) * ctx + own) * hd;
      float* vd = vc + (int64_t(j) * ctx + own) * hd;
      const float* kn = rope.k_new + int64_t(j) * hd;
      const float* vn = rope.v_new + int64_t(j) * hd;
      const bool in_first = last_c0 == i0;
      for (int i = tid; i < half; i += kDecThreads) {
        float a, b;
        rotate(kn[i], kn[i + half], cs[i], sn[i], &a, &b);
        kd[i] = a;
        kd[i + half] = b;
        if (in_first) Ks[(own - i0) * LK + i] = a, Ks[(own - i0) * LK + i + half] = b;
      }
      for (int i = tid; i < hd; i += kDecThreads) {
        vd[i] = vn[i];
        if (in_first) Vs[(own - i0) * hd + i] = vn[i];
      }
    }
  } else {
    for (int e = tid; e < RH; e += kDecThreads) qs[e] = qr[e];
  }
  for (int e = tid; e < RH; e += kDecThreads) os[e] = 0.0f;
  for (int r = tid; r < rep; r += kDecThreads) ms[r] = -INFINITY, ls[r] = 0.0f;
  for (int64_t c0 = i0; c0 < i1; c0 += kDecChunk) {
    const int cn = int(imin64(kDecChunk, i1 - c0));
    if (c0 != i0) {
      __syncthreads();  // the previous chunk's K/V are consumed
      stage(c0, cn);
      if (own >= c0 && own < c0 + cn) {  // own row from the cache copy this block wrote (visible after the barrier)
        __syncthreads();
        for (int i = tid; i < hd; i += kDecThreads) {
          Ks[(own - c0) * LK + i] = kc[(int64_t(j) * ctx + own) * hd + i];
          Vs[(own - c0) * hd + i] = vc[(int64_t(j) * ctx + own) * hd + i];
        }
      }
    }
    __syncthreads();
    for (int p = tid; p < rep * kDecChunk; p += kDecThreads) {
      const int r = p / kDecChunk, jj = p - r * kDecChunk;
      if (jj >= cn) continue;
      const float* qv = qs + r * hd;
      const float* kv = Ks + jj * LK;
      float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
      int i = 0;
      for (; i + 3 < hd; i += 4) {
        a0 = fmaf(qv[i], kv[i], a0);
        a1 = fmaf(qv[i + 1], kv[i + 1], a1);
        a2 = fmaf(qv[i + 2], kv[i + 2], a2);
        a3 = fmaf(qv[i + 3], kv[i + 3], a3);
      }
      for (; i < hd; ++i) a0 = fmaf(qv[i], kv[i], a0);
      sc[r * kDecChunk + jj] = ((a0 + a1) + (a2 + a3)) * scale;
    }
    __syncthreads();
    for (int r = warp; r < rep; r += kDecThreads / 32) {
      const float v = lane < cn ? sc[r * kDecChunk + lane] : -INFINITY;
      const float m_old = ms[r], m_new = fmaxf(m_old, warp_max(v));
      const float pr = lane < cn ? expf(v - m_new) : 0.0f;
      if (lane < cn) sc[r * kDecChunk + lane] = pr;
      const float sum = warp_sum(pr);
      if (lane == 0) {
        const float f = expf(m_old - m_new);
        ls[r] = ls[r] * f + sum;
        ms[r] = m_new;
        fac[r] = f;
      }
    }
    __syncthreads();
    for (int e = tid; e < RH; e += kDecThreads) {
      const int r = e / hd, d = e - r * hd;
      const float* pr = sc + r * kDecChunk;
      float o = os[e] * fac[r];
      for (int jj = 0; jj < cn; ++jj) o = fmaf(pr[jj], Vs[jj * hd + d], o);
      os[e] = o;
    }
  }
  __syncthreads();
  split_finish(os, ms, ls, rep, hd, S, split, j, part, counters, out + int64_t(j) * RH);
}

// ------------------------------------------------------------------ tiled prefill

constexpr int BQ = 64, BK = 64, LQ = BQ + 4, LK = BK + 4;

template <int HD>
constexpr int tiled_smem_floats() {
  return HD * LQ + (HD * LK > BK * (HD + 4) ? HD * LK : BK * (HD + 4)) + BK * LQ;
}

template <int HD>
__global__ void __launch_bounds__(256) attn_tiled_k(const float* __restrict__ q, int64_t ldq, const float* __restrict__ kc,
                                                    const float* __restrict__ vc, int64_t ctx, int rep, int64_t T,
                                                    int64_t p0, const int32_t* p0_dev, float scale, float* out,
                                                    int64_t ldo) {
  constexpr int LV = HD + 4, DC = HD / 16;
  extern __shared__ float sm[];
  float* Qt = sm;                                       // [HD][LQ]
  float* KV = Qt + HD * LQ;                             // K^T [HD][LK], then V [BK][LV]
  float* Pt = KV + (HD * LK > BK * LV ? HD * LK : BK * LV);  // P^T [BK][LQ]
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int h = blockIdx.y, j = h / rep;
  const int64_t r0 = int64_t(blockIdx.x) * BQ;
  if (p0_dev) p0 = *p0_dev;
  for (int e = tid; e < BQ * HD; e += 256) {
    const int r = e / HD, d = e % HD;
    Qt[d * LQ + r] = r0 + r < T ? q[(r0 + r) * ldq + int64_t(h) * HD + d] : 0.0f;
  }
  const float* kb = kc + int64_t(j) * ctx * HD;
  const float* vb = vc + int64_t(j) * ctx * HD;
  float o[4][DC], m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < DC; ++c) o[i][c] = 0.0f;
  }
  const int64_t pmax = p0 + imin64(r0 + BQ, T) - 1;  // last key any row needs
  for (int64_t j0 = 0; j0 <= pmax; j0 += BK) {
    __syncthreads();
    for (int e = tid; e < BK * HD; e += 256) {
      const int jj = e / HD, d = e % HD;
      KV[d * LK + jj] = j0 + jj <= pmax ? kb[(j0 + jj) * HD + d] : 0.0f;
    }
    __syncthreads();
    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int c = 0; c < 4; ++c) s[i][c] = 0.0f;
#pragma unroll 8
    for (int d = 0; d < HD; ++d) {
      const float4 a = *reinterpret_cast<const float4*>(Qt + d * LQ + ty * 4);
      const float4 b = *reinterpret_cast<const float4*>(KV + d * LK + tx * 4);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int c = 0; c < 4; ++c) s[i][c] = fmaf(av[i], bv[c], s[i][c]);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t qpos = p0 + imin64(r0 + ty * 4 + i, T - 1);  // rows past T: any finite row
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t kpos = j0 + tx * 4 + c;
        s[i][c] = kpos <= qpos ? s[i][c] * scale : -INFINITY;
        mx = fmaxf(mx, s[i][c]);
      }
#pragma unroll
      for (int off = 1; off < 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m[i], mx);
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float p = expf(s[i][c] - m_new);
        Pt[(tx * 4 + c) * LQ + ty * 4 + i] = p;
        sum += p;
      }
#pragma unroll
      for (int off = 1; off < 16; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      const float f = expf(m[i] - m_new);
      l[i] = l[i] * f + sum;
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < DC; ++c) o[i][c] *= f;
    }
    __syncthreads();
    for (int e = tid; e < BK * HD; e += 256) {
      const int jj = e / HD, d = e % HD;
      KV[jj * LV + d] = j0 + jj <= pmax ? vb[(j0 + jj) * HD + d] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < BK; ++jj) {
      const float4 p4 = *reinterpret_cast<const float4*>(Pt + jj * LQ + ty * 4);
      const float pv[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
      for (int c4 = 0; c4 < DC / 4; ++c4) {
        const float4 v4 = *reinterpret_cast<const float4*>(KV + jj * LV + tx * DC + 4 * c4);
        const float vv[4] = {v4.x, v4.y, v4.z, v4.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int c = 0; c < 4; ++c) o[i][4 * c4 + c] = fmaf(pv[i], vv[c], o[i][4 * c4 + c]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = r0 + ty * 4 + i;
    if (row < T)
#pragma unroll
      for (int c = 0; c < DC; ++c) out[row * ldo + int64_t(h) * HD + tx * DC + c] = o[i][c] / l[i];
  }
}

template <int HD>
void launch_tiled(const AttentionCall& c, cudaStream_t s) {
  constexpr size_t bytes = size_t(tiled_smem_floats<HD>()) * 4;
  static const cudaError_t attr =
      cudaFuncSetAttribute(attn_tiled_k<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  check(attr, "cudaFuncSetAttribute(attention tiled shared memory)");
  const dim3 grid(unsigned(ceil_div(c.T, BQ)), unsigned(c.n_heads));
  attn_tiled_k<HD><<<grid, 256, bytes, s>>>(c.q, c.ldq, c.kc, c.vc, c.ctx, int(c.n_heads / c.n_kv_heads), c.T, c.p0,
                                             c.p0_dev, c.scale, c.out, c.ldo);
  check_launch("attention_tiled");
}

void check_shape(const AttentionCall& c) {
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0 || c.head_dim <= 0 || c.head_dim > kAttentionMaxHeadDim)
    check(cudaErrorInvalidValue, "attention: heads must divide evenly and head_dim must be in [1, 256]");
}

}  // namespace

size_t attention_scratch_bytes(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t ctx) {
  const int64_t rep = n_heads / std::max<int64_t>(n_kv_heads, 1);
  const size_t counters = size_t(ceil_div(n_kv_heads * 4, 256) * 256);
  return counters + size_t(n_kv_heads * decode_splits(ctx) * (rep * head_dim + 2 * rep)) * 4;
}

bool attention_tiled_supported(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

void attention_decode(const AttentionCall& c, cudaStream_t s) {
  const int rep = int(c.n_heads / c.n_kv_heads), hd = int(c.head_dim);
  const size_t smem = size_t(dec_smem_floats(rep, hd)) * 4;
  static int max_dyn = -1;
  if (max_dyn < 0) {
    int dev = 0, optin = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    cudaFuncAttributes fa{};
    check(cudaFuncGetAttributes(&fa, attn_decode_k), "cudaFuncGetAttributes");
    max_dyn = optin - int(fa.sharedSizeBytes);
    check(cudaFuncSetAttribute(attn_decode_k, cudaFuncAttributeMaxDynamicSharedMemorySize, max_dyn), "cudaFuncSetAttribute");
  }
  if (int(smem) > max_dyn) check(cudaErrorInvalidValue, "attention: n_heads/n_kv_heads * head_dim too large for shared memory");
  if (c.ldq != c.n_heads * c.head_dim + 2 * c.n_kv_heads * c.head_dim && c.ldq < c.n_heads * c.head_dim)
    check(cudaErrorInvalidValue, "attention: bad ldq");
  const int64_t splits = decode_splits(c.ctx);
  if (!c.scratch) check(cudaErrorInvalidValue, "attention: decode needs its scratch buffer");
  int* counters = static_cast<int*>(c.scratch);
  float* part = reinterpret_cast<float*>(static_cast<char*>(c.scratch) + ceil_div(c.n_kv_heads * 4, 256) * 256);
  const RopeIn rope{c.cos, c.sin, c.k_new, c.v_new};
  launch_kernel(attn_decode_k, dim3(unsigned(splits), unsigned(c.n_kv_heads)), dim3(kDecThreads), smem, s, c.pdl, c.q,
                const_cast<float*>(c.kc), const_cast<float*>(c.vc), c.ctx, rep, hd, c.p0, c.p0_dev, c.scale, c.out, counters,
                part, rope);
  check_launch("attention_decode");
}

void attention_rows(const AttentionCall& c, cudaStream_t s) {
  check_shape(c);
  if (c.T <= 0) return;
  if (c.cos && (c.T != 1 || !c.sin || !c.k_new || !c.v_new || c.head_dim % 2 != 0))
    check(cudaErrorInvalidValue, "attention: fused RoPE is for one token with cos, sin, k_new and v_new");
  if (c.T == 1) return attention_decode(c, s);  // (out rows of one token: ldo unused)
  const int rep = int(c.n_heads / c.n_kv_heads), hd = int(c.head_dim);
  const size_t smem = size_t(2 * rep * hd + rep * kChunk + 3 * rep) * 4;
  if (smem > 48 * 1024) check(cudaErrorInvalidValue, "attention: n_heads/n_kv_heads * head_dim too large (> 5000)");
  const int64_t splits = c.T == 1 ? decode_splits(c.ctx) : 1;
  int* counters = static_cast<int*>(c.scratch);
  float* part = reinterpret_cast<float*>(static_cast<char*>(c.scratch) + ceil_div(c.n_kv_heads * 4, 256) * 256);
  if (splits > 1 && !c.scratch) check(cudaErrorInvalidValue, "attention: decode needs its scratch buffer");
  const dim3 grid(unsigned(splits), unsigned(c.n_kv_heads), unsigned(c.T));
  if (c.cos && (c.T != 1 || !c.sin || !c.k_new || !c.v_new || hd % 2 != 0))
    check(cudaErrorInvalidValue, "attention: fused RoPE is for one token with cos, sin, k_new and v_new");
  const RopeIn rope{c.cos, c.sin, c.k_new, c.v_new};
  launch_kernel(attn_rows_k, grid, dim3(kRowsThreads), smem, s, c.pdl, c.q, c.ldq, const_cast<float*>(c.kc),
                const_cast<float*>(c.vc), c.ctx, rep, hd, c.p0, c.p0_dev, c.scale, c.out, c.ldo, counters, part, rope);
  check_launch("attention_rows");
}

void attention_tiled(const AttentionCall& c, cudaStream_t s) {
  check_shape(c);
  if (c.cos) check(cudaErrorInvalidValue, "attention_tiled: no fused RoPE (prefill runs rope.cu first)");
  if (c.T <= 0) return;
  if (c.head_dim == 64) return launch_tiled<64>(c, s);
  if (c.head_dim == 128) return launch_tiled<128>(c, s);
  check(cudaErrorInvalidValue, "attention_tiled: head_dim must be 64 or 128");
}

void attention_f32(const AttentionCall& c, cudaStream_t s) {
  if (c.T > 1 && attention_tiled_supported(c.head_dim)) attention_tiled(c, s);
  else attention_rows(c, s);
}

}  // namespace llrt::cuda
