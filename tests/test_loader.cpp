// Loading: every shared model loads and is classified; memory estimates are exact;
// and a catalogue of malformed inputs, generated from the good files, each gives its
// specific error (never a crash).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>

#include "llrt/checkpoint.h"
#include "llrt/error.h"
#include "llrt/inspect.h"
#include "src/run/inspect_json.h"
#include "src/engine/llama.h"
#include "llrt/model.h"
#include "st_writer.h"
#include "test_data.h"

using namespace llrt;
using namespace llrt::test;
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

TEST_CASE("every shared model loads, is classified, and its weight estimate is the sum of its tensor bytes") {
  struct Expect {
    const char* name;
    const char* family;
    bool sharded, quantized;
  };
  for (Expect e : {Expect{"llama-3.2-mini", "Meta Llama 3.2", false, false},
                   Expect{"llama-3.1-mini-sharded", "Meta Llama 3.1", true, false},
                   Expect{"llama-3.1-mini-w8a8", "Meta Llama 3.1", false, true},
                   Expect{"tinyllama-mini-f16", "TinyLlama / Llama 2", false, false},
                   Expect{"tinyllama-mini-f32", "TinyLlama / Llama 2", false, false},
                   Expect{"deepseek-r1-distill-mini", "DeepSeek-R1-Distill-Llama", true, false}}) {
    CAPTURE(e.name);
    Checkpoint ck = Checkpoint::open(model_dir(e.name));
    ModelFamily f = classify_model(ck);
    CHECK(f.family == e.family);
    CHECK(f.sharded == e.sharded);
    CHECK(f.quantized == e.quantized);
    uint64_t sum = 0;
    for (const auto& s : ck.shards())
      for (const auto& t : s.tensors()) sum += t.nbytes();
    MemoryEstimate m = estimate_memory(ck, 128, 16, 2);
    CHECK(m.weight_bytes == sum);
    CHECK(m.kv_bytes == m.kv_bytes_per_token * 128);
    CHECK(m.kv_bytes_per_token == uint64_t(2 * ck.config().num_hidden_layers * ck.config().kv_dim() * 4));
    auto r = inspect_model(model_dir(e.name), InspectOptions{128, 16, 2});
    CHECK(r["family"] == e.family);
    CHECK(r["memory"]["weights_bytes"].get<uint64_t>() == sum);
  }
}

TEST_CASE("the real Llama-3.2-1B config gives the known parameter count") {
  auto c = ModelConfig::load(shared_dir() / "assets/configs/meta-llama--Llama-3.2-1B/config.json");
  CHECK(llama_param_count(c) == 1235814400);
  CHECK(llama_param_count(c) * 2 == 2471628800);  // BF16 weight bytes
  CHECK(c.rope_scaling.type == RopeScaling::Type::Llama3);
  CHECK(c.rope_scaling.factor == 32.0);
  CHECK(c.tie_word_embeddings);
  CHECK(c.head_dim == 64);
}

TEST_CASE("a context allocates exactly the estimated KV cache and scratch") {
  auto model = Model::load(model_dir("tinyllama-mini-f32"));
  Context ctx(model, {100, 7});
  MemoryEstimate m = estimate_memory(model->checkpoint(), 100, 7, model->threads());
  CHECK(ctx.allocated_bytes() == m.kv_bytes + m.scratch_bytes);
}

TEST_CASE("copy (huge-page) and mmap loading give identical logits") {
  ModelOptions copy, mapped;
  CHECK(copy.map.mode == LoadMode::Auto);  // the default: copy when it fits (bench/README.md)
  mapped.map.mode = LoadMode::Mmap;
  auto a = Model::load(model_dir("llama-3.1-mini-sharded"), mapped);
  auto b = Model::load(model_dir("llama-3.1-mini-sharded"), copy);
  CHECK(a->checkpoint().shards()[0].mode() == LoadMode::Mmap);
  CHECK(b->checkpoint().shards()[0].mode() == LoadMode::Copy);  // a mini model fits
  std::vector<int32_t> toks = {1, 5, 9, 200};
  Context ca(a), cb(b);
  auto la = ca.eval(toks);
  auto lb = cb.eval(toks);
  CHECK(std::equal(la.begin(), la.end(), lb.begin()));
}

