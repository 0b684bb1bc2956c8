// llrt tokenizer: tokenizer.json -> TokenizerImpl. Every component type is checked against
// what llrt implements; anything else is Error(Tokenizer) naming the component.
#include <nlohmann/json.hpp>

#include "src/io/bounded_io.h"
#include "src/text/tokenizer/tokenizer_impl.h"
#include "src/text/tokenizer/unicode.h"

namespace llrt::tok {
namespace {

using json = nlohmann::json;

std::string type_of(const json& j, const char* what) {
  if (!j.is_object()) tok_fail(std::string(what) + " is not a JSON object");
  if (!j.contains("type") || !j["type"].is_string()) tok_fail(std::string(what) + " has no \"type\"");
  return j["type"].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_boolean()) tok_fail(std::string("field \"") + key + "\" must be a boolean");
  return j[key].get<bool>();
}

std::string get_str(const json& j, const char* key, const char* what) {
  if (!j.contains(key) || !j[key].is_string())
    tok_fail(std::string(what) + ": field \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

// {"String": s} or {"Regex": r}
Pattern parse_pattern(const json& j, const char* what, std::string* literal = nullptr) {
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    if (literal) *literal = j["String"].get<std::string>();
    return Pattern::literal(j["String"].get<std::string>());
  }
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) return Pattern::regex(j["Regex"].get<std::string>());
  tok_fail(std::string(what) + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
}

Normalizer parse_normalizer(const json& j) {
  const std::string t = type_of(j, "normalizer");
  Normalizer n;
  if (t == "Sequence") {
    n.type = Normalizer::Type::Sequence;
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) tok_fail("normalizer Sequence: \"normalizers\" must be an array");
    for (const json& x : j["normalizers"]) n.seq.push_back(parse_normalizer(x));
  } else if (t == "Prepend") {
    n.type = Normalizer::Type::Prepend;
    n.text = get_str(j, "prepend", "normalizer Prepend");
  } else if (t == "Replace") {
    n.type = Normalizer::Type::Replace;
    if (!j.contains("pattern")) tok_fail("normalizer Replace: missing \"pattern\"");
    n.pattern = parse_pattern(j["pattern"], "normalizer Replace");
    n.text = get_str(j, "content", "normalizer Replace");
  } else {
    tok_fail("normalizer type \"" + t + "\" is not supported by llrt (supported: Prepend, Replace, Sequence)");
  }
  return n;
}

PreTokenizer::Prepend parse_prepend(const json& j, const char* what) {
  // HF: prepend_scheme (always|first|never), default always; legacy add_prefix_space must agree.
  PreTokenizer::Prepend p = PreTokenizer::Prepend::Always;
  const bool has_scheme = j.contains("prepend_scheme") && !j["prepend_scheme"].is_null();
  if (has_scheme) {
    const std::string s = get_str(j, "prepend_scheme", what);
    if (s == "always") p = PreTokenizer::Prepend::Always;
    else if (s == "first") p = PreTokenizer::Prepend::First;
    else if (s == "never") p = PreTokenizer::Prepend::Never;
    else tok_fail(std::string(what) + ": unknown prepend_scheme \"" + s + "\"");
  }
  if (j.contains("add_prefix_space") && !j["add_prefix_space"].is_null()) {
    const bool aps = get_bool(j, "add_prefix_space", true);
    if (aps != (p != PreTokenizer::Prepend::Never))
      tok_fail(std::string(what) + ": add_prefix_space does not match prepend_scheme");
  }
  return p;
}

PreTokenizer parse_pre_tokenizer(const json& j) {
  const std::string t = type_of(j, "pre_tokenizer");
  PreTokenizer p;
  if (t == "Sequence") {
    p.type = PreTokenizer::Type::Sequence;
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) tok_fail("pre_tokenizer Sequence: \"pretokenizers\" must be an array");
    for (const json& x : j["pretokenizers"]) p.seq.push_back(parse_pre_tokenizer(x));
  } else if (t == "Split") {
    p.type = PreTokenizer::Type::Split;
    if (!j.contains("pattern")) tok_fail("pre_tokenizer Split: missing \"pattern\"");
    p.pattern = parse_pattern(j["pattern"], "pre_tokenizer Split");
    const std::string b = get_str(j, "behavior", "pre_tokenizer Split");
    if (b == "Removed") p.behavior = SplitBehavior::Removed;
    else if (b == "Isolated") p.behavior = SplitBehavior::Isolated;
    else if (b == "MergedWithPrevious") p.behavior = SplitBehavior::MergedWithPrevious;
    else if (b == "MergedWithNext") p.behavior = SplitBehavior::MergedWithNext;
    else if (b == "Contiguous") p.behavior = SplitBehavior::Contiguous;
    else tok_fail("pre_tokenizer Split: unknown behavior \"" + b + "\"");
    p.invert = get_bool(j, "invert", false);
  } else if (t == "ByteLevel") {
    p.type = PreTokenizer::Type::ByteLevel;
    p.add_prefix_space = get_bool(j, "add_prefix_space", true);
    p.use_regex = get_bool(j, "use_regex", true);
  } else if (t == "Metaspace") {
    p.type = PreTokenizer::Type::Metaspace;
    p.replacement = get_str(j, "replacement", "pre_tokenizer Metaspace");
    p.prepend = parse_prepend(j, "pre_tokenizer Metaspace");
    p.split = get_bool(j, "split", true);
  } else {
    tok_fail("pre_tokenizer type \"" + t + "\" is not supported by llrt (supported: Split, ByteLevel, Metaspace, Sequence)");
  }
  return p;
}

