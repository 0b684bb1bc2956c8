// llrt tokenizer: BPE model (see bpe.h for the semantics reproduced).
#include "src/text/tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {

uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0x94d049bb133111ebULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return h;
}

// ---------------------------------------------------------------- StrIdMap
void StrIdMap::clear() {
  slots_.clear();
  arena_.clear();
  count_ = 0;
}

bool StrIdMap::key_eq(const Slot& s, std::string_view key) const {
  if (s.len != key.size()) return false;
  const char* p = s.len <= 16 ? s.k.inl : arena_.data() + s.k.off;
  return std::memcmp(p, key.data(), key.size()) == 0;
}

void StrIdMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old;
  old.swap(slots_);
  Slot empty{};
  empty.value = -1;
  slots_.assign(cap, empty);
  for (const Slot& s : old) {
    if (s.value < 0) continue;
    size_t i = s.hash & (cap - 1);
    while (slots_[i].value >= 0) i = (i + 1) & (cap - 1);
    slots_[i] = s;
  }
}

void StrIdMap::grow() { reserve(std::max<size_t>(16, (count_ + 1) * 2)); }

void StrIdMap::set(std::string_view key, int32_t value) {
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const uint64_t h = hash_bytes(key.data(), key.size());
  size_t i = h & (slots_.size() - 1);
  for (;;) {
    Slot& s = slots_[i];
    if (s.value < 0) {
      s.hash = h;
      s.len = static_cast<uint32_t>(key.size());
      s.value = value;
      if (key.size() <= 16) {
        std::memcpy(s.k.inl, key.data(), key.size());
      } else {
        s.k.off = static_cast<uint32_t>(arena_.size());
        arena_.append(key);
      }
      ++count_;
      return;
    }
    if (s.hash == h && key_eq(s, key)) {
      s.value = value;
      return;
    }
    i = (i + 1) & (slots_.size() - 1);
  }
}

int32_t StrIdMap::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash_bytes(key.data(), key.size());
  size_t i = h & (slots_.size() - 1);
  for (;;) {
    const Slot& s = slots_[i];
    if (s.value < 0) return -1;
    if (s.hash == h && key_eq(s, key)) return s.value;
    i = (i + 1) & (slots_.size() - 1);
  }
}

// ---------------------------------------------------------------- PairMap
void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  for (const Slot& s : old) {
    if (s.rank < 0) continue;
    size_t i = mix(s.key) & (cap - 1);
    while (slots_[i].rank >= 0) i = (i + 1) & (cap - 1);
    slots_[i] = s;
  }
}

void PairMap::set(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if ((count_ + 1) * 2 > slots_.size()) reserve(std::max<size_t>(16, (count_ + 1) * 2));
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  size_t i = mix(key) & (slots_.size() - 1);
  for (;;) {
    Slot& s = slots_[i];
    if (s.rank < 0) {
      s.key = key;
      s.rank = rank;
      s.merged = merged;
      ++count_;
      return;
    }
    if (s.key == key) {  // a later duplicate overwrites, as HF's HashMap collect does
      s.rank = rank;
      s.merged = merged;
      return;
    }
    i = (i + 1) & (slots_.size() - 1);
  }
}

// ---------------------------------------------------------------- BpeModel
void BpeModel::prepare() {
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
    fallback_ids[b] = vocab.find(std::string_view(name, 6));
    if (byte_level) {
      const char raw = static_cast<char>(b);
      byte_ids[b] = vocab.find(std::string_view(&raw, 1));
    } else {
      byte_ids[b] = -1;
    }
  }
}

void BpeModel::check_metaspace_split(const std::vector<std::string>& tokens) {
  static const std::string_view ms = "\xE2\x96\x81";
  split_at_metaspace = false;
  if (byte_level || vocab.find(ms) < 0) return;
  for (const std::string& t : tokens) {
    for (size_t p = t.find(ms, 1); p != std::string::npos; p = t.find(ms, p + 1))
      if (p < ms.size() || t.compare(p - ms.size(), ms.size(), ms) != 0) return;
  }
  split_at_metaspace = true;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    const int32_t id = vocab.find(piece);
    if (id >= 0) { out.push_back(id); return; }
  }
  if (!split_at_metaspace) {
    cached_merge(piece, out, sc);
    return;
  }
  static const std::string_view ms = "\xE2\x96\x81";
  size_t seg = 0;
  for (size_t p = piece.find(ms, 1); p != std::string_view::npos; p = piece.find(ms, p + 1)) {
    // inside a run of ▁ (a piece need not start with ▁: legacy-false SentencePiece, "\n\n▁x")
    if (p >= ms.size() && piece.compare(p - ms.size(), ms.size(), ms) == 0) continue;
    cached_merge(piece.substr(seg, p - seg), out, sc);
    seg = p;
  }
  cached_merge(piece.substr(seg), out, sc);
}

