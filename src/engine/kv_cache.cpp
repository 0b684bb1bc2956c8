// The KV cache's byte layout and the attention schedule (src/kv_cache.h).
#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "llrt/dtype.h"
#include "work_pool.h"

namespace llrt {

KvCache::KvCache(char* base, DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim)
    : base_(base), dtype_(dtype), es_(dtype_size(dtype)), layers_(layers), kvh_(kv_heads), run_(ctx), hd_(head_dim) {}
KvCache::KvCache(char* const* blocks, DType dtype, int64_t layers, int64_t kv_heads, int64_t run, int64_t head_dim)
    : blocks_(blocks), dtype_(dtype), es_(dtype_size(dtype)), layers_(layers), kvh_(kv_heads), run_(run), hd_(head_dim) {}

uint64_t KvCache::bytes(DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim) {
  return uint64_t(layers) * 2 * uint64_t(kv_heads) * uint64_t(ctx) * uint64_t(head_dim) * dtype_size(dtype);
}

namespace {
// One row into the cache in its dtype: F32 copied, F16/BF16 rounded to nearest-even.
void store_row(DType dt, const float* src, int64_t n, char* dst) {
  if (dt == DType::F32) {
    std::memcpy(dst, src, size_t(n) * 4);
    return;
  }
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  if (dt == DType::BF16)
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
}  // namespace

void KvCache::store(int64_t layer, int64_t p0, int64_t T, const float* k, const float* v) const {
  const int64_t kvd = kvh_ * hd_;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < kvh_; ++j) {
      store_row(dtype_, k + t * kvd + j * hd_, hd_, at(layer, 0, j, p0 + t));
      store_row(dtype_, v + t * kvd + j * hd_, hd_, at(layer, 1, j, p0 + t));
    }
}

void attend(WorkPool& pool, int nt, AttentionFn fn, const ModelConfig& c, std::span<const AttendSeq> seqs, int64_t layer,
            const float* q, float* out, const AttentionScratch& s) {
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads, rep = c.n_rep();
  const int64_t QD = c.q_dim();
  const float scale = float(1.0 / std::sqrt(double(hd)));
  // K/V of KV head j over positions [b0, b1) as one contiguous span: in place when the range
  // lies in one block, else gathered into the thread's scratch (so the kernel makes one pass
  // over the range exactly as over a contiguous cache: the result does not depend on blocks).
  struct Span {
    const void *k, *v;
  };
  auto span_of = [&](int slot, const KvCache& kv, int64_t j, int64_t b0, int64_t b1) {
    const int64_t B = kv.run();
    if (b0 / B == (b1 - 1) / B) return Span{kv.k(layer, j, b0), kv.v(layer, j, b0)};
    const size_t es = dtype_size(kv.dtype()), row = size_t(hd) * es;
    char* gk = static_cast<char*>(s.gather) + size_t(slot) * s.gather_bytes;
    char* gv = gk + s.gather_bytes / 2;
    for (int64_t p = b0; p < b1;) {
      const int64_t e = std::min(b1, (p / B + 1) * B);
      std::memcpy(gk + size_t(p - b0) * row, kv.k(layer, j, p), size_t(e - p) * row);
      std::memcpy(gv + size_t(p - b0) * row, kv.v(layer, j, p), size_t(e - p) * row);
      p = e;
    }
    return Span{gk, gv};
  };
  auto call = [&](int slot, Span kv, const float* qr, int64_t n_q, int64_t n, float* o, float* lse) {
    AttentionArgs a;
    a.q = qr;
    a.k = kv.k;
    a.v = kv.v;
    a.kv_stride = hd;
    a.n_kv = n;
    a.head_dim = hd;
    a.scale = scale;
    a.out = o;
    a.scratch = s.scores + int64_t(slot) * s.run * rep;
    a.n_q = n_q;
    a.q_stride = a.out_stride = hd;
    a.lse = lse;
    fn(a);
  };
  const int64_t n_seq = int64_t(seqs.size());
  if (n_seq == 1 && seqs[0].T == 1) {
    const AttendSeq& sq = seqs[0];
    const int64_t p0 = sq.p0;
    const int64_t S = std::min<int64_t>(s.splits, (p0 + 1) / 32);
    if (S > 1) {
      const int64_t n = p0 + 1;
      const float* q0 = q + sq.row0 * QD;
      pool.run(nt, nkv * S, [&](int64_t it, int slot) {
        const int64_t j = it / S, si = it % S, b0 = n * si / S, b1 = n * (si + 1) / S;
        call(slot, span_of(slot, *sq.kv, j, b0, b1), q0 + j * rep * hd, rep, b1 - b0, s.part + (j * S + si) * rep * hd,
             s.lse + (j * S + si) * rep);
      });
      float* o0 = out + sq.row0 * QD;
      for (int64_t h = 0; h < nh; ++h) {  // out_h = sum_s w_s out_s / sum_s w_s, w_s = exp(lse_s - max lse)
        const int64_t j = h / rep, r = h % rep;
        float mx = -INFINITY;
        for (int64_t si = 0; si < S; ++si) mx = std::max(mx, s.lse[(j * S + si) * rep + r]);
        float* o = o0 + h * hd;
        std::fill(o, o + hd, 0.0f);
        double wsum = 0;
        for (int64_t si = 0; si < S; ++si) {
          const float w = float(std::exp(double(s.lse[(j * S + si) * rep + r]) - double(mx)));
          const float* p = s.part + ((j * S + si) * rep + r) * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] += w * p[d];
          wsum += w;
        }
        const float inv = float(1.0 / wsum);
        for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
      }
      return;
    }
  }
  // Every sequence's rows in chunks (of up to 16 when paged: the chunk's positions gathered
  // once), times the heads: item -> (sequence, chunk, head group).
  int64_t rows = 0;
  bool all_decode = true, paged = false;
  for (const AttendSeq& sq : seqs) {
    rows += sq.T;
    all_decode = all_decode && sq.T == 1;
    paged = paged || sq.kv->run() < sq.p0 + sq.T;
  }
  const int64_t kRows = paged ? 16 : 1;  // a contiguous cache gathers nothing: one row per item
  const bool grouped = rows * nkv >= nt || all_decode;
  const int64_t per_chunk = grouped ? nkv : nh, n_q = grouped ? rep : 1;
  std::vector<int64_t> first(size_t(n_seq) + 1, 0);  // first item of each sequence
  for (int64_t i = 0; i < n_seq; ++i) first[size_t(i) + 1] = first[size_t(i)] + (seqs[size_t(i)].T + kRows - 1) / kRows * per_chunk;
  pool.run(nt, first.back(), [&](int64_t it, int slot) {
    const size_t si = size_t(std::upper_bound(first.begin(), first.end(), it) - first.begin()) - 1;
    const AttendSeq& sq = seqs[si];
    const int64_t local = it - first[si], chunk = local / per_chunk, h = (local % per_chunk) * n_q;
    const int64_t r0 = chunk * kRows, r1 = std::min(sq.T, r0 + kRows);
    const Span kv = span_of(slot, *sq.kv, h / rep, 0, sq.p0 + r1);  // the positions the chunk's last row sees
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t row = sq.row0 + r;
      call(slot, kv, q + row * QD + h * hd, n_q, sq.p0 + r + 1, out + row * QD + h * hd, nullptr);
    }
  });
}

}  // namespace llrt
