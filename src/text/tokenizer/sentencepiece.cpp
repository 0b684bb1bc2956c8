// llrt tokenizer: SentencePiece tokenizer.model -> the tokenizer transformers 4.x builds from it.
//
// A minimal protobuf reader (wire format: varint / fixed32 / fixed64 / length-delimited) reads
// ModelProto { repeated SentencePiece pieces = 1 {piece = 1, score = 2, type = 3};
// TrainerSpec trainer_spec = 2 {model_type = 3, unk_id = 40, bos_id = 41, eos_id = 42,
// unk_piece = 45, bos_piece = 46, eos_piece = 47} }.
//
// The result reproduces `LlamaTokenizerFast.from_slow` (transformers 4.57, LlamaConverter) in
// its legacy form, which is what the Hub's Llama 2 / TinyLlama tokenizer.json files hold and what
// llama.cpp's test vectors were made with:
//   normalizer  Sequence[Prepend("▁") (when add_prefix_space, default true), Replace(" ", "▁")]
//   model       BPE(vocab = pieces with ids 0..2 scored 0, merges = generate_merges(...),
//               unk_token = trainer_spec.unk_piece, fuse_unk, byte_fallback)
//   added       control pieces (special), user-defined pieces (not special), then unk/bos/eos
//               and tokenizer_config.json's added_tokens_decoder, none normalized
//   post        TemplateProcessing: [bos] if add_bos_token (default true) $A [eos] if add_eos_token
//   decoder     Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) if add_prefix_space]
// generate_merges: for every piece (in id order) every split into two vocabulary pieces, sorted
// by (id left, id right); then all of them stably sorted by (score, len left, len right)
// descending, lengths in code points. The merge rank is the position in that order.
// tokenizer_config.json `legacy` (HF's default when absent: true) picks the form:
//   legacy true   the normalizer above (a "▁" prepended to every segment, also after a special
//                 token: "</s>\n" gives [2, 29871, 13])
//   legacy false  no normalizer; pre-tokenizer Metaspace("▁", prepend_scheme "first" (never
//                 without add_prefix_space), split false): only the text at the very start of the
//                 input gets the "▁" ("</s>\n" gives [2, 13]), as LlamaConverter builds it.
// Vectors: tests/data/tokenizer/sentencepiece_legacy.json (scripts/tokenizer/make_legacy_vectors.py).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "src/io/bounded_io.h"
#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {
namespace {

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) tok_fail("tokenizer.model: truncated varint");
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    tok_fail("tokenizer.model: varint too long");
  }
  // An int32 / enum field: protobuf writes negative values as 64-bit two's complement; anything
  // outside int32 is an error, never truncated.
  int32_t int32(const char* what) {
    const auto v = static_cast<int64_t>(varint());
    if (v < INT32_MIN || v > INT32_MAX) tok_fail(std::string("tokenizer.model: ") + what + " = " + std::to_string(v) + " is out of range for an int32");
    return static_cast<int32_t>(v);
  }
  // Returns field number and wire type of the next key.
  void key(uint32_t& field, uint32_t& wire) {
    const uint64_t k = varint();
    field = static_cast<uint32_t>(k >> 3);
    wire = static_cast<uint32_t>(k & 7);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) tok_fail("tokenizer.model: length-delimited field runs past the end");
    std::string_view s(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return s;
  }
  uint32_t fixed32() {
    if (end - p < 4) tok_fail("tokenizer.model: truncated fixed32");
    uint32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: if (end - p < 8) tok_fail("tokenizer.model: truncated fixed64"); p += 8; return;
      case 2: bytes(); return;
      case 5: fixed32(); return;
      default: tok_fail("tokenizer.model: unsupported protobuf wire type " + std::to_string(wire));
    }
  }
};

struct SpPiece {
  std::string piece;
  float score = 0.f;
  int type = 1;  // NORMAL
};

struct SpModel {
  std::vector<SpPiece> pieces;
  int model_type = 1;  // UNIGRAM (proto default)
  int unk_id = 0, bos_id = 1, eos_id = 2;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>";
};

