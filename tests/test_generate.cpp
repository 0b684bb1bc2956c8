// Generation: the shipped stories260K model (real trained weights) end to end, sampling
// semantics, stop conditions, and the CLI as a user runs it.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <limits>
#include <cstdlib>
#include <map>
#include <thread>
#include <sys/wait.h>

#include "llrt/error.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "llrt/perplexity.h"
#include "reference.h"
#include "st_writer.h"
#include "src/io/config_json.h"

using namespace llrt;
using namespace llrt::test;

namespace {
std::filesystem::path stories() { return repo_dir() / "models" / "stories260K"; }
nlohmann::json stories_ref() { return read_json_file(repo_dir() / "tests/data/stories260K/greedy.json"); }

// LLRT_TEST_CLI_WRAPPER: what runs the CLI in a cross build (scripts/test-arm64.sh: qemu-aarch64 ...).
std::string run_cli(const std::string& args, int* status, const char* stderr_to = " 2>/dev/null") {
  const char* wrapper = std::getenv("LLRT_TEST_CLI_WRAPPER");
  std::string cmd = (wrapper && *wrapper ? std::string(wrapper) + " " : std::string()) + std::string(LLRT_BUILD_DIR) +
                    "/tools/llrt " + args + stderr_to;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}
// The same, returning stdout and stderr together (for the error messages).
std::string run_cli_all(const std::string& args, int* status) { return run_cli(args, status, " 2>&1"); }

// stories260K copied to a fresh folder with some weights overwritten (NaN/Inf poked in).
// `untie` gives it its own lm_head (a copy of the embedding table), so a damaged embedding
// row touches only the input of that token.
struct Poke {
  std::string tensor;
  int64_t index;
  float value;
};
std::filesystem::path damaged_stories(const std::string& tag, const std::vector<Poke>& pokes, bool untie = false) {
  auto dir = copy_model(stories(), tag);
  RawSafetensors raw = read_raw(dir / "model.safetensors");
  if (untie) {
    const auto& e = raw.header["model.embed_tokens.weight"];
    const uint64_t b = e["data_offsets"][0].get<uint64_t>(), n = e["data_offsets"][1].get<uint64_t>() - b;
    raw.header["lm_head.weight"] = {{"dtype", "F32"}, {"shape", e["shape"]}, {"data_offsets", {raw.data.size(), raw.data.size() + n}}};
    raw.data += raw.data.substr(b, n);
    auto cfg = read_json_file(dir / "config.json");
    cfg["tie_word_embeddings"] = false;
    spit(dir / "config.json", cfg.dump(2));
  }
  for (const Poke& p : pokes) {
    const uint64_t at = raw.header[p.tensor]["data_offsets"][0].get<uint64_t>() + uint64_t(p.index) * 4;
    std::memcpy(raw.data.data() + at, &p.value, 4);
  }
  write_raw(dir / "model.safetensors", raw);
  return dir;
}
// The Error a call throws (FAIL when none).
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
}  // namespace

TEST_CASE("stories260K: greedy from BOS writes the llama2.c text exactly") {
  auto ref = stories_ref();
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  Context ctx(model);
  GenerateOptions g;
  g.max_new_tokens = int64_t(ref["greedy_ids"].size());
  g.sampling.temperature = 0;
  std::string text;
  std::vector<int32_t> prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
  auto st = generate(ctx, &tok, prompt, g, [&](int32_t, std::string_view t) {
    text += t;
    return true;
  });
  CHECK(st.tokens == ref["greedy_ids"].get<std::vector<int32_t>>());
  CHECK(text.rfind("Once upon a time, there was a little girl named Lily", 0) == 0);
  CHECK(text == ref["text_hf_decode"].get<std::string>());
  // Logits after BOS against HF float32.
  Context c2(model);
  int32_t bos = 1;
  auto lg = c2.eval({&bos, 1});
  auto want = ref["last_logits_f32_bos"].get<std::vector<float>>();
  REQUIRE(lg.size() == want.size());
  float err = max_abs_diff(lg.data(), want.data(), want.size());
  MESSAGE("stories260K logits after BOS: max |ours - HF f32| = " << err);
  CHECK(err < 1e-3f);
  // The other prompts: 50 greedy tokens each.
  for (const auto& p : ref["prompts"]) {
    Context c(model);
    GenerateOptions g2;
    g2.max_new_tokens = int64_t(p["greedy_ids"].size());
    g2.sampling.temperature = 0;
    auto ids = tok.encode(p["prompt_text"].get<std::string>());
    CHECK(ids == p["prompt_ids"].get<std::vector<int32_t>>());
    auto s = generate(c, &tok, ids, g2, nullptr);
    CHECK(s.tokens == p["greedy_ids"].get<std::vector<int32_t>>());
  }
}