void flatten_pre(const PreTokenizer& p, std::vector<const PreTokenizer*>& out) {
  if (p.type == PreTokenizer::Type::Sequence) {
    for (const auto& x : p.seq) flatten_pre(x, out);
  } else {
    out.push_back(&p);
  }
}

void parse_decoder(const json& j, std::vector<DecoderStep>& out) {
  const std::string t = type_of(j, "decoder");
  DecoderStep d{};
  if (t == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) tok_fail("decoder Sequence: \"decoders\" must be an array");
    for (const json& x : j["decoders"]) parse_decoder(x, out);
    return;
  }
  if (t == "ByteLevel") {
    d.type = DecoderStep::Type::ByteLevel;
  } else if (t == "Replace") {
    d.type = DecoderStep::Type::Replace;
    if (!j.contains("pattern")) tok_fail("decoder Replace: missing \"pattern\"");
    d.pattern = parse_pattern(j["pattern"], "decoder Replace", &d.literal);
    d.content = get_str(j, "content", "decoder Replace");
  } else if (t == "ByteFallback") {
    d.type = DecoderStep::Type::ByteFallback;
  } else if (t == "Fuse") {
    d.type = DecoderStep::Type::Fuse;
  } else if (t == "Strip") {
    d.type = DecoderStep::Type::Strip;
    d.content = get_str(j, "content", "decoder Strip");
    char32_t cp;
    if (d.content.empty() || static_cast<size_t>(utf8_decode(d.content.data(), d.content.size(), 0, cp)) != d.content.size())
      tok_fail("decoder Strip: \"content\" must be one character");
    auto num = [&](const char* k) -> size_t {
      if (!j.contains(k) || !j[k].is_number_unsigned()) tok_fail(std::string("decoder Strip: \"") + k + "\" must be a non-negative integer");
      return j[k].get<size_t>();
    };
    d.start = num("start");
    d.stop = num("stop");
  } else if (t == "Metaspace") {
    d.type = DecoderStep::Type::Metaspace;
    d.content = get_str(j, "replacement", "decoder Metaspace");
    d.prepend = parse_prepend(j, "decoder Metaspace") != PreTokenizer::Prepend::Never;
  } else {
    tok_fail("decoder type \"" + t + "\" is not supported by llrt (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  }
  out.push_back(std::move(d));
}

void parse_post(const json& j, PostProcessor& post) {
  const std::string t = type_of(j, "post_processor");
  if (t == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) tok_fail("post_processor Sequence: \"processors\" must be an array");
    for (const json& x : j["processors"]) parse_post(x, post);
  } else if (t == "ByteLevel") {
    // only adjusts offsets; ids unchanged
  } else if (t == "TemplateProcessing") {
    if (!j.contains("single") || !j["single"].is_array()) tok_fail("post_processor TemplateProcessing: \"single\" must be an array");
    const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
    std::vector<int32_t> pre, suf;
    bool seen_a = false;
    for (const json& item : j["single"]) {
      if (item.contains("Sequence")) {
        const json& s = item["Sequence"];
        if (!s.contains("id") || s["id"] != "A") tok_fail("post_processor TemplateProcessing: \"single\" may only contain sequence A");
        if (seen_a) tok_fail("post_processor TemplateProcessing: sequence A appears twice in \"single\"");
        seen_a = true;
      } else if (item.contains("SpecialToken")) {
        const std::string id = get_str(item["SpecialToken"], "id", "post_processor TemplateProcessing SpecialToken");
        if (!specials.contains(id) || !specials[id].contains("ids") || !specials[id]["ids"].is_array())
          tok_fail("post_processor TemplateProcessing: special token \"" + id + "\" is missing from special_tokens");
        for (const json& x : specials[id]["ids"]) {
          (seen_a ? suf : pre).push_back(io::json_token_id(
              x, "tokenizer: post_processor TemplateProcessing: an id of special token \"" + id + "\"", ErrorCode::Tokenizer));
        }
      } else {
        tok_fail("post_processor TemplateProcessing: unknown template item " + item.dump());
      }
    }
    if (!seen_a) tok_fail("post_processor TemplateProcessing: \"single\" has no sequence A");
    post.prefix.insert(post.prefix.begin(), pre.begin(), pre.end());
    post.suffix.insert(post.suffix.end(), suf.begin(), suf.end());
  } else {
    tok_fail("post_processor type \"" + t + "\" is not supported by llrt (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
}

// Raw bytes of a ByteLevel-alphabet token; false when a character is outside the alphabet.
bool byte_level_key(std::string_view tok, std::string& out) {
  out.clear();
  for (size_t k = 0; k < tok.size();) {
    char32_t cp;
    const int len = utf8_decode(tok.data(), tok.size(), k, cp);
    const int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
    k += static_cast<size_t>(len);
  }
  return true;
}

void parse_model(const json& m, TokenizerImpl& t) {
  if (!m.is_object()) tok_fail("\"model\" is not a JSON object");
  const std::string type = m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
  if (type != "BPE") tok_fail("model type \"" + (type.empty() ? std::string("(none)") : type) + "\" is not supported by llrt (supported: BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null()) {
    if (!m["dropout"].is_number()) tok_fail("BPE: field \"dropout\" must be a number or null, got " + m["dropout"].dump());
    if (m["dropout"].get<double>() > 0.0) tok_fail("BPE dropout is not supported (non-deterministic)");
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(k) && !m[k].is_null() && !(m[k].is_string() && m[k].get<std::string>().empty()))
      tok_fail(std::string("BPE ") + k + " is not supported by llrt");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) tok_fail("BPE: \"vocab\" must be an object");
  if (!m.contains("merges") || !m["merges"].is_array()) tok_fail("BPE: \"merges\" must be an array");
  BpeModel& bpe = t.model;
  const json& vocab = m["vocab"];
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX)
      tok_fail("BPE: vocab entry \"" + it.key() + "\" has no valid id");
    max_id = std::max(max_id, it.value().get<int32_t>());
  }
  if (max_id >= (1 << 24) && static_cast<size_t>(max_id) > 4 * vocab.size())
    tok_fail("BPE: vocab ids are implausibly sparse (largest id " + std::to_string(max_id) + " for " +
             std::to_string(vocab.size()) + " entries)");
  t.id_to_token.assign(static_cast<size_t>(max_id + 1), std::string());
  t.id_flags.assign(static_cast<size_t>(max_id + 1), 0);
  t.piece_ids.reserve(vocab.size());
  bpe.vocab.reserve(vocab.size());
  std::string key;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = it.value().get<int32_t>();
    t.id_to_token[static_cast<size_t>(id)] = it.key();
    t.id_flags[static_cast<size_t>(id)] |= TokenizerImpl::kPresent;
    t.piece_ids.set(it.key(), id);
    if (!bpe.byte_level) bpe.vocab.set(it.key(), id);
    else if (byte_level_key(it.key(), key)) bpe.vocab.set(key, id);
  }
  bpe.model_vocab_entries = t.piece_ids.size();
  const json& merges = m["merges"];
  bpe.merges.reserve(merges.size());
  int32_t rank = 0;
  for (const json& x : merges) {
    std::string a, b;
    if (x.is_string()) {
      const std::string s = x.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) tok_fail("BPE: merge \"" + s + "\" is not of the form \"a b\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (x.is_array() && x.size() == 2 && x[0].is_string() && x[1].is_string()) {
      a = x[0].get<std::string>();
      b = x[1].get<std::string>();
    } else {
      tok_fail("BPE: merge " + x.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const int32_t ia = t.piece_ids.find(a), ib = t.piece_ids.find(b), im = t.piece_ids.find(a + b);
    if (ia < 0 || ib < 0 || im < 0) tok_fail("BPE: merge (\"" + a + "\", \"" + b + "\") uses a token missing from the vocabulary");
    bpe.merges.set(ia, ib, rank++, im);
  }
  bpe.fuse_unk = get_bool(m, "fuse_unk", false);
  bpe.byte_fallback = get_bool(m, "byte_fallback", false);
  bpe.ignore_merges = get_bool(m, "ignore_merges", false);
  if (m.contains("unk_token") && !m["unk_token"].is_null()) {
    const std::string unk = get_str(m, "unk_token", "BPE");
    bpe.unk_id = t.piece_ids.find(unk);
    if (bpe.unk_id < 0) tok_fail("BPE: unk_token \"" + unk + "\" is not in the vocabulary");
  }
  bpe.prepare();
  bpe.check_metaspace_split(t.id_to_token);
}

}  // namespace

