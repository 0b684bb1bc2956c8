// Tiny argument reader for the llrt CLI: flags with values, switches, positionals.
#pragma once
#include <cstdlib>
#include <string>
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
  template <class T>
  bool number(std::initializer_list<const char*> names, T* out) {
    std::string s;
    if (!value(names, &s)) return false;
    char* end = nullptr;
    errno = 0;
    if constexpr (std::is_floating_point_v<T>) {
      double d = std::strtod(s.c_str(), &end);
      if (end == s.c_str() || *end || errno) bad(names, s);
      *out = T(d);
    } else {
      long long d = std::strtoll(s.c_str(), &end, 10);
      if (end == s.c_str() || *end || errno) bad(names, s);
      *out = T(d);
    }
    return true;
  }
  // Remaining items; anything starting with '-' is an unknown option.
  std::vector<std::string> positionals() const {
    for (const auto& s : items_)
      if (s.size() > 1 && s[0] == '-') fail(ErrorCode::InvalidArgument, "unknown option '" + s + "' (see --help)");
    return items_;
  }

 private:
  [[noreturn]] static void bad(std::initializer_list<const char*> names, const std::string& v) {
    fail(ErrorCode::InvalidArgument, std::string(*names.begin()) + ": '" + v + "' is not a number");
  }
  std::vector<std::string> items_;
};

}  // namespace llrt::cli
