// llrt chat templates: the Python object protocol as Jinja2 (sandboxed, immutable) exposes it to templates:
// attribute/item lookup with Jinja's fallbacks, str/dict/list methods, len(), iteration, slicing, `in`, `<`,
// and arithmetic with Python's rules (floor division/modulo, str + str, list * int, True == 1 ...).
// 64-bit integers: an overflow is a RenderError, never a wrapped value.
#include <cmath>

#include "src/text/chat/jinja_builtins.h"
#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_limits.h"
#include "src/text/chat/jinja_unicode.h"

namespace llrt::jinja {
namespace {

std::string object_desc(const Value& v) {
  if (v.is_none()) return "None";
  return v.type_name() + " object";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_desc(obj) + "' has no attribute '" + name + "'");
}

Value unsafe(const Value& obj, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + obj.type_name() + "' object is unsafe.");
}

using Method = std::function<Value(CallArgs&, Evaluator&)>;

Value bound(const std::string& name, Method m) { return Value::function(name, std::move(m)); }

const std::string& need_str(const Value* v, const std::string& what) {
  if (!v || !v->is_string()) render_error("TypeError: " + what + " must be str, not " + (v ? v->type_name() : "nothing"));
  return v->as_string();
}

// Code point index of byte offset `b` in s.
int64_t cp_index(const std::string& s, size_t b) { return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, b))); }

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  // The result's size first: the number of replacements, then the bytes.
  const uint64_t limit = count < 0 ? UINT64_MAX : uint64_t(count);
  uint64_t k = 0;
  if (old.empty()) {
    k = std::min<uint64_t>(limit, size_add(utf8_length(s), 1));
  } else {
    for (size_t p = s.find(old); p != std::string::npos && k < limit; p = s.find(old, p + old.size())) ++k;
  }
  std::string out;
  out.reserve(check_string_size(size_add(s.size() - (old.empty() ? 0 : k * old.size()), size_mul(k, repl.size())), "str.replace()"));
  if (old.empty()) {
    std::u32string u = utf8_decode(s);
    uint64_t n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (n < k) { out += repl; ++n; }
      if (i < u.size()) utf8_append(out, u[i]);
    }
    return out;
  }
  size_t pos = 0;
  for (uint64_t n = 0; n < k; ++n) {
    size_t p = s.find(old, pos);
    out.append(s, pos, p - pos);
    out += repl;
    pos = p + old.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::string pad(const std::string& s, int64_t width, const std::string& fill, char how) {
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return s;
  if (utf8_length(fill) != 1) render_error("TypeError: The fill character must be exactly one character long");
  int64_t total = width - len, left = 0;
  if (how == 'c') left = total / 2 + (total & width & 1);
  else if (how == 'r') left = total;
  std::string out;
  out.reserve(check_string_size(size_add(s.size(), size_mul(count_arg(total), fill.size())), std::string("str.") +
                                (how == 'c' ? "center" : how == 'l' ? "ljust" : "rjust") + "(" + std::to_string(width) + ")"));
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return out;
}

Value string_method(const std::string& s, const std::string& name) {
  auto strip = [s, name](StripSide side) {
    return bound(name, [s, name, side](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"chars"});
      if (b.has(0)) return Value(py_strip(s, &need_str(b.get(0), "chars"), side));
      return Value(py_strip(s, nullptr, side));
    });
  };
  if (name == "strip") return strip(StripSide::Both);
  if (name == "lstrip") return strip(StripSide::Left);
  if (name == "rstrip") return strip(StripSide::Right);
  if (name == "split" || name == "rsplit") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"sep", "maxsplit"});
      const std::string* sep = b.has(0) ? &need_str(b.get(0), "sep") : nullptr;
      ValueList parts;
      for (auto& p : py_split(s, sep, b.integer(1, -1), name == "rsplit")) parts.emplace_back(std::move(p));
      return Value::list(std::move(parts));
    });
  }
  if (name == "splitlines") {
    return bound(name, [s](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str.splitlines()", {"keepends"});
      if (b.flag(0, false)) render_error("str.splitlines(keepends=True) is not supported by llrt");
      ValueList parts;
      for (auto& p : py_splitlines(s)) parts.emplace_back(std::move(p));
      return Value::list(std::move(parts));
    });
  }
  if (name == "startswith" || name == "endswith") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"prefix"});
      const Value* p = b.get(0);
      if (!p) render_error("str." + name + "() takes at least 1 argument");
      ValueList options = p->is_list_like() && p->kind() == Kind::Tuple ? p->as_list() : ValueList{*p};
      for (const Value& o : options) {
        const std::string& x = need_str(&o, name + " first arg");
        bool hit = name == "startswith" ? s.compare(0, x.size(), x) == 0
                                        : (s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
        if (hit) return Value(true);
      }
      return Value(false);
    });
  }
  auto simple = [name](std::function<Value()> f) { return bound(name, [f, name](CallArgs& a, Evaluator&) {
    if (!a.pos.empty() || !a.kw.empty()) render_error("TypeError: str." + name + "() takes no arguments");
    return f();
  }); };
  if (name == "upper") return simple([s] { return Value(py_upper(s)); });
  if (name == "lower") return simple([s] { return Value(py_lower(s)); });
  if (name == "title") return simple([s] { return Value(py_title(s)); });
  if (name == "capitalize") return simple([s] { return Value(py_capitalize(s)); });
  if (name == "isdigit") return simple([s] { return Value(py_isdigit_str(s)); });
  if (name == "isalpha") return simple([s] { return Value(py_isalpha_str(s)); });
  if (name == "isalnum") return simple([s] { return Value(py_isalnum_str(s)); });
  if (name == "isspace") return simple([s] { return Value(py_isspace_str(s)); });
  if (name == "isupper") return simple([s] { return Value(py_is_cased_all(s, true)); });
  if (name == "islower") return simple([s] { return Value(py_is_cased_all(s, false)); });
  if (name == "replace") {
    return bound(name, [s](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str.replace()", {"old", "new", "count"});
      return Value(py_replace(s, need_str(b.get(0), "replace() argument 1"), need_str(b.get(1), "replace() argument 2"),
                              b.integer(2, -1)));
    });
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      if (a.pos.size() != 1 || !a.kw.empty()) render_error("str." + name + "() with start/end is not supported by llrt");
      const std::string& sub = need_str(&a.pos[0], name + "() argument");
      if (name == "count") {
        if (sub.empty()) return Value(static_cast<int64_t>(utf8_length(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value(n);
      }
      size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
      if (p == std::string::npos) {
        if (name == "index" || name == "rindex") render_error("ValueError: substring not found");
        return Value(int64_t{-1});
      }
      return Value(cp_index(s, p));
    });
  }
  if (name == "join") {
    return bound(name, [s](CallArgs& a, Evaluator&) {
      if (a.pos.size() != 1) render_error("str.join() takes exactly one argument");
      ValueList items = py_iterate(a.pos[0]);
      uint64_t bytes = size_mul(items.empty() ? 0 : items.size() - 1, s.size());
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string())
          render_error("TypeError: sequence item " + std::to_string(i) + ": expected str instance, " + items[i].type_name() + " found");
        bytes = size_add(bytes, items[i].as_string().size());
      }
      std::string out;
      out.reserve(check_string_size(bytes, "str.join()"));
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += s;
        out += items[i].as_string();
      }
      return Value(out);
    });
  }
  if (name == "zfill") {
    return bound(name, [s](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str.zfill()", {"width"});
      int64_t w = b.integer(0, 0), len = static_cast<int64_t>(utf8_length(s));
      if (w <= len) return Value(s);
      check_string_size(size_add(s.size(), count_arg(w - len)), "str.zfill(" + std::to_string(w) + ")");
      size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
      return Value(s.substr(0, sign) + std::string(w - len, '0') + s.substr(sign));
    });
  }
  if (name == "center" || name == "ljust" || name == "rjust") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"width", "fillchar"});
      return Value(pad(s, b.integer(0, 0), b.str(1, " "), name == "center" ? 'c' : name == "ljust" ? 'l' : 'r'));
    });
  }
  if (name == "partition" || name == "rpartition") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"sep"});
      const std::string& sep = need_str(b.get(0), "sep");
      if (sep.empty()) render_error("ValueError: empty separator");
      size_t p = name == "partition" ? s.find(sep) : s.rfind(sep);
      if (p == std::string::npos)
        return name == "partition" ? Value::list({Value(s), Value(""), Value("")}, true)
                                   : Value::list({Value(""), Value(""), Value(s)}, true);
      return Value::list({Value(s.substr(0, p)), Value(sep), Value(s.substr(p + sep.size()))}, true);
    });
  }
  if (name == "removeprefix" || name == "removesuffix") {
    return bound(name, [s, name](CallArgs& a, Evaluator&) {
      ArgBinder b(a, "str." + name + "()", {"affix"});
      const std::string& x = need_str(b.get(0), name + "() argument");
      if (name == "removeprefix") return Value(s.compare(0, x.size(), x) == 0 ? s.substr(x.size()) : s);
      bool ends = s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
      return Value(ends && !x.empty() ? s.substr(0, s.size() - x.size()) : s);
    });
  }
  static const char* unsupported[] = {"format", "format_map", "casefold", "swapcase", "expandtabs", "encode",
                                      "translate", "maketrans", "istitle", "isnumeric", "isdecimal",
                                      "isidentifier", "isprintable", "isascii"};
  for (const char* u : unsupported)
    if (name == u)
      return bound(name, [name](CallArgs&, Evaluator&) -> Value {
        render_error("str." + name + "() is not supported by llrt's chat template engine");
      });
  return no_attribute(Value(s), name);
}

