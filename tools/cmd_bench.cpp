// llrt bench: llama-bench's pp/tg semantics on our engine.
//   pp N: one forward of N prompt tokens in a fresh context (prefill, matrix-matrix)
//   tg N: N single-token decode steps from an empty context (matrix-vector)
//   -d D: both start after D context tokens already in the KV cache (llama-bench's
//         n_depth; the depth prefill is not timed)
// Each repeated -r times; mean +/- sd of tokens/s. The memory read bandwidth is
// measured in the same run, and tg is reported against its limit:
//   limit tokens/s = bandwidth / bytes of weights streamed per token.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "cli_common.h"
#include "src/engine/membw.h"
#include "run_common.h"
#include "src/engine/llama.h"
#include "src/engine/kernels.h"
#include "src/io/config_json.h"
#include "src/engine/cpu.h"

namespace llrt::cli {

namespace {
struct Stat {
  double mean = 0, sd = 0;
};
Stat stats(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}
// Bytes a decode step streams: every linear weight (lm_head or the tied table) and norm;
// of an untied embedding table only one row.
uint64_t streamed_bytes_per_token(const Checkpoint& ck) {
  uint64_t b = ck.weight_bytes();
  if (!ck.config().tie_word_embeddings) {
    const TensorInfo* e = ck.find("model.embed_tokens.weight");
    if (e) b -= e->nbytes() - e->nbytes() / uint64_t(ck.config().vocab_size);
  }
  return b;
}
}  // namespace

int cmd_bench(Args& a) {
  RunSetup setup = parse_run_setup(a);
  int64_t pp = 512, tg = 128, depth = 0;
  int reps = 3;
  constexpr int64_t kMaxTokens = int64_t(1) << 24;
  a.number<int64_t>({"-p", "--n-prompt"}, &pp, 0, kMaxTokens, "prompt tokens; 0 skips the pp test");
  a.number<int64_t>({"-n", "--n-gen"}, &tg, 0, kMaxTokens, "generated tokens; 0 skips the tg test");
  a.number({"-r", "--repetitions"}, &reps, 1, 1000);
  a.number<int64_t>({"-d", "--n-depth"}, &depth, 0, kMaxTokens, "tokens already in the context");
  bool as_json = a.flag({"--json"});
  bool no_bw = a.flag({"--no-bandwidth"});
  auto pos = a.positionals();
  if (pos.size() != 1) fail(ErrorCode::InvalidArgument, "bench: give exactly one MODEL_DIR");
  if (pp == 0 && tg == 0)
    fail(ErrorCode::InvalidArgument, "bench: -p 0 -n 0 measures nothing: give -p N (prompt tokens) or -n N (generated tokens) above 0");
  auto t_start = std::chrono::steady_clock::now();
  const int64_t ctx_len = std::max<int64_t>(setup.ctx, depth + pp + tg + 1);
  setup.ctx = ctx_len;  // the device check and the load size for this context
  Engine model = load_engine(pos[0], setup);
  const bool gpu = bool(model.cuda);
  const int64_t V = model.config().vocab_size;
  std::mt19937 rng(42);
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(pp, 1)));
  std::vector<int32_t> ctx_tokens(static_cast<size_t>(depth));
  for (auto& t : prompt) t = int32_t(rng() % uint32_t(V));
  for (auto& t : ctx_tokens) t = int32_t(rng() % uint32_t(V));
  auto session = model.session(ctx_len, setup.batch, setup.kv_dtype);
  Session& ctx = *session;
  // Warm-up: touches every weight once (page faults for mmap are not part of the numbers,
  // like llama-bench's warm-up run); on a GPU it also captures the decode graph. The time
  // from the start of the load to this first token is reported.
  ctx.reset();
  ctx.eval_greedy({prompt.data(), 1});
  ctx.eval_greedy({prompt.data(), 1});
  const double first_token_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (pp > 0) {  // warm-up of the prefill path too (cuBLAS handles and heuristics, first-use setup)
    ctx.reset();
    ctx.eval(prompt);
  }
  auto fresh = [&] {  // an empty context, then the depth tokens (not timed)
    ctx.reset();
    if (depth > 0) ctx.eval(ctx_tokens);
  };
  std::vector<double> pp_tps, tg_tps;
  for (int r = 0; r < reps && pp > 0; ++r) {
    fresh();
    auto t0 = std::chrono::steady_clock::now();
    ctx.eval(prompt);
    pp_tps.push_back(double(pp) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  for (int r = 0; r < reps && tg > 0; ++r) {
    fresh();
    int32_t tok = prompt[0];
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < tg; ++i) tok = ctx.eval_greedy({&tok, 1});  // greedy, argmax where the session runs
    tg_tps.push_back(double(tg) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // Peak resident memory of the process so far (before the bandwidth probe's 1 GiB buffer):
  // with mmap the weights' file pages count, so this is weights + KV cache + scratch + the rest.
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const uint64_t peak_rss = uint64_t(ru.ru_maxrss) * 1024;
  const int threads = gpu ? 0 : model.cpu->threads();
  const MemoryEstimate est = gpu ? MemoryEstimate{} : estimate_memory(model.checkpoint(), ctx_len, setup.batch, threads, setup.kv_dtype);
  double bw = no_bw ? 0 : gpu ? cuda_measure_copy_bandwidth() : measure_read_bandwidth(1ull << 30, threads, 10);
  // Plus the KV cache a decode step reads (each cached position once per layer, the mean
  // context of the tg run); nothing at depth 0 for tg128 worth counting on the CPU (< 0.1%).
  uint64_t bytes_tok = streamed_bytes_per_token(model.checkpoint()) +
                       (gpu || depth == 0 ? 0 : est.kv_bytes_per_token * uint64_t(depth + tg / 2));
  double limit = bw > 0 ? bw * 1e9 / double(bytes_tok) : 0;
  Stat sp = pp_tps.empty() ? Stat{} : stats(pp_tps), sg = tg_tps.empty() ? Stat{} : stats(tg_tps);
  std::string dts;
  for (auto& [dt, b] : model.checkpoint().bytes_by_dtype()) dts += std::string(dts.empty() ? "" : "+") + dtype_name(dt);
  if (as_json) {
    nlohmann::json j = {{"model", pos[0]}, {"dtypes", dts}, {"weight_bytes", model.checkpoint().weight_bytes()},
                        {"streamed_bytes_per_token", bytes_tok}, {"threads", threads},
                        {"device", model.device_name()}, {"load_to_first_token_seconds", first_token_s},
                        {"load", gpu ? "cuda upload" : load_mode_name(model.checkpoint().shards()[0].mode())}, {"load_seconds", model.load_seconds()},
                        {"bandwidth_gbs", bw}, {"bandwidth_kind", gpu ? "device copy (read+write)" : "host read"},
                        {"tg_limit_tps", limit}, {"cpu", cpu_summary()}, {"peak_rss_bytes", peak_rss}};
    if (!gpu) j["memory_estimate"] = {{"weights", est.weight_bytes}, {"kv_cache", est.kv_bytes}, {"scratch", est.scratch_bytes}, {"ctx", ctx_len}};
    if (gpu) j["upload_seconds"] = model.cuda->upload_seconds();
    j["depth"] = depth;
    j["kv_type"] = dtype_name(setup.kv_dtype);
    if (pp > 0) j["pp"] = {{"n", pp}, {"mean_tps", sp.mean}, {"sd", sp.sd}, {"runs", pp_tps}};
    if (tg > 0) j["tg"] = {{"n", tg}, {"mean_tps", sg.mean}, {"sd", sg.sd}, {"runs", tg_tps},
                           {"pct_of_limit", limit > 0 ? 100.0 * sg.mean / limit : 0}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("| model | dtype | size | device | load | test | t/s |\n|---|---|---|---|---|---|---|\n");
  const std::string dev = gpu ? model.cuda->device().name : std::to_string(threads) + " threads";
  const std::string at = (depth > 0 ? " @ d" + std::to_string(depth) : "") +
                         (setup.kv_dtype != DType::F32 ? std::string(" (") + dtype_name(setup.kv_dtype) + " KV)" : "");
  auto row = [&](const char* test, int64_t n, Stat s) {
    std::printf("| %s | %s | %.2f GiB | %s | %s | %s%lld%s | %.2f ± %.2f |\n", pos[0].c_str(), dts.c_str(),
                double(model.checkpoint().weight_bytes()) / double(1ull << 30), dev.c_str(),
                gpu ? "cuda" : model.checkpoint().shards()[0].mode() == LoadMode::Mmap ? "mmap" : "copy", test, (long long)n, at.c_str(), s.mean, s.sd);
  };
  if (pp > 0) row("pp", pp, sp);
  if (tg > 0) row("tg", tg, sg);
  if (bw > 0 && gpu)
    std::printf("\ndevice copy bandwidth (read+write): %.1f GB/s; decode streams %.3f GB/token -> limit %.2f t/s; tg reached %.1f%%\n",
                bw, double(bytes_tok) / 1e9, limit, limit > 0 ? 100.0 * sg.mean / limit : 0);
  else if (bw > 0)
    std::printf("\nmemory read bandwidth (%d threads): %.1f GB/s; decode streams %.3f GB/token -> limit %.2f t/s; tg reached %.1f%%\n",
                threads, bw, double(bytes_tok) / 1e9, limit, limit > 0 ? 100.0 * sg.mean / limit : 0);
  std::printf("load to first token %.2f s (load %.2f s) on %s\n", first_token_s, model.load_seconds(), model.device_name().c_str());
  if (!gpu)
    std::printf("peak RSS %.3f GB = weights %.3f + KV cache %.3f (ctx %lld) + scratch %.3f + %.3f other (runtime, tokenizer, libs)\n",
                double(peak_rss) / 1e9, double(est.weight_bytes) / 1e9, double(est.kv_bytes) / 1e9, (long long)ctx_len,
                double(est.scratch_bytes) / 1e9, (double(peak_rss) - double(est.total())) / 1e9);
  else
    std::printf("peak host RSS %.3f GB\n", double(peak_rss) / 1e9);
  std::printf("total bench time %.1f s on %s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(), cpu_summary().c_str());
  return 0;
}

}  // namespace llrt::cli
