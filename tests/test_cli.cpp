// The CLI and library pieces of issue 16 (llama.cpp users' habits): help and option checks, -m,
// Hugging Face names, --messages / --chat-template / --print-prompt / --json on run, chat's
// commands and context trimming, perplexity against llama-perplexity's own number, bench's lists and
// formats, llrt list, the load progress hook. Each runs the built binary on stories260K (fast).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

#include "llrt/batch.h"
#include "llrt/error.h"
#include "llrt/hub.h"
#include "llrt/model.h"
#include "llrt/perplexity.h"
#include "llrt/tokenizer.h"
#include "reference.h"
#include "st_writer.h"

using namespace llrt;
using namespace llrt::test;
namespace fs = std::filesystem;

namespace {
fs::path stories() { return repo_dir() / "models" / "stories260K"; }
std::string S() { return stories().string(); }

// Runs `env llrt args` (or llrt-inspect when args starts with "@inspect"); stdout (+ stderr with all).
std::string cli(const std::string& args, int* status, bool all = false, const std::string& env = "", const char* exe = "llrt") {
  const std::string cmd = env + " " + std::string(LLRT_BUILD_DIR) + "/tools/" + exe + " " + args + (all ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}
void has(const std::string& s, const std::string& part) { CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s); }
void lacks(const std::string& s, const std::string& part) { CHECK_MESSAGE(s.find(part) == std::string::npos, "'" << part << "' in: " << s); }

template <class F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error thrown");
  return Error(ErrorCode::Internal, "");
}

// stories260K with a small chat template (it ships none).
fs::path stories_chat(const std::string& tag) {
  auto dir = copy_model(stories(), tag);
  auto cfg = read_json_file(dir / "tokenizer_config.json");
  cfg["chat_template"] =
      "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}[{{ m['content'] }}] {% elif m['role'] == 'user' %}"
      "Q: {{ m['content'] }} {% else %}A: {{ m['content'] }} {% endif %}{% endfor %}{% if add_generation_prompt %}A:{% endif %}";
  spit(dir / "tokenizer_config.json", cfg.dump());
  return dir;
}
}  // namespace

TEST_CASE("CLI habits: per-command --help, --version, -m, options checked before the load, -n -1, --system needs --chat") {
  int st = -1;
  std::string out = cli("run --help", &st);
  CHECK(st == 0);
  for (const char* s : {"usage: llrt run MODEL", "--messages FILE.json", "--print-prompt", "--json", "-n, --n-predict N", "-1: until EOS",
                        "--chat-template FILE", "--chat-template-kwargs JSON", "-m/--model"})
    has(out, s);
  has(cli("bench -h", &st), "-o, --output md|json|jsonl|csv");
  has(cli("perplexity --help", &st), "Final estimate: PPL = X +/- Y");
  has(cli("chat --help", &st), "/save FILE");
  has(cli("list --help", &st), "usage: llrt list");
  out = cli("--help", &st);
  // LLRT_ISA: the help lists exactly the names the code accepts (its error message lists them)
  const std::string bad = cli("caps", &st, true, "LLRT_ISA=bogus");
  CHECK(st == 1);
  const size_t use = bad.find("use one of: ");
  REQUIRE(use != std::string::npos);
  std::string names = bad.substr(use + 12, bad.find_first_of("\n", use) - use - 12);
  for (char& c : names)
    if (c == ' ') c = '|';
  has(out, "LLRT_ISA=" + names + " caps");
  out = cli("--help", &st, false, "", "llrt-inspect");
  CHECK(st == 0);
  has(out, "usage: llrt inspect MODEL");
  out = cli("--version", &st);
  CHECK(st == 0);
  has(out, "llrt 0.");
  // -m/--model wherever the positional works
  CHECK(cli("run -m " + S() + " --ids 1 --temp 0 -n 3 --print-ids", &st) == "403 407 261\n");
  CHECK(st == 0);
  CHECK(cli("run --model=" + S() + " --ids 1 --temp 0 -n 3 --print-ids", &st) == "403 407 261\n");
  CHECK(cli("tokenize -m " + S() + " \"Once upon a time\"", &st) == "[1, 403, 407, 261, 378]\n");
  out = cli("inspect -m " + S() + " --json", &st);
  CHECK(st == 0);
  CHECK(nlohmann::json::parse(out)["runnable"] == true);
  // before the load: a folder that does not exist is never reached
  const std::string none = "/nonexistent/model ";
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"run " + none + "--ids 1 -n -2", "-n: -2 is out of range (must be -1 to"},
           {"run " + none + "-p hi --system x", "run: --system needs --chat"},
           {"run " + none + "-p hi --chat-template-kwargs '[1]'", "--chat-template-kwargs: must be a JSON object"},
           {"run " + none + "-p hi --chat --chat-template-kwargs '{x'", "--chat-template-kwargs: not valid JSON"},
           {"run " + none + "-p hi --chat --chat-template /nonexistent.jinja", "--chat-template: /nonexistent.jinja is not a readable file"},
           {"run " + none + "-p hi --ids 1", "run: give exactly one of"},
           {"run " + none + "--messages /nonexistent.json", "cannot read /nonexistent.json"},
           {"run -p hi", "run: MODEL is missing"},
           {"bench " + none + "-p 1,x", "-p: 'x' is not a whole number"},
           {"bench " + none + "-t 1,-2", "-t: -2 is out of range"},
           {"bench " + none + "-o xml", "-o: 'xml' is not an output format"},
           {"perplexity " + none + "-f x --ctx 3", "--ctx 3 scores nothing"}}) {
    out = cli(args, &st, true);
    CHECK_MESSAGE(st == 1, args);
    has(out, "error [");
    has(out, says);
    lacks(out, "loading");
  }
  // -n -1: until EOS or the context is full (stories260K rarely ends a story within 24 positions)
  out = cli("run " + S() + " --ids 1 --temp 0 -n -1 --ctx 24 --json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["ids"].size() + j["prompt_ids"].size() <= 25);  // the last token sampled is not evaluated
  CHECK((j["stop_reason"] == "context_full" || j["stop_reason"] == "eos"));
}

