// llrt tokenizer: the pipeline (encode / decode) and the public API (include/llrt/tokenizer.h).
#include "llrt/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "src/io/bounded_io.h"
#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt {
namespace tok {

void tok_fail(const std::string& msg) { fail(ErrorCode::Tokenizer, "tokenizer: " + msg); }

namespace {
std::atomic<uint64_t> g_next_instance{1};

// Scratch reused across encode() calls on one thread, so the BPE word cache persists between
// calls (as HF's per-model cache does) and small encodes allocate nothing. It belongs to one
// tokenizer at a time (instance ids are never reused); switching tokenizers clears it.
struct ThreadScratch {
  uint64_t owner = 0;
  PreTokenizeScratch sc;
  BpeScratch bs;
};
thread_local ThreadScratch t_scratch;
}  // namespace

TokenizerImpl::TokenizerImpl() : instance_id(g_next_instance.fetch_add(1)) {}

// HF AddedVocabulary::add_tokens + refresh_added_tokens.
void TokenizerImpl::add_tokens(const std::vector<AddedToken>& tokens) {
  std::vector<std::string> special_order;  // contents, in the order HF's special_tokens holds them
  std::vector<std::string> added_order;
  std::unordered_set<std::string> special_set;
  std::unordered_map<int32_t, AddedToken> by_id;
  auto lookup = [&](const std::string& c) -> int32_t {
    auto it = added_by_content.find(c);
    if (it != added_by_content.end()) return it->second;
    return piece_ids.find(c);
  };
  for (const AddedToken& t : tokens) {
    if (t.special && !t.content.empty() && special_set.insert(t.content).second) special_order.push_back(t.content);
  }
  // HF skips a token equal (content and flags) to one already held, and gives a new content
  // the next id after the largest added id. Both are kept as they change (a hash of the held
  // tokens, a running maximum) so that registering n tokens is O(n), not O(n^2).
  auto key_of = [](const AddedToken& a) {
    std::string k = a.content;
    k.push_back(static_cast<char>(a.single_word | a.lstrip << 1 | a.rstrip << 2 | a.normalized << 3 | a.special << 4));
    return k;
  };
  std::unordered_set<std::string> held;  // key_of(v) for every v in by_id
  int32_t mx = -1;
  for (const auto& [c, v] : added_by_content) mx = std::max(mx, v);
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    std::string key = key_of(t);
    if (held.count(key)) continue;
    int32_t id = lookup(t.content);
    if (id < 0) {
      const auto msize = static_cast<int32_t>(model.model_vocab_entries);
      if (mx == std::numeric_limits<int32_t>::max()) tok_fail("added tokens: no token id is left after " + std::to_string(mx));
      id = mx < 0 ? msize : ((mx >= msize || msize == 0) ? mx + 1 : msize);
    }
    added_by_content[t.content] = id;
    mx = std::max(mx, id);
    AddedToken tt = t;
    tt.id = id;
    auto [it, fresh] = by_id.try_emplace(id, tt);
    if (!fresh) {
      held.erase(key_of(it->second));
      it->second = tt;
    }
    held.insert(std::move(key));
    if (!special_set.count(t.content)) added_order.push_back(t.content);
  }
  added.clear();
  for (auto& [id, t] : by_id) added.push_back(t);
  std::sort(added.begin(), added.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  // id table
  int32_t max_id = static_cast<int32_t>(id_to_token.size()) - 1;
  for (const AddedToken& t : added) max_id = std::max(max_id, t.id);
  id_to_token.resize(static_cast<size_t>(max_id + 1));
  id_flags.resize(static_cast<size_t>(max_id + 1), 0);
  for (const AddedToken& t : added) {
    id_to_token[static_cast<size_t>(t.id)] = t.content;
    id_flags[static_cast<size_t>(t.id)] |= kPresent | kAdded;
    if (special_set.count(t.content)) id_flags[static_cast<size_t>(t.id)] |= kSpecial;
  }
  // matchers: special tokens first, then the others, partitioned by `normalized`
  auto find_added = [&](int32_t id) -> const AddedToken* {
    auto it = std::lower_bound(added.begin(), added.end(), id, [](const AddedToken& a, int32_t v) { return a.id < v; });
    return it != added.end() && it->id == id ? &*it : nullptr;
  };
  std::vector<const AddedToken*> raw_t, norm_t;
  std::vector<std::string> raw_p, norm_p;
  auto place = [&](const std::string& content) {
    const int32_t id = added_by_content.at(content);
    const AddedToken* t = find_added(id);
    // the partition uses the listed token's own `normalized` flag; matches use the id's token
    const AddedToken& listed = by_id.at(id);
    if (listed.normalized) {
      std::string p = content;
      if (has_normalizer) normalizer.apply(p);
      norm_t.push_back(t);
      norm_p.push_back(std::move(p));
    } else {
      raw_t.push_back(t);
      raw_p.push_back(content);
    }
  };
  for (const auto& c : special_order)
    if (added_by_content.count(c)) place(c);
  for (const auto& c : added_order) place(c);
  raw_matcher.build(raw_t, raw_p);
  norm_matcher.build(norm_t, norm_p);
}

std::vector<int32_t> TokenizerImpl::encode(std::string_view text, bool add_special) const {
  const size_t bad = utf8_first_invalid(text);
  if (bad != std::string_view::npos)
    fail(ErrorCode::InvalidArgument, "tokenizer: input text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<int32_t> ids;
  if (add_special) ids = post.prefix;
  ids.reserve(text.size() / 3 + 8);
  std::vector<Segment> segs, nsegs;
  ThreadScratch& ts = t_scratch;
  if (ts.owner != instance_id) {
    ts.bs.cache.clear();
    ts.bs.cache_spans.clear();
    ts.bs.cache_ids.clear();
    ts.owner = instance_id;
  }
  PreTokenizeScratch& sc = ts.sc;
  BpeScratch& bs = ts.bs;
  auto run_piece = [&](std::string_view s, bool at_origin) {
    if (s.empty()) return;
    sc.a.clear();
    sc.a.push_back({s, at_origin});
    if (has_pre_tokenizer) pre_tokenize(pre_tokenizer, sc.a, sc);
    for (const Piece& p : sc.a) model.tokenize(p.text, ids, bs);
    sc.arena.clear();
  };
  raw_matcher.split(text, segs);
  std::string norm;
  for (const Segment& g : segs) {
    if (g.id >= 0) { ids.push_back(g.id); continue; }
    if (g.end == g.begin) continue;
    std::string_view piece = text.substr(g.begin, g.end - g.begin);
    const bool origin = g.begin == 0;
    if (!has_normalizer) {
      if (norm_matcher.empty()) { run_piece(piece, origin); continue; }
    } else {
      norm.assign(piece);
      normalizer.apply(norm);
      piece = norm;
    }
    if (norm_matcher.empty()) { run_piece(piece, origin); continue; }
    norm_matcher.split(piece, nsegs);
    for (const Segment& h : nsegs) {
      if (h.id >= 0) ids.push_back(h.id);
      else run_piece(piece.substr(h.begin, h.end - h.begin), origin && h.begin == 0);
    }
  }
  if (add_special) ids.insert(ids.end(), post.suffix.begin(), post.suffix.end());
  // A very long input leaves big work arrays behind; don't keep them alive in the thread.
  constexpr size_t kKeep = 1 << 16;
  if (sc.a.capacity() > kKeep || sc.b.capacity() > kKeep) sc.a = {}, sc.b = {}, sc.matches = {};
  if (bs.syms.capacity() > kKeep || bs.heap.capacity() > kKeep) bs.syms = {}, bs.heap = {}, bs.ids = {}, bs.ranks = {}, bs.merged = {};
  return ids;
}

static int32_t config_token_id(const TokenizerImpl& t, const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return -1;
  std::string content;
  const auto& v = j[key];
  if (v.is_string()) content = v.get<std::string>();
  else if (v.is_object() && v.contains("content") && v["content"].is_string()) content = v["content"].get<std::string>();
  else tok_fail(std::string("tokenizer_config.json: '") + key + "' is neither a string nor an AddedToken object");
  auto it = t.added_by_content.find(content);
  if (it != t.added_by_content.end()) return it->second;
  return t.piece_ids.find(content);
}

void TokenizerImpl::apply_config(std::string_view config_json) {
  if (config_json.empty()) return;
  const nlohmann::json j = io::parse_json(config_json, "tokenizer_config.json", ErrorCode::Format, io::kMaxConfigJson);
  if (!j.is_object()) fail(ErrorCode::Format, "tokenizer_config.json: not a JSON object");
  if (int32_t b = config_token_id(*this, j, "bos_token"); b >= 0) bos = b;
  if (int32_t e = config_token_id(*this, j, "eos_token"); e >= 0) eos = e;
}

}  // namespace tok

// ---------------------------------------------------------------- public API
Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  const auto json = dir / "tokenizer.json", model = dir / "tokenizer.model", cfg = dir / "tokenizer_config.json";
  const std::string config = std::filesystem::exists(cfg) ? io::read_file(cfg, io::kMaxConfigJson) : std::string();
  if (std::filesystem::exists(json)) return from_json(io::read_file(json, io::kMaxTokenizerFile), config);
  if (std::filesystem::exists(model)) return from_sentencepiece(io::read_file(model, io::kMaxTokenizerFile), config);
  fail(ErrorCode::Io, "no tokenizer in " + dir.string() + ": neither tokenizer.json nor tokenizer.model exists");
}

