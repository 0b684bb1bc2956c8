// llrt serve: counters and latency histograms, written in Prometheus' text format (/metrics).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "serve/engine.h"

namespace llrt::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void observe(double v);
  // The # HELP / # TYPE lines and the _bucket / _sum / _count series.
  std::string text(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status);  // one HTTP request answered
  void sequence_done(const SeqResult& r);                // tokens in/out, TTFT
  void inter_token(double seconds);
  std::string text(const EngineLoad& load) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, cached_tokens_ = 0, generated_tokens_ = 0, sequences_ = 0;
  std::map<std::string, uint64_t> ends_;
  Histogram ttft_, itl_, queue_;
};

}  // namespace llrt::serve