TEST_CASE("run: --json, --print-prompt, --messages (assistant turns), --chat-template FILE and kwargs") {
  int st = -1;
  std::string out = cli("run " + S() + " -p \"Once upon a time\" --temp 0 -n 8 --json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["prompt_ids"] == std::vector<int32_t>{1, 403, 407, 261, 378});
  CHECK(j["ids"].size() == 8);
  CHECK(j["stop_reason"] == "max_tokens");
  has(j["text"].get<std::string>(), ", there was a");
  for (const char* k : {"load_seconds", "prompt_tokens", "prompt_tokens_per_second", "generated_tokens", "generation_tokens_per_second"})
    CHECK_MESSAGE(j["timings"].contains(k), k);
  out = cli("run " + S() + " -p \"Once upon a time\" --temp 0 -n 2 --print-prompt", &st, true);
  has(out, "llrt: prompt (5 tokens):\nOnce upon a time\n");
  has(out, "llrt: prompt ids: 1 403 407 261 378\n");
  const auto dir = stories_chat("cli-run");
  spit(dir / "m.json", R"([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
                           {"role": "assistant", "content": [{"type": "text", "text": "ho"}]}, {"role": "user", "content": "go"}])");
  out = cli("run " + dir.string() + " --messages " + (dir / "m.json").string() + " -n 1 --temp 0 --print-prompt", &st, true);
  CHECK(st == 0);
  has(out, "<s>[S] Q: hi A: ho Q: go A:\n");
  spit(dir / "t.jinja", "{{ bos_token }}{{ date_string }}|{% for m in messages %}{{ m['content'] }}{% endfor %}");
  out = cli("run " + dir.string() + " -p hello --chat --chat-template " + (dir / "t.jinja").string() +
                " --chat-template-kwargs '{\"date_string\": \"26 Jul 2024\"}' -n 1 --temp 0 --print-prompt",
            &st, true);
  CHECK(st == 0);
  has(out, "<s>26 Jul 2024|hello\n");
  spit(dir / "bad.json", R"({"role": "user"})");
  out = cli("run " + dir.string() + " --messages " + (dir / "bad.json").string(), &st, true);
  CHECK(st == 1);
  has(out, "must hold a non-empty array");
  fs::remove_all(dir);
}

