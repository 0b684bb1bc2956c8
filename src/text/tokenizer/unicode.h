// llrt tokenizer: UTF-8 and Unicode character classes.
//
// Contract: every class here is the one HF `tokenizers` uses, measured from its engines
// (Oniguruma for Split regexes, Rust's regex crate for AddedToken lstrip/rstrip/single_word)
// by scripts/tokenizer/gen_unicode_tables.py, so our matchers agree with HF code point for code
// point. Lookups are O(1): a two-stage table (code point >> 8 -> 256-entry block of flag bytes)
// built once from the generated range lists.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "src/text/utf8.h"

namespace llrt::tok {

enum CharClass : uint8_t {
  kLetter = 1,     // Oniguruma \p{L}
  kNumber = 2,     // Oniguruma \p{N}
  kSpace = 4,      // Oniguruma \s
  kRustSpace = 8,  // Rust regex \s (AddedToken lstrip / rstrip)
  kRustWord = 16,  // Rust regex \w (AddedToken single_word)
};

// Flags (CharClass bits) of code point cp; 0 for cp > 0x10FFFF.
uint8_t char_flags(char32_t cp);

// Whether Oniguruma's (?i:x) matches cp, for x one of "strvmlde" (the letters of the Llama 3
// contractions). ASCII both cases, plus U+017F LATIN SMALL LETTER LONG S for 's'.
bool folds_to(char32_t cp, char ascii_lower);

// The UTF-8 codec is the text front end's one (src/text/utf8.h).
inline int utf8_decode(const char* s, size_t n, size_t i, char32_t& cp) { return utf8::decode_valid(s, n, i, cp); }
inline int utf8_len(unsigned char b) { return utf8::lead_length(b); }
inline void utf8_append(std::string& out, char32_t cp) { utf8::append(out, cp); }


// Byte offset of the first invalid UTF-8 sequence in s, or npos when s is valid UTF-8 (Rust
// `str` rules: shortest form, no surrogates, <= U+10FFFF).
size_t utf8_first_invalid(std::string_view s);

// Appends s to out converted the way Rust's String::from_utf8_lossy does: each maximal
// invalid subpart becomes one U+FFFD. If `hold_incomplete_tail`, a trailing sequence that is a
// valid but incomplete prefix of a character is not converted; its length is returned (0 if
// none) so a streaming caller can keep it for later.
size_t utf8_append_lossy(std::string& out, std::string_view s, bool hold_incomplete_tail);

// GPT-2 / ByteLevel byte <-> printable-character map (bytes_to_unicode()).
char32_t byte_to_unicode(uint8_t b);
// Inverse: the byte whose ByteLevel character is cp, or -1.
int unicode_to_byte(char32_t cp);

}  // namespace llrt::tok
