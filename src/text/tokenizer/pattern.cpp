// llrt tokenizer: Pattern (literal / hand-matched known regex / PCRE2). See pattern.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "src/text/tokenizer/pattern.h"

#include <pcre2.h>

#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {

const char* Pattern::llama3_regex() {
  return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
         "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
}
const char* Pattern::gpt2_regex() {
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.kind_ = Kind::Literal;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::regex(const std::string& re, bool force_pcre2) {
  Pattern p;
  if (!force_pcre2 && re == llama3_regex()) { p.kind_ = Kind::Llama3; return p; }
  if (!force_pcre2 && re == gpt2_regex()) { p.kind_ = Kind::Gpt2; return p; }
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    tok_fail("regex '" + re + "' does not compile (PCRE2 at offset " + std::to_string(off) +
             "): " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  p.kind_ = Kind::Pcre2;
  p.source_ = re;
  p.code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
  return p;
}

void Pattern::find_all(std::string_view s, std::vector<Match>& out) const {
  out.clear();
  const size_t n = s.size();
  switch (kind_) {
    case Kind::None:
      return;
    case Kind::Literal: {
      if (literal_.empty()) return;
      size_t pos = 0;
      while ((pos = s.find(literal_, pos)) != std::string_view::npos) {
        out.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + literal_.size())});
        pos += literal_.size();
      }
      return;
    }
    case Kind::Llama3:
      for (size_t i = 0; i < n;) {
        const size_t e = match_llama3_at(s, i);
        out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(e)});
        i = e;
      }
      return;
    case Kind::Gpt2:
      for (size_t i = 0; i < n;) {
        const size_t e = match_gpt2_at(s, i);
        out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(e)});
        i = e;
      }
      return;
    case Kind::Pcre2: {
      auto* code = static_cast<pcre2_code*>(code_.get());
      pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
      if (!md) tok_fail("PCRE2: out of memory");
      // The onig crate's FindMatches: search from last_end; an empty match right where the
      // previous match ended is rejected and the search moves one character on.
      size_t last_end = 0;
      bool have_last = false;
      size_t last_match_end = 0;
      while (last_end <= n) {
        const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), n, last_end,
                                   PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(md);
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(rc, msg, sizeof(msg));
          const bool limit = rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT;
          const std::string shown = source_.size() > 200 ? source_.substr(0, 200) + "..." : source_;
          tok_fail("the tokenizer's regex '" + shown + "' failed on this text (from byte " + std::to_string(last_end) + " of " +
                   std::to_string(n) + "): PCRE2 error " + std::to_string(rc) + ", " + reinterpret_cast<const char*>(msg) +
                   (limit ? ". The pattern backtracks without bound on this input: simplify that pattern in tokenizer.json "
                            "(pre_tokenizer / normalizer), or shorten the text"
                          : ". Check that pattern in tokenizer.json (pre_tokenizer / normalizer)"));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t b = ov[0], e = ov[1];
        if (e == b && have_last && last_match_end == e) {
          if (last_end >= n) break;
          last_end += static_cast<size_t>(utf8_len(static_cast<unsigned char>(s[last_end])));
          continue;
        }
        last_end = e;
        last_match_end = e;
        have_last = true;
        out.push_back({static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
      }
      pcre2_match_data_free(md);
      return;
    }
  }
}

}  // namespace llrt::tok
