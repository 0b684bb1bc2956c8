#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_args.h"
#include "llrt/cuda.h"
#include "llrt/engine.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "llrt/session.h"
#include "llrt/tokenizer.h"

namespace llrt::cli {
struct RunSetup {
  int threads = 0;
  int64_t ctx = 0;
  int64_t batch = 512;
  MapOptions map{LoadMode::Auto};  // Model::load's default; --no-mmap forces the copy, --mmap the mapping
  bool verbose = false;
  std::string device;  // --device cpu|cuda; empty: cuda when a GPU runs the model, else cpu
  DType kv_dtype = DType::F32;  // --kv-type f32|f16|bf16 (the CPU engine; CUDA keeps F32)
};
RunSetup parse_run_setup(Args& a);
// -t/--threads: 0 (the physical cores) up to max_threads() = 4x the logical cores (more only slows
// a run down: refused, saying so); --ctx: 1 to 2^31-1. Shared by every command that takes them.
int max_threads();
void thread_option(Args& a, int* threads);
void ctx_option(Args& a, int64_t* ctx);
// --kv-type's value: f32, f16 or bf16 (else Error{InvalidArgument}).
DType parse_kv_type(const std::string& s);
// The model on its device (llrt::open chooses it; the CLI says which and why on stderr).
struct Engine {
  std::shared_ptr<llrt::Engine> eng;
  std::shared_ptr<Model> cpu;       // eng->cpu_model()
  std::shared_ptr<CudaModel> cuda;  // eng->cuda_model()
  const Checkpoint& checkpoint() const { return eng->checkpoint(); }
  const ModelConfig& config() const { return eng->config(); }
  double load_seconds() const { return eng->load_seconds(); }
  const std::vector<KernelVerdict>& kernel_plan() const { return eng->kernel_plan(); }
  std::string device_name() const { return eng->device_name(); }
  std::unique_ptr<Session> session(int64_t ctx, int64_t batch, DType kv_dtype = DType::F32) const {
    return eng->new_session(SessionOptions{ctx, batch, kv_dtype});
  }
};
// Opens the model with the setup's options (llrt::open) and reports the device choice.
Engine load_engine(const std::string& dir, const RunSetup& s);
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};
SamplingFlags parse_sampling_flags(Args& a);
// Defaults from generation_config.json, overridden by the flags; validated.
GenerateOptions generate_options(const SamplingFlags& f, const Checkpoint& ck);
void print_stats(const Engine& e, const GenerateStats& st);
std::string read_text_file(const std::string& path);
// Renders a single-turn conversation with the model's chat template and encodes it
// (BOS not added twice when the template writes it).
std::vector<int32_t> chat_prompt_ids(const std::string& model_dir, const Tokenizer& tok, const std::string& system,
                                     const std::string& user);
}  // namespace llrt::cli
