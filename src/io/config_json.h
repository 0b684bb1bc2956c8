// Internal: config.json / generation_config.json parsing from JSON values (the public
// llrt/config.h loads files and takes no third-party type).
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "llrt/config.h"

namespace llrt {

// config.json's "quantization_config" object as written (typed by src/quant/quant.h).
struct QuantizationConfigJson {
  nlohmann::json value;
};

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& what = "config.json");
GenerationConfig generation_config_from_json(const nlohmann::json& j, const std::string& what = "generation_config.json");

// Reads a whole JSON file; Error{Io} if missing, Error{Format} if not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path, uint64_t max_bytes = 64ull << 20);

}  // namespace llrt
