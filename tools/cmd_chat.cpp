// llrt chat, and --chat on llrt run: the model's chat template.
#include "cli_common.h"
#include "run_common.h"

namespace llrt::cli {
std::vector<int32_t> chat_prompt_ids(const std::string&, const Tokenizer&, const std::string&, const std::string&) {
  fail(ErrorCode::Template, "chat templates are not wired into this build yet");
}
int cmd_chat(Args&) { fail(ErrorCode::Template, "chat templates are not wired into this build yet"); }
}  // namespace llrt::cli
