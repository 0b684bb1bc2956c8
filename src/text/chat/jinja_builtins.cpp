// llrt chat templates: Jinja 3.1 filters and tests, with Hugging Face's tojson override
// (json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)).
// Filters Jinja marks as returning iterators (map, select, reject, selectattr, rejectattr, unique, items,
// batch, reverse of a list) return Generator-flavoured lists: truthy, no len(), not printable - as in Python.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "src/text/chat/jinja_builtins.h"
#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_limits.h"
#include "src/text/chat/jinja_eval.h"
#include "src/text/chat/jinja_unicode.h"

namespace llrt::jinja {

// ---- ArgBinder ---------------------------------------------------------------------------------------------------
ArgBinder::ArgBinder(CallArgs& args, std::string what, std::initializer_list<const char*> names)
    : bound_(names.size(), nullptr) {
  std::vector<const char*> n(names);
  if (args.pos.size() > n.size())
    render_error("TypeError: " + what + " takes at most " + std::to_string(n.size()) + " arguments (" +
                 std::to_string(args.pos.size()) + " given)");
  for (size_t i = 0; i < args.pos.size(); ++i) bound_[i] = &args.pos[i];
  for (auto& kv : args.kw) {
    const auto& k = kv.first;
    auto& v = kv.second;
    auto it = std::find_if(n.begin(), n.end(), [&](const char* x) { return k == x; });
    if (it == n.end()) render_error("TypeError: " + what + " got an unexpected keyword argument '" + k + "'");
    size_t i = static_cast<size_t>(it - n.begin());
    if (bound_[i]) render_error("TypeError: " + what + " got multiple values for argument '" + k + "'");
    bound_[i] = &v;
  }
}

std::string ArgBinder::str(size_t i, const std::string& fallback) const {
  if (!bound_[i]) return fallback;
  if (!bound_[i]->is_string()) render_error("TypeError: expected a string argument, got " + bound_[i]->type_name());
  return bound_[i]->as_string();
}

int64_t ArgBinder::integer(size_t i, int64_t fallback) const {
  if (!bound_[i] || bound_[i]->is_none()) return fallback;
  if (!bound_[i]->is_int() && !bound_[i]->is_bool())
    render_error("TypeError: '" + bound_[i]->type_name() + "' object cannot be interpreted as an integer");
  return bound_[i]->as_int();
}

namespace {

Value generator(ValueList items) { return Value::sequence(std::move(items), SeqFlavor::Generator); }

// Jinja's make_attrgetter: "a.b.0" walks attributes/items; an int-looking part indexes.
Value attr_path(const Value& v, const Value& attribute) {
  if (!attribute.is_string()) return get_item(v, attribute);
  Value cur = v;
  std::string path = attribute.as_string();
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (cur.is_undefined()) undefined_error(cur);
    cur = digits ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value ignore_case(const Value& v, bool case_sensitive) {
  return (!case_sensitive && v.is_string()) ? Value(py_lower(v.as_string())) : v;
}

// ---- filters -----------------------------------------------------------------------------------------------------
Value f_tojson(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "tojson()", {"ensure_ascii", "indent", "separators", "sort_keys"});
  ToJsonOptions o;
  o.ensure_ascii = a.flag(0, false);
  if (a.has(1)) {
    const Value& ind = *a.get(1);
    if (ind.is_string()) { o.indent_is_string = true; o.indent_str = ind.as_string(); }
    else o.indent = static_cast<int>(std::min<uint64_t>(count_arg(a.integer(1, 0)), kMaxStringBytes + 1));  // more is over any limit
  }
  if (a.has(2)) {
    const Value& sep = *a.get(2);
    if (!sep.is_list_like() || sep.as_list().size() != 2 || !sep.as_list()[0].is_string() || !sep.as_list()[1].is_string())
      render_error("tojson(separators=...) needs a (item_separator, key_separator) pair of strings");
    o.item_sep = sep.as_list()[0].as_string();
    o.key_sep = sep.as_list()[1].as_string();
    if (o.item_sep.empty()) render_error("tojson(separators=('', ...)) is not supported by llrt");
  }
  o.sort_keys = a.flag(3, false);
  return Value(to_json(v, o));
}

Value f_trim(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "trim()", {"chars"});
  std::string s = soft_str(v).as_string();
  if (a.has(0)) { std::string chars = a.str(0, ""); return Value(py_strip(s, &chars, StripSide::Both)); }
  return Value(py_strip(s, nullptr, StripSide::Both));
}

Value f_length(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "length()", {});
  return Value(py_len(v));
}