TEST_CASE("sampling: same seed same tokens; the filters do what HF's warpers do") {
  auto model = Model::load(stories());
  std::vector<int32_t> prompt = {1, 403};
  auto run = [&](SamplingParams sp, int64_t n = 40) {
    Context ctx(model);
    GenerateOptions g;
    g.max_new_tokens = n;
    g.sampling = sp;
    return generate(ctx, nullptr, prompt, g, nullptr).tokens;
  };
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.seed = 1234;
  auto a = run(sp), b = run(sp);
  CHECK(a == b);
  sp.seed = 99;
  CHECK(run(sp) != a);
  // top_k = 1 is greedy whatever the temperature and seed
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams k1;
  k1.temperature = 5.0f;
  k1.top_k = 1;
  k1.seed = 7;
  CHECK(run(k1) == run(greedy));
  // a tiny top_p keeps only the most likely token: greedy too
  SamplingParams p0;
  p0.temperature = 1.0f;
  p0.top_p = 1e-6f;
  CHECK(run(p0) == run(greedy));
  // min_p = 1 keeps only tokens as likely as the best: greedy
  SamplingParams m1;
  m1.temperature = 1.0f;
  m1.min_p = 1.0f;
  CHECK(run(m1) == run(greedy));
}

TEST_CASE("sampler unit behaviour on hand-made logits") {
  std::vector<float> base = {1.0f, 3.0f, -2.0f, 2.0f, 0.5f};
  SamplingParams rp;
  rp.temperature = 0;
  rp.repetition_penalty = 2.0f;
  Sampler s(rp);
  std::vector<float> l = base;
  std::vector<int32_t> hist = {1, 2};
  CHECK(s.sample(l, hist) == 3);  // 3.0 -> 1.5, so token 3 (2.0) wins
  CHECK(l[1] == doctest::Approx(1.5f));
  CHECK(l[2] == doctest::Approx(-4.0f));  // negative logits are multiplied
  // The empirical distribution of top-k=2 sampling follows softmax over the two best.
  SamplingParams tk;
  tk.temperature = 1.0f;
  tk.top_k = 2;
  tk.seed = 5;
  Sampler s2(tk);
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) {
    std::vector<float> x = base;
    counts[s2.sample(x, {})]++;
  }
  CHECK(counts.size() == 2);
  double p1 = double(counts[1]) / 4000.0, expect = 1.0 / (1.0 + std::exp(-1.0));
  CHECK(std::fabs(p1 - expect) < 0.03);
  SamplingParams bad;
  bad.top_p = 0;
  CHECK_THROWS_AS(Sampler{bad}, Error);
  bad = {};
  bad.temperature = -1;
  CHECK_THROWS_AS(Sampler{bad}, Error);
}

TEST_CASE("stop conditions: eos, max tokens, stop strings (never emitted), callback") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  auto ref = stories_ref();
  auto greedy = ref["greedy_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> prompt = {1};
  {
    Context ctx(model);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = 100;
    g.eos_ids = {greedy[5]};  // pretend the 6th token is an end token
    auto st = generate(ctx, &tok, prompt, g, nullptr);
    CHECK(st.reason == StopReason::Eos);
    CHECK(st.tokens.size() == 5);
  }
  {
    Context ctx(model);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = 200;
    g.stop_strings = {"little girl"};
    std::string text;
    auto st = generate(ctx, &tok, prompt, g, [&](int32_t, std::string_view t) { text += t; return true; });
    CHECK(st.reason == StopReason::StopString);
    CHECK(text == "Once upon a time, there was a ");
  }
  {
    Context ctx(model);
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = 50;
    int calls = 0;
    auto st = generate(ctx, &tok, prompt, g, [&](int32_t, std::string_view) { return ++calls < 3; });
    CHECK(st.reason == StopReason::Callback);
    CHECK(st.tokens.size() == 3);
  }
  {
    Context ctx(model, {8, 4});
    GenerateOptions g;
    g.sampling.temperature = 0;
    g.max_new_tokens = 50;
    auto st = generate(ctx, &tok, prompt, g, nullptr);
    CHECK(st.reason == StopReason::ContextFull);
    CHECK(st.tokens == std::vector<int32_t>(greedy.begin(), greedy.begin() + 8));
  }
}

TEST_CASE("generation defaults come from generation_config.json") {
  auto model = Model::load(model_dir("tinyllama-mini-f16"));
  auto sp = sampling_from_generation_config(model->checkpoint().generation_config());
  CHECK(sp.temperature == doctest::Approx(0.6f));
  CHECK(sp.top_p == doctest::Approx(0.9f));
  auto m3 = Model::load(model_dir("llama-3.2-mini"));
  auto eos = eos_ids_for(m3->config(), m3->checkpoint().generation_config());
  CHECK(eos == std::vector<int32_t>{128001, 128008, 128009});
}

