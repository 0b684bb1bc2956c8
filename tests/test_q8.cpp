// w8a8 (compressed-tensors int8): the I8 Linear kernels against the documented
// arithmetic (bit for bit, every usable backend), the quantization_config contract
// (good configs, a catalogue of malformed ones), module matching, per-Linear tensor
// validation, and the generated variant checkpoints in tests/data/w8a8 with their
// float64 references (scripts/w8a8/make_variants.py).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llrt/checkpoint.h"
#include "llrt/error.h"
#include "src/quant/quant.h"
#include "llrt/safetensors.h"
#include "test_data.h"
#include "src/io/config_json.h"

using namespace llrt;
using json = nlohmann::json;

namespace {

// ------------------------------------------------------------------ helpers

std::vector<Backend> q8_backends() {
  std::vector<Backend> v;
  for (const auto& e : KernelRegistry::global().all())
    if (e.op == Op::Linear && e.wtype == DType::I8 && e.atype == DType::F32 && backend_is_cpu(e.backend))
      v.push_back(e.backend);  // (the CUDA one: tests/test_cuda.cpp)
  return v;
}

struct Buf {
  AlignedBuffer p;
  explicit Buf(size_t n) : p(aligned_alloc_bytes(std::max<size_t>(n, 64))) {}
  void* get() const { return p.get(); }
};

// The documented arithmetic (include/llrt/quant.h), written independently of the
// kernels' shared prep: codes, scale and zero point of one token.
struct TokenQ {
  std::vector<int32_t> q;
  float s = 0;
  int32_t zp = 0;
};
float clampf(float v) { return std::min(std::max(v, -128.0f), 127.0f); }
TokenQ quantize_token(const float* x, int64_t K, const ActQuantParams& p) {
  TokenQ t;
  t.q.assign(size_t(K), 0);
  for (int64_t k = 0; k < K; ++k)
    if (!std::isfinite(x[k])) {
      t.s = NAN;
      return t;
    }
  if (p.mode == ActQuantMode::DynamicSymmetric) {
    float a = 0;
    for (int64_t k = 0; k < K; ++k) a = std::max(a, std::fabs(x[k]));
    t.s = a / 127.0f;
    if (a == 0) return t;
    const float mul = std::min(127.0f / a, std::numeric_limits<float>::max());
    for (int64_t k = 0; k < K; ++k) t.q[size_t(k)] = int32_t(clampf(std::nearbyint(x[k] * mul)));
    return t;
  }
  if (p.mode == ActQuantMode::DynamicAsymmetric) {
    float lo = 0, hi = 0;
    for (int64_t k = 0; k < K; ++k) lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
    t.s = (hi - lo) / 255.0f;
    if (t.s == 0) return t;
    t.zp = int32_t(clampf(std::nearbyint(-128.0f - lo / t.s)));
  } else {
    t.s = p.scale;
    t.zp = p.zero_point;
  }
  for (int64_t k = 0; k < K; ++k) t.q[size_t(k)] = int32_t(clampf(std::nearbyint(x[k] / t.s) + float(t.zp)));
  return t;
}

struct Problem {
  int64_t M = 1, N = 1, K = 1;
  std::vector<float> x;       // [M, K]
  std::vector<int8_t> w;      // [N, K]
  std::vector<uint16_t> ws16; // BF16 or F16 scales
  std::vector<float> ws32;
  DType ws_dtype = DType::BF16;
  bool per_channel = true;
  ActQuantParams act;
  const void* ws() const { return ws_dtype == DType::F32 ? static_cast<const void*>(ws32.data()) : ws16.data(); }
  float wscale(int64_t n) const {
    const size_t i = size_t(per_channel ? n : 0);
    if (ws_dtype == DType::F32) return ws32[i];
    return ws_dtype == DType::F16 ? f16_to_f32(ws16[i]) : bf16_to_f32(ws16[i]);
  }
};

Problem make_problem(int64_t M, int64_t N, int64_t K, ActQuantMode mode, DType ws_dtype, bool per_channel,
                     uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p;
  p.M = M, p.N = N, p.K = K, p.ws_dtype = ws_dtype, p.per_channel = per_channel;
  std::uniform_int_distribution<int> wd(-128, 127);
  p.w.resize(size_t(N * K));
  for (auto& v : p.w) v = int8_t(wd(rng));
  // Every row holds the extreme codes -128 and 127 (when it has room).
  for (int64_t n = 0; n < N; ++n) {
    p.w[size_t(n * K)] = -128;
    if (K > 1) p.w[size_t(n * K + K - 1)] = 127;
  }
  std::normal_distribution<float> xd(0.0f, 1.0f);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  p.x.resize(size_t(M * K));
  for (auto& v : p.x) v = xd(rng) + 0.3f;
  for (int64_t m = 0; m < M; ++m) {  // outliers
    p.x[size_t(m * K + (m * 7) % K)] *= 60.0f;
    if (K > 3) p.x[size_t(m * K + (m * 13 + 3) % K)] = -45.0f * (1.0f + u01(rng));
  }
  if (M > 2) std::fill(p.x.begin() + 2 * K, p.x.begin() + 3 * K, 0.0f);  // an all-zero token
  const int64_t ns = per_channel ? N : 1;
  std::uniform_real_distribution<float> sd(0.001f, 0.02f);
  for (int64_t i = 0; i < ns; ++i) {
    const float s = sd(rng);
    p.ws32.push_back(s);
    p.ws16.push_back(ws_dtype == DType::F16 ? f32_to_f16(s) : f32_to_bf16(s));
  }
  p.act.mode = mode;
  if (mode == ActQuantMode::Static) {
    p.act.scale = 0.11f;        // clamps the outliers (both ends)
    p.act.zero_point = int32_t(seed % 3) * 40 - 40;  // -40, 0 or 40
  }
  return p;
}

// Expected output per the contract: exact integer sum, then (float(acc) * s) * ws.
std::vector<float> expected(const Problem& p, std::vector<double>* as_double = nullptr) {
  std::vector<float> y(size_t(p.M * p.N));
  if (as_double) as_double->assign(y.size(), 0.0);
  for (int64_t m = 0; m < p.M; ++m) {
    const TokenQ t = quantize_token(p.x.data() + m * p.K, p.K, p.act);
    for (int64_t n = 0; n < p.N; ++n) {
      int64_t acc = 0;
      for (int64_t k = 0; k < p.K; ++k) acc += (int64_t(t.q[size_t(k)]) - t.zp) * p.w[size_t(n * p.K + k)];
      REQUIRE(acc == int64_t(int32_t(acc)));
      y[size_t(m * p.N + n)] = (float(int32_t(acc)) * t.s) * p.wscale(n);
      if (as_double) (*as_double)[size_t(m * p.N + n)] = double(acc) * double(t.s) * double(p.wscale(n));
    }
  }
  return y;
}

// Runs kernel `k` the way the engine does: prep split over two token ranges, run
// split over two row ranges.
std::vector<float> run_kernel(const LinearKernel& k, const Problem& p) {
  Buf buf(k.prep_bytes(p.M, p.K));
  const int64_t mh = p.M / 2;
  REQUIRE(k.prep_splits);
  k.prep(LinearPrepArgs{p.x.data(), p.K, p.M, p.K, 0, mh, &p.act, buf.get()});
  k.prep(LinearPrepArgs{p.x.data(), p.K, p.M, p.K, mh, p.M, &p.act, buf.get()});
  std::vector<float> y(size_t(p.M * p.N), -777.0f);
  LinearArgs a;
  a.w.data = p.w.data();
  a.w.dtype = DType::I8;
  a.K = p.K;
  a.w.scales = p.ws();
  a.w.scale_dtype = p.ws_dtype;
  a.w.granularity = p.per_channel ? ScaleGranularity::Channel : ScaleGranularity::Tensor;
  a.w.act = p.act;
  a.xp = buf.get();
  a.y = y.data();
  a.ldy = p.N;
  a.M = p.M;
  const int64_t nh = std::min<int64_t>(5, p.N);
  a.n0 = 0, a.n1 = nh;
  k.run(a);
  a.n0 = nh, a.n1 = p.N;
  k.run(a);
  return y;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

const char* mode_name(ActQuantMode m) {
  return m == ActQuantMode::DynamicSymmetric ? "dynamic-sym" : m == ActQuantMode::DynamicAsymmetric ? "dynamic-asym" : "static";
}

}  // namespace

// ====================================================================== kernels

TEST_CASE("q8 kernels: every usable backend computes the documented arithmetic bit for bit") {
  const auto backends = q8_backends();
  REQUIRE(backends.size() >= 1);
  const int64_t Ks[] = {1, 5, 31, 32, 33, 64, 100, 128, 257, 1024, 4097};  // 64/128/1024: AMX tiles
  const int64_t Ms[] = {1, 2, 17, 65};
  const ActQuantMode modes[] = {ActQuantMode::DynamicSymmetric, ActQuantMode::DynamicAsymmetric, ActQuantMode::Static};
  const DType sdt[] = {DType::BF16, DType::F16, DType::F32};
  for (Backend b : backends) {
    if (!backend_hw_supported(b)) {
      MESSAGE("I8 Linear " << std::string(backend_name(b)) << ": not supported by this CPU (status, not a failure)");
      continue;
    }
    const LinearKernel& k = linear_q8_kernel(b);
    int cases = 0;
    uint32_t seed = 1;
    for (int64_t K : Ks)
      for (int64_t M : Ms)
        for (ActQuantMode mode : modes) {
          ++seed;
          if (K >= 1024 && M == 65 && mode != ActQuantMode::DynamicSymmetric) continue;  // time
          const int64_t N = (seed % 4 == 0) ? 6 : (seed % 4 == 1) ? 13 : (seed % 4 == 2) ? 37 : 53;  // AMX: 16/32-row tiles + rest
          const Problem p = make_problem(M, N, K, mode, sdt[seed % 3], seed % 4 != 0, seed);
          std::vector<double> yd;
          const auto want = expected(p, &yd);
          const auto got = run_kernel(k, p);
          int bad = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            if (!same_bits(got[i], want[i]) && bad++ < 3)
              FAIL_CHECK(std::string(backend_name(b)) << " K=" << K << " M=" << M << " N=" << N << " " << std::string(mode_name(mode))
                                         << " ws=" << std::string(dtype_name(p.ws_dtype)) << " at " << i << ": got " << got[i]
                                         << " want " << want[i]);
            // and the float result against the float64 product (2 F32 roundings)
            if (std::isfinite(yd[i]))
              CHECK(std::fabs(double(got[i]) - yd[i]) <= 3e-7 * std::fabs(yd[i]) + 1e-30);
          }
          ++cases;
        }
    MESSAGE("I8 Linear " << std::string(backend_name(b)) << ": " << cases << " shapes bit-identical to the contract");
  }
}

