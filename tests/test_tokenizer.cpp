// Tokenizer: exact agreement with HF `tokenizers` on real tokenizer files.
//  * llama.cpp's vectors (shared/assets/tokenizer-tests, made with HF, no BOS)
//  * a 380-string corpus with ids + decodes recorded by scripts/tokenizer/make_reference.py
//  * the SentencePiece tokenizer.model path against the tokenizer.json transformers 4.x builds
//  * streaming decode == decode(all), chunk by chunk valid UTF-8
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llrt/error.h"
#include "llrt/tokenizer.h"
#include "tests/test_data.h"
#include "tests/tokenizer_check.h"

using namespace llrt;
namespace fs = std::filesystem;

namespace {

using test::show;
using test::slurp;

fs::path data_dir() { return test::tokenizer_data_dir(); }

std::vector<std::string> split_on(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    const size_t k = s.find(sep, pos);
    if (k == std::string::npos) { out.push_back(s.substr(pos)); return out; }
    out.push_back(s.substr(pos, k - pos));
    pos = k + sep.size();
  }
}

// llama.cpp test-tokenizer-0 vectors: texts separated by "\n__ggml_vocab_test__\n", one line of
// ids per text, encoded without special tokens.
void check_llamacpp_vectors(const Tokenizer& tok, const std::string& vocab_name) {
  const fs::path base = test::shared_dir() / "assets" / "tokenizer-tests" / ("ggml-vocab-" + vocab_name + ".gguf");
  auto texts = split_on(slurp(base.string() + ".inp"), "\n__ggml_vocab_test__\n");
  auto lines = split_on(slurp(base.string() + ".out"), "\n");
  REQUIRE(texts.size() == lines.size());
  REQUIRE(texts.size() > 1);
  int passed = 0;
  for (size_t i = 0; i + 1 < texts.size(); ++i) {
    std::vector<int32_t> want;
    std::istringstream ls(lines[i]);
    for (int32_t x; ls >> x;) want.push_back(x);
    const auto got = tok.encode(texts[i], /*add_special_tokens=*/false);
    CHECK_MESSAGE(got == want, vocab_name << " text #" << i << " [" << texts[i] << "] want " << show(want) << " got " << show(got));
    passed += got == want;
  }
  MESSAGE(vocab_name << " (" << tok.tokenizer_kind() << "): " << passed << "/" << texts.size() - 1 << " llama.cpp vectors");
}

// Every corpus string: ids with/without special tokens, decode with/without skipping special
// tokens, streaming decode; and random id sequences' decodes: all against what HF recorded.
void check_corpus(const Tokenizer& tok, const std::string& expected_name) {
  const auto corpus = nlohmann::json::parse(slurp(data_dir() / "corpus.json"));
  const auto exp = nlohmann::json::parse(slurp(data_dir() / "expected" / (expected_name + ".json")));
  REQUIRE(corpus.size() >= 300);
  const auto st = test::check_cases(tok, corpus, exp["cases"], exp["decode_cases"], expected_name);
  CHECK(st.n == corpus.size());
}

fs::path model(const char* name) { return test::model_dir(name); }

}  // namespace

TEST_CASE("tokenizer: Llama 3 tokenizer.json matches llama.cpp's llama-bpe vectors and the HF corpus") {
  const Tokenizer tok = Tokenizer::load(model("llama-3.2-mini"));
  CHECK(tok.tokenizer_kind() == "tokenizer.json BPE (byte-level)");
  CHECK(tok.vocab_size() == 128256);
  CHECK(tok.bos_id() == 128000);
  CHECK(tok.eos_id() == 128009);  // tokenizer_config.json eos_token <|eot_id|>
  CHECK(tok.is_special(128000));
  CHECK(!tok.is_special(9906));
  CHECK(tok.id_to_piece(9906) == "Hello");
  CHECK(tok.piece_to_id("ĠHello") == 22691);
  CHECK(tok.piece_to_id("<|eot_id|>") == 128009);
  CHECK(!tok.piece_to_id("no such piece").has_value());
  check_llamacpp_vectors(tok, "llama-bpe");
  check_corpus(tok, "llama3");
}

TEST_CASE("tokenizer: DeepSeek-R1-Distill tokenizer.json matches the HF corpus") {
  const Tokenizer tok = Tokenizer::load(model("deepseek-r1-distill-mini"));
  CHECK(tok.tokenizer_kind() == "tokenizer.json BPE (byte-level)");
  CHECK(tok.bos_id() == 128000);
  CHECK(tok.eos_id() == 128001);
  check_llamacpp_vectors(tok, "llama-bpe");  // ordinary text tokenizes as Llama 3
  check_corpus(tok, "deepseek-r1");
}