TEST_CASE("the llrt CLI: run --ids/--print-ids, text mode, errors on stderr with non-zero exit") {
  auto ref = stories_ref();
  auto greedy = ref["greedy_ids"].get<std::vector<int32_t>>();
  int st = -1;
  std::string out = run_cli("run " + stories().string() + " --ids 1 --temp 0 -n 12 --print-ids", &st);
  CHECK(st == 0);
  std::string want;
  for (int i = 0; i < 12; ++i) {
    if (i) want += ' ';
    want += std::to_string(greedy[size_t(i)]);
  }
  CHECK(out == want + "\n");
  out = run_cli("run " + stories().string() + " -p \"Once upon a time\" --temp 0 -n 20", &st);
  CHECK(st == 0);
  CHECK(out.find(", there was a little") != std::string::npos);
  // Same seed, same text.
  std::string s1 = run_cli("run " + stories().string() + " --ids 1 --seed 3 --temp 0.8 -n 30 --print-ids", &st);
  std::string s2 = run_cli("run " + stories().string() + " --ids 1 --seed 3 --temp 0.8 -n 30 --print-ids", &st);
  CHECK(s1 == s2);
  run_cli("run /nonexistent --ids 1", &st);
  CHECK(st == 1);
  run_cli("run " + stories().string() + " --ids 1 --top-p 7", &st);
  CHECK(st == 1);
  run_cli("run " + stories().string() + " --ids 999999", &st);
  CHECK(st == 1);
  run_cli("run " + stories().string() + " --bogus", &st);
  CHECK(st == 1);
  // A 16-bit KV cache: stories260K's greedy text holds (its margins are wide); a bad type and
  // a 16-bit cache on CUDA are clear errors.
  for (const char* kv : {"f16", "bf16"}) {
    out = run_cli("run " + stories().string() + " --ids 1 --temp 0 -n 12 --print-ids --kv-type " + kv, &st);
    CHECK(st == 0);
    CHECK_MESSAGE(out == want + "\n", kv);
  }
  run_cli("run " + stories().string() + " --ids 1 --kv-type q4", &st);
  CHECK(st == 1);
  run_cli("run " + stories().string() + " --ids 1 --kv-type f16 --device cuda", &st);
  CHECK(st == 1);
  out = run_cli("tokenize " + stories().string() + " \"Once upon a time\"", &st);
  CHECK(st == 0);
  CHECK(out == "[1, 403, 407, 261, 378]\n");
  out = run_cli("inspect " + stories().string() + " --json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["runnable"] == true);
  CHECK(j["family"] == "Llama (generic LlamaForCausalLM)");
  CHECK(j["memory"]["kv_dtype"] == "F32");
  out = run_cli("inspect " + stories().string() + " --json --kv-type bf16", &st);
  CHECK(st == 0);
  auto j16 = nlohmann::json::parse(out);
  CHECK(j16["memory"]["kv_dtype"] == "BF16");
  CHECK(2 * j16["memory"]["kv_bytes"].get<uint64_t>() == j["memory"]["kv_bytes"].get<uint64_t>());
  run_cli("inspect " + stories().string() + " --kv-type q4", &st);
  CHECK(st == 1);
}

TEST_CASE("the llrt CLI: every number is checked in full, and before anything loads") {
  auto has = [](const std::string& s, const std::string& part) {
    CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s);
  };
  int st = -1;
  // A bad option is reported before the model folder is even looked at: this folder does not
  // exist, and the error is about the option (it used to load the model first, or not complain).
  const std::string none = "/nonexistent/model ";
  struct Case {
    std::string args, says;
  };
  const std::vector<Case> cases = {
      {"run " + none + "--ids 1 --ctx -5", "--ctx: -5 is out of range (must be 1 to 2147483647"},
      {"run " + none + "--ids 1 -t -3", "-t: -3 is out of range (must be 0 to "},
      {"run " + none + "--ids 1 -t 4294967297", "-t: '4294967297' is out of range"},
      {"run " + none + "--ids 1 -t 10000", "-t: 10000 is out of range (must be 0 to "},
      {"run " + none + "--ids 1 -t 3x", "-t: '3x' is not a whole number"},
      {"run " + none + "--ids 1 --batch 0", "--batch: 0 is out of range (must be 1 to 4096"},
      {"run " + none + "--ids 1 --temp -1", "--temp: -1 is out of range (must be >= 0: 0 is greedy)"},
      {"run " + none + "--ids 1 --temp nan", "--temp: 'nan' is not a finite number"},
      {"run " + none + "--ids 1 --temp 1e999", "--temp: '1e999' is out of range"},
      {"run " + none + "--ids 1 --top-p 2", "--top-p: 2 is out of range (must be 0 to 1"},
      {"run " + none + "--ids 1 --top-p 0", "--top-p: 0 keeps no token"},
      {"run " + none + "--ids 1 --min-p 1.5", "--min-p: 1.5 is out of range"},
      {"run " + none + "--ids 1 --repeat-penalty 0", "--repeat-penalty: 0 divides by zero"},
      {"run " + none + "--ids 1 --top-k abc", "--top-k: 'abc' is not a whole number"},
      {"run " + none + "--ids 1 --seed -1", "--seed: '-1' is not a non-negative whole number"},
      {"run " + none + "--ids 1 -n -2", "-n: -2 is out of range (must be -1 to 2147483647: new tokens; -1: until EOS or the context is full)"},
      {"chat " + none + "--temp -1", "--temp: -1 is out of range"},
      {"perplexity " + none + "--file x --ctx -7", "--ctx: -7 is out of range"},
      {"perplexity " + none + "--file x --chunks -1", "--chunks: -1 is out of range"},
      {"bench " + none + "-p 0 -n 0", "bench: -p 0 -n 0 measures nothing"},
      {"bench " + none + "-r 0", "-r: 0 is out of range (must be 1 to 1000)"},
      {"bench " + none + "-p -1", "-p: -1 is out of range"},
      {"inspect " + none + "--ctx -1", "--ctx: -1 is out of range"},
      {"inspect " + none + "-t 99999", "-t: 99999 is out of range"},
      {"run " + none + "--ids \"1 x\"", "--ids: 'x' is not a token id"},
      {"run " + none + "--ids 1 --stop \"\"", "--stop: an empty stop string"},
  };
  for (const Case& c : cases) {
    const std::string out = run_cli_all(c.args, &st);
    CHECK_MESSAGE(st == 1, c.args);
    has(out, "error [InvalidArgument]: " + c.says);
    CHECK_MESSAGE(out.find("/nonexistent") == std::string::npos, c.args << ": " << out);
  }
  has(run_cli_all("run " + none + "--ids 1 -t 10000", &st), "x this machine's " + std::to_string(std::thread::hardware_concurrency()) +
                                                            " logical cores only slows it down");
  // In range they work; 0 threads picks the physical cores; "+2" and "--opt=value" are numbers.
  std::string out = run_cli("run " + stories().string() + " --ids 1 --temp 0 -n 3 --print-ids -t 0 --ctx=64 --batch +2", &st);
  CHECK(st == 0);
  CHECK(out == "403 407 261\n");
  // A context the model cannot address is refused before the load, naming the limit.
  out = run_cli_all("run " + stories().string() + " --ids 1 --ctx 100000", &st);
  CHECK(st == 1);
  has(out, "a context of 100000 positions exceeds the model's max_position_embeddings (512): lower --ctx");
  CHECK(out.find("loading") == std::string::npos);
}

