// libFuzzer target: the chat-template engine (Jinja lexer, parser, evaluator) on arbitrary
// template text, rendered with a small fixed conversation. Any crash, sanitizer report,
// hang (libFuzzer's -timeout) or non-llrt exception is a bug; an llrt::Error (a Template
// error) is the expected answer to a bad template.
#include <cstdint>
#include <string>

#include "llrt/chat_template.h"
#include "llrt/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string src(reinterpret_cast<const char*>(data), size);
  try {
    llrt::ChatRenderOptions o;
    o.add_generation_prompt = size % 2 == 0;
    o.now = llrt::ChatDateTime{2024, 7, 23, 10, 0, 0};
    const auto t = llrt::ChatTemplate::from_string(src, "<s>", "</s>");
    (void)t.render({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Why?"}}, o);
  } catch (const llrt::Error&) {
  }
  return 0;
}
