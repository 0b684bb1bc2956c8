// Internal: chat templates rendered from parsed JSON (the server, the CLI's --messages and the
// tests build nlohmann values; the public llrt/chat_template.h takes JSON text).
#pragma once
#include <nlohmann/json.hpp>

#include "llrt/chat_template.h"

namespace llrt {

struct ChatJsonInput {
  const nlohmann::ordered_json& messages;  // an array of message objects
  const nlohmann::ordered_json& extra;     // an object: template variables (HF's **kwargs, tools, documents)
  const ChatRenderOptions& options;        // add_generation_prompt, now (extra_json is not read)
};
std::string render_chat(const ChatTemplate& t, const ChatJsonInput& in);

// Convenience for internal callers.
inline std::string render_chat(const ChatTemplate& t, const nlohmann::ordered_json& messages,
                               const ChatRenderOptions& options = {},
                               const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) {
  return render_chat(t, ChatJsonInput{messages, extra, options});
}

}  // namespace llrt
