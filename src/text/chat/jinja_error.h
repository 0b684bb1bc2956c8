// llrt chat templates: the exceptions the Jinja engine throws internally.
// ChatTemplate (chat_template.cpp) turns every one of them into llrt::Error(ErrorCode::Template, ...):
//   SyntaxError  - the template text is malformed or uses an unsupported construct; carries a source offset.
//   RenderError  - evaluation failed (Python would raise TypeError/UndefinedError/...); the evaluator adds the
//                  offset of the expression or statement being evaluated.
//   RaisedError  - the template called raise_exception(msg): the message is passed through unchanged.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace llrt::jinja {

constexpr size_t kNoPos = static_cast<size_t>(-1);

struct SyntaxError : std::runtime_error {
  SyntaxError(const std::string& msg, size_t pos) : std::runtime_error(msg), pos(pos) {}
  size_t pos;
};

struct RenderError : std::runtime_error {
  explicit RenderError(const std::string& msg, size_t pos = kNoPos) : std::runtime_error(msg), pos(pos) {}
  size_t pos;
};

struct RaisedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void render_error(const std::string& msg) { throw RenderError(msg); }

}  // namespace llrt::jinja
