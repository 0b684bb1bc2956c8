// Internal: the one UTF-8 codec of the text front end (tokenizers and chat templates).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace llrt::utf8 {

// Appends code point cp (<= U+10FFFF) as UTF-8.
inline void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the sequence a lead byte starts (1 for ASCII, continuation and invalid bytes).
inline int lead_length(unsigned char b) { return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

// Decodes one code point of VALID UTF-8 at s[i] (the caller validated it); returns its length.
// A sequence cut short by n decodes its lead byte alone (length 1).
inline int decode_valid(const char* s, size_t n, size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const int len = b0 < 0x80 ? 1 : lead_length(b0);
  if (len == 1 || i + size_t(len) > n) {
    cp = b0;
    return 1;
  }
  cp = len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3Fu);
  return len;
}

// Decodes one code point checking the structure (lead byte, continuation bytes, length);
// returns its length, or 0 when the bytes at s[i] are not a well-formed sequence.
inline int decode_checked(const char* s, size_t n, size_t i, char32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + size_t(len) > n) return 0;
  cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + size_t(k)]);
    if ((cc >> 6) != 2) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  return len;
}

}  // namespace llrt::utf8