Value dict_method(const Value& d, const std::string& name, bool* found) {
  *found = true;
  auto view = [d](SeqFlavor f) {
    ValueList out;
    for (const auto& [k, v] : d.as_dict().items)
      out.push_back(f == SeqFlavor::DictKeys ? k : f == SeqFlavor::DictValues ? v : Value::list({k, v}, true));
    return Value::sequence(std::move(out), f);
  };
  if (name == "items") return bound(name, [view](CallArgs&, Evaluator&) { return view(SeqFlavor::DictItems); });
  if (name == "keys") return bound(name, [view](CallArgs&, Evaluator&) { return view(SeqFlavor::DictKeys); });
  if (name == "values") return bound(name, [view](CallArgs&, Evaluator&) { return view(SeqFlavor::DictValues); });
  if (name == "copy") return bound(name, [d](CallArgs&, Evaluator&) { return d; });
  if (name == "get") {
    return bound(name, [d](CallArgs& a, Evaluator&) {
      if (a.pos.empty() || a.pos.size() > 2 || !a.kw.empty()) render_error("dict.get() takes 1 or 2 positional arguments");
      const Value* v = d.as_dict().find(a.pos[0]);
      return v ? *v : (a.pos.size() == 2 ? a.pos[1] : Value::none());
    });
  }
  if (name == "pop" || name == "popitem" || name == "update" || name == "setdefault" || name == "clear")
    return unsafe(d, name);
  *found = false;
  return Value();
}

