// llrt: a Hugging Face checkpoint folder: config.json, generation_config.json and
// the weights, either model.safetensors or shards listed by
// model.safetensors.index.json. Opening validates every shard header and the index
// (every shard present and inside the folder, no tensor in two shards, every indexed
// tensor found where the index says, nothing unindexed). Tensors are zero-copy views.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "llrt/config.h"
#include "llrt/safetensors.h"

namespace llrt {

class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir, const MapOptions& opt = {});

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const std::optional<GenerationConfig>& generation_config() const { return gen_; }
  bool sharded() const { return sharded_; }
  const std::vector<SafetensorsFile>& shards() const { return shards_; }

  const TensorInfo* find(const std::string& name) const;
  // Error{Checkpoint} naming the tensor and the folder when absent.
  Tensor tensor(const std::string& name) const;
  std::string file_of(const std::string& name) const;  // shard file name
  std::vector<const TensorInfo*> tensors() const;     // all, sorted by name
  uint64_t weight_bytes() const;                       // sum of all tensor bytes
  std::map<DType, uint64_t> bytes_by_dtype() const;

 private:
  std::filesystem::path dir_;
  ModelConfig config_;
  std::optional<GenerationConfig> gen_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::pair<size_t, size_t>> where_;  // name -> (shard, index in shard)
  const TensorInfo& info_at(const std::pair<size_t, size_t>& w) const { return shards_[w.first].tensors()[w.second]; }
};

}  // namespace llrt
