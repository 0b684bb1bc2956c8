// llrt serve: /metrics (Prometheus text exposition format 0.0.4).
#include "serve/metrics.h"

#include <cstdio>

namespace llrt::serve {

namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}
}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::string s = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    s += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  s += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  s += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
  return s;
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}),
      queue_({0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

void Metrics::request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++requests_[{route, status}];
}

void Metrics::sequence_done(const SeqResult& r) {
  std::lock_guard<std::mutex> lk(mu_);
  ++sequences_;
  ++ends_[seq_end_name(r.end)];
  prompt_tokens_ += uint64_t(r.prompt_tokens);
  cached_tokens_ += uint64_t(r.cached_tokens);
  generated_tokens_ += uint64_t(r.completion_tokens);
  if (r.completion_tokens > 0) ttft_.observe(r.ttft_seconds);
  if (r.end != SeqEnd::Cancelled || r.queue_seconds > 0) queue_.observe(r.queue_seconds);
}

void Metrics::inter_token(double seconds) {
  std::lock_guard<std::mutex> lk(mu_);
  itl_.observe(seconds);
}

std::string Metrics::text(const EngineLoad& load) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::string s;
  s += "# HELP llrt_requests_total HTTP requests answered, by route and status code.\n# TYPE llrt_requests_total counter\n";
  for (const auto& [k, v] : requests_)
    s += "llrt_requests_total{route=\"" + k.first + "\",code=\"" + std::to_string(k.second) + "\"} " + std::to_string(v) + "\n";
  s += "# HELP llrt_sequences_total Sequences (choices) finished, by how they ended.\n# TYPE llrt_sequences_total counter\n";
  for (const auto& [k, v] : ends_) s += "llrt_sequences_total{end=\"" + k + "\"} " + std::to_string(v) + "\n";
  s += "# HELP llrt_prompt_tokens_total Prompt tokens of finished sequences (cached ones included).\n"
       "# TYPE llrt_prompt_tokens_total counter\nllrt_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  s += "# HELP llrt_prompt_tokens_cached_total Prompt tokens reused from the prefix cache (not evaluated).\n"
       "# TYPE llrt_prompt_tokens_cached_total counter\nllrt_prompt_tokens_cached_total " + std::to_string(cached_tokens_) + "\n";
  s += "# HELP llrt_generation_tokens_total Tokens generated.\n"
       "# TYPE llrt_generation_tokens_total counter\nllrt_generation_tokens_total " + std::to_string(generated_tokens_) + "\n";
  s += "# HELP llrt_sequences_running Sequences generating now.\n# TYPE llrt_sequences_running gauge\nllrt_sequences_running " +
       std::to_string(load.active) + "\n";
  s += "# HELP llrt_queue_depth Sequences waiting for a slot.\n# TYPE llrt_queue_depth gauge\nllrt_queue_depth " +
       std::to_string(load.queued) + "\n";
  s += "# HELP llrt_slots Sequences that can run at once (--parallel).\n# TYPE llrt_slots gauge\nllrt_slots " +
       std::to_string(load.slots) + "\n";
  s += ttft_.text("llrt_time_to_first_token_seconds", "Time from request to the first generated token.");
  s += itl_.text("llrt_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.");
  s += queue_.text("llrt_queue_wait_seconds", "Time a sequence waited for a slot.");
  return s;
}

}  // namespace llrt::serve
