#include "llrt/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <set>

#include "llrt/error.h"

namespace llrt {

SamplingParams sampling_from_generation_config(const std::optional<GenerationConfig>& g) {
  SamplingParams p;
  p.temperature = 0.0f;  // HF: do_sample defaults to false => greedy
  if (!g) return p;
  bool sample = g->do_sample.value_or(false);
  if (sample) p.temperature = float(g->temperature.value_or(1.0));
  if (g->top_k) p.top_k = *g->top_k;
  else if (sample) p.top_k = 50;  // HF's default top_k
  if (g->top_p) p.top_p = float(*g->top_p);
  if (g->min_p) p.min_p = float(*g->min_p);
  if (g->repetition_penalty) p.repetition_penalty = float(*g->repetition_penalty);
  return p;
}

std::vector<int32_t> eos_ids_for(const ModelConfig& c, const std::optional<GenerationConfig>& g) {
  std::set<int32_t> s;
  for (auto e : c.eos_token_ids) s.insert(int32_t(e));
  if (g)
    for (auto e : g->eos_token_ids) s.insert(int32_t(e));
  return {s.begin(), s.end()};
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature)) fail(ErrorCode::InvalidArgument, "temperature must be >= 0");
  if (p.top_k < 0) fail(ErrorCode::InvalidArgument, "top_k must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) fail(ErrorCode::InvalidArgument, "top_p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) fail(ErrorCode::InvalidArgument, "min_p must be in [0, 1]");
  if (!(p.repetition_penalty > 0) || !std::isfinite(p.repetition_penalty))
    fail(ErrorCode::InvalidArgument, "repetition penalty must be > 0");
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty))
    fail(ErrorCode::InvalidArgument, "presence and frequency penalties must be finite");
  for (const auto& [id, bias] : p.logit_bias)
    if (id < 0 || !std::isfinite(bias)) fail(ErrorCode::InvalidArgument, "logit_bias: token ids must be >= 0 and biases finite");
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history, size_t n_generated) {
  const int64_t V = int64_t(logits.size());
  for (const auto& [id, bias] : p_.logit_bias) {
    if (id >= V) fail(ErrorCode::InvalidArgument, "logit_bias: token id " + std::to_string(id) + " is outside the vocabulary (" + std::to_string(V) + ")");
    logits[size_t(id)] += bias;
  }
  // Repetition penalty (HF RepetitionPenaltyLogitsProcessor): each distinct seen token once.
  if (p_.repetition_penalty != 1.0f && !history.empty()) {
    std::vector<int32_t> seen(history.begin(), history.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= V) continue;
      float& l = logits[size_t(t)];
      l = l < 0 ? l * p_.repetition_penalty : l / p_.repetition_penalty;
    }
  }
  // Presence / frequency penalties (OpenAI): over the generated tokens only.
  if ((p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f) && n_generated > 0) {
    std::vector<int32_t> gen(history.end() - std::ptrdiff_t(std::min(n_generated, history.size())), history.end());
    std::sort(gen.begin(), gen.end());
    for (size_t i = 0; i < gen.size();) {
      size_t j = i;
      while (j < gen.size() && gen[j] == gen[i]) ++j;
      if (gen[i] >= 0 && gen[i] < V) logits[size_t(gen[i])] -= p_.frequency_penalty * float(j - i) + p_.presence_penalty;
      i = j;
    }
  }
  if (p_.greedy()) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  for (auto& l : logits) l /= p_.temperature;
  // Candidates sorted by logit, descending (ties: lower id first, deterministic).
  idx_.resize(size_t(V));
  std::iota(idx_.begin(), idx_.end(), 0);
  int64_t keep = V;
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] != logits[size_t(b)] ? logits[size_t(a)] > logits[size_t(b)] : a < b;
  };
  if (p_.top_k > 0 && p_.top_k < V) {
    keep = p_.top_k;
    std::partial_sort(idx_.begin(), idx_.begin() + keep, idx_.end(), by_logit);
  } else {
    std::sort(idx_.begin(), idx_.end(), by_logit);
  }
  // Softmax over the kept candidates.
  probs_.resize(size_t(keep));
  const float mx = logits[size_t(idx_[0])];
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += (probs_[size_t(i)] = std::exp(logits[size_t(idx_[size_t(i)])] - mx));
  for (int64_t i = 0; i < keep; ++i) probs_[size_t(i)] = float(probs_[size_t(i)] / sum);
  // top-p (HF TopPLogitsWarper): keep the smallest prefix whose mass reaches top_p (at least 1).
  if (p_.top_p < 1.0f) {
    double cum = 0;
    int64_t n = 0;
    while (n < keep) {
      cum += probs_[size_t(n)];
      ++n;
      if (cum >= p_.top_p) break;
    }
    keep = std::max<int64_t>(n, 1);
  }
  // min-p (HF MinPLogitsWarper): drop tokens with prob < min_p * max prob.
  if (p_.min_p > 0.0f) {
    float thr = p_.min_p * probs_[0];
    int64_t n = 0;
    while (n < keep && probs_[size_t(n)] >= thr) ++n;
    keep = std::max<int64_t>(n, 1);
  }
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += probs_[size_t(i)];
  // Uniform in [0, 1) from 53 random bits.
  double u = double(rng_() >> 11) * (1.0 / 9007199254740992.0) * total;
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += probs_[size_t(i)];
    if (u < acc) return idx_[size_t(i)];
  }
  return idx_[size_t(keep - 1)];
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::MaxTokens: return "max tokens";
    case StopReason::StopString: return "stop string";
    case StopReason::Callback: return "stopped by caller";
    case StopReason::ContextFull: return "context full";
  }
  return "?";
}

