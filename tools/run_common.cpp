// The run options, sampling flags, the model setup and the statistics line shared by run, chat,
// bench, perplexity and serve (declared in run_common.h).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_common.h"
#include "src/engine/cpu.h"
#include "run_common.h"
#include "src/engine/kernels.h"

namespace llrt::cli {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(ErrorCode::Io, "cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string tok;
  std::istringstream is(s);
  while (is >> tok) {
    for (char& c : tok)
      if (c == ',') c = ' ';
    std::istringstream inner(tok);
    std::string part;
    while (inner >> part) {
      char* end = nullptr;
      long v = std::strtol(part.c_str(), &end, 10);
      if (end == part.c_str() || *end || v < 0 || v > INT32_MAX)
        fail(ErrorCode::InvalidArgument, "--ids: '" + part + "' is not a token id");
      ids.push_back(int32_t(v));
    }
  }
  if (ids.empty()) fail(ErrorCode::InvalidArgument, "--ids: no token ids given");
  return ids;
}

DType parse_kv_type(const std::string& kv) {
  if (kv == "f32") return DType::F32;
  if (kv == "f16") return DType::F16;
  if (kv == "bf16") return DType::BF16;
  fail(ErrorCode::InvalidArgument, "--kv-type: '" + kv + "' is not a KV cache type (use f32, f16 or bf16)");
}

int max_threads() { return 4 * std::max(1, cpu_info().logical_cores); }

void thread_option(Args& a, int* threads) {
  const int hi = max_threads();
  a.number({"-t", "--threads"}, threads, 0, hi,
           "0 picks the physical cores; more than 4x this machine's " + std::to_string(hi / 4) +
               " logical cores only slows it down");
}

void ctx_option(Args& a, int64_t* ctx) {
  a.number<int64_t>({"--ctx", "-c"}, ctx, 1, INT32_MAX, "context positions (tokens)");
}

RunSetup parse_run_setup(Args& a) {
  RunSetup s;
  thread_option(a, &s.threads);
  ctx_option(a, &s.ctx);
  a.number<int64_t>({"--batch", "-b"}, &s.batch, 1, 4096, "tokens evaluated per forward pass");
  if (a.flag({"--no-mmap"})) s.map.mode = LoadMode::Copy;
  if (a.flag({"--mmap"})) s.map.mode = LoadMode::Mmap;
  s.verbose = a.flag({"--verbose", "-v"});
  s.quiet = a.flag({"--quiet", "-q"});
  std::string kv;
  if (a.value({"--kv-type", "--cache-type"}, &kv)) s.kv_dtype = parse_kv_type(kv);
  if (a.value({"--device"}, &s.device)) {
    if (s.device != "auto" && s.device != "cpu" && s.device != "cuda")
      fail(ErrorCode::InvalidArgument, "--device: '" + s.device + "' is not a device (use auto, cpu or cuda; LLRT_CUDA_DEVICE picks the GPU)");
    if (s.device == "auto") s.device.clear();
  }
  return s;
}

SamplingFlags parse_sampling_flags(Args& a) {
  // Every range is checked here, before any model is loaded (Sampler checks them again, with the
  // model's generation_config.json defaults).
  SamplingFlags f;
  float v;
  int64_t i;
  uint64_t seed;
  constexpr float kInf = std::numeric_limits<float>::max();
  if (a.number({"--temp", "--temperature"}, &v, 0.0f, kInf, "0 is greedy")) f.temperature = v;
  if (a.number<int64_t>({"--top-k"}, &i, 0, INT64_MAX, "0 keeps every token")) f.top_k = i;
  if (a.number({"--top-p"}, &v, 0.0f, 1.0f, "a probability mass; 1 keeps every token")) {
    if (!(v > 0)) fail(ErrorCode::InvalidArgument, "--top-p: 0 keeps no token (must be > 0 and <= 1)");
    f.top_p = v;
  }
  if (a.number({"--min-p"}, &v, 0.0f, 1.0f, "a probability relative to the top token")) f.min_p = v;
  if (a.number({"--repeat-penalty"}, &v, 0.0f, kInf, "1 is none")) {
    if (!(v > 0)) fail(ErrorCode::InvalidArgument, "--repeat-penalty: 0 divides by zero (must be > 0; 1 is none)");
    f.repetition_penalty = v;
  }
  if (a.number({"--seed", "-s"}, &seed)) f.seed = seed;
  if (a.number<int64_t>({"-n", "--n-predict", "--max-tokens"}, &i, -1, INT32_MAX, "new tokens; -1: until EOS or the context is full"))
    f.max_new_tokens = i < 0 ? kUntilContextFull : i;
  f.stop = a.values({"--stop"});
  for (const auto& s : f.stop)
    if (s.empty()) fail(ErrorCode::InvalidArgument, "--stop: an empty stop string would stop before the first token");
  return f;
}

GenerateOptions generate_options(const SamplingFlags& f, const Checkpoint& ck) {
  GenerateOptions g;
  g.sampling = sampling_from_generation_config(ck.generation_config());
  g.eos_ids = eos_ids_for(ck.config(), ck.generation_config());
  if (f.temperature) g.sampling.temperature = *f.temperature;
  if (f.top_k) g.sampling.top_k = *f.top_k;
  if (f.top_p) g.sampling.top_p = *f.top_p;
  if (f.min_p) g.sampling.min_p = *f.min_p;
  if (f.repetition_penalty) g.sampling.repetition_penalty = *f.repetition_penalty;
  g.sampling.seed = f.seed ? *f.seed : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  if (f.max_new_tokens) g.max_new_tokens = *f.max_new_tokens;
  if (g.max_new_tokens < 0) fail(ErrorCode::InvalidArgument, "-n must be >= 0");
  g.stop_strings = f.stop;
  Sampler check(g.sampling);  // validates ranges before any work
  return g;
}

Engine load_engine(const std::string& dir, const RunSetup& s) {
  const bool tty = isatty(2);
  OpenOptions o;
  o.device = s.device.empty() ? DeviceChoice::Auto : parse_device_choice(s.device);
  o.threads = s.threads;
  o.map = s.map;
  o.n_ctx = s.ctx;
  o.n_batch = s.batch;
  o.kv_dtype = s.kv_dtype;
  o.progress = [tty](const std::string& msg) {
    const bool loading = msg.rfind("loading ", 0) == 0;  // the first line, before the work it names
    std::fprintf(stderr, "llrt: %s%s", msg.c_str(), tty && !loading ? "...\n" : "\n");
  };
  if (!s.quiet && tty) o.on_bytes = progress_line();  // progress.cpp: a line on the terminal for loads > 1 s
  Engine e;
  e.eng = llrt::open(dir, o);
  e.cpu = e.eng->cpu_model();
  e.cuda = e.eng->cuda_model();
  // A CPU run hears nothing of CUDA unless it asks: why `auto` did not pick the GPU is said with
  // --verbose only; the GPU it did pick is always said.
  if (s.device.empty() && (s.verbose || e.eng->device() != std::string("cpu")))
    std::fprintf(stderr, "llrt: device %s (default: %s; --device cpu|cuda to choose)\n", e.eng->device(), e.eng->device_reason().c_str());
  if (s.verbose)
    for (const auto& v : e.kernel_plan())
      std::fprintf(stderr, "llrt: %-10s %-5s -> %s\n", op_name(v.need.op), dtype_name(v.need.wtype), v.chosen ? v.chosen->name : "-");
  return e;
}

void print_stats(const Engine& e, const GenerateStats& st) {
  std::fprintf(stderr,
               "\nllrt: load %.2f s | prompt %lld tokens, %.2f tokens/s | generation %lld tokens, %.2f tokens/s | stop: %s | %s\n",
               e.load_seconds(), (long long)st.prompt_tokens, st.prompt_tps(), (long long)st.generated_tokens, st.generation_tps(),
               stop_reason_name(st.reason), e.device_name().c_str());
}


}  // namespace llrt::cli
