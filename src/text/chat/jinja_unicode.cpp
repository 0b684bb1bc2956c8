// llrt chat templates: Python str semantics on UTF-8 (see jinja_unicode.h).
#include "src/text/chat/jinja_unicode.h"

#include "src/text/utf8.h"

#include <algorithm>
#include <cwctype>
#include <locale.h>

#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_limits.h"

namespace llrt::jinja {
namespace {

struct CaseRange { char32_t first, last; int delta, stride; };
struct CaseMulti { char32_t cp; const char32_t* mapped; };
struct CpRange { char32_t first, last; };
#include "src/text/chat/jinja_casemap.inc"

template <size_t N>
bool in_ranges(const CpRange (&table)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(table), std::end(table), c,
                             [](char32_t v, const CpRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= (it - 1)->last;
}

// Appends Python's full case mapping of c using one generated table (Upper/Lower/Title).
template <size_t NR, size_t NM>
void map_case(std::u32string& out, char32_t c, const CaseRange (&ranges)[NR], const CaseMulti (&multi)[NM]) {
  for (const CaseMulti& m : multi)
    if (m.cp == c) { out += m.mapped; return; }
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                             [](char32_t v, const CaseRange& r) { return v < r.first; });
  if (it != std::begin(ranges)) {
    const CaseRange& r = *(it - 1);
    if (c <= r.last && (c - r.first) % r.stride == 0) { out += static_cast<char32_t>(static_cast<int>(c) + r.delta); return; }
  }
  out += c;
}

bool is_cased(char32_t c) { return in_ranges(kCased, c); }
bool is_case_ignorable(char32_t c) { return in_ranges(kCaseIgnorable, c); }

// Python's final-sigma rule: capital sigma lowercases to final sigma when preceded by a cased letter and not
// followed by one (case-ignorable characters skipped on both sides).
bool final_sigma(const std::u32string& s, size_t i) {
  size_t j = i;
  bool before = false;
  while (j > 0) {
    char32_t c = s[--j];
    if (is_case_ignorable(c)) continue;
    before = is_cased(c);
    break;
  }
  if (!before) return false;
  for (size_t k = i + 1; k < s.size(); ++k) {
    if (is_case_ignorable(s[k])) continue;
    return !is_cased(s[k]);
  }
  return true;
}

locale_t utf8_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

template <typename Pred>
bool all_chars(std::string_view s, Pred pred) {
  std::u32string u = utf8_decode(s);
  if (u.empty()) return false;
  for (char32_t c : u) {
    if (c >= 0x80 && !utf8_locale()) render_error("no C.UTF-8 locale to classify non-ASCII characters");
    if (!pred(c)) return false;
  }
  return true;
}

}  // namespace

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    const int n = utf8::decode_checked(s.data(), s.size(), i, cp);
    if (n == 0) render_error("malformed UTF-8 in a string");
    out += cp;
    i += size_t(n);
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) { utf8::append(out, cp); }

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool py_isprintable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c == ' ') return true;
  if (py_isspace(c)) return false;  // Zs/Zl/Zp other than ' '
  if ((c >= 0x80 && c <= 0xA0) || c == 0xAD || (c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) ||
      (c >= 0x2060 && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || c == 0x061C ||
      (c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000)
    return false;
  if (locale_t loc = utf8_locale()) return iswprint_l(static_cast<wint_t>(c), loc);
  return true;
}

std::string py_strip(std::string_view s, const std::string* chars, StripSide side) {
  std::u32string u = utf8_decode(s);
  std::u32string set = chars ? utf8_decode(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_isspace(c); };
  size_t b = 0, e = u.size();
  if (side != StripSide::Right)
    while (b < e && strip_it(u[b])) ++b;
  if (side != StripSide::Left)
    while (e > b && strip_it(u[e - 1])) --e;
  return utf8_encode(std::u32string_view(u).substr(b, e - b));
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, long maxsplit, bool from_right) {
  std::vector<std::string> parts;
  // Each part is checked before it is added (a 60 MB run of separators is 60 million parts).
  auto room = [](size_t n) { check_list_size(uint64_t(n) + 1, 0, "str.split()"); };
  if (sep) {
    if (sep->empty()) render_error("ValueError: empty separator");
    if (!from_right) {
      size_t start = 0;
      while (maxsplit < 0 || static_cast<long>(parts.size()) < maxsplit) {
        size_t p = s.find(*sep, start);
        if (p == std::string_view::npos) break;
        room(parts.size());
        parts.emplace_back(s.substr(start, p - start));
        start = p + sep->size();
      }
      room(parts.size());
      parts.emplace_back(s.substr(start));
    } else {
      size_t end = s.size();
      std::vector<std::string> rev;
      while (maxsplit < 0 || static_cast<long>(rev.size()) < maxsplit) {
        if (end < sep->size()) break;
        size_t p = s.rfind(*sep, end - sep->size());
        if (p == std::string_view::npos) break;
        room(rev.size());
        rev.emplace_back(s.substr(p + sep->size(), end - p - sep->size()));
        end = p;
      }
      room(rev.size());
      rev.emplace_back(s.substr(0, end));
      parts.assign(rev.rbegin(), rev.rend());
    }
    return parts;
  }
  // Whitespace split: runs of whitespace separate, no empty strings.
  std::u32string u = utf8_decode(s);
  if (!from_right) {
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && py_isspace(u[i])) ++i;
      if (i == u.size()) break;
      if (maxsplit >= 0 && static_cast<long>(parts.size()) == maxsplit) {
        size_t e = u.size();
        while (e > i && py_isspace(u[e - 1])) --e;
        room(parts.size());
        parts.push_back(utf8_encode(std::u32string_view(u).substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < u.size() && !py_isspace(u[j])) ++j;
      room(parts.size());
      parts.push_back(utf8_encode(std::u32string_view(u).substr(i, j - i)));
      i = j;
    }
  } else {
    std::vector<std::string> rev;
    size_t i = u.size();
    while (i > 0) {
      while (i > 0 && py_isspace(u[i - 1])) --i;
      if (i == 0) break;
      if (maxsplit >= 0 && static_cast<long>(rev.size()) == maxsplit) {
        size_t b = 0;
        while (b < i && py_isspace(u[b])) ++b;
        room(rev.size());
        rev.push_back(utf8_encode(std::u32string_view(u).substr(b, i - b)));
        break;
      }
      size_t j = i;
      while (j > 0 && !py_isspace(u[j - 1])) --j;
      room(rev.size());
      rev.push_back(utf8_encode(std::u32string_view(u).substr(j, i - j)));
      i = j;
    }
    parts.assign(rev.rbegin(), rev.rend());
  }
  return parts;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::u32string u = utf8_decode(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    char32_t c = u[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
               c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    check_list_size(uint64_t(out.size()) + 1, 0, "splitting lines");
    out.push_back(utf8_encode(std::u32string_view(u).substr(start, i - start)));
    if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < u.size()) out.push_back(utf8_encode(std::u32string_view(u).substr(start)));
  return out;
}

std::string py_upper(std::string_view s) {
  std::u32string out;
  for (char32_t c : utf8_decode(s)) map_case(out, c, kUpperRanges, kUpperMulti);
  return utf8_encode(out);
}

std::string py_lower(std::string_view s) {
  std::u32string u = utf8_decode(s), out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (u[i] == 0x3A3) out += final_sigma(u, i) ? U'\u03C2' : U'\u03C3';
    else map_case(out, u[i], kLowerRanges, kLowerMulti);
  }
  return utf8_encode(out);
}

std::string py_title(std::string_view s) {
  std::u32string u = utf8_decode(s), out;
  bool prev_cased = false;
  for (char32_t c : u) {
    if (prev_cased) map_case(out, c, kLowerRanges, kLowerMulti);
    else map_case(out, c, kTitleRanges, kTitleMulti);
    prev_cased = is_cased(c);
  }
  return utf8_encode(out);
}

std::string py_capitalize(std::string_view s) {
  std::u32string u = utf8_decode(s), out;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 0) map_case(out, u[i], kTitleRanges, kTitleMulti);
    else if (u[i] == 0x3A3) out += final_sigma(u, i) ? U'\u03C2' : U'\u03C3';
    else map_case(out, u[i], kLowerRanges, kLowerMulti);
  }
  return utf8_encode(out);
}

