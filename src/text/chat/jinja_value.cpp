// llrt chat templates: Value (Python object semantics), Python str()/repr(), json.dumps.
#include "src/text/chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_limits.h"
#include "src/text/chat/jinja_unicode.h"

namespace llrt::jinja {

// ---------------------------------------------------------------------------------------------------------------
// Dict
// ---------------------------------------------------------------------------------------------------------------
const Value* Dict::find(const Value& key) const {
  for (const auto& [k, v] : items)
    if (py_equal(k, key)) return &v;
  return nullptr;
}
Value* Dict::find(const Value& key) {
  for (auto& [k, v] : items)
    if (py_equal(k, key)) return &v;
  return nullptr;
}
void Dict::set(Value key, Value value) {
  if (Value* v = find(key)) *v = std::move(value);
  else items.emplace_back(std::move(key), std::move(value));
}

// ---------------------------------------------------------------------------------------------------------------
// Value
// ---------------------------------------------------------------------------------------------------------------
Value Value::list(ValueList items, bool tuple) {
  Value v;
  v.kind_ = tuple ? Kind::Tuple : Kind::List;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}
Value Value::sequence(ValueList items, SeqFlavor flavor) {
  Value v = list(std::move(items));
  v.flavor_ = flavor;
  return v;
}
Value Value::dict(Dict d) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<const Dict>(std::move(d));
  return v;
}
Value Value::object(std::shared_ptr<Object> o) {
  Value v;
  v.kind_ = Kind::Object;
  v.obj_ = std::move(o);
  return v;
}
Value Value::function(std::string name, std::function<Value(CallArgs&, Evaluator&)> fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.fn_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

bool Value::same_object(const Value& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::Undefined: return false;
    case Kind::None: return true;
    case Kind::Bool: case Kind::Int: return i_ == o.i_;
    case Kind::Float: return f_ == o.f_;
    case Kind::String: return str_ == o.str_;
    case Kind::List: case Kind::Tuple: return list_ == o.list_;
    case Kind::Dict: return dict_ == o.dict_;
    case Kind::Object: return obj_ == o.obj_;
    case Kind::Function: return fn_ == o.fn_;
  }
  return false;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: case Kind::Int: return i_ != 0;
    case Kind::Float: return f_ != 0.0;
    case Kind::String: return !str_.empty();
    case Kind::List: case Kind::Tuple: return flavor_ == SeqFlavor::Generator || !list_->empty();
    case Kind::Dict: return !dict_->items.empty();
    case Kind::Object: case Kind::Function: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List:
      switch (flavor_) {
        case SeqFlavor::Generator: return "generator";
        case SeqFlavor::Range: return "range";
        case SeqFlavor::DictKeys: return "dict_keys";
        case SeqFlavor::DictValues: return "dict_values";
        case SeqFlavor::DictItems: return "dict_items";
        default: return "list";
      }
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Object: return obj_->type_name;
    case Kind::Function: return "function";
  }
  return "?";
}

static std::string seq_repr(const ValueList& items, bool tuple) {
  std::string s = tuple ? "(" : "[";
  for (size_t i = 0; i < items.size(); ++i) {
    charge_work(1, "printing");
    if (i) s += ", ";
    s += items[i].repr();
    check_string_size(s.size(), "printing a " + std::string(tuple ? "tuple" : "list"));  // at most one item over
  }
  if (tuple && items.size() == 1) s += ",";
  s += tuple ? ")" : "]";
  return s;
}

static std::string dict_repr(const Dict& d) {
  std::string s = "{";
  for (size_t i = 0; i < d.items.size(); ++i) {
    charge_work(1, "printing");
    if (i) s += ", ";
    s += d.items[i].first.repr() + ": " + d.items[i].second.repr();
    check_string_size(s.size(), "printing a dict");  // at most one item over
  }
  return s + "}";
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return i_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return py_float_repr(f_);
    case Kind::String: return str_;
    case Kind::List: case Kind::Tuple:
      switch (flavor_) {
        case SeqFlavor::Plain: return seq_repr(*list_, kind_ == Kind::Tuple);
        case SeqFlavor::DictKeys: return "dict_keys(" + seq_repr(*list_, false) + ")";
        case SeqFlavor::DictValues: return "dict_values(" + seq_repr(*list_, false) + ")";
        case SeqFlavor::DictItems: return "dict_items(" + seq_repr(*list_, false) + ")";
        case SeqFlavor::Range: render_error("cannot print a range object; apply |list first");
        case SeqFlavor::Generator: render_error("cannot print a generator (Python prints its address); apply |list first");
      }
      return "";
    case Kind::Dict: return dict_repr(*dict_);
    case Kind::Object:
      if (obj_->mutable_attrs) return "<Namespace " + dict_repr(obj_->attrs) + ">";
      render_error("cannot print a " + obj_->type_name + " object (Python prints its address)");
    case Kind::Function:
      render_error("cannot print the callable '" + fn_->name + "' (Python prints its address)");
  }
  return "";
}

std::string Value::repr() const {
  if (kind_ == Kind::String) return py_str_repr(str_);
  if (kind_ == Kind::Undefined) return "Undefined";
  return to_str();
}