TEST_CASE("q8 kernels: extreme codes (-128 weights and activations, K = 65536) are exact") {
  // Largest magnitude the contract allows: (q - zp) = -128 - 127 = -255 against w = -128
  // for K = 65536: 2,139,095,040 (just below 2^31). Also -128 x +127 and mixed rows.
  const int64_t K = 65536, N = 3, M = 2;
  Problem p;
  p.M = M, p.N = N, p.K = K, p.ws_dtype = DType::F32, p.per_channel = true;
  p.w.assign(size_t(N * K), -128);
  for (int64_t k = 0; k < K; ++k) p.w[size_t(1 * K + k)] = 127;                    // row 1: all 127
  for (int64_t k = 0; k < K; ++k) p.w[size_t(2 * K + k)] = int8_t(k % 2 ? -128 : 127);  // row 2: mixed
  p.ws32 = {1.0f, 1.0f, 1.0f};
  p.x.assign(size_t(M * K), -1000.0f);  // codes clamp to -128
  for (int64_t k = 0; k < K; ++k) p.x[size_t(K + k)] = 1000.0f;  // token 1: codes 127
  p.act.mode = ActQuantMode::Static;
  p.act.scale = 1.0f;
  p.act.zero_point = 127;
  const auto want = expected(p);
  CHECK(want[0] == float(int64_t(-255) * -128 * K));
  for (Backend b : q8_backends()) {
    if (!backend_hw_supported(b)) continue;
    const auto got = run_kernel(linear_q8_kernel(b), p);
    for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(same_bits(got[i], want[i]), std::string(backend_name(b)) << " at " << i);
  }
  // Dynamic symmetric: an all -128 weight row against codes +-127.
  p.act = {};
  const auto want2 = expected(p);
  for (Backend b : q8_backends()) {
    if (!backend_hw_supported(b)) continue;
    const auto got = run_kernel(linear_q8_kernel(b), p);
    for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(same_bits(got[i], want2[i]), std::string(backend_name(b)) << " at " << i);
  }
}

