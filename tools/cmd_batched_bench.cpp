// llrt batched-bench: llama.cpp's llama-batched-bench on the batched engine (llrt/batch.h).
//
// For each (PP, TG, B) of -npp x -ntg x -npl, from an empty pool:
//   prefill  B sequences of PP prompt tokens each (different pseudo-random in-vocabulary ids per
//            sequence; with -pps one prompt, shared): all B*PP rows go through
//            BatchContext::eval in calls of at most n_batch rows (a call may hold the end of one
//            sequence's prompt and the start of the next), logits of each prompt's last token;
//            timed as T_PP. With -pps only sequence 0 is prefilled (timed); the others take its
//            blocks with attach_prefix() and evaluate their last prompt token (not timed, as
//            llama-batched-bench's untimed KV copy and dummy token).
//   decode   TG steps, each ONE eval() of B items of one token (a pseudo-random id, as
//            llama-batched-bench; the logits of every row are computed); timed as T_TG.
// Columns as llama-batched-bench prints them: N_KV = B*(PP+TG) positions held at the end,
// S_PP = B*PP/T_PP (PP/T_PP with -pps), S_TG = B*TG/T_TG, T = T_PP+T_TG, S = tokens/T.
// The pool is sized once for the largest B (BatchOptions::parallel) and PP+TG (n_ctx per
// sequence); every sequence is closed between tests. A warm-up (16 prompt tokens, then one
// decode step) runs first, untimed.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "cli_common.h"
#include "llrt/batch.h"
#include "run_common.h"
#include "src/engine/cpu.h"

namespace llrt::cli {

namespace {
// "model name" of /proc/cpuinfo (the CPUID brand string elsewhere).
std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t c = line.find(':');
    if (c == std::string::npos) continue;
    size_t b = c + 1;
    while (b < line.size() && line[b] == ' ') ++b;
    return line.substr(b);
  }
  return cpu_info().model.empty() ? "unknown CPU" : cpu_info().model;
}

struct BbRow {
  int64_t pp = 0, tg = 0, pl = 0, n_kv = 0, blocks_in_use = 0;
  double t_pp = 0, s_pp = 0, t_tg = 0, s_tg = 0, t = 0, s = 0;
};

// Evaluates each (sequence, tokens) in order, in calls of at most n_batch rows; the logits of
// each sequence's last token are asked for.
void prefill(BatchContext& bc, const std::vector<std::pair<BatchContext::SeqId, std::span<const int32_t>>>& work, int64_t n_batch) {
  std::vector<BatchContext::Item> items;
  size_t j = 0, done = 0;  // work[j], of which `done` tokens are evaluated
  while (j < work.size()) {
    items.clear();
    int64_t rows = 0;
    while (j < work.size() && rows < n_batch) {
      const auto& [seq, toks] = work[j];
      const size_t n = std::min<size_t>(toks.size() - done, size_t(n_batch - rows));
      items.push_back({seq, toks.subspan(done, n), done + n == toks.size()});
      rows += int64_t(n);
      done += n;
      if (done == toks.size()) {
        ++j;
        done = 0;
      }
    }
    bc.eval(items);
  }
}
}  // namespace

