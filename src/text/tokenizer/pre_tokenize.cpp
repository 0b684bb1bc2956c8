// llrt tokenizer: normalizers and pre-tokenizers (HF normalizers/*.rs, pre_tokenizers/*.rs,
// NormalizedString::split). Pieces that come out empty are dropped, as
// PreTokenizedString::split drops them.
#include <algorithm>
#include <string>

#include "src/text/tokenizer/tokenizer_impl.h"

namespace llrt::tok {
namespace {

struct Span {
  uint32_t begin, end;
  bool flag;  // in: is_match; out: remove
};

// HF Pattern::find_matches: matches and the gaps between them, covering the whole string.
void cover(std::string_view s, const std::vector<Match>& m, std::vector<Span>& out) {
  out.clear();
  if (s.empty()) { out.push_back({0, 0, false}); return; }
  uint32_t prev = 0;
  for (const Match& x : m) {
    if (x.begin != prev) out.push_back({prev, x.begin, false});
    out.push_back({x.begin, x.end, true});
    prev = x.end;
  }
  if (prev != s.size()) out.push_back({prev, static_cast<uint32_t>(s.size()), false});
}

// HF NormalizedString::split(pattern, behavior) on already computed (offsets, is_match).
void apply_behavior(SplitBehavior behavior, std::vector<Span>& in, std::vector<Span>& out) {
  out.clear();
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const Span& s : in) out.push_back({s.begin, s.end, false});
      return;
    case SplitBehavior::Removed:
      out = in;
      return;
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (const Span& s : in) {
        if (s.flag == prev && !out.empty()) out.back().end = s.end;
        else out.push_back({s.begin, s.end, false});
        prev = s.flag;
      }
      return;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (const Span& s : in) {
        if (s.flag && !prev && !out.empty()) out.back().end = s.end;
        else out.push_back({s.begin, s.end, false});
        prev = s.flag;
      }
      return;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (size_t k = in.size(); k-- > 0;) {
        const Span& s = in[k];
        if (s.flag && !prev && !out.empty()) out.back().begin = s.begin;
        else out.push_back({s.begin, s.end, false});
        prev = s.flag;
      }
      std::reverse(out.begin(), out.end());
      return;
    }
  }
}

void split_pieces(const Pattern& pat, SplitBehavior behavior, bool invert, std::vector<Piece>& pieces,
                  PreTokenizeScratch& sc) {
  std::vector<Piece>& next = sc.b;
  next.clear();
  std::vector<Span> cov, res;
  for (const Piece& p : pieces) {
    pat.find_all(p.text, sc.matches);
    if (!invert && behavior == SplitBehavior::Isolated) {  // fast path: matches + gaps
      uint32_t prev = 0;
      for (const Match& m : sc.matches) {
        if (m.begin != prev) next.push_back({p.text.substr(prev, m.begin - prev), p.at_origin && prev == 0});
        if (m.end != m.begin) next.push_back({p.text.substr(m.begin, m.end - m.begin), p.at_origin && m.begin == 0});
        prev = m.end;
      }
      if (prev != p.text.size()) next.push_back({p.text.substr(prev), p.at_origin && prev == 0});
      continue;
    }
    cover(p.text, sc.matches, cov);
    if (invert)
      for (Span& s : cov) s.flag = !s.flag;
    apply_behavior(behavior, cov, res);
    for (const Span& s : res) {
      if (s.flag || s.end == s.begin) continue;
      next.push_back({p.text.substr(s.begin, s.end - s.begin), p.at_origin && s.begin == 0});
    }
  }
  pieces.swap(next);
}

}  // namespace

std::string_view PreTokenizeScratch::keep(std::string s) {
  arena.push_back(std::make_unique<std::string>(std::move(s)));
  return *arena.back();
}

void Normalizer::apply(std::string& s) const {
  switch (type) {
    case Type::Prepend:
      if (!s.empty()) s.insert(0, text);
      return;
    case Type::Replace: {
      std::vector<Match> m;
      pattern.find_all(s, m);
      if (m.empty()) return;
      std::string r;
      r.reserve(s.size() + m.size() * text.size());
      size_t prev = 0;
      for (const Match& x : m) {
        r.append(s, prev, x.begin - prev);
        r.append(text);
        prev = x.end;
      }
      r.append(s, prev, std::string::npos);
      s.swap(r);
      return;
    }
    case Type::Sequence:
      for (const Normalizer& n : seq) n.apply(s);
      return;
  }
}

void pre_tokenize(const PreTokenizer& pt, std::vector<Piece>& pieces, PreTokenizeScratch& sc) {
  switch (pt.type) {
    case PreTokenizer::Type::Sequence:
      for (const PreTokenizer& p : pt.seq) pre_tokenize(p, pieces, sc);
      return;
    case PreTokenizer::Type::Split:
      split_pieces(pt.pattern, pt.behavior, pt.invert, pieces, sc);
      return;
    case PreTokenizer::Type::ByteLevel: {
      if (pt.add_prefix_space) {
        for (Piece& p : pieces)
          if (p.text.empty() || p.text[0] != ' ') p.text = sc.keep(" " + std::string(p.text));
      }
      if (pt.use_regex) {
        static const Pattern gpt2 = Pattern::gpt2();
        split_pieces(gpt2, SplitBehavior::Isolated, false, pieces, sc);
      }
      return;  // the byte -> character map is applied implicitly by the byte-level BPE model
    }
    case PreTokenizer::Type::Metaspace: {
      const std::string& rep = pt.replacement;
      for (Piece& p : pieces) {
        std::string s;
        s.reserve(p.text.size() + rep.size() * 2);
        for (char ch : p.text) {
          if (ch == ' ') s += rep;
          else s.push_back(ch);
        }
        const bool starts = s.compare(0, rep.size(), rep) == 0;
        if (!starts && (pt.prepend == PreTokenizer::Prepend::Always ||
                        (pt.prepend == PreTokenizer::Prepend::First && p.at_origin)))
          s.insert(0, rep);
        p.text = sc.keep(std::move(s));
      }
      if (pt.split) {
        const Pattern pat = Pattern::literal(rep);
        split_pieces(pat, SplitBehavior::MergedWithNext, false, pieces, sc);
      }
      return;
    }
  }
}

}  // namespace llrt::tok
