// llrt chat templates: the value model of the Jinja engine.
//
// Values behave like the Python objects Jinja2 manipulates when Hugging Face renders a chat template:
//   Undefined  - jinja2.Undefined (prints "", iterates empty, is falsy; attribute access on it raises)
//   None/Bool/Int/Float/String - Python None/bool/int (64-bit here)/float/str (UTF-8; lengths and indexes count
//                code points like Python)
//   List/Tuple - list/tuple (immutable here: HF renders in jinja2's ImmutableSandboxedEnvironment)
//   Dict       - dict, insertion-ordered like Python's
//   Object     - namespace() (mutable attributes), the loop variable, a joiner: attributes only
//   Function   - a callable: builtin global, bound method ('abc'.upper), macro
// to_str() is Python's str(), repr() Python's repr(); both are what {{ }} prints.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace llrt::jinja {

class Value;
using ValueList = std::vector<Value>;

struct Dict {
  std::vector<std::pair<Value, Value>> items;  // insertion order
  const Value* find(const Value& key) const;
  Value* find(const Value& key);
  void set(Value key, Value value);
};

struct Object {
  std::string type_name;  // for repr and error messages: "Namespace", "LoopContext"
  Dict attrs;
  bool mutable_attrs = false;  // namespace(): {% set ns.x = ... %} allowed
};

// Arguments of a call: positional then keyword, as written.
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

class Evaluator;
struct Function {
  std::string name;  // for repr / errors
  std::function<Value(CallArgs&, Evaluator&)> fn;
};

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Object, Function };

// What Python object a List value stands for when it is not a plain list. Iterators/generators (what Jinja's
// map/select/unique/items/reverse filters return) are always truthy, have no len() and cannot be printed
// faithfully (Python prints an address); dict views print as dict_items([...]) etc.
enum class SeqFlavor : uint8_t { Plain, Generator, Range, DictKeys, DictValues, DictItems };

class Value {
 public:
  Value() = default;  // Undefined
  static Value undefined(std::string hint) { Value v; v.str_ = std::move(hint); return v; }
  static Value none() { Value v; v.kind_ = Kind::None; return v; }
  Value(bool b) : kind_(Kind::Bool), i_(b) {}
  Value(int v) : kind_(Kind::Int), i_(v) {}
  Value(int64_t v) : kind_(Kind::Int), i_(v) {}
  Value(double v) : kind_(Kind::Float), f_(v) {}
  Value(std::string s) : kind_(Kind::String), str_(std::move(s)) {}
  Value(std::string_view s) : kind_(Kind::String), str_(s) {}
  Value(const char* s) : kind_(Kind::String), str_(s) {}
  static Value list(ValueList items, bool tuple = false);
  static Value sequence(ValueList items, SeqFlavor flavor);  // a List with a non-plain flavor
  static Value dict(Dict d);
  static Value object(std::shared_ptr<Object> o);
  static Value function(std::string name, std::function<Value(CallArgs&, Evaluator&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_int() const { return kind_ == Kind::Int; }  // Python int, not bool
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_list_like() const { return kind_ == Kind::List || kind_ == Kind::Tuple; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_function() const { return kind_ == Kind::Function; }

  SeqFlavor flavor() const { return flavor_; }
  bool is_generator() const { return kind_ == Kind::List && flavor_ == SeqFlavor::Generator; }
  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }  // Int or Bool
  double as_float() const { return kind_ == Kind::Float ? f_ : static_cast<double>(i_); }
  const std::string& as_string() const { return str_; }
  const std::string& undefined_hint() const { return str_; }
  const ValueList& as_list() const { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Object& as_object() const { return *obj_; }
  const Function& as_function() const { return *fn_; }
  bool same_object(const Value& o) const;  // Python `is`

  bool truthy() const;
  std::string to_str() const;   // Python str(); Undefined -> ""
  std::string repr() const;     // Python repr()
  std::string type_name() const;  // "str", "int", "dict", "NoneType", ...

 private:
  Kind kind_ = Kind::Undefined;
  SeqFlavor flavor_ = SeqFlavor::Plain;
  int64_t i_ = 0;
  double f_ = 0.0;
  std::string str_;  // String contents, or the Undefined hint
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const Dict> dict_;
  std::shared_ptr<Object> obj_;
  std::shared_ptr<const Function> fn_;
};

// Python ==, which Jinja uses for ==, `in` and dict keys (1 == 1.0 == True).
bool py_equal(const Value& a, const Value& b);

// Python float repr (shortest round-trip digits, 'e+XX' outside [1e-4, 1e16)).
std::string py_float_repr(double d);
// Python repr of a str: quotes chosen like CPython, non-printable characters escaped.
std::string py_str_repr(std::string_view s);

// JSON <-> Value. nlohmann::ordered_json keeps object key order, as Python dicts do.
Value from_json(const nlohmann::ordered_json& j);

struct ToJsonOptions {
  bool ensure_ascii = false;
  int indent = -1;             // < 0: no newlines; >= 0: newline + indent spaces per level
  std::string indent_str;      // used instead of spaces when indent_is_string
  bool indent_is_string = false;
  std::string item_sep;        // defaults like Python: ", " without indent, "," with
  std::string key_sep = ": ";
  bool sort_keys = false;
};
// json.dumps(value, ...) exactly as Python writes it. Throws Template error for non-JSON values.
std::string to_json(const Value& v, const ToJsonOptions& opts);

}  // namespace llrt::jinja
