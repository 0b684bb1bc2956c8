// llrt: tokenizers with Hugging Face `tokenizers` semantics, exactly.
//
// Two sources:
//  * tokenizer.json (the HF `tokenizers` serialization): added tokens, normalizers (Prepend,
//    Replace, Sequence), pre-tokenizers (Split, ByteLevel, Metaspace, Sequence), the BPE model,
//    post-processors (TemplateProcessing, ByteLevel, Sequence) and decoders (ByteLevel, Replace,
//    ByteFallback, Fuse, Strip, Metaspace, Sequence). Any other component is an
//    Error(ErrorCode::Tokenizer) naming it; nothing is approximated.
//  * SentencePiece tokenizer.model (BPE type, e.g. Llama 2 / TinyLlama): read with a small
//    protobuf reader and turned into what transformers 4.x `LlamaTokenizerFast.from_slow`
//    builds in its legacy form (the form of the Hub's Llama 2 tokenizer.json files): normalizer
//    Prepend("▁") + Replace(" ", "▁"), BPE with merges derived from piece scores, byte_fallback,
//    fuse_unk, BOS/EOS from tokenizer_config.json's add_bos_token / add_eos_token.
//
// A Tokenizer is immutable after load and cheap to copy (shared state); encode/decode are
// thread-safe.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llrt {

namespace tok {
struct TokenizerImpl;
struct DecodeStreamState;
}  // namespace tok

class TokenDecodeStream;

class Tokenizer {
 public:
  // Loads model_dir/tokenizer.json if present, else model_dir/tokenizer.model; reads
  // model_dir/tokenizer_config.json when present (special tokens, add_bos/eos for .model).
  // Error(Io) when neither file exists, Error(Tokenizer) for unsupported/malformed contents.
  static Tokenizer load(const std::filesystem::path& model_dir);
  // From the text of a tokenizer.json (+ optional tokenizer_config.json text, "" for none).
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view tokenizer_config_json = {});
  // From the bytes of a SentencePiece ModelProto (+ optional tokenizer_config.json text).
  static Tokenizer from_sentencepiece(std::string_view model_proto_bytes,
                                      std::string_view tokenizer_config_json = {});

  // Text (valid UTF-8, else Error(Tokenizer)) -> ids. add_special_tokens applies the
  // post-processor (e.g. BOS) exactly as HF `Tokenizer.encode(text, add_special_tokens)`.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Ids -> text as HF `Tokenizer.decode(ids, skip_special_tokens)`. Ids outside
  // [0, vocab_size()) are Error(InvalidArgument). This is the `tokenizers` library's decode:
  // transformers' extra clean_up_tokenization_spaces pass (" ." -> "." etc., which Llama 3's
  // tokenizer_config.json enables) is not applied.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // Incremental decoder: push ids one at a time; the concatenation of everything it returns
  // (including finish()) equals decode(all ids). Never returns part of a UTF-8 character.
  TokenDecodeStream decode_stream(bool skip_special_tokens = false) const;

  // The token's string as stored in the vocabulary (e.g. "Ġthe", "▁the", "<0x0A>", "<s>").
  // Error(InvalidArgument) for an id outside the vocabulary.
  std::string id_to_piece(int32_t id) const;
  // Id of a vocabulary string (added tokens included), or nullopt.
  std::optional<int32_t> piece_to_id(std::string_view piece) const;
  // Number of id slots: 1 + the largest id of the model vocabulary and added tokens.
  int32_t vocab_size() const;
  // BOS / EOS from tokenizer_config.json (bos_token / eos_token), else the SentencePiece
  // trainer spec, else the post-processor's first special token (BOS); -1 when unknown.
  int32_t bos_id() const;
  int32_t eos_id() const;
  // Whether the id is a special added token (skipped by decode(..., skip_special_tokens=true)).
  bool is_special(int32_t id) const;
  // "tokenizer.json BPE (byte-level)", "tokenizer.json BPE (SentencePiece-style)" or
  // "sentencepiece tokenizer.model".
  const std::string& tokenizer_kind() const;

 private:
  explicit Tokenizer(std::shared_ptr<const tok::TokenizerImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const tok::TokenizerImpl> impl_;
};

class TokenDecodeStream {
 public:
  // Returns the text that became complete with this id (possibly empty: bytes of an unfinished
  // character, or a byte-fallback group, are held).
  std::string push(int32_t id);
  // Returns what is still held (incomplete UTF-8 becomes U+FFFD, as decode() would) and resets.
  std::string finish();
  ~TokenDecodeStream();
  TokenDecodeStream(TokenDecodeStream&&) noexcept;
  TokenDecodeStream& operator=(TokenDecodeStream&&) noexcept;

 private:
  friend class Tokenizer;
  TokenDecodeStream(std::shared_ptr<const tok::TokenizerImpl> impl, bool skip_special);
  std::shared_ptr<const tok::TokenizerImpl> impl_;
  std::unique_ptr<tok::DecodeStreamState> state_;
  bool skip_special_ = false;
};

}  // namespace llrt