TEST_CASE("llrt inspect: the verdict covers the tokenizer and the context; chat with a template that renders nothing") {
  auto has = [](const std::string& s, const std::string& part) {
    CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s);
  };
  int st = -1;
  // A tokenizer.json that does not load: cannot run, and why (it said "runs here").
  auto dir = copy_model(stories(), "bad-tokenizer");
  spit(dir / "tokenizer.json", "{ \"model\": ");
  std::string out = run_cli("inspect " + dir.string(), &st);
  CHECK(st == 1);
  has(out, "Tokenizer: DOES NOT LOAD: tokenizer: tokenizer.json is not valid JSON");
  has(out, "Verdict: cannot run here - Tokenizer: the tokenizer does not load, so no text can be encoded");
  auto j = nlohmann::json::parse(run_cli("inspect " + dir.string() + " --json", &st));
  CHECK(j["runnable"] == false);
  CHECK(j["tokenizer"]["loads"] == false);
  CHECK(j["error"]["code"] == "Tokenizer");
  std::filesystem::remove_all(dir);
  // No tokenizer at all (a folder of weights only): the same.
  j = nlohmann::json::parse(run_cli("inspect " + model_dir("llama-3.1-mini-sharded").string() + " --json", &st));
  CHECK(st == 1);
  CHECK(j["error"]["code"] == "Tokenizer");
  has(j["error"]["message"].get<std::string>(), "neither tokenizer.json nor tokenizer.model exists");
  // A context over max_position_embeddings (512): flagged, whatever the memory says.
  j = nlohmann::json::parse(run_cli("inspect " + stories().string() + " --json --ctx 1000000", &st));
  CHECK(st == 1);
  CHECK(j["runnable"] == false);
  CHECK(j["error"]["code"] == "ContextOverflow");
  has(j["error"]["message"].get<std::string>(), "a context of 1000000 positions exceeds the model's max_position_embeddings (512)");
  j = nlohmann::json::parse(run_cli("inspect " + stories().string() + " --json --ctx 512", &st));
  CHECK(st == 0);
  CHECK(j["runnable"] == true);
  CHECK(j["tokenizer"]["loads"] == true);
  // A chat template that renders nothing: a clear Template error (was "truncate(-1) outside [0, 0]").
  dir = copy_model(stories(), "empty-template");
  auto cfg = read_json_file(dir / "tokenizer_config.json");
  cfg["chat_template"] = "{% for m in messages %}{% endfor %}";
  spit(dir / "tokenizer_config.json", cfg.dump());
  spit(dir / "in.txt", "hello\n");
  out = run_cli_all("chat " + dir.string() + " -n 4 < " + (dir / "in.txt").string(), &st);
  CHECK(st == 1);
  has(out, "error [Template]: the model's chat template (tokenizer_config.json) rendered no text for this conversation");
  CHECK(out.find("truncate(") == std::string::npos);
  out = run_cli_all("run " + dir.string() + " -p hello --chat -n 4", &st);
  CHECK(st == 1);
  has(out, "error [Template]: the model's chat template (tokenizer_config.json) rendered no text");
  std::filesystem::remove_all(dir);
}

