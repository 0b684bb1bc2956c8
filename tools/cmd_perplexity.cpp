// llrt perplexity MODEL -f FILE [--ctx N] [--chunks K] [--all-positions] [run options]: the model's
// perplexity on a text (include/llrt/perplexity.h). By default llama-perplexity's method and output:
// the text with BOS first in whole chunks of N tokens (default 512), the second half of each
// scored, "[1]x,[2]y,..." running values on stdout, then "Final estimate: PPL = X +/- Y".
// --all-positions: every position of chunks of BOS + N-1 tokens (the last partial chunk too).
#include <cstdio>

#include "cli_common.h"
#include "llrt/error.h"
#include "llrt/perplexity.h"
#include "run_common.h"

namespace llrt::cli {

int cmd_perplexity(Args& a) {
  RunSetup setup = parse_run_setup(a);
  std::string file;
  const bool have_file = a.value({"-f", "--file"}, &file);
  int64_t chunks = 0;
  a.number<int64_t>({"--chunks"}, &chunks, 0, INT64_MAX, "0 scores every chunk");
  const bool json = a.flag({"--json"});
  const bool all_positions = a.flag({"--all-positions"});
  std::string model_ref;
  auto pos = model_and_positionals(a, "perplexity", &model_ref);
  if (!have_file) fail(ErrorCode::InvalidArgument, "perplexity: --file F (the text to score) is missing");
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "perplexity: unexpected argument '" + pos[0] + "'");
  if (setup.ctx > 0 && setup.ctx < (all_positions ? 3 : 4))
    fail(ErrorCode::InvalidArgument, "perplexity: --ctx " + std::to_string(setup.ctx) + " scores nothing (at least " +
                                         (all_positions ? "3" : "4") + ")");
  const std::string text = read_text_file(file);
  const std::string dir = resolve_model(model_ref);
  Tokenizer tok = Tokenizer::load(dir);
  const std::vector<int32_t> with_special = tok.encode("", true);
  const bool adds_bos = !with_special.empty() && with_special[0] == tok.bos_id();
  PerplexityOptions po;
  po.method = all_positions ? PerplexityMethod::AllPositions : PerplexityMethod::LlamaCpp;
  po.bos = adds_bos ? tok.bos_id() : -1;
  // llama-perplexity tokenizes with the special tokens (BOS first); all-positions adds BOS per chunk.
  const std::vector<int32_t> ids = tok.encode(text, !all_positions);
  if (setup.ctx <= 0) setup.ctx = 512;
  po.chunk = setup.ctx;
  po.max_chunks = chunks;
  if (!all_positions && int64_t(ids.size()) < 2 * po.chunk)  // before the load
    fail(ErrorCode::InvalidArgument, "perplexity: the text has " + std::to_string(ids.size()) + " tokens; llama-perplexity's method needs at least " +
                                         std::to_string(2 * po.chunk) + " (2 x --ctx " + std::to_string(po.chunk) +
                                         "): a longer text, a smaller --ctx, or --all-positions");
  Engine model = load_engine(dir, setup);
  auto session = model.session(setup.ctx, setup.batch, setup.kv_dtype);
  const int64_t n_chunks = all_positions ? 0 : int64_t(ids.size()) / po.chunk;
  if (all_positions)
    std::fprintf(stderr, "llrt: %zu tokens, chunks of %lld positions, every position scored%s\n", ids.size(), (long long)po.chunk,
                 po.bos >= 0 ? " (BOS first)" : "");
  else
    std::fprintf(stderr, "llrt: %zu tokens; calculating perplexity over %lld chunks, n_ctx=%lld (second half of each scored)\n",
                 ids.size(), (long long)(chunks > 0 ? std::min(chunks, n_chunks) : n_chunks), (long long)po.chunk);
  PerplexityResult r = perplexity(*session, ids, po, [&](int64_t c, double ppl) {
    if (!json) std::printf("[%lld]%.4f,", (long long)c, ppl), std::fflush(stdout);
  });
  const double ppl = r.ppl(), err = ppl * r.stderr_nll;
  if (json)
    std::printf("{\"ppl\": %.9g, \"ppl_stderr\": %.9g, \"mean_nll\": %.12g, \"scored_tokens\": %zu, \"chunks\": %lld, \"chunk\": %lld, "
                "\"method\": \"%s\"}\n",
                ppl, err, r.mean_nll, r.nll.size(), (long long)r.chunks, (long long)po.chunk, all_positions ? "all-positions" : "llama.cpp");
  else
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, err);
  std::fprintf(stderr, "llrt: %zu tokens scored in %lld chunks (%s), %s\n", r.nll.size(), (long long)r.chunks,
               all_positions ? "all positions" : "llama-perplexity's method", model.device_name().c_str());
  return 0;
}

}  // namespace llrt::cli