TEST_CASE("chat: /system, /save, /load, /reset, multi-line input; the oldest turns dropped to fit, the system prompt kept") {
  int st = -1;
  const auto dir = stories_chat("cli-chat");
  const std::string saved = (dir / "conv.json").string();
  spit(dir / "in.txt", "/system Be kind\nOnce upon \\\na time\n/save " + saved + "\n/reset\n/load " + saved + "\n/bogus\n/save /nonexistent/x.json\n/exit\n");
  std::string out = cli("chat " + dir.string() + " -n 4 --temp 0 < " + (dir / "in.txt").string(), &st, true);
  CHECK(st == 0);
  has(out, "system prompt set");
  has(out, "messages written to");
  has(out, "llrt chat: 3 messages loaded from");
  has(out, "unknown command /bogus");
  has(out, "llrt chat: cannot write /nonexistent/x.json");
  const auto conv = read_json_file(saved);
  REQUIRE(conv.size() == 3);
  CHECK(conv[0]["content"] == "Be kind");
  CHECK(conv[1]["content"] == "Once upon \na time");
  CHECK(conv[2]["role"] == "assistant");
  // A context of 64 with 16 kept for the reply: the third long message drops the first turns.
  std::string in = "/system S\n";
  for (int i = 0; i < 4; ++i) in += "Once upon a time there was a little girl named Lily and a dog\n";
  spit(dir / "long.txt", in);
  out = cli("chat " + dir.string() + " -n 16 --ctx 64 --temp 0 < " + (dir / "long.txt").string(), &st, true);
  CHECK(st == 0);
  has(out, "to fit the context (64 tokens, of which 16 kept free for the reply); the system prompt stays");
  lacks(out, "starting over");
  // One message longer than the context: said, and the chat goes on.
  spit(dir / "huge.txt", std::string(400, 'a') + "\nhi\n");
  out = cli("chat " + dir.string() + " -n 16 --ctx 64 --temp 0 < " + (dir / "huge.txt").string(), &st, true);
  CHECK(st == 0);
  has(out, "kept free for the reply, more than the context (64)");
  fs::remove_all(dir);
}

TEST_CASE("perplexity: llama-perplexity's method and output, equal to llama-perplexity's own number") {
  // tests/data/stories260K/llama_perplexity.json: scripts/llama_perplexity_reference.py (llama.cpp's
  // llama-perplexity on the F32 GGUF of the same weights, -c 128, F32 KV cache).
  const auto ref = read_json_file(repo_dir() / "tests/data/stories260K/llama_perplexity.json");
  const std::string text = (repo_dir() / ref["text"].get<std::string>()).string();
  int st = -1;
  std::string out = cli("perplexity " + S() + " -f " + text + " --ctx " + std::to_string(ref["ctx"].get<int>()), &st);
  CHECK(st == 0);
  const auto running = ref["running_ppl"].get<std::vector<double>>();
  REQUIRE(running.size() == ref["chunks"].get<size_t>());
  for (size_t i = 0; i < running.size(); ++i) {
    std::string tag = "[";
    tag += std::to_string(i + 1);
    tag += ']';
    const size_t at = out.find(tag);
    REQUIRE_MESSAGE(at != std::string::npos, tag << " missing: " << out);
    const double v = std::atof(out.c_str() + at + tag.size());
    CHECK_MESSAGE(std::fabs(v - running[i]) <= 1.5e-4 + 1e-4 * running[i], tag << " " << v << " vs llama-perplexity " << running[i]);
  }
  CHECK(out.find(std::string("[") += std::to_string(running.size() + 1)) == std::string::npos);  // the partial chunk is dropped
  const size_t f = out.find("Final estimate: PPL = ");
  REQUIRE(f != std::string::npos);
  double ppl = 0, err = 0;
  REQUIRE(std::sscanf(out.c_str() + f, "Final estimate: PPL = %lf +/- %lf", &ppl, &err) == 2);
  MESSAGE("llrt " << ppl << " +/- " << err << " vs llama-perplexity " << ref["ppl"].get<double>() << " +/- " << ref["ppl_stderr"].get<double>());
  CHECK(std::fabs(ppl - ref["ppl"].get<double>()) <= 1.5e-4);
  CHECK(std::fabs(err - ref["ppl_stderr"].get<double>()) <= 2e-5);
  // too short a text for the method: said before the load
  const std::string short_text = (fs::temp_directory_path() / ("llrt-test-ppl-" + std::to_string(::getpid()))).string();
  spit(short_text, "Once upon a time, there was a little girl named Lily.");
  out = cli("perplexity " + S() + " -f " + short_text + " --ctx 64", &st, true);
  CHECK(st == 1);
  has(out, "needs at least 128 (2 x --ctx 64)");
  lacks(out, "loading");
  fs::remove(short_text);
  // the library: the same number with logits taken 7 at a time; --chunks / max_chunks; too few ids
  {
    auto model = Model::load(stories());
    Tokenizer tok = Tokenizer::load(stories());
    const auto ids = tok.encode(slurp(text), true);
    Context ctx(model, ContextOptions{128, 16});
    PerplexityOptions po;
    po.chunk = 128;
    po.bos = tok.bos_id();
    po.n_batch = 7;
    const PerplexityResult r = perplexity(ctx, ids, po);
    CHECK(r.chunks == int64_t(running.size()));
    CHECK(r.nll.size() == running.size() * 63);  // 128 - 64 - 1 per chunk
    CHECK(std::fabs(r.ppl() - ref["ppl"].get<double>()) <= 1.5e-4);
    po.max_chunks = 2;
    CHECK(perplexity(ctx, ids, po).nll.size() == 126);
    const std::vector<int32_t> few(ids.begin(), ids.begin() + 255);
    CHECK_THROWS_AS(perplexity(ctx, few, po), Error);
  }
  // the all-positions measure stays behind its option
  out = cli("perplexity " + S() + " -f " + text + " --ctx 128 --all-positions --json", &st);
  CHECK(st == 0);
  CHECK(nlohmann::json::parse(out)["method"] == "all-positions");
}