Value list_method(const Value& l, const std::string& name) {
  if (name == "index" || name == "count") {
    return bound(name, [l, name](CallArgs& a, Evaluator&) {
      if (a.pos.size() != 1) render_error(l.type_name() + "." + name + "() with start/stop is not supported by llrt");
      int64_t n = 0, i = 0;
      for (const Value& x : l.as_list()) {
        if (py_equal(x, a.pos[0])) {
          if (name == "index") return Value(i);
          ++n;
        }
        ++i;
      }
      if (name == "index") render_error("ValueError: " + a.pos[0].repr() + " is not in list");
      return Value(n);
    });
  }
  if (name == "copy" && l.kind() == Kind::List) return bound(name, [l](CallArgs&, Evaluator&) { return Value::list(l.as_list()); });
  if (l.kind() == Kind::List && (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
                                 name == "remove" || name == "reverse" || name == "sort" || name == "clear"))
    return unsafe(l, name);
  return no_attribute(l, name);
}

void check_overflow(bool overflow) {
  if (overflow) render_error("integer overflow (llrt's chat templates use 64-bit integers)");
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

[[noreturn]] void undefined_error(const Value& undefined) { throw RenderError(undefined.undefined_hint()); }

Value soft_str(const Value& v) { return v.is_string() ? v : Value(v.to_str()); }

Value python_getattr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::String: return string_method(obj.as_string(), name);
    case Kind::Dict: {
      bool found;
      Value m = dict_method(obj, name, &found);
      return found ? m : no_attribute(obj, name);
    }
    case Kind::List: case Kind::Tuple:
      if (obj.flavor() != SeqFlavor::Plain) return no_attribute(obj, name);
      return list_method(obj, name);
    case Kind::Object: {
      const Value* v = obj.as_object().attrs.find(Value(name));
      return v ? *v : no_attribute(obj, name);
    }
    case Kind::Undefined: undefined_error(obj);
    default: return no_attribute(obj, name);
  }
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_dict()) {
    bool found;
    Value m = dict_method(obj, name, &found);
    if (found) return m;
    const Value* v = obj.as_dict().find(Value(name));
    return v ? *v : no_attribute(obj, name);
  }
  return python_getattr(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  bool int_key = key.is_int() || key.is_bool();
  switch (obj.kind()) {
    case Kind::Dict: {
      if (!(key.is_list_like() && key.kind() == Kind::List) && !key.is_dict())
        if (const Value* v = obj.as_dict().find(key)) return *v;
      break;
    }
    case Kind::List: case Kind::Tuple: {
      if (!int_key || obj.is_generator()) break;
      const ValueList& l = obj.as_list();
      int64_t i = key.as_int(), n = static_cast<int64_t>(l.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return l[static_cast<size_t>(i)];
      return Value::undefined("'" + object_desc(obj) + "' has no element " + key.to_str());
    }
    case Kind::String: {
      if (!int_key) break;
      std::u32string u = utf8_decode(obj.as_string());
      int64_t i = key.as_int(), n = static_cast<int64_t>(u.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value(utf8_encode(std::u32string(1, u[static_cast<size_t>(i)])));
      return Value::undefined("'str object' has no element " + key.to_str());
    }
    case Kind::Undefined: undefined_error(obj);
    default: break;
  }
  if (key.is_string()) {
    Value attr = python_getattr(obj, key.as_string());
    if (!attr.is_undefined()) return attr;
  }
  if (key.is_string()) return no_attribute(obj, key.as_string());
  return Value::undefined("'" + object_desc(obj) + "' has no element " + key.repr());
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  for (const Value* v : {&start_v, &stop_v, &step_v})
    if (!v->is_none() && !v->is_int() && !v->is_bool())
      render_error("TypeError: slice indices must be integers or None or have an __index__ method");
  bool is_str = obj.is_string();
  if (!is_str && !(obj.is_list_like() && !obj.is_generator()))
    return Value::undefined("'" + object_desc(obj) + "' cannot be sliced");
  std::u32string u;
  if (is_str) u = utf8_decode(obj.as_string());
  int64_t len = is_str ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.as_list().size());
  int64_t step = step_v.is_none() ? 1 : step_v.as_int();
  if (step == 0) render_error("ValueError: slice step cannot be zero");
  int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? len : len - 1;
  auto adjust = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t x = v.as_int();
    if (x < 0) { x += len; if (x < lower) x = lower; }
    else if (x > upper) x = upper;
    return x;
  };
  int64_t start = adjust(start_v, step > 0 ? lower : upper);
  int64_t stop = adjust(stop_v, step > 0 ? upper : lower);
  std::u32string su;
  ValueList items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (is_str) su += u[static_cast<size_t>(i)];
    else items.push_back(obj.as_list()[static_cast<size_t>(i)]);
  }
  if (is_str) return Value(utf8_encode(su));
  return Value::list(std::move(items), obj.kind() == Kind::Tuple);
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return 0;
    case Kind::String: return static_cast<int64_t>(utf8_length(v.as_string()));
    case Kind::List: case Kind::Tuple:
      if (v.is_generator()) break;
      return static_cast<int64_t>(v.as_list().size());
    case Kind::Dict: return static_cast<int64_t>(v.as_dict().items.size());
    default: break;
  }
  render_error("TypeError: object of type '" + v.type_name() + "' has no len()");
}

