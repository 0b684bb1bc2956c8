// llrt: safetensors files, validated strictly, used zero-copy.
//
// Every byte is untrusted. open() checks: the 8-byte header length is within the
// file and sane (<= 100 MiB), the header is valid JSON (an object, no duplicate
// keys), every tensor has a known dtype string, a non-negative shape whose byte size
// (computed with overflow checks) equals data_offsets' span, offsets lie inside the
// data section, tensors do not overlap and leave no gaps. `__metadata__` must be a
// string->string object. Any violation is Error{Format} naming the file and tensor.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "llrt/dtype.h"
#include "llrt/tensor.h"

namespace llrt {

// How weights get into memory. Both use the stored bytes unchanged (never a dtype
// conversion): Mmap maps the file (zero-copy, instant start, page-cache pages; mapped
// 2 MiB-aligned with MADV_HUGEPAGE so large page-cache folios map as huge pages);
// Copy reads the same bytes into anonymous memory aligned to 2 MiB with
// MADV_HUGEPAGE (transparent huge pages). Copy is what Model::load picks when it fits: on the measured machine
// it decodes 15-90% faster than the page cache (bench/README.md, "mmap or copy"), at a
// load cost of ~1.5 s/GB there (first touch of fresh huge pages); --mmap for instant start.
// Auto (Model::load's default): Copy when the weights fit comfortably in available memory
// (weights <= 70% of MemAvailable), else Mmap; the choice is announced through the load's
// progress callback. FileBytes::open treats Auto as Mmap.
enum class LoadMode { Mmap, Copy, Auto };
const char* load_mode_name(LoadMode m);

struct MapOptions {
  LoadMode mode = LoadMode::Mmap;  // (Model::load's default is Auto: ModelOptions)
  bool populate = false;  // Mmap only: prefault the mapping (WILLNEED + POPULATE_READ)
  int copy_threads = 2;   // Copy only: threads reading (and first-touching) the copy
  uint64_t copy_chunk = 64ull << 20;  // Copy only: bytes per read (the unit threads share)
  // Copy only: (bytes of this file read so far, its size), once with 0 before the read, after each
  // chunk, and with the size at the end; called from one thread at a time.
  std::function<void(uint64_t done, uint64_t size)> on_copy = nullptr;
};

// A read-only region holding a whole file's bytes (a mapping or an anonymous copy).
class FileBytes {
 public:
  static std::shared_ptr<FileBytes> open(const std::filesystem::path& path, const MapOptions& opt);
  ~FileBytes();
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  LoadMode mode() const { return mode_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  FileBytes() = default;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  size_t map_len_ = 0;
  LoadMode mode_ = LoadMode::Mmap;
  std::filesystem::path path_;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the data section
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  uint64_t header_len = 0;   // bytes of JSON
  uint64_t data_offset = 0;  // 8 + header_len
  std::vector<TensorInfo> tensors;  // in file order (sorted by offset)
  std::map<std::string, std::string> metadata;
};

// Parses and validates a header given the first bytes of a file and its total size.
// `prefix` must hold at least min(file_size, 8 + header_len) bytes; pure function,
// used by the fuzzer. `what` names the file in messages.
SafetensorsHeader parse_safetensors_header(const uint8_t* prefix, uint64_t prefix_len,
                                           uint64_t file_size, const std::string& what);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path, const MapOptions& opt = {});
  const std::filesystem::path& path() const { return bytes_->path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const TensorInfo* find(const std::string& name) const;
  // Zero-copy view. Error{Format} if the tensor's address is not aligned to its
  // element size (it cannot be used in place) or the dtype is not a compute dtype.
  Tensor tensor(const std::string& name) const;
  Tensor tensor(const TensorInfo& info) const;
  uint64_t data_bytes() const;
  LoadMode mode() const { return bytes_->mode(); }

 private:
  std::shared_ptr<FileBytes> bytes_;
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

}  // namespace llrt