TEST_CASE("q8 kernels: a token with Inf/NaN gives NaN outputs, a zero token gives zeros") {
  for (Backend b : q8_backends()) {
    if (!backend_hw_supported(b)) continue;
    for (ActQuantMode mode : {ActQuantMode::DynamicSymmetric, ActQuantMode::DynamicAsymmetric, ActQuantMode::Static}) {
      Problem p = make_problem(3, 7, 70, mode, DType::BF16, true, 99);
      p.x[5] = NAN;
      p.x[size_t(1 * 70 + 9)] = INFINITY;
      const auto got = run_kernel(linear_q8_kernel(b), p);
      for (int64_t n = 0; n < 7; ++n) {
        CHECK(std::isnan(got[size_t(n)]));
        CHECK(std::isnan(got[size_t(7 + n)]));
        CHECK(got[size_t(14 + n)] == 0.0f);  // token 2 is all zeros
      }
    }
  }
}

TEST_CASE("q8 registry: I8 Linear variants registered and chosen by ISA level") {
  const auto& reg = KernelRegistry::global();
  REQUIRE(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Ref));
#if LLRT_HAVE_X86_KERNELS
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Avx2));
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::AvxVnni));
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Avx512Vnni));
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Amx));
  CHECK(std::string(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Avx512Vnni)->name) ==
        "linear_i8w_f32a__avx512_vnni");
#endif
#if LLRT_HAVE_ARM_KERNELS
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::Neon));
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::NeonDotprod));
  CHECK(reg.find(Op::Linear, DType::I8, DType::F32, Backend::NeonI8mm));
  CHECK(std::string(reg.find(Op::Linear, DType::I8, DType::F32, Backend::NeonDotprod)->name) ==
        "linear_i8w_f32a__neondot");
#endif
  struct Case { Backend cap; Backend want; };
  for (Case c : {Case{Backend::Ref, Backend::Ref}, Case{Backend::Avx2, Backend::Avx2},
                 Case{Backend::AvxVnni, Backend::AvxVnni}, Case{Backend::Avx512, Backend::AvxVnni},
                 Case{Backend::Avx512Vnni, Backend::Avx512Vnni}, Case{Backend::Avx512Bf16, Backend::Avx512Vnni},
                 Case{Backend::Amx, Backend::Amx}, Case{Backend::Neon, Backend::Neon},
                 Case{Backend::NeonDotprod, Backend::NeonDotprod}, Case{Backend::NeonBf16, Backend::NeonDotprod},
                 Case{Backend::NeonI8mm, Backend::NeonI8mm}}) {
    if (!backend_hw_supported(c.want)) continue;
    set_isa_cap_for_testing(c.cap);
    const KernelEntry* e = reg.find_best(Op::Linear, DType::I8, DType::F32);
    REQUIRE(e);
    CHECK_MESSAGE(e->backend == c.want, "cap " << backend_name(c.cap) << " chose " << e->name);
  }
  set_isa_cap_for_testing(Backend::Ref);  // LLRT_ISA=ref: the oracle, asked for explicitly
  CHECK(reg.find_best(Op::Linear, DType::I8, DType::F32)->backend == Backend::Ref);
  // LLRT_ISA=none (a CPU without AVX2): the clean failure path, a typed error naming the op and dtype.
  set_isa_cap_for_testing(Backend::Ref, false);
  CHECK(reg.find_best(Op::Linear, DType::I8, DType::F32) == nullptr);
  const std::vector<KernelNeed> need = {{Op::Linear, DType::I8, DType::F32, "w8a8 linear layers"}};
  CHECK_THROWS_WITH_AS(require_kernels(need), doctest::Contains("I8"), Error);
  try {
    require_kernels(need);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::UnsupportedKernel);
  }
  reset_isa_cap_for_testing();
  CHECK_THROWS_AS(linear_q8_kernel(Backend::Cuda), Error);
}

// ====================================================================== config

namespace {

json shared_qc() {
  return read_json_file(test::model_dir("llama-3.1-mini-w8a8") / "config.json")["quantization_config"];
}

void expect_error(const json& qc, ErrorCode code, std::vector<std::string> needles, const char* what) {
  try {
    (void)parse_quantization_config(qc);
    FAIL_CHECK(what << ": no error");
  } catch (const Error& e) {
    CHECK_MESSAGE(e.code() == code, what << ": code " << error_code_name(e.code()) << " (" << e.what() << ")");
    for (const auto& n : needles)
      CHECK_MESSAGE(std::string(e.what()).find(n) != std::string::npos, what << ": '" << n << "' not in: " << e.what());
  }
}

}  // namespace

