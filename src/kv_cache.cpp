// The KV cache's byte layout and the attention schedule (src/kv_cache.h).
#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "llrt/dtype.h"
#include "work_pool.h"

namespace llrt {

KvCache::KvCache(char* base, DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim)
    : base_(base), dtype_(dtype), es_(dtype_size(dtype)), layers_(layers), kvh_(kv_heads), ctx_(ctx), hd_(head_dim) {}

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

void KvCache::store(int64_t layer, int64_t p0, int64_t T, const float* k, const float* v) {
  const int64_t kvd = kvh_ * hd_;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < kvh_; ++j) {
      store_row(dtype_, k + t * kvd + j * hd_, hd_, const_cast<char*>(at(layer, 0, j, p0 + t)));
      store_row(dtype_, v + t * kvd + j * hd_, hd_, const_cast<char*>(at(layer, 1, j, p0 + t)));
    }
}

void attend(WorkPool& pool, int nt, AttentionFn fn, const ModelConfig& c, const KvCache& kv, int64_t layer,
            const float* q, int64_t T, int64_t p0, float* out, const AttentionScratch& s) {
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads, rep = c.n_rep();
  const int64_t QD = c.q_dim(), ctx = kv.ctx();
  const float scale = float(1.0 / std::sqrt(double(hd)));
  // Query heads h..h+n_q-1 (one GQA group) of token t over positions [b0, b1).
  auto run = [&](int slot, int64_t t, int64_t h, int64_t n_q, int64_t b0, int64_t b1, float* o, float* lse) {
    const int64_t j = h / rep;
    AttentionArgs a;
    a.q = q + t * QD + h * hd;
    a.k = kv.k(layer, j, b0);
    a.v = kv.v(layer, j, b0);
    a.kv_stride = hd;
    a.n_kv = b1 - b0;
    a.head_dim = hd;
    a.scale = scale;
    a.out = o;
    a.scratch = s.scores + int64_t(slot) * ctx * rep;
    a.n_q = n_q;
    a.q_stride = a.out_stride = hd;
    a.lse = lse;
    fn(a);
  };
  auto whole = [&](int slot, int64_t t, int64_t h, int64_t n_q) { run(slot, t, h, n_q, 0, p0 + t + 1, out + t * QD + h * hd, nullptr); };
  const int64_t S = T == 1 ? std::min<int64_t>(s.splits, (p0 + 1) / 32) : 1;
  if (S > 1) {
    const int64_t n = p0 + 1;
    pool.run(nt, nkv * S, [&](int64_t it, int slot) {
      const int64_t j = it / S, si = it % S;
      run(slot, 0, j * rep, rep, n * si / S, n * (si + 1) / S, s.part + (j * S + si) * rep * hd, s.lse + (j * S + si) * rep);
    });
    for (int64_t h = 0; h < nh; ++h) {  // out_h = sum_s w_s out_s / sum_s w_s, w_s = exp(lse_s - max lse)
      const int64_t j = h / rep, r = h % rep;
      float mx = -INFINITY;
      for (int64_t si = 0; si < S; ++si) mx = std::max(mx, s.lse[(j * S + si) * rep + r]);
      float* o = out + h * hd;
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
  } else if (T * nkv >= nt || T == 1) {
    pool.run(nt, T * nkv, [&](int64_t it, int slot) { whole(slot, it / nkv, (it % nkv) * rep, rep); });
  } else {
    pool.run(nt, T * nh, [&](int64_t it, int slot) { whole(slot, it / nh, it % nh, 1); });
  }
}

}  // namespace llrt
