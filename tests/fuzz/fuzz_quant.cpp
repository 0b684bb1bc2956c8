// libFuzzer target: quantization_config (config.json) on arbitrary bytes, read through the
// bounded JSON reader as the loader reads it, then every Llama module name resolved against
// it, so "re:" targets / ignore patterns are compiled and matched. Any crash, sanitizer report,
// hang or non-llrt exception is a bug; an llrt::Error is the expected answer to bad input.
#include <cstdint>
#include <string>
#include <string_view>

#include "llrt/error.h"
#include "src/quant/quant.h"
#include "src/io/bounded_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = llrt::io::parse_json(text, "fuzz", llrt::ErrorCode::Format);
    const llrt::QuantConfig qc = llrt::parse_quantization_config(j);
    for (int l = 0; l < 3; ++l)
      for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                            "mlp.up_proj", "mlp.down_proj"})
        (void)qc.resolve("model.layers." + std::to_string(l) + "." + m);
    (void)qc.resolve("lm_head");
  } catch (const llrt::Error&) {
  }
  return 0;
}
