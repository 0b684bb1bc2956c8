// Internal: the Llama forward pass over the rows of one step, shared by Context (one sequence,
// one contiguous KV cache) and BatchContext (many sequences, paged KV blocks).
#pragma once
#include <span>
#include <vector>

#include "kv_cache.h"
#include "model_impl.h"

namespace llrt {

// The activations of one engine for up to plan.batch rows, and its attention scratch.
struct ForwardBuffers {
  detail::ScratchPlan plan;
  std::vector<AlignedBuffer> bufs;
  float *x = nullptr, *xb = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *gate = nullptr, *up = nullptr;
  float *rope_cos = nullptr, *rope_sin = nullptr;
  AttentionScratch att_s;
  AttentionFn attn_fn = nullptr;  // the kernel for the KV cache's dtype
  void* prep = nullptr;
  uint64_t bytes = 0;  // allocated here

  // Allocates every buffer of `plan` (its prep_bytes, logits and kv_bytes are the caller's) and
  // fills the RoPE table for plan.ctx positions.
  void allocate(const Model::Impl& m, const detail::ScratchPlan& plan, AttentionFn fn);
  float* alloc(int64_t n);
};

// Bytes of activation prep the bound kernels need: decode kernels at M = 1, prefill kernels up
// to M = batch (prep_bytes never shrinks as M grows).
uint64_t bound_prep_bytes(const Model::Impl& m, int64_t batch);

// Where a forward pass first produced NaN/Inf: asked for only after the logits came out
// non-finite (the pass is run again with checks after every stage; free otherwise).
struct NonFiniteProbe {
  int64_t stage = -3;  // -1: the token embeddings, 0..L-1: that layer's output, L: the final norm; -3: none
  int64_t row = -1;    // the row (token) where it appeared first
  bool found() const { return stage != -3; }
  // True (and recorded) when one of rows [from, T) of `x` ([T, H]) holds a NaN/Inf.
  bool check(int64_t at, const float* x, int64_t from, int64_t T, int64_t H);
};

// One forward step over the rows `toks` (all sequences' tokens, in the order of `seqs`: sequence
// i owns rows [row0, row0 + T) at positions p0.. of its KV cache, which receives their K/V).
// Writes the final hidden state (after the final norm) of rows out_rows[i] (ascending) into
// row i of s.xb. With a probe, stops at the first stage whose output holds a NaN/Inf.
void forward_rows(const Model::Impl& m, ForwardBuffers& s, const int32_t* toks, std::span<const AttendSeq> seqs,
                  std::span<const int64_t> out_rows, NonFiniteProbe* probe = nullptr);

}  // namespace llrt
