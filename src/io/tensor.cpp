#include "llrt/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "llrt/error.h"

namespace llrt {

void AlignedFree::operator()(void* p) const { std::free(p); }

AlignedBuffer aligned_alloc_bytes(size_t bytes, size_t alignment) {
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  void* p = std::aligned_alloc(alignment, rounded);
  if (!p) fail(ErrorCode::Io, "out of memory allocating " + std::to_string(bytes) + " bytes");
  return AlignedBuffer(p);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

static std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i) st[size_t(i)] = st[size_t(i) + 1] * shape[size_t(i) + 1];
  return st;
}

Tensor Tensor::empty(DType dtype, std::vector<int64_t> shape) {
  for (auto d : shape)
    if (d < 0) fail(ErrorCode::InvalidArgument, "negative dimension in " + shape_str(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  size_t n = t.nbytes();
  auto buf = aligned_alloc_bytes(n);
  std::memset(buf.get(), 0, n);
  void* raw = buf.release();
  t.keepalive_ = std::shared_ptr<const void>(raw, [](const void* p) { std::free(const_cast<void*>(p)); });
  t.data_ = raw;
  t.view_ = false;
  return t;
}

Tensor Tensor::view(DType dtype, std::vector<int64_t> shape, const void* data,
                    std::shared_ptr<const void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  t.data_ = data;
  t.view_ = true;
  t.keepalive_ = std::move(keepalive);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

size_t Tensor::nbytes() const { return size_t(numel()) * size_t(dtype_bits(dtype_)) / 8; }

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::mutable_data() {
  if (view_) fail(ErrorCode::InvalidArgument, "tensor " + describe() + " is a read-only view of a mapped file");
  return const_cast<void*>(data_);
}

std::string Tensor::describe() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

}  // namespace llrt
