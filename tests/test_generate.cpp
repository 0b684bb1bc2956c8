// Generation: the shipped stories260K model (real trained weights) end to end, sampling
// semantics, stop conditions, and the CLI as a user runs it.
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <sys/wait.h>

#include "llrt/error.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "llrt/perplexity.h"
#include "reference.h"

using namespace llrt;
using namespace llrt::test;

namespace {
std::filesystem::path stories() { return repo_dir() / "models" / "stories260K"; }
nlohmann::json stories_ref() { return read_json_file(repo_dir() / "tests/data/stories260K/greedy.json"); }

std::string run_cli(const std::string& args, int* status) {
  std::string cmd = std::string(LLRT_BUILD_DIR) + "/tools/llrt " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
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
  const std::string out = run_cli("perplexity " + stories().string() + " --file " + path + " --ctx 64 --json", &st);
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
