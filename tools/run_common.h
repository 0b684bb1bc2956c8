#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_args.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "llrt/tokenizer.h"

namespace llrt::cli {
struct RunSetup {
  int threads = 0;
  int64_t ctx = 0;
  int64_t batch = 512;
  MapOptions map;
  bool verbose = false;
};
RunSetup parse_run_setup(Args& a);
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};
SamplingFlags parse_sampling_flags(Args& a);
// Defaults from generation_config.json, overridden by the flags; validated.
GenerateOptions generate_options(const SamplingFlags& f, const Model& m);
std::shared_ptr<Model> load_model(const std::string& dir, const RunSetup& s);
void print_stats(const Model& m, const GenerateStats& st);
std::string read_text_file(const std::string& path);
// Renders a single-turn conversation with the model's chat template and encodes it
// (BOS not added twice when the template writes it).
std::vector<int32_t> chat_prompt_ids(const std::string& model_dir, const Tokenizer& tok, const std::string& system,
                                     const std::string& user);
}  // namespace llrt::cli