TEST_CASE("q8 config: the shared w8a8 checkpoint's quantization_config") {
  const QuantConfig qc = parse_quantization_config(shared_qc());
  CHECK(qc.quant_method == "compressed-tensors");
  CHECK(qc.format == "int-quantized");
  CHECK(qc.version == "0.9.1");
  REQUIRE(qc.groups.size() == 1);
  const QuantScheme& s = qc.groups[0];
  CHECK(s.group == "group_0");
  CHECK(s.weight_strategy == QuantWeightStrategy::Channel);
  CHECK(s.act_kind == QuantActKind::DynamicToken);
  CHECK(s.act_symmetric);
  CHECK(qc.resolve("model.layers.0.self_attn.q_proj") == &s);
  CHECK(qc.resolve("model.layers.3.mlp.down_proj") == &s);
  CHECK(qc.resolve("lm_head") == nullptr);
  CHECK(qc.resolve("model.embed_tokens", {"Embedding", "Module"}) == nullptr);
  const LlamaQuantPlan plan = plan_llama_quantization(qc, 4, false);
  CHECK(plan.quantized_count() == 28);
  CHECK(plan.lm_head == nullptr);
  CHECK(s.describe().find("per-channel") != std::string::npos);
}

TEST_CASE("q8 config: harmless keys, presets, per-group formats, precedence") {
  json qc = shared_qc();
  auto& w = qc["config_groups"]["group_0"]["weights"];
  w["observer"] = "mse";
  w["observer_kwargs"] = {{"maxshrink", 0.2}};
  w["actorder"] = "weight";  // calibration-only ordering
  w["scale_dtype"] = "torch.bfloat16";
  qc["global_compression_ratio"] = 1.6;
  qc["version"] = "0.10.2";
  qc["run_compressed"] = true;
  qc["sparsity_config"] = nullptr;
  qc["transform_config"] = json::object();
  CHECK_NOTHROW(parse_quantization_config(qc));

  // Preset groups: {"W8A8": ["Linear"]}, strategy inferred from group_size.
  json pre = {{"quant_method", "compressed-tensors"}, {"quantization_status", "compressed"},
              {"format", "int-quantized"}, {"config_groups", {{"W8A8", {"Linear"}}}}, {"ignore", {"lm_head"}}};
  QuantConfig p = parse_quantization_config(pre);
  REQUIRE(p.groups.size() == 1);
  CHECK(p.groups[0].weight_strategy == QuantWeightStrategy::Channel);
  CHECK(p.resolve("model.layers.0.mlp.up_proj") != nullptr);
  json inf = shared_qc();
  inf["config_groups"]["group_0"]["weights"].erase("strategy");
  inf["config_groups"]["group_0"]["weights"]["group_size"] = -1;
  CHECK(parse_quantization_config(inf).groups[0].weight_strategy == QuantWeightStrategy::Channel);
  inf["config_groups"]["group_0"]["weights"]["group_size"] = nullptr;
  CHECK(parse_quantization_config(inf).groups[0].weight_strategy == QuantWeightStrategy::Tensor);

  // mixed-precision with per-group formats; exact name > regex > class; UNQUANTIZED.
  json mp = shared_qc();
  mp["format"] = "mixed-precision";
  mp["config_groups"]["group_0"]["format"] = "int-quantized";
  json g1 = mp["config_groups"]["group_0"];
  g1["targets"] = {"re:.*mlp\\.(gate|up)_proj$"};
  g1["format"] = "naive-quantized";
  g1["input_activations"]["symmetric"] = false;
  mp["config_groups"]["group_1"] = g1;
  json g2 = g1;
  g2["targets"] = {"model.layers.2.mlp.up_proj"};
  g2["weights"]["strategy"] = "tensor";
  mp["config_groups"]["group_2"] = g2;
  mp["config_groups"]["UNQUANTIZED"] = {"model.layers.0.self_attn.v_proj"};
  QuantConfig m = parse_quantization_config(mp);
  CHECK(m.resolve("model.layers.1.self_attn.q_proj")->group == "group_0");
  CHECK(m.resolve("model.layers.1.mlp.gate_proj")->group == "group_1");
  CHECK(m.resolve("model.layers.1.mlp.gate_proj")->format == "naive-quantized");
  CHECK(m.resolve("model.layers.2.mlp.up_proj")->group == "group_2");
  CHECK(m.resolve("model.layers.1.mlp.down_proj")->group == "group_0");
  CHECK(m.resolve("model.layers.0.self_attn.v_proj") == nullptr);
  CHECK(m.resolve("lm_head") == nullptr);
}

TEST_CASE("q8 config: ignore and targets use Python re.match semantics") {
  json qc = shared_qc();
  qc["ignore"] = {"lm_head", "re:.*down_proj", "re:model\\.layers\\.1\\.", "re:(?P<a>model)\\.layers\\.3\\.self_attn\\.[qk]_proj$",
                  "model.layers.2.mlp.gate_proj"};
  const QuantConfig c = parse_quantization_config(qc);
  CHECK(c.resolve("model.layers.0.mlp.down_proj") == nullptr);   // .* prefix
  CHECK(c.resolve("model.layers.10.mlp.up_proj") != nullptr);    // "model.layers.1." needs the dot
  CHECK(c.resolve("model.layers.1.mlp.up_proj") == nullptr);     // anchored at start, not at end
  CHECK(c.resolve("model.layers.3.self_attn.q_proj") == nullptr);
  CHECK(c.resolve("model.layers.3.self_attn.v_proj") != nullptr);
  CHECK(c.resolve("model.layers.2.mlp.gate_proj") == nullptr);   // exact name
  CHECK(c.resolve("model.layers.2.mlp.up_proj") != nullptr);
  json q2 = shared_qc();
  q2["ignore"] = {"re:down_proj"};  // re.match anchors at the start: does not match
  CHECK(parse_quantization_config(q2).resolve("model.layers.0.mlp.down_proj") != nullptr);
  q2["ignore"] = {"Linear"};  // class names in ignore (compressed-tensors matches classes too)
  CHECK(parse_quantization_config(q2).resolve("model.layers.0.mlp.down_proj") == nullptr);

  CHECK(python_regex_to_ecmascript("\\Amodel\\.(?P<n>\\d+)\\Z", "t") == "^model\\.(\\d+)$");
  CHECK(python_regex_to_ecmascript("[\\]A]x", "t") == "[\\]A]x");
  CHECK_THROWS_WITH_AS(python_regex_to_ecmascript("(?i)lm_head", "t"), doctest::Contains("inline flags"), Error);
  CHECK_THROWS_WITH_AS(python_regex_to_ecmascript("(?<=mlp)\\.down", "t"), doctest::Contains("lookbehind"), Error);
  CHECK_THROWS_WITH_AS(python_regex_to_ecmascript("a++", "t"), doctest::Contains("possessive"), Error);
  CHECK_THROWS_WITH_AS(python_regex_to_ecmascript("(?P<x>a)(?P=x)", "t"), doctest::Contains("backreference"), Error);
}