ValueList py_iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::Undefined: return {};
    case Kind::List: case Kind::Tuple:
      charge_work(v.as_list().size(), "iterating");
      return v.as_list();
    case Kind::Dict: {
      charge_work(v.as_dict().items.size(), "iterating");
      ValueList keys;
      for (const auto& kv : v.as_dict().items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      ValueList chars;
      chars.reserve(check_list_size(utf8_length(v.as_string()), v.as_string().size(), "iterating over a string"));
      charge_work(chars.capacity(), "iterating");
      for (char32_t c : utf8_decode(v.as_string())) chars.emplace_back(utf8_encode(std::u32string(1, c)));
      return chars;
    }
    default: render_error("TypeError: '" + v.type_name() + "' object is not iterable");
  }
}

bool py_contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::String:
      if (!item.is_string())
        render_error("TypeError: 'in <string>' requires string as left operand, not " + item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Kind::Dict:
      if ((item.is_list_like() && item.kind() == Kind::List) || item.is_dict())
        render_error("TypeError: unhashable type: '" + item.type_name() + "'");
      return container.as_dict().find(item) != nullptr;
    case Kind::List: case Kind::Tuple:
      for (const Value& x : container.as_list())
        if (py_equal(x, item)) return true;
      return false;
    case Kind::Undefined: return false;
    default: render_error("TypeError: argument of type '" + container.type_name() + "' is not iterable");
  }
}