SpModel parse_proto(std::string_view data) {
  SpModel m;
  Reader r{reinterpret_cast<const uint8_t*>(data.data()), reinterpret_cast<const uint8_t*>(data.data()) + data.size()};
  uint32_t f, w;
  while (!r.done()) {
    r.key(f, w);
    if (f == 1 && w == 2) {
      Reader pr{nullptr, nullptr};
      const std::string_view b = r.bytes();
      pr.p = reinterpret_cast<const uint8_t*>(b.data());
      pr.end = pr.p + b.size();
      SpPiece sp;
      while (!pr.done()) {
        pr.key(f, w);
        if (f == 1 && w == 2) sp.piece = std::string(pr.bytes());
        else if (f == 2 && w == 5) { const uint32_t u = pr.fixed32(); std::memcpy(&sp.score, &u, 4); }
        else if (f == 3 && w == 0) sp.type = pr.int32("piece type");
        else pr.skip(w);
      }
      m.pieces.push_back(std::move(sp));
    } else if (f == 2 && w == 2) {
      const std::string_view b = r.bytes();
      Reader tr{reinterpret_cast<const uint8_t*>(b.data()), reinterpret_cast<const uint8_t*>(b.data()) + b.size()};
      while (!tr.done()) {
        tr.key(f, w);
        if (w == 0 && (f == 3 || f == 40 || f == 41 || f == 42)) {
          const int32_t v = tr.int32(f == 3 ? "trainer_spec.model_type" : f == 40 ? "trainer_spec.unk_id" : f == 41 ? "trainer_spec.bos_id" : "trainer_spec.eos_id");
          if (f == 3) m.model_type = v;
          else if (f == 40) m.unk_id = v;
          else if (f == 41) m.bos_id = v;
          else m.eos_id = v;
        } else if (w == 2 && (f == 45 || f == 46 || f == 47)) {
          std::string s(tr.bytes());
          (f == 45 ? m.unk_piece : f == 46 ? m.bos_piece : m.eos_piece) = std::move(s);
        } else {
          tr.skip(w);
        }
      }
    } else {
      r.skip(w);
    }
  }
  if (m.pieces.empty()) tok_fail("tokenizer.model: no pieces (not a SentencePiece model?)");
  for (const SpPiece& p : m.pieces)
    if (utf8_first_invalid(p.piece) != std::string_view::npos) tok_fail("tokenizer.model: a piece is not valid UTF-8");
  return m;
}

std::string cfg_token(const nlohmann::json& j, const char* key, const std::string& dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_object() && j[key].contains("content") && j[key]["content"].is_string()) return j[key]["content"].get<std::string>();
  tok_fail(std::string("tokenizer_config.json: '") + key + "' is neither a string nor an AddedToken object");
}

bool cfg_bool(const nlohmann::json& j, const char* key, bool dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_boolean()) tok_fail(std::string("tokenizer_config.json: '") + key + "' must be a boolean");
  return j[key].get<bool>();
}

