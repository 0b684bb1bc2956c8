// llrt tokenizer: Unicode class tables, UTF-8 validation / lossy conversion, ByteLevel map.
// See unicode.h for the contract.
#include "src/text/tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <memory>
#include <vector>

namespace llrt::tok {
namespace {

struct CpRange {
  char32_t lo, hi;
};
#include "src/text/tokenizer/unicode_tables.inc"

// Two-stage table: stage1[cp >> 8] = index of a 256-byte block in stage2.
struct ClassTable {
  std::array<uint16_t, 0x1100> stage1{};
  std::vector<uint8_t> stage2;

  ClassTable() {
    std::vector<uint8_t> flat(0x110000, 0);
    auto mark = [&](const CpRange* r, size_t n, uint8_t bit) {
      for (size_t i = 0; i < n; ++i)
        for (char32_t c = r[i].lo; c <= r[i].hi; ++c) flat[c] |= bit;
    };
#define LLRT_MARK(arr, bit) mark(arr, sizeof(arr) / sizeof(arr[0]), bit)
    LLRT_MARK(kTabLetter, kLetter);
    LLRT_MARK(kTabNumber, kNumber);
    LLRT_MARK(kTabOnigSpace, kSpace);
    LLRT_MARK(kTabRustSpace, kRustSpace);
    LLRT_MARK(kTabRustWord, kRustWord);
#undef LLRT_MARK
    for (size_t blk = 0; blk < 0x1100; ++blk) {
      const uint8_t* b = flat.data() + blk * 256;
      size_t found = stage2.size() / 256;
      for (size_t k = 0; k < stage2.size() / 256; ++k) {
        if (std::equal(b, b + 256, stage2.data() + k * 256)) { found = k; break; }
      }
      if (found == stage2.size() / 256) stage2.insert(stage2.end(), b, b + 256);
      stage1[blk] = static_cast<uint16_t>(found);
    }
  }
};

const ClassTable& table() {
  static const ClassTable t;
  return t;
}

struct ByteMap {
  std::array<char32_t, 256> fwd{};
  std::array<int16_t, 324> inv{};  // every mapped code point is < 324
  ByteMap() {
    inv.fill(-1);
    // bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
    // U+0100.. in byte order.
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      fwd[b] = keep ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      inv[fwd[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Length of the valid UTF-8 sequence at s[i..], 0 when invalid; for an invalid one,
// `bad_len` receives the length of its maximal subpart (>= 1) and `truncated` whether it failed
// only because the input ended.
int utf8_check(const unsigned char* s, size_t n, size_t i, int& bad_len, bool& truncated) {
  const unsigned char b0 = s[i];
  truncated = false;
  bad_len = 1;
  if (b0 < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= n) { truncated = true; bad_len = k; return 0; }
    const unsigned char c = s[i + k];
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) { bad_len = k; return 0; }
  }
  return need + 1;
}

}  // namespace

uint8_t char_flags(char32_t cp) {
  if (cp > 0x10FFFF) return 0;
  const ClassTable& t = table();
  return t.stage2[static_cast<size_t>(t.stage1[cp >> 8]) * 256 + (cp & 0xFF)];
}

bool folds_to(char32_t cp, char x) {
  auto in = [cp](const char32_t* b, const char32_t* e) { return std::find(b, e, cp) != e; };
#define LLRT_FOLD(ch) \
  case #ch[0]: return in(std::begin(kFold_##ch), std::end(kFold_##ch));
  switch (x) {
    LLRT_FOLD(s) LLRT_FOLD(t) LLRT_FOLD(r) LLRT_FOLD(v) LLRT_FOLD(m) LLRT_FOLD(l) LLRT_FOLD(d) LLRT_FOLD(e)
    default: return false;
  }
#undef LLRT_FOLD
}

size_t utf8_first_invalid(std::string_view sv) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) { ++i; continue; }
    int bad;
    bool trunc;
    const int len = utf8_check(s, n, i, bad, trunc);
    if (len == 0) return i;
    i += static_cast<size_t>(len);
  }
  return std::string_view::npos;
}

size_t utf8_append_lossy(std::string& out, std::string_view sv, bool hold_incomplete_tail) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < n) {
    if (s[i] < 0x80) { ++i; continue; }
    int bad;
    bool trunc;
    const int len = utf8_check(s, n, i, bad, trunc);
    if (len > 0) { i += static_cast<size_t>(len); continue; }
    out.append(sv.data() + run, i - run);
    if (trunc && hold_incomplete_tail) return n - i;
    out.append("\xEF\xBF\xBD");
    i += static_cast<size_t>(bad);
    run = i;
  }
  out.append(sv.data() + run, n - run);
  return 0;
}

char32_t byte_to_unicode(uint8_t b) { return byte_map().fwd[b]; }

int unicode_to_byte(char32_t cp) { return cp < 324 ? byte_map().inv[cp] : -1; }

}  // namespace llrt::tok
