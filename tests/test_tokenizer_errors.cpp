// Tokenizer: malformed / unsupported inputs are typed errors; internal cross-checks
// (hand-written Llama 3 / GPT-2 regex matchers against PCRE2; BPE merge formats).
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llrt/error.h"
#include "llrt/tokenizer.h"
#include "src/text/tokenizer/pattern.h"
#include "tests/test_data.h"
#include "tests/tokenizer_check.h"

using namespace llrt;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A small byte-level BPE tokenizer.json: vocab of the 256 byte characters plus a few merges.
json tiny_tokenizer() {
  json vocab = json::object();
  // the GPT-2 byte->char map
  std::vector<int> bs;
  for (int b = 0x21; b <= 0x7E; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int extra = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) { bs.push_back(b); cs.push_back(256 + extra++); }
  std::vector<std::string> ch(256);
  for (size_t k = 0; k < bs.size(); ++k) {
    std::string u;
    const int c = cs[k];
    if (c < 0x80) u.push_back(static_cast<char>(c));
    else { u.push_back(static_cast<char>(0xC0 | (c >> 6))); u.push_back(static_cast<char>(0x80 | (c & 0x3F))); }
    ch[static_cast<size_t>(bs[k])] = u;
  }
  for (int b = 0; b < 256; ++b) vocab[ch[static_cast<size_t>(b)]] = b;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  vocab["Ġw"] = 260;
  json j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", json::array()},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
            {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                       {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
                       {"merges", json::array({"h e", "l l", "he ll", "hell o", "Ġ w"})}}}};
  return j;
}

void expect_tokenizer_error(const json& j, const std::string& needle) {
  try {
    (void)Tokenizer::from_json(j.dump());
    FAIL("expected Error(Tokenizer) containing '" << needle << "'");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Tokenizer);
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("tokenizer: a small byte-level BPE built in the test encodes and decodes") {
  const Tokenizer tok = Tokenizer::from_json(tiny_tokenizer().dump());
  CHECK(tok.encode("hello") == std::vector<int32_t>{259});
  CHECK(tok.encode("hello world") == std::vector<int32_t>{259, 260, 'o', 'r', 'l', 'd'});
  CHECK(tok.decode(tok.encode("hello world")) == "hello world");
  // merges given as pairs load the same way
  json j = tiny_tokenizer();
  j["model"]["merges"] = json::array({json::array({"h", "e"}), json::array({"l", "l"}), json::array({"he", "ll"}),
                                       json::array({"hell", "o"}), json::array({"Ġ", "w"})});
  CHECK(Tokenizer::from_json(j.dump()).encode("hello world") == tok.encode("hello world"));
}

TEST_CASE("tokenizer: malformed and unsupported tokenizer.json are Tokenizer errors naming the problem") {
  try {
    (void)Tokenizer::from_json("{ not json");
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Tokenizer);
  }
  json j = tiny_tokenizer();
  j["model"]["type"] = "Unigram";
  expect_tokenizer_error(j, "Unigram");
  j = tiny_tokenizer();
  j["normalizer"] = {{"type", "NFKC"}};
  expect_tokenizer_error(j, "NFKC");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_tokenizer_error(j, "Whitespace");
  j = tiny_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  expect_tokenizer_error(j, "WordPiece");
  j = tiny_tokenizer();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_tokenizer_error(j, "RobertaProcessing");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("x yz");
  expect_tokenizer_error(j, "missing from the vocabulary");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("nospace");
  expect_tokenizer_error(j, "nospace");
  j = tiny_tokenizer();
  j["model"]["vocab"] = json::array();
  expect_tokenizer_error(j, "vocab");
  j = tiny_tokenizer();
  j["model"]["unk_token"] = "<unk>";
  expect_tokenizer_error(j, "unk_token");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_tokenizer_error(j, "does not compile");
  j = tiny_tokenizer();
  j["model"]["dropout"] = 0.1;
  expect_tokenizer_error(j, "dropout");
  j = tiny_tokenizer();
  j.erase("model");
  expect_tokenizer_error(j, "model");
}