Value f_string(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "string()", {}); return soft_str(v); }
Value f_upper(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "upper()", {}); return Value(py_upper(soft_str(v).as_string())); }
Value f_lower(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "lower()", {}); return Value(py_lower(soft_str(v).as_string())); }
Value f_title(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "title()", {}); return Value(jinja_title(soft_str(v).as_string())); }
Value f_capitalize(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "capitalize()", {}); return Value(py_capitalize(soft_str(v).as_string())); }
Value f_safe(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "safe()", {}); return soft_str(v); }

Value f_escape(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "escape()", {});
  std::string out, in = soft_str(v).as_string();
  uint64_t bytes = in.size();
  for (char c : in) bytes += c == '&' || c == '"' || c == '\'' ? 4 : c == '<' || c == '>' ? 3 : 0;
  out.reserve(check_string_size(bytes, "escape()"));
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(out);
}

Value f_replace(Evaluator& ev, const Value& v, CallArgs& args) {
  ArgBinder a(args, "replace()", {"old", "new", "count"});
  CallArgs call;
  call.pos = {soft_str(a.get_or(0, Value(""))), soft_str(a.get_or(1, Value("")))};
  if (a.has(2)) call.pos.push_back(*a.get(2));
  return ev.call(get_attr(soft_str(v), "replace"), call);
}

Value f_default(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "default()", {"default_value", "boolean"});
  if (v.is_undefined() || (a.flag(1, false) && !v.truthy())) return a.get_or(0, Value(""));
  return v;
}

Value f_first(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "first()", {});
  ValueList items = py_iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "last()", {});
  if (v.is_generator()) render_error("TypeError: 'generator' object is not reversible");
  ValueList items = py_iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_join(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "join()", {"d", "attribute"});
  std::string sep = soft_str(a.get_or(0, Value(""))).as_string(), out;
  ValueList items = py_iterate(v);
  ValueList parts;  // each item as text; the joined size is checked before it is built
  parts.reserve(items.size());
  uint64_t bytes = size_mul(items.empty() ? 0 : items.size() - 1, sep.size());
  for (const Value& x : items) {
    parts.push_back(soft_str(a.has(1) ? attr_path(x, *a.get(1)) : x));
    bytes = size_add(bytes, parts.back().as_string().size());
    check_string_size(bytes, "join()");
  }
  out.reserve(check_string_size(bytes, "join()"));
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i].as_string();
  }
  return Value(out);
}

Value f_list(Evaluator&, const Value& v, CallArgs& args) { ArgBinder a(args, "list()", {}); return Value::list(py_iterate(v)); }

Value f_items(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "items()", {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) render_error("TypeError: Can only get item pairs from a mapping.");
  ValueList out;
  for (const auto& [k, val] : v.as_dict().items) out.push_back(Value::list({k, val}, true));
  return generator(std::move(out));
}

Value f_dictsort(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "dictsort()", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) render_error("TypeError: dictsort requires a mapping");
  bool cs = a.flag(0, false), rev = a.flag(2, false);
  std::string by = a.str(1, "key");
  if (by != "key" && by != "value") render_error("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> items = v.as_dict().items;
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    const Value& l = by == "key" ? x.first : x.second;
    const Value& r = by == "key" ? y.first : y.second;
    return rev ? py_less(ignore_case(r, cs), ignore_case(l, cs)) : py_less(ignore_case(l, cs), ignore_case(r, cs));
  });
  ValueList out;
  for (auto& [k, val] : items) out.push_back(Value::list({k, val}, true));
  return Value::list(std::move(out));
}