TEST_CASE("bench: lists, output formats, the directory name, no bandwidth probe unless asked") {
  int st = -1;
  std::string out = cli("bench " + S() + " -p 8,16 -n 4 -t 1 -r 2 -o jsonl", &st);
  CHECK(st == 0);
  std::vector<nlohmann::json> rows;
  for (size_t b = 0, e; (e = out.find('\n', b)) != std::string::npos; b = e + 1) rows.push_back(nlohmann::json::parse(out.substr(b, e - b)));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["test"] == "pp8");
  CHECK(rows[1]["test"] == "pp16");
  CHECK(rows[2]["test"] == "tg4");
  CHECK(rows[0]["model"] == "stories260K");
  CHECK(rows[0]["n_threads"] == 1);
  CHECK(rows[2]["samples_ts"].size() == 2);
  out = cli("bench " + S() + " -p 8 -n 0 -t 1,2 -r 1 -o json", &st);
  CHECK(st == 0);
  auto arr = nlohmann::json::parse(out);
  REQUIRE(arr.size() == 2);
  CHECK(arr[1]["n_threads"] == 2);
  out = cli("bench " + S() + " -p 8 -n 2 -r 1 -o csv", &st);
  has(out, "model,dtypes,size_bytes,device,load,n_threads");
  has(out, "\"stories260K\",F32,");
  out = cli("bench " + S() + " -p 8 -n 2 -r 1", &st);
  has(out, "| stories260K | F32 |");
  lacks(out, "bandwidth");
  lacks(out, S() + " |");
}