bool py_equal(const Value& a, const Value& b) {
  charge_work(1, "comparisons");
  if (a.same_object(b) && a.is_list_like()) return true;  // Python compares identical containers equal first
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Kind::Float || b.kind() == Kind::Float) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) {
    return false;  // list != tuple in Python too
  }
  switch (a.kind()) {
    case Kind::Undefined: case Kind::None: return true;  // jinja2: Undefined == Undefined
    case Kind::String: return a.as_string() == b.as_string();
    case Kind::List: case Kind::Tuple: {
      const ValueList &x = a.as_list(), &y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!py_equal(x[i], y[i])) return false;
      return true;
    }
    case Kind::Dict: {
      const Dict &x = a.as_dict(), &y = b.as_dict();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !py_equal(v, *w)) return false;
      }
      return true;
    }
    default: return a.same_object(b);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Python float repr: shortest round-trip digits; scientific when the decimal exponent is < -4 or >= 16.
// ---------------------------------------------------------------------------------------------------------------
std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // [-]d[.ddd]e[+-]XX
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  int exp10 = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (size_t i = 0; i < epos; ++i)
    if (sci[i] != '.') digits += sci[i];
  int decpt = exp10 + 1;  // digits d1d2... represent 0.d1d2... * 10^decpt
  std::string out = neg ? "-" : "";
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(-decpt, '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out += digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += e;
  }
  return out;
}

std::string py_str_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos, has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8_decode(s)) {
    char buf[16];
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') { out += "\\t";
    } else if (c == '\n') { out += "\\n";
    } else if (c == '\r') { out += "\\r";
    } else if (py_isprintable(c)) {
      utf8_append(out, c);
    } else {
      if (c < 0x100) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    }
  }
  out += quote;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------------------------
Value from_json(const nlohmann::ordered_json& j) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value(j.get<bool>());
    case T::number_integer: return Value(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) render_error("integer " + std::to_string(u) + " is too large (llrt keeps 64-bit ints)");
      return Value(static_cast<int64_t>(u));
    }
    case T::number_float: return Value(j.get<double>());
    case T::string: return Value(j.get<std::string>());
    case T::array: {
      ValueList items;
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case T::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(Value(it.key()), from_json(it.value()));
      return Value::dict(std::move(d));
    }
    default: render_error("unsupported JSON value (binary/discarded)");
  }
}

static void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(s)) {
    char buf[16];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
          if (c >= 0x10000) {
            char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                          static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

static std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return py_float_repr(d);
}

static std::string json_key(const Value& k) {
  switch (k.kind()) {
    case Kind::String: return k.as_string();
    case Kind::Bool: return k.as_bool() ? "true" : "false";
    case Kind::Int: return std::to_string(k.as_int());
    case Kind::Float: return json_float(k.as_float());
    case Kind::None: return "null";
    default: render_error("TypeError: keys must be str, int, float, bool or None, not " + k.type_name());
  }
}

static void json_value(std::string& out, const Value& v, const ToJsonOptions& o, int depth) {
  auto newline = [&](int level) {
    if (o.indent < 0 && !o.indent_is_string) return;
    const uint64_t ind = o.indent_is_string ? o.indent_str.size() : static_cast<uint64_t>(o.indent);
    check_string_size(size_add(out.size() + 1, size_mul(ind, static_cast<uint64_t>(level))), "tojson(indent=...)");
    out += '\n';
    for (int i = 0; i < level; ++i) out += o.indent_is_string ? o.indent_str : std::string(o.indent, ' ');
  };
  switch (v.kind()) {
    case Kind::None: out += "null"; return;
    case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(v.as_int()); return;
    case Kind::Float: out += json_float(v.as_float()); return;
    case Kind::String:  // at most 12 bytes per code point of a string that exists: checked after
      json_string(out, v.as_string(), o.ensure_ascii);
      check_string_size(out.size(), "tojson()");
      return;
    case Kind::List: case Kind::Tuple: {
      const ValueList& items = v.as_list();
      if (items.empty()) { out += "[]"; return; }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        charge_work(1, "tojson");
        if (i) out += o.item_sep;
        newline(depth + 1);
        json_value(out, items[i], o, depth + 1);
        check_string_size(out.size(), "tojson()");
      }
      newline(depth);
      out += ']';
      return;
    }
    case Kind::Dict: {
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [k, val] : v.as_dict().items) items.emplace_back(json_key(k), &val);
      if (items.empty()) { out += "{}"; return; }
      if (o.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.item_sep;
        newline(depth + 1);
        charge_work(1, "tojson");
        json_string(out, items[i].first, o.ensure_ascii);
        out += o.key_sep;
        json_value(out, *items[i].second, o, depth + 1);
        check_string_size(out.size(), "tojson()");
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      render_error("TypeError: Object of type " + v.type_name() + " is not JSON serializable");
  }
}

std::string to_json(const Value& v, const ToJsonOptions& opts) {
  ToJsonOptions o = opts;
  if (o.item_sep.empty()) o.item_sep = (o.indent >= 0 || o.indent_is_string) ? "," : ", ";
  std::string out;
  json_value(out, v, o, 0);
  return out;
}

}  // namespace llrt::jinja