Value f_sort(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "sort()", {"reverse", "case_sensitive", "attribute"});
  bool rev = a.flag(0, false), cs = a.flag(1, false);
  ValueList items = py_iterate(v);
  auto key = [&](const Value& x) { return ignore_case(a.has(2) ? attr_path(x, *a.get(2)) : x, cs); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return rev ? py_less(key(y), key(x)) : py_less(key(x), key(y));
  });
  return Value::list(std::move(items));
}

Value min_max(const Value& v, CallArgs& args, bool want_max) {
  ArgBinder a(args, want_max ? "max()" : "min()", {"case_sensitive", "attribute"});
  bool cs = a.flag(0, false);
  ValueList items = py_iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& x) { return ignore_case(a.has(1) ? attr_path(x, *a.get(1)) : x, cs); };
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i)
    if (want_max ? py_less(key(items[best]), key(items[i])) : py_less(key(items[i]), key(items[best]))) best = i;
  return items[best];
}
Value f_max(Evaluator&, const Value& v, CallArgs& args) { return min_max(v, args, true); }
Value f_min(Evaluator&, const Value& v, CallArgs& args) { return min_max(v, args, false); }

Value f_unique(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "unique()", {"case_sensitive", "attribute"});
  bool cs = a.flag(0, false);
  ValueList seen, out;
  for (const Value& x : py_iterate(v)) {
    Value k = ignore_case(a.has(1) ? attr_path(x, *a.get(1)) : x, cs);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, k); })) {
      seen.push_back(k);
      out.push_back(x);
    }
  }
  return generator(std::move(out));
}

Value f_reverse(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "reverse()", {});
  if (v.is_string()) { std::u32string u = utf8_decode(v.as_string()); std::reverse(u.begin(), u.end()); return Value(utf8_encode(u)); }
  ValueList items = py_iterate(v);
  std::reverse(items.begin(), items.end());
  return generator(std::move(items));
}

Value f_sum(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "sum()", {"attribute", "start"});
  Value total = a.get_or(1, Value(int64_t{0}));
  for (const Value& x : py_iterate(v)) total = binary_op("+", total, a.has(0) ? attr_path(x, *a.get(0)) : x);
  return total;
}

Value f_abs(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "abs()", {});
  if (v.kind() == Kind::Float) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
  render_error("TypeError: bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_round(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "round()", {"precision", "method"});
  int64_t prec = a.integer(0, 0);
  std::string method = a.str(1, "common");
  if (method != "common" && method != "ceil" && method != "floor")
    render_error("FilterArgumentError: method must be common, ceil or floor");
  if (!v.is_number()) render_error("TypeError: type " + v.type_name() + " doesn't define __round__ method");
  if (method == "common") {
    if (v.kind() != Kind::Float && prec >= 0) return Value(v.as_int());
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::clamp<int64_t>(prec, 0, 300)), v.as_float());
    if (prec < 0) render_error("round() with a negative precision is not supported by llrt");
    return Value(std::strtod(buf, nullptr));  // glibc printf rounds the exact binary value half-to-even, like Python
  }
  double scale = std::pow(10.0, static_cast<double>(prec));
  double r = method == "ceil" ? std::ceil(v.as_float() * scale) : std::floor(v.as_float() * scale);
  return Value(r / scale);
}

Value f_int(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "int()", {"default", "base"});
  Value dflt = a.get_or(0, Value(int64_t{0}));
  int64_t base = a.integer(1, 10);
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.kind() == Kind::Float) return std::isfinite(v.as_float()) ? Value(static_cast<int64_t>(v.as_float())) : dflt;
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), nullptr, StripSide::Both);
    std::string digits;
    for (char c : s) if (c != '_') digits += c;
    char* end = nullptr;
    errno = 0;
    long long r = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
    if (!digits.empty() && end && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(r));
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0' && std::isfinite(d)) return Value(static_cast<int64_t>(d));
  }
  return dflt;
}

Value f_float(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "float()", {"default"});
  Value dflt = a.get_or(0, Value(0.0));
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), nullptr, StripSide::Both);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value(d);
  }
  return dflt;
}

Value call_filter_by_name(Evaluator& ev, const std::string& name, const Value& v, const ValueList& extra) {
  FilterFn f = find_filter(name);
  if (!f) render_error("No filter named '" + name + "'.");
  CallArgs a;
  a.pos = extra;
  return f(ev, v, a);
}

