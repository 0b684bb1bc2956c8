// Loader benchmarks: open + validate a checkpoint (headers, index, tensor contract,
// capability check) and a full Model::load, for the sharded and single-file minis,
// and, when LLRT_BENCH_MODEL points at a synthesized full-size checkpoint, for it too.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "llrt/checkpoint.h"
#include "src/engine/llama.h"
#include "llrt/model.h"

namespace fs = std::filesystem;

static fs::path shared_model(const char* name) {
  return fs::path(LLRT_SOURCE_DIR) / ".." / "shared" / "models" / name;
}

static void open_validate(benchmark::State& st, fs::path dir) {
  if (!fs::exists(dir)) {
    st.SkipWithError(("missing " + dir.string()).c_str());
    return;
  }
  for (auto _ : st) {
    llrt::Checkpoint ck = llrt::Checkpoint::open(dir);
    llrt::validate_llama_checkpoint(ck);
    llrt::require_kernels(llrt::llama_kernel_needs(ck));
    benchmark::DoNotOptimize(ck.weight_bytes());
  }
}

static void model_load(benchmark::State& st, fs::path dir, llrt::LoadMode mode) {
  if (!fs::exists(dir)) {
    st.SkipWithError(("missing " + dir.string()).c_str());
    return;
  }
  llrt::ModelOptions o;
  o.map.mode = mode;
  uint64_t bytes = 0;
  for (auto _ : st) {
    auto m = llrt::Model::load(dir, o);
    bytes = m->checkpoint().weight_bytes();
    benchmark::DoNotOptimize(m.get());
  }
  st.counters["weight_GB/s"] = benchmark::Counter(double(bytes) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(open_validate, sharded_6_shards, shared_model("llama-3.1-mini-sharded"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(open_validate, deepseek_2_shards, shared_model("deepseek-r1-distill-mini"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(open_validate, w8a8_single, shared_model("llama-3.1-mini-w8a8"))->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(model_load, sharded_mmap, shared_model("llama-3.1-mini-sharded"), llrt::LoadMode::Mmap)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(model_load, sharded_copy, shared_model("llama-3.1-mini-sharded"), llrt::LoadMode::Copy)->Unit(benchmark::kMicrosecond);

// A full-size model: LLRT_BENCH_MODEL=/path/to/synth/llama-3.2-1b-bf16
static int register_full() {
  const char* p = std::getenv("LLRT_BENCH_MODEL");
  if (!p || !*p) return 0;
  benchmark::RegisterBenchmark("open_validate/full_size", open_validate, fs::path(p))->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("model_load/full_size_mmap", model_load, fs::path(p), llrt::LoadMode::Mmap)->Unit(benchmark::kMillisecond)->Iterations(3);
  benchmark::RegisterBenchmark("model_load/full_size_copy", model_load, fs::path(p), llrt::LoadMode::Copy)->Unit(benchmark::kMillisecond)->Iterations(2);
  return 0;
}
static int dummy = register_full();

BENCHMARK_MAIN();
