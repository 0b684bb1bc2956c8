// llrt tokenizer: decoders, run as a stream.
//
// HF applies a decoder chain to the whole list of token strings (Decoder::decode_chain, then
// join). llrt runs the same chain incrementally: each step consumes tokens one by one and keeps
// only the state its batch form needs (an open byte-fallback group, bytes of an unfinished
// UTF-8 character, a pending strip). decode() is push-all-then-finish, so the streamed text and
// decode() agree by construction; the tests compare both with HF.
//
// Token boundaries matter to per-token steps (Replace, ByteFallback, Strip, Metaspace). After a
// Fuse or ByteLevel step HF has a single token, so later steps see the text as one growing
// token ("fused" mode): Strip then strips the text's start/end, Metaspace treats the whole text
// as token 0, Replace matches across chunk edges. Steps whose fused form would need the whole
// text (ByteFallback, ByteLevel after a fuse; regex Replace after a fuse) are rejected at load.
#include <memory>
#include <string>

#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {

namespace {

void feed(DecodeStreamState& s, size_t i, std::string_view text, std::string& out);

std::string replace_all(std::string_view t, const Pattern& p, const std::string& with) {
  std::vector<Match> m;
  p.find_all(t, m);
  std::string r;
  size_t prev = 0;
  for (const Match& x : m) {
    r.append(t.substr(prev, x.begin - prev));
    r.append(with);
    prev = x.end;
  }
  r.append(t.substr(prev));
  return r;
}

// Parses "<0xXX>" as HF's ByteFallback does (u8::from_str_radix on the two characters).
bool parse_byte_token(std::string_view t, uint8_t& b) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
  auto hexv = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (t[3] == '+') {  // from_str_radix accepts a leading '+'
    const int v = hexv(t[4]);
    if (v < 0) return false;
    b = static_cast<uint8_t>(v);
    return true;
  }
  const int hi = hexv(t[3]), lo = hexv(t[4]);
  if (hi < 0 || lo < 0) return false;
  b = static_cast<uint8_t>(hi * 16 + lo);
  return true;
}

void flush_group(DecodeStreamState& s, size_t i, std::string& out) {
  StepState& st = s.st[i];
  if (st.group.empty()) return;
  std::string_view bytes(reinterpret_cast<const char*>(st.group.data()), st.group.size());
  if (utf8_first_invalid(bytes) == std::string_view::npos) {
    const std::string valid(bytes);
    st.group.clear();
    feed(s, i + 1, valid, out);
  } else {
    const size_t n = st.group.size();
    st.group.clear();
    for (size_t k = 0; k < n; ++k) feed(s, i + 1, "\xEF\xBF\xBD", out);
  }
}

// Strip `content` characters: in per-token mode from one token; in fused mode from the stream.
void strip_step(DecodeStreamState& s, size_t i, std::string_view text, std::string& out) {
  const DecoderStep& d = (*s.steps)[i];
  StepState& st = s.st[i];
  const std::string_view c = d.content;
  if (!s.fused_in[i]) {
    size_t b = 0, e = text.size();
    for (size_t k = 0; k < d.start && text.substr(b, c.size()) == c && !c.empty(); ++k) b += c.size();
    for (size_t k = 0; k < d.stop && e >= b + c.size() && !c.empty() && text.substr(e - c.size(), c.size()) == c; ++k)
      e -= c.size();
    feed(s, i + 1, text.substr(b, e > b ? e - b : 0), out);
    return;
  }
  std::string buf = st.held + std::string(text);
  st.held.clear();
  size_t b = 0;
  if (!st.started) {
    while (st.start_left > 0 && !c.empty() && buf.compare(b, c.size(), c) == 0) {
      b += c.size();
      --st.start_left;
    }
    if (b < buf.size()) { st.started = true; st.start_left = 0; }
  }
  size_t e = buf.size();
  if (d.stop > 0 && !c.empty()) {  // hold up to `stop` trailing content chars
    for (size_t k = 0; k < d.stop && e >= b + c.size() && buf.compare(e - c.size(), c.size(), c) == 0; ++k)
      e -= c.size();
    st.held = buf.substr(e);
  }
  if (e > b) feed(s, i + 1, std::string_view(buf).substr(b, e - b), out);
}

