// Perplexity of a token sequence under a model, two methods (PerplexityOptions::method):
//
// LlamaCpp (default): llama-perplexity's measure. `ids` is the text as the tokenizer encodes it
// with its special tokens (BOS first when the model adds one). It is cut into n = ids.size() /
// chunk whole chunks (a partial last chunk is dropped; fewer than 2 * chunk ids is an error, as
// there); in each chunk the first id is replaced by `bos` when bos >= 0, the chunk is evaluated
// from a fresh context, and only its second half is scored: the logits at positions
// chunk/2 .. chunk-2 predict the ids after them (chunk - chunk/2 - 1 tokens per chunk).
//
// AllPositions: every position of every chunk. The ids (no special tokens) are cut into chunks of
// at most chunk-1 ids (chunk with no BOS), each after `bos` when bos >= 0 and from a fresh
// context, and every position after the first of a chunk is scored.
//
// Both: nll_i = -log softmax(logits_{i-1})[id_i] (log-sum-exp in F64), ppl = exp(mean nll), and
// the standard error of the mean nll. Logits are taken n_batch positions at a time (eval_all),
// never a whole chunk's at once.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "llrt/session.h"

namespace llrt {

enum class PerplexityMethod { LlamaCpp, AllPositions };

struct PerplexityOptions {
  int64_t chunk = 512;     // positions per chunk (<= the session's context)
  int32_t bos = -1;        // each chunk's first id (LlamaCpp) or prepended to each chunk (AllPositions) when >= 0
  int64_t max_chunks = 0;  // 0: all
  int64_t n_batch = 64;    // positions whose logits are held at once
  PerplexityMethod method = PerplexityMethod::LlamaCpp;
};

struct PerplexityResult {
  std::vector<double> nll;  // per scored token, in order
  int64_t chunks = 0;
  double mean_nll = 0, stderr_nll = 0;
  double ppl() const;
};

// `progress(chunk_index, running ppl)` after each chunk. Error{InvalidArgument} for no ids,
// chunk < 2 (or < 3 with BOS, or < 4 for LlamaCpp: nothing to score), chunk > session.n_ctx(), or
// (LlamaCpp) fewer than 2 * chunk ids.
PerplexityResult perplexity(Session& s, std::span<const int32_t> ids, const PerplexityOptions& opt,
                            const std::function<void(int64_t, double)>& progress = {});

}  // namespace llrt
