// libFuzzer target: the safetensors header parser and the config parsers, on
// arbitrary bytes. Any crash, sanitizer report or non-llrt exception is a bug; an
// llrt::Error is the expected answer to bad input.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "llrt/config.h"
#include "llrt/error.h"
#include "llrt/safetensors.h"
#include "src/io/bounded_io.h"
#include "src/io/config_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte picks the parser so one corpus exercises all of them.
  const uint8_t which = data[0] % 3;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;
  try {
    if (which == 0) {
      // The file size is the buffer size: the parser must never read past `n`.
      llrt::parse_safetensors_header(p, n, n, "fuzz");
    } else {
      // The bounded reader, as config.json / generation_config.json are read (depth and size limits).
      const auto j = llrt::io::parse_json(std::string_view(reinterpret_cast<const char*>(p), n), "fuzz");
      if (which == 1) llrt::model_config_from_json(j, "fuzz");
      else llrt::generation_config_from_json(j, "fuzz");
    }
  } catch (const llrt::Error&) {
  }
  return 0;
}
