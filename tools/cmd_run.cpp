// llrt run / llrt tokenize.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_common.h"
#include "src/engine/cpu.h"
#include "run_common.h"
#include "src/engine/kernels.h"

namespace llrt::cli {
namespace {
std::string ids_text(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  return s;
}
}  // namespace

int cmd_run(Args& a) {
  RunSetup setup = parse_run_setup(a);
  std::string prompt, ids_str, file, system, messages_file;
  bool have_prompt = a.value({"-p", "--prompt"}, &prompt);
  const bool have_ids = a.value({"--ids"}, &ids_str);
  const bool have_file = a.value({"-f", "--file"}, &file);
  const bool have_messages = a.value({"--messages"}, &messages_file);
  const bool print_ids = a.flag({"--print-ids"});
  const bool print_prompt = a.flag({"--print-prompt"});
  const bool as_json = a.flag({"--json"});
  const bool no_bos = a.flag({"--no-bos"});
  const bool chat = a.flag({"--chat"});
  const bool have_system = a.value({"--system"}, &system);
  const TemplateFlags tf = parse_template_flags(a);
  SamplingFlags sf = parse_sampling_flags(a);
  std::string model_ref;
  auto pos = model_and_positionals(a, "run", &model_ref);
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "run: unexpected argument '" + pos[0] + "'");
  if (int(have_prompt) + int(have_file) + int(have_ids) + int(have_messages) != 1)
    fail(ErrorCode::InvalidArgument, "run: give exactly one of -p PROMPT, -f FILE, --ids \"1 2 3\" or --messages FILE.json");
  if (chat && (have_ids || have_messages))
    fail(ErrorCode::InvalidArgument, std::string("run: --chat applies the template to -p/-f; ") +
                                         (have_ids ? "--ids are token ids" : "--messages is always rendered with it"));
  if (have_system && !chat)
    fail(ErrorCode::InvalidArgument, have_messages ? "run: --system with --messages: put the system turn in the messages file"
                                                   : "run: --system needs --chat (the system prompt goes through the chat template)");
  const bool templated = chat || have_messages;
  if ((!tf.file.empty() || !tf.kwargs.empty()) && !templated)
    fail(ErrorCode::InvalidArgument, "run: --chat-template / --chat-template-kwargs need --chat or --messages");
  if (no_bos && templated) fail(ErrorCode::InvalidArgument, "run: --no-bos is for plain prompts (the chat template decides BOS)");
  if (as_json && print_ids) fail(ErrorCode::InvalidArgument, "run: --json already holds the ids (drop --print-ids)");
  std::vector<int32_t> ids;
  if (have_ids) ids = parse_ids(ids_str);  // before the load, like every option
  if (have_file) {
    prompt = read_text_file(file);
    have_prompt = true;
  }
  nlohmann::ordered_json messages;
  if (have_messages) messages = read_messages_file(messages_file);
  const std::string dir = resolve_model(model_ref);
  std::optional<ChatTemplate> tmpl;
  if (templated) tmpl = load_chat_template(dir, tf);  // a missing template: said before the load
  Engine model = load_engine(dir, setup);
  GenerateOptions g = generate_options(sf, model.checkpoint());
  std::optional<Tokenizer> tok;
  std::string rendered = prompt;
  if (have_ids) {
    if (!print_ids || !g.stop_strings.empty() || as_json) tok = Tokenizer::load(dir);
  } else {
    tok = Tokenizer::load(dir);
    if (templated) {
      if (chat) {
        messages = nlohmann::ordered_json::array();
        if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
        messages.push_back({{"role", "user"}, {"content", prompt}});
      }
      ids = chat_prompt_ids(*tmpl, *tok, messages, tf, &rendered);
    } else {
      ids = tok->encode(prompt, !no_bos);
    }
  }
  if (print_prompt) {  // the text as rendered (or given); for --ids, as decoded
    if (!have_ids) std::fprintf(stderr, "llrt: prompt (%zu tokens):\n%s\n", ids.size(), rendered.c_str());
    else if (tok) std::fprintf(stderr, "llrt: prompt (%zu tokens):\n%s\n", ids.size(), tok->decode(ids).c_str());
    std::fprintf(stderr, "llrt: prompt ids: %s\n", ids_text(ids).c_str());
  }
  auto ctx = model.session(setup.ctx, setup.batch, setup.kv_dtype);
  std::vector<int32_t> out;
  std::string text;
  auto st = generate(*ctx, tok ? &*tok : nullptr, ids, g, [&](int32_t id, std::string_view piece) {
    if (id >= 0) out.push_back(id);
    if (as_json) {
      text += piece;
    } else if (!print_ids) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  if (as_json) {
    nlohmann::ordered_json j;
    j["text"] = text;
    j["ids"] = out;
    j["prompt_ids"] = ids;
    std::string reason = stop_reason_name(st.reason);  // "max tokens" -> "max_tokens"
    for (char& c : reason)
      if (c == ' ') c = '_';
    j["stop_reason"] = reason;
    j["timings"] = {{"load_seconds", model.load_seconds()},
                    {"prompt_tokens", st.prompt_tokens},
                    {"prompt_seconds", st.prompt_seconds},
                    {"prompt_tokens_per_second", st.prompt_tps()},
                    {"generated_tokens", st.generated_tokens},
                    {"generation_seconds", st.generation_seconds},
                    {"generation_tokens_per_second", st.generation_tps()}};
    j["device"] = model.device_name();
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stdout);
    return 0;
  }
  std::printf(print_ids ? "%s\n" : "\n", ids_text(out).c_str());
  std::fflush(stdout);
  print_stats(model, st);
  return 0;
}

int cmd_tokenize(Args& a) {
  bool pieces = a.flag({"--pieces"});
  bool no_bos = a.flag({"--no-bos"});
  bool from_stdin = a.flag({"--stdin"});
  std::string file;
  bool have_file = a.value({"-f", "--file"}, &file);
  std::string model_ref;
  auto pos = model_and_positionals(a, "tokenize", &model_ref);
  std::string text;
  if (have_file) text = read_text_file(file);
  else if (from_stdin) {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else if (pos.size() == 1) {
    text = pos[0];
  } else {
    fail(ErrorCode::InvalidArgument, pos.empty() ? "tokenize: give TEXT, --file F or --stdin" : "tokenize: one TEXT (quote it)");
  }
  Tokenizer tok = Tokenizer::load(resolve_model(model_ref));
  auto ids = tok.encode(text, !no_bos);
  if (pieces) {
    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok.id_to_piece(id).c_str());
  } else {
    std::printf("[");
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ", %d" : "%d", ids[i]);
    std::printf("]\n");
  }
  return 0;
}

}  // namespace llrt::cli