TEST_CASE("load mode Auto: copy when the weights fit in 70% of available memory, else mmap") {
  const uint64_t G = uint64_t(1) << 30;
  CHECK(resolve_load_mode(LoadMode::Auto, 2 * G, 20 * G) == LoadMode::Copy);
  CHECK(resolve_load_mode(LoadMode::Auto, 7 * G, 10 * G) == LoadMode::Copy);
  CHECK(resolve_load_mode(LoadMode::Auto, 7 * G + 1, 10 * G) == LoadMode::Mmap);
  CHECK(resolve_load_mode(LoadMode::Auto, 16 * G, 20 * G) == LoadMode::Mmap);  // an 8B BF16 on a 24 GiB machine
  CHECK(resolve_load_mode(LoadMode::Auto, 16 * G, 0) == LoadMode::Copy);       // unknown memory
  CHECK(resolve_load_mode(LoadMode::Copy, 16 * G, 20 * G) == LoadMode::Copy);  // asked for: as asked
  CHECK(resolve_load_mode(LoadMode::Mmap, 1, 20 * G) == LoadMode::Mmap);
}

TEST_CASE("the parallel copy holds the file's bytes exactly, whatever the chunking") {
  const fs::path f = model_dir("llama-3.1-mini-sharded") / "model-00001-of-00006.safetensors";
  std::ifstream in(f, std::ios::binary);
  const std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(want.size() > 3 * 4099);
  for (int threads : {1, 2, 3})
    for (uint64_t chunk : {uint64_t(4099), uint64_t(65536), uint64_t(64) << 20}) {
      MapOptions o;
      o.mode = LoadMode::Copy;
      o.copy_threads = threads;
      o.copy_chunk = chunk;  // odd sizes: chunk edges fall mid-tensor
      auto fb = FileBytes::open(f, o);
      REQUIRE(fb->size() == want.size());
      CHECK_MESSAGE(std::memcmp(fb->data(), want.data(), want.size()) == 0, "threads " << threads << " chunk " << chunk);
    }
}

// ------------------------------------------------------------------ malformed catalogue

namespace {

struct Case {
  std::string name;
  const char* base;  // shared model it is made from
  std::function<void(const fs::path&)> mutate;
  ErrorCode code;
  std::string needle;  // substring of the message
};

fs::path single(const fs::path& d) { return d / "model.safetensors"; }
fs::path shard1(const fs::path& d) { return d / "model-00001-of-00006.safetensors"; }

void edit_header(const fs::path& p, const std::function<void(json&)>& f) {
  auto r = read_raw(p);
  f(r.header);
  write_raw(p, r);
}
void edit_config(const fs::path& d, const std::function<void(json&)>& f) {
  json j = json::parse(slurp(d / "config.json"));
  f(j);
  spit(d / "config.json", j.dump(2));
}
std::string first_tensor(const json& h) {
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key() != "__metadata__") return it.key();
  return "";
}
// Tensor with the smallest begin offset, and the next one.
std::pair<std::string, std::string> first_two_by_offset(const json& h) {
  std::vector<std::pair<uint64_t, std::string>> v;
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key() != "__metadata__") v.push_back({it.value()["data_offsets"][0].get<uint64_t>(), it.key()});
  std::sort(v.begin(), v.end());
  return {v[0].second, v[1].second};
}

