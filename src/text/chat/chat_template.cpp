// llrt: chat templates - the public API over the Jinja engine (see include/llrt/chat_template.h).
#include "llrt/chat_template.h"

#include "src/text/chat/chat_json.h"

#include <ctime>
#include <map>
#include <sstream>

#include "llrt/error.h"
#include "src/io/bounded_io.h"
#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_eval.h"
#include "src/text/chat/jinja_lexer.h"
#include "src/text/chat/jinja_parser.h"

namespace llrt {

using nlohmann::ordered_json;

struct ChatTemplate::Impl {
  std::map<std::string, std::shared_ptr<const jinja::Program>> templates;  // name -> program ("default")
  std::string origin;  // for messages: file path or "chat template"
  std::string bos, eos;
  ordered_json special = ordered_json::object();  // bos_token, eos_token, unk_token, pad_token (set ones)
};

namespace {

std::shared_ptr<const jinja::Program> compile(const std::string& source, const std::string& origin) {
  try {
    return std::make_shared<const jinja::Program>(jinja::parse_template(source));
  } catch (const jinja::SyntaxError& e) {
    std::string normalized = jinja::normalize_source(source);
    fail(ErrorCode::Template, origin + ": syntax error at " + jinja::describe_position(normalized, e.pos) + ": " +
                                  e.what());
  } catch (const jinja::RenderError& e) {  // e.g. malformed UTF-8 met while lexing
    fail(ErrorCode::Template, origin + ": " + e.what());
  }
}

// A special token in tokenizer_config.json: "text", {"content": "text", ...} (AddedToken), or null.
std::optional<std::string> token_text(const ordered_json& cfg, const char* key, const std::string& path) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail(ErrorCode::Format, path + ": '" + key + "' is neither a string nor an AddedToken object with 'content'");
}

std::tm to_tm(const std::optional<ChatDateTime>& now) {
  std::tm t{};
  if (!now) {
    std::time_t secs = std::time(nullptr);
    localtime_r(&secs, &t);
    return t;
  }
  const ChatDateTime& d = *now;
  if (d.month < 1 || d.month > 12 || d.day < 1 || d.day > 31 || d.hour < 0 || d.hour > 23 || d.minute < 0 ||
      d.minute > 59 || d.second < 0 || d.second > 60)
    fail(ErrorCode::InvalidArgument, "ChatRenderOptions::now is not a valid date/time");
  t.tm_year = d.year - 1900;
  t.tm_mon = d.month - 1;
  t.tm_mday = d.day;
  t.tm_hour = d.hour;
  t.tm_min = d.minute;
  t.tm_sec = d.second;
  std::tm norm = t;
  std::time_t secs = timegm(&norm);  // fills tm_wday / tm_yday
  std::tm check{};
  gmtime_r(&secs, &check);
  if (check.tm_mday != d.day || check.tm_mon != d.month - 1)
    fail(ErrorCode::InvalidArgument, "ChatRenderOptions::now: day " + std::to_string(d.day) + " does not exist in month " +
                                         std::to_string(d.month));
  t.tm_wday = check.tm_wday;
  t.tm_yday = check.tm_yday;
  t.tm_isdst = 0;
  return t;
}

// HF's _normalize_chat_messages + _alias_reasoning_fields.
ordered_json normalize_messages(const ordered_json& messages) {
  if (!messages.is_array()) fail(ErrorCode::InvalidArgument, "chat messages must be a JSON array of objects");
  if (messages.empty()) fail(ErrorCode::InvalidArgument, "Cannot apply chat template to an empty conversation");
  ordered_json out = ordered_json::array();
  for (const ordered_json& m : messages) {
    if (!m.is_object()) fail(ErrorCode::InvalidArgument, "chat messages must be JSON objects, got " + m.dump());
    ordered_json msg = ordered_json::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it.value().is_null()) msg[it.key()] = it.value();
    const ordered_json* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"})
      if (msg.contains(key)) { reasoning = &msg[key]; break; }
    if (reasoning) {
      ordered_json r = *reasoning;
      ordered_json aliased = ordered_json::object();
      aliased["thinking"] = r;
      for (auto it = msg.begin(); it != msg.end(); ++it) aliased[it.key()] = it.value();
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::from_string(const std::string& source, const std::string& bos_token,
                                       const std::string& eos_token) {
  auto impl = std::make_shared<Impl>();
  impl->origin = "chat template";
  impl->templates["default"] = compile(source, impl->origin);
  impl->bos = bos_token;
  impl->eos = eos_token;
  if (!bos_token.empty()) impl->special["bos_token"] = bos_token;
  if (!eos_token.empty()) impl->special["eos_token"] = eos_token;
  return ChatTemplate(impl);
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::filesystem::path& path) {
  const ordered_json cfg = io::read_json<ordered_json>(path);
  if (!cfg.is_object()) fail(ErrorCode::Format, path.string() + ": not a JSON object");

  auto impl = std::make_shared<Impl>();
  impl->origin = path.string();
  std::filesystem::path jinja_file = path.parent_path() / "chat_template.jinja";
  if (std::filesystem::exists(jinja_file)) {
    impl->origin = jinja_file.string();
    impl->templates["default"] = compile(io::read_file(jinja_file, io::kMaxTemplateFile), impl->origin);
  } else {
    auto it = cfg.find("chat_template");
    if (it == cfg.end() || it->is_null())
      fail(ErrorCode::Template, path.string() + " has no chat_template (and there is no chat_template.jinja)");
    if (it->is_string()) {
      impl->templates["default"] = compile(it->get<std::string>(), impl->origin);
    } else if (it->is_array()) {
      for (const ordered_json& t : *it) {
        if (!t.is_object() || !t.contains("name") || !t.contains("template") || !t["name"].is_string() ||
            !t["template"].is_string())
          fail(ErrorCode::Format, path.string() + ": chat_template list entries must be {name, template}");
        std::string name = t["name"].get<std::string>();
        impl->templates[name] = compile(t["template"].get<std::string>(), impl->origin + " [" + name + "]");
      }
    } else {
      fail(ErrorCode::Format, path.string() + ": chat_template must be a string or a list of {name, template}");
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
    if (auto text = token_text(cfg, key, path.string())) impl->special[key] = *text;
  impl->bos = impl->special.value("bos_token", "");
  impl->eos = impl->special.value("eos_token", "");
  return ChatTemplate(impl);
}

namespace {
ordered_json parse_arg(const std::string& text, const char* what) {
  return io::parse_json<ordered_json>(text, what, ErrorCode::InvalidArgument);
}
}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatRenderOptions& options) const {
  ordered_json j = ordered_json::array();
  for (const ChatMessage& m : messages) j.push_back({{"role", m.role}, {"content", m.content}});
  return render_chat(*this, ChatJsonInput{j, parse_arg(options.extra_json, "ChatRenderOptions::extra_json"), options});
}

std::string ChatTemplate::render_json(const std::string& messages_json, const ChatRenderOptions& options) const {
  const ordered_json messages = parse_arg(messages_json, "the chat messages");
  return render_chat(*this, ChatJsonInput{messages, parse_arg(options.extra_json, "ChatRenderOptions::extra_json"), options});
}

std::string render_chat(const ChatTemplate& t, const ChatJsonInput& in) {
  const auto& impl_ = t.impl_;
  const ordered_json& extra = in.extra;
  const ChatRenderOptions& options = in.options;
  const ordered_json& messages = in.messages;
  if (!extra.is_object()) fail(ErrorCode::InvalidArgument, "the chat template variables (extra) must be a JSON object");
  for (const char* reserved : {"messages", "add_generation_prompt"})
    if (extra.contains(reserved))
      fail(ErrorCode::InvalidArgument, std::string("the chat template variables (extra) must not set '") + reserved + "'");

  bool has_tools = extra.contains("tools") && !extra["tools"].is_null();
  const jinja::Program* program = nullptr;
  if (has_tools && impl_->templates.count("tool_use")) program = impl_->templates.at("tool_use").get();
  else if (impl_->templates.count("default")) program = impl_->templates.at("default").get();
  else fail(ErrorCode::Template, impl_->origin + ": several chat templates and none is named 'default'");

  // render(messages=..., tools=..., documents=..., add_generation_prompt=..., **{**special_tokens, **kwargs})
  ordered_json vars = impl_->special;
  for (auto it = extra.begin(); it != extra.end(); ++it)
    if (it.key() != "tools" && it.key() != "documents") vars[it.key()] = it.value();
  vars["messages"] = normalize_messages(messages);
  vars["tools"] = extra.contains("tools") ? extra["tools"] : ordered_json(nullptr);
  vars["documents"] = extra.contains("documents") ? extra["documents"] : ordered_json(nullptr);
  vars["add_generation_prompt"] = options.add_generation_prompt;

  try {
    jinja::Value v = jinja::from_json(vars);
    jinja::EvalOptions eo;
    eo.now = to_tm(options.now);
    return jinja::Evaluator(*program, v.as_dict(), eo).render();
  } catch (const jinja::RaisedError& e) {
    fail(ErrorCode::Template, e.what());
  } catch (const jinja::RenderError& e) {
    fail(ErrorCode::Template, impl_->origin + ": render error at " + jinja::describe_position(program->source, e.pos) +
                                  ": " + e.what());
  }
}

bool ChatTemplate::starts_with_bos(std::string_view rendered) const {
  return !impl_->bos.empty() && rendered.substr(0, impl_->bos.size()) == impl_->bos;
}

const std::string& ChatTemplate::bos_token() const { return impl_->bos; }
const std::string& ChatTemplate::eos_token() const { return impl_->eos; }
const std::string& ChatTemplate::source() const {
  auto it = impl_->templates.find("default");
  return (it != impl_->templates.end() ? it->second : impl_->templates.begin()->second)->source;
}

}  // namespace llrt