TEST_CASE("non-finite weights: generation and perplexity stop with the step and the first non-finite layer") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  auto has = [](const std::string& s, const std::string& part) {
    CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s);
  };
  const std::vector<int32_t> bos{1};
  GenerateOptions greedy;
  greedy.max_new_tokens = 20;
  greedy.sampling.temperature = 0;
  GenerateOptions sampled = greedy;
  sampled.sampling.temperature = 0.8f;
  sampled.sampling.seed = 7;
  // One NaN in layer 2's down_proj: every position's layer-2 output is NaN (greedy used to emit
  // token 0 forever, sampling a NaN-logit token, perplexity "nan", all "successfully").
  {
    const auto dir = damaged_stories("nan-layer2", {{"model.layers.2.mlp.down_proj.weight", 5, nan}});
    auto model = Model::load(dir);
    for (const GenerateOptions* g : {&greedy, &sampled}) {
      Context ctx(model);
      int64_t tokens = 0;
      Error e = error_of([&] { generate(ctx, nullptr, bos, *g, [&](int32_t, std::string_view) { return ++tokens, true; }); });
      CHECK(e.code() == ErrorCode::NonFinite);
      has(e.what(), "evaluating the prompt (1 tokens): the logits at position 0 are not finite (512 NaN/Inf of 512)");
      has(e.what(), "layer 2 of 5 (model.layers.2.*) is the first whose output is non-finite, at position 0");
      has(e.what(), "llrt inspect --check-weights");
      CHECK(tokens == 0);
      CHECK(ctx.n_past() == 0);  // left as before the call
    }
    Context ctx(model, ContextOptions{128, 16});
    PerplexityOptions po;
    po.method = PerplexityMethod::AllPositions;
    po.chunk = 64;
    po.bos = 1;
    std::vector<int32_t> text(200, 300);
    Error e = error_of([&] { perplexity(ctx, text, po); });
    CHECK(e.code() == ErrorCode::NonFinite);
    has(e.what(), "perplexity chunk 1 (tokens 0..62 of the text): the logits at position 0 are not finite");
    has(e.what(), "layer 2 of 5");
    // The CLI: exit status 1 and the message, for run (greedy and sampled) and perplexity.
    int st = -1;
    std::string out = run_cli_all("run " + dir.string() + " --ids 1 --temp 0 -n 5 --print-ids", &st);
    CHECK(st == 1);
    has(out, "error [NonFinite]: evaluating the prompt");
    has(out, "layer 2 of 5");
    out = run_cli_all("run " + dir.string() + " --ids 1 --temp 0.8 --seed 1 -n 5", &st);
    CHECK(st == 1);
    has(out, "error [NonFinite]");
    const std::string path = (dir / "text.txt").string();
    spit(path, "Once upon a time there was a little girl. She liked to play in the park with her friends.");
    out = run_cli_all("perplexity " + dir.string() + " --file " + path + " --ctx 16 --all-positions", &st);
    CHECK(st == 1);
    has(out, "error [NonFinite]: perplexity chunk 1");
    CHECK(out.find("PPL = nan") == std::string::npos);
    std::filesystem::remove_all(dir);
  }
  // A NaN in the embedding row of the third greedy token (own lm_head): the prompt and two steps
  // run; the step that feeds that token in stops, naming it.
  {
    const auto dir = damaged_stories("nan-embed", {{"model.embed_tokens.weight", 261 * 64 + 3, nan}}, /*untie=*/true);
    auto model = Model::load(dir);
    Context ctx(model);
    std::vector<int32_t> got;
    Error e = error_of([&] { generate(ctx, nullptr, bos, greedy, [&](int32_t id, std::string_view) { return got.push_back(id), true; }); });
    CHECK(e.code() == ErrorCode::NonFinite);
    CHECK(got == std::vector<int32_t>{403, 407, 261});
    has(e.what(), "generation step 3: the logits at position 3 are not finite");
    has(e.what(), "the token embedding of token id 261 (position 3) is non-finite (model.embed_tokens.weight)");
    has(e.what(), "generation stopped");
    std::filesystem::remove_all(dir);
  }
  // An Inf in the final norm, and in the output head: named as such.
  {
    const auto dir = damaged_stories("inf-norm", {{"model.norm.weight", 0, inf}});
    Context ctx(Model::load(dir));
    has(error_of([&] { ctx.eval(bos); }).what(), "the final norm (model.norm.weight) made them");
    std::filesystem::remove_all(dir);
  }
  {
    const auto dir = damaged_stories("nan-head", {{"lm_head.weight", 7 * 64, nan}}, /*untie=*/true);
    Context ctx(Model::load(dir));
    Error e = error_of([&] { ctx.eval(bos); });
    has(e.what(), "(1 NaN/Inf of 512)");
    has(e.what(), "so the output head (lm_head) made them");
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("llrt inspect --check-weights: NaN/Inf tensors by name, for F32, F16 and BF16; the verdict") {
  int st = -1;
  // A clean model: every float tensor scanned, all finite, runs.
  std::string out = run_cli("inspect " + stories().string() + " --check-weights --json", &st);
  CHECK(st == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["runnable"] == true);
  CHECK(j["weights_check"]["float_tensors_scanned"] == 47);
  CHECK(j["weights_check"]["non_finite_tensors"].empty());
  // Without the flag no weight byte is read and there is no weights_check.
  j = nlohmann::json::parse(run_cli("inspect " + stories().string() + " --json", &st));
  CHECK(!j.contains("weights_check"));
  // F32: two damaged tensors, named, with counts and the first index.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const auto dir = damaged_stories("check-f32", {{"model.layers.1.self_attn.q_proj.weight", 9, nan},
                                                 {"model.layers.1.self_attn.q_proj.weight", 100, -inf},
                                                 {"model.layers.4.input_layernorm.weight", 2, inf}});
  out = run_cli("inspect " + dir.string() + " --check-weights --json", &st);
  CHECK(st == 1);
  j = nlohmann::json::parse(out);
  CHECK(j["runnable"] == false);
  CHECK(j["error"]["code"] == "NonFinite");
  const auto& bad = j["weights_check"]["non_finite_tensors"];
  REQUIRE(bad.size() == 2);
  CHECK(bad[0]["name"] == "model.layers.1.self_attn.q_proj.weight");
  CHECK(bad[0]["non_finite"] == 2);
  CHECK(bad[0]["first_index"] == 9);
  CHECK(bad[1]["name"] == "model.layers.4.input_layernorm.weight");
  out = run_cli("inspect " + dir.string() + " --check-weights", &st);
  CHECK(st == 1);
  CHECK(out.find("model.layers.1.self_attn.q_proj.weight (F32): 2 of 4096, first at index 9") != std::string::npos);
  CHECK(out.find("Verdict: cannot run here - NonFinite: 2 tensors hold NaN/Inf") != std::string::npos);
  std::filesystem::remove_all(dir);
  // F16 and BF16 checkpoints: NaN/Inf found by their own bit patterns (0x7e00 / 0x7fc0, 0xfc00).
  for (const auto& [name, pattern] : std::vector<std::pair<std::string, uint16_t>>{{"tinyllama-mini-f16", 0x7e00}, {"llama-3.2-mini", 0x7fc0}}) {
    auto d = copy_model(model_dir(name), "check-16");
    RawSafetensors raw = read_raw(d / "model.safetensors");
    std::string target;
    for (auto it = raw.header.begin(); it != raw.header.end(); ++it)
      if (it.key().find("layers.0.mlp.up_proj.weight") != std::string::npos) target = it.key();
    REQUIRE(!target.empty());
    const std::string dt = raw.header[target]["dtype"].get<std::string>();
    CHECK(dt == (name == "llama-3.2-mini" ? "BF16" : "F16"));
    const uint64_t at = raw.header[target]["data_offsets"][0].get<uint64_t>() + 2 * 17;
    std::memcpy(raw.data.data() + at, &pattern, 2);
    const uint16_t neg_inf = dt == "F16" ? 0xfc00 : 0xff80;
    std::memcpy(raw.data.data() + at + 2 * 40, &neg_inf, 2);
    write_raw(d / "model.safetensors", raw);
    j = nlohmann::json::parse(run_cli("inspect " + d.string() + " --check-weights --json", &st));
    CHECK(st == 1);
    REQUIRE(j["weights_check"]["non_finite_tensors"].size() == 1);
    CHECK(j["weights_check"]["non_finite_tensors"][0]["name"] == target);
    CHECK(j["weights_check"]["non_finite_tensors"][0]["dtype"] == dt);
    CHECK(j["weights_check"]["non_finite_tensors"][0]["non_finite"] == 2);
    CHECK(j["weights_check"]["non_finite_tensors"][0]["first_index"] == 17);
    std::filesystem::remove_all(d);
  }
  // W8A8: the I8 weights cannot be non-finite, their F32/BF16 scales can.
  {
    auto d = copy_model(model_dir("llama-3.1-mini-w8a8"), "check-w8");
    RawSafetensors raw = read_raw(d / "model.safetensors");
    std::string scale;
    for (auto it = raw.header.begin(); it != raw.header.end(); ++it)
      if (it.key().find("layers.0.self_attn.q_proj.weight_scale") != std::string::npos) scale = it.key();
    REQUIRE(!scale.empty());
    const std::string dt = raw.header[scale]["dtype"].get<std::string>();
    const uint64_t at = raw.header[scale]["data_offsets"][0].get<uint64_t>();
    if (dt == "F32") std::memcpy(raw.data.data() + at, &nan, 4);
    else { const uint16_t p = dt == "F16" ? 0x7e00 : 0x7fc0; std::memcpy(raw.data.data() + at, &p, 2); }
    write_raw(d / "model.safetensors", raw);
    j = nlohmann::json::parse(run_cli("inspect " + d.string() + " --check-weights --json", &st));
    CHECK(st == 1);
    REQUIRE(j["weights_check"]["non_finite_tensors"].size() == 1);
    CHECK(j["weights_check"]["non_finite_tensors"][0]["name"] == scale);
    CHECK(j["error"]["code"] == "Checkpoint");  // the quantization contract names it too
    CHECK(j["error"]["message"].get<std::string>().find(scale + ": element 0 is nan") != std::string::npos);
    std::filesystem::remove_all(d);
  }
}

