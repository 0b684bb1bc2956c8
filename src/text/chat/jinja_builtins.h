// llrt chat templates: what the Python/Jinja runtime provides to a template.
//   jinja_builtins.cpp - filters (|trim, |tojson ...) and tests (is defined, is string ...) with Jinja 3.1
//                        semantics, HF's tojson (ensure_ascii=False, indent, separators, sort_keys)
//   jinja_objects.cpp  - Python object protocol: attribute/item lookup (sandboxed: mutating methods such as
//                        list.append are unsafe, as in HF's ImmutableSandboxedEnvironment), str/dict/list
//                        methods, len(), iteration, slicing, comparisons, arithmetic, `in`
#pragma once
#include <initializer_list>
#include <optional>
#include <string>

#include "src/text/chat/jinja_value.h"

namespace llrt::jinja {

class Evaluator;

using FilterFn = Value (*)(Evaluator&, const Value& subject, CallArgs& args);
using TestFn = bool (*)(Evaluator&, const Value& subject, CallArgs& args);

// nullptr when Jinja has no such filter/test. Jinja builtins llrt does not implement are found and raise a
// RenderError naming them when used.
FilterFn find_filter(const std::string& name);
TestFn find_test(const std::string& name);
bool is_unsupported_filter(const std::string& name);

// Binds call arguments to parameter names like a Python signature (positional, then keyword).
class ArgBinder {
 public:
  ArgBinder(CallArgs& args, std::string what, std::initializer_list<const char*> names);
  const Value* get(size_t i) const { return i < bound_.size() ? bound_[i] : nullptr; }
  Value get_or(size_t i, Value fallback) const { return bound_[i] ? *bound_[i] : std::move(fallback); }
  bool has(size_t i) const { return bound_[i] != nullptr && !bound_[i]->is_none(); }
  std::string str(size_t i, const std::string& fallback) const;  // string arg (TypeError if another type)
  int64_t integer(size_t i, int64_t fallback) const;
  bool flag(size_t i, bool fallback) const { return bound_[i] ? bound_[i]->truthy() : fallback; }

 private:
  std::vector<const Value*> bound_;
};

// ---- Python object protocol (jinja_objects.cpp) ----------------------------------------------------------------
Value get_attr(const Value& obj, const std::string& name);  // Jinja obj.name: attribute, then item
Value get_item(const Value& obj, const Value& key);         // Jinja obj[key]: item, then attribute
Value python_getattr(const Value& obj, const std::string& name);  // attribute only (|attr), Undefined if none
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
int64_t py_len(const Value& v);                  // TypeError when len() does not apply
ValueList py_iterate(const Value& v);            // iter(): list items, dict keys, str chars; Undefined: empty
bool py_contains(const Value& container, const Value& item);  // `item in container`
bool py_less(const Value& a, const Value& b);    // a < b (TypeError when unorderable)
int py_compare(const Value& a, const Value& b);  // -1/0/1 from py_less/py_equal
Value binary_op(const std::string& op, const Value& a, const Value& b);  // + - * / // % ** ~
Value soft_str(const Value& v);                  // str(v) as a Value (strings pass through)
[[noreturn]] void undefined_error(const Value& undefined);

}  // namespace llrt::jinja
