// llrt tokenizer: added tokens (HF tokenizer/added_vocabulary.rs).
//
// Matching is aho-corasick LeftmostLongest: the earliest start position wins, then the longest
// token there. A match of a single_word token is discarded (and scanning resumes after it) when
// a Rust-regex \w character touches it; lstrip/rstrip widen a match over Rust-regex \s runs.
#include <algorithm>

#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {
namespace {

// Code point ending at byte e (s[..e] valid UTF-8, e > 0).
char32_t cp_before(std::string_view s, size_t e) {
  size_t b = e - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  char32_t cp;
  utf8_decode(s.data(), s.size(), b, cp);
  return cp;
}

}  // namespace

void AddedMatcher::build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns) {
  nodes_.assign(1, Node{});
  tokens_ = tokens;
  first_byte_.fill(false);
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_byte_[static_cast<unsigned char>(p[0])] = true;
    int32_t node = 0;
    for (char ch : p) {
      const auto b = static_cast<uint8_t>(ch);
      auto& nx = nodes_[static_cast<size_t>(node)].next;
      auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(b, INT32_MIN));
      if (it != nx.end() && it->first == b) {
        node = it->second;
      } else {
        const auto id = static_cast<int32_t>(nodes_.size());
        nx.insert(it, {b, id});
        nodes_.push_back(Node{});
        node = id;
      }
    }
    if (nodes_[static_cast<size_t>(node)].token < 0) nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

void AddedMatcher::split(std::string_view s, std::vector<Segment>& out) const {
  out.clear();
  const size_t n = s.size();
  size_t start_offset = 0;
  for (size_t i = 0; i < n && !tokens_.empty();) {
    if (!first_byte_[static_cast<unsigned char>(s[i])]) { ++i; continue; }
    // longest pattern starting at i
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < n; ++k) {
      const auto& nx = nodes_[static_cast<size_t>(node)].next;
      const auto b = static_cast<uint8_t>(s[k]);
      auto it = std::lower_bound(nx.begin(), nx.end(), std::make_pair(b, INT32_MIN));
      if (it == nx.end() || it->first != b) break;
      node = it->second;
      if (nodes_[static_cast<size_t>(node)].token >= 0) { best = nodes_[static_cast<size_t>(node)].token; best_end = k + 1; }
    }
    if (best < 0) { ++i; continue; }
    const AddedToken& tok = *tokens_[static_cast<size_t>(best)];
    size_t start = i, stop = best_end;
    i = best_end;  // the automaton resumes after the match whatever we decide below
    if (tok.single_word) {
      const bool start_space = start == 0 || !(char_flags(cp_before(s, start)) & kRustWord);
      bool stop_space = stop == n;
      if (!stop_space) {
        char32_t cp;
        utf8_decode(s.data(), n, stop, cp);
        stop_space = !(char_flags(cp) & kRustWord);
      }
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t b = start;
      while (b > 0) {
        const char32_t cp = cp_before(s, b);
        if (!(char_flags(cp) & kRustSpace)) break;
        size_t nb = b - 1;
        while (nb > 0 && (static_cast<unsigned char>(s[nb]) & 0xC0) == 0x80) --nb;
        b = nb;
      }
      start = std::max(b, start_offset);
    }
    if (tok.rstrip) {
      while (stop < n) {
        char32_t cp;
        const int len = utf8_decode(s.data(), n, stop, cp);
        if (!(char_flags(cp) & kRustSpace)) break;
        stop += static_cast<size_t>(len);
      }
    }
    if (start_offset < start) out.push_back({-1, start_offset, start});
    out.push_back({tok.id, start, stop});
    start_offset = stop;
  }
  if (start_offset != n || out.empty()) out.push_back({-1, start_offset, n});
}

}  // namespace llrt::tok
