// Internal: the one way llrt opens a file it was given and the one way it parses JSON.
//
// Every model-folder file is untrusted. open_regular() refuses anything but a regular file
// without blocking (a FIFO named tokenizer.json would block open() forever; /dev/zero would be
// read until memory runs out): it opens with O_NONBLOCK, then fstat()s and requires S_ISREG,
// and refuses a file above the caller's size limit. parse_json() refuses text above a size
// limit or nested deeper than kMaxJsonDepth before nlohmann parses it, so no later recursive
// walk (copy, dump, a loader's recursion over Sequence components) can overflow the stack.
// json_int() is the checked integer conversion every reader of a numeric field uses.
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "llrt/error.h"

namespace llrt::io {

constexpr int kMaxJsonDepth = 128;                      // real files nest < 10 levels
constexpr uint64_t kMaxConfigJson = 64ull << 20;        // config / generation / index / tokenizer_config
constexpr uint64_t kMaxTokenizerFile = 128ull << 20;    // tokenizer.json / tokenizer.model (real: < 40 MiB)
constexpr uint64_t kMaxTemplateFile = 16ull << 20;      // chat_template.jinja

// An open, regular, read-only file. Closes on destruction.
class RegularFile {
 public:
  RegularFile(RegularFile&& o) noexcept : fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }
  RegularFile& operator=(RegularFile&&) = delete;
  ~RegularFile();
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  int release() { const int f = fd_; fd_ = -1; return f; }

 private:
  friend RegularFile open_regular(const std::filesystem::path&, uint64_t);
  RegularFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

// Error{Io} when the path cannot be opened, holds a NUL byte, or is not a regular file (FIFO,
// device, socket, directory; a symlink is followed and judged by its target); Error{Format}
// when the file is larger than max_bytes.
RegularFile open_regular(const std::filesystem::path& path, uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

// The whole file (open_regular's checks, then read() to the size fstat gave).
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes);
// At most the first n bytes.
std::string read_head(const std::filesystem::path& path, size_t n);

// Error{code} "<what>: ..." when text is larger than max_bytes or nests arrays/objects deeper
// than kMaxJsonDepth (a linear scan that skips strings; malformed text is left to the parser).
void check_json_text(std::string_view text, const std::string& what, ErrorCode code, uint64_t max_bytes);

// Parses text after check_json_text; a parse failure is Error{code} "<what> is not valid JSON: ...".
template <class J = nlohmann::json>
J parse_json(std::string_view text, const std::string& what, ErrorCode code = ErrorCode::Format,
             uint64_t max_bytes = kMaxConfigJson, typename J::parser_callback_t cb = nullptr) {
  check_json_text(text, what, code, max_bytes);
  try {
    return J::parse(text.begin(), text.end(), cb);
  } catch (const typename J::exception& e) {
    fail(code, what + " is not valid JSON: " + e.what());
  }
}

template <class J = nlohmann::json>
J read_json(const std::filesystem::path& path, uint64_t max_bytes = kMaxConfigJson) {
  return parse_json<J>(read_file(path, max_bytes), path.string(), ErrorCode::Format, max_bytes);
}

// v as an integer in [lo, hi]; Error{code} "<field> ... is out of range" naming the field when it
// is not an integer or does not fit (a value above 2^31 must never be silently truncated).
int64_t json_int(const nlohmann::json& v, const std::string& field, int64_t lo, int64_t hi,
                 ErrorCode code = ErrorCode::Format);
// Same, for a token id: [0, INT32_MAX].
inline int32_t json_token_id(const nlohmann::json& v, const std::string& field, ErrorCode code = ErrorCode::Format) {
  return static_cast<int32_t>(json_int(v, field, 0, std::numeric_limits<int32_t>::max(), code));
}

}  // namespace llrt::io
