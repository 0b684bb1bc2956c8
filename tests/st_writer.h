// Test helper: read and write safetensors files byte-for-byte, so the malformed-input
// catalogue can be generated from the good checkpoints.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace llrt::test {

struct RawSafetensors {
  nlohmann::ordered_json header;
  std::string data;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
inline void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

inline RawSafetensors read_raw(const std::filesystem::path& p) {
  std::string b = slurp(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint8_t(b[size_t(i)]);
  RawSafetensors r;
  r.header = nlohmann::ordered_json::parse(b.substr(8, n));
  r.data = b.substr(8 + n);
  return r;
}

inline std::string frame(const std::string& header_json, const std::string& data, uint64_t claimed_len = UINT64_MAX) {
  std::string h = header_json;
  while ((8 + h.size()) % 8) h.push_back(' ');
  uint64_t n = claimed_len == UINT64_MAX ? h.size() : claimed_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + h + data;
}

inline void write_raw(const std::filesystem::path& p, const RawSafetensors& r) { spit(p, frame(r.header.dump(), r.data)); }

// Copies a checkpoint folder to a fresh temporary folder.
inline std::filesystem::path copy_model(const std::filesystem::path& src, const std::string& tag) {
  auto dst = std::filesystem::temp_directory_path() / ("llrt-test-" + std::to_string(::getpid()) + "-" + tag);
  std::filesystem::remove_all(dst);
  std::filesystem::copy(src, dst, std::filesystem::copy_options::recursive);
  return dst;
}

}  // namespace llrt::test