TEST_CASE("tokenizer: Llama 2 tokenizer.json (transformers 4.x from_slow, legacy) matches vectors and corpus") {
  const Tokenizer tok = Tokenizer::load(data_dir() / "llama2-from-slow");
  CHECK(tok.tokenizer_kind() == "tokenizer.json BPE (SentencePiece-style)");
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  check_llamacpp_vectors(tok, "llama-spm");
  check_llamacpp_vectors(tok, "tinyllama");
  check_corpus(tok, "llama2");
}

TEST_CASE("tokenizer: TinyLlama tokenizer.model (SentencePiece) gives the same ids as the converted tokenizer.json") {
  // The converted tokenizer.json (the Hub's form) is the legacy one: the same tokenizer_config.json
  // with `legacy` true (TinyLlama's says false: see the legacy test below).
  nlohmann::json cfg = nlohmann::json::parse(slurp(model("tinyllama-mini-f16") / "tokenizer_config.json"));
  cfg["legacy"] = true;
  const Tokenizer tok = Tokenizer::from_sentencepiece(slurp(model("tinyllama-mini-f16") / "tokenizer.model"), cfg.dump());
  CHECK(tok.tokenizer_kind() == "sentencepiece tokenizer.model");
  CHECK(tok.vocab_size() == 32000);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.is_special(1));
  CHECK(tok.id_to_piece(13) == "<0x0A>");
  check_llamacpp_vectors(tok, "llama-spm");
  check_llamacpp_vectors(tok, "tinyllama");
  check_corpus(tok, "llama2");
  // the bare Llama 2 tokenizer.model (no tokenizer_config.json) behaves the same
  const Tokenizer bare = Tokenizer::from_sentencepiece(slurp(test::shared_dir() / "assets" / "llama2-tokenizer" / "tokenizer.model"));
  check_llamacpp_vectors(bare, "llama-spm");
}

TEST_CASE("tokenizer: SentencePiece `legacy` true and false match transformers (special tokens, leading text)") {
  // tests/data/tokenizer/sentencepiece_legacy.json: scripts/tokenizer/make_legacy_vectors.py
  // (LlamaTokenizerFast from tokenizer.model with legacy true / false). legacy false: no "▁" after a
  // special token ("</s>\n<|user|>" is [2, 13, ...], not [2, 29871, 13, ...]).
  const nlohmann::json ref = nlohmann::json::parse(slurp(data_dir() / "sentencepiece_legacy.json"));
  const std::string proto = slurp(model("tinyllama-mini-f16") / "tokenizer.model");
  nlohmann::json cfg = nlohmann::json::parse(slurp(model("tinyllama-mini-f16") / "tokenizer_config.json"));
  REQUIRE(cfg["legacy"] == false);  // TinyLlama-Chat's own setting
  const Tokenizer as_shipped = Tokenizer::load(model("tinyllama-mini-f16"));
  const Tokenizer non_legacy = Tokenizer::from_sentencepiece(proto, cfg.dump());
  cfg["legacy"] = true;
  const Tokenizer legacy = Tokenizer::from_sentencepiece(proto, cfg.dump());
  cfg.erase("legacy");  // absent: HF's default, legacy
  const Tokenizer unset = Tokenizer::from_sentencepiece(proto, cfg.dump());
  REQUIRE(ref["cases"].size() >= 15);
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want_legacy = c["legacy_true"].get<std::vector<int32_t>>();
    const auto want_non_legacy = c["legacy_false"].get<std::vector<int32_t>>();
    CHECK_MESSAGE(legacy.encode(text, true) == want_legacy, text);
    CHECK_MESSAGE(unset.encode(text, true) == want_legacy, text);
    CHECK_MESSAGE(non_legacy.encode(text, true) == want_non_legacy, text);
    CHECK_MESSAGE(as_shipped.encode(text, true) == want_non_legacy, text);
  }
  CHECK(non_legacy.encode("</s>\n<|user|>", false) == std::vector<int32_t>{2, 13, 29966, 29989, 1792, 29989, 29958});
  CHECK(legacy.encode("</s>\n<|user|>", false) == std::vector<int32_t>{2, 29871, 13, 29966, 29989, 1792, 29989, 29958});
}