TEST_CASE("q8 config: malformed and unsupported quantization configs give their errors") {
  const auto U = ErrorCode::UnsupportedModel, C = ErrorCode::Config;
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    ErrorCode code;
    std::vector<std::string> needles;
  };
  const std::string G = "quantization_config.config_groups.group_0";
  const std::vector<Case> cases = {
      {"quant_method gptq", [](json& q) { q["quant_method"] = "gptq"; }, U, {"quant_method", "\"gptq\""}},
      {"quant_method missing", [](json& q) { q.erase("quant_method"); }, C, {"quant_method", "required"}},
      {"status frozen", [](json& q) { q["quantization_status"] = "frozen"; }, U, {"quantization_status", "\"frozen\""}},
      {"status missing", [](json& q) { q.erase("quantization_status"); }, C, {"quantization_status"}},
      {"format pack-quantized", [](json& q) { q["format"] = "pack-quantized"; }, U, {"format", "\"pack-quantized\""}},
      {"format float-quantized", [](json& q) { q["format"] = "float-quantized"; }, U, {"\"float-quantized\""}},
      {"format dense", [](json& q) { q["format"] = "dense"; }, U, {"format", "\"dense\""}},
      {"group format marlin-24", [](json& q) { q["config_groups"]["group_0"]["format"] = "marlin-24"; }, U, {G + ".format", "marlin-24"}},
      {"mixed-precision without group format", [](json& q) { q["format"] = "mixed-precision"; }, C, {"format", "group_0"}},
      {"weights num_bits 4", [](json& q) { q["config_groups"]["group_0"]["weights"]["num_bits"] = 4; }, U, {G + ".weights.num_bits = 4"}},
      {"weights type float (fp8)", [](json& q) { q["config_groups"]["group_0"]["weights"]["type"] = "float"; }, U, {G + ".weights.type = \"float\""}},
      {"weights group strategy", [](json& q) { auto& w = q["config_groups"]["group_0"]["weights"]; w["strategy"] = "group"; w["group_size"] = 128; }, U, {"group_size = 128"}},
      {"weights group_size with channel", [](json& q) { q["config_groups"]["group_0"]["weights"]["group_size"] = 64; }, U, {G + ".weights.group_size = 64"}},
      {"weights block", [](json& q) { auto& w = q["config_groups"]["group_0"]["weights"]; w["strategy"] = "block"; w["block_structure"] = {128, 128}; }, U, {"block_structure = [128,128]"}},
      {"weights strategy token", [](json& q) { q["config_groups"]["group_0"]["weights"]["strategy"] = "token"; }, U, {G + ".weights.strategy = \"token\""}},
      {"weights asymmetric", [](json& q) { q["config_groups"]["group_0"]["weights"]["symmetric"] = false; }, U, {G + ".weights.symmetric = false"}},
      {"weights dynamic", [](json& q) { q["config_groups"]["group_0"]["weights"]["dynamic"] = true; }, U, {G + ".weights.dynamic = true"}},
      {"weights actorder group", [](json& q) { q["config_groups"]["group_0"]["weights"]["actorder"] = "group"; }, U, {"actorder = \"group\""}},
      {"weights zp_dtype int16", [](json& q) { q["config_groups"]["group_0"]["weights"]["zp_dtype"] = "torch.int16"; }, U, {"zp_dtype = \"torch.int16\""}},
      {"weights symmetric not bool", [](json& q) { q["config_groups"]["group_0"]["weights"]["symmetric"] = "yes"; }, C, {"symmetric = \"yes\""}},
      {"acts num_bits 4", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["num_bits"] = 4; }, U, {G + ".input_activations.num_bits = 4"}},
      {"acts fp8", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["type"] = "float"; }, U, {"input_activations.type = \"float\""}},
      {"acts dynamic per-tensor", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["strategy"] = "tensor"; }, U, {"input_activations.strategy = \"tensor\""}},
      {"acts static per-token", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["dynamic"] = false; }, U, {"input_activations.strategy = \"token\""}},
      {"acts group", [](json& q) { auto& a = q["config_groups"]["group_0"]["input_activations"]; a["strategy"] = "group"; a["group_size"] = 128; }, U, {"input_activations.group_size = 128"}},
      {"acts dynamic local", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["dynamic"] = "local"; }, U, {"dynamic = \"local\""}},
      {"acts actorder", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["actorder"] = "weight"; }, U, {"input_activations.actorder"}},
      {"acts dynamic scale_dtype", [](json& q) { q["config_groups"]["group_0"]["input_activations"]["scale_dtype"] = "torch.float16"; }, U, {"scale_dtype = \"torch.float16\""}},
      {"w8a16 (no input activations)", [](json& q) { q["config_groups"]["group_0"]["input_activations"] = nullptr; }, U, {G + ".input_activations = null", "w8a16"}},
      {"output activations", [](json& q) { q["config_groups"]["group_0"]["output_activations"] = q["config_groups"]["group_0"]["input_activations"]; }, U, {G + ".output_activations"}},
      {"kv cache scheme", [](json& q) { q["kv_cache_scheme"] = {{"num_bits", 8}, {"type", "float"}, {"strategy", "tensor"}}; }, U, {"kv_cache_scheme", "KV-cache"}},
      {"sparsity", [](json& q) { q["sparsity_config"] = {{"format", "sparse-24-bitmask"}, {"sparsity_structure", "2:4"}}; }, U, {"sparsity_config", "sparse-24-bitmask"}},
      {"transform", [](json& q) { q["transform_config"] = {{"config_groups", {{"u", {{"type", "hadamard"}}}}}}; }, U, {"transform_config", "hadamard"}},
      {"unknown top-level key", [](json& q) { q["quant_granularity"] = "weird"; }, U, {"quantization_config.quant_granularity = \"weird\"", "unknown key"}},
      {"unknown scheme key", [](json& q) { q["config_groups"]["group_0"]["bias"] = {{"num_bits", 8}}; }, U, {G + ".bias"}},
      {"unknown args key", [](json& q) { q["config_groups"]["group_0"]["weights"]["rounding"] = "stochastic"; }, U, {G + ".weights.rounding = \"stochastic\""}},
      {"preset W4A16", [](json& q) { q["config_groups"] = {{"W4A16", {"Linear"}}}; }, U, {"config_groups.W4A16", "preset"}},
      {"preset FP8", [](json& q) { q["config_groups"] = {{"FP8_DYNAMIC", {"Linear"}}}; }, U, {"FP8_DYNAMIC"}},
      {"ignore lookbehind", [](json& q) { q["ignore"] = {"re:(?<=mlp)\\.down_proj"}; }, U, {"quantization_config.ignore", "lookbehind"}},
      {"ignore invalid regex", [](json& q) { q["ignore"] = {"re:model.layers.(["}; }, C, {"quantization_config.ignore", "invalid regular expression"}},
      {"ignore not a list", [](json& q) { q["ignore"] = "lm_head"; }, C, {"quantization_config.ignore = \"lm_head\""}},
      {"targets not a list", [](json& q) { q["config_groups"]["group_0"]["targets"] = "Linear"; }, C, {G + ".targets = \"Linear\""}},
      {"targets missing", [](json& q) { q["config_groups"]["group_0"].erase("targets"); }, C, {G + ".targets"}},
      {"config_groups empty", [](json& q) { q["config_groups"] = json::object(); }, C, {"config_groups"}},
      {"config_groups missing", [](json& q) { q.erase("config_groups"); }, C, {"config_groups"}},
      {"not an object", [](json& q) { q = json::array({1, 2}); }, C, {"quantization_config"}},
      {"target regex inline flag", [](json& q) { q["config_groups"]["group_0"]["targets"] = {"re:(?i)LINEAR"}; }, U, {G + ".targets", "inline flags"}},
  };
  for (const auto& c : cases) {
    json qc = shared_qc();
    c.edit(qc);
    expect_error(qc, c.code, c.needles, c.what);
  }
  MESSAGE(cases.size() << " malformed quantization configs checked");

  // Plan-level: quantizing something that is not a Linear.
  auto plan_error = [&](std::function<void(json&)> edit, bool tied, const std::string& needle) {
    json qc = shared_qc();
    edit(qc);
    const QuantConfig c = parse_quantization_config(qc);
    CHECK_THROWS_WITH_AS(plan_llama_quantization(c, 2, tied), doctest::Contains(needle.c_str()), Error);
    try {
      plan_llama_quantization(c, 2, tied);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::UnsupportedModel);
    }
  };
  plan_error([](json& q) { q["config_groups"]["group_0"]["targets"] = {"Linear", "Embedding"}; }, false, "model.embed_tokens");
  plan_error([](json& q) { q["config_groups"]["group_0"]["targets"] = {"re:.*self_attn$"}; }, false, "model.layers.0.self_attn' (LlamaAttention)");
  plan_error([](json& q) { q["config_groups"]["group_0"]["targets"] = {"re:.*norm"}; }, false, "LlamaRMSNorm");
  plan_error([](json& q) { q["config_groups"]["group_0"]["targets"] = {"Module"}; }, false, "the whole model");
  plan_error([](json& q) { q["ignore"] = json::array(); }, true, "tie_word_embeddings");
}