TEST_CASE("batched-bench: llama-batched-bench's table and jsonl keys; bad options are refused before the load") {
  int st = -1;
  std::string out = cli("batched-bench " + S() + " -npp 8 -ntg 4 -npl 1,2,3 -t 1", &st);
  CHECK(st == 0);
  has(out, "|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |");
  has(out, "|     8 |      4 |    3 |     36 |");
  has(out, "KV pool: ");
  has(out, "cpu: ");
  out = cli("batched-bench " + S() + " -npp 8,16 -ntg 2 -npl 1,4 -b 8 -o jsonl", &st);
  CHECK(st == 0);
  std::vector<nlohmann::json> rows;
  for (size_t b = 0, e; (e = out.find('\n', b)) != std::string::npos; b = e + 1) rows.push_back(nlohmann::json::parse(out.substr(b, e - b)));
  REQUIRE(rows.size() == 4);
  CHECK(rows[3]["pp"] == 16);
  CHECK(rows[3]["pl"] == 4);
  CHECK(rows[3]["n_kv"] == 4 * 18);
  CHECK(rows[3]["n_batch"] == 8);
  for (const char* k : {"t_pp", "speed_pp", "t_tg", "speed_tg", "t", "speed"}) CHECK(rows[3][k].get<double>() > 0);
  out = cli("batched-bench " + S() + " -npp 8 -ntg 2 -npl 1,4 -pps -o json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["is_pp_shared"] == 1);
  CHECK(j["rows"].size() == 2);
  CHECK(j["kv_pool"]["blocks"].get<int64_t>() > 0);
  const std::string none = "batched-bench " + S() + " ";
  for (const auto& [args, msg] : std::vector<std::pair<std::string, std::string>>{
           {"-npl 0", "-npl: 0 is out of range"}, {"-npp 8,x", "-npp: 'x' is not a whole number"},
           {"-ntg -1", "-ntg: -1 is out of range"}, {"-o csv", "-o: 'csv' is not an output format"},
           {"--device cuda", "runs on the CPU"}, {"--bogus", "unknown option '--bogus'"}}) {
    out = cli(none + args, &st, true);
    CHECK(st != 0);
    has(out, msg);
  }
}

TEST_CASE("inspect --parallel: the batched engine's KV pool, exactly kv_pool_size() and BatchContext::pool()") {
  int st = -1;
  for (const std::string kv : {"f32", "bf16"}) {
    const std::string out = cli("inspect " + S() + " --json --parallel 4 --ctx 200 --kv-type " + kv, &st);
    CHECK(st == 0);
    auto j = nlohmann::json::parse(out);
    REQUIRE(j.contains("kv_pool"));
    auto model = Model::load(stories());
    BatchOptions o;
    o.n_ctx = 200;
    o.parallel = 4;
    o.kv_dtype = kv == "f32" ? DType::F32 : DType::BF16;
    const KvPoolSize p = kv_pool_size(model->config(), o);
    CHECK(j["kv_pool"]["blocks"].get<int64_t>() == p.blocks);
    CHECK(j["kv_pool"]["block_size"].get<int64_t>() == p.block_size);
    CHECK(j["kv_pool"]["block_bytes"].get<uint64_t>() == p.block_bytes);
    CHECK(j["kv_pool"]["bytes"].get<uint64_t>() == p.bytes);
    CHECK(p.blocks == 4 * ((200 + p.block_size - 1) / p.block_size));
    BatchContext bc(model, o);
    CHECK(bc.pool().bytes == p.bytes);
    CHECK(bc.pool().blocks == p.blocks);
  }
  const std::string text = cli("inspect " + S() + " --parallel 2 --ctx 64", &st);
  has(text, "KV pool of the batched engine (--parallel 2 x ctx 64, F32): 4 blocks x 32 positions");
}

TEST_CASE("hub names: org/name resolves offline in the Hugging Face cache; absent names say where llrt looked") {
  const fs::path cache = fs::temp_directory_path() / ("llrt-test-hub-" + std::to_string(::getpid()));
  fs::remove_all(cache);
  const fs::path repo = cache / "models--karpathy--stories260K";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots" / "0123abcd");
  spit(repo / "refs" / "main", "0123abcd");
  for (const auto& e : fs::directory_iterator(stories())) fs::create_symlink(e.path(), repo / "snapshots" / "0123abcd" / e.path().filename());
  ::setenv("HF_HUB_CACHE", cache.c_str(), 1);
  CHECK(hf_hub_cache_dir() == cache);
  CHECK(resolve_model_path("karpathy/stories260K") == repo / "snapshots" / "0123abcd");
  CHECK(resolve_model_path("karpathy/stories260K@0123abcd") == repo / "snapshots" / "0123abcd");
  CHECK(resolve_model_path(stories().string()) == stories());
  CHECK(is_hub_repo_id("meta-llama/Llama-3.2-1B-Instruct"));
  CHECK_FALSE(is_hub_repo_id("../x"));
  CHECK_FALSE(is_hub_repo_id("a/b/c"));
  Error e = error_of([&] { resolve_model_path("meta-llama/Llama-3.2-1B-Instruct"); });
  CHECK(e.code() == ErrorCode::Io);
  has(e.what(), "looked in " + (cache / "models--meta-llama--Llama-3.2-1B-Instruct").string());
  has(e.what(), "llrt does not download");
  e = error_of([&] { resolve_model_path("karpathy/stories260K@v2"); });
  has(e.what(), "refs/v2 is missing");
  auto listed = hf_cached_models(cache);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].first == "karpathy/stories260K");
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", "/tmp/hfhome", 1);
  CHECK(hf_hub_cache_dir() == fs::path("/tmp/hfhome/hub"));
  ::unsetenv("HF_HOME");
  // the CLI
  int st = -1;
  const std::string env = "HF_HUB_CACHE=" + cache.string();
  CHECK(cli("run karpathy/stories260K --ids 1 --temp 0 -n 3 --print-ids", &st, false, env) == "403 407 261\n");
  CHECK(st == 0);
  std::string out = cli("run meta-llama/Llama-3.2-1B-Instruct -p hi", &st, true, env);
  CHECK(st == 1);
  has(out, "looked in " + cache.string());
  // llrt list: a folder of checkpoints and the hub cache
  out = cli("list " + (repo_dir() / "models").string() + " " + cache.string() + " --json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["name"] == "stories260K");
  CHECK(j[1]["name"] == "karpathy/stories260K");
  for (const auto& m : j) {
    CHECK(m["runnable"] == true);
    CHECK(m["dtype"] == "F32");
    CHECK(m["size_bytes"].get<uint64_t>() > 1000000);
    CHECK(m["family"] == "Llama (generic LlamaForCausalLM)");
  }
  out = cli("list " + (repo_dir() / "models").string(), &st);
  has(out, "stories260K");
  has(out, "runs here");
  out = cli("list", &st, true, "HOME=" + cache.string() + " " + env);  // the defaults: ~/models (absent), the cache
  CHECK(st == 0);
  has(out, "karpathy/stories260K");
  fs::remove_all(cache);
}

