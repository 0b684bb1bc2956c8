// Where test data lives. LLRT_SHARED_DIR (set by meson) points at ../shared when the
// checkout has it, else at tests/data/shared (the subset the repo carries). The
// environment variable LLRT_SHARED overrides both.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace llrt::test {
inline std::filesystem::path shared_dir() {
  if (const char* e = std::getenv("LLRT_SHARED"); e && *e) return e;
  return LLRT_SHARED_DIR;
}
inline std::filesystem::path repo_dir() { return LLRT_SOURCE_DIR; }
inline std::filesystem::path model_dir(const std::string& name) { return shared_dir() / "models" / name; }
}  // namespace llrt::test
