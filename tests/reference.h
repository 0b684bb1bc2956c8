// HF reference outputs (../shared/references/NAME.{json,safetensors}) for parity tests.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "llrt/config.h"
#include "llrt/safetensors.h"
#include "test_data.h"
#include "src/io/config_json.h"

namespace llrt::test {

struct RefPrompt {
  std::vector<int32_t> prompt;
  std::vector<std::vector<int32_t>> top_ids;     // per position, top 8
  std::vector<std::vector<float>> top_logits;
  std::vector<int32_t> greedy;
  std::vector<float> greedy_margins;
  std::vector<float> last_logits;  // full vocab
};
struct RefSet {
  std::string dtype;
  std::vector<RefPrompt> prompts;
};
struct Reference {
  RefSet native, f32;
};

inline Reference load_reference(const std::string& model) {
  auto dir = shared_dir() / "references";
  auto j = read_json_file(dir / (model + ".json"));
  auto st = SafetensorsFile::open(dir / (model + ".safetensors"));
  Reference r;
  for (const char* which : {"native", "float32"}) {
    RefSet& set = std::string(which) == "native" ? r.native : r.f32;
    const auto& js = j.at(which);
    set.dtype = js.at("dtype").get<std::string>();
    int i = 0;
    for (const auto& p : js.at("prompts")) {
      RefPrompt rp;
      rp.prompt = p.at("prompt").get<std::vector<int32_t>>();
      rp.top_ids = p.at("top_ids").get<std::vector<std::vector<int32_t>>>();
      rp.top_logits = p.at("top_logits").get<std::vector<std::vector<float>>>();
      rp.greedy = p.at("greedy").get<std::vector<int32_t>>();
      rp.greedy_margins = p.at("greedy_top1_margins").get<std::vector<float>>();
      std::string key = std::string(std::string(which) == "native" ? "native" : "f32") + ".p" + std::to_string(i) + ".last_logits";
      Tensor t = st.tensor(key);
      rp.last_logits.assign(t.as<float>(), t.as<float>() + t.numel());
      set.prompts.push_back(std::move(rp));
      ++i;
    }
  }
  return r;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
inline float max_abs(const float* a, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i]));
  return m;
}

}  // namespace llrt::test