TEST_CASE("load progress: ModelOptions::on_bytes and progress report shards and bytes; no progress line off a terminal") {
  for (LoadMode mode : {LoadMode::Copy, LoadMode::Mmap}) {
    std::vector<LoadProgress> seen;
    std::vector<std::string> said;
    ModelOptions mo;
    mo.map.mode = mode;
    mo.on_bytes = [&](const LoadProgress& p) { seen.push_back(p); };
    mo.progress = [&](const std::string& s) { said.push_back(s); };
    auto m = Model::load(model_dir("llama-3.1-mini-sharded"), mo);
    REQUIRE(!seen.empty());
    uint64_t files = 0;
    for (const auto& sh : m->checkpoint().shards()) files += fs::file_size(sh.path());
    for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].bytes_done >= seen[i - 1].bytes_done);
    CHECK(seen.back().shards == 6);
    CHECK(seen.back().shard == 6);
    CHECK(seen.back().bytes_total == files);
    CHECK(seen.back().bytes_done == files);
    if (mode == LoadMode::Copy) {
      bool first = false, last = false;
      for (const auto& s : said) first |= s.find("copying shard 1/6 (") != std::string::npos, last |= s.find("copying shard 6/6") != std::string::npos;
      CHECK(first);
      CHECK(last);
    }
  }
  int st = -1;
  std::string out = cli("run " + S() + " --ids 1 -n 2 --no-mmap", &st, true, "LLRT_PROGRESS_AFTER=0");
  CHECK(st == 0);
  lacks(out, "\r");  // stderr is not a terminal
  lacks(out, "loading shard");
  if (std::system("command -v script >/dev/null 2>&1") != 0) {
    MESSAGE("no `script` (util-linux): the terminal case is not run");
    return;
  }
  // On a terminal (script gives the command a pty), with the one-second threshold set to 0.
  const std::string run = std::string(LLRT_BUILD_DIR) + "/tools/llrt run " + S() + " --ids 1 -n 1 --no-mmap";
  auto on_tty = [&](const std::string& extra) {
    const std::string cmd = "LLRT_PROGRESS_AFTER=0 script -qfec '" + run + extra + "' /dev/null 2>&1 < /dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string o;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
    pclose(p);
    return o;
  };
  out = on_tty("");
  has(out, "\rllrt: loading shard 1/1  0.00 / 0.00 GB");
  lacks(on_tty(" --quiet"), "loading shard");
}
