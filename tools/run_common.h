#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_args.h"
#include "llrt/cuda.h"
#include "llrt/chat_template.h"
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
  bool quiet = false;  // --quiet: no progress line while loading
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
// A ModelOptions::on_bytes that draws "llrt: loading shard i/n  X / Y GB  R GB/s" on stderr once
// the load has taken `after_seconds` (the caller checks that stderr is a terminal).
std::function<void(const LoadProgress&)> progress_line(double after_seconds = 1.0);
// Opens the model with the setup's options (llrt::open) and reports the device choice.
Engine load_engine(const std::string& dir, const RunSetup& s);
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
};
SamplingFlags parse_sampling_flags(Args& a);
// -n -1 (llama.cpp's "until EOS or the context is full") as max_new_tokens.
constexpr int64_t kUntilContextFull = INT64_MAX;
// Defaults from generation_config.json, overridden by the flags; validated.
GenerateOptions generate_options(const SamplingFlags& f, const Checkpoint& ck);
void print_stats(const Engine& e, const GenerateStats& st);
std::string read_text_file(const std::string& path);
// --ids "1 2 3": token ids separated by spaces or commas (Error{InvalidArgument} naming a bad one).
std::vector<int32_t> parse_ids(const std::string& s);
// Renders a single-turn conversation with the model's chat template and encodes it
// (BOS not added twice when the template writes it).
// The positionals (Args::positionals: unknown options are errors) and the model: -m/--model VALUE,
// else the first positional (taken out); Error naming `cmd` when neither is given. Not resolved
// yet (every option is checked first).
std::vector<std::string> model_and_positionals(Args& a, const char* cmd, std::string* model);
// A folder as is, a Hugging Face name through the local Hub cache (llrt::resolve_model_path).
std::string resolve_model(const std::string& ref);
// --chat-template FILE and --chat-template-kwargs JSON (an object; checked here).
struct TemplateFlags {
  std::string file;
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
};
TemplateFlags parse_template_flags(Args& a);
// The template: FILE when given (bos/eos tokens from the model's tokenizer_config.json when it
// has one), else the model's.
ChatTemplate load_chat_template(const std::string& model_dir, const TemplateFlags& f);
// An OpenAI messages array read from a file: [{"role": ..., "content": string | [{"type": "text",
// "text": ...}]}, ...]; content parts are joined. Error{InvalidArgument} naming the problem.
nlohmann::ordered_json read_messages_file(const std::string& path);
// Renders the conversation (add_generation_prompt) and encodes it, BOS not added twice when the
// template writes it; `rendered` receives the text.
std::vector<int32_t> chat_prompt_ids(const ChatTemplate& t, const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                     const TemplateFlags& f, std::string* rendered = nullptr);
}  // namespace llrt::cli
