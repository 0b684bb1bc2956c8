// llrt: a small tensor.
//
// A Tensor is a dtype, a shape, strides (in elements) and a pointer into storage that
// is either owned (64-byte aligned heap memory) or borrowed from a file mapping (a
// zero-copy view; `keepalive` holds the mapping open). There is no implicit dtype
// conversion anywhere in this API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llrt/dtype.h"

namespace llrt {

class Tensor {
 public:
  Tensor() = default;

  // Owned, zero-filled, 64-byte aligned storage.
  static Tensor empty(DType dtype, std::vector<int64_t> shape);
  // A view over memory someone else owns; `keepalive` (may be null) keeps it valid.
  static Tensor view(DType dtype, std::vector<int64_t> shape, const void* data,
                     std::shared_ptr<const void> keepalive);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t dim(int i) const { return shape_.at(size_t(i < 0 ? int(shape_.size()) + i : i)); }
  int rank() const { return int(shape_.size()); }
  int64_t numel() const;
  size_t nbytes() const;
  bool is_contiguous() const;
  bool is_view() const { return view_; }
  bool defined() const { return data_ != nullptr || numel() == 0; }

  const void* data() const { return data_; }
  void* mutable_data();  // error for views of read-only mappings
  template <class T>
  const T* as() const { return static_cast<const T*>(data_); }
  template <class T>
  T* mutable_as() { return static_cast<T*>(mutable_data()); }

  std::string describe() const;  // "BF16[4096, 2048]"

 private:
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_, strides_;
  const void* data_ = nullptr;
  bool view_ = false;
  std::shared_ptr<const void> keepalive_;
};

std::string shape_str(const std::vector<int64_t>& shape);

// 64-byte aligned buffer for scratch / activations.
struct AlignedFree { void operator()(void* p) const; };
using AlignedBuffer = std::unique_ptr<void, AlignedFree>;
AlignedBuffer aligned_alloc_bytes(size_t bytes, size_t alignment = 64);

}  // namespace llrt
