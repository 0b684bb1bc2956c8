// Tiny argument reader for the llrt CLI: flags with values, switches, positionals.
#pragma once
#include <charconv>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "llrt/error.h"

namespace llrt::cli {

class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) items_.push_back(argv[i]);
  }
  // Takes "--name VALUE" / "--name=VALUE"; returns false when absent.
  bool value(std::initializer_list<const char*> names, std::string* out) {
    for (size_t i = 0; i < items_.size(); ++i) {
      for (const char* n : names) {
        std::string s = items_[i];
        if (s == n) {
          if (i + 1 >= items_.size()) fail(ErrorCode::InvalidArgument, std::string(n) + " needs a value");
          *out = items_[i + 1];
          items_.erase(items_.begin() + long(i), items_.begin() + long(i) + 2);
          return true;
        }
        std::string pre = std::string(n) + "=";
        if (s.rfind(pre, 0) == 0 && s.size() > pre.size() && n[1] == '-') {
          *out = s.substr(pre.size());
          items_.erase(items_.begin() + long(i));
          return true;
        }
      }
    }
    return false;
  }
  std::vector<std::string> values(std::initializer_list<const char*> names) {
    std::vector<std::string> v;
    std::string s;
    while (value(names, &s)) v.push_back(s);
    return v;
  }
  bool flag(std::initializer_list<const char*> names) {
    for (size_t i = 0; i < items_.size(); ++i)
      for (const char* n : names)
        if (items_[i] == n) {
          items_.erase(items_.begin() + long(i));
          return true;
        }
    return false;
  }
  // "--name N": a number checked in full before anything runs: the whole text is a number of
  // T's kind (no trailing junk, no "-1" for an unsigned option, nothing that does not fit T: no
  // 4294967297 wrapping to 1, no NaN/Inf) and lies in [lo, hi]; `why` says what the bounds mean.
  // Error{InvalidArgument} naming the option otherwise; false when the option is absent.
  template <class T>
  bool number(std::initializer_list<const char*> names, T* out, T lo = std::numeric_limits<T>::lowest(),
              T hi = std::numeric_limits<T>::max(), const std::string& why = "") {
    std::string s;
    if (!value(names, &s)) return false;
    const std::string name = *names.begin();
    const char *b = s.data(), *e = s.data() + s.size();
    if (b != e && *b == '+') ++b;  // from_chars takes no '+'
    T v{};
    std::from_chars_result r{};
    if constexpr (std::is_floating_point_v<T>) r = std::from_chars(b, e, v);
    else r = std::from_chars(b, e, v, 10);
    if (r.ec == std::errc() && r.ptr == e && !is_finite(v))
      fail(ErrorCode::InvalidArgument, name + ": '" + s + "' is not a finite number (" + bounds(lo, hi, why) + ")");
    if (r.ec == std::errc::result_out_of_range)
      fail(ErrorCode::InvalidArgument, name + ": '" + s + "' is out of range (" + bounds(lo, hi, why) + ")");
    if (b == e || r.ec != std::errc() || r.ptr != e) {
      const bool negative_unsigned = std::is_unsigned_v<T> && b != e && *b == '-';
      fail(ErrorCode::InvalidArgument, name + ": '" + s + "' is not " + (negative_unsigned ? "a non-negative " : "a ") +
                                           (std::is_floating_point_v<T> ? "number" : "whole number") + " (" + bounds(lo, hi, why) + ")");
    }
    if (v < lo || v > hi) fail(ErrorCode::InvalidArgument, name + ": " + s + " is out of range (" + bounds(lo, hi, why) + ")");
    *out = v;
    return true;
  }
  // Remaining items; anything starting with '-' is an unknown option.
  std::vector<std::string> positionals() const {
    for (const auto& s : items_)
      if (s.size() > 1 && s[0] == '-') fail(ErrorCode::InvalidArgument, "unknown option '" + s + "' (see --help)");
    return items_;
  }

 private:
  template <class T>
  static bool is_finite(T v) {
    if constexpr (std::is_floating_point_v<T>) return std::isfinite(v);
    else return true;
  }
  template <class T>
  static std::string show(T v) {
    if constexpr (std::is_floating_point_v<T>) {
      std::ostringstream o;
      o << v;
      return o.str();
    } else {
      return std::to_string(v);
    }
  }
  template <class T>
  static std::string bounds(T lo, T hi, const std::string& why) {
    std::string r;
    if (lo != std::numeric_limits<T>::lowest() && hi != std::numeric_limits<T>::max()) r = "must be " + show(lo) + " to " + show(hi);
    else if (lo != std::numeric_limits<T>::lowest()) r = "must be >= " + show(lo);
    else if (hi != std::numeric_limits<T>::max()) r = "must be <= " + show(hi);
    else r = "any " + std::string(std::is_floating_point_v<T> ? "finite number" : "whole number");
    return why.empty() ? r : r + ": " + why;
  }
  std::vector<std::string> items_;
};

// "-p 128,512": a comma-separated list, each value checked as Args::number checks one; `dflt`
// when the option is absent.
template <class T>
std::vector<T> number_list(Args& a, std::initializer_list<const char*> names, std::vector<T> dflt, T lo, T hi,
                           const std::string& why = "") {
  std::string s;
  if (!a.value(names, &s)) return dflt;
  std::vector<T> out;
  size_t b = 0;
  while (true) {
    const size_t e = s.find(',', b);
    std::string name = *names.begin(), piece = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    char* argv[] = {name.data(), piece.data()};
    Args one(2, argv, 0);
    T v{};
    one.number(names, &v, lo, hi, why);
    out.push_back(v);
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return out;
}

}  // namespace llrt::cli
