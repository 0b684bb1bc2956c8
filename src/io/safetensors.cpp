#include "llrt/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "llrt/error.h"
#include "src/io/bounded_io.h"

namespace llrt {

namespace {
constexpr uint64_t kMaxHeaderLen = 100ull << 20;  // the safetensors format's own limit
constexpr size_t kHugePage = 2ull << 20;

[[noreturn]] void bad(const std::string& what, const std::string& msg) {
  fail(ErrorCode::Format, what + ": " + msg);
}
}  // namespace

const char* load_mode_name(LoadMode m) {
  return m == LoadMode::Mmap ? "mmap" : m == LoadMode::Copy ? "copy (anonymous, huge pages)" : "auto (copy when it fits in memory, else mmap)";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------- FileBytes

std::shared_ptr<FileBytes> FileBytes::open(const std::filesystem::path& path, const MapOptions& opt) {
  io::RegularFile file = io::open_regular(path);  // never blocks on a FIFO; refuses devices
  std::shared_ptr<FileBytes> fb(new FileBytes());
  fb->path_ = path;
  fb->size_ = file.size();
  const int fd = file.release();
  fb->mode_ = opt.mode == LoadMode::Copy ? LoadMode::Copy : LoadMode::Mmap;  // (Auto is resolved by Model::load)
  if (fb->size_ == 0) {
    ::close(fd);
    return fb;
  }
  if (opt.mode != LoadMode::Copy) {  // Mmap (and Auto, which Model::load resolves)
    // Mapped at a 2 MiB-aligned address with MADV_HUGEPAGE before any page is touched, so
    // page-cache folios of 2 MiB (ext4/xfs large folios) can be mapped with PMD entries.
    // Measured on the project's VM (bench/README.md): decode from page-cache pages stays
    // 15-40% slower than from an anonymous copy whether or not they are PMD-mapped, so
    // Model::load copies by default.
    const size_t len = fb->size_, len_pg = (len + 4095) / 4096 * 4096;
    void* raw = mmap(nullptr, len_pg + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
      ::close(fd);
      fail(ErrorCode::Io, "cannot reserve address space for " + path.string() + ": " + std::strerror(errno));
    }
    const uintptr_t a = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
    const size_t head = a - reinterpret_cast<uintptr_t>(raw);
    if (head) munmap(raw, head);
    munmap(reinterpret_cast<void*>(a + len_pg), kHugePage - head);
    void* p = mmap(reinterpret_cast<void*>(a), len, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) {
      const int e = errno;
      munmap(reinterpret_cast<void*>(a), len_pg);
      fail(ErrorCode::Io, "cannot mmap " + path.string() + ": " + std::strerror(e));
    }
    madvise(p, len, MADV_HUGEPAGE);
    if (opt.populate) {
      madvise(p, len, MADV_WILLNEED);
      madvise(p, len, MADV_POPULATE_READ);  // Linux >= 5.14; older kernels fault on first use
    }
    fb->data_ = static_cast<const uint8_t*>(p);
    fb->map_len_ = len;
  } else {
    size_t len = (fb->size_ + kHugePage - 1) / kHugePage * kHugePage;
    // Over-allocate to align the start to 2 MiB.
    void* raw = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
      ::close(fd);
      fail(ErrorCode::Io, "cannot allocate " + std::to_string(len) + " bytes for " + path.string());
    }
    uintptr_t a = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
    size_t head = a - reinterpret_cast<uintptr_t>(raw);
    if (head) munmap(raw, head);
    size_t tail = kHugePage - head;
    if (tail) munmap(reinterpret_cast<void*>(a + len), tail);
    void* p = reinterpret_cast<void*>(a);
    madvise(p, len, MADV_HUGEPAGE);
    // Parallel read in 64 MiB chunks: the cost on a VM is mostly first-touch of fresh huge
    // pages (zeroing, compaction, the hypervisor's faults), which scales with threads.
    const uint64_t kChunk = std::max<uint64_t>(opt.copy_chunk, 4096);
    const int64_t nchunks = int64_t((fb->size_ + kChunk - 1) / kChunk);
    int err = 0;  // first failure: errno, or -1 for a short file
    uint64_t copied = 0;
    if (opt.on_copy) opt.on_copy(0, fb->size_);
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, std::min(opt.copy_threads, 8)))
    for (int64_t c = 0; c < nchunks; ++c) {
      uint64_t done = uint64_t(c) * kChunk;
      const uint64_t end = std::min(fb->size_, done + kChunk);
      while (done < end) {
        const ssize_t r = ::pread(fd, static_cast<uint8_t*>(p) + done, end - done, off_t(done));
        if (r <= 0) {
          const int e = r == 0 ? -1 : errno;
#pragma omp critical(llrt_copy_err)
          if (!err) err = e;
          break;
        }
        done += uint64_t(r);
      }
      if (opt.on_copy) {
#pragma omp critical(llrt_copy_progress)
        {
          copied += end - uint64_t(c) * kChunk;
          opt.on_copy(std::min(copied, fb->size_), fb->size_);
        }
      }
    }
    if (err) {
      ::close(fd);
      munmap(p, len);
      fail(ErrorCode::Io, "read failed on " + path.string() + (err == -1 ? ": file shrank" : std::string(": ") + std::strerror(err)));
    }
    ::close(fd);
    mprotect(p, len, PROT_READ);
    fb->data_ = static_cast<const uint8_t*>(p);
    fb->map_len_ = len;
  }
  return fb;
}

