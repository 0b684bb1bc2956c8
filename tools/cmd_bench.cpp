// llrt bench: llama-bench's pp/tg semantics and options on our engine.
//   pp N: one forward of N prompt tokens in a fresh context (prefill, matrix-matrix)
//   tg N: N single-token decode steps from an empty context (matrix-vector)
//   -d D: both start after D context tokens already in the KV cache (llama-bench's
//         n_depth; the depth prefill is not timed)
// -p, -n and -t take lists (-p 128,512): one pp test per -p value, one tg test per -n value, for
// each thread count (the model is loaded once per thread count). Each test runs -r times; mean
// +/- sd of tokens/s, and a warning when the sd exceeds 10% of the mean. Output -o md (default),
// csv, json (an array of rows, as llama-bench) or jsonl (a row per line); --json: the detailed
// object of one test pair (scripts read it). --bandwidth also measures the memory read bandwidth
// (~3.5 s) and reports tg against its limit: limit tokens/s = bandwidth / bytes streamed per token.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
  if (v.empty()) return s;
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
struct Row {
  std::string test;
  int64_t n_prompt = 0, n_gen = 0;
  int threads = 0;
  std::vector<double> runs;
  Stat st;
};
std::string model_label(const std::string& ref, const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(ref, ec)) return ref;  // a Hugging Face name
  std::filesystem::path p(dir);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}
}  // namespace

