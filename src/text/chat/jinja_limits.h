// llrt chat templates: the limits on what one operation may build.
//
// A chat template is untrusted input: it must not be able to exhaust memory (Python would raise
// MemoryError after gigabytes, or never finish). Every operation that grows a string or a list
// computes the size of its result FIRST, with saturating arithmetic (an overflow is simply "too
// large"), and checks it here before allocating anything:
//   strings: at most 64 MiB (the rendered output has the same limit)
//   lists:   at most a million items, holding at most 64 MiB of strings (a list holds copies of
//            its strings, so repeating a list of one big string copies that string every time)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_value.h"

namespace llrt::jinja {

constexpr uint64_t kMaxStringBytes = uint64_t(64) << 20;
constexpr uint64_t kMaxListItems = 1'000'000;

// Saturating size arithmetic: UINT64_MAX stands for "larger than anything allowed".
inline uint64_t size_add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}
inline uint64_t size_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
// A count from the template (a width, a repetition): negative counts as 0, like Python.
inline uint64_t count_arg(int64_t n) { return n < 0 ? 0 : static_cast<uint64_t>(n); }

// RenderError naming `what` when a string of `bytes` bytes would be over the limit; else `bytes`
// (ready for std::string::reserve).
inline size_t check_string_size(uint64_t bytes, const std::string& what) {
  if (bytes > kMaxStringBytes)
    render_error(what + " would build a string of " + (bytes == UINT64_MAX ? std::string("more than 2^64") : std::to_string(bytes)) +
                 " bytes, over the 64 MiB limit on template strings: the template builds text without bound");
  return static_cast<size_t>(bytes);
}

// Bytes of the strings a list holds directly (what copying its items copies).
inline uint64_t string_bytes(const ValueList& l) {
  uint64_t b = 0;
  for (const Value& v : l)
    if (v.is_string()) b = size_add(b, v.as_string().size());
  return b;
}

// RenderError naming `what` when a list of `items` items holding `bytes` bytes of strings would be
// over the limits; else `items` (ready for std::vector::reserve).
inline size_t check_list_size(uint64_t items, uint64_t bytes, const std::string& what) {
  if (items > kMaxListItems)
    render_error(what + " would build a list of " + (items == UINT64_MAX ? std::string("more than 2^64") : std::to_string(items)) +
                 " items, over the limit of a million: the template builds a list without bound");
  if (bytes > kMaxStringBytes)
    render_error(what + " would build a list holding " + (bytes == UINT64_MAX ? std::string("more than 2^64") : std::to_string(bytes)) +
                 " bytes of strings, over the 64 MiB limit: the template builds text without bound");
  return static_cast<size_t>(items);
}

// Work inside one operation counts too: comparing, sorting, de-duplicating or printing a list
// of a million lists of a million items is one expression but 10^12 steps. Those element-wise
// loops charge this per-render meter (one unit per element visited); Evaluator::render resets it.
constexpr uint64_t kMaxWorkUnits = 100'000'000;  // a second or two
inline thread_local uint64_t t_work_units = 0;
inline void charge_work(uint64_t units, const char* what) {
  t_work_units = size_add(t_work_units, units);
  if (t_work_units > kMaxWorkUnits)
    render_error(std::string("the template does too much work (") + what +
                 " over huge lists: more than 100 million element visits in one render): giving up");
}

// A list built one item at a time (map, select, batch ...): each push is checked before it grows.
class ListBuilder {
 public:
  explicit ListBuilder(std::string what) : what_(std::move(what)) {}
  void push(Value v) {
    charge_work(1, what_.c_str());
    bytes_ = size_add(bytes_, v.is_string() ? v.as_string().size() : 0);
    check_list_size(items_.size() + 1, bytes_, what_);
    items_.push_back(std::move(v));
  }
  size_t size() const { return items_.size(); }
  ValueList take() { return std::move(items_); }

 private:
  std::string what_;
  ValueList items_;
  uint64_t bytes_ = 0;
};

}  // namespace llrt::jinja
