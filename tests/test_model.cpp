// Parity of the whole engine with HF transformers (../shared/references), run as a
// user would, through the public API.
//
// Tolerance: our last-position logits must be as close to HF's float32 reference as
// HF's own native-dtype run is (max |native - f32|), and in any case within a floor
// of 2e-4 x max|logit| (which covers F32 models, where native == f32, and summation
// order differences). Tokens are compared only where HF's margin exceeds that tolerance.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "llrt/error.h"
#include "llrt/model.h"
#include "reference.h"
#include "llrt/cuda.h"
#include "llrt/engine.h"
#include "src/engine/model_impl.h"
#include "src/engine/cuda/cuda_loader.h"
#include "src/engine/llama.h"

using namespace llrt;
using namespace llrt::test;

namespace {

// Whether the model BOUND rounded-activation kernels for decode and prefill (every Linear).
bool model_binds_bf16a(const Model& model) {
  int bf16a = 0, all = 0;
  for (const auto& L : model_impl(model).layers)
    for (const LinearWeights& l : L.lin) {
      ++all;
      bf16a += l.decode->atype == DType::BF16 && l.prefill->atype == DType::BF16;
    }
  return all > 0 && bf16a == all;
}

struct ParityResult {
  float err = 0, native_err = 0, scale = 0;
};

int argmax(std::span<const float> v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

// min_greedy: greedy steps that must be compared with a clear margin (default: 4 with an F32
// KV cache, 1 with a 16-bit one, whose own rounding widens the margin needed).
void check_model_parity(const std::string& name, Backend cap, DType kv = DType::F32, int min_greedy = -1) {
  set_isa_cap_for_testing(cap);
  auto model = Model::load(model_dir(name));
  Reference ref = load_reference(name);
  for (size_t pi = 0; pi < ref.f32.prompts.size(); ++pi) {
    const RefPrompt& f = ref.f32.prompts[pi];
    const RefPrompt& nat = ref.native.prompts[pi];
    const size_t V = f.last_logits.size();
    Context ctx(model, ContextOptions{256, 512, kv});
    std::vector<float> all = ctx.eval_all(f.prompt);
    REQUIRE(all.size() == f.prompt.size() * V);
    const float* last = all.data() + (f.prompt.size() - 1) * V;
    float scale = max_abs(f.last_logits.data(), V);
    float err = max_abs_diff(last, f.last_logits.data(), V);
    float native_err = max_abs_diff(nat.last_logits.data(), f.last_logits.data(), V);
    float tol = std::max(native_err, 2e-4f * scale);
    MESSAGE(name << " [" << std::string(backend_name(cap)) << ", " << std::string(dtype_name(kv)) << " KV] prompt " << pi << ": max|ours-f32| = " << err
                 << ", HF native vs f32 = " << native_err << ", |logit| max = " << scale);
    CHECK(err <= tol);
    // Every HF top-8 id at every position has our logit within tol of HF's.
    for (size_t p = 0; p < f.prompt.size(); ++p)
      for (size_t r = 0; r < f.top_ids[p].size(); ++r)
        CHECK(std::fabs(all[p * V + size_t(f.top_ids[p][r])] - f.top_logits[p][r]) <= tol);
    // Greedy continuation through the KV cache, compared while HF's margin is clear.
    const float token_tol = 3 * std::max(err, 1e-5f * scale);
    std::vector<int32_t> gen;
    int next = argmax({last, V});
    size_t compared = 0;
    for (size_t step = 0; step < f.greedy.size(); ++step) {
      // Where HF's float32 margin is within our numeric noise either token is right and
      // the sequences may diverge: stop comparing there.
      if (f.greedy_margins[step] <= token_tol) break;
      CHECK_MESSAGE(next == f.greedy[step], name << " greedy step " << step);
      if (next != f.greedy[step]) break;
      ++compared;
      int32_t tok = next;
      auto lg = ctx.eval({&tok, 1});
      next = argmax(lg);
    }
    MESSAGE("  greedy tokens compared with clear margin: " << compared << "/" << f.greedy.size());
    // A 16-bit cache's own rounding (err) widens token_tol, so fewer steps have a clear margin.
    const size_t need = min_greedy >= 0 ? size_t(min_greedy) : kv == DType::F32 ? 4 : 1;
    CHECK(compared >= std::min<size_t>(need, f.greedy.size()));
  }
  reset_isa_cap_for_testing();
}

}  // namespace

TEST_CASE("parity with HF float32 reference") {
  for (const char* name : {"llama-3.2-mini", "llama-3.1-mini-sharded", "tinyllama-mini-f16", "tinyllama-mini-f32",
                           "deepseek-r1-distill-mini", "llama-3.1-mini-w8a8"}) {
    SUBCASE(name) {
      // (x86: the top level and AVX2; aarch64: the top level and plain NEON; both: the oracle)
      for (Backend b : {Backend::Amx, Backend::Avx2, Backend::NeonI8mm, Backend::Neon, Backend::Ref}) {
        if (!backend_hw_supported(b)) continue;
        check_model_parity(name, b);
      }
    }
  }
}

// The rounded-activation kernels (Linear BF16w/BF16a: x rounded once to BF16, as HF's own
// BF16 run does; chosen where measured faster, forced here with LLRT_ACT=native) on every
// BF16 mini model: held to the same bound, as close to HF's float32 reference as HF's own
// native-dtype run. The model must really bind that kernel (checked through inspect's names).
TEST_CASE("parity with HF float32 reference, BF16-activation kernels") {
  const Backend bf16a = backend_hw_supported(Backend::Avx512Bf16) ? Backend::Avx512Bf16 : Backend::NeonBf16;
  if (!backend_hw_supported(bf16a)) {
    MESSAGE("skipped: this CPU has neither AVX512_BF16 nor FEAT_BF16 (the BF16-activation kernels)");
    return;
  }
  setenv("LLRT_ACT", "native", 1);
  // LLRT_ACT=native is a preference among near-equal kernels; only the rank policy makes it a
  // rule (meson's test env sets it; set here too, so the binary run by hand tests the same).
  setenv("LLRT_KERNEL_CHOICE", "rank", 1);
  for (const char* name : {"llama-3.2-mini", "llama-3.1-mini-sharded", "deepseek-r1-distill-mini"}) {
    SUBCASE(name) {
      set_isa_cap_for_testing(bf16a);
      {
        auto model = Model::load(model_dir(name));
        CHECK(model_binds_bf16a(*model));
      }
      // Rounded activations move the logits by up to ~2/3 of HF's own native error (measured
      // 0.16-1.01 vs 0.30-2.09), so few of HF's greedy margins are clear of 3x that: the
      // logits bound is the test; greedy tokens are compared where the margin allows.
      check_model_parity(name, bf16a, DType::F32, 0);
    }
  }
  unsetenv("LLRT_ACT");
}

// A 16-bit KV cache (ContextOptions::kv_dtype) on the 16-bit models: held to the same bound,
// i.e. as close to HF's float32 reference as HF's own native-dtype run (whose cache is in
// that dtype too). F32 models are not run with it: their bound is the 2e-4 floor. Nor is the
// w8a8 mini model: its int8 activation codes flip under any perturbation of K/V and its
// logits (|66|) move by whole units (measured 3.4-5.0 with a BF16 cache, HF native 4.3-5.7).
TEST_CASE("parity with HF float32 reference, F16 and BF16 KV caches") {
  const std::pair<const char*, DType> runs[] = {{"llama-3.2-mini", DType::BF16}, {"llama-3.2-mini", DType::F16},
                                                {"tinyllama-mini-f16", DType::F16}, {"deepseek-r1-distill-mini", DType::BF16}};
  for (const auto& [name, kv] : runs) {
    SUBCASE((std::string(name) + " " + std::string(dtype_name(kv))).c_str()) {
      for (Backend b : {Backend::Amx, Backend::Avx2, Backend::NeonI8mm, Backend::Neon}) {
        if (!backend_hw_supported(b)) continue;
        check_model_parity(name, b, kv);
      }
    }
  }
}

TEST_CASE("the KV cache dtype: F32/F16/BF16 allocate 4/2/2 bytes per element, others are clear errors") {
  auto model = Model::load(model_dir("llama-3.2-mini"));
  const ModelConfig& c = model->config();
  const uint64_t per_tok_f32 = uint64_t(2 * c.num_hidden_layers * c.kv_dim()) * 4;
  Context f32(model, ContextOptions{128, 16, DType::F32}), f16(model, ContextOptions{128, 16, DType::F16}),
      bf16(model, ContextOptions{128, 16, DType::BF16});
  CHECK(f32.allocated_bytes() - f16.allocated_bytes() == per_tok_f32 / 2 * 128);
  CHECK(f16.allocated_bytes() == bf16.allocated_bytes());
  CHECK(estimate_memory(model->checkpoint(), 128, 16, model->threads(), DType::BF16).kv_bytes == per_tok_f32 / 2 * 128);
  for (DType bad : {DType::I8, DType::F64, DType::I32}) {
    try {
      Context x(model, ContextOptions{128, 16, bad});
      FAIL("KV dtype " << dtype_name(bad) << " accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidArgument);
      CHECK(std::string(e.what()).find("KV cache dtype") != std::string::npos);
    }
  }
}

TEST_CASE("decode with more threads than KV heads: attention split over position ranges equals the unsplit decode") {
  // tinyllama-mini-f16: 2 KV heads; 8 threads -> up to 4 ranges of >= 32 positions per KV head,
  // merged by log-sum-exp. One thread: no split. The logits agree to summation-order noise.
  auto model = Model::load(model_dir("tinyllama-mini-f16"));
  const int64_t V = model->config().vocab_size;
  model->set_threads(1);
  Context one(model, ContextOptions{256, 16});
  model->set_threads(8);
  Context eight(model, ContextOptions{256, 16});
  std::vector<int32_t> prompt;
  for (int i = 0; i < 150; ++i) prompt.push_back(int32_t((i * 37 + 11) % V));
  one.eval(prompt);
  eight.eval(prompt);  // prefill: T * n_kv_heads >= threads, no split
  float worst = 0;
  for (int step = 0; step < 20; ++step) {  // n_kv 151..170: 4 ranges each
    const int32_t tok = int32_t((step * 101 + 7) % V);
    auto a = one.eval({&tok, 1});
    std::vector<float> la(a.begin(), a.end());
    auto b = eight.eval({&tok, 1});
    worst = std::max(worst, max_abs_diff(la.data(), b.data(), size_t(V)) / max_abs(la.data(), size_t(V)));
  }
  MESSAGE("split-attention decode vs one thread: max relative logit diff " << worst);
  CHECK(worst < 1e-5f);
  model->set_threads(0);
}

TEST_CASE("prefill of N tokens equals N decode steps") {
  auto model = Model::load(model_dir("llama-3.1-mini-sharded"));
  std::vector<int32_t> toks = {1, 17, 300, 41, 9, 1000, 22, 5, 77, 3000, 12, 4095, 0, 8};
  Context a(model, {64, 512}), b(model, {64, 512}), c(model, {64, 4});
  std::vector<float> all = a.eval_all(toks);
  const size_t V = size_t(model->config().vocab_size);
  float worst = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    auto lg = b.eval({&toks[i], 1});
    worst = std::max(worst, max_abs_diff(lg.data(), all.data() + i * V, V) / max_abs(lg.data(), V));
  }
  auto chunked = c.eval(toks);  // prefill in chunks of 4
  float chunk_err = max_abs_diff(chunked.data(), all.data() + (toks.size() - 1) * V, V) / max_abs(chunked.data(), V);
  MESSAGE("prefill vs decode: max relative diff " << worst << ", chunked: " << chunk_err);
  CHECK(worst < 2e-4f);
  CHECK(chunk_err < 2e-4f);
  CHECK(a.n_past() == int64_t(toks.size()));
}

TEST_CASE("context overflow and bad token ids are clear errors, state unchanged") {
  auto model = Model::load(model_dir("llama-3.1-mini-sharded"));
  Context ctx(model, {8, 4});
  std::vector<int32_t> toks(6, 5);
  ctx.eval(toks);
  std::vector<int32_t> more(3, 5);
  CHECK_THROWS_WITH_AS(ctx.eval(more), doctest::Contains("context is full"), Error);
  CHECK(ctx.n_past() == 6);
  int32_t bad = 4096;
  CHECK_THROWS_WITH_AS(ctx.eval({&bad, 1}), doctest::Contains("outside the vocabulary"), Error);
  int32_t neg = -1;
  CHECK_THROWS_AS(ctx.eval({&neg, 1}), Error);
  CHECK(ctx.n_past() == 6);
  ctx.truncate(2);
  CHECK(ctx.n_past() == 2);
  CHECK_THROWS_AS(Context(model, {1 << 30, 4}), Error);  // beyond max_position_embeddings
}

TEST_CASE("llrt::open: the device choice with its reason, sessions from one engine, errors before the load") {
  const auto dir = model_dir("llama-3.2-mini");
  // Cpu as asked: same logits as a Context on Model::load.
  OpenOptions o;
  o.device = DeviceChoice::Cpu;
  std::vector<std::string> said;
  o.progress = [&](const std::string& s) { said.push_back(s); };
  auto eng = llrt::open(dir, o);
  CHECK(std::string(eng->device()) == "cpu");
  CHECK(eng->device_reason() == "asked for");
  REQUIRE(eng->cpu_model());
  CHECK(!eng->cuda_model());
  REQUIRE(!said.empty());
  CHECK(said[0].rfind("loading ", 0) == 0);
  auto s1 = eng->new_session({64, 16, DType::F32});
  auto s2 = eng->new_session({64, 16, DType::BF16});
  const std::vector<int32_t> ids = {1, 5, 9, 13};
  const auto l1 = s1->eval(ids);
  const std::vector<float> got(l1.begin(), l1.end());
  Context ref(Model::load(dir), ContextOptions{64, 16, DType::F32});
  const auto lr = ref.eval(ids);
  CHECK(std::equal(lr.begin(), lr.end(), got.begin()));  // the same engine, the same bits
  CHECK(s1->n_past() == 4);
  CHECK(s2->n_past() == 0);  // sessions are independent sequences
  s2->eval(ids);
  CHECK(s2->n_past() == 4);
  // Auto: the CPU here unless a GPU runs the model; the reason names the rule that decided.
  o.device = DeviceChoice::Auto;
  auto auto_eng = llrt::open(dir, o);
  if (!cuda_available()) {
    CHECK(std::string(auto_eng->device()) == "cpu");
    // Without the NVIDIA driver auto does not even load the CUDA module: the driver's answer.
    std::string no_driver;
    CHECK(auto_eng->device_reason() == (cuda_driver_present(&no_driver) ? cuda_status() : no_driver));
    // Cuda asked for without a GPU: a typed error, nothing loaded.
    o.device = DeviceChoice::Cuda;
    CHECK_THROWS_AS(llrt::open(dir, o), Error);
  }
  o.device = DeviceChoice::Auto;
  o.kv_dtype = DType::F16;
  CHECK(llrt::open(dir, o)->device_reason().find("KV cache in F32") != std::string::npos);
  // A context beyond max_position_embeddings: refused before anything loads.
  said.clear();
  o.n_ctx = 1 << 30;
  CHECK_THROWS_AS(llrt::open(dir, o), Error);
  CHECK(said.empty());
  CHECK_THROWS_AS(parse_device_choice("gpu"), Error);
  CHECK(parse_device_choice("cuda") == DeviceChoice::Cuda);
}