namespace {
// Length of the longest suffix of `text` that is a proper prefix of some stop string.
size_t held_suffix(const std::string& text, const std::vector<std::string>& stops) {
  size_t best = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > best; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        best = n;
        break;
      }
  return best;
}
}  // namespace

TokenLogprobs token_logprobs(std::span<const float> logits, int32_t chosen, int top_n) {
  const int64_t V = int64_t(logits.size());
  if (chosen < 0 || chosen >= V) fail(ErrorCode::InvalidArgument, "token_logprobs: the chosen id is outside the logits");
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l) - mx);
  const double lse = double(mx) + std::log(sum);
  TokenLogprobs r;
  r.chosen = {chosen, float(double(logits[size_t(chosen)]) - lse)};
  const int64_t n = std::clamp<int64_t>(top_n, 0, V);
  if (n > 0) {
    std::vector<int32_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
      return logits[size_t(a)] != logits[size_t(b)] ? logits[size_t(a)] > logits[size_t(b)] : a < b;
    });
    for (int64_t i = 0; i < n; ++i) r.top.push_back({idx[size_t(i)], float(double(logits[size_t(idx[size_t(i)])]) - lse)});
  }
  return r;
}

TokenGenerator::TokenGenerator(const Tokenizer* tok, std::span<const int32_t> prompt, const GenerateOptions& opt, int top_logprobs,
                               bool continue_text)
    : opt_(opt), sampler_(opt.sampling), top_logprobs_(top_logprobs),
      argmax_only_(opt.sampling.greedy() && !opt.sampling.modifies_logits() && top_logprobs < 0),
      history_(prompt.begin(), prompt.end()) {
  if (!opt.stop_strings.empty() && !tok) fail(ErrorCode::InvalidArgument, "stop strings need a tokenizer");
  for (const auto& s : opt.stop_strings)
    if (s.empty()) fail(ErrorCode::InvalidArgument, "empty stop string");
  if (tok) stream_.emplace(tok->decode_stream(true));
  if (stream_ && continue_text)
    for (int32_t id : prompt) stream_->push(id);  // the prompt's text is the caller's: only the state matters
}

TokenGenerator::Step TokenGenerator::next(std::span<const float> logits) {
  if (opt_.max_new_tokens <= int64_t(tokens_.size())) return take(-1, std::nullopt);
  logits_.assign(logits.begin(), logits.end());
  const int32_t id = sampler_.sample(logits_, history_, tokens_.size());
  std::optional<TokenLogprobs> lp;
  if (top_logprobs_ >= 0) lp = token_logprobs(logits, id, top_logprobs_);
  return take(id, std::move(lp));
}

