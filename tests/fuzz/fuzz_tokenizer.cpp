// libFuzzer target: the tokenizer loaders on arbitrary bytes (first byte picks one):
// tokenizer.json (from_json) or a SentencePiece tokenizer.model (from_sentencepiece); a
// tokenizer that loads then encodes and decodes fixed texts (ASCII, multi-byte UTF-8,
// special-token strings) and decodes every id once, also as a stream. Any crash, sanitizer
// report, hang or non-llrt exception is a bug; an llrt::Error is the expected answer.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llrt/error.h"
#include "llrt/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const llrt::Tokenizer t = data[0] % 2 == 0 ? llrt::Tokenizer::from_json(bytes) : llrt::Tokenizer::from_sentencepiece(bytes);
    for (std::string_view text : {"Hello world! It's 2024.\n\n  tabs\tand   spaces", "héllo wörld 日本語 🦙 \xc3\xa9",
                                  "<s>[INST] x [/INST]</s><|begin_of_text|>", ""}) {
      const std::vector<int32_t> ids = t.encode(text, true);
      (void)t.decode(ids, false);
      (void)t.decode(ids, true);
    }
    const int32_t n = t.vocab_size();
    std::vector<int32_t> all;
    for (int32_t i = 0; i < n && i < 4096; ++i) all.push_back(i);
    (void)t.decode(all, false);
    auto stream = t.decode_stream(false);
    for (int32_t id : all) (void)stream.push(id);
    (void)stream.finish();
  } catch (const llrt::Error&) {
  }
  return 0;
}