TEST_CASE("perplexity: stories260K equals an independent numpy float64 evaluation; CLI; errors") {
  // tests/data/stories260K/perplexity.json: scripts/stories260K_perplexity.py (llama2.c's
  // forward in numpy float64 on the original weights, chunks of 64 with BOS first).
  const auto ref = read_json_file(repo_dir() / "tests/data/stories260K/perplexity.json");
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  const auto text_ids = ref["text_ids"].get<std::vector<int32_t>>();
  CHECK(tok.encode(ref["text"].get<std::string>(), false) == text_ids);
  std::vector<double> want;
  for (const auto& c : ref["chunks"])
    for (double v : c["nll"].get<std::vector<double>>()) want.push_back(v);
  for (DType kv : {DType::F32, DType::F16}) {
    Context ctx(model, ContextOptions{128, 16, kv});
    PerplexityOptions po;
    po.method = PerplexityMethod::AllPositions;
    po.chunk = ref["chunk"].get<int64_t>();
    po.bos = tok.bos_id();
    po.n_batch = 7;  // logits taken in odd pieces: the same values
    int64_t calls = 0;
    PerplexityResult r = perplexity(ctx, text_ids, po, [&](int64_t c, double) { calls = c; });
    REQUIRE(r.nll.size() == want.size());
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(r.nll[i] - want[i]));
    const double rel = std::fabs(r.ppl() - ref["ppl"].get<double>()) / ref["ppl"].get<double>();
    MESSAGE("stories260K perplexity (" << std::string(dtype_name(kv)) << " KV): " << r.ppl() << " vs numpy f64 "
                                       << ref["ppl"].get<double>() << " (relative " << rel << "), worst token nll diff " << worst);
    CHECK(r.chunks == int64_t(ref["chunks"].size()));
    CHECK(calls == r.chunks);
    CHECK(worst < (kv == DType::F32 ? 1e-4 : 2e-2));
    CHECK(rel < (kv == DType::F32 ? 1e-5 : 1e-3));
    CHECK(r.stderr_nll > 0);
  }
  // errors: nothing to score, chunk too small, chunk beyond the context
  Context small(model, ContextOptions{32, 16});
  PerplexityOptions po;
  po.method = PerplexityMethod::AllPositions;
  po.bos = 1;
  po.chunk = 64;
  CHECK_THROWS_AS(perplexity(small, text_ids, po), Error);
  po.chunk = 2;
  CHECK_THROWS_AS(perplexity(small, text_ids, po), Error);
  po.chunk = 16;
  CHECK_THROWS_AS(perplexity(small, std::vector<int32_t>{}, po), Error);
  po.max_chunks = 2;
  CHECK(perplexity(small, text_ids, po).nll.size() == 30);  // 2 chunks of BOS + 15 tokens
  // the CLI, as a user runs it
  const std::string path = (std::filesystem::temp_directory_path() / "llrt_ppl_text.txt").string();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    const std::string t = ref["text"].get<std::string>();
    std::fwrite(t.data(), 1, t.size(), f);
    std::fclose(f);
  }
  int st = -1;
  const std::string out = run_cli("perplexity " + stories().string() + " --file " + path + " --ctx 64 --json --all-positions", &st);
  CHECK(st == 0);
  const auto j = nlohmann::json::parse(out);
  CHECK(std::fabs(j["ppl"].get<double>() - ref["ppl"].get<double>()) / ref["ppl"].get<double>() < 1e-5);
  CHECK(j["scored_tokens"] == want.size());
  run_cli("perplexity " + stories().string() + " --ctx 64", &st);  // no --file
  CHECK(st == 1);
  run_cli("perplexity " + stories().string() + " --file /nonexistent", &st);
  CHECK(st == 1);
  std::remove(path.c_str());
}

