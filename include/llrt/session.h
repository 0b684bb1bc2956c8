// llrt: a sequence being evaluated, on whatever device holds the model.
//
// Session is what generate() and the CLI drive: tokens in, logits of the last one out,
// a KV cache that persists between calls. llrt::Context (CPU, llrt/model.h) and
// llrt::CudaContext (GPU, llrt/cuda.h) implement it with the same semantics:
//   eval(tokens)      appends tokens at positions n_past().., returns the last logits
//                     (vocab_size F32, valid until the next call); Error{ContextOverflow}
//                     if the cache would overflow, Error{InvalidArgument} for an id outside
//                     the vocabulary, both with the state unchanged.
//   eval_all(tokens)  the same, returning logits for every position ([n, vocab]).
//   eval_greedy(t)    the same, returning only the argmax of the last logits (lowest id
//                     among equal maxima) - computed where the session runs, so a GPU
//                     session need not copy the logits back for greedy decoding.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llrt/config.h"

namespace llrt {

// What every Session::eval checks before running (the CPU and CUDA engines share it): at
// least one token, every id inside the vocabulary, and room in the context.
// Error(InvalidArgument) or Error(ContextOverflow).
void check_eval_tokens(const ModelConfig& c, std::span<const int32_t> toks, int64_t n_past, int64_t n_ctx);
// Every Session::eval checks the logits it made (one pass over the vocabulary): n_bad NaN/Inf
// logits at position `pos` are Error(NonFinite), saying so, `where` (what the engine found made
// them, may be empty) and what to do; the session is left as before the call.
[[noreturn]] void fail_non_finite_logits(int64_t pos, uint64_t n_bad, int64_t vocab, const std::string& where);

class Session {
 public:
  virtual ~Session() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual int64_t n_past() const = 0;
  virtual void reset() = 0;                 // forget all cached positions
  virtual void truncate(int64_t n_keep) = 0;  // keep the first n_keep positions
  virtual std::span<const float> eval(std::span<const int32_t> tokens) = 0;
  virtual std::vector<float> eval_all(std::span<const int32_t> tokens) = 0;
  virtual int32_t eval_greedy(std::span<const int32_t> tokens) {
    auto lg = eval(tokens);
    return int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
  }
  // Where it runs, for people: "cpu (8 threads)", "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)".
  virtual std::string device_name() const = 0;
};

}  // namespace llrt