TEST_CASE("tokenizer: errors that say which field, which pattern, which id and why") {
  // A field of the wrong type names the field (was a bare nlohmann type_error).
  json j = tiny_tokenizer();
  j["model"]["dropout"] = "0.1";
  expect_tokenizer_error(j, "BPE: field \"dropout\" must be a number or null, got \"0.1\"");
  j["model"]["dropout"] = 0.0;
  CHECK(Tokenizer::from_json(j.dump()).encode("hello") == std::vector<int32_t>{259});
  // A regex that backtracks without bound names itself, the PCRE2 error and what to do (was
  // "PCRE2 match error -47").
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a+)+$"}}}, {"behavior", "Isolated"}, {"invert", false}};
  const Tokenizer slow = Tokenizer::from_json(j.dump());
  CHECK(slow.encode("aab", false).size() == 3);  // fine on short text
  try {
    (void)slow.encode(std::string(5000, 'a') + "b", false);
    FAIL("expected Error(Tokenizer)");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Tokenizer);
    const std::string m = e.what();
    CHECK_MESSAGE(m.find("the tokenizer's regex '(a+)+$' failed on this text") != std::string::npos, m);
    CHECK_MESSAGE(m.find("PCRE2 error -47, match limit exceeded") != std::string::npos, m);
    CHECK_MESSAGE(m.find("backtracks without bound") != std::string::npos, m);
  }
  // A sparse vocab entry shifts the added tokens' ids (HF puts them after the model's entries):
  // the post_processor's id is then not in the vocabulary, and the error says which added token
  // moved where, and why (was: only "special token id 261 is not in the vocabulary").
  j = tiny_tokenizer();
  j["added_tokens"] = json::array({{{"id", 261}, {"content", "<s>"}, {"single_word", false}, {"lstrip", false},
                                    {"rstrip", false}, {"normalized", false}, {"special", true}}});
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {261}}, {"tokens", {"<s>"}}}}}}};
  CHECK(Tokenizer::from_json(j.dump()).encode("hello") == std::vector<int32_t>{261, 259});  // dense vocab: as declared
  j["model"]["vocab"]["zz"] = 1000;  // one sparse entry: 262 entries, so <s> gets 262
  expect_tokenizer_error(j, "special token id 261 is not in the vocabulary: added_tokens declares \"<s>\" with id 261, but it gets id 262");
  expect_tokenizer_error(j, "a vocab whose ids are sparse or have gaps shifts them");
}

TEST_CASE("tokenizer: loading errors, bad tokenizer.model bytes, invalid UTF-8 input, bad ids") {
  try {
    (void)Tokenizer::load(test::shared_dir() / "models" / "llama-3.1-mini-sharded");  // has no tokenizer
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Io);
  }
  for (const std::string& bytes : {std::string("\x0a\xff\xff\xff\xff", 5), std::string("garbage"), std::string()}) {
    try {
      (void)Tokenizer::from_sentencepiece(bytes);
      FAIL("expected error");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::Tokenizer);
    }
  }
  // a Unigram SentencePiece model is named as unsupported: pieces {"a"}, trainer_spec {model_type: 1}
  const std::string unigram("\x0a\x0a\x0a\x01" "a" "\x15\x00\x00\x00\x00\x18\x01" "\x12\x02\x18\x01", 16);
  try {
    (void)Tokenizer::from_sentencepiece(unigram);
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Tokenizer);
    CHECK_MESSAGE(std::string(e.what()).find("Unigram") != std::string::npos, e.what());
  }
  const Tokenizer tok = Tokenizer::from_json(tiny_tokenizer().dump());
  try {
    (void)tok.encode(std::string("ab\xC3(", 4));
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
  }
  const std::vector<int32_t> bad{1, 999999};
  try {
    (void)tok.decode(bad);
    FAIL("expected error");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidArgument);
  }
  CHECK_THROWS_AS((void)tok.id_to_piece(-1), Error);
}

