// llrt: sampling and the generation loop (the embeddable API the CLI uses).
//
// Sampling follows HF transformers' generate(): repetition penalty over the prompt and
// everything generated so far, then temperature, top-k, top-p, min-p, then a draw
// from the softmax. temperature == 0 (or do_sample=false) is greedy. The same seed
// gives the same tokens (mt19937_64, our own uniform draw: no libstdc++ distribution).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llrt/model.h"
#include "llrt/tokenizer.h"

namespace llrt {

struct SamplingParams {
  float temperature = 1.0f;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
};

// HF defaults (do_sample=false => greedy) overridden by generation_config.json.
SamplingParams sampling_from_generation_config(const std::optional<GenerationConfig>& g);
// EOS ids: union of config.json's and generation_config.json's eos_token_id.
std::vector<int32_t> eos_ids_for(const ModelConfig& c, const std::optional<GenerationConfig>& g);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // `logits` is modified in place (penalties, temperature). `history` = prompt + generated.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;
  std::vector<float> probs_;
};

enum class StopReason { Eos, MaxTokens, StopString, Callback, ContextFull };
const char* stop_reason_name(StopReason r);

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<int32_t> eos_ids;           // stop on any (not emitted)
  std::vector<std::string> stop_strings;  // stop when generated text contains one (not emitted)
};

struct GenerateStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prompt_seconds = 0, generation_seconds = 0;
  StopReason reason = StopReason::MaxTokens;
  std::vector<int32_t> tokens;  // generated ids (EOS excluded)
  double prompt_tps() const { return prompt_seconds > 0 ? double(prompt_tokens) / prompt_seconds : 0; }
  double generation_tps() const { return generation_seconds > 0 ? double(generated_tokens) / generation_seconds : 0; }
};

// Called for each generated token with the text that became complete (UTF-8 safe;
// may be empty). Return false to stop.
using TokenCallback = std::function<bool(int32_t id, std::string_view text)>;

// Generates after `prompt` in `ctx` (a CPU Context or a CudaContext), which keeps its
// cache (so a chat can continue). Without a tokenizer, text is empty and stop strings
// are an error. Greedy decoding without a repetition penalty asks the session for the
// argmax only (Session::eval_greedy: on a GPU, no logits copied back).
GenerateStats generate(Session& ctx, const Tokenizer* tok, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const TokenCallback& on_token);

}  // namespace llrt