void BpeModel::cached_merge(std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) const {
  const int32_t hit = sc.cache.find(piece);
  if (hit >= 0) {
    const auto [off, len] = sc.cache_spans[static_cast<size_t>(hit)];
    out.insert(out.end(), sc.cache_ids.begin() + off, sc.cache_ids.begin() + off + len);
    return;
  }
  const size_t before = out.size();
  merge_word(piece, out, sc);
  if (piece.size() < 256 && sc.cache.size() < 32768) {
    sc.cache.set(piece, static_cast<int32_t>(sc.cache_spans.size()));
    sc.cache_spans.emplace_back(static_cast<uint32_t>(sc.cache_ids.size()), static_cast<uint32_t>(out.size() - before));
    sc.cache_ids.insert(sc.cache_ids.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
  }
}

// Short words: the same order as the heap (lowest rank, then leftmost) found by a scan over
// the pair ranks of a compact array; only the two pairs next to a merge are looked up again.
void BpeModel::merge_short(std::vector<int32_t>& out, BpeScratch& sc) const {
  auto& ids = sc.ids;
  auto& ranks = sc.ranks;
  auto& merged = sc.merged;
  const size_t n = ids.size();
  ranks.resize(n);
  merged.resize(n);
  int32_t r, m;
  for (size_t k = 0; k + 1 < n; ++k) {
    if (merges.find(ids[k], ids[k + 1], r, m)) { ranks[k] = r; merged[k] = m; }
    else ranks[k] = INT32_MAX;
  }
  size_t len = n;
  while (len > 1) {
    size_t best = len;
    int32_t best_rank = INT32_MAX;
    for (size_t k = 0; k + 1 < len; ++k)
      if (ranks[k] < best_rank) { best_rank = ranks[k]; best = k; }
    if (best == len) break;
    ids[best] = merged[best];
    for (size_t k = best + 1; k + 1 < len; ++k) {
      ids[k] = ids[k + 1];
      ranks[k] = ranks[k + 1];
      merged[k] = merged[k + 1];
    }
    --len;
    if (best + 1 < len) {
      if (merges.find(ids[best], ids[best + 1], r, m)) { ranks[best] = r; merged[best] = m; }
      else ranks[best] = INT32_MAX;
    } else {
      ranks[best] = INT32_MAX;
    }
    if (best > 0) {
      if (merges.find(ids[best - 1], ids[best], r, m)) { ranks[best - 1] = r; merged[best - 1] = m; }
      else ranks[best - 1] = INT32_MAX;
    }
  }
  out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(len));
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out, BpeScratch& sc) const {
  auto& syms = sc.syms;
  syms.clear();
  auto add = [&](int32_t id) {
    const int32_t k = static_cast<int32_t>(syms.size());
    syms.push_back({id, k - 1, k + 1});
  };
  // ---- initial symbols (HF merge_word)
  int32_t pending_unk = -1;  // an unk waiting to be emitted (fuse_unk extends it)
  std::string mapped;        // byte-level: the character a byte stands for, for <0xXX> fallback
  for (size_t i = 0; i < w.size();) {
    std::string_view unit;
    int32_t id;
    if (byte_level) {
      const auto b = static_cast<unsigned char>(w[i]);
      id = byte_ids[b];
      if (id < 0) {
        mapped.clear();
        utf8_append(mapped, byte_to_unicode(b));
        unit = mapped;
      }
      i += 1;
    } else {
      const size_t len = std::min<size_t>(static_cast<size_t>(utf8_len(static_cast<unsigned char>(w[i]))), w.size() - i);
      unit = w.substr(i, len);
      id = vocab.find(unit);
      i += len;
    }
    if (id >= 0) {
      if (pending_unk >= 0) { add(pending_unk); pending_unk = -1; }
      add(id);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (char ch : unit) all = all && fallback_ids[static_cast<unsigned char>(ch)] >= 0;
      if (all) {
        for (char ch : unit) add(fallback_ids[static_cast<unsigned char>(ch)]);
        continue;
      }
    }
    if (unk_id >= 0) {
      if (pending_unk >= 0 && !fuse_unk) add(pending_unk);
      pending_unk = unk_id;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
  if (syms.empty()) return;
  if (syms.size() <= 48) {
    sc.ids.clear();
    for (const auto& s : syms) sc.ids.push_back(s.id);
    merge_short(out, sc);
    return;
  }
  syms.back().next = -1;

  // ---- merges: min (rank, position) first; stale entries are skipped as in HF's merge_all
  auto& heap = sc.heap;
  heap.clear();
  auto worse = [](const BpeScratch::Cand& x, const BpeScratch::Cand& y) {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  int32_t rank, merged;
  for (size_t k = 0; k + 1 < syms.size(); ++k) {
    if (merges.find(syms[k].id, syms[k + 1].id, rank, merged))
      heap.push_back({rank, static_cast<int32_t>(k), merged});
  }
  std::make_heap(heap.begin(), heap.end(), worse);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const BpeScratch::Cand top = heap.back();
    heap.pop_back();
    BpeScratch::Sym& cur = syms[static_cast<size_t>(top.pos)];
    if (cur.id < 0 || cur.next < 0) continue;
    const BpeScratch::Sym right = syms[static_cast<size_t>(cur.next)];
    if (!merges.find(cur.id, right.id, rank, merged) || merged != top.merged) continue;
    syms[static_cast<size_t>(cur.next)].id = -1;
    cur.id = top.merged;
    cur.next = right.next;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0 && merges.find(syms[static_cast<size_t>(cur.prev)].id, cur.id, rank, merged)) {
      heap.push_back({rank, cur.prev, merged});
      std::push_heap(heap.begin(), heap.end(), worse);
    }
    if (cur.next >= 0 && merges.find(cur.id, syms[static_cast<size_t>(cur.next)].id, rank, merged)) {
      heap.push_back({rank, top.pos, merged});
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
  for (const auto& s : syms)
    if (s.id >= 0) out.push_back(s.id);
}

}  // namespace llrt::tok