TEST_CASE("tokenizer: hand-written Llama 3 and GPT-2 regex matchers agree with PCRE2 on the corpus") {
  const auto corpus = json::parse(slurp(test::repo_dir() / "tests" / "data" / "tokenizer" / "corpus.json"));
  const tok::Pattern hand3 = tok::Pattern::regex(tok::Pattern::llama3_regex());
  const tok::Pattern pcre3 = tok::Pattern::regex(tok::Pattern::llama3_regex(), /*force_pcre2=*/true);
  const tok::Pattern hand2 = tok::Pattern::regex(tok::Pattern::gpt2_regex());
  const tok::Pattern pcre2 = tok::Pattern::regex(tok::Pattern::gpt2_regex(), true);
  REQUIRE(hand3.kind() == tok::Pattern::Kind::Llama3);
  REQUIRE(pcre3.kind() == tok::Pattern::Kind::Pcre2);
  std::vector<tok::Match> a, b;
  auto same = [](const std::vector<tok::Match>& x, const std::vector<tok::Match>& y) {
    if (x.size() != y.size()) return false;
    for (size_t k = 0; k < x.size(); ++k)
      if (x[k].begin != y[k].begin || x[k].end != y[k].end) return false;
    return true;
  };
  size_t agree3 = 0, agree2 = 0;
  for (const auto& t : corpus) {
    const std::string s = t.get<std::string>();
    hand3.find_all(s, a);
    pcre3.find_all(s, b);
    CHECK_MESSAGE(same(a, b), "llama3 regex differs on [" << s << "]");
    agree3 += same(a, b);
    hand2.find_all(s, a);
    pcre2.find_all(s, b);
    CHECK_MESSAGE(same(a, b), "gpt2 regex differs on [" << s << "]");
    agree2 += same(a, b);
  }
  MESSAGE("hand matcher == PCRE2: llama3 " << agree3 << "/" << corpus.size() << ", gpt2 " << agree2 << "/" << corpus.size());
  // random strings over the characters each alternative turns on
  static const char* pool[] = {" ", " ", "  ", "\t", "\n", "\r", "\r\n", "\xC2\xA0", "\xE3\x80\x80", "\x0B", "'", "'", "s", "S",
                               "\xC5\xBF", "t", "re", "RE", "ve", "m", "ll", "lL", "d", "e", "a", "Z", "\xC3\xA9", "1", "22",
                               "\xD9\xA1", "\xC2\xBD", ".", "!", ",", "-", "_", "\xF0\x9F\x98\x80", "\xCC\x81", "\xE4\xB8\xAD",
                               "\xE2\x80\x8B", "\xEF\xBB\xBF", "x"};
  std::mt19937 rng(7);
  size_t same3 = 0, same2 = 0;
  const int n = 3000;
  for (int k = 0; k < n; ++k) {
    std::string t;
    const int len = 1 + static_cast<int>(rng() % 14);
    for (int c = 0; c < len; ++c) t += pool[rng() % (sizeof(pool) / sizeof(pool[0]))];
    hand3.find_all(t, a);
    pcre3.find_all(t, b);
    CHECK_MESSAGE(same(a, b), "llama3 regex differs on [" << t << "]");
    same3 += same(a, b);
    hand2.find_all(t, a);
    pcre2.find_all(t, b);
    CHECK_MESSAGE(same(a, b), "gpt2 regex differs on [" << t << "]");
    same2 += same(a, b);
  }
  MESSAGE("hand matcher == PCRE2 on " << n << " random strings: llama3 " << same3 << ", gpt2 " << same2);
}

TEST_CASE("tokenizer: component variants (added-token options, Split behaviors, Metaspace schemes, decoders) match HF") {
  const fs::path dir = test::tokenizer_data_dir() / "variants";
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    ++files;
    const json v = json::parse(test::slurp(e.path()));
    const std::string name = e.path().stem().string();
    CAPTURE(name);
    const Tokenizer tok = Tokenizer::from_json(v["tokenizer"].dump());
    const auto st = test::check_cases(tok, v["texts"], v["cases"], v["decode_cases"], name);
    CHECK(st.n > 200);
  }
  CHECK(files >= 10);
}

