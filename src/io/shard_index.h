// Internal: model.safetensors.index.json -> which shard holds which tensor. Split out of
// Checkpoint::open so that the fuzz target (tests/fuzz/fuzz_index.cpp) runs the same code.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llrt::detail {

struct ShardIndex {
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::vector<std::string> files;                 // distinct shard names, first-seen order
};

// Error{Format} naming the entry when weight_map is missing or empty, or a shard name is not a
// plain file name in the folder (empty, ".", "..", a path separator, or a NUL byte).
ShardIndex parse_shard_index(const nlohmann::json& j, const std::string& what);

}  // namespace llrt::detail