std::vector<Case> catalogue() {
  const char* F32 = "tinyllama-mini-f32";
  const char* SH = "llama-3.1-mini-sharded";
  return {
      {"truncated file", F32, [](const fs::path& d) { auto b = slurp(single(d)); spit(single(d), b.substr(0, b.size() - 1000)); },
       ErrorCode::Format, "run past the data section"},
      {"file shorter than 8 bytes", F32, [](const fs::path& d) { spit(single(d), "abc"); }, ErrorCode::Format, "too short"},
      {"empty file", F32, [](const fs::path& d) { spit(single(d), ""); }, ErrorCode::Format, "too short"},
      {"header length past EOF", F32,
       [](const fs::path& d) { auto r = read_raw(single(d)); spit(single(d), frame(r.header.dump(), r.data, 50u << 20)); },
       ErrorCode::Format, "runs past the end of the file"},
      {"absurd header length", F32,
       [](const fs::path& d) { auto r = read_raw(single(d)); spit(single(d), frame(r.header.dump(), r.data, 1ull << 60)); },
       ErrorCode::Format, "absurd"},
      {"invalid JSON header", F32,
       [](const fs::path& d) { auto r = read_raw(single(d)); std::string h = r.header.dump(); h.back() = ','; spit(single(d), frame(h, r.data)); },
       ErrorCode::Format, "not valid JSON"},
      {"header is not an object", F32, [](const fs::path& d) { spit(single(d), frame("[1,2,3]", "")); }, ErrorCode::Format, "not an object"},
      {"offsets past EOF", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { auto n = first_tensor(h); h[n]["data_offsets"][1] = 1ull << 40; }); },
       ErrorCode::Format, "run past the data section"},
      {"overlapping tensors", F32,
       [](const fs::path& d) {
         edit_header(single(d), [](json& h) {
           auto [a, b] = first_two_by_offset(h);
           uint64_t len = h[b]["data_offsets"][1].get<uint64_t>() - h[b]["data_offsets"][0].get<uint64_t>();
           h[b]["data_offsets"][0] = h[b]["data_offsets"][0].get<uint64_t>() - 4;
           h[b]["data_offsets"][1] = h[b]["data_offsets"][0].get<uint64_t>() + len;
         });
       },
       ErrorCode::Format, "overlaps"},
      {"gap between tensors", F32,
       [](const fs::path& d) {
         edit_header(single(d), [](json& h) {
           auto [a, b] = first_two_by_offset(h);
           (void)b;
           h.erase(a);
         });
       },
       ErrorCode::Format, "gap of"},
      {"dtype/shape/bytes mismatch", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { h["model.norm.weight"]["dtype"] = "F16"; }); },
       ErrorCode::Format, "data_offsets span"},
      {"unknown dtype", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { h["model.norm.weight"]["dtype"] = "Q4_K"; }); },
       ErrorCode::Format, "unknown dtype 'Q4_K'"},
      {"duplicate tensor key", F32,
       [](const fs::path& d) {
         auto r = read_raw(single(d));
         std::string h = r.header.dump();
         std::string entry = "\"model.norm.weight\":" + r.header["model.norm.weight"].dump();
         h.insert(1, entry + ",");
         spit(single(d), frame(h, r.data));
       },
       ErrorCode::Format, "appears twice"},
      {"negative shape entry", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { h["model.norm.weight"]["shape"][0] = -64; }); },
       ErrorCode::Format, "non-negative integer"},
      {"offsets end before begin", F32,
       [](const fs::path& d) {
         edit_header(single(d), [](json& h) {
           auto o = h["model.norm.weight"]["data_offsets"];
           h["model.norm.weight"]["data_offsets"] = json::array({o[1], o[0]});
         });
       },
       ErrorCode::Format, "end < begin"},
      {"trailing undescribed bytes", F32,
       [](const fs::path& d) { auto r = read_raw(single(d)); r.data += std::string(64, 'x'); write_raw(single(d), r); },
       ErrorCode::Format, "not described"},
      {"unknown tensor field", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { h["model.norm.weight"]["quant"] = "q4"; }); },
       ErrorCode::Format, "unknown field"},
      {"non-string metadata", F32,
       [](const fs::path& d) { edit_header(single(d), [](json& h) { h["__metadata__"] = {{"format", 3}}; }); },
       ErrorCode::Format, "__metadata__"},
      {"dtype llrt does not compute with (F64)", F32,
       [](const fs::path& d) {
         edit_header(single(d), [](json& h) {
           // same bytes, reinterpreted as half as many F64 values
           auto s = h["model.norm.weight"]["shape"][0].get<int64_t>();
           h["model.norm.weight"]["dtype"] = "F64";
           h["model.norm.weight"]["shape"][0] = s / 2;
         });
       },
       ErrorCode::UnsupportedDType, "F64"},
      {"misaligned tensor cannot be used in place", F32,
       [](const fs::path& d) {
         // Pad the header so the data section starts 2 bytes off a 4-byte boundary.
         auto r = read_raw(single(d));
         std::string h = r.header.dump();
         while ((8 + h.size()) % 8 != 2) h.push_back(' ');
         std::string out(8, '\0');
         for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
         spit(single(d), out + h + r.data);
       },
       ErrorCode::Format, "cannot be used in place"},
      {"missing shard", SH, [](const fs::path& d) { fs::remove(d / "model-00003-of-00006.safetensors"); }, ErrorCode::Io, "missing"},
      {"tensor in two shards", SH,
       [](const fs::path& d) {
         auto r1 = read_raw(shard1(d));
         auto r2 = read_raw(d / "model-00002-of-00006.safetensors");
         std::string dup = first_tensor(r2.header);
         auto e = r2.header[dup];
         uint64_t b = e["data_offsets"][0], en = e["data_offsets"][1];
         std::string bytes = r2.data.substr(b, en - b);
         e["data_offsets"] = {r1.data.size(), r1.data.size() + bytes.size()};
         r1.header[dup] = e;
         r1.data += bytes;
         write_raw(shard1(d), r1);
       },
       ErrorCode::Checkpoint, "two shards"},
      {"index lists a tensor its shard lacks", SH,
       [](const fs::path& d) {
         json j = json::parse(slurp(d / "model.safetensors.index.json"));
         j["weight_map"]["model.layers.0.mlp.extra.weight"] = "model-00001-of-00006.safetensors";
         spit(d / "model.safetensors.index.json", j.dump());
       },
       ErrorCode::Checkpoint, "does not contain it"},
      {"shard holds a tensor the index does not list", SH,
       [](const fs::path& d) {
         json j = json::parse(slurp(d / "model.safetensors.index.json"));
         auto r2 = read_raw(d / "model-00002-of-00006.safetensors");
         REQUIRE(r2.header.size() >= 3);
         j["weight_map"].erase(first_tensor(r2.header));
         spit(d / "model.safetensors.index.json", j.dump());
       },
       ErrorCode::Checkpoint, "not in model.safetensors.index.json"},
      {"index shard name escapes the folder", SH,
       [](const fs::path& d) {
         json j = json::parse(slurp(d / "model.safetensors.index.json"));
         j["weight_map"]["model.norm.weight"] = "../evil.safetensors";
         spit(d / "model.safetensors.index.json", j.dump());
       },
       ErrorCode::Format, "not a plain file name"},
      {"index is not JSON", SH, [](const fs::path& d) { spit(d / "model.safetensors.index.json", "{\"weight_map\": "); },
       ErrorCode::Format, "not valid JSON"},
      {"missing tensor", F32,
       [](const fs::path& d) {
         // Drop the last tensor by offset, and its bytes.
         auto r = read_raw(single(d));
         std::string last;
         uint64_t best = 0;
         for (auto it = r.header.begin(); it != r.header.end(); ++it)
           if (it.key() != "__metadata__" && it.value()["data_offsets"][0].get<uint64_t>() >= best) {
             best = it.value()["data_offsets"][0];
             last = it.key();
           }
         r.data.resize(best);
         r.header.erase(last);
         write_raw(single(d), r);
       },
       ErrorCode::Checkpoint, "missing tensor"},
      {"wrong shape", F32,
       [](const fs::path& d) { edit_config(d, [](json& j) { j["intermediate_size"] = 180; }); }, ErrorCode::Checkpoint,
       "config.json implies"},
      {"extra tensor", F32,
       [](const fs::path& d) {
         auto r = read_raw(single(d));
         r.header["model.layers.0.self_attn.q_proj.bias"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {r.data.size(), r.data.size() + 4}}};
         r.data += std::string(4, '\0');
         write_raw(single(d), r);
       },
       ErrorCode::Checkpoint, "is not part of"},
      {"lm_head present although tied", "llama-3.2-mini",
       [](const fs::path& d) {
         auto r = read_raw(single(d));
         r.header["lm_head.weight"] = {{"dtype", "BF16"}, {"shape", {1}}, {"data_offsets", {r.data.size(), r.data.size() + 2}}};
         r.data += std::string(2, '\0');
         write_raw(single(d), r);
       },
       ErrorCode::Checkpoint, "tie_word_embeddings"},
      {"zero attention heads", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["num_attention_heads"] = 0; }); },
       ErrorCode::Config, "num_attention_heads"},
      {"heads do not divide hidden size", F32,
       [](const fs::path& d) { edit_config(d, [](json& j) { j.erase("head_dim"); j["num_attention_heads"] = 7; j["num_key_value_heads"] = 7; }); },
       ErrorCode::Config, "not divisible"},
      {"kv heads do not divide heads", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["num_key_value_heads"] = 3; }); },
       ErrorCode::Config, "multiple of num_key_value_heads"},
      {"unsupported rope type", SH, [](const fs::path& d) { edit_config(d, [](json& j) { j["rope_scaling"]["rope_type"] = "yarn"; }); },
       ErrorCode::UnsupportedModel, "'yarn'"},
      {"llama3 rope without its parameters", SH,
       [](const fs::path& d) { edit_config(d, [](json& j) { j["rope_scaling"].erase("low_freq_factor"); }); }, ErrorCode::Config,
       "low_freq_factor"},
      {"unknown architecture", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["architectures"] = {"MistralForCausalLM"}; }); },
       ErrorCode::UnsupportedModel, "MistralForCausalLM"},
      {"config is not JSON", F32, [](const fs::path& d) { spit(d / "config.json", "{\"vocab_size\": 3"); }, ErrorCode::Format,
       "not valid JSON"},
      {"no config.json", F32, [](const fs::path& d) { fs::remove(d / "config.json"); }, ErrorCode::Io, "no config.json"},
      {"eos_token_id of the wrong type", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["eos_token_id"] = "</s>"; }); },
       ErrorCode::Config, "eos_token_id"},
      {"unsupported activation", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["hidden_act"] = "gelu"; }); },
       ErrorCode::UnsupportedModel, "gelu"},
      {"vocab size as a float", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["vocab_size"] = 32000.5; }); },
       ErrorCode::Config, "vocab_size"},
      {"negative eps", F32, [](const fs::path& d) { edit_config(d, [](json& j) { j["rms_norm_eps"] = -1.0; }); }, ErrorCode::Config,
       "rms_norm_eps"},
      {"no weights at all", F32, [](const fs::path& d) { fs::remove(single(d)); }, ErrorCode::Io, "no model.safetensors"},
      {"generation_config with a bad top_p", F32,
       [](const fs::path& d) { spit(d / "generation_config.json", "{\"top_p\": 3.0}"); }, ErrorCode::Config, "top_p"},
  };
}

}  // namespace

