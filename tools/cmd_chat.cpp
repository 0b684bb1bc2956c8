// llrt chat (interactive, multi-turn, streaming) and --chat on llrt run.
//
// Each turn renders the whole conversation with the model's chat template
// (add_generation_prompt) and tokenizes it; BOS is added only when the template did
// not write it (see chat_template.h). The KV cache is reused: only the tokens after
// the longest common prefix with what the context already holds are evaluated.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_common.h"
#include "llrt/chat_template.h"
#include "run_common.h"

namespace llrt::cli {

namespace {
ChatTemplate load_template(const std::string& model_dir) {
  auto p = std::filesystem::path(model_dir) / "tokenizer_config.json";
  if (!std::filesystem::exists(p))
    fail(ErrorCode::Template, model_dir + " has no tokenizer_config.json, so no chat template: use llrt run -p without --chat");
  return ChatTemplate::from_tokenizer_config(p);
}
std::vector<int32_t> encode_rendered(const ChatTemplate& t, const Tokenizer& tok, const std::string& text) {
  // No text: the conversation is not in the prompt at all (a BOS alone would make the model
  // ramble); no tokens: nothing to evaluate, so no logits to answer from.
  std::vector<int32_t> ids;
  if (!text.empty()) ids = tok.encode(text, /*add_special_tokens=*/!t.starts_with_bos(text));
  if (ids.empty())
    fail(ErrorCode::Template, "the model's chat template (tokenizer_config.json) rendered " +
                                  std::string(text.empty() ? "no text" : "text with no tokens") +
                                  " for this conversation: fix its chat_template, or use llrt run -p without --chat");
  return ids;
}
}  // namespace

std::vector<int32_t> chat_prompt_ids(const std::string& model_dir, const Tokenizer& tok, const std::string& system,
                                     const std::string& user) {
  ChatTemplate t = load_template(model_dir);
  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", system});
  msgs.push_back({"user", user});
  ChatRenderOptions o;
  o.add_generation_prompt = true;
  return encode_rendered(t, tok, t.render(msgs, o));
}

int cmd_chat(Args& a) {
  RunSetup setup = parse_run_setup(a);
  std::string system;
  a.value({"--system"}, &system);
  SamplingFlags sf = parse_sampling_flags(a);
  auto pos = a.positionals();
  if (pos.size() != 1) fail(ErrorCode::InvalidArgument, "chat: give exactly one MODEL_DIR");
  ChatTemplate tmpl = load_template(pos[0]);
  Tokenizer tok = Tokenizer::load(pos[0]);
  Engine model = load_engine(pos[0], setup);
  GenerateOptions g = generate_options(sf, model.checkpoint());
  if (!sf.max_new_tokens) g.max_new_tokens = 1024;
  auto session = model.session(setup.ctx, setup.batch, setup.kv_dtype);
  Session& ctx = *session;
  std::vector<ChatMessage> msgs;
  if (!system.empty()) msgs.push_back({"system", system});
  std::vector<int32_t> cached;  // tokens whose K/V the context holds
  const bool tty = isatty(0);
  if (tty) std::fprintf(stderr, "llrt chat: type a message; /reset clears the conversation, /exit or Ctrl-D quits\n");
  std::string line;
  while (true) {
    if (tty) std::fprintf(stderr, "\n> ");
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      msgs.resize(system.empty() ? 0 : 1);
      cached.clear();
      ctx.reset();
      continue;
    }
    if (line.empty()) continue;
    msgs.push_back({"user", line});
    ChatRenderOptions o;
    o.add_generation_prompt = true;
    std::vector<int32_t> ids = encode_rendered(tmpl, tok, tmpl.render(msgs, o));
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // evaluate at least one token to get logits
    if (int64_t(ids.size()) + g.max_new_tokens > ctx.n_ctx()) {
      std::fprintf(stderr, "llrt chat: the conversation (%zu tokens) no longer fits the context (%lld); starting over\n",
                   ids.size(), (long long)ctx.n_ctx());
      msgs.erase(msgs.begin() + (system.empty() ? 0 : 1), msgs.end() - 1);
      ids = encode_rendered(tmpl, tok, tmpl.render(msgs, o));
      common = 0;
    }
    ctx.truncate(int64_t(common));
    std::string reply;
    auto st = generate(ctx, &tok, {ids.data() + common, ids.size() - common}, g, [&](int32_t, std::string_view text) {
      reply += text;
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("\n");
    std::fflush(stdout);
    cached = ids;
    for (size_t i = 0; int64_t(cached.size()) < ctx.n_past() && i < st.tokens.size(); ++i) cached.push_back(st.tokens[i]);
    msgs.push_back({"assistant", reply});
    if (tty)
      std::fprintf(stderr, "[prompt %lld tokens %.1f t/s | generated %lld tokens %.1f t/s | %s]\n", (long long)st.prompt_tokens,
                   st.prompt_tps(), (long long)st.generated_tokens, st.generation_tps(), stop_reason_name(st.reason));
  }
  return 0;
}

}  // namespace llrt::cli
