// Internal: the KV cache of one sequence and attention over it.
//
// KvCache owns the byte arithmetic: layout [layer][K | V][kv_head][position][head_dim] in the
// cache's dtype (F32, or F16/BF16 rounded to nearest-even as rows are written), so one KV
// head's positions are contiguous and an attention kernel reads a span of them with stride
// head_dim.
//
// attend() owns the scheduling: which (token, head group, position range) each thread takes,
// and the log-sum-exp merge of position ranges. The math is the Attention kernel's
// (llrt/kernels.h): per query row, softmax(scale * q.K^T) . V over positions [0, pos], causal.
#pragma once
#include <cstddef>
#include <cstdint>

#include "llrt/config.h"
#include "llrt/kernels.h"

namespace llrt {

class WorkPool;

class KvCache {
 public:
  KvCache() = default;
  // `base` holds bytes(...) bytes.
  KvCache(char* base, DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim);
  static uint64_t bytes(DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim);

  DType dtype() const { return dtype_; }
  int64_t ctx() const { return ctx_; }
  int64_t head_dim() const { return hd_; }
  // Writes K and V of T tokens (F32 rows [T, kv_heads * head_dim]) at positions p0.. of `layer`.
  void store(int64_t layer, int64_t p0, int64_t T, const float* k, const float* v);
  // Position `pos` of KV head `head` in `layer` (the first of a contiguous span).
  const void* k(int64_t layer, int64_t head, int64_t pos) const { return at(layer, 0, head, pos); }
  const void* v(int64_t layer, int64_t head, int64_t pos) const { return at(layer, 1, head, pos); }

 private:
  const char* at(int64_t layer, int kv, int64_t head, int64_t pos) const {
    return base_ + ((((layer * 2 + kv) * kvh_ + head) * ctx_ + pos) * hd_) * int64_t(es_);
  }
  char* base_ = nullptr;
  DType dtype_ = DType::F32;
  size_t es_ = 4;
  int64_t layers_ = 0, kvh_ = 0, ctx_ = 0, hd_ = 0;
};

// Per-context attention scratch (sizes from the scratch plan).
struct AttentionScratch {
  float* scores = nullptr;  // threads * ctx * n_rep
  float* part = nullptr;    // n_heads * head_dim * splits: the position ranges' outputs
  float* lse = nullptr;     // n_heads * splits: their log-sum-exps
  int64_t splits = 1;       // position ranges per KV head in a decode step
};

// out[t, h*hd..] = attention of query head h of token t (q: [T, q_dim], RoPE applied) at
// position p0 + t over the cache's positions [0, p0 + t] of `layer`, for every head (GQA: KV
// head h / n_rep). `nt` threads of `pool`. Split strategy (results do not depend on it beyond
// F32 rounding of the range merge, which only decode with more threads than KV heads uses):
//   * decode (T = 1) with more threads than KV heads and >= 64 positions: each KV head's
//     positions in up to `splits` ranges of >= 32, one (head group, range) per item, merged by
//     log-sum-exp;
//   * T * kv_heads >= threads (or decode): one item per (token, KV head), the kernel reads each
//     K/V row once for the group's n_rep query heads;
//   * otherwise one item per (token, query head).
void attend(WorkPool& pool, int nt, AttentionFn fn, const ModelConfig& c, const KvCache& kv, int64_t layer,
            const float* q, int64_t T, int64_t p0, float* out, const AttentionScratch& s);

}  // namespace llrt