int cmd_bench(Args& a) {
  const std::vector<int> threads_list = number_list<int>(a, {"-t", "--threads"}, {0}, 0, max_threads(),
                                                         "0 picks the physical cores; more than 4x the logical cores only slows it down");
  RunSetup setup = parse_run_setup(a);  // -t is taken above (a list)
  constexpr int64_t kMaxTokens = int64_t(1) << 24;
  const auto pps = number_list<int64_t>(a, {"-p", "--n-prompt"}, {512}, 0, kMaxTokens, "prompt tokens; 0 skips the pp test");
  const auto tgs = number_list<int64_t>(a, {"-n", "--n-gen"}, {128}, 0, kMaxTokens, "generated tokens; 0 skips the tg test");
  int reps = 3;
  int64_t depth = 0;
  a.number({"-r", "--repetitions"}, &reps, 1, 1000);
  a.number<int64_t>({"-d", "--n-depth"}, &depth, 0, kMaxTokens, "tokens already in the context");
  const bool as_json = a.flag({"--json"});
  std::string fmt = "md";
  const bool have_fmt = a.value({"-o", "--output"}, &fmt);
  if (fmt != "md" && fmt != "json" && fmt != "jsonl" && fmt != "csv")
    fail(ErrorCode::InvalidArgument, "-o: '" + fmt + "' is not an output format (use md, json, jsonl or csv)");
  const bool bandwidth = a.flag({"--bandwidth"});
  a.flag({"--no-bandwidth"});  // the default now; accepted for older scripts
  std::string model_ref;
  auto pos = model_and_positionals(a, "bench", &model_ref);
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "bench: give exactly one MODEL");
  int64_t max_pp = 0, max_tg = 0;
  for (int64_t v : pps) max_pp = std::max(max_pp, v);
  for (int64_t v : tgs) max_tg = std::max(max_tg, v);
  if (max_pp == 0 && max_tg == 0)
    fail(ErrorCode::InvalidArgument, "bench: -p 0 -n 0 measures nothing: give -p N (prompt tokens) or -n N (generated tokens) above 0");
  if (as_json && (have_fmt || pps.size() > 1 || tgs.size() > 1 || threads_list.size() > 1))
    fail(ErrorCode::InvalidArgument, "bench: --json is the detailed object of one -p/-n/-t; for lists use -o json or -o jsonl");
  const std::string dir = resolve_model(model_ref), label = model_label(model_ref, dir);
  const int64_t ctx_len = std::max<int64_t>(setup.ctx, depth + max_pp + max_tg + 1);
  setup.ctx = ctx_len;  // the device check and the load size for this context
  std::vector<Row> rows;
  nlohmann::ordered_json detail;
  std::string dts, dev, load_kind, extra_lines;
  uint64_t weight_bytes = 0;
  for (int threads_asked : threads_list) {
    setup.threads = threads_asked;
    auto t_start = std::chrono::steady_clock::now();
    Engine model = load_engine(dir, setup);
    const bool gpu = bool(model.cuda);
    const int threads = gpu ? 0 : model.cpu->threads();
    const int64_t V = model.config().vocab_size;
    std::mt19937 rng(42);
    std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(max_pp, 1)));
    std::vector<int32_t> ctx_tokens(static_cast<size_t>(depth));
    for (auto& t : prompt) t = int32_t(rng() % uint32_t(V));
    for (auto& t : ctx_tokens) t = int32_t(rng() % uint32_t(V));
    auto session = model.session(ctx_len, setup.batch, setup.kv_dtype);
    Session& ctx = *session;
    // Warm-up: touches every weight once (page faults for mmap are not part of the numbers, like
    // llama-bench's warm-up run); on a GPU it also captures the decode graph.
    ctx.reset();
    ctx.eval_greedy({prompt.data(), 1});
    ctx.eval_greedy({prompt.data(), 1});
    const double first_token_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    auto fresh = [&] {  // an empty context, then the depth tokens (not timed)
      ctx.reset();
      if (depth > 0) ctx.eval(ctx_tokens);
    };
    const std::string at = depth > 0 ? " @ d" + std::to_string(depth) : "";
    Row pp_row, tg_row;
    for (int64_t pp : pps) {
      if (pp == 0) continue;
      ctx.reset();
      ctx.eval({prompt.data(), size_t(pp)});  // warm-up of the prefill path (first-use setup)
      Row r{"pp" + std::to_string(pp) + at, pp, 0, threads, {}, {}};
      for (int i = 0; i < reps; ++i) {
        fresh();
        auto t0 = std::chrono::steady_clock::now();
        ctx.eval({prompt.data(), size_t(pp)});
        r.runs.push_back(double(pp) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      r.st = stats(r.runs);
      rows.push_back(r);
      pp_row = r;
    }
    for (int64_t tg : tgs) {
      if (tg == 0) continue;
      Row r{"tg" + std::to_string(tg) + at, 0, tg, threads, {}, {}};
      for (int i = 0; i < reps; ++i) {
        fresh();
        int32_t tok = prompt[0];
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t k = 0; k < tg; ++k) tok = ctx.eval_greedy({&tok, 1});  // greedy, argmax where the session runs
        r.runs.push_back(double(tg) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      r.st = stats(r.runs);
      rows.push_back(r);
      tg_row = r;
    }
    // Peak resident memory so far (before the bandwidth probe's buffer).
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    const uint64_t peak_rss = uint64_t(ru.ru_maxrss) * 1024;
    const MemoryEstimate est = gpu ? MemoryEstimate{} : estimate_memory(model.checkpoint(), ctx_len, setup.batch, threads, setup.kv_dtype);
    const double bw = !bandwidth ? 0 : gpu ? cuda_measure_copy_bandwidth() : measure_read_bandwidth(1ull << 30, threads, 10);
    const uint64_t bytes_tok = streamed_bytes_per_token(model.checkpoint()) +
                               (gpu || depth == 0 ? 0 : est.kv_bytes_per_token * uint64_t(depth + max_tg / 2));
    const double limit = bw > 0 ? bw * 1e9 / double(bytes_tok) : 0;
    dts.clear();
    for (auto& [dt, b] : model.checkpoint().bytes_by_dtype()) dts += std::string(dts.empty() ? "" : "+") + dtype_name(dt);
    weight_bytes = model.checkpoint().weight_bytes();
    dev = gpu ? model.cuda->device().name : "cpu";
    load_kind = gpu ? "cuda" : model.checkpoint().shards()[0].mode() == LoadMode::Mmap ? "mmap" : "copy";
    char buf[512];
    if (bw > 0 && !tg_row.runs.empty()) {
      std::snprintf(buf, sizeof buf, "%s bandwidth (%d threads): %.1f GB/s; decode streams %.3f GB/token -> limit %.2f t/s; %s reached %.1f%%\n",
                    gpu ? "device copy" : "memory read", threads, bw, double(bytes_tok) / 1e9, limit, tg_row.test.c_str(),
                    100.0 * tg_row.st.mean / limit);
      extra_lines += buf;
    }
    std::snprintf(buf, sizeof buf, "load to first token %.2f s (load %.2f s) on %s\n", first_token_s, model.load_seconds(),
                  model.device_name().c_str());
    extra_lines += buf;
    if (!gpu) {
      std::snprintf(buf, sizeof buf, "peak RSS %.3f GB = weights %.3f + KV cache %.3f (ctx %lld) + scratch %.3f + %.3f other\n",
                    double(peak_rss) / 1e9, double(est.weight_bytes) / 1e9, double(est.kv_bytes) / 1e9, (long long)ctx_len,
                    double(est.scratch_bytes) / 1e9, (double(peak_rss) - double(est.total())) / 1e9);
      extra_lines += buf;
    }
    if (as_json) {
      detail = {{"model", label}, {"model_path", dir}, {"dtypes", dts}, {"weight_bytes", weight_bytes},
                {"streamed_bytes_per_token", bytes_tok}, {"threads", threads}, {"device", model.device_name()},
                {"load_to_first_token_seconds", first_token_s}, {"load", gpu ? "cuda upload" : load_mode_name(model.checkpoint().shards()[0].mode())},
                {"load_seconds", model.load_seconds()}, {"bandwidth_gbs", bw},
                {"bandwidth_kind", gpu ? "device copy (read+write)" : "host read"}, {"tg_limit_tps", limit}, {"cpu", cpu_summary()},
                {"peak_rss_bytes", peak_rss}};
      if (!gpu) detail["memory_estimate"] = {{"weights", est.weight_bytes}, {"kv_cache", est.kv_bytes}, {"scratch", est.scratch_bytes}, {"ctx", ctx_len}};
      if (gpu) detail["upload_seconds"] = model.cuda->upload_seconds();
      detail["depth"] = depth;
      detail["kv_type"] = dtype_name(setup.kv_dtype);
      if (!pp_row.runs.empty()) detail["pp"] = {{"n", pp_row.n_prompt}, {"mean_tps", pp_row.st.mean}, {"sd", pp_row.st.sd}, {"runs", pp_row.runs}};
      if (!tg_row.runs.empty())
        detail["tg"] = {{"n", tg_row.n_gen}, {"mean_tps", tg_row.st.mean}, {"sd", tg_row.st.sd}, {"runs", tg_row.runs},
                        {"pct_of_limit", limit > 0 ? 100.0 * tg_row.st.mean / limit : 0}};
    }
  }
  for (const Row& r : rows)
    if (r.st.mean > 0 && r.st.sd > 0.1 * r.st.mean)
      std::fprintf(stderr, "llrt bench: warning: %s with %d threads: the runs spread by %.0f%% of their mean (sd %.2f of %.2f t/s): "
                           "the machine is busy or the test too short (raise -r, -p or -n)\n",
                   r.test.c_str(), r.threads, 100.0 * r.st.sd / r.st.mean, r.st.sd, r.st.mean);
  if (as_json) {
    std::printf("%s\n", detail.dump(2).c_str());
    return 0;
  }
  const std::string kv = setup.kv_dtype != DType::F32 ? dtype_name(setup.kv_dtype) : "f32";
  auto row_json = [&](const Row& r) {
    nlohmann::ordered_json j = {{"model", label}, {"model_path", dir}, {"dtypes", dts}, {"size_bytes", weight_bytes}, {"device", dev},
                                {"load", load_kind}, {"n_threads", r.threads}, {"kv_type", kv}, {"n_prompt", r.n_prompt},
                                {"n_gen", r.n_gen}, {"n_depth", depth}, {"test", r.test}, {"avg_ts", r.st.mean},
                                {"stddev_ts", r.st.sd}, {"samples_ts", r.runs}};
    return j;
  };
  if (fmt == "json" || fmt == "jsonl") {
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    for (const Row& r : rows) {
      if (fmt == "jsonl") std::printf("%s\n", row_json(r).dump().c_str());
      else all.push_back(row_json(r));
    }
    if (fmt == "json") std::printf("%s\n", all.dump(2).c_str());
    return 0;
  }
  if (fmt == "csv") {
    std::printf("model,dtypes,size_bytes,device,load,n_threads,kv_type,n_prompt,n_gen,n_depth,test,avg_ts,stddev_ts\n");
    for (const Row& r : rows)
      std::printf("\"%s\",%s,%llu,\"%s\",%s,%d,%s,%lld,%lld,%lld,%s,%.4f,%.4f\n", label.c_str(), dts.c_str(), (unsigned long long)weight_bytes,
                  dev.c_str(), load_kind.c_str(), r.threads, kv.c_str(), (long long)r.n_prompt, (long long)r.n_gen, (long long)depth,
                  r.test.c_str(), r.st.mean, r.st.sd);
    return 0;
  }
  std::printf("| model | dtype | size | device | threads | load | test | t/s |\n|---|---|---|---|---:|---|---:|---:|\n");
  for (const Row& r : rows)
    std::printf("| %s | %s | %.2f GiB | %s | %d | %s | %s%s | %.2f ± %.2f |\n", label.c_str(), dts.c_str(),
                double(weight_bytes) / double(1ull << 30), dev.c_str(), r.threads, load_kind.c_str(), r.test.c_str(),
                setup.kv_dtype != DType::F32 ? (std::string(" (") + kv + " KV)").c_str() : "", r.st.mean, r.st.sd);
  std::printf("\n%s", extra_lines.c_str());
  return 0;
}

}  // namespace llrt::cli
