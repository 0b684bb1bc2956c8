// Internal: the KV cache of one sequence and attention over it.
//
// KvCache owns the byte arithmetic. A sequence's positions live in blocks of `run` positions
// (a Context: one block of its whole context; a BatchContext: the pool's blocks, in the order
// its block table lists them); a block's layout is [layer][K | V][kv_head][position][head_dim]
// in the cache's dtype (F32, or F16/BF16 rounded to nearest-even as rows are written), so one
// KV head's positions inside a block are contiguous and an attention kernel reads a span of
// them with stride head_dim.
//
// attend() owns the scheduling: which (sequence, token, head group, position range) each thread
// takes, the log-sum-exp merge of the position ranges a decode step splits into, and the
// gathering of a range that spans several blocks. The math is the Attention kernel's (llrt/kernels.h): per query
// row, softmax(scale * q.K^T) . V over positions [0, pos], causal.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "llrt/config.h"
#include "src/engine/kernels.h"

namespace llrt {

class WorkPool;

class KvCache {
 public:
  KvCache() = default;
  // One block of `ctx` positions: `base` holds bytes(dtype, layers, kv_heads, ctx, head_dim) bytes.
  KvCache(char* base, DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim);
  // Paged: position p is in blocks[p / run], each block bytes(dtype, layers, kv_heads, run,
  // head_dim) bytes. The table is read, not copied: it must outlive the view.
  KvCache(char* const* blocks, DType dtype, int64_t layers, int64_t kv_heads, int64_t run, int64_t head_dim);
  static uint64_t bytes(DType dtype, int64_t layers, int64_t kv_heads, int64_t ctx, int64_t head_dim);

  DType dtype() const { return dtype_; }
  int64_t run() const { return run_; }  // contiguous positions per block
  int64_t head_dim() const { return hd_; }
  // Writes K and V of T tokens (F32 rows [T, kv_heads * head_dim]) at positions p0.. of `layer`.
  void store(int64_t layer, int64_t p0, int64_t T, const float* k, const float* v) const;  // a view: writes the blocks
  // Position `pos` of KV head `head` in `layer` (the first of a contiguous span that runs to
  // the end of its block).
  const void* k(int64_t layer, int64_t head, int64_t pos) const { return at(layer, 0, head, pos); }
  const void* v(int64_t layer, int64_t head, int64_t pos) const { return at(layer, 1, head, pos); }

 private:
  char* at(int64_t layer, int kv, int64_t head, int64_t pos) const {
    char* b = blocks_ ? blocks_[pos / run_] : base_;
    return b + ((((layer * 2 + kv) * kvh_ + head) * run_ + pos % run_) * hd_) * int64_t(es_);
  }
  char* base_ = nullptr;
  char* const* blocks_ = nullptr;
  DType dtype_ = DType::F32;
  size_t es_ = 4;
  int64_t layers_ = 0, kvh_ = 0, run_ = 0, hd_ = 0;
};

// Per-context attention scratch (sizes from the scratch plan).
struct AttentionScratch {
  float* scores = nullptr;  // threads * run * n_rep
  float* part = nullptr;    // n_heads * head_dim * splits: the position ranges' outputs
  float* lse = nullptr;     // n_heads * splits: their log-sum-exps
  void* gather = nullptr;   // threads * gather_bytes: a range's K and V, contiguous (paged caches only)
  size_t gather_bytes = 0;  // per thread: K then V of up to `run` positions of one KV head
  int64_t splits = 1;       // position ranges per KV head in a decode step
  int64_t run = 0;          // the most positions a row attends to (the context)
};

// One sequence's rows in a forward step: q/out rows [row0, row0 + T) at positions p0.. of `kv`.
struct AttendSeq {
  const KvCache* kv = nullptr;
  int64_t row0 = 0, T = 0, p0 = 0;
};

// For every sequence: out[row, h*hd..] = attention of query head h of the row (q: [rows,
// q_dim], RoPE applied) at position p0 + t over its cache's positions [0, p0 + t] of `layer`,
// for every head (GQA: KV head h / n_rep). `nt` threads of `pool`. A range of positions that
// spans several blocks is gathered into the thread's scratch first, so the kernel makes the
// same single pass as over a contiguous cache: a row's result is the same whatever the block
// size, whichever blocks hold it and whatever else is in the step. Split strategy (results do
// not depend on it beyond F32 rounding of the range merge, which only decode with more threads
// than KV heads uses):
//   * one sequence decoding (T = 1) with more threads than KV heads and >= 64 positions: each
//     KV head's positions in up to `splits` ranges of >= 32, one (head group, range) per item,
//     merged by log-sum-exp;
//   * rows * kv_heads >= threads (or every sequence decoding): one item per (16-row chunk of a
//     sequence, KV head), the kernel reads each K/V row once for the group's n_rep query heads;
//   * otherwise one item per (16-row chunk, query head).
void attend(WorkPool& pool, int nt, AttentionFn fn, const ModelConfig& c, std::span<const AttendSeq> seqs, int64_t layer,
            const float* q, float* out, const AttentionScratch& s);

}  // namespace llrt
