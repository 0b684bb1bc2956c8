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
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  const int64_t V = int64_t(logits.size());
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

GenerateStats generate(Session& ctx, const Tokenizer* tok, std::span<const int32_t> prompt,
                       const GenerateOptions& opt, const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  if (!opt.stop_strings.empty() && !tok) fail(ErrorCode::InvalidArgument, "stop strings need a tokenizer");
  for (const auto& s : opt.stop_strings)
    if (s.empty()) fail(ErrorCode::InvalidArgument, "empty stop string");
  GenerateStats st;
  Sampler sampler(opt.sampling);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  const std::set<int32_t> eos(opt.eos_ids.begin(), opt.eos_ids.end());
  const int64_t V = ctx.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(V));
  // Greedy with no penalty needs only the argmax: the session computes it where it runs.
  const bool argmax_only = opt.sampling.greedy() && opt.sampling.repetition_penalty == 1.0f;
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

  std::optional<TokenDecodeStream> stream;
  if (tok) stream.emplace(tok->decode_stream(true));
  std::string pending;  // text held back because it may begin a stop string
  auto t1 = Clock::now();
  while (true) {
    if (st.generated_tokens >= opt.max_new_tokens) { st.reason = StopReason::MaxTokens; break; }
    int32_t id = greedy_id;
    if (!argmax_only) {
      std::copy(lg.begin(), lg.end(), logits.begin());
      id = sampler.sample(logits, history);
    }
    if (eos.count(id)) { st.reason = StopReason::Eos; break; }
    history.push_back(id);
    st.tokens.push_back(id);
    ++st.generated_tokens;
    std::string text;
    if (stream) {
      pending += stream->push(id);
      bool stopped = false;
      for (const auto& s : opt.stop_strings) {
        size_t at = pending.find(s);
        if (at != std::string::npos) {
          pending.resize(at);
          stopped = true;
        }
      }
      if (stopped) {
        st.reason = StopReason::StopString;
        if (on_token) on_token(id, pending);
        pending.clear();
        break;
      }
      size_t hold = held_suffix(pending, opt.stop_strings);
      text = pending.substr(0, pending.size() - hold);
      pending.erase(0, pending.size() - hold);
    }
    if (on_token && !on_token(id, text)) { st.reason = StopReason::Callback; break; }
    if (st.generated_tokens >= opt.max_new_tokens) { st.reason = StopReason::MaxTokens; break; }
    if (ctx.n_past() >= ctx.n_ctx()) { st.reason = StopReason::ContextFull; break; }
    step({&id, 1});
  }
  if (stream && st.reason != StopReason::StopString) {
    pending += stream->finish();
    if (!pending.empty() && on_token) on_token(-1, pending);
  }
  st.generation_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return st;
}

}  // namespace llrt