// ---- OpenAI sampling extras (llrt serve): penalties, logit_bias, logprobs, step-wise generation

TEST_CASE("presence and frequency penalties count generated tokens only; defaults change nothing") {
  const std::vector<float> base = {1.0f, 3.0f, -2.0f, 2.0f, 0.5f};
  std::vector<int32_t> hist = {1, 3, 3, 0};  // prompt {1}, generated {3, 3, 0}
  SamplingParams p;
  p.temperature = 0;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = base;
  CHECK(s.sample(l, hist, 3) == 1);        // token 1 is in the prompt only: not penalized
  CHECK(l[1] == doctest::Approx(3.0f));
  CHECK(l[3] == doctest::Approx(2.0f - 0.5f - 2 * 0.25f));
  CHECK(l[0] == doctest::Approx(1.0f - 0.5f - 0.25f));
  CHECK(l[2] == doctest::Approx(-2.0f));
  std::vector<float> l0 = base;
  CHECK(s.sample(l0, hist, 0) == 1);       // nothing generated: nothing penalized
  CHECK(l0 == base);
  SamplingParams off;                      // every default: the logits are untouched
  off.temperature = 0;
  CHECK(!off.modifies_logits());
  Sampler s0(off);
  std::vector<float> l1 = base;
  CHECK(s0.sample(l1, hist, 3) == 1);
  CHECK(l1 == base);
  // A strong enough frequency penalty moves the argmax away from a repeated token.
  SamplingParams f;
  f.temperature = 0;
  f.frequency_penalty = 2.0f;
  Sampler sf(f);
  std::vector<float> l2 = base;
  std::vector<int32_t> gen1 = {1};
  CHECK(sf.sample(l2, gen1, 1) == 3);
}