TokenGenerator::Step TokenGenerator::next_argmax(int32_t id) {
  if (opt_.max_new_tokens <= int64_t(tokens_.size())) return take(-1, std::nullopt);
  return take(id, std::nullopt);
}

TokenGenerator::Step TokenGenerator::take(int32_t id, std::optional<TokenLogprobs> lp) {
  Step st;
  if (id < 0) {  // max_new_tokens reached before any token (0)
    st.done = true;
    st.reason = StopReason::MaxTokens;
    return st;
  }
  if (std::find(opt_.eos_ids.begin(), opt_.eos_ids.end(), id) != opt_.eos_ids.end()) {
    st.done = true;
    st.reason = StopReason::Eos;
    return st;
  }
  history_.push_back(id);
  tokens_.push_back(id);
  st.id = id;
  st.logprobs = std::move(lp);
  if (stream_) {
    pending_ += stream_->push(id);
    bool stopped = false;
    for (const auto& s : opt_.stop_strings) {
      size_t at = pending_.find(s);
      if (at != std::string::npos) {
        pending_.resize(at);
        stopped = true;
      }
    }
    if (stopped) {
      st.text = std::move(pending_);
      pending_.clear();
      st.done = true;
      st.reason = StopReason::StopString;
      stopped_ = true;
      return st;
    }
    size_t hold = held_suffix(pending_, opt_.stop_strings);
    st.text = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  }
  if (int64_t(tokens_.size()) >= opt_.max_new_tokens) {
    st.done = true;
    st.reason = StopReason::MaxTokens;
  }
  return st;
}

std::string TokenGenerator::finish() {
  if (!stream_ || stopped_) return {};
  std::string r = std::move(pending_) + stream_->finish();
  pending_.clear();
  return r;
}

GenerateStats generate(Session& ctx, const Tokenizer* tok, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  TokenGenerator gen(tok, prompt, opt);
  GenerateStats st;
  // Greedy with nothing modifying the logits needs only the argmax: the session computes it where it runs.
  const bool argmax_only = gen.argmax_only();
  std::span<const float> lg;
  int32_t greedy_id = -1;
  auto step = [&](std::span<const int32_t> toks) {
    try {
      if (argmax_only) greedy_id = ctx.eval_greedy(toks);
      else lg = ctx.eval(toks);
    } catch (const Error& e) {  // NaN/Inf logits (the session checks them): say which step, then what it found
      if (e.code() != ErrorCode::NonFinite) throw;
      fail(ErrorCode::NonFinite, (st.generated_tokens == 0 ? "evaluating the prompt (" + std::to_string(toks.size()) + " tokens)"
                                                           : "generation step " + std::to_string(st.generated_tokens)) +
                                     ": " + e.what() + "; generation stopped");
    }
  };

  auto t0 = Clock::now();
  if (prompt.empty()) fail(ErrorCode::InvalidArgument, "the prompt is empty (no tokens)");
  step(prompt);
  st.prompt_tokens = int64_t(prompt.size());
  st.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  auto t1 = Clock::now();
  while (true) {
    TokenGenerator::Step s = argmax_only ? gen.next_argmax(greedy_id) : gen.next(lg);
    if (s.id >= 0) ++st.generated_tokens;
    if (s.id >= 0 && on_token) {
      const bool go = on_token(s.id, s.text);
      if (!go && !(s.done && s.reason == StopReason::StopString)) { st.reason = StopReason::Callback; break; }
    }
    if (s.done) { st.reason = s.reason; break; }
    if (ctx.n_past() >= ctx.n_ctx()) { st.reason = StopReason::ContextFull; break; }
    step({&s.id, 1});
  }
  st.tokens = gen.tokens();
  const std::string rest = gen.finish();
  if (!rest.empty() && on_token) on_token(-1, rest);
  st.generation_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return st;
}

}  // namespace llrt
