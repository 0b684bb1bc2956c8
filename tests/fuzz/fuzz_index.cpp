// libFuzzer target: model.safetensors.index.json on arbitrary bytes, read through the bounded
// JSON reader as Checkpoint::open reads it, then parsed into the shard map. Any crash,
// sanitizer report, hang or non-llrt exception is a bug; an llrt::Error is the expected answer.
#include <cstdint>
#include <string_view>

#include "llrt/error.h"
#include "src/io/bounded_io.h"
#include "src/io/shard_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = llrt::io::parse_json(text, "fuzz", llrt::ErrorCode::Format);
    const llrt::detail::ShardIndex ix = llrt::detail::parse_shard_index(j, "fuzz");
    for (const auto& f : ix.files)
      if (f.empty() || f.find('\0') != std::string::npos || f.find('/') != std::string::npos) __builtin_trap();
  } catch (const llrt::Error&) {
  }
  return 0;
}
