// Perplexity of a token sequence under a model (llama-perplexity's measure, HF's formula).
//
// The ids are cut into chunks of at most `chunk` positions; each chunk starts with a fresh
// context (Session::reset) and, when bos >= 0, the BOS token, so a chunk holds BOS + up to
// chunk-1 text tokens (else chunk text tokens). Every position after the first of a chunk
// is scored with the logits of the position before it:
//   nll_i = -log softmax(logits_{i-1})[id_i]   (log-sum-exp in F64)
//   ppl   = exp(mean nll) over all scored tokens, stderr of the mean nll reported too.
// Logits are taken n_batch positions at a time (eval_all), never a whole chunk's at once.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "llrt/session.h"

namespace llrt {

struct PerplexityOptions {
  int64_t chunk = 512;     // positions per chunk (<= the session's context)
  int32_t bos = -1;        // prepended to every chunk when >= 0
  int64_t max_chunks = 0;  // 0: all
  int64_t n_batch = 64;    // positions whose logits are held at once
};

struct PerplexityResult {
  std::vector<double> nll;  // per scored token, in order
  int64_t chunks = 0;
  double mean_nll = 0, stderr_nll = 0;
  double ppl() const;
};

// `progress(chunk_index, running ppl)` after each chunk. Error{InvalidArgument} for no ids,
// chunk < 2 (or < 3 with BOS: nothing to score), or chunk > session.n_ctx().
PerplexityResult perplexity(Session& s, std::span<const int32_t> ids, const PerplexityOptions& opt,
                            const std::function<void(int64_t, double)>& progress = {});

}  // namespace llrt
