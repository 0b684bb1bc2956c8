#include "src/io/bounded_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace llrt::io {

namespace {
const char* file_kind(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISDIR(m)) return "a directory";
  return "not a regular file";
}
}  // namespace

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

RegularFile open_regular(const std::filesystem::path& path, uint64_t max_bytes) {
  const std::string& p = path.native();
  if (p.find('\0') != std::string::npos)
    fail(ErrorCode::Io, "file name '" + std::string(p.c_str()) + "\\0...' contains a NUL byte: not a usable file name");
  // O_NONBLOCK: open() of a FIFO with no writer would otherwise wait forever.
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail(ErrorCode::Io, "cannot open " + p + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(ErrorCode::Io, "cannot stat " + p + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::Io, p + " is " + file_kind(st.st_mode) +
                            ", not a regular file: llrt reads model files only from regular files (put the file itself there)");
  }
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    fail(ErrorCode::Format, p + " is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                                " llrt accepts for this file: not a file of this kind, or corrupt");
  }
  return RegularFile(fd, size);
}

namespace {
std::string read_n(const RegularFile& f, const std::filesystem::path& path, uint64_t n) {
  std::string s(static_cast<size_t>(n), '\0');
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t r = ::read(f.fd(), s.data() + done, s.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(ErrorCode::Io, "cannot read " + path.string() + ": " + std::strerror(errno));
    if (r == 0) break;  // the file shrank: what is there is all there is
    done += static_cast<size_t>(r);
  }
  s.resize(done);
  return s;
}
}  // namespace

std::string read_file(const std::filesystem::path& path, uint64_t max_bytes) {
  const RegularFile f = open_regular(path, max_bytes);
  return read_n(f, path, f.size());
}

std::string read_head(const std::filesystem::path& path, size_t n) {
  const RegularFile f = open_regular(path);
  return read_n(f, path, std::min<uint64_t>(f.size(), n));
}

void check_json_text(std::string_view text, const std::string& what, ErrorCode code, uint64_t max_bytes) {
  if (text.size() > max_bytes)
    fail(code, what + " is " + std::to_string(text.size()) + " bytes, more than the " + std::to_string(max_bytes) +
                   " llrt accepts for this JSON: not a file of this kind, or corrupt");
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(code, what + ": JSON nested more than " + std::to_string(kMaxJsonDepth) + " levels deep (at byte " +
                       std::to_string(i) + "); no file llrt reads nests like that: corrupt or hostile");
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced text is the parser's to reject
    }
  }
}

int64_t json_int(const nlohmann::json& v, const std::string& field, int64_t lo, int64_t hi, ErrorCode code) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo)))
      fail(code, field + " = " + std::to_string(u) + " is out of range " + range);
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) {
    std::string got = v.dump();
    if (got.size() > 80) got = got.substr(0, 80) + "...";
    fail(code, field + " must be an integer in " + range + ", got " + got);
  }
  const auto x = v.get<int64_t>();
  if (x < lo || x > hi) fail(code, field + " = " + std::to_string(x) + " is out of range " + range);
  return x;
}

}  // namespace llrt::io