// "Is w[b, e) a piece, and which?" for every split of every piece, in O(1) per split: hashing
// each substring afresh (what a string-keyed map does) made merge generation O(|w|^2), 17 s for
// one 200 KB piece. Two polynomial hashes mod 2^61-1, bases drawn per load: a piece's prefix
// hashes give any substring's hashes in O(1), and a table maps (length, hash 1, hash 2) to a
// piece id. Equal keys are taken as equal strings (no byte compare, which would make a vocabulary
// of a, aa, aaa, ... cubic): two different strings of length n get equal keys with probability
// at most (n / 2^61)^2 (a degree-n polynomial has at most n roots), whatever the input, since
// the bases are drawn after it is written.
class PieceHashes {
 public:
  struct Prefix {
    std::vector<uint64_t> h1, h2;  // hashes of w[0, k)
    std::vector<uint32_t> cps;     // code points in w[0, k)
  };
  PieceHashes(const std::vector<SpPiece>& pieces, const StrIdMap& exact) {
    std::random_device rd;
    for (uint64_t* b : {&b1_, &b2_}) *b = (uint64_t(rd()) << 32 | rd()) % (kMod - 257) + 256;
    size_t longest = 0;
    for (const SpPiece& p : pieces) longest = std::max(longest, p.piece.size());
    p1_.resize(longest + 1);
    p2_.resize(longest + 1);
    p1_[0] = p2_[0] = 1;
    for (size_t k = 1; k <= longest; ++k) p1_[k] = mulmod(p1_[k - 1], b1_), p2_[k] = mulmod(p2_[k - 1], b2_);
    table_.reserve(pieces.size());
    Prefix pre;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const std::string& w = pieces[i].piece;
      if (exact.find(w) != static_cast<int32_t>(i)) continue;  // the last id of a repeated piece
      prefixes(w, pre);
      table_.emplace(Key{w.size(), pre.h1[w.size()], pre.h2[w.size()]}, static_cast<int32_t>(i));
    }
  }
  void prefixes(const std::string& w, Prefix& pre) const {
    pre.h1.resize(w.size() + 1);
    pre.h2.resize(w.size() + 1);
    pre.cps.resize(w.size() + 1);
    pre.h1[0] = pre.h2[0] = 0;
    pre.cps[0] = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      const auto b = static_cast<unsigned char>(w[k]);
      pre.h1[k + 1] = addmod(mulmod(pre.h1[k], b1_), b + 1);
      pre.h2[k + 1] = addmod(mulmod(pre.h2[k], b2_), b + 1);
      pre.cps[k + 1] = pre.cps[k] + ((b & 0xC0) != 0x80);
    }
  }
  // The piece id of w[b, e), or -1.
  int32_t find(const Prefix& pre, size_t b, size_t e) const {
    const Key k{e - b, addmod(pre.h1[e], kMod - mulmod(pre.h1[b], p1_[e - b])),
                addmod(pre.h2[e], kMod - mulmod(pre.h2[b], p2_[e - b]))};
    auto it = table_.find(k);
    return it == table_.end() ? -1 : it->second;
  }

 private:
  static constexpr uint64_t kMod = (uint64_t(1) << 61) - 1;
  static uint64_t mulmod(uint64_t a, uint64_t b) {
    const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    uint64_t r = static_cast<uint64_t>(p & kMod) + static_cast<uint64_t>(p >> 61);  // < 2^62
    r = (r & kMod) + (r >> 61);                                                       // <= kMod + 1
    return r >= kMod ? r - kMod : r;
  }
  static uint64_t addmod(uint64_t a, uint64_t b) {
    const uint64_t r = a + b;
    return r >= kMod ? r - kMod : r;
  }
  struct Key {
    size_t len;
    uint64_t h1, h2;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.h1 ^ (k.h2 * 0x9E3779B97F4A7C15ull) ^ k.len; }
  };
  uint64_t b1_ = 0, b2_ = 0;
  std::vector<uint64_t> p1_, p2_;
  std::unordered_map<Key, int32_t, KeyHash> table_;
};

// More merges than this is not a tokenizer (Llama 2's 32000 pieces give 61249; a vocabulary of
// a, aa, aaa, ... gives n^2/2 and would exhaust memory).
constexpr size_t kMaxMerges = size_t(1) << 24;

}  // namespace