void feed(DecodeStreamState& s, size_t i, std::string_view text, std::string& out) {
  if (i == s.steps->size()) {
    out.append(text);
    return;
  }
  const DecoderStep& d = (*s.steps)[i];
  StepState& st = s.st[i];
  switch (d.type) {
    case DecoderStep::Type::Replace: {
      if (!s.fused_in[i]) {
        feed(s, i + 1, replace_all(text, d.pattern, d.content), out);
        return;
      }
      // Literal pattern across chunk edges: hold the longest suffix (after the last match)
      // that is a proper prefix of the literal, since more text could complete a match.
      std::string buf = st.held + std::string(text);
      st.held.clear();
      std::vector<Match> m;
      d.pattern.find_all(buf, m);
      const size_t after = m.empty() ? 0 : m.back().end;
      const std::string& lit = d.literal;
      size_t hold = 0;
      for (size_t len = lit.empty() ? 0 : std::min(buf.size() - after, lit.size() - 1); len > 0; --len) {
        if (buf.compare(buf.size() - len, len, lit, 0, len) == 0) { hold = len; break; }
      }
      st.held = buf.substr(buf.size() - hold);
      buf.resize(buf.size() - hold);
      feed(s, i + 1, replace_all(buf, d.pattern, d.content), out);
      return;
    }
    case DecoderStep::Type::ByteFallback: {
      uint8_t b;
      if (parse_byte_token(text, b)) {
        st.group.push_back(b);
        return;
      }
      flush_group(s, i, out);
      feed(s, i + 1, text, out);
      return;
    }
    case DecoderStep::Type::Fuse:
      feed(s, i + 1, text, out);
      return;
    case DecoderStep::Type::Strip:
      strip_step(s, i, text, out);
      return;
    case DecoderStep::Type::Metaspace: {
      const bool first = s.fused_in[i] ? true : st.tokens_seen == 0;
      ++st.tokens_seen;
      std::string r;
      r.reserve(text.size());
      for (size_t k = 0; k < text.size();) {
        if (text.compare(k, d.content.size(), d.content) == 0 && !d.content.empty()) {
          if (!(first && d.prepend)) r.push_back(' ');
          k += d.content.size();
        } else {
          r.push_back(text[k++]);
        }
      }
      feed(s, i + 1, r, out);
      return;
    }
    case DecoderStep::Type::ByteLevel: {
      // token chars -> bytes; a token with a char outside the map contributes its raw UTF-8
      std::string bytes = st.held;
      st.held.clear();
      const size_t base = bytes.size();
      bool all = true;
      for (size_t k = 0; k < text.size();) {
        char32_t cp;
        const int len = utf8_decode(text.data(), text.size(), k, cp);
        const int b = unicode_to_byte(cp);
        if (b < 0) { all = false; break; }
        bytes.push_back(static_cast<char>(b));
        k += static_cast<size_t>(len);
      }
      if (!all) {
        bytes.resize(base);
        bytes.append(text);
      }
      std::string conv;
      const size_t keep = utf8_append_lossy(conv, bytes, /*hold_incomplete_tail=*/true);
      st.held = bytes.substr(bytes.size() - keep);
      if (!conv.empty()) feed(s, i + 1, conv, out);
      return;
    }
  }
}

void finish_from(DecodeStreamState& s, size_t i, std::string& out) {
  if (i == s.steps->size()) return;
  const DecoderStep& d = (*s.steps)[i];
  StepState& st = s.st[i];
  switch (d.type) {
    case DecoderStep::Type::ByteFallback:
      flush_group(s, i, out);
      break;
    case DecoderStep::Type::ByteLevel:
      if (!st.held.empty()) {
        std::string conv;
        utf8_append_lossy(conv, st.held, false);
        st.held.clear();
        feed(s, i + 1, conv, out);
      }
      break;
    case DecoderStep::Type::Replace:
      if (!st.held.empty()) {
        const std::string h = std::move(st.held);
        st.held.clear();
        feed(s, i + 1, replace_all(h, d.pattern, d.content), out);
      }
      break;
    case DecoderStep::Type::Strip:
      st.held.clear();  // trailing content chars at the very end are stripped
      break;
    default:
      break;
  }
  finish_from(s, i + 1, out);
}

}  // namespace

std::unique_ptr<DecodeStreamState> make_decode_state(const std::vector<DecoderStep>& steps) {
  auto s = std::make_unique<DecodeStreamState>();
  s->steps = &steps;
  s->none = steps.empty();
  s->st.resize(steps.size());
  s->fused_in.resize(steps.size());
  bool fused = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    s->fused_in[i] = fused;
    if (steps[i].type == DecoderStep::Type::Strip) s->st[i].start_left = steps[i].start;
    if (steps[i].type == DecoderStep::Type::Fuse || steps[i].type == DecoderStep::Type::ByteLevel) fused = true;
  }
  return s;
}

void decode_push(DecodeStreamState& s, std::string_view token, std::string& out) {
  if (s.none) {  // HF with no decoder: tokens.join(" ")
    if (s.none_started) out.push_back(' ');
    s.none_started = true;
    out.append(token);
    return;
  }
  feed(s, 0, token, out);
}

void decode_finish(DecodeStreamState& s, std::string& out) {
  if (!s.none) finish_from(s, 0, out);
  // reset for reuse
  for (size_t i = 0; i < s.st.size(); ++i) {
    s.st[i] = StepState{};
    if ((*s.steps)[i].type == DecoderStep::Type::Strip) s.st[i].start_left = (*s.steps)[i].start;
  }
  s.none_started = false;
}

}  // namespace llrt::tok
