// llrt perplexity MODEL_DIR --file F [--ctx N] [--chunks K] [run options]: the model's
// perplexity on a text (include/llrt/perplexity.h), like llama-perplexity: chunks of N
// positions (default min(512, context)), each from a fresh context and the tokenizer's BOS
// when the model adds one; the running value after each chunk, then the final one.
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
  auto pos = a.positionals();
  if (pos.empty()) fail(ErrorCode::InvalidArgument, "perplexity: MODEL_DIR is missing");
  if (!have_file) fail(ErrorCode::InvalidArgument, "perplexity: --file F (the text to score) is missing");
  if (pos.size() > 1) fail(ErrorCode::InvalidArgument, "perplexity: unexpected argument '" + pos[1] + "'");
  const std::string text = read_text_file(file);
  Tokenizer tok = Tokenizer::load(pos[0]);
  const std::vector<int32_t> with_special = tok.encode("", true);
  PerplexityOptions po;
  po.bos = !with_special.empty() && with_special[0] == tok.bos_id() ? tok.bos_id() : -1;  // the model adds BOS
  const std::vector<int32_t> ids = tok.encode(text, false);
  if (setup.ctx <= 0) setup.ctx = 512;
  po.chunk = setup.ctx;
  po.max_chunks = chunks;
  Engine model = load_engine(pos[0], setup);
  auto session = model.session(setup.ctx, setup.batch, setup.kv_dtype);
  std::fprintf(stderr, "llrt: %zu tokens, chunks of %lld positions%s\n", ids.size(), (long long)po.chunk,
               po.bos >= 0 ? " (BOS first)" : "");
  PerplexityResult r = perplexity(*session, ids, po, [&](int64_t c, double ppl) {
    if (!json) std::printf("[%lld]%.4f ", (long long)c, ppl), std::fflush(stdout);
  });
  const double ppl = r.ppl(), err = ppl * r.stderr_nll;
  if (json)
    std::printf("{\"ppl\": %.9g, \"ppl_stderr\": %.9g, \"mean_nll\": %.12g, \"scored_tokens\": %zu, \"chunks\": %lld, \"chunk\": %lld}\n",
                ppl, err, r.mean_nll, r.nll.size(), (long long)r.chunks, (long long)po.chunk);
  else
    std::printf("\nfinal estimate: PPL = %.4f +/- %.4f (%zu tokens scored in %lld chunks, %s)\n", ppl, err, r.nll.size(),
                (long long)r.chunks, model.device_name().c_str());
  return 0;
}

}  // namespace llrt::cli
