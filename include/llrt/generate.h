// llrt: sampling and the generation loop (the embeddable API the CLI uses).
//
// Sampling follows HF transformers' generate(): repetition penalty over the prompt and
// everything generated so far, then temperature, top-k, top-p, min-p, then a draw
// from the softmax. temperature == 0 (or do_sample=false) is greedy. The same seed
// gives the same tokens (mt19937_64, our own uniform draw: no libstdc++ distribution).
// OpenAI's extras (all off by default): logit_bias is added to the raw logits first;
// presence/frequency penalties (OpenAI / vLLM: over the generated tokens only) follow the
// repetition penalty: logit -= frequency * count + presence * (count > 0).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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
  float presence_penalty = 0.0f;    // 0: off (OpenAI: -2..2)
  float frequency_penalty = 0.0f;   // 0: off (OpenAI: -2..2)
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit); -100 all but bans it
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
  // Whether anything changes the logits before the argmax/draw (else greedy needs only the argmax).
  bool modifies_logits() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f || !logit_bias.empty();
  }
};

// HF defaults (do_sample=false => greedy) overridden by generation_config.json.
SamplingParams sampling_from_generation_config(const std::optional<GenerationConfig>& g);
// EOS ids: union of config.json's and generation_config.json's eos_token_id.
std::vector<int32_t> eos_ids_for(const ModelConfig& c, const std::optional<GenerationConfig>& g);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // `logits` is modified in place (bias, penalties, temperature). `history` = prompt + generated,
  // of which the last `n_generated` are the generated tokens (the presence and frequency
  // penalties count those). A logit_bias id outside the logits is Error(InvalidArgument).
  int32_t sample(std::span<float> logits, std::span<const int32_t> history, size_t n_generated = 0);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;
  std::vector<float> probs_;
};

// Log-probabilities of the model's distribution: log_softmax of the raw logits, before any
// bias, penalty, temperature or filter (what vLLM returns by default, "raw_logprobs").
struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0;
};
struct TokenLogprobs {
  TokenLogprob chosen;            // the token that was sampled
  std::vector<TokenLogprob> top;  // the top_n most likely, most likely first (ties: lower id first)
};
TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, int top_n);

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

// The generation loop's decisions one token at a time, for a caller that runs the forward
// passes itself (generate() below; a scheduler interleaving many sequences, as llrt serve):
// after evaluating the prompt, hand the logits of its last position to next(); when the step
// is not done, evaluate step.id and call next() again. The decisions are generate()'s: EOS
// ends without a token, stop strings end with the text before them (text that may begin a
// stop string is held back), max_new_tokens ends after the token that reaches it (or at once
// for 0). The caller checks its own context room (StopReason::ContextFull) between steps.
class TokenGenerator {
 public:
  struct Step {
    int32_t id = -1;    // the new token (-1: none, the step ended generation: EOS or max_new_tokens 0)
    std::string text;   // text that became complete with it (UTF-8 safe, stop strings held back)
    bool done = false;  // generation ended here; `reason` says why
    StopReason reason = StopReason::MaxTokens;
    std::optional<TokenLogprobs> logprobs;  // when asked for (top_logprobs >= 0) and id >= 0
  };
  // `tok` may be null (then text is empty and stop strings are an error). `top_logprobs`:
  // -1 none, else the chosen token's log-probability plus the top N. `continue_text`: the text
  // continues the prompt's (decode(prompt + generated) minus decode(prompt): a SentencePiece
  // word-start space is kept on the first token, as an OpenAI completion needs); false: the
  // generated ids are decoded on their own (generate()'s and the chat's way). Validates the options.
  TokenGenerator(const Tokenizer* tok, std::span<const int32_t> prompt, const GenerateOptions& opt, int top_logprobs = -1,
                 bool continue_text = false);
  // True when the argmax of the logits is all next_argmax() needs (greedy, nothing modifies
  // the logits, no logprobs): a session may compute it where it runs (Session::eval_greedy).
  bool argmax_only() const { return argmax_only_; }
  Step next(std::span<const float> logits);
  Step next_argmax(int32_t id);
  // The text still held at the end (an unfinished character, a possible stop-string start);
  // empty after a stop string. Call once, after the last step.
  std::string finish();
  const std::vector<int32_t>& tokens() const { return tokens_; }  // generated (EOS excluded)

 private:
  Step take(int32_t id, std::optional<TokenLogprobs> lp);
  GenerateOptions opt_;
  Sampler sampler_;
  int top_logprobs_;
  bool argmax_only_;
  std::vector<int32_t> history_, tokens_;
  std::vector<float> logits_;
  std::optional<TokenDecodeStream> stream_;
  std::string pending_;
  bool stopped_ = false;
};

// Generates after `prompt` in `ctx` (a CPU Context or a CudaContext), which keeps its
// cache (so a chat can continue). Without a tokenizer, text is empty and stop strings
// are an error. Greedy decoding without a repetition penalty asks the session for the
// argmax only (Session::eval_greedy: on a GPU, no logits copied back).
GenerateStats generate(Session& ctx, const Tokenizer* tok, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const TokenCallback& on_token);

}  // namespace llrt
