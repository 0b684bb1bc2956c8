// llrt tokenizer: the BPE model with HF `tokenizers` semantics (models/bpe/model.rs).
//
// tokenize(piece): if ignore_merges and the whole piece is a vocabulary entry, that id. Else
// the piece is cut into characters (bytes in byte-level mode); each is looked up, missing ones
// become byte_fallback "<0xXX>" tokens when all of their bytes exist, else unk (fused runs when
// fuse_unk), else are dropped (as HF drops them when there is no unk token). Then merges apply:
// repeatedly the adjacent pair of lowest merge rank, leftmost first among equal ranks (HF's
// heap order), until no pair has a merge.
//
// Byte-level mode: when the pre-tokenizer ends in ByteLevel, HF maps every byte to a printable
// character and the vocabulary is written in those characters. The map is a bijection, so llrt
// keys the vocabulary by the raw bytes instead (converted at load) and never builds the mapped
// strings: same ids, less work.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llrt::tok {

// Open-addressing map from byte strings to int32 (keys copied into an arena).
class StrIdMap {
 public:
  void reserve(size_t n);
  // Inserts or overwrites.
  void set(std::string_view key, int32_t value);
  int32_t find(std::string_view key) const;  // -1 when absent
  size_t size() const { return count_; }
  void clear();

 private:
  // Keys up to 16 bytes live in the slot (one cache line access per probe); longer ones in the
  // arena.
  struct Slot {
    uint64_t hash;
    int32_t value;  // -1: empty slot
    uint32_t len;
    union {
      char inl[16];
      uint32_t off;
    } k;
  };
  bool key_eq(const Slot& s, std::string_view key) const;
  void grow();
  std::vector<Slot> slots_;
  std::string arena_;
  size_t count_ = 0;
};

uint64_t hash_bytes(const char* p, size_t n);

// Merge table: (left id, right id) -> (rank, merged id).
class PairMap {
 public:
  void reserve(size_t n);
  void set(int32_t a, int32_t b, int32_t rank, int32_t merged);
  // Returns false when the pair has no merge.
  bool find(int32_t a, int32_t b, int32_t& rank, int32_t& merged) const {
    if (slots_.empty()) return false;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    size_t i = mix(key) & (slots_.size() - 1);
    for (;;) {
      const Slot& s = slots_[i];
      if (s.rank < 0) return false;
      if (s.key == key) { rank = s.rank; merged = s.merged; return true; }
      i = (i + 1) & (slots_.size() - 1);
    }
  }
  size_t size() const { return count_; }

 private:
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
  }
  struct Slot {
    uint64_t key;
    int32_t rank = -1, merged;
  };
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// Per-encode scratch: merge work arrays and a cache of pieces already tokenized.
struct BpeScratch {
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, pos, merged;
  };
  std::vector<Sym> syms;
  std::vector<Cand> heap;
  std::vector<int32_t> ids, ranks, merged;  // short words: compact arrays
  StrIdMap cache;                           // piece -> index into cache_spans
  std::vector<std::pair<uint32_t, uint32_t>> cache_spans;
  std::vector<int32_t> cache_ids;
};

struct BpeModel {
  bool byte_level = false;
  StrIdMap vocab;  // raw-byte keys in byte-level mode, token strings otherwise
  PairMap merges;
  int32_t unk_id = -1;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::array<int32_t, 256> fallback_ids{};  // id of "<0xXX>" or -1
  std::array<int32_t, 256> byte_ids{};      // byte-level: id of the one-byte token or -1
  size_t model_vocab_entries = 0;           // HF Model::get_vocab_size()
  // SentencePiece-style speed-up, exact by construction: when "▁" is a token and no token has
  // "▁" right after another character, no merge can cross a "▁" that follows a non-"▁"
  // character, so a long piece is merged as independent segments split there (each cached).
  bool split_at_metaspace = false;
  void check_metaspace_split(const std::vector<std::string>& tokens);

  // Call after vocab is filled.
  void prepare();
  void tokenize(std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) const;

 private:
  void cached_merge(std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) const;
  void merge_word(std::string_view piece, std::vector<int32_t>& out, BpeScratch& sc) const;
  void merge_short(std::vector<int32_t>& out, BpeScratch& sc) const;
};

}  // namespace llrt::tok
