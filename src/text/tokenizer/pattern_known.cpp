// llrt tokenizer: hand-written matchers for the two regexes Llama-family files use.
//
// Llama 3 (tokenizer.json Split, behavior Isolated):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
//   |\s*[\r\n]+|\s+(?!\S)|\s+
// GPT-2 (ByteLevel use_regex):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Oniguruma tries the alternatives in order at each position and the first that matches wins
// (greedy quantifiers, backtracking). Each block below is one alternative, with the result of
// its backtracking worked out in closed form. Every character is matched by some alternative,
// so a match starts at every position the previous one ended.
#include "src/text/tokenizer/pattern.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {
namespace {

struct Cursor {
  const char* s;
  size_t n;
  // Code point at i and its byte length.
  char32_t at(size_t i, int& len) const {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) { len = 1; return b; }
    char32_t cp;
    len = utf8_decode(s, n, i, cp);
    return cp;
  }
  uint8_t flags(size_t i, int& len, char32_t& cp) const {
    cp = at(i, len);
    return char_flags(cp);
  }
  // End of the run of characters with any of `mask` flags starting at i.
  size_t run(size_t i, uint8_t mask) const {
    while (i < n) {
      int len;
      char32_t cp;
      if (!(flags(i, len, cp) & mask)) break;
      i += static_cast<size_t>(len);
    }
    return i;
  }
  // End of the run of "other" characters ([^\s\p{L}\p{N}]) starting at i.
  size_t run_other(size_t i) const {
    while (i < n) {
      int len;
      char32_t cp;
      if (flags(i, len, cp) & (kLetter | kNumber | kSpace)) break;
      i += static_cast<size_t>(len);
    }
    return i;
  }
};

// \s+(?!\S) | \s+  for the whitespace run starting at i (the \r\n rule handled by the caller).
size_t whitespace_tail(const Cursor& c, size_t i) {
  size_t e = i, last = i;
  while (e < c.n) {
    int len;
    char32_t cp;
    if (!(c.flags(e, len, cp) & kSpace)) break;
    last = e;
    e += static_cast<size_t>(len);
  }
  if (e == c.n) return e;      // \s+(?!\S) at the end of the text
  if (last > i) return last;   // give back the last space so it prefixes the next word
  return e;                    // \s+ (a single space before a non-space)
}

}  // namespace

size_t match_llama3_at(std::string_view sv, size_t i) {
  const Cursor c{sv.data(), sv.size()};
  const size_t n = c.n;
  int len0;
  char32_t c0;
  const uint8_t f0 = c.flags(i, len0, c0);
  const size_t i1 = i + static_cast<size_t>(len0);

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c0 == '\'' && i1 < n) {
    int len1;
    const char32_t c1 = c.at(i1, len1);
    const size_t i2 = i1 + static_cast<size_t>(len1);
    if (folds_to(c1, 's') || folds_to(c1, 't') || folds_to(c1, 'm') || folds_to(c1, 'd')) return i2;
    if (i2 < n) {
      int len2;
      const char32_t c2 = c.at(i2, len2);
      if ((folds_to(c1, 'r') && folds_to(c2, 'e')) || (folds_to(c1, 'v') && folds_to(c2, 'e')) ||
          (folds_to(c1, 'l') && folds_to(c2, 'l')))
        return i2 + static_cast<size_t>(len2);
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (f0 & kLetter) return c.run(i1, kLetter);
  if (c0 != '\r' && c0 != '\n' && !(f0 & kNumber) && i1 < n) {
    const size_t e = c.run(i1, kLetter);
    if (e > i1) return e;
  }
  // \p{N}{1,3}
  if (f0 & kNumber) {
    size_t e = i1;
    for (int k = 1; k < 3 && e < n; ++k) {
      int len;
      char32_t cp;
      if (!(c.flags(e, len, cp) & kNumber)) break;
      e += static_cast<size_t>(len);
    }
    return e;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    const size_t j = c0 == ' ' ? i1 : i;
    size_t e = c.run_other(j);
    if (e > j) {
      while (e < n && (sv[e] == '\r' || sv[e] == '\n')) ++e;
      return e;
    }
  }
  // Here c0 is whitespace. \s*[\r\n]+ : ends after the last \r or \n of the whitespace run.
  {
    size_t e = i, after_nl = 0;
    while (e < n) {
      int len;
      char32_t cp;
      if (!(c.flags(e, len, cp) & kSpace)) break;
      e += static_cast<size_t>(len);
      if (cp == '\r' || cp == '\n') after_nl = e;
    }
    if (after_nl) return after_nl;
  }
  return whitespace_tail(c, i);
}

size_t match_gpt2_at(std::string_view sv, size_t i) {
  const Cursor c{sv.data(), sv.size()};
  const size_t n = c.n;
  // 's|'t|'re|'ve|'m|'ll|'d
  if (sv[i] == '\'' && i + 1 < n) {
    const char a = sv[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const char b = sv[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
  const size_t j = sv[i] == ' ' ? i + 1 : i;
  if (j < n) {
    int len;
    char32_t cp;
    const uint8_t f = c.flags(j, len, cp);
    const size_t j1 = j + static_cast<size_t>(len);
    if (f & kLetter) return c.run(j1, kLetter);
    if (f & kNumber) return c.run(j1, kNumber);
    if (!(f & kSpace)) return c.run_other(j1);
  }
  return whitespace_tail(c, i);
}

}  // namespace llrt::tok