TEST_CASE("logit_bias is added first; -1e30 bans; an id outside the vocabulary is an error") {
  const std::vector<float> base = {1.0f, 3.0f, -2.0f, 2.0f, 0.5f};
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{1, -1e30f}, {4, 2.0f}};
  Sampler s(p);
  std::vector<float> l = base;
  CHECK(s.sample(l, {}) == 4);  // 0.5 + 2 = 2.5 beats 2.0; token 1 banned
  // Sampling (temperature 1) never draws a banned token.
  SamplingParams t;
  t.temperature = 1.0f;
  t.seed = 3;
  t.logit_bias = {{1, -1e30f}};
  Sampler st(t);
  for (int i = 0; i < 500; ++i) {
    std::vector<float> x = base;
    CHECK(st.sample(x, {}) != 1);
  }
  SamplingParams out;
  out.logit_bias = {{5, 1.0f}};
  Sampler so(out);
  std::vector<float> x = base;
  CHECK_THROWS_AS(so.sample(x, {}), Error);
  SamplingParams nan;
  nan.logit_bias = {{0, std::numeric_limits<float>::quiet_NaN()}};
  CHECK_THROWS_AS(Sampler{nan}, Error);
}

TEST_CASE("token_logprobs: log_softmax of the raw logits, top N most likely first") {
  const std::vector<float> l = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  double z = 0;
  for (float v : l) z += std::exp(double(v));
  auto r = token_logprobs(l, 4, 3);
  CHECK(r.chosen.id == 4);
  CHECK(r.chosen.logprob == doctest::Approx(0.5 - std::log(z)).epsilon(1e-6));
  REQUIRE(r.top.size() == 3);
  CHECK(r.top[0].id == 1);  // tie with 3: the lower id first
  CHECK(r.top[1].id == 3);
  CHECK(r.top[2].id == 0);
  CHECK(r.top[0].logprob == doctest::Approx(3.0 - std::log(z)).epsilon(1e-6));
  double total = 0;
  for (size_t i = 0; i < l.size(); ++i) total += std::exp(token_logprobs(l, int32_t(i), 0).chosen.logprob);
  CHECK(total == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(token_logprobs(l, 0, 0).top.empty());
  CHECK(token_logprobs(l, 0, 99).top.size() == l.size());
  CHECK_THROWS_AS(token_logprobs(l, 5, 1), Error);
}

TEST_CASE("TokenGenerator driven by hand gives generate()'s tokens, text and stop reasons") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  const std::vector<int32_t> prompt = tok.encode("Once upon a time");
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    GenerateOptions g;
    g.max_new_tokens = 40;
    g.eos_ids = {2};
    g.sampling.temperature = variant == 0 ? 0.0f : 0.8f;
    g.sampling.seed = 11;
    if (variant == 2) g.stop_strings = {"Lily"};
    if (variant == 1) g.sampling.presence_penalty = 0.7f;
    Context c1(model);
    std::string text1;
    auto st = generate(c1, &tok, prompt, g, [&](int32_t, std::string_view t) {
      text1 += t;
      return true;
    });
    Context c2(model);
    TokenGenerator gen(&tok, prompt, g, /*top_logprobs=*/2);
    CHECK(!gen.argmax_only());  // logprobs asked for: the full logits are needed
    auto lg = c2.eval(prompt);
    std::string text2;
    TokenGenerator::Step s;
    for (;;) {
      s = gen.next(lg);
      text2 += s.text;
      if (s.id >= 0) {
        REQUIRE(s.logprobs);
        CHECK(s.logprobs->chosen.id == s.id);
        CHECK(s.logprobs->top.size() == 2);
      }
      if (s.done) break;
      lg = c2.eval({&s.id, 1});
    }
    text2 += gen.finish();
    CHECK(gen.tokens() == st.tokens);
    CHECK(text2 == text1);
    CHECK(s.reason == st.reason);
    if (variant == 2) CHECK(s.reason == StopReason::StopString);
  }
  GenerateOptions zero;
  zero.max_new_tokens = 0;
  TokenGenerator g0(&tok, prompt, zero);
  auto s0 = g0.next_argmax(5);
  CHECK(s0.done);
  CHECK(s0.id == -1);
  CHECK(s0.reason == StopReason::MaxTokens);
}

TEST_CASE("TokenGenerator continue_text: the generated text continues the prompt's (SentencePiece spaces kept)") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  const std::vector<int32_t> prompt = tok.encode("Once");
  GenerateOptions g;
  g.max_new_tokens = 12;
  g.sampling.temperature = 0;
  Context ctx(model);
  TokenGenerator gen(&tok, prompt, g, -1, /*continue_text=*/true);
  auto lg = ctx.eval(prompt);
  std::string text;
  for (;;) {
    auto s = gen.next(lg);
    text += s.text;
    if (s.done) break;
    lg = ctx.eval({&s.id, 1});
  }
  text += gen.finish();
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), gen.tokens().begin(), gen.tokens().end());
  const std::string head = tok.decode(prompt, true), full = tok.decode(all, true);
  REQUIRE(full.rfind(head, 0) == 0);
  CHECK(text == full.substr(head.size()));
  CHECK(text.rfind(" upon", 0) == 0);  // "Once" -> " upon": the word-start space stays
  CHECK(tok.decode(gen.tokens(), true).rfind("upon", 0) == 0);  // decoded alone, it is stripped
}