TEST_CASE("tokenizer: stories260K tok512 (SentencePiece BPE, 512 pieces) via .model and converted .json") {
  const Tokenizer from_model = Tokenizer::from_sentencepiece(slurp(test::shared_dir() / "assets" / "stories260K" / "tok512.model"));
  CHECK(from_model.vocab_size() == 512);
  check_corpus(from_model, "stories260k");
  const Tokenizer from_json = Tokenizer::load(data_dir() / "stories260k-from-slow");
  check_corpus(from_json, "stories260k");
  // The converted checkpoint another part of llrt produces, when present.
  const fs::path converted = test::repo_dir() / "models" / "stories260K";
  if (fs::exists(converted / "tokenizer.json") || fs::exists(converted / "tokenizer.model")) {
    check_corpus(Tokenizer::load(converted), "stories260k");
    if (fs::exists(converted / "tokenizer.model")) {
      const std::string cfg = fs::exists(converted / "tokenizer_config.json") ? slurp(converted / "tokenizer_config.json") : "";
      check_corpus(Tokenizer::from_sentencepiece(slurp(converted / "tokenizer.model"), cfg), "stories260k");
    }
  } else {
    MESSAGE("no converted checkpoint at " << converted.string() << ": skipped");
  }
}

namespace {

// Just enough GGUF (v2/v3) to read the tokenizer arrays of llama.cpp's vocab-only test files.
struct GgufVocab {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
};

GgufVocab read_gguf_vocab(const fs::path& path) {
  const std::string b = slurp(path);
  size_t p = 0;
  auto need = [&](size_t n) {
    if (p + n > b.size()) FAIL("truncated GGUF " << path.string());
  };
  auto u32 = [&] { need(4); uint32_t v; std::memcpy(&v, b.data() + p, 4); p += 4; return v; };
  auto u64 = [&] { need(8); uint64_t v; std::memcpy(&v, b.data() + p, 8); p += 8; return v; };
  auto str = [&] { const uint64_t n = u64(); need(n); std::string s = b.substr(p, n); p += n; return s; };
  static const size_t scalar_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  REQUIRE(b.compare(0, 4, "GGUF") == 0);
  p = 4;
  REQUIRE(u32() >= 2);
  u64();  // tensors
  const uint64_t nkv = u64();
  GgufVocab v;
  for (uint64_t k = 0; k < nkv; ++k) {
    const std::string key = str();
    const uint32_t type = u32();
    if (type == 8) { str(); continue; }
    if (type != 9) { REQUIRE(type < 13); need(scalar_size[type]); p += scalar_size[type]; continue; }
    const uint32_t et = u32();
    const uint64_t n = u64();
    for (uint64_t i = 0; i < n; ++i) {
      if (et == 8) {
        std::string s = str();
        if (key == "tokenizer.ggml.tokens") v.tokens.push_back(std::move(s));
        else if (key == "tokenizer.ggml.merges") v.merges.push_back(std::move(s));
      } else {
        REQUIRE(et < 13);
        need(scalar_size[et]);
        if (key == "tokenizer.ggml.token_type") { int32_t t; std::memcpy(&t, b.data() + p, 4); v.types.push_back(t); }
        p += scalar_size[et];
      }
    }
  }
  REQUIRE(v.tokens.size() == v.types.size());
  return v;
}

}  // namespace

TEST_CASE("tokenizer: DeepSeek LLM / Coder vocabularies (from llama.cpp's GGUF) match their vectors") {
  // The GGUF holds vocabulary, merges and token types; the pre-tokenizer (PCRE2 regexes) is
  // llama.cpp's description, checked against HF by scripts/tokenizer/make_deepseek_pretokenizers.py.
  const auto pres = nlohmann::json::parse(slurp(data_dir() / "deepseek_pretokenizers.json"));
  for (const std::string name : {"deepseek-llm", "deepseek-coder"}) {
    const GgufVocab g = read_gguf_vocab(test::shared_dir() / "assets" / "tokenizer-tests" / ("ggml-vocab-" + name + ".gguf"));
    nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
    for (size_t i = 0; i < g.tokens.size(); ++i) {
      vocab[g.tokens[i]] = i;
      if (g.types[i] == 3 || g.types[i] == 4)
        added.push_back({{"id", i}, {"content", g.tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", g.types[i] != 3}, {"special", g.types[i] == 3}});
    }
    const nlohmann::json j = {
        {"added_tokens", added}, {"normalizer", nullptr}, {"pre_tokenizer", pres[name]}, {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
        {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                   {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", g.merges}}}};
    const Tokenizer tok = Tokenizer::from_json(j.dump());
    check_llamacpp_vectors(tok, name);
  }
}