// ====================================================================== tensors

namespace {
Tensor filled(DType dt, std::vector<int64_t> shape, double v) {
  Tensor t = Tensor::empty(dt, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dt) {
      case DType::F32: t.mutable_as<float>()[i] = float(v); break;
      case DType::BF16: t.mutable_as<uint16_t>()[i] = f32_to_bf16(float(v)); break;
      case DType::F16: t.mutable_as<uint16_t>()[i] = f32_to_f16(float(v)); break;
      case DType::I8: t.mutable_as<int8_t>()[i] = int8_t(v); break;
      case DType::I32: t.mutable_as<int32_t>()[i] = int32_t(v); break;
      default: break;
    }
  }
  return t;
}
}  // namespace

TEST_CASE("q8 tensors: validate_q8_linear checks every tensor of a quantized Linear") {
  const QuantConfig qc = parse_quantization_config(shared_qc());
  const QuantScheme& dyn = qc.groups[0];
  QuantScheme stat = dyn;
  stat.act_kind = QuantActKind::StaticTensor;
  QuantScheme stat_asym = stat;
  stat_asym.act_symmetric = false;
  QuantScheme tens = dyn;
  tens.weight_strategy = QuantWeightStrategy::Tensor;
  const int64_t N = 6, K = 10;
  const Tensor w = filled(DType::I8, {N, K}, -128);
  const Tensor s = filled(DType::BF16, {N, 1}, 0.01);
  const std::string mod = "model.layers.0.mlp.up_proj";

  Q8Linear q = validate_q8_linear(mod, dyn, N, K, &w, &s, nullptr, nullptr, nullptr);
  CHECK(q.act.mode == ActQuantMode::DynamicSymmetric);
  CHECK(q.w_scale_per_channel);
  CHECK(q.w == w.as<int8_t>());
  const Tensor s1 = filled(DType::F16, {N}, 0.01);
  CHECK_NOTHROW(validate_q8_linear(mod, dyn, N, K, &w, &s1, nullptr, nullptr, nullptr));
  const Tensor st = filled(DType::F32, {1}, 0.01);
  CHECK(!validate_q8_linear(mod, tens, N, K, &w, &st, nullptr, nullptr, nullptr).w_scale_per_channel);
  const Tensor zp0 = filled(DType::I8, {N, 1}, 0);
  CHECK_NOTHROW(validate_q8_linear(mod, dyn, N, K, &w, &s, &zp0, nullptr, nullptr));
  const Tensor is = filled(DType::BF16, {1}, 0.05), iz = filled(DType::I8, {1}, -7);
  Q8Linear qs = validate_q8_linear(mod, stat_asym, N, K, &w, &s, nullptr, &is, &iz);
  CHECK(qs.act.mode == ActQuantMode::Static);
  CHECK(qs.act.zero_point == -7);
  CHECK(qs.act.scale == bf16_to_f32(f32_to_bf16(0.05f)));
  CHECK(q8_same_activation_quant(qs.act, qs.act));
  CHECK(!q8_same_activation_quant(qs.act, q.act));

  auto bad = [&](const QuantScheme& sc, int64_t n, int64_t k, const Tensor* a, const Tensor* b, const Tensor* c,
                 const Tensor* d, const Tensor* e, const std::string& needle) {
    try {
      validate_q8_linear(mod, sc, n, k, a, b, c, d, e);
      FAIL_CHECK("no error for " << needle);
    } catch (const Error& err) {
      CHECK(err.code() == ErrorCode::Checkpoint);
      CHECK_MESSAGE(std::string(err.what()).find(needle) != std::string::npos, err.what());
      CHECK(std::string(err.what()).find(mod) != std::string::npos);
    }
  };
  const Tensor wbf = filled(DType::BF16, {N, K}, 1);
  bad(dyn, N, K, &wbf, &s, nullptr, nullptr, nullptr, "weight: dtype BF16, expected I8");
  bad(dyn, N, K + 1, &w, &s, nullptr, nullptr, nullptr, "weight: shape [6, 10], expected [6, 11]");
  bad(dyn, N, K, nullptr, &s, nullptr, nullptr, nullptr, "weight: missing");
  bad(dyn, N, K, &w, nullptr, nullptr, nullptr, nullptr, "weight_scale: missing");
  const Tensor s_i8 = filled(DType::I8, {N, 1}, 1), s_bad = filled(DType::BF16, {N, 2}, 0.1);
  bad(dyn, N, K, &w, &s_i8, nullptr, nullptr, nullptr, "weight_scale: dtype I8");
  bad(dyn, N, K, &w, &s_bad, nullptr, nullptr, nullptr, "weight_scale: shape [6, 2]");
  bad(tens, N, K, &w, &s, nullptr, nullptr, nullptr, "weight_scale: shape [6, 1], expected [1] or []");
  Tensor s_nan = filled(DType::F32, {N, 1}, 0.1);
  s_nan.mutable_as<float>()[4] = NAN;
  bad(dyn, N, K, &w, &s_nan, nullptr, nullptr, nullptr, "weight_scale: element 4");
  Tensor zp_bad = filled(DType::I8, {N, 1}, 0);
  zp_bad.mutable_as<int8_t>()[3] = 5;
  bad(dyn, N, K, &w, &s, &zp_bad, nullptr, nullptr, "weight_zero_point: element 3 is 5");
  const Tensor zp_shape = filled(DType::I8, {2}, 0);
  bad(dyn, N, K, &w, &s, &zp_shape, nullptr, nullptr, "weight_zero_point: shape [2]");
  bad(stat, N, K, &w, &s, nullptr, nullptr, nullptr, "input_scale: missing");
  bad(stat_asym, N, K, &w, &s, nullptr, &is, nullptr, "input_zero_point: missing");
  const Tensor is0 = filled(DType::F32, {1}, 0.0), is2 = filled(DType::F32, {2}, 0.1);
  bad(stat, N, K, &w, &s, nullptr, &is0, nullptr, "input_scale: value 0");
  bad(stat, N, K, &w, &s, nullptr, &is2, nullptr, "input_scale: shape [2]");
  const Tensor iz_big = filled(DType::I32, {1}, 200);
  bad(stat_asym, N, K, &w, &s, nullptr, &is, &iz_big, "input_zero_point: value 200 outside [-128, 127]");
  bad(stat, N, K, &w, &s, nullptr, &is, &iz, "input_zero_point: value -7, but the scheme's activations are symmetric");
  bad(dyn, N, K, &w, &s, nullptr, &is, nullptr, "input_scale: present, but the scheme quantizes activations dynamically");
  const Tensor wbig = filled(DType::I8, {1, 65537}, 1), sbig = filled(DType::F32, {1, 1}, 1);
  bad(dyn, 1, 65537, &wbig, &sbig, nullptr, nullptr, nullptr, "65536");

  const auto names = q8_linear_tensor_names(stat_asym);
  REQUIRE(names.size() == 5);
  CHECK(names[3].suffix == "input_scale");
  CHECK(names[4].required);
  CHECK(q8_linear_tensor_names(dyn).size() == 3);
}