std::shared_ptr<TokenizerImpl> load_sentencepiece(std::string_view proto, std::string_view config_json) {
  const SpModel sp = parse_proto(proto);
  if (sp.model_type != 2)
    tok_fail("tokenizer.model: SentencePiece model_type " + std::to_string(sp.model_type) +
             (sp.model_type == 1 ? " (Unigram)" : "") + " is not supported by llrt (supported: BPE)");
  nlohmann::json cfg = nlohmann::json::object();
  if (!config_json.empty()) {
    cfg = io::parse_json(config_json, "tokenizer_config.json", ErrorCode::Format, io::kMaxConfigJson);
    if (!cfg.is_object()) fail(ErrorCode::Format, "tokenizer_config.json: not a JSON object");
  }
  const bool add_prefix_space = cfg_bool(cfg, "add_prefix_space", true);
  const bool legacy = cfg_bool(cfg, "legacy", true);  // HF: absent or null is legacy
  const bool add_bos = cfg_bool(cfg, "add_bos_token", true), add_eos = cfg_bool(cfg, "add_eos_token", false);

  auto t = std::make_shared<TokenizerImpl>();
  t->kind = "sentencepiece tokenizer.model";
  const size_t n = sp.pieces.size();
  BpeModel& bpe = t->model;
  t->id_to_token.resize(n);
  t->id_flags.assign(n, TokenizerImpl::kPresent);
  std::vector<float> score(n);
  for (size_t i = 0; i < n; ++i) {
    t->id_to_token[i] = sp.pieces[i].piece;
    score[i] = i < 3 ? 0.f : sp.pieces[i].score;  // LlamaConverter.vocab(): ids 0..2 score 0
  }
  // bpe_vocab = {piece: i}: a repeated piece keeps its last id
  t->piece_ids.reserve(n);
  bpe.vocab.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    t->piece_ids.set(sp.pieces[i].piece, static_cast<int32_t>(i));
    bpe.vocab.set(sp.pieces[i].piece, static_cast<int32_t>(i));
  }
  bpe.model_vocab_entries = t->piece_ids.size();
  // generate_merges. `vocab` there is {sp.id_to_piece(i): i} (last id wins too).
  struct M {
    int32_t l, r, merged;
    float score;
    uint32_t len_l, len_r;
  };
  std::vector<M> merges;
  std::vector<M> local;
  const PieceHashes ph(sp.pieces, t->piece_ids);
  PieceHashes::Prefix pre;
  for (size_t i = 0; i < n; ++i) {
    const std::string& w = sp.pieces[i].piece;
    if (t->piece_ids.find(w) != static_cast<int32_t>(i)) continue;  // dict(vocab_scores) keeps one entry per piece
    local.clear();
    ph.prefixes(w, pre);
    for (size_t k = 1; k < w.size(); ++k) {
      if ((static_cast<unsigned char>(w[k]) & 0xC0) == 0x80) continue;
      const int32_t l = ph.find(pre, 0, k);
      if (l < 0) continue;
      const int32_t r = ph.find(pre, k, w.size());
      if (r >= 0) local.push_back({l, r, static_cast<int32_t>(i), score[i], pre.cps[k], pre.cps[w.size()] - pre.cps[k]});
    }
    if (merges.size() + local.size() > kMaxMerges)
      tok_fail("tokenizer.model: the pieces make more than " + std::to_string(kMaxMerges) +
               " merges (every split of a piece into two pieces is one): not a real SentencePiece BPE model");
    std::stable_sort(local.begin(), local.end(), [](const M& a, const M& b) { return a.l != b.l ? a.l < b.l : a.r < b.r; });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const M& a, const M& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.len_l != b.len_l) return a.len_l > b.len_l;
    return a.len_r > b.len_r;
  });
  bpe.merges.reserve(merges.size());
  for (size_t k = 0; k < merges.size(); ++k) bpe.merges.set(merges[k].l, merges[k].r, static_cast<int32_t>(k), merges[k].merged);
  bpe.fuse_unk = true;
  bpe.byte_fallback = true;
  bpe.unk_id = t->piece_ids.find(sp.unk_piece);
  if (bpe.unk_id < 0) tok_fail("tokenizer.model: unk piece \"" + sp.unk_piece + "\" is not in the vocabulary");
  bpe.prepare();
  bpe.check_metaspace_split(t->id_to_token);

  if (legacy) {  // normalizer: Prepend("▁") (add_prefix_space), Replace(" ", "▁")
    t->has_normalizer = true;
    t->normalizer.type = Normalizer::Type::Sequence;
    if (add_prefix_space) {
      Normalizer p;
      p.type = Normalizer::Type::Prepend;
      p.text = "\xE2\x96\x81";
      t->normalizer.seq.push_back(p);
    }
    Normalizer rep;
    rep.type = Normalizer::Type::Replace;
    rep.pattern = Pattern::literal(" ");
    rep.text = "\xE2\x96\x81";
    t->normalizer.seq.push_back(rep);
  } else {  // pre-tokenizer: Metaspace("▁", first | never, split false)
    t->has_pre_tokenizer = true;
    t->pre_tokenizer.type = PreTokenizer::Type::Metaspace;
    t->pre_tokenizer.replacement = "\xE2\x96\x81";
    t->pre_tokenizer.prepend = add_prefix_space ? PreTokenizer::Prepend::First : PreTokenizer::Prepend::Never;
    t->pre_tokenizer.split = false;
  }

  // added tokens
  std::vector<AddedToken> added;
  for (size_t i = 0; i < n; ++i) {
    if (sp.pieces[i].type == 3 || sp.pieces[i].type == 4) {
      AddedToken a;
      a.content = sp.pieces[i].piece;
      a.normalized = false;
      a.special = sp.pieces[i].type == 3;
      added.push_back(a);
    }
  }
  const std::string unk = cfg_token(cfg, "unk_token", sp.unk_piece);
  const std::string bos = cfg_token(cfg, "bos_token", sp.bos_piece);
  const std::string eos = cfg_token(cfg, "eos_token", sp.eos_piece);
  for (const std::string* s : {&bos, &eos, &unk}) {
    AddedToken a;
    a.content = *s;
    a.normalized = false;
    a.special = true;
    added.push_back(a);
  }
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    std::vector<std::pair<long, AddedToken>> extra;
    for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
      const nlohmann::json& v = it.value();
      if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
        tok_fail("tokenizer_config.json: added_tokens_decoder entry " + it.key() + " has no content");
      AddedToken a;
      a.content = v["content"].get<std::string>();
      a.single_word = cfg_bool(v, "single_word", false);
      a.lstrip = cfg_bool(v, "lstrip", false);
      a.rstrip = cfg_bool(v, "rstrip", false);
      a.normalized = cfg_bool(v, "normalized", false);
      a.special = cfg_bool(v, "special", false);
      const std::string& key = it.key();
      char* end = nullptr;
      errno = 0;
      const long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || end != key.c_str() + key.size() || errno == ERANGE || id < 0 || id > INT32_MAX)
        tok_fail("tokenizer_config.json: added_tokens_decoder key \"" + key + "\" is not a token id in [0, 2147483647]");
      extra.emplace_back(id, a);
    }
    std::sort(extra.begin(), extra.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, a] : extra) added.push_back(a);
  }
  t->add_tokens(added);

  // post-processor, decoder
  auto id_of = [&](const std::string& s) {
    auto it = t->added_by_content.find(s);
    return it != t->added_by_content.end() ? it->second : t->piece_ids.find(s);
  };
  t->bos = id_of(bos);
  t->eos = id_of(eos);
  if (add_bos) {
    if (t->bos < 0) tok_fail("add_bos_token is true but bos_token \"" + bos + "\" is not in the vocabulary");
    t->post.prefix.push_back(t->bos);
  }
  if (add_eos) {
    if (t->eos < 0) tok_fail("add_eos_token is true but eos_token \"" + eos + "\" is not in the vocabulary");
    t->post.suffix.push_back(t->eos);
  }
  DecoderStep r{};
  r.type = DecoderStep::Type::Replace;
  r.pattern = Pattern::literal("\xE2\x96\x81");
  r.literal = "\xE2\x96\x81";
  r.content = " ";
  t->decoder.push_back(r);
  DecoderStep bf{};
  bf.type = DecoderStep::Type::ByteFallback;
  t->decoder.push_back(bf);
  DecoderStep fu{};
  fu.type = DecoderStep::Type::Fuse;
  t->decoder.push_back(fu);
  if (add_prefix_space) {
    DecoderStep st{};
    st.type = DecoderStep::Type::Strip;
    st.content = " ";
    st.start = 1;
    st.stop = 0;
    t->decoder.push_back(st);
  }
  return t;
}

}  // namespace llrt::tok