bool py_less(const Value& a, const Value& b) {
  charge_work(1, "comparisons");
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  if (a.is_number() && b.is_number()) {
    if (a.kind() == Kind::Float || b.kind() == Kind::Float) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 order == code point order
  if (a.is_list_like() && a.kind() == b.kind() && !a.is_generator() && !b.is_generator()) {
    const ValueList &x = a.as_list(), &y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!py_equal(x[i], y[i])) return py_less(x[i], y[i]);
    return x.size() < y.size();
  }
  render_error("TypeError: '<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

int py_compare(const Value& a, const Value& b) {
  if (py_less(a, b)) return -1;
  return py_equal(a, b) ? 0 : 1;
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    const Value sa = soft_str(a), sb = soft_str(b);
    check_string_size(size_add(sa.as_string().size(), sb.as_string().size()), "'~'");
    return Value(sa.as_string() + sb.as_string());
  }
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  bool nums = a.is_number() && b.is_number();
  bool ints = nums && a.kind() != Kind::Float && b.kind() != Kind::Float;
  auto type_error = [&]() -> Value {
    render_error("TypeError: unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  if (op == "+") {
    if (ints) { int64_t r; check_overflow(__builtin_add_overflow(a.as_int(), b.as_int(), &r)); return Value(r); }
    if (nums) return Value(a.as_float() + b.as_float());
    if (a.is_string()) {
      if (!b.is_string()) render_error("TypeError: can only concatenate str (not \"" + b.type_name() + "\") to str");
      check_string_size(size_add(a.as_string().size(), b.as_string().size()), "str + str");
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list_like() && !a.is_generator()) {
      if (b.kind() != a.kind() || b.is_generator())
        render_error("TypeError: can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " + a.type_name());
      ValueList out;
      out.reserve(check_list_size(size_add(a.as_list().size(), b.as_list().size()),
                                  size_add(string_bytes(a.as_list()), string_bytes(b.as_list())), a.type_name() + " + " + a.type_name()));
      out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(out), a.kind() == Kind::Tuple);
    }
    return type_error();
  }
  if (op == "-") {
    if (ints) { int64_t r; check_overflow(__builtin_sub_overflow(a.as_int(), b.as_int(), &r)); return Value(r); }
    if (nums) return Value(a.as_float() - b.as_float());
    return type_error();
  }
  if (op == "*") {
    if (ints) { int64_t r; check_overflow(__builtin_mul_overflow(a.as_int(), b.as_int(), &r)); return Value(r); }
    if (nums) return Value(a.as_float() * b.as_float());
    const Value* seq = (a.is_string() || a.is_list_like()) ? &a : &b;
    const Value* times = seq == &a ? &b : &a;
    if ((seq->is_string() || (seq->is_list_like() && !seq->is_generator())) && (times->is_int() || times->is_bool())) {
      const uint64_t n = count_arg(times->as_int());
      if (seq->is_string()) {
        std::string out;
        out.reserve(check_string_size(size_mul(n, seq->as_string().size()), "str * " + std::to_string(times->as_int())));
        for (uint64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value(out);
      }
      ValueList out;
      out.reserve(check_list_size(size_mul(n, seq->as_list().size()), size_mul(n, string_bytes(seq->as_list())),
                                  seq->type_name() + " * " + std::to_string(times->as_int())));
      for (uint64_t i = 0; i < n; ++i) out.insert(out.end(), seq->as_list().begin(), seq->as_list().end());
      return Value::list(std::move(out), seq->kind() == Kind::Tuple);
    }
    if (seq->is_string() || seq->is_list_like())
      render_error("TypeError: can't multiply sequence by non-int of type '" + times->type_name() + "'");
    return type_error();
  }
  if (op == "/") {
    if (!nums) return type_error();
    if (b.as_float() == 0.0) render_error("ZeroDivisionError: division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (a.is_string() && op == "%") render_error("printf-style string formatting (str % args) is not supported by llrt");
    if (!nums) return type_error();
    if (ints) {
      if (b.as_int() == 0) render_error("ZeroDivisionError: integer division or modulo by zero");
      int64_t q = floor_div(a.as_int(), b.as_int());
      return op == "//" ? Value(q) : Value(a.as_int() - q * b.as_int());
    }
    // CPython float_divmod
    double x = a.as_float(), y = b.as_float();
    if (y == 0.0) render_error(op == "//" ? "ZeroDivisionError: float floor division by zero" : "ZeroDivisionError: float modulo");
    double mod = std::fmod(x, y), div = (x - mod) / y;
    if (mod != 0.0) {
      if ((y < 0) != (mod < 0)) { mod += y; div -= 1.0; }
    } else {
      mod = std::copysign(0.0, y);
    }
    double floordiv;
    if (div != 0.0) {
      floordiv = std::floor(div);
      if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
      floordiv = std::copysign(0.0, x / y);
    }
    return Value(op == "//" ? floordiv : mod);
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t r = 1, base = a.as_int(), e = b.as_int();
      while (e > 0) {  // square-and-multiply; any overflow is an error
        if (e & 1) check_overflow(__builtin_mul_overflow(r, base, &r));
        e >>= 1;
        if (e) check_overflow(__builtin_mul_overflow(base, base, &base));
      }
      return Value(r);
    }
    if (!nums) return type_error();
    if (a.as_float() == 0.0 && b.as_float() < 0) render_error("ZeroDivisionError: 0.0 cannot be raised to a negative power");
    return Value(std::pow(a.as_float(), b.as_float()));
  }
  render_error("internal: unknown operator " + op);
}

}  // namespace llrt::jinja