bool call_test_by_name(Evaluator& ev, const std::string& name, const Value& v, const ValueList& extra) {
  TestFn t = find_test(name);
  if (!t) render_error("No test named '" + name + "'.");
  CallArgs a;
  a.pos = extra;
  return t(ev, v, a);
}

Value f_map(Evaluator& ev, const Value& v, CallArgs& args) {
  ValueList items = py_iterate(v);
  ListBuilder out("map()");
  if (args.pos.empty()) {
    ArgBinder a(args, "map()", {"attribute", "default"});
    if (!a.get(0)) render_error("map() needs a filter name or attribute=");
    for (const Value& x : items) {
      Value r = attr_path(x, *a.get(0));
      out.push(r.is_undefined() && a.get(1) ? *a.get(1) : r);
    }
    return generator(out.take());
  }
  if (!args.kw.empty()) render_error("map(filter, ...) with keyword arguments is not supported by llrt");
  if (!args.pos[0].is_string()) render_error("map() filter name must be a string");
  ValueList extra(args.pos.begin() + 1, args.pos.end());
  for (const Value& x : items) out.push(call_filter_by_name(ev, args.pos[0].as_string(), x, extra));
  return generator(out.take());
}

Value select_reject(Evaluator& ev, const Value& v, CallArgs& args, bool select, bool by_attr) {
  if (!args.kw.empty()) render_error("select/reject filters with keyword arguments are not supported by llrt");
  size_t i = 0;
  Value attribute;
  if (by_attr) {
    if (args.pos.empty()) render_error("selectattr/rejectattr need an attribute name");
    attribute = args.pos[i++];
  }
  std::string test;
  if (i < args.pos.size()) {
    if (!args.pos[i].is_string()) render_error("test name must be a string");
    test = args.pos[i++].as_string();
  }
  ValueList extra(args.pos.begin() + static_cast<std::ptrdiff_t>(i), args.pos.end()), out;
  for (const Value& x : py_iterate(v)) {
    Value subject = by_attr ? attr_path(x, attribute) : x;
    bool ok = test.empty() ? subject.truthy() : call_test_by_name(ev, test, subject, extra);
    if (ok == select) out.push_back(x);
  }
  return generator(std::move(out));
}
Value f_select(Evaluator& ev, const Value& v, CallArgs& a) { return select_reject(ev, v, a, true, false); }
Value f_reject(Evaluator& ev, const Value& v, CallArgs& a) { return select_reject(ev, v, a, false, false); }
Value f_selectattr(Evaluator& ev, const Value& v, CallArgs& a) { return select_reject(ev, v, a, true, true); }
Value f_rejectattr(Evaluator& ev, const Value& v, CallArgs& a) { return select_reject(ev, v, a, false, true); }

Value f_batch(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "batch()", {"linecount", "fill_with"});
  int64_t n = a.integer(0, 0);
  if (n <= 0) render_error("batch() needs a positive line count");
  ValueList out, cur;
  for (const Value& x : py_iterate(v)) {
    cur.push_back(x);
    if (static_cast<int64_t>(cur.size()) == n) { out.push_back(Value::list(std::move(cur))); cur.clear(); }
  }
  if (!cur.empty()) {
    if (a.get(1)) {
      const uint64_t fill = static_cast<uint64_t>(n) - cur.size();
      cur.reserve(check_list_size(static_cast<uint64_t>(n), size_add(string_bytes(cur), size_mul(fill, a.get(1)->is_string() ? a.get(1)->as_string().size() : 0)),
                                  "batch(" + std::to_string(n) + ", fill_with)"));
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*a.get(1));
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return generator(std::move(out));
}