// JSON values of an unexpected type surface as nlohmann exceptions deep in the loaders: report
// them as the malformed-file errors they are.
Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, std::string_view config) {
  try {
    auto impl = tok::load_tokenizer_json(tokenizer_json);
    impl->apply_config(config);
    return Tokenizer(std::move(impl));
  } catch (const nlohmann::json::exception& e) {
    tok::tok_fail(std::string("malformed tokenizer.json / tokenizer_config.json: ") + e.what());
  }
}

Tokenizer Tokenizer::from_sentencepiece(std::string_view proto, std::string_view config) {
  try {
    return Tokenizer(tok::load_sentencepiece(proto, config));
  } catch (const nlohmann::json::exception& e) {
    tok::tok_fail(std::string("malformed tokenizer_config.json: ") + e.what());
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  TokenDecodeStream s = decode_stream(skip_special_tokens);
  std::string out;
  for (int32_t id : ids) out += s.push(id);
  out += s.finish();
  return out;
}

TokenDecodeStream Tokenizer::decode_stream(bool skip_special_tokens) const {
  return TokenDecodeStream(impl_, skip_special_tokens);
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !(impl_->id_flags[static_cast<size_t>(id)] & tok::TokenizerImpl::kPresent))
    fail(ErrorCode::InvalidArgument, "tokenizer: id " + std::to_string(id) + " is not in the vocabulary (size " +
                                         std::to_string(vocab_size()) + ")");
  return impl_->id_to_token[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::piece_to_id(std::string_view piece) const {
  auto it = impl_->added_by_content.find(std::string(piece));
  if (it != impl_->added_by_content.end()) return it->second;
  const int32_t id = impl_->piece_ids.find(piece);
  if (id >= 0) return id;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (impl_->id_flags[static_cast<size_t>(id)] & tok::TokenizerImpl::kSpecial);
}
const std::string& Tokenizer::tokenizer_kind() const { return impl_->kind; }

TokenDecodeStream::TokenDecodeStream(std::shared_ptr<const tok::TokenizerImpl> impl, bool skip_special)
    : impl_(std::move(impl)), state_(tok::make_decode_state(impl_->decoder)), skip_special_(skip_special) {}
TokenDecodeStream::~TokenDecodeStream() = default;
TokenDecodeStream::TokenDecodeStream(TokenDecodeStream&&) noexcept = default;
TokenDecodeStream& TokenDecodeStream::operator=(TokenDecodeStream&&) noexcept = default;

std::string TokenDecodeStream::push(int32_t id) {
  const auto n = static_cast<int32_t>(impl_->id_to_token.size());
  if (id < 0 || id >= n)
    fail(ErrorCode::InvalidArgument, "tokenizer: cannot decode id " + std::to_string(id) + " (vocabulary size " +
                                         std::to_string(n) + ")");
  const uint8_t f = impl_->id_flags[static_cast<size_t>(id)];
  std::string out;
  if (!(f & tok::TokenizerImpl::kPresent)) return out;  // a hole in the vocabulary: HF skips it
  if (skip_special_ && (f & tok::TokenizerImpl::kSpecial)) return out;
  tok::decode_push(*state_, impl_->id_to_token[static_cast<size_t>(id)], out);
  return out;
}

std::string TokenDecodeStream::finish() {
  std::string out;
  tok::decode_finish(*state_, out);
  return out;
}

}  // namespace llrt
