// The model argument (-m/--model or positional, Hugging Face names), chat templates
// (--chat-template FILE, --chat-template-kwargs JSON) and conversations (--messages FILE.json):
// what run and chat share (run_common.h).
#include <filesystem>

#include "cli_common.h"
#include "llrt/hub.h"
#include "run_common.h"
#include "llrt/config.h"
#include "src/io/config_json.h"
#include "src/text/chat/chat_json.h"

namespace llrt::cli {

std::vector<std::string> model_and_positionals(Args& a, const char* cmd, std::string* model) {
  const bool flag = a.value({"-m", "--model"}, model);
  std::vector<std::string> pos = a.positionals();
  if (flag) {
    if (model->empty()) fail(ErrorCode::InvalidArgument, std::string(cmd) + ": -m/--model needs a model folder or name");
    return pos;
  }
  if (pos.empty()) fail(ErrorCode::InvalidArgument, std::string(cmd) + ": MODEL is missing (a checkpoint folder or org/name; positional or -m)");
  *model = pos.front();
  pos.erase(pos.begin());
  return pos;
}

std::string resolve_model(const std::string& ref) { return resolve_model_path(ref).string(); }

TemplateFlags parse_template_flags(Args& a) {
  TemplateFlags f;
  a.value({"--chat-template"}, &f.file);
  std::string kw;
  if (a.value({"--chat-template-kwargs"}, &kw)) {
    try {
      f.kwargs = nlohmann::ordered_json::parse(kw);
    } catch (const std::exception& e) {
      fail(ErrorCode::InvalidArgument, "--chat-template-kwargs: not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!f.kwargs.is_object())
      fail(ErrorCode::InvalidArgument, "--chat-template-kwargs: must be a JSON object, e.g. '{\"date_string\": \"26 Jul 2024\"}'");
  }
  if (!f.file.empty() && !std::filesystem::is_regular_file(f.file))
    fail(ErrorCode::InvalidArgument, "--chat-template: " + f.file + " is not a readable file");
  return f;
}

ChatTemplate load_chat_template(const std::string& model_dir, const TemplateFlags& f) {
  const auto cfg = std::filesystem::path(model_dir) / "tokenizer_config.json";
  if (!f.file.empty()) {
    std::string bos, eos;
    if (std::filesystem::exists(cfg)) {
      try {  // the special tokens the template may print; a config without a template is fine here
        const nlohmann::json j = read_json_file(cfg);
        auto tok = [&](const char* k) {
          if (!j.contains(k)) return std::string();
          const auto& v = j[k];
          if (v.is_string()) return v.get<std::string>();
          if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
          return std::string();
        };
        bos = tok("bos_token");
        eos = tok("eos_token");
      } catch (const Error&) {
      }
    }
    return ChatTemplate::from_string(read_text_file(f.file), bos, eos);
  }
  if (!std::filesystem::exists(cfg))
    fail(ErrorCode::Template, model_dir + " has no tokenizer_config.json, so no chat template: use --chat-template FILE, or llrt run -p without --chat");
  return ChatTemplate::from_tokenizer_config(cfg);
}

nlohmann::ordered_json read_messages_file(const std::string& path) {
  nlohmann::ordered_json in;
  try {
    in = nlohmann::ordered_json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::InvalidArgument, "--messages: " + path + " is not valid JSON (" + e.what() + ")");
  }
  if (in.is_object() && in.contains("messages")) in = in["messages"];  // a whole request body
  if (!in.is_array() || in.empty())
    fail(ErrorCode::InvalidArgument, "--messages: " + path + " must hold a non-empty array of {\"role\": ..., \"content\": ...}");
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    const auto& m = in[i];
    const std::string at = "--messages: message " + std::to_string(i + 1) + " of " + path;
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) fail(ErrorCode::InvalidArgument, at + " has no \"role\" string");
    nlohmann::ordered_json msg = m;
    if (m.contains("content") && m["content"].is_array()) {  // [{"type": "text", "text": ...}, ...]
      std::string text;
      for (const auto& part : m["content"]) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          fail(ErrorCode::InvalidArgument, at + ": only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
        text += part["text"].get<std::string>();
      }
      msg["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      fail(ErrorCode::InvalidArgument, at + ": \"content\" must be a string or an array of text parts");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<int32_t> chat_prompt_ids(const ChatTemplate& t, const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                     const TemplateFlags& f, std::string* rendered) {
  ChatRenderOptions o;
  o.add_generation_prompt = true;
  const std::string text = render_chat(t, messages, o, f.kwargs);
  if (rendered) *rendered = text;
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

}  // namespace llrt::cli