// ====================================================================== checkpoints

namespace {

// Validates every quantized Linear of a Llama checkpoint; returns them by name.
std::map<std::string, Q8Linear> load_q8_linears(const Checkpoint& ck, const QuantConfig& qc, int* n_minus128) {
  const ModelConfig& c = ck.config();
  const LlamaQuantPlan plan = plan_llama_quantization(qc, int(c.num_hidden_layers), c.tie_word_embeddings);
  std::map<std::string, Q8Linear> out;
  auto opt = [&](const std::string& n) -> std::optional<Tensor> {
    if (!ck.find(n)) return std::nullopt;
    return ck.tensor(n);
  };
  auto add = [&](const std::string& mod, const QuantScheme* s, int64_t N, int64_t K) {
    if (!s) {
      CHECK_MESSAGE(ck.find(mod + ".weight")->dtype != DType::I8, mod);
      CHECK_MESSAGE(!ck.find(mod + ".weight_scale"), mod);
      return;
    }
    auto w = opt(mod + ".weight"), ws = opt(mod + ".weight_scale"), wz = opt(mod + ".weight_zero_point"),
         is = opt(mod + ".input_scale"), iz = opt(mod + ".input_zero_point");
    Q8Linear q = validate_q8_linear(mod, *s, N, K, w ? &*w : nullptr, ws ? &*ws : nullptr, wz ? &*wz : nullptr,
                                    is ? &*is : nullptr, iz ? &*iz : nullptr);
    for (int64_t i = 0; i < N * K; ++i) *n_minus128 += q.w[i] == -128;
    out.emplace(mod, q);
  };
  for (int64_t L = 0; L < c.num_hidden_layers; ++L) {
    const std::string p = "model.layers." + std::to_string(L) + ".";
    const int64_t shapes[7][2] = {{c.q_dim(), c.hidden_size}, {c.kv_dim(), c.hidden_size}, {c.kv_dim(), c.hidden_size},
                                  {c.hidden_size, c.q_dim()}, {c.intermediate_size, c.hidden_size},
                                  {c.intermediate_size, c.hidden_size}, {c.hidden_size, c.intermediate_size}};
    for (int j = 0; j < 7; ++j) add(p + kLlamaLinears[j], plan.layers[size_t(L)][size_t(j)], shapes[j][0], shapes[j][1]);
  }
  if (!c.tie_word_embeddings) add("lm_head", plan.lm_head, c.vocab_size, c.hidden_size);
  return out;
}

}  // namespace

