// llrt tokenizer internals: the components of an HF `tokenizers` pipeline, as llrt runs them.
//
// encode(text): added-token split on the raw text -> normalizer per remaining segment ->
// added-token split (normalized tokens) -> pre-tokenizer -> BPE per piece -> post-processor.
// decode(ids): ids -> token strings (added tokens first) -> decoder steps, streamed (see
// decoders.cpp) so that decode() and TokenDecodeStream share one code path.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llrt/error.h"
#include "src/text/tokenizer/bpe.h"
#include "src/text/tokenizer/pattern.h"

namespace llrt::tok {

[[noreturn]] void tok_fail(const std::string& msg);

// ---------------------------------------------------------------- added tokens
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// A segment of the input: either an added token (id >= 0) or text [begin, end) of `text`.
struct Segment {
  int32_t id;
  size_t begin, end;
};

// Leftmost-longest multi-pattern matcher (the semantics of aho-corasick's LeftmostLongest used
// by HF's AddedVocabulary), plus HF's single_word / lstrip / rstrip handling.
class AddedMatcher {
 public:
  void build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into segments (HF AddedVocabulary::find_matches).
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;                             // index into tokens_ when a pattern ends here
  };
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  std::array<bool, 256> first_byte_{};
};

// ---------------------------------------------------------------- normalizers
struct Normalizer {
  enum class Type { Prepend, Replace, Sequence } type = Type::Sequence;
  std::string text;     // Prepend: prepended string; Replace: replacement content
  Pattern pattern;      // Replace
  std::vector<Normalizer> seq;
  void apply(std::string& s) const;
};

// ---------------------------------------------------------------- pre-tokenizers
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// A pre-tokenized piece: a view into the input or into the arena; `at_origin` is HF's
// "offsets_original().0 == 0" (Metaspace prepend_scheme "first"), taken as "the piece starts at
// byte 0 of a segment that starts at byte 0 of the input". That is HF's value except where a
// normalizer inserted text and a split then starts a piece inside the inserted text (HF maps
// such a piece to original offset 0 too); no known tokenizer.json combines those.
struct Piece {
  std::string_view text;
  bool at_origin;
};

struct PreTokenizer {
  enum class Type { Split, ByteLevel, Metaspace, Sequence } type = Type::Sequence;
  // Split
  Pattern pattern;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false;
  bool use_regex = false;
  // Metaspace
  std::string replacement;
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;
  bool split = true;
  std::vector<PreTokenizer> seq;
};

struct PreTokenizeScratch {
  std::vector<Piece> a, b;
  std::vector<std::unique_ptr<std::string>> arena;
  std::vector<Match> matches;
  std::string_view keep(std::string s);
};

// Runs `pt` over pieces (in place). Byte-level character mapping is not materialized: the BPE
// model works on raw bytes when the pipeline ends in ByteLevel (see bpe.h).
void pre_tokenize(const PreTokenizer& pt, std::vector<Piece>& pieces, PreTokenizeScratch& sc);

// ---------------------------------------------------------------- post-processor
struct PostProcessor {
  // TemplateProcessing `single`: ids before and after the sequence $A.
  std::vector<int32_t> prefix, suffix;
};

// ---------------------------------------------------------------- decoders
struct DecoderStep {
  enum class Type { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } type;
  Pattern pattern;          // Replace
  std::string literal;      // Replace: the pattern text when it is a literal (fused mode)
  std::string content;      // Replace: replacement; Strip: the char; Metaspace: replacement
  size_t start = 0, stop = 0;  // Strip
  bool prepend = true;      // Metaspace: prepend_scheme != never
};

struct StepState {
  std::string held;          // ByteLevel: bytes of an unfinished char; Replace/Strip(fused): held text
  std::vector<uint8_t> group;  // ByteFallback: the open group of <0xXX> bytes
  size_t tokens_seen = 0;    // Metaspace: index of the next token
  size_t start_left = 0;     // Strip (fused): leading chars still to strip
  bool started = false;      // no-decoder join / fused Strip: something was emitted
};

struct DecodeStreamState {
  const std::vector<DecoderStep>* steps;
  std::vector<bool> fused_in;  // step i receives chunks of one fused token
  std::vector<StepState> st;
  bool none = false;           // no decoder: tokens joined with " "
  bool none_started = false;
};

std::unique_ptr<DecodeStreamState> make_decode_state(const std::vector<DecoderStep>& steps);
// Feeds one token string through the decoder chain; appends completed text to out.
void decode_push(DecodeStreamState& st, std::string_view token, std::string& out);
void decode_finish(DecodeStreamState& st, std::string& out);

// ---------------------------------------------------------------- the tokenizer
struct TokenizerImpl {
  TokenizerImpl();
  const uint64_t instance_id;            // unique per load: keys the per-thread BPE cache
  std::string kind;
  std::vector<std::string> id_to_token;  // size vocab_size; "" for holes
  std::vector<uint8_t> id_flags;         // kPresent | kSpecial | kAdded
  static constexpr uint8_t kPresent = 1, kSpecial = 2, kAdded = 4;
  std::unordered_map<std::string, int32_t> added_by_content;
  StrIdMap piece_ids;                    // model vocabulary by token string (as written in the file)
  std::vector<AddedToken> added;
  AddedMatcher raw_matcher, norm_matcher;
  bool has_normalizer = false;
  Normalizer normalizer;
  bool has_pre_tokenizer = false;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  PostProcessor post;
  std::vector<DecoderStep> decoder;
  int32_t bos = -1, eos = -1;

  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  // Adds added tokens the way HF's AddedVocabulary::add_tokens assigns ids, then builds the
  // matchers (call once, after model and normalizer are set).
  void add_tokens(const std::vector<AddedToken>& tokens);
  // tokenizer_config.json: bos_token / eos_token.
  void apply_config(std::string_view config_json);
};

std::shared_ptr<TokenizerImpl> load_tokenizer_json(std::string_view json);
std::shared_ptr<TokenizerImpl> load_sentencepiece(std::string_view proto, std::string_view config_json);

}  // namespace llrt::tok