TEST_CASE("malformed checkpoints: each gives its specific error, none crashes") {
  auto cases = catalogue();
  CHECK(cases.size() >= 25);
  int i = 0;
  for (const auto& c : cases) {
    CAPTURE(c.name);
    fs::path d = copy_model(model_dir(c.base), "bad" + std::to_string(i++));
    c.mutate(d);
    bool threw = false;
    try {
      auto m = Model::load(d);
      Context ctx(m, {16, 4});
      std::vector<int32_t> t = {1, 2};
      ctx.eval(t);
    } catch (const Error& e) {
      threw = true;
      CHECK_MESSAGE(e.code() == c.code, "got " << std::string(error_code_name(e.code())) << ": " << std::string(e.what()));
      CHECK_MESSAGE(std::string(e.what()).find(c.needle) != std::string::npos, "message: " << std::string(e.what()));
    }
    CHECK_MESSAGE(threw, "no error for " << c.name);
    // inspect reports the same problem instead of throwing
    auto r = inspect_model(d);
    CHECK(r["runnable"] == false);
    CHECK(r.contains("error"));
    fs::remove_all(d);
  }
}

TEST_CASE("a model whose kernels are missing under LLRT_ISA fails before loading with the documented message") {
  // LLRT_ISA=none is what a CPU without AVX2 gets: no optimized kernel is usable and the
  // scalar oracle is never chosen silently, so loading stops with UnsupportedKernel.
  set_isa_cap_for_testing(Backend::Ref, /*allow_ref=*/false);
  try {
    Model::load(model_dir("tinyllama-mini-f16"));
    FAIL("expected UnsupportedKernel");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::UnsupportedKernel);
    std::string m = e.what();
    CHECK(m.find("no usable kernel for op 'embedding' with weights F16") != std::string::npos);
    CHECK(m.find("LLRT_ISA cap: none") != std::string::npos);
    CHECK(m.find("What to do") != std::string::npos);
    CHECK(m.find("never falls back") != std::string::npos);
  }
  auto r = inspect_model(model_dir("tinyllama-mini-f16"));
  CHECK(r["runnable"] == false);
  // Explicitly asking for the reference oracle works (slowly).
  set_isa_cap_for_testing(Backend::Ref, /*allow_ref=*/true);
  CHECK_NOTHROW(Model::load(model_dir("tinyllama-mini-f16")));
  reset_isa_cap_for_testing();
  // A dtype no kernel handles at all: I8 weights without a quantization config.
  fs::path d = copy_model(model_dir("tinyllama-mini-f32"), "i8");
  edit_header(single(d), [](json& h) {
    auto s = h["model.norm.weight"]["shape"][0].get<int64_t>();
    h["model.norm.weight"]["dtype"] = "I8";
    h["model.norm.weight"]["shape"][0] = s * 4;
  });
  try {
    Model::load(d);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::UnsupportedDType);
  }
  fs::remove_all(d);
}
