// llrt chat: interactive, multi-turn, streaming.
//
// Each turn renders the whole conversation with the chat template (add_generation_prompt) and
// tokenizes it; BOS is added only when the template did not write it (see chat_template.h). The
// KV cache is reused: only the tokens after the longest common prefix with what the context
// already holds are evaluated. Room for the reply is kept free: min(-n, half the context); when
// the conversation plus that room outgrows the context, the oldest turns are dropped (the system
// prompt stays) and that is said.
//
// Input: with a terminal on stdin and libedit (LLRT_HAVE_LIBEDIT), line editing and history
// (~/.llrt_history); a line ending in '\' continues on the next. Ctrl-C while the model writes
// stops the reply (the partial reply is kept in the conversation); at the prompt, Ctrl-C twice
// in a row (or Ctrl-D, /exit) quits.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_common.h"
#include "run_common.h"

#if LLRT_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace llrt::cli {

namespace {
std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

// One line of input (false at end of input). `interrupted`: Ctrl-C at the prompt.
struct LineReader {
  bool tty = false, interrupted = false;
  std::string history_file;
  LineReader() {
    tty = isatty(0) && isatty(2);
#if LLRT_HAVE_LIBEDIT
    if (tty) {
      const char* home = std::getenv("HOME");
      if (home && *home) history_file = std::string(home) + "/.llrt_history";
      using_history();
      if (!history_file.empty()) read_history(history_file.c_str());
    }
#endif
  }
  ~LineReader() {
#if LLRT_HAVE_LIBEDIT
    if (tty && !history_file.empty()) write_history(history_file.c_str());
#endif
  }
  bool get(const char* prompt, std::string* line) {
    interrupted = false;
    g_interrupted = false;
#if LLRT_HAVE_LIBEDIT
    if (tty) {
      char* s = readline(prompt);
      if (!s) {
        interrupted = g_interrupted.exchange(false);
        return interrupted;  // Ctrl-C: an empty line, flagged; Ctrl-D: the end
      }
      *line = s;
      std::free(s);
      if (!line->empty()) add_history(line->c_str());
      return true;
    }
#endif
    if (tty) std::fputs(prompt, stderr);
    if (std::getline(std::cin, *line)) return true;
    if (g_interrupted.exchange(false) && tty) {
      std::cin.clear();
      interrupted = true;
      line->clear();
      return true;
    }
    return false;
  }
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text)) fail(ErrorCode::Io, "cannot write " + path);
}
}  // namespace

