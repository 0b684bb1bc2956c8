// Tokenizer: exact agreement with HF `tokenizers` on real tokenizer files.
//  * llama.cpp's vectors (shared/assets/tokenizer-tests, made with HF, no BOS)
//  * a 380-string corpus with ids + decodes recorded by scripts/tokenizer/make_reference.py
//  * the SentencePiece tokenizer.model path against the tokenizer.json transformers 4.x builds
//  * streaming decode == decode(all), chunk by chunk valid UTF-8
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llrt/error.h"
#include "llrt/tokenizer.h"
#include "tests/test_data.h"

using namespace llrt;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

fs::path data_dir() { return test::repo_dir() / "tests" / "data" / "tokenizer"; }

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

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = p[i];
    const int k = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
    if (k < 0 || i + static_cast<size_t>(k) >= n + (k == 0 ? 1 : 0)) return false;
    for (int j = 1; j <= k; ++j)
      if ((p[i + static_cast<size_t>(j)] & 0xC0) != 0x80) return false;
    i += static_cast<size_t>(k) + 1;
  }
  return true;
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
// tokens, streaming decode, all against what HF recorded.
void check_corpus(const Tokenizer& tok, const std::string& expected_name) {
  const auto corpus = nlohmann::json::parse(slurp(data_dir() / "corpus.json"));
  const auto exp = nlohmann::json::parse(slurp(data_dir() / "expected" / (expected_name + ".json")));
  const auto& cases = exp["cases"];
  REQUIRE(corpus.size() == cases.size());
  REQUIRE(corpus.size() >= 300);
  size_t ok_ids = 0, ok_dec = 0, ok_stream = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = corpus[i].get<std::string>();
    const auto want = cases[i]["ids"].get<std::vector<int32_t>>();
    const auto want_plain = cases[i]["plain"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text, true);
    const auto got_plain = tok.encode(text, false);
    CHECK_MESSAGE(got == want, expected_name << " #" << i << " [" << text << "] want " << show(want) << " got " << show(got));
    CHECK_MESSAGE(got_plain == want_plain, expected_name << " #" << i << " (no special) [" << text << "]");
    ok_ids += got == want && got_plain == want_plain;
    const std::string dec = tok.decode(want, false), dec_skip = tok.decode(want, true);
    CHECK_MESSAGE(dec == cases[i]["decode"].get<std::string>(), expected_name << " #" << i << " decode [" << dec << "]");
    CHECK_MESSAGE(dec_skip == cases[i]["decode_skip"].get<std::string>(), expected_name << " #" << i << " decode skip [" << dec_skip << "]");
    ok_dec += dec == cases[i]["decode"].get<std::string>() && dec_skip == cases[i]["decode_skip"].get<std::string>();
    // streaming: one id at a time, every chunk complete UTF-8, concatenation == decode(all)
    auto stream = tok.decode_stream(true);
    std::string acc;
    bool chunks_ok = true;
    for (int32_t id : want) {
      const std::string c = stream.push(id);
      chunks_ok = chunks_ok && valid_utf8(c);
      acc += c;
    }
    acc += stream.finish();
    CHECK_MESSAGE(chunks_ok, expected_name << " #" << i << " streamed a partial UTF-8 character");
    CHECK_MESSAGE(acc == dec_skip, expected_name << " #" << i << " stream [" << acc << "] != decode [" << dec_skip << "]");
    ok_stream += chunks_ok && acc == dec_skip;
  }
  // random id sequences (byte tokens, special tokens): decode and stream against HF
  size_t ok_rand = 0;
  for (const auto& c : exp["decode_cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      const std::string want = c[skip ? "decode_skip" : "decode"].get<std::string>();
      CHECK_MESSAGE(tok.decode(ids, skip) == want, expected_name << " decode_case " << show(ids) << " skip=" << skip);
      auto stream = tok.decode_stream(skip);
      std::string acc;
      bool chunks_ok = true;
      for (int32_t id : ids) {
        const std::string piece = stream.push(id);
        chunks_ok = chunks_ok && valid_utf8(piece);
        acc += piece;
      }
      acc += stream.finish();
      CHECK(chunks_ok);
      CHECK_MESSAGE(acc == want, expected_name << " stream of decode_case " << show(ids));
      ok_rand += acc == want && chunks_ok;
    }
  }
  MESSAGE(expected_name << " via " << tok.tokenizer_kind() << ": ids " << ok_ids << "/" << corpus.size() << ", decode "
                        << ok_dec << ", stream " << ok_stream << ", random-id decode+stream " << ok_rand << "/"
                        << 2 * exp["decode_cases"].size());
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
  const Tokenizer tok = Tokenizer::load(model("tinyllama-mini-f16"));
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
  } else {
    MESSAGE("no converted checkpoint at " << converted.string() << ": skipped");
  }
}
