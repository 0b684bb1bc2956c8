// Tokenizer throughput: encode MB/s of input text (and decode MB/s of output text) on ~10 MB of
// deterministic multilingual text, single thread.
//
//   BM_encode/<tokenizer>         one encode() call on the whole text
//   BM_encode_chunks/<tokenizer>  encode() per ~4 KB chunk (cut at line ends), the prompt-sized case
//   BM_decode/<tokenizer>         decode() of the whole text's ids
// Tokenizers: llama3 = shared/models/llama-3.2-mini/tokenizer.json (byte-level BPE, Llama 3
// regex), llama2 = shared/models/tinyllama-mini-f16/tokenizer.model (SentencePiece path).
// The text: LLRT_BENCH_TEXT=<file> to use a file; otherwise generated here (fixed LCG seed) and,
// with LLRT_BENCH_TEXT_DUMP=<file>, written out so bench/tokenizer_side_by_side.py can give HF
// the same bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "llrt/tokenizer.h"

using namespace llrt;

namespace {

std::string shared_dir() {
  if (const char* e = std::getenv("LLRT_SHARED"); e && *e) return e;
  return std::string(LLRT_SOURCE_DIR) + "/../shared";
}

// ~10 MB: prose words, code, numbers, several scripts, emoji, whitespace runs, and 12% fresh
// random words (so BPE merging, not only the word cache, is exercised).
std::string make_text(size_t target) {
  static const char* words[] = {
      "the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with", "as", "I", "his",
      "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but", "what", "some", "we",
      "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said", "an", "each",
      "She", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them", "write",
      "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
      "don't", "It's", "we'll", "they're", "I'VE", "you'd", "Hello,", "world!", "(see", "above)", "e.g.",
      "tokenization", "transformer", "inference", "performance", "international", "responsibility",
      "Straße", "naïve", "café", "résumé", "Ελληνικά", "γλώσσα", "Русский", "язык", "программа", "العربية",
      "مرحبا", "हिन्दी", "भाषा", "中文", "日本語", "한국어", "東京都", "北京市", "😀", "👍🏽", "🇺🇸", "❤️",
      "def", "return", "if (x == 0) {", "}", "for (int i = 0; i < n; ++i)", "x += 1;", "std::vector<int>",
      "print(\"hi\")", "#include", "<div>", "</div>", "0x1F", "3.14159", "2024-01-31", "1,000,000", "42",
      "12345678", "$19.99", "50%", "--", "...", "—", "\"quoted\"", "'single'", "[1, 2, 3]", "{\"k\": \"v\"}"};
  static const char* seps[] = {" ", " ", " ", " ", " ", " ", " ", " ", ", ", ". ", "\n", "  ", "\t", "\n\n", " \n", "   "};
  const size_t nw = sizeof(words) / sizeof(words[0]), ns = sizeof(seps) / sizeof(seps[0]);
  uint64_t s = 0x2545F4914F6CDD1DULL;
  auto next = [&s]() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(s >> 33);
  };
  std::string t;
  t.reserve(target + 64);
  while (t.size() < target) {
    const uint32_t r = next() % 100;
    if (r < 12) {  // a fresh word
      const uint32_t len = 3 + next() % 10;
      for (uint32_t k = 0; k < len; ++k) t.push_back(static_cast<char>('a' + next() % 26));
    } else if (r < 15) {
      t += std::to_string(next() % 1000000);
    } else {
      t += words[next() % nw];
    }
    t += seps[next() % ns];
  }
  return t;
}

const std::string& text() {
  static const std::string t = [] {
    if (const char* f = std::getenv("LLRT_BENCH_TEXT"); f && *f) {
      std::ifstream in(f, std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      return ss.str();
    }
    std::string g = make_text(10u << 20);
    if (const char* d = std::getenv("LLRT_BENCH_TEXT_DUMP"); d && *d) std::ofstream(d, std::ios::binary) << g;
    return g;
  }();
  return t;
}

const Tokenizer& tokenizer(const std::string& name) {
  static const Tokenizer llama3 = Tokenizer::load(shared_dir() + "/models/llama-3.2-mini");
  static const Tokenizer llama2 = Tokenizer::load(shared_dir() + "/models/tinyllama-mini-f16");
  return name == "llama3" ? llama3 : llama2;
}

std::vector<std::string_view> chunks() {
  std::vector<std::string_view> c;
  const std::string& t = text();
  size_t pos = 0;
  while (pos < t.size()) {
    size_t end = std::min(t.size(), pos + 4096);
    const size_t nl = t.find('\n', end);
    end = nl == std::string::npos ? t.size() : nl + 1;
    c.emplace_back(t.data() + pos, end - pos);
    pos = end;
  }
  return c;
}

void BM_encode(benchmark::State& st, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const std::string& t = text();
  size_t n = 0;
  for (auto _ : st) {
    auto ids = tok.encode(t, false);
    n = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * t.size()));
  st.counters["tokens"] = static_cast<double>(n);
  st.counters["MB"] = static_cast<double>(t.size()) / 1e6;
}

void BM_encode_chunks(benchmark::State& st, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const auto cs = chunks();
  for (auto _ : st) {
    for (auto c : cs) {
      auto ids = tok.encode(c, false);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * text().size()));
  st.counters["chunks"] = static_cast<double>(cs.size());
}

void BM_decode(benchmark::State& st, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const auto ids = tok.encode(text(), false);
  size_t out = 0;
  for (auto _ : st) {
    std::string s = tok.decode(ids);
    out = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * out));
}

}  // namespace

BENCHMARK_CAPTURE(BM_encode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_encode_chunks, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_decode, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_encode, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_encode_chunks, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_decode, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond)->MinTime(2.0);

BENCHMARK_MAIN();
