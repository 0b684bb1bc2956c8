// llrt tokenizer: the patterns of Split pre-tokenizers and Replace normalizers/decoders.
//
// Regex engine choice. HF `tokenizers` runs these regexes with Oniguruma. Every Llama-family
// tokenizer.json uses one of two regexes (the Llama 3 one and GPT-2's, the latter implied by
// ByteLevel use_regex); for those llrt has hand-written matchers (pattern_known.cpp) that
// reproduce Oniguruma's backtracking order alternative by alternative, with the character
// classes measured from Oniguruma itself (unicode_tables.inc). They run about an order of
// magnitude faster than a general engine (no backtracking machinery, an ASCII fast path) and
// need no Unicode-version agreement between two libraries. Any other regex goes to PCRE2
// (Debian libpcre2-8, UTF + UCP mode), the general engine closest to Oniguruma's Perl syntax
// (Unicode properties, lookaround, (?i:...) groups); its iteration reproduces the onig crate's
// handling of empty matches. Tests cross-check the hand matchers against PCRE2.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llrt::tok {

struct Match {
  uint32_t begin, end;
};

class Pattern {
 public:
  enum class Kind { None, Literal, Llama3, Gpt2, Pcre2 };
  static Pattern literal(std::string s);
  // Known regexes get the hand matchers unless force_pcre2 (tests use that to cross-check).
  static Pattern regex(const std::string& re, bool force_pcre2 = false);
  static Pattern gpt2() { Pattern p; p.kind_ = Kind::Gpt2; return p; }

  Kind kind() const { return kind_; }
  // All non-overlapping matches, left to right, as Oniguruma's find_iter reports them.
  void find_all(std::string_view s, std::vector<Match>& out) const;

  static const char* llama3_regex();
  static const char* gpt2_regex();

 private:
  Kind kind_ = Kind::None;
  std::string literal_;
  std::shared_ptr<void> code_;  // pcre2_code_8*
  std::string source_;          // the regex as written (for messages)
};

// Hand matchers (pattern_known.cpp): end of the match that starts at i (always > i: the
// alternatives of these regexes cover every character).
size_t match_llama3_at(std::string_view s, size_t i);
size_t match_gpt2_at(std::string_view s, size_t i);

}  // namespace llrt::tok