TEST_CASE("q8 checkpoints: the shared w8a8 model validates module by module") {
  const Checkpoint ck = Checkpoint::open(test::model_dir("llama-3.1-mini-w8a8"));
  REQUIRE(ck.config().quantization_config);
  const QuantConfig qc = parse_quantization_config(ck.config().quantization_config->value);
  int m128 = 0;
  const auto lin = load_q8_linears(ck, qc, &m128);
  CHECK(lin.size() == 28);
  CHECK(lin.at("model.layers.2.mlp.down_proj").w_scale_dtype == DType::BF16);
}

TEST_CASE("q8 checkpoints: generated variants validate and their linears match the float64 emulation") {
  const auto dir = test::repo_dir() / "tests" / "data" / "w8a8";
  const std::vector<std::string> variants = {"tensor-dynamic", "static-tensor", "static-asym", "dynamic-asym",
                                             "ignore-regex", "f32-scales", "f16-scales"};
  for (const auto& v : variants) {
    INFO("variant " << v);
    const Checkpoint ck = Checkpoint::open(dir / v);
    REQUIRE(ck.config().quantization_config);
    const QuantConfig qc = parse_quantization_config(ck.config().quantization_config->value);
    int m128 = 0;
    const auto lin = load_q8_linears(ck, qc, &m128);
    // Per-channel scales (absmax / 127.5, compressed-tensors) give -128 codes wherever a
    // row's absmax is negative and the stored scale rounded down; one scale per tensor
    // rarely does.
    if (v != "tensor-dynamic" && v != "static-asym") CHECK_MESSAGE(m128 > 0, "no -128 weight codes in " << v);
    if (v == "ignore-regex") {
      CHECK(lin.size() == 11);  // 14 linears - 2 down_proj - layer 1 o_proj
      CHECK(!lin.count("model.layers.0.mlp.down_proj"));
      CHECK(!lin.count("model.layers.1.self_attn.o_proj"));
      CHECK(lin.at("model.layers.1.mlp.gate_proj").act.mode == ActQuantMode::DynamicAsymmetric);
      CHECK(!lin.at("model.layers.1.mlp.gate_proj").w_scale_per_channel);
      CHECK(lin.at("model.layers.0.self_attn.q_proj").act.mode == ActQuantMode::DynamicSymmetric);
    } else {
      CHECK(lin.size() == 14);
    }
    if (v == "f32-scales") CHECK(lin.begin()->second.w_scale_dtype == DType::F32);
    if (v == "f16-scales") CHECK(lin.begin()->second.w_scale_dtype == DType::F16);
    if (v == "static-asym") CHECK(lin.begin()->second.act.zero_point != 0);

    // Per-linear references: inputs (F32) and float64 outputs of the emulation.
    const SafetensorsFile ref = SafetensorsFile::open(dir / "references" / (v + ".safetensors"));
    int checked = 0;
    for (const auto& info : ref.tensors()) {
      if (info.name.rfind("lin.", 0) != 0 || info.name.substr(info.name.size() - 2) != ".x") continue;
      const std::string mod = info.name.substr(4, info.name.size() - 6);
      const Tensor x = ref.tensor(info.name), yref = ref.tensor("lin." + mod + ".y");
      const Q8Linear& q = lin.at(mod);
      const int64_t M = x.dim(0);
      REQUIRE(x.dim(1) == q.K);
      std::vector<float> y0;
      for (Backend b : q8_backends()) {
        if (!backend_hw_supported(b)) continue;
        const LinearKernel& k = linear_q8_kernel(b);
        Buf buf(k.prep_bytes(M, q.K));
        k.prep(LinearPrepArgs{x.as<float>(), q.K, M, q.K, 0, M, &q.act, buf.get()});
        std::vector<float> y(size_t(M * q.N));
        k.run(q.args(buf.get(), y.data(), q.N, M, 0, q.N));
        if (y0.empty()) {
          y0 = y;
          double maxref = 0, maxdiff = 0;
          for (int64_t i = 0; i < M * q.N; ++i) {
            maxref = std::max(maxref, std::fabs(double(yref.as<float>()[i])));
            maxdiff = std::max(maxdiff, std::fabs(double(y[size_t(i)]) - double(yref.as<float>()[i])));
          }
          // Measured: 0 (static) to 1.2e-7 relative: the F32 activation arithmetic gave the
          // same codes as float64 on these inputs (deterministic IEEE ops: a code flip
          // would show as ~1e-3 and fail).
          CHECK_MESSAGE(maxdiff <= 1e-6 * maxref, mod << ": max diff " << maxdiff << " of max " << maxref);
        } else {
          CHECK_MESSAGE(std::memcmp(y.data(), y0.data(), y.size() * 4) == 0, mod << " " << std::string(backend_name(b)));
        }
      }
      ++checked;
    }
    CHECK(checked >= 2);
  }
}
