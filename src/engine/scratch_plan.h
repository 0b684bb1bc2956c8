// Internal: the engine's buffer plan, shared by the engine (which allocates it) and
// estimate_memory (which reports it), so the memory estimate is exact by construction.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "llrt/config.h"
#include "llrt/error.h"

namespace llrt::detail {

// Checked arithmetic for the plan: sizes come from config.json and the caller's ctx/batch, so a
// product that does not fit is an Error{InvalidArgument} naming the request, never a wrapped size.
struct PlanMath {
  int64_t ctx, batch;
  static constexpr uint64_t kMaxBytes = uint64_t(1) << 62;  // 4 EiB: anything above is absurd
  [[noreturn]] void overflow() const {
    fail(ErrorCode::InvalidArgument, "memory plan: a context of " + std::to_string(ctx) + " tokens with batch " +
                                         std::to_string(batch) + " needs more than 2^62 bytes; use a smaller context (--ctx) or batch");
  }
  int64_t mul(int64_t a, int64_t b) const {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || uint64_t(r) > kMaxBytes) overflow();
    return r;
  }
  uint64_t umul(uint64_t a, uint64_t b) const {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > kMaxBytes) overflow();
    return r;
  }
  uint64_t add(uint64_t a, uint64_t b) const {
    if (a > kMaxBytes || b > kMaxBytes - a) overflow();
    return a + b;
  }
};

struct ScratchPlan {
  int64_t batch = 0, ctx = 0, threads = 0;
  // element counts (F32) per buffer
  int64_t x = 0, xb = 0, q = 0, k = 0, v = 0, att = 0, gate = 0, up = 0, logits = 0;
  int64_t att_scores = 0;  // threads * ctx * n_rep (one GQA group's scores per thread)
  int64_t att_splits = 1;  // position ranges per KV head in a decode step (threads > KV heads)
  int64_t att_part = 0;    // n_heads * head_dim * att_splits: the ranges' outputs
  int64_t att_lse = 0;     // n_heads * att_splits: their log-sum-exps
  int64_t rope = 0;        // ctx * head_dim (cos and sin halves)
  uint64_t prep_bytes = 0; // largest kernel activation-prep buffer
  uint64_t kv_per_token_bytes = 0;
  uint64_t kv_bytes = 0;   // kv_per_token_bytes * ctx

  uint64_t scratch_bytes() const {
    const PlanMath m{ctx, batch};
    uint64_t elems = 0;
    for (int64_t e : {x, xb, q, k, v, att, gate, up, logits, att_scores, att_part, att_lse, rope}) elems = m.add(elems, uint64_t(e));
    return m.add(m.umul(elems, 4), prep_bytes);
  }
};

inline ScratchPlan make_scratch_plan(const ModelConfig& c, int64_t ctx, int64_t batch, int threads,
                                     uint64_t prep_bytes, uint64_t kv_elem_bytes = 4) {
  const PlanMath m{ctx, batch};
  ScratchPlan p;
  p.batch = batch;
  p.ctx = ctx;
  p.threads = threads;
  p.x = p.xb = m.mul(batch, c.hidden_size);
  p.q = p.att = m.mul(batch, c.q_dim());
  p.k = p.v = m.mul(batch, c.kv_dim());
  p.gate = p.up = m.mul(batch, c.intermediate_size);
  p.logits = c.vocab_size;
  p.att_scores = m.mul(m.mul(int64_t(threads), ctx), c.n_rep());
  p.att_splits = std::clamp<int64_t>((threads + c.num_key_value_heads - 1) / c.num_key_value_heads, 1, 64);
  p.att_part = c.num_attention_heads * c.head_dim * p.att_splits;
  p.att_lse = c.num_attention_heads * p.att_splits;
  p.rope = m.mul(ctx, c.head_dim);
  p.prep_bytes = prep_bytes;
  p.kv_per_token_bytes = m.umul(uint64_t(2 * c.num_hidden_layers * c.kv_dim()), kv_elem_bytes);
  p.kv_bytes = m.umul(p.kv_per_token_bytes, uint64_t(ctx));
  (void)p.scratch_bytes();  // the sum is checked here, once, for every caller
  return p;
}

}  // namespace llrt::detail
