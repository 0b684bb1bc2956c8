// llrt: many sequences evaluated in one forward pass, over a paged KV cache.
//
// A BatchContext holds, for one Model, a pool of fixed-size KV blocks (`block_size` positions
// of every layer's K and V) and any number of sequences, each a list of blocks. eval() takes
// items (sequence, tokens): every Linear runs once over all rows of the step (the decode rows
// of many sequences and prefill chunks together: GEMM instead of one GEMV per sequence),
// RoPE and attention run per row at its own sequence's positions over its own blocks.
//
// Blocks are taken from the pool when a sequence's positions reach them and returned when it
// is closed. The pool's memory is reserved up front (kv_pool_size() says exactly how much) and
// the operating system backs a block's pages only when it is first written; blocks are handed
// out lowest index first, so the memory touched follows the peak number of blocks in use.
//
// Prefix sharing: a full block is registered under a hash of its tokens and of every token
// before it. attach_prefix() gives a new sequence the cached blocks matching its prompt
// (reference-counted, read-only), including the block holding the first divergent position
// (a full block or the partly filled last block a closed sequence left), shared until the
// sequence first writes into it: then it is copied (copy-on-write, counted by blocks_needed()).
// Blocks no sequence holds stay cached until the pool needs them (least recently used first).
// A block is never overwritten while a sequence holds it: when no block is free or evictable,
// eval() fails with Error{ContextOverflow} saying so and changes
// nothing; free_blocks() lets a scheduler wait instead.
//
// Numerics: the same kernels as Context. Attention over blocks is exact (a range spanning blocks
// is gathered, so the kernel makes a contiguous cache's single pass); a row's result depends on
// the other rows of its step only through which Linear kernel runs (the decode kernel for a
// one-row step, the prefill kernel otherwise: they may round the activations differently).
// Measured against the same sequence run alone: 1.3e-5 to 1.1e-2 of |logits| <= 77 on the mini
// models, the same greedy and seeded tokens (tests/test_batch.cpp); not bit for bit.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "llrt/config.h"
#include "llrt/dtype.h"

namespace llrt {

class Model;

struct BatchOptions {
  int64_t n_ctx = 0;         // positions per sequence; 0: min(max_position_embeddings, 4096)
  int parallel = 1;          // sequences the pool is sized for: blocks = parallel * ceil(n_ctx / block_size)
  int64_t n_batch = 512;     // rows (tokens of all items together) per eval()
  int64_t block_size = 32;   // positions per KV block
  DType kv_dtype = DType::F32;  // F32, F16 or BF16 (as ContextOptions::kv_dtype)
  bool prefix_cache = true;  // register full blocks for attach_prefix()
};

// The KV pool a BatchContext with these options reserves, exactly.
// Error{InvalidArgument} for options BatchContext refuses (n_ctx beyond max_position_embeddings,
// parallel or block_size out of range, a KV dtype other than F32/F16/BF16).
struct KvPoolSize {
  int64_t block_size = 0, blocks = 0;
  uint64_t block_bytes = 0;  // one block: layers * 2 * kv_heads * block_size * head_dim * dtype size
  uint64_t bytes = 0;        // blocks * block_bytes
};
KvPoolSize kv_pool_size(const ModelConfig& c, const BatchOptions& opt);

class BatchContext {
 public:
  using SeqId = int64_t;

  BatchContext(std::shared_ptr<const Model> model, const BatchOptions& opt = {});
  ~BatchContext();
  BatchContext(const BatchContext&) = delete;
  BatchContext& operator=(const BatchContext&) = delete;

  const ModelConfig& config() const;
  int64_t n_ctx() const;    // positions per sequence
  int64_t n_batch() const;  // rows per eval()
  KvPoolSize pool() const;

  // A new, empty sequence.
  SeqId open();
  // On an empty sequence: takes the cached K/V of the longest prefix of `tokens` it can (at most
  // tokens.size() - 1 positions, so the last token is evaluated for its logits) and returns how
  // many positions it now holds. 0 without prefix_cache. Takes cached blocks only; a partly
  // matching last block is shared until the first eval() that writes into it copies it, and
  // only when a block would still be free for that copy.
  int64_t attach_prefix(SeqId s, std::span<const int32_t> tokens);
  // Forgets the sequence; its blocks go back to the pool (full ones, and its last partial one,
  // stay cached for prefixes). Unknown ids: Error{InvalidArgument}.
  void close(SeqId s);
  // Keeps the first n_keep positions (0 <= n_keep <= n_past).
  void truncate(SeqId s, int64_t n_keep);
  int64_t n_past(SeqId s) const;
  int64_t sequences() const;  // open now

  struct Item {
    SeqId seq = -1;
    std::span<const int32_t> tokens;  // appended at positions n_past(seq)..
    bool logits = true;               // the logits of its last token are wanted
  };
  // One forward pass over every item's tokens (at most n_batch() rows in all; each sequence at
  // most once). Checks everything first (ids, room in each sequence, blocks), then runs:
  // Error{InvalidArgument}, Error{ContextOverflow} (a sequence or the pool is full) leave every
  // sequence as it was.
  void eval(std::span<const Item> items);
  // After an eval() that failed with Error{NonFinite}: the item whose logits were NaN/Inf (the
  // others are unchanged and may run again without it); -1 after any other outcome.
  int64_t failed_item() const;
  // The logits (vocab_size F32) of item i's last token from the last eval() (items asked for).
  std::span<const float> logits(size_t item) const;

  // Blocks free or held only by the prefix cache (what eval() and attach_prefix() can take).
  int64_t free_blocks() const;
  // Blocks sequence s needs taken from the pool to append n more positions.
  int64_t blocks_needed(SeqId s, int64_t n) const;
  // Blocks held by sequences now; the highest block index ever handed out + 1 (the pool's memory
  // actually touched, since blocks are handed out lowest index first).
  int64_t blocks_in_use() const;
  int64_t peak_blocks() const;

  struct Impl;

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llrt