FileBytes::~FileBytes() {
  if (data_ && map_len_) munmap(const_cast<uint8_t*>(data_), map_len_);
}

// ---------------------------------------------------------------- header parsing

SafetensorsHeader parse_safetensors_header(const uint8_t* prefix, uint64_t prefix_len, uint64_t file_size,
                                           const std::string& what) {
  SafetensorsHeader h;
  if (file_size < 8 || prefix_len < 8)
    bad(what, "file is " + std::to_string(file_size) + " bytes: too short to hold a safetensors header (truncated?)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxHeaderLen) bad(what, "header length " + std::to_string(n) + " is absurd (limit 100 MiB): not a safetensors file or corrupt");
  if (n > file_size - 8)
    bad(what, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(file_size) + " bytes): truncated or corrupt");
  if (n < 2) bad(what, "header length " + std::to_string(n) + " is too small for a JSON object");
  if (prefix_len < 8 + n) bad(what, "internal: header prefix too short");
  h.header_len = n;
  h.data_offset = 8 + n;
  const uint64_t data_size = file_size - h.data_offset;
  const char* js = reinterpret_cast<const char*>(prefix + 8);

  // Parse, rejecting duplicate keys of the top-level object (JSON allows them; the
  // safetensors format cannot mean two tensors with one name).
  std::set<std::string> top_keys;
  std::string dup;
  const nlohmann::json j = io::parse_json(std::string_view(js, n), what + ": header", ErrorCode::Format, kMaxHeaderLen,
                                         [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
                                           if (ev == nlohmann::json::parse_event_t::key && depth == 1) {
                                             std::string k = parsed.get<std::string>();
                                             if (!top_keys.insert(k).second && dup.empty()) dup = k;
                                           }
                                           return true;
                                         });
  if (!dup.empty()) bad(what, "tensor '" + dup + "' appears twice in the header");
  if (!j.is_object()) bad(what, "header JSON is not an object");

  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(what, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(what, "__metadata__['" + m.key() + "'] is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) bad(what, "entry for tensor '" + name + "' is not an object");
    TensorInfo t;
    t.name = name;
    auto d = v.find("dtype");
    if (d == v.end() || !d->is_string()) bad(what, "tensor '" + name + "' has no dtype string");
    auto dt = parse_dtype(d->get<std::string>());
    if (!dt) bad(what, "tensor '" + name + "' has unknown dtype '" + d->get<std::string>() + "'");
    t.dtype = *dt;
    auto s = v.find("shape");
    if (s == v.end() || !s->is_array()) bad(what, "tensor '" + name + "' has no shape array");
    if (s->size() > 8) bad(what, "tensor '" + name + "' has rank " + std::to_string(s->size()) + " (more than 8)");
    unsigned __int128 elems = 1;
    for (const auto& e : *s) {
      if (!e.is_number_unsigned() && !(e.is_number_integer() && e.get<int64_t>() >= 0))
        bad(what, "tensor '" + name + "' has a shape entry that is not a non-negative integer");
      uint64_t dim = e.get<uint64_t>();
      if (dim > (1ull << 48)) bad(what, "tensor '" + name + "' has an absurd dimension " + std::to_string(dim));
      t.shape.push_back(int64_t(dim));
      elems *= dim;
      if (elems > (unsigned __int128)(1ull << 62)) bad(what, "tensor '" + name + "' has an absurd element count");
    }
    auto o = v.find("data_offsets");
    if (o == v.end() || !o->is_array() || o->size() != 2 || !(*o)[0].is_number_unsigned() || !(*o)[1].is_number_unsigned())
      bad(what, "tensor '" + name + "' needs data_offsets [begin, end] of non-negative integers");
    t.begin = (*o)[0].get<uint64_t>();
    t.end = (*o)[1].get<uint64_t>();
    if (t.end < t.begin) bad(what, "tensor '" + name + "' has data_offsets end < begin");
    if (t.end > data_size)
      bad(what, "tensor '" + name + "' data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                    "] run past the data section (" + std::to_string(data_size) + " bytes): truncated or corrupt");
    unsigned __int128 bits = elems * (unsigned __int128)dtype_bits(t.dtype);
    if (bits % 8 != 0) bad(what, "tensor '" + name + "' has a sub-byte dtype with a byte-unaligned size");
    uint64_t want = uint64_t(bits / 8);
    if (want != t.nbytes())
      bad(what, "tensor '" + name + "' is " + dtype_name(t.dtype) + shape_str(t.shape) + " = " + std::to_string(want) +
                    " bytes but its data_offsets span " + std::to_string(t.nbytes()) + " bytes");
    for (auto extra = v.begin(); extra != v.end(); ++extra)
      if (extra.key() != "dtype" && extra.key() != "shape" && extra.key() != "data_offsets")
        bad(what, "tensor '" + name + "' has unknown field '" + extra.key() + "'");
    h.tensors.push_back(std::move(t));
  }
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const auto& t = h.tensors[i];
    if (t.begin < cursor)
      bad(what, "tensor '" + t.name + "' overlaps tensor '" + h.tensors[i - 1].name + "' in the data section");
    if (t.begin > cursor)
      bad(what, "gap of " + std::to_string(t.begin - cursor) + " bytes before tensor '" + t.name + "' in the data section");
    cursor = t.end;
  }
  if (cursor != data_size)
    bad(what, std::to_string(data_size - cursor) + " bytes after the last tensor are not described by the header");
  return h;
}

// ---------------------------------------------------------------- SafetensorsFile

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path, const MapOptions& opt) {
  SafetensorsFile f;
  f.bytes_ = FileBytes::open(path, opt);
  f.header_ = parse_safetensors_header(f.bytes_->data(), f.bytes_->size(), f.bytes_->size(), path.string());
  for (size_t i = 0; i < f.header_.tensors.size(); ++i) f.index_[f.header_.tensors[i].name] = i;
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(ErrorCode::Checkpoint, path().string() + ": no tensor named '" + name + "'");
  return tensor(*t);
}

Tensor SafetensorsFile::tensor(const TensorInfo& t) const {
  if (!dtype_is_compute(t.dtype))
    fail(ErrorCode::UnsupportedDType, path().string() + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) +
                                          ", which llrt does not compute with (supported: F32, F16, BF16, I8, I32, U8)");
  const uint8_t* p = bytes_->data() + header_.data_offset + t.begin;
  size_t align = dtype_size(t.dtype);
  if (align > 1 && reinterpret_cast<uintptr_t>(p) % align != 0)
    fail(ErrorCode::Format, path().string() + ": tensor '" + t.name + "' starts at file offset " +
                                std::to_string(header_.data_offset + t.begin) + ", not aligned to its " +
                                std::to_string(align) + "-byte elements, so it cannot be used in place (zero-copy). "
                                "Re-save the checkpoint with the safetensors library, which aligns tensors.");
  return Tensor::view(t.dtype, t.shape, p, bytes_);
}

uint64_t SafetensorsFile::data_bytes() const { return bytes_->size() - header_.data_offset; }

}  // namespace llrt
