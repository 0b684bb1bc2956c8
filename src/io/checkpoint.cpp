#include "llrt/checkpoint.h"

#include <set>

#include "llrt/error.h"
#include "src/io/shard_index.h"
#include "src/io/config_json.h"

namespace llrt {

namespace fs = std::filesystem;

detail::ShardIndex detail::parse_shard_index(const nlohmann::json& j, const std::string& what) {
  ShardIndex ix;
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(ErrorCode::Format, what + ": missing 'weight_map' object");
  std::set<std::string> seen_files;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) fail(ErrorCode::Format, what + ": weight_map['" + it.key() + "'] is not a file name");
    const std::string f = it.value().get<std::string>();
    if (f.find('\0') != std::string::npos)
      fail(ErrorCode::Format, what + ": shard name '" + std::string(f.c_str()) + "\\0...' for tensor '" + it.key() +
                                  "' contains a NUL byte: not a file name");
    if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
      fail(ErrorCode::Format, what + ": shard name '" + f + "' for tensor '" + it.key() + "' is not a plain file name in the folder");
    ix.weight_map[it.key()] = f;
    if (seen_files.insert(f).second) ix.files.push_back(f);
  }
  if (ix.weight_map.empty()) fail(ErrorCode::Format, what + ": weight_map is empty");
  return ix;
}

Checkpoint Checkpoint::open(const fs::path& dir, const MapOptions& opt) {
  Checkpoint c;
  c.dir_ = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail(ErrorCode::Io, dir.string() + " is not a directory (expected a Hugging Face checkpoint folder)");
  fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg)) fail(ErrorCode::Io, dir.string() + ": no config.json (not a Hugging Face checkpoint folder)");
  c.config_ = ModelConfig::load(cfg);
  fs::path gen = dir / "generation_config.json";
  if (fs::exists(gen)) c.gen_ = GenerationConfig::load(gen);

  fs::path index = dir / "model.safetensors.index.json";
  fs::path single = dir / "model.safetensors";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  std::vector<std::string> files;
  if (fs::exists(index)) {
    c.sharded_ = true;
    detail::ShardIndex ix = detail::parse_shard_index(read_json_file(index), index.string());
    weight_map = std::move(ix.weight_map);
    files = std::move(ix.files);
    for (const auto& f : files)
      if (!fs::exists(dir / f)) fail(ErrorCode::Io, index.string() + " lists shard '" + f + "', which is missing from " + dir.string());
  } else if (fs::exists(single)) {
    files.push_back("model.safetensors");
  } else {
    fail(ErrorCode::Io, dir.string() + ": no model.safetensors and no model.safetensors.index.json");
  }

  c.shards_.reserve(files.size());
  for (const auto& f : files) c.shards_.push_back(SafetensorsFile::open(dir / f, opt));
  for (size_t s = 0; s < c.shards_.size(); ++s) {
    const auto& ts = c.shards_[s].tensors();
    for (size_t ti = 0; ti < ts.size(); ++ti) {
      auto [it, inserted] = c.where_.emplace(ts[ti].name, std::make_pair(s, ti));
      if (!inserted)
        fail(ErrorCode::Checkpoint, "tensor '" + ts[ti].name + "' is stored in two shards: " + files[it->second.first] + " and " + files[s]);
    }
  }
  if (c.sharded_) {
    for (const auto& [name, w] : c.where_) {
      auto m = weight_map.find(name);
      if (m == weight_map.end())
        fail(ErrorCode::Checkpoint, "tensor '" + name + "' is in shard " + files[w.first] + " but not in model.safetensors.index.json");
      if (m->second != files[w.first])
        fail(ErrorCode::Checkpoint, "model.safetensors.index.json puts tensor '" + name + "' in " + m->second +
                                        " but it is stored in " + files[w.first]);
    }
  }
  for (const auto& [name, file] : weight_map)
    if (!c.where_.count(name))
      fail(ErrorCode::Checkpoint, "model.safetensors.index.json lists tensor '" + name + "' in " + file + ", which does not contain it");
  return c;
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : &info_at(it->second);
}

Tensor Checkpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(ErrorCode::Checkpoint, dir_.string() + ": missing tensor '" + name + "'");
  return shards_[it->second.first].tensor(info_at(it->second));
}

std::string Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? std::string() : shards_[it->second.first].path().filename().string();
}

std::vector<const TensorInfo*> Checkpoint::tensors() const {
  std::vector<const TensorInfo*> v;
  for (const auto& [n, p] : where_) v.push_back(&info_at(p));
  return v;
}

uint64_t Checkpoint::weight_bytes() const {
  uint64_t b = 0;
  for (const auto& [n, p] : where_) b += info_at(p).nbytes();
  return b;
}

std::map<DType, uint64_t> Checkpoint::bytes_by_dtype() const {
  std::map<DType, uint64_t> m;
  for (const auto& [n, p] : where_) m[info_at(p).dtype] += info_at(p).nbytes();
  return m;
}

}  // namespace llrt