int cmd_batched_bench(Args& a) {
  int64_t n_batch = 2048;  // llama-batched-bench's default -b
  a.number<int64_t>({"-b", "--batch", "--batch-size"}, &n_batch, 1, 1 << 16, "rows (tokens of all sequences) per forward pass");
  int64_t block_size = 32;
  a.number<int64_t>({"--block-size"}, &block_size, 1, 1 << 16, "positions per KV block");
  RunSetup setup = parse_run_setup(a);  // -t, -c/--ctx, --kv-type, --mmap/--no-mmap, --device
  constexpr int64_t kMaxTokens = int64_t(1) << 20;
  const auto npp = number_list<int64_t>(a, {"-npp", "--n-prompt"}, {128, 256, 512}, 1, kMaxTokens, "prompt tokens per sequence");
  const auto ntg = number_list<int64_t>(a, {"-ntg", "--n-gen"}, {128, 256}, 0, kMaxTokens, "generated tokens per sequence");
  const auto npl = number_list<int>(a, {"-npl", "--n-parallel"}, {1, 2, 4, 8, 16, 32}, 1, 4096, "sequences decoded together");
  const bool pps = a.flag({"-pps", "--prompt-shared"});
  std::string fmt = "md";
  a.value({"-o", "--output"}, &fmt);
  if (fmt != "md" && fmt != "json" && fmt != "jsonl")
    fail(ErrorCode::InvalidArgument, "-o: '" + fmt + "' is not an output format (use md, json or jsonl)");
  if (setup.device == "cuda")
    fail(ErrorCode::InvalidArgument, "batched-bench: the batched engine runs on the CPU (--device cuda has no batch API; use llrt bench)");
  setup.device = "cpu";
  std::string model_ref;
  auto pos = model_and_positionals(a, "batched-bench", &model_ref);
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "batched-bench: give exactly one MODEL");

  int64_t max_pp = 0, max_tg = 0;
  int max_pl = 1;
  for (int64_t v : npp) max_pp = std::max(max_pp, v);
  for (int64_t v : ntg) max_tg = std::max(max_tg, v);
  for (int v : npl) max_pl = std::max(max_pl, v);
  const int64_t n_ctx = setup.ctx > 0 ? setup.ctx : max_pp + max_tg;
  setup.ctx = n_ctx;
  setup.batch = std::min<int64_t>(n_batch, 4096);  // load_engine's check of one context (not used by the pool)
  const std::string dir = resolve_model(model_ref);
  Engine model = load_engine(dir, setup);
  const ModelConfig& cfg = model.config();

  BatchOptions bo;
  bo.n_ctx = n_ctx;
  bo.parallel = max_pl;
  bo.n_batch = n_batch;
  bo.block_size = block_size;
  bo.kv_dtype = setup.kv_dtype;
  bo.prefix_cache = pps;  // sharing is what -pps measures; otherwise no block is kept after a test
  const KvPoolSize pool = kv_pool_size(cfg, bo);
  BatchContext bc(model.cpu, bo);

  std::filesystem::path mp(dir);
  if (mp.filename().empty()) mp = mp.parent_path();
  std::string dts;
  for (auto& [dt, b] : model.checkpoint().bytes_by_dtype()) dts += std::string(dts.empty() ? "" : "+") + dtype_name(dt);
  const int threads = model.cpu->threads();
  const std::string cpu = cpu_model_name(), kv = dtype_name(setup.kv_dtype);
  char info[1024];
  std::snprintf(info, sizeof info,
                "llrt batched-bench: model %s (%s), cpu: %s, %d threads\n"
                "n_ctx = %lld per sequence, parallel = %d, n_batch = %lld, block_size = %lld, kv_type = %s, is_pp_shared = %d\n"
                "KV pool: %lld blocks x %lld positions = %.1f MiB (%llu bytes, %llu per block)\n",
                mp.filename().string().c_str(), dts.c_str(), cpu.c_str(), threads, (long long)n_ctx, max_pl, (long long)n_batch,
                (long long)block_size, kv.c_str(), int(pps), (long long)pool.blocks, (long long)pool.block_size,
                double(pool.bytes) / double(1 << 20), (unsigned long long)pool.bytes, (unsigned long long)pool.block_bytes);
  std::fputs(info, fmt == "md" ? stdout : stderr);

  const uint32_t V = uint32_t(cfg.vocab_size);
  std::mt19937 rng(42);
  auto rand_tok = [&] { return int32_t(rng() % V); };
  {  // warm-up: the prefill kernels (16 tokens, fewer in a smaller context), then the decode kernels
    std::vector<int32_t> w(size_t(std::min<int64_t>(16, n_ctx - 1)));
    for (auto& t : w) t = rand_tok();
    const auto s = bc.open();
    if (!w.empty()) prefill(bc, {{s, std::span<const int32_t>(w)}}, n_batch);
    const int32_t t = rand_tok();
    const BatchContext::Item it{s, {&t, 1}, true};
    bc.eval({&it, 1});
    bc.close(s);
  }
  if (fmt == "md") {
    std::printf("\n|%6s | %6s | %4s | %6s | %8s | %8s | %8s | %8s | %8s | %8s |\n", "PP", "TG", "B", "N_KV", "T_PP s", "S_PP t/s", "T_TG s",
                "S_TG t/s", "T s", "S t/s");
    std::printf("|%6s-|-%6s-|-%4s-|-%6s-|-%8s-|-%8s-|-%8s-|-%8s-|-%8s-|-%8s-|\n", "------", "------", "----", "------", "--------",
                "--------", "--------", "--------", "--------", "--------");
    std::fflush(stdout);
  }
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a0, Clock::time_point b0) { return std::chrono::duration<double>(b0 - a0).count(); };
  std::vector<BbRow> rows;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (int64_t pp : npp)
    for (int64_t tg : ntg)
      for (int pl : npl) {
        if (pp + tg > n_ctx) {
          std::fprintf(stderr, "llrt batched-bench: skipped PP %lld TG %lld B %d: %lld positions per sequence, --ctx is %lld\n",
                       (long long)pp, (long long)tg, pl, (long long)(pp + tg), (long long)n_ctx);
          continue;
        }
        std::vector<std::vector<int32_t>> prompts(pps ? 1 : size_t(pl), std::vector<int32_t>(size_t(pp)));
        for (auto& p : prompts)
          for (auto& t : p) t = rand_tok();
        std::vector<BatchContext::SeqId> seqs;
        std::vector<std::pair<BatchContext::SeqId, std::span<const int32_t>>> work;
        for (size_t j = 0; j < prompts.size(); ++j) {
          seqs.push_back(bc.open());
          work.push_back({seqs.back(), std::span<const int32_t>(prompts[j])});
        }
        const auto t0 = Clock::now();
        prefill(bc, work, n_batch);
        const auto t1 = Clock::now();
        if (pps && pl > 1) {  // the others share sequence 0's blocks (not timed)
          work.clear();
          for (int j = 1; j < pl; ++j) {
            seqs.push_back(bc.open());
            const int64_t have = bc.attach_prefix(seqs.back(), prompts[0]);
            work.push_back({seqs.back(), std::span<const int32_t>(prompts[0]).subspan(size_t(have))});
          }
          prefill(bc, work, n_batch);
        }
        std::vector<int32_t> next(seqs.size());
        std::vector<BatchContext::Item> items(seqs.size());
        const auto t2 = Clock::now();
        for (int64_t i = 0; i < tg; ++i) {
          for (size_t j = 0; j < seqs.size(); ++j) {
            next[j] = rand_tok();
            items[j] = {seqs[j], {&next[j], 1}, true};
          }
          bc.eval(items);
        }
        const auto t3 = Clock::now();
        BbRow r;
        r.pp = pp;
        r.tg = tg;
        r.pl = pl;
        r.n_kv = int64_t(pl) * (pp + tg);
        r.blocks_in_use = bc.blocks_in_use();
        for (auto s : seqs) bc.close(s);
        r.t_pp = secs(t0, t1);
        r.t_tg = secs(t2, t3);
        r.t = r.t_pp + r.t_tg;
        const int64_t pp_tokens = pps ? pp : int64_t(pl) * pp;
        r.s_pp = r.t_pp > 0 ? double(pp_tokens) / r.t_pp : 0;
        r.s_tg = r.t_tg > 0 ? double(pl) * double(tg) / r.t_tg : 0;
        r.s = r.t > 0 ? double(pp_tokens + int64_t(pl) * tg) / r.t : 0;
        if (fmt == "md") {
          std::printf("|%6lld | %6lld | %4lld | %6lld | %8.3f | %8.2f | %8.3f | %8.2f | %8.3f | %8.2f |\n", (long long)r.pp, (long long)r.tg,
                      (long long)r.pl, (long long)r.n_kv, r.t_pp, r.s_pp, r.t_tg, r.s_tg, r.t, r.s);
          std::fflush(stdout);
          continue;
        }
        // llama-batched-bench's jsonl keys (n_ubatch = n_batch: one level of batching here), plus ours.
        nlohmann::ordered_json j = {{"n_kv_max", int64_t(max_pl) * n_ctx}, {"n_batch", n_batch}, {"n_ubatch", n_batch},
                                    {"is_pp_shared", int(pps)}, {"n_threads", threads}, {"n_threads_batch", threads},
                                    {"pp", r.pp}, {"tg", r.tg}, {"pl", r.pl}, {"n_kv", r.n_kv}, {"t_pp", r.t_pp},
                                    {"speed_pp", r.s_pp}, {"t_tg", r.t_tg}, {"speed_tg", r.s_tg}, {"t", r.t}, {"speed", r.s},
                                    {"blocks_in_use", r.blocks_in_use}, {"kv_type", kv}, {"block_size", block_size}};
        if (fmt == "jsonl") {
          std::printf("%s\n", j.dump().c_str());
          std::fflush(stdout);
        } else {
          all.push_back(j);
        }
      }
  if (fmt == "json") {
    nlohmann::ordered_json out = {{"model", mp.filename().string()}, {"model_path", dir}, {"dtypes", dts}, {"cpu", cpu},
                                  {"threads", threads}, {"n_ctx", n_ctx}, {"parallel", max_pl}, {"n_batch", n_batch},
                                  {"kv_type", kv}, {"is_pp_shared", int(pps)},
                                  {"kv_pool", {{"blocks", pool.blocks}, {"block_size", pool.block_size},
                                               {"block_bytes", pool.block_bytes}, {"bytes", pool.bytes}}},
                                  {"peak_blocks", bc.peak_blocks()}, {"rows", all}};
    std::printf("%s\n", out.dump(2).c_str());
  } else if (fmt == "md") {
    std::printf("\npeak KV blocks in use: %lld of %lld (%.1f MiB touched)\n", (long long)bc.peak_blocks(), (long long)pool.blocks,
                double(bc.peak_blocks()) * double(pool.block_bytes) / double(1 << 20));
  }
  return 0;
}

}  // namespace llrt::cli