TEST_CASE("tokenizer: robustness - mutated files fail cleanly, random text round-trips through Llama 3") {
  std::mt19937 rng(12345);
  // (a) byte mutations of a real tokenizer.model: either loads (and encodes) or is an llrt::Error
  const std::string model = test::slurp(test::shared_dir() / "assets" / "stories260K" / "tok512.model");
  size_t loaded = 0, rejected = 0;
  for (int k = 0; k < 300; ++k) {
    std::string m = model;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
    if (k % 10 == 0) m.resize(rng() % m.size());
    try {
      const Tokenizer t = Tokenizer::from_sentencepiece(m);
      (void)t.decode(t.encode("Once upon a time, 12 cats ran! 😀"));
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  MESSAGE("mutated tokenizer.model: " << loaded << " loaded, " << rejected << " rejected with llrt::Error");
  // (b) mutations of a small tokenizer.json
  const std::string js = json::parse(test::slurp(test::tokenizer_data_dir() / "variants" / "bl-llama3-added.json"))["tokenizer"].dump();
  loaded = rejected = 0;
  for (int k = 0; k < 300; ++k) {
    std::string m = js;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) m[rng() % m.size()] = "{}[]\",:0123456789 aZ\\\x01"[rng() % 22];
    try {
      const Tokenizer t = Tokenizer::from_json(m);
      (void)t.decode(t.encode("x <L> y zqx 123 \xF0\x9F\x98\x80"));
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  // type confusion in the fields of that tokenizer.json (all but vocab/merges)
  json base = json::parse(js);
  for (const char* path : {"/normalizer", "/pre_tokenizer", "/post_processor", "/decoder", "/added_tokens", "/model/dropout",
                           "/model/unk_token", "/model/fuse_unk", "/model/byte_fallback", "/model/ignore_merges",
                           "/added_tokens/0/content", "/added_tokens/0/special", "/pre_tokenizer/pretokenizers/0/pattern",
                           "/pre_tokenizer/pretokenizers/0/behavior", "/post_processor/processors/1/single",
                           "/post_processor/processors/1/special_tokens", "/decoder/type"}) {
    for (const json& bad : {json(42), json("str"), json::array({1, "x"}), json::object({{"type", 3}}), json(true), json(-1.5)}) {
      json m = base;
      const json::json_pointer ptr(path);
      if (!m.contains(ptr)) continue;
      m[ptr] = bad;
      try {
        const Tokenizer t = Tokenizer::from_json(m.dump());
        (void)t.decode(t.encode("x <L> y"));
        ++loaded;
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Tokenizer);
        ++rejected;
      }
    }
  }
  MESSAGE("mutated tokenizer.json: " << loaded << " loaded, " << rejected << " rejected with llrt::Error");
  // (c) ByteLevel BPE is lossless: decode(encode(s)) == s for any valid UTF-8, special tokens included
  const Tokenizer l3 = Tokenizer::load(test::model_dir("llama-3.2-mini"));
  const char32_t ranges[][2] = {{0x20, 0x7E}, {0x0, 0x20}, {0xA0, 0x2FF}, {0x370, 0x52F}, {0x600, 0x6FF}, {0x900, 0x97F},
                                {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0xE000, 0xFFFF}, {0x1F300, 0x1FAFF},
                                {0x10000, 0x10FFFF}};
  for (int k = 0; k < 300; ++k) {
    std::string s;
    const int n = static_cast<int>(rng() % 60);
    for (int c = 0; c < n; ++c) {
      if (rng() % 20 == 0) { s += "<|eot_id|>"; continue; }
      const auto& r = ranges[rng() % 12];
      char32_t cp = r[0] + static_cast<char32_t>(rng() % (r[1] - r[0] + 1));
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      if (cp < 0x80) s.push_back(static_cast<char>(cp));
      else if (cp < 0x800) { s.push_back(static_cast<char>(0xC0 | (cp >> 6))); s.push_back(static_cast<char>(0x80 | (cp & 0x3F))); }
      else if (cp < 0x10000) {
        s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    const auto ids = l3.encode(s, false);
    CHECK_MESSAGE(l3.decode(ids) == s, "round trip failed for random text #" << k);
    bool ok = false;
    CHECK(test::stream_decode(l3, ids, false, ok) == s);
    CHECK(ok);
  }
}