int cmd_chat(Args& a) {
  RunSetup setup = parse_run_setup(a);
  std::string system;
  a.value({"--system"}, &system);
  const TemplateFlags tf = parse_template_flags(a);
  SamplingFlags sf = parse_sampling_flags(a);
  std::string model_ref;
  auto pos = model_and_positionals(a, "chat", &model_ref);
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "chat: unexpected argument '" + pos[0] + "' (one MODEL)");
  const std::string dir = resolve_model(model_ref);
  ChatTemplate tmpl = load_chat_template(dir, tf);
  Tokenizer tok = Tokenizer::load(dir);
  Engine model = load_engine(dir, setup);
  GenerateOptions g = generate_options(sf, model.checkpoint());
  if (!sf.max_new_tokens) g.max_new_tokens = 1024;
  auto session = model.session(setup.ctx, setup.batch, setup.kv_dtype);
  Session& ctx = *session;
  const int64_t n_ctx = ctx.n_ctx(), reserve = std::min<int64_t>(g.max_new_tokens, n_ctx / 2);
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  auto reset = [&] {
    msgs = nlohmann::ordered_json::array();
    if (!system.empty()) msgs.push_back({{"role", "system"}, {"content", system}});
  };
  reset();
  std::vector<int32_t> cached;  // tokens whose K/V the context holds
  LineReader in;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;  // no SA_RESTART: a blocked read returns
  sigemptyset(&sa.sa_mask);
  if (in.tty) sigaction(SIGINT, &sa, nullptr);
  if (in.tty)
    std::fprintf(stderr, "llrt chat: type a message (a line ending in \\ continues); /help for commands; Ctrl-C stops a reply; "
                         "/exit or Ctrl-D quits\n");
  bool interrupted_last = false;
  std::string line;
  while (true) {
    if (in.tty) std::fputc('\n', stderr);
    if (!in.get("> ", &line)) break;
    if (in.interrupted) {
      if (interrupted_last) break;
      interrupted_last = true;
      std::fprintf(stderr, "\n(Ctrl-C again, Ctrl-D or /exit quits)\n");
      continue;
    }
    interrupted_last = false;
    while (!line.empty() && line.back() == '\\') {  // continued on the next line
      line.back() = '\n';
      std::string more;
      if (!in.get(". ", &more) || in.interrupted) break;
      line += more;
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/help") {
      std::fputs(command_help("chat").c_str(), stderr);
      continue;
    }
    if (line == "/reset" || line.rfind("/system", 0) == 0) {
      if (line != "/reset") {
        system = line.size() > 8 ? line.substr(8) : "";
        std::fprintf(stderr, "llrt chat: system prompt %s; conversation cleared\n", system.empty() ? "removed" : "set");
      }
      reset();
      cached.clear();
      ctx.reset();
      continue;
    }
    if (line.rfind("/save ", 0) == 0) {
      try {
        write_file(line.substr(6), msgs.dump(2) + "\n");
        std::fprintf(stderr, "llrt chat: %zu messages written to %s\n", msgs.size(), line.substr(6).c_str());
      } catch (const Error& e) {
        std::fprintf(stderr, "llrt chat: %s\n", e.what());
      }
      continue;
    }
    if (line.rfind("/load ", 0) == 0) {
      try {
        msgs = read_messages_file(line.substr(6));
      } catch (const Error& e) {
        std::fprintf(stderr, "llrt chat: %s\n", e.what());
        continue;
      }
      system = msgs[0]["role"] == "system" && msgs[0]["content"].is_string() ? msgs[0]["content"].get<std::string>() : "";
      cached.clear();
      ctx.reset();
      std::fprintf(stderr, "llrt chat: %zu messages loaded from %s\n", msgs.size(), line.substr(6).c_str());
      if (msgs.back()["role"] != "user") continue;  // else answer the last user turn
    } else if (line.empty()) {
      continue;
    } else if (line[0] == '/' && line.find(' ') == std::string::npos && line.size() < 16) {
      std::fprintf(stderr, "llrt chat: unknown command %s (/help lists them; a message starting with / : add a space after it)\n", line.c_str());
      continue;
    } else {
      msgs.push_back({{"role", "user"}, {"content", line}});
    }
    std::vector<int32_t> ids = chat_prompt_ids(tmpl, tok, msgs, tf);
    // Too long with room for the reply: drop the oldest turns after the system prompt.
    const size_t first = msgs[0]["role"] == "system" ? 1 : 0;
    size_t dropped = 0;
    while (int64_t(ids.size()) + reserve > n_ctx && msgs.size() > first + 1) {
      msgs.erase(msgs.begin() + std::ptrdiff_t(first));
      ++dropped;
      while (msgs.size() > first + 1 && msgs[first]["role"] != "user") msgs.erase(msgs.begin() + std::ptrdiff_t(first)), ++dropped;
      ids = chat_prompt_ids(tmpl, tok, msgs, tf);
    }
    if (dropped)
      std::fprintf(stderr, "llrt chat: dropped the %zu oldest message%s to fit the context (%lld tokens, of which %lld kept free for the reply)%s\n",
                   dropped, dropped == 1 ? "" : "s", (long long)n_ctx, (long long)reserve, first ? "; the system prompt stays" : "");
    if (int64_t(ids.size()) + reserve > n_ctx) {
      std::fprintf(stderr, "llrt chat: this conversation needs %zu tokens plus %lld kept free for the reply, more than the context (%lld): "
                           "send a shorter message, lower -n, or raise --ctx\n",
                   ids.size(), (long long)reserve, (long long)n_ctx);
      msgs.erase(msgs.end() - 1);
      continue;
    }
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // evaluate at least one token to get logits
    ctx.truncate(int64_t(common));
    std::string reply;
    g_interrupted = false;
    auto st = generate(ctx, &tok, {ids.data() + common, ids.size() - common}, g, [&](int32_t, std::string_view text) {
      reply += text;
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    });
    std::printf("\n");
    std::fflush(stdout);
    cached = ids;
    for (size_t i = 0; int64_t(cached.size()) < ctx.n_past() && i < st.tokens.size(); ++i) cached.push_back(st.tokens[i]);
    msgs.push_back({{"role", "assistant"}, {"content", reply}});
    if (in.tty)
      std::fprintf(stderr, "[prompt %lld tokens %.1f t/s | generated %lld tokens %.1f t/s | %s]\n", (long long)st.prompt_tokens,
                   st.prompt_tps(), (long long)st.generated_tokens, st.generation_tps(),
                   g_interrupted ? "stopped (Ctrl-C)" : stop_reason_name(st.reason));
    g_interrupted = false;
  }
  return 0;
}

}  // namespace llrt::cli