std::shared_ptr<TokenizerImpl> load_tokenizer_json(std::string_view text) {
  const json j = io::parse_json(text, "tokenizer: tokenizer.json", ErrorCode::Tokenizer, io::kMaxTokenizerFile);
  if (!j.is_object()) tok_fail("tokenizer.json is not a JSON object");
  if (!j.contains("model")) tok_fail("tokenizer.json has no \"model\"");
  for (const char* k : {"truncation", "padding"})
    if (j.contains(k) && !j[k].is_null()) tok_fail(std::string("tokenizer.json: \"") + k + "\" is set; llrt does not truncate or pad");
  auto t = std::make_shared<TokenizerImpl>();
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    t->normalizer = parse_normalizer(j["normalizer"]);
    t->has_normalizer = true;
  }
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    t->pre_tokenizer = parse_pre_tokenizer(j["pre_tokenizer"]);
    t->has_pre_tokenizer = true;
    std::vector<const PreTokenizer*> flat;
    flatten_pre(t->pre_tokenizer, flat);
    for (size_t k = 0; k < flat.size(); ++k) {
      if (flat[k]->type != PreTokenizer::Type::ByteLevel) continue;
      if (k + 1 != flat.size()) tok_fail("pre_tokenizer: ByteLevel followed by other pre-tokenizers is not supported by llrt");
      t->model.byte_level = true;
    }
  }
  parse_model(j["model"], *t);
  if (j.contains("post_processor") && !j["post_processor"].is_null()) parse_post(j["post_processor"], t->post);
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    parse_decoder(j["decoder"], t->decoder);
    bool fused = false;
    for (const DecoderStep& d : t->decoder) {
      if (fused && (d.type == DecoderStep::Type::ByteFallback || d.type == DecoderStep::Type::ByteLevel))
        tok_fail("decoder: ByteFallback/ByteLevel after Fuse or ByteLevel is not supported by llrt");
      if (fused && d.type == DecoderStep::Type::Replace && d.pattern.kind() != Pattern::Kind::Literal)
        tok_fail("decoder: a regex Replace after Fuse or ByteLevel is not supported by llrt");
      if (d.type == DecoderStep::Type::Fuse || d.type == DecoderStep::Type::ByteLevel) fused = true;
    }
  }
  std::vector<AddedToken> added;
  std::vector<std::pair<std::string, int64_t>> declared_ids;  // added tokens' "id" as written (HF assigns its own)
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) tok_fail("\"added_tokens\" must be an array");
    for (const json& a : j["added_tokens"]) {
      if (!a.is_object()) tok_fail("added token is not an object");
      AddedToken at;
      at.content = get_str(a, "content", "added token");
      at.single_word = get_bool(a, "single_word", false);
      at.lstrip = get_bool(a, "lstrip", false);
      at.rstrip = get_bool(a, "rstrip", false);
      at.normalized = get_bool(a, "normalized", true);
      at.special = get_bool(a, "special", false);
      // HF assigns added-token ids itself (model vocabulary, else the next free id) and so does
      // add_tokens(); the id written in the file must still be a token id, not a truncated one.
      if (a.contains("id") && !a["id"].is_null()) {
        const int32_t declared = io::json_token_id(a["id"], "tokenizer: added token \"" + at.content + "\": \"id\"", ErrorCode::Tokenizer);
        declared_ids.emplace_back(at.content, int64_t(declared));
      }
      added.push_back(std::move(at));
    }
  }
  t->add_tokens(added);
  for (const std::vector<int32_t>* v : {&t->post.prefix, &t->post.suffix})
    for (int32_t id : *v)
      if (id < 0 || static_cast<size_t>(id) >= t->id_to_token.size() || !(t->id_flags[static_cast<size_t>(id)] & TokenizerImpl::kPresent))
      {
        // Usually an added token the file places at this id that HF's rule (added tokens go after
        // the model's vocab entries) places elsewhere: say which, and why.
        std::string why;
        for (const auto& [content, want] : declared_ids) {
          auto it = t->added_by_content.find(content);
          if (want != id || it == t->added_by_content.end() || it->second == id) continue;
          why = ": added_tokens declares \"" + content + "\" with id " + std::to_string(want) + ", but it gets id " +
                std::to_string(it->second) + " (added tokens take the ids after model.vocab's " +
                std::to_string(t->model.model_vocab_entries) + " entries, so a vocab whose ids are sparse or have gaps shifts them)" +
                "; make model.vocab's ids dense from 0, or the added_tokens and post_processor ids match what they get";
          break;
        }
        tok_fail("post_processor TemplateProcessing: special token id " + std::to_string(id) + " is not in the vocabulary" +
                 (why.empty() ? " (fix the post_processor's ids or added_tokens)" : why));
      }
  t->kind = t->model.byte_level ? "tokenizer.json BPE (byte-level)" : "tokenizer.json BPE (SentencePiece-style)";
  if (!t->post.prefix.empty()) t->bos = t->post.prefix.front();
  return t;
}

}  // namespace llrt::tok
