// Shared checks for the tokenizer tests: ids / decodes / streaming against HF-recorded cases.
#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "llrt/tokenizer.h"
#include "tests/test_data.h"

namespace llrt::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::filesystem::path tokenizer_data_dir() { return repo_dir() / "tests" / "data" / "tokenizer"; }

inline std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t x : v) s += std::to_string(x) + " ";
  return s;
}

inline bool valid_utf8(const std::string& s) {
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

// Streams ids one at a time; every chunk must be complete UTF-8. Returns the concatenation.
inline std::string stream_decode(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip, bool& chunks_ok) {
  auto stream = tok.decode_stream(skip);
  std::string acc;
  chunks_ok = true;
  for (int32_t id : ids) {
    const std::string c = stream.push(id);
    chunks_ok = chunks_ok && valid_utf8(c);
    acc += c;
  }
  const std::string tail = stream.finish();
  chunks_ok = chunks_ok && valid_utf8(tail);
  return acc + tail;
}

struct CaseStats {
  size_t n = 0, ids = 0, decode = 0, stream = 0, random = 0, random_n = 0, round_trip = 0;
};

// texts[i] against cases[i] = {ids, plain, decode, decode_skip} (or {hf_error}), and
// decode_cases = [{ids, decode, decode_skip}].
inline CaseStats check_cases(const Tokenizer& tok, const nlohmann::json& texts, const nlohmann::json& cases,
                             const nlohmann::json& decode_cases, const std::string& name) {
  REQUIRE(texts.size() == cases.size());
  CaseStats st;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (cases[i].contains("hf_error")) continue;
    ++st.n;
    const std::string text = texts[i].get<std::string>();
    const auto want = cases[i]["ids"].get<std::vector<int32_t>>();
    const auto want_plain = cases[i]["plain"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text, true);
    const auto got_plain = tok.encode(text, false);
    CHECK_MESSAGE(got == want, name << " #" << i << " [" << text << "] want " << show(want) << " got " << show(got));
    CHECK_MESSAGE(got_plain == want_plain, name << " #" << i << " (no special) [" << text << "] want " << show(want_plain)
                                                << " got " << show(got_plain));
    st.ids += got == want && got_plain == want_plain;
    const std::string dec = tok.decode(want, false), dec_skip = tok.decode(want, true);
    const std::string want_dec = cases[i]["decode"].get<std::string>(), want_skip = cases[i]["decode_skip"].get<std::string>();
    CHECK_MESSAGE(dec == want_dec, name << " #" << i << " decode [" << dec << "] want [" << want_dec << "]");
    CHECK_MESSAGE(dec_skip == want_skip, name << " #" << i << " decode skip [" << dec_skip << "] want [" << want_skip << "]");
    st.decode += dec == want_dec && dec_skip == want_skip;
    if (want_skip == text) {  // HF round-trips this text: so must we, from our own ids
      CHECK_MESSAGE(tok.decode(got, true) == text, name << " #" << i << " round trip [" << text << "]");
      st.round_trip += tok.decode(got, true) == text;
    }
    bool ok = false;
    const std::string streamed = stream_decode(tok, want, true, ok);
    CHECK_MESSAGE(ok, name << " #" << i << " streamed a partial UTF-8 character");
    CHECK_MESSAGE(streamed == dec_skip, name << " #" << i << " stream [" << streamed << "] != decode [" << dec_skip << "]");
    st.stream += ok && streamed == dec_skip;
  }
  for (const auto& c : decode_cases) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      ++st.random_n;
      const std::string want = c[skip ? "decode_skip" : "decode"].get<std::string>();
      const std::string got = tok.decode(ids, skip);
      CHECK_MESSAGE(got == want, name << " decode_case " << show(ids) << " skip=" << skip << " got [" << got << "] want [" << want << "]");
      bool ok = false;
      const std::string streamed = stream_decode(tok, ids, skip, ok);
      CHECK(ok);
      CHECK_MESSAGE(streamed == want, name << " stream of decode_case " << show(ids));
      st.random += ok && streamed == want && got == want;
    }
  }
  MESSAGE(name << " via " << tok.tokenizer_kind() << ": ids " << st.ids << "/" << st.n << ", decode " << st.decode
               << ", stream " << st.stream << ", round trips " << st.round_trip << ", random-id decode+stream " << st.random
               << "/" << st.random_n);
  return st;
}

}  // namespace llrt::test