std::string jinja_title(std::string_view s) {
  // Jinja: "".join(w[0].upper() + w[1:].lower() for w in re.split(r"([-\s({\[<]+)", s) if w)
  std::u32string u = utf8_decode(s);
  std::string out;
  auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c); };
  size_t i = 0;
  while (i < u.size()) {
    size_t j = i;
    bool sep = is_sep(u[i]);
    while (j < u.size() && is_sep(u[j]) == sep) ++j;
    std::u32string_view part = std::u32string_view(u).substr(i, j - i);
    if (sep) {
      out += utf8_encode(part);
    } else {
      out += py_upper(utf8_encode(part.substr(0, 1)));
      out += py_lower(utf8_encode(part.substr(1)));
    }
    i = j;
  }
  return out;
}

bool py_is_cased_all(std::string_view s, bool upper) {
  bool any = false;
  for (char32_t c : utf8_decode(s)) {
    std::u32string lo, up;
    map_case(lo, c, kLowerRanges, kLowerMulti);
    map_case(up, c, kUpperRanges, kUpperMulti);
    bool is_upper = is_cased(c) && lo != std::u32string(1, c);
    bool is_lower = is_cased(c) && up != std::u32string(1, c);
    if (upper ? is_lower : is_upper) return false;
    any = any || (upper ? is_upper : is_lower);
  }
  return any;
}

bool py_isdigit_str(std::string_view s) {
  return all_chars(s, [](char32_t c) {
    return c < 0x80 ? (c >= '0' && c <= '9') : iswdigit_l(static_cast<wint_t>(c), utf8_locale()) != 0;
  });
}
bool py_isalpha_str(std::string_view s) {
  return all_chars(s, [](char32_t c) {
    return c < 0x80 ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') : iswalpha_l(static_cast<wint_t>(c), utf8_locale()) != 0;
  });
}
bool py_isalnum_str(std::string_view s) {
  return all_chars(s, [](char32_t c) {
    return c < 0x80 ? (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9'))
                    : iswalnum_l(static_cast<wint_t>(c), utf8_locale()) != 0;
  });
}
bool py_isspace_str(std::string_view s) {
  std::u32string u = utf8_decode(s);
  return !u.empty() && std::all_of(u.begin(), u.end(), py_isspace);
}

}  // namespace llrt::jinja
