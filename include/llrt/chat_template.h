// llrt: chat templates - render a model's Jinja `chat_template` exactly as Hugging Face transformers'
// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)` does.
//
// What the template sees (as in transformers 5.x):
//   messages              - the conversation; keys whose value is null are dropped from each message, and a
//                           message with reasoning_content/thinking/reasoning gets both `thinking` and
//                           `reasoning_content` (HF's _normalize_chat_messages / _alias_reasoning_fields)
//   tools, documents      - from ChatRenderOptions::extra (keys "tools", "documents"), else None
//   add_generation_prompt - ChatRenderOptions::add_generation_prompt
//   bos_token, eos_token, unk_token, pad_token - the tokenizer's special tokens (those that are set)
//   every other key of ChatRenderOptions::extra (HF's **kwargs: date_string, tools_in_user_message, ...)
//   globals: raise_exception, strftime_now (formats ChatRenderOptions::now), namespace, range, dict, joiner
// The Jinja environment is HF's: trim_blocks, lstrip_blocks, loopcontrols, the sandbox's immutable containers,
// HF's tojson (ensure_ascii=False, indent, separators, sort_keys).
//
// Errors: every problem is an llrt::Error with ErrorCode::Template. A syntax error or an unsupported construct
// names the construct and its line/column; an evaluation error (undefined attribute access, type error, ...)
// names the line/column of the expression; raise_exception("msg") in the template gives exactly "msg".
//
// BOS handling ("don't add BOS twice"): most templates emit bos_token themselves (Llama 3, DeepSeek), some do
// not (TinyLlama/zephyr). transformers' apply_chat_template(tokenize=True) encodes the rendered text with
// add_special_tokens=False, i.e. never adds another BOS. A caller that tokenizes the rendered text itself
// should therefore encode WITHOUT adding BOS when starts_with_bos(rendered) is true; when it is false, the
// apply_chat_template-exact choice is still not to add one, while HF's text-generation pipeline would add it
// (it tokenizes with add_special_tokens = !starts_with_bos). llrt's `chat` command follows the pipeline.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llrt {

struct ChatJsonInput;  // src/chat/chat_json.h: messages and variables as parsed JSON (internal callers)

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool", ...
  std::string content;
};

// A wall-clock time for strftime_now() (HF calls datetime.now(): local time).
struct ChatDateTime {
  int year = 1970, month = 1, day = 1;  // month 1-12, day 1-31
  int hour = 0, minute = 0, second = 0;
};

struct ChatRenderOptions {
  bool add_generation_prompt = false;
  // What strftime_now() sees. Unset: the local time at render. Set it for reproducible renders (Llama 3.2's
  // template prints "Today Date: " + strftime_now("%d %b %Y") unless `date_string` is passed in `extra`).
  std::optional<ChatDateTime> now;
  // Extra template variables (HF's **kwargs plus tools/documents): the text of a JSON object, key
  // order preserved, e.g. {"date_string": "26 Jul 2024"}.
  std::string extra_json = "{}";
};

class ChatTemplate {
 public:
  // Reads `chat_template` from a tokenizer_config.json (a string, or a list of {name, template} of which
  // "default" is used, "tool_use" when extra["tools"] is given). A chat_template.jinja file next to it takes
  // priority, as in transformers. Special tokens: bos/eos/unk/pad_token as strings or AddedToken objects
  // ({"content": ...}). Throws Error(Io/Format/Template).
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& tokenizer_config_json);

  // A template given as text, with the bos/eos tokens the template may print (empty: not set).
  static ChatTemplate from_string(const std::string& source, const std::string& bos_token,
                                  const std::string& eos_token);

  std::string render(const std::vector<ChatMessage>& messages, const ChatRenderOptions& options = {}) const;
  // Messages as JSON text (an array of objects, OpenAI's shape), for tool calls, tool results,
  // structured content. Error(InvalidArgument) when it is not such an array.
  std::string render_json(const std::string& messages_json, const ChatRenderOptions& options = {}) const;

  // True when `rendered` begins with the BOS token (see "BOS handling" above): encode it without adding BOS.
  bool starts_with_bos(std::string_view rendered) const;

  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& source() const;  // the default template's text (newlines normalized as Jinja does)

  struct Impl;

 private:
  friend std::string render_chat(const ChatTemplate& t, const ChatJsonInput& in);
  explicit ChatTemplate(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace llrt
