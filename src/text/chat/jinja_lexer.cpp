// llrt chat templates: Jinja lexer (see jinja_lexer.h for the whitespace contract).
#include "src/text/chat/jinja_lexer.h"

#include <cstdlib>

#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_unicode.h"

namespace llrt::jinja {
namespace {

// Length in bytes of the Python-whitespace code point at s[i], or 0.
size_t space_at(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return py_isspace(c) ? 1 : 0;
  size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) return 0;
  std::u32string u = utf8_decode(std::string_view(s).substr(i, n));
  return (u.size() == 1 && py_isspace(u[0])) ? n : 0;
}

size_t skip_space(const std::string& s, size_t i) {
  while (i < s.size()) {
    size_t n = space_at(s, i);
    if (!n) break;
    i += n;
  }
  return i;
}

// Python str.rstrip() of s[b, e): returns the new end.
size_t rstrip_end(const std::string& s, size_t b, size_t e) {
  std::u32string u = utf8_decode(std::string_view(s).substr(b, e - b));
  size_t keep = u.size();
  while (keep > 0 && py_isspace(u[keep - 1])) --keep;
  return b + utf8_encode(std::u32string_view(u).substr(0, keep)).size();
}

bool is_all_space(const std::string& s, size_t b, size_t e) {
  if (b >= e) return false;  // whitespace_re.fullmatch needs at least one character
  for (size_t i = b; i < e;) {
    size_t n = space_at(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

bool starts(const std::string& s, size_t i, const char* lit) {
  return s.compare(i, std::char_traits<char>::length(lit), lit) == 0;
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(const std::string& src) : s_(src) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < s_.size()) {
      // Find the next tag opener.
      size_t tag = s_.find('{', pos);
      while (tag != std::string::npos && !(tag + 1 < s_.size() && (s_[tag + 1] == '{' || s_[tag + 1] == '%' || s_[tag + 1] == '#')))
        tag = s_.find('{', tag + 1);
      if (tag == std::string::npos) {
        emit_data(pos, s_.size());
        break;
      }
      char kind = s_[tag + 1];
      char sign = tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+') ? s_[tag + 2] : 0;
      size_t text_end = tag;
      if (sign == '-') {
        text_end = rstrip_end(s_, pos, tag);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: block and comment tags only
        // Start of the tag's line, not before pos (scan back only over this text: linear overall).
        size_t l_pos = tag;
        while (l_pos > pos && s_[l_pos - 1] != '\n') --l_pos;
        if ((l_pos > pos || line_starting) && is_all_space(s_, l_pos, tag)) text_end = l_pos;
      }
      emit_data(pos, text_end);
      size_t after = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(tag, after);
      } else if (kind == '%' && is_raw(after)) {
        pos = lex_raw(tag, after);
      } else {
        toks_.push_back({kind == '{' ? Tok::VarBegin : Tok::BlockBegin, "", 0, 0, tag});
        pos = lex_tag(after, kind == '{');
      }
      line_starting = pos > 0 && s_[pos - 1] == '\n';
    }
    toks_.push_back({Tok::Eof, "", 0, 0, s_.size()});
    return std::move(toks_);
  }

 private:
  void emit_data(size_t b, size_t e) {
    if (e > b) toks_.push_back({Tok::Data, s_.substr(b, e - b), 0, 0, b});
  }

  // After a block-ish end delimiter at i (pointing at '%' or '#' of "%}"/"#}"), applies trim_blocks.
  size_t after_end(size_t i, char sign) {
    i += 2;
    if (sign == '-') return skip_space(s_, i);
    if (sign == 0 && i < s_.size() && s_[i] == '\n') return i + 1;
    return i;
  }

  size_t lex_comment(size_t tag, size_t i) {
    for (; i + 1 < s_.size(); ++i) {
      if (s_[i] == '+' && starts(s_, i + 1, "#}")) return i + 3;
      if (s_[i] == '-' && starts(s_, i + 1, "#}")) return skip_space(s_, i + 3);
      if (starts(s_, i, "#}")) return after_end(i, 0);
    }
    throw SyntaxError("Missing end of comment tag", tag);
  }

  // `{%(-|+|)\s*raw\s*(-%}\s*|%})` starting after the sign at i?
  bool is_raw(size_t i) {
    size_t j = skip_space(s_, i);
    if (!starts(s_, j, "raw")) return false;
    j = skip_space(s_, j + 3);
    return starts(s_, j, "-%}") || starts(s_, j, "%}");
  }

  size_t lex_raw(size_t tag, size_t i) {
    size_t j = skip_space(s_, skip_space(s_, i) + 3);
    size_t body = starts(s_, j, "-%}") ? skip_space(s_, j + 3) : j + 2;
    for (size_t k = body; k + 1 < s_.size(); ++k) {
      if (!starts(s_, k, "{%")) continue;
      char sign = k + 2 < s_.size() && (s_[k + 2] == '-' || s_[k + 2] == '+') ? s_[k + 2] : 0;
      size_t m = skip_space(s_, k + 2 + (sign ? 1 : 0));
      if (!starts(s_, m, "endraw")) continue;
      m = skip_space(s_, m + 6);
      char esign = 0;
      if (s_[m] == '-' || s_[m] == '+') esign = s_[m++];
      if (!starts(s_, m, "%}")) continue;
      size_t text_end = k;
      if (sign == '-') {
        text_end = rstrip_end(s_, body, k);
      } else if (sign != '+') {
        size_t l_pos = k;
        while (l_pos > body && s_[l_pos - 1] != '\n') --l_pos;
        if (l_pos > body && is_all_space(s_, l_pos, k)) text_end = l_pos;
      }
      emit_data(body, text_end);
      return after_end(m, esign);
    }
    throw SyntaxError("Missing end of raw directive", tag);
  }

  size_t lex_tag(size_t i, bool variable) {
    std::vector<char> balance;
    while (true) {
      i = skip_space(s_, i);
      if (i >= s_.size()) throw SyntaxError(variable ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'", i);
      if (balance.empty()) {
        if (variable) {
          if (starts(s_, i, "-}}")) { toks_.push_back({Tok::VarEnd, "", 0, 0, i}); return skip_space(s_, i + 3); }
          if (starts(s_, i, "}}")) { toks_.push_back({Tok::VarEnd, "", 0, 0, i}); return i + 2; }
        } else {
          if (starts(s_, i, "+%}")) { toks_.push_back({Tok::BlockEnd, "", 0, 0, i}); return i + 3; }
          if (starts(s_, i, "-%}")) { toks_.push_back({Tok::BlockEnd, "", 0, 0, i}); return skip_space(s_, i + 3); }
          if (starts(s_, i, "%}")) { toks_.push_back({Tok::BlockEnd, "", 0, 0, i}); return after_end(i, 0); }
        }
      }
      char c = s_[i];
      if (is_digit(c)) { i = lex_number(i); continue; }
      if (is_name_start(c)) {
        size_t j = i;
        while (j < s_.size() && is_name_char(s_[j])) ++j;
        toks_.push_back({Tok::Name, s_.substr(i, j - i), 0, 0, i});
        i = j;
        continue;
      }
      if (c == '\'' || c == '"') { i = lex_string(i); continue; }
      static const char* ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(",
                                  ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};
      const char* op = nullptr;
      for (const char* o : ops)
        if (starts(s_, i, o)) { op = o; break; }
      if (!op) throw SyntaxError(std::string("unexpected char '") + c + "'", i);
      std::string o(op);
      if (o == "{" || o == "(" || o == "[") {
        balance.push_back(o == "{" ? '}' : o == "(" ? ')' : ']');
      } else if (o == "}" || o == ")" || o == "]") {
        if (balance.empty()) throw SyntaxError("unexpected '" + o + "'", i);
        if (balance.back() != o[0]) throw SyntaxError("unexpected '" + o + "', expected '" + balance.back() + "'", i);
        balance.pop_back();
      }
      toks_.push_back({Tok::Op, o, 0, 0, i});
      i += o.size();
    }
  }

  size_t lex_number(size_t i) {
    size_t start = i;
    auto digits = [&](auto pred) {
      std::string d;
      while (i < s_.size() && (pred(s_[i]) || (s_[i] == '_' && i + 1 < s_.size() && pred(s_[i + 1])))) {
        if (s_[i] != '_') d += s_[i];
        ++i;
      }
      return d;
    };
    if (s_[i] == '0' && i + 1 < s_.size() && std::string("xXoObB").find(s_[i + 1]) != std::string::npos) {
      char b = static_cast<char>(s_[i + 1] | 0x20);
      i += 2;
      int base = b == 'x' ? 16 : b == 'o' ? 8 : 2;
      std::string d = digits([&](char c) {
        return base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : (c >= '0' && c < '0' + base);
      });
      if (d.empty()) throw SyntaxError("invalid integer literal", start);
      toks_.push_back({Tok::Int, s_.substr(start, i - start), std::strtoll(d.c_str(), nullptr, base), 0, start});
      return i;
    }
    std::string text = digits(is_digit);
    bool is_float = false;
    if (i + 1 < s_.size() && s_[i] == '.' && is_digit(s_[i + 1])) {
      ++i;
      text += '.';
      text += digits(is_digit);
      is_float = true;
    }
    if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      size_t j = i + 1;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (j < s_.size() && is_digit(s_[j]) && (is_float || true)) {
        std::string exp = s_.substr(i + 1, j - i - 1);
        i = j;
        text += "e" + exp + digits(is_digit);
        is_float = true;
      }
    }
    Token t{is_float ? Tok::Float : Tok::Int, text, 0, 0, start};
    if (is_float) t.float_value = std::strtod(text.c_str(), nullptr);
    else t.int_value = std::strtoll(text.c_str(), nullptr, 10);
    toks_.push_back(t);
    return i;
  }

  // Python string literal escapes, as jinja applies them (unicode-escape codec).
  size_t lex_string(size_t i) {
    char q = s_[i];
    size_t start = i++;
    std::string out;
    while (true) {
      if (i >= s_.size()) throw SyntaxError(std::string("unexpected char '") + q + "'", start);
      char c = s_[i];
      if (c == q) break;
      if (c != '\\') { out += c; ++i; continue; }
      if (i + 1 >= s_.size()) throw SyntaxError(std::string("unexpected char '") + q + "'", start);
      char e = s_[i + 1];
      i += 2;
      auto hex = [&](int n) {
        if (i + n > s_.size()) throw SyntaxError("truncated \\x/\\u escape in string", i);
        std::string h = s_.substr(i, n);
        for (char hc : h)
          if (!std::isxdigit(static_cast<unsigned char>(hc))) throw SyntaxError("truncated \\x/\\u escape in string", i);
        i += n;
        utf8_append(out, static_cast<char32_t>(std::strtoul(h.c_str(), nullptr, 16)));
      };
      switch (e) {
        case '\n': break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        case 'N': throw SyntaxError("\\N{...} escapes in template strings are not supported by llrt", i - 2);
        default:
          if (e >= '0' && e <= '7') {
            int v = e - '0', n = 1;
            while (n < 3 && i < s_.size() && s_[i] >= '0' && s_[i] <= '7') { v = v * 8 + (s_[i++] - '0'); ++n; }
            utf8_append(out, static_cast<char32_t>(v));
          } else {
            out += '\\';  // Python keeps unknown escapes
            out += e;
          }
      }
    }
    toks_.push_back({Tok::String, out, 0, 0, start});
    return i + 1;
  }

  const std::string& s_;
  std::vector<Token> toks_;
};

}  // namespace

std::string normalize_source(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

std::string describe_position(const std::string& source, size_t pos) {
  if (pos == kNoPos) return "unknown position";
  pos = std::min(pos, source.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < pos; ++i)
    if (source[i] == '\n') { ++line; line_start = i + 1; }
  size_t col = utf8_length(std::string_view(source).substr(line_start, pos - line_start)) + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

}  // namespace llrt::jinja
