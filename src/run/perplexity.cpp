// Perplexity (include/llrt/perplexity.h): chunked, F64 log-sum-exp per scored token.
#include "llrt/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "llrt/error.h"

namespace llrt {

double PerplexityResult::ppl() const { return std::exp(mean_nll); }

namespace {
// -log softmax(logits)[target] in F64.
double nll_of(const float* logits, int64_t V, int32_t target) {
  float mx = logits[0];
  for (int64_t i = 1; i < V; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(logits[i]) - double(mx));
  return double(mx) + std::log(sum) - double(logits[target]);
}
// Evaluates toks from a fresh context and appends the nll of toks[p + 1] for p in [first, size - 1).
// (Errors name chunk_no and the chunk's text tokens c0..c_last.)
void score_chunk(Session& s, const std::vector<int32_t>& toks, size_t first, int64_t nb, int64_t V, int64_t chunk_no,
                 size_t c0, size_t c_last, std::vector<double>& nll) {
  s.reset();
  for (size_t p0 = 0; p0 + 1 < toks.size(); p0 += size_t(nb)) {
    // positions [p0, p1) predict tokens p0+1 .. p1
    const size_t p1 = std::min(toks.size() - 1, p0 + size_t(nb));
    std::vector<float> lg;
    try {
      lg = s.eval_all({toks.data() + p0, p1 - p0});
    } catch (const Error& e) {  // NaN/Inf logits: which chunk, then what the session found
      if (e.code() != ErrorCode::NonFinite) throw;
      fail(ErrorCode::NonFinite, "perplexity chunk " + std::to_string(chunk_no) + " (tokens " + std::to_string(c0) + ".." +
                                     std::to_string(c_last) + " of the text): " + e.what());
    }
    for (size_t p = std::max(p0, first); p < p1; ++p) nll.push_back(nll_of(lg.data() + (p - p0) * size_t(V), V, toks[p + 1]));
  }
}

void finish(PerplexityResult& r) {
  double sum = 0;
  for (double v : r.nll) sum += v;
  r.mean_nll = r.nll.empty() ? 0 : sum / double(r.nll.size());
}

PerplexityResult perplexity_llama_cpp(Session& s, std::span<const int32_t> ids, const PerplexityOptions& opt,
                                      const std::function<void(int64_t, double)>& progress) {
  const int64_t n = opt.chunk;
  if (n < 4) fail(ErrorCode::InvalidArgument, "perplexity: a chunk of " + std::to_string(n) + " positions scores nothing");
  if (n > s.n_ctx())
    fail(ErrorCode::InvalidArgument, "perplexity: chunk " + std::to_string(n) + " exceeds the context (" + std::to_string(s.n_ctx()) +
                                         " positions): raise --ctx or lower the chunk");
  if (int64_t(ids.size()) < 2 * n)
    fail(ErrorCode::InvalidArgument, "perplexity: " + std::to_string(ids.size()) + " tokens; llama-perplexity's method needs at least " +
                                         std::to_string(2 * n) + " (2 x the context of " + std::to_string(n) +
                                         "): a longer text or a smaller --ctx");
  const int64_t V = s.config().vocab_size, nb = std::max<int64_t>(opt.n_batch, 1);
  int64_t chunks = int64_t(ids.size()) / n;
  if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);
  PerplexityResult r;
  std::vector<int32_t> toks;
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t c0 = size_t(c * n);
    toks.assign(ids.begin() + std::ptrdiff_t(c0), ids.begin() + std::ptrdiff_t(c0) + n);
    if (opt.bos >= 0) toks[0] = opt.bos;
    score_chunk(s, toks, size_t(n / 2), nb, V, c + 1, c0, c0 + size_t(n) - 1, r.nll);
    ++r.chunks;
    finish(r);
    if (progress) progress(r.chunks, r.ppl());
  }
  return r;
}
PerplexityResult perplexity_all_positions(Session& s, std::span<const int32_t> ids, const PerplexityOptions& opt,
                                          const std::function<void(int64_t, double)>& progress) {
  const int64_t with_bos = opt.bos >= 0 ? 1 : 0;
  if (opt.chunk < 2 + with_bos)
    fail(ErrorCode::InvalidArgument, "perplexity: a chunk of " + std::to_string(opt.chunk) + " positions scores nothing");
  if (opt.chunk > s.n_ctx())
    fail(ErrorCode::InvalidArgument, "perplexity: chunk " + std::to_string(opt.chunk) + " exceeds the context (" +
                                         std::to_string(s.n_ctx()) + " positions): raise --ctx or lower the chunk");
  const int64_t V = s.config().vocab_size, body = opt.chunk - with_bos, nb = std::max<int64_t>(opt.n_batch, 1);
  PerplexityResult r;
  std::vector<int32_t> toks;
  for (size_t c0 = 0; c0 < ids.size(); c0 += size_t(body)) {
    if (opt.max_chunks > 0 && r.chunks >= opt.max_chunks) break;
    const size_t n_body = std::min(ids.size() - c0, size_t(body));
    toks.clear();
    if (with_bos) toks.push_back(opt.bos);
    toks.insert(toks.end(), ids.begin() + std::ptrdiff_t(c0), ids.begin() + std::ptrdiff_t(c0 + n_body));
    if (toks.size() < 2) break;  // a last chunk of one token (no BOS) has nothing to score
    score_chunk(s, toks, 0, nb, V, r.chunks + 1, c0, c0 + n_body - 1, r.nll);
    ++r.chunks;
    finish(r);
    if (progress) progress(r.chunks, r.ppl());
  }
  return r;
}
}  // namespace

PerplexityResult perplexity(Session& s, std::span<const int32_t> ids, const PerplexityOptions& opt,
                            const std::function<void(int64_t, double)>& progress) {
  if (ids.empty()) fail(ErrorCode::InvalidArgument, "perplexity: no tokens to score");
  PerplexityResult r = opt.method == PerplexityMethod::LlamaCpp ? perplexity_llama_cpp(s, ids, opt, progress)
                                                                 : perplexity_all_positions(s, ids, opt, progress);
  double var = 0;
  for (double v : r.nll) var += (v - r.mean_nll) * (v - r.mean_nll);
  r.stderr_nll = r.nll.size() > 1 ? std::sqrt(var / double(r.nll.size() - 1) / double(r.nll.size())) : 0;
  return r;
}

}  // namespace llrt
