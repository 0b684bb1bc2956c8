// Internal: the inspect and capability reports as JSON values (the CLI and the tests read
// fields; the public llrt/inspect.h hands out text).
#pragma once
#include <nlohmann/json.hpp>

#include "llrt/inspect.h"

namespace llrt {

nlohmann::json inspect_model(const std::filesystem::path& dir, const InspectOptions& opt = {});
std::string format_inspect(const nlohmann::json& report);
nlohmann::json capability_report();
std::string format_capabilities(const nlohmann::json& caps);

}  // namespace llrt