Value f_indent(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "indent()", {"width", "first", "blank"});
  const bool str_width = a.get(0) && a.get(0)->is_string();
  const uint64_t width = str_width ? a.get(0)->as_string().size() : count_arg(a.integer(0, 4));
  const bool blank = a.flag(2, false), first = a.flag(1, false);
  std::string s = soft_str(v).as_string() + "\n";
  std::vector<std::string> lines = py_splitlines(s);
  // How many indents the result holds, so its size is checked before the indent is built.
  uint64_t n = first ? 1 : 0;
  for (size_t i = 1; i < lines.size(); ++i) n += blank || !lines[i].empty() ? 1 : 0;
  check_string_size(size_add(s.size(), size_mul(width, n)), "indent(" + std::to_string(width) + ")");
  const std::string ind = str_width ? a.get(0)->as_string() : std::string(n ? static_cast<size_t>(width) : 0, ' ');
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += '\n';
      if (!lines[i].empty()) rv += ind;
      rv += lines[i];
    }
  }
  if (first) rv = ind + rv;
  return Value(rv);
}

Value f_center(Evaluator& ev, const Value& v, CallArgs& args) {
  ArgBinder a(args, "center()", {"width"});
  CallArgs c;
  c.pos = {Value(a.integer(0, 80))};
  return ev.call(get_attr(soft_str(v), "center"), c);
}

Value f_truncate(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "truncate()", {"length", "killwords", "end", "leeway"});
  std::u32string s = utf8_decode(soft_str(v).as_string());
  int64_t length = a.integer(0, 255), leeway = a.integer(3, 5);
  std::u32string end = utf8_decode(a.str(2, "..."));
  if (length < static_cast<int64_t>(end.size())) render_error("expected length >= " + std::to_string(end.size()));
  if (leeway < 0) render_error("expected leeway >= 0");
  if (static_cast<uint64_t>(s.size()) <= size_add(count_arg(length), count_arg(leeway))) return Value(utf8_encode(s));
  std::u32string head = s.substr(0, static_cast<size_t>(length) - end.size());
  if (!a.flag(1, false)) {
    size_t sp = head.rfind(U' ');
    if (sp != std::u32string::npos) head = head.substr(0, sp);
  }
  return Value(utf8_encode(head + end));
}

Value f_wordcount(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "wordcount()", {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(soft_str(v).as_string())) {
    std::string one = utf8_encode(std::u32string(1, c));
    bool w = c == '_' || py_isalnum_str(one);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_attr(Evaluator&, const Value& v, CallArgs& args) {
  ArgBinder a(args, "attr()", {"name"});
  return python_getattr(v, a.str(0, ""));
}

Value f_unsupported(Evaluator&, const Value&, CallArgs&) {
  render_error("this Jinja filter is not supported by llrt's chat template engine");
}

// ---- tests -------------------------------------------------------------------------------------------------------
bool t_defined(Evaluator&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Evaluator&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Evaluator&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Evaluator&, const Value& v, CallArgs&) { return v.is_bool(); }
bool t_true(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Evaluator&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Evaluator&, const Value& v, CallArgs&) { return v.is_int(); }
bool t_float(Evaluator&, const Value& v, CallArgs&) { return v.kind() == Kind::Float; }
bool t_number(Evaluator&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Evaluator&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Evaluator&, const Value& v, CallArgs&) { return v.is_dict(); }
bool t_iterable(Evaluator&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list_like() || v.is_dict();
}
bool t_sequence(Evaluator&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_dict() || (v.is_list_like() && !v.is_generator());
}
bool t_callable(Evaluator&, const Value& v, CallArgs&) { return v.is_function(); }
bool t_escaped(Evaluator&, const Value&, CallArgs&) { return false; }

const Value& other(CallArgs& args, const char* name) {
  ArgBinder a(args, name, {"other"});
  if (!a.get(0)) render_error(std::string("TypeError: test '") + name + "' needs an argument");
  return *a.get(0);
}
bool t_sameas(Evaluator&, const Value& v, CallArgs& a) { return v.same_object(other(a, "sameas")); }
bool t_eq(Evaluator&, const Value& v, CallArgs& a) { return py_equal(v, other(a, "eq")); }
bool t_ne(Evaluator&, const Value& v, CallArgs& a) { return !py_equal(v, other(a, "ne")); }
bool t_lt(Evaluator&, const Value& v, CallArgs& a) { return py_less(v, other(a, "lt")); }
bool t_le(Evaluator&, const Value& v, CallArgs& a) { const Value& o = other(a, "le"); return py_less(v, o) || py_equal(v, o); }
bool t_gt(Evaluator&, const Value& v, CallArgs& a) { return py_less(other(a, "gt"), v); }
bool t_ge(Evaluator&, const Value& v, CallArgs& a) { const Value& o = other(a, "ge"); return py_less(o, v) || py_equal(v, o); }
bool t_in(Evaluator&, const Value& v, CallArgs& a) { return py_contains(other(a, "in"), v); }

int64_t need_int(const Value& v, const char* test) {
  if (!v.is_int() && !v.is_bool()) render_error(std::string("TypeError: test '") + test + "' needs an integer");
  return v.as_int();
}
bool t_odd(Evaluator&, const Value& v, CallArgs&) { return need_int(v, "odd") % 2 != 0; }
bool t_even(Evaluator&, const Value& v, CallArgs&) { return need_int(v, "even") % 2 == 0; }
bool t_divisibleby(Evaluator&, const Value& v, CallArgs& a) {
  int64_t d = need_int(other(a, "divisibleby"), "divisibleby");
  if (d == 0) render_error("ZeroDivisionError: integer division or modulo by zero");
  return need_int(v, "divisibleby") % d == 0;
}
bool t_lower(Evaluator&, const Value& v, CallArgs&) { return py_is_cased_all(soft_str(v).as_string(), false); }
bool t_upper(Evaluator&, const Value& v, CallArgs&) { return py_is_cased_all(soft_str(v).as_string(), true); }
bool t_filter(Evaluator&, const Value& v, CallArgs&) { return v.is_string() && find_filter(v.as_string()) != nullptr; }
bool t_test(Evaluator&, const Value& v, CallArgs&) { return v.is_string() && find_test(v.as_string()) != nullptr; }

}  // namespace

FilterFn find_filter(const std::string& name) {
  static const std::map<std::string, FilterFn> filters = {
      {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize}, {"center", f_center},
      {"count", f_length}, {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
      {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"forceescape", f_escape}, {"indent", f_indent},
      {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last}, {"length", f_length}, {"list", f_list},
      {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min}, {"reject", f_reject},
      {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round},
      {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string},
      {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim}, {"truncate", f_truncate},
      {"unique", f_unique}, {"upper", f_upper}, {"wordcount", f_wordcount},
      // Jinja builtins llrt does not implement: known names, RenderError when used.
      {"filesizeformat", f_unsupported}, {"format", f_unsupported}, {"groupby", f_unsupported},
      {"pprint", f_unsupported}, {"random", f_unsupported}, {"slice", f_unsupported}, {"striptags", f_unsupported},
      {"urlencode", f_unsupported}, {"urlize", f_unsupported}, {"wordwrap", f_unsupported},
      {"xmlattr", f_unsupported},
  };
  auto it = filters.find(name);
  return it == filters.end() ? nullptr : it->second;
}

bool is_unsupported_filter(const std::string& name) { return find_filter(name) == f_unsupported; }

TestFn find_test(const std::string& name) {
  static const std::map<std::string, TestFn> tests = {
      {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined}, {"divisibleby", t_divisibleby},
      {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"escaped", t_escaped}, {"even", t_even}, {"false", t_false},
      {"filter", t_filter}, {"float", t_float}, {"ge", t_ge}, {">=", t_ge}, {"gt", t_gt}, {">", t_gt},
      {"greaterthan", t_gt}, {"in", t_in}, {"integer", t_integer}, {"iterable", t_iterable}, {"le", t_le},
      {"<=", t_le}, {"lower", t_lower}, {"lt", t_lt}, {"<", t_lt}, {"lessthan", t_lt}, {"mapping", t_mapping},
      {"ne", t_ne}, {"!=", t_ne}, {"none", t_none}, {"number", t_number}, {"odd", t_odd}, {"sameas", t_sameas},
      {"sequence", t_sequence}, {"string", t_string}, {"test", t_test}, {"true", t_true},
      {"undefined", t_undefined}, {"upper", t_upper},
  };
  auto it = tests.find(name);
  return it == tests.end() ? nullptr : it->second;
}

}  // namespace llrt::jinja
