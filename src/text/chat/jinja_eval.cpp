// llrt chat templates: Jinja evaluator (see jinja_eval.h).
#include "src/text/chat/jinja_eval.h"

#include <locale.h>

#include "src/text/chat/jinja_builtins.h"
#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_limits.h"

namespace llrt::jinja {
namespace {

// ---- globals: what HF's environment adds to Jinja's defaults ---------------------------------------------------
Dict dict_from_args(CallArgs& args, const char* what) {
  if (args.pos.size() > 1) render_error(std::string(what) + " expected at most 1 positional argument");
  Dict d;
  if (!args.pos.empty()) {
    const Value& src = args.pos[0];
    if (src.is_dict()) {
      d = src.as_dict();
    } else {
      for (const Value& pair : py_iterate(src)) {
        if (!pair.is_list_like() || pair.as_list().size() != 2)
          render_error(std::string(what) + ": sequence elements must be (key, value) pairs");
        d.set(pair.as_list()[0], pair.as_list()[1]);
      }
    }
  }
  for (auto& [k, v] : args.kw) d.set(Value(k), v);
  return d;
}

Value fn_range(CallArgs& args, Evaluator&) {
  if (!args.kw.empty() || args.pos.empty() || args.pos.size() > 3) render_error("range() takes 1 to 3 integer arguments");
  for (const Value& v : args.pos)
    if (!v.is_int() && !v.is_bool()) render_error("TypeError: '" + v.type_name() + "' object cannot be interpreted as an integer");
  int64_t start = 0, stop, step = 1;
  if (args.pos.size() == 1) stop = args.pos[0].as_int();
  else { start = args.pos[0].as_int(); stop = args.pos[1].as_int(); }
  if (args.pos.size() == 3) step = args.pos[2].as_int();
  if (step == 0) render_error("ValueError: range() arg 3 must not be zero");
  ValueList out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.size() >= 100000) render_error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    out.emplace_back(i);
  }
  return Value::sequence(std::move(out), SeqFlavor::Range);
}

Value fn_namespace(CallArgs& args, Evaluator&) {
  auto obj = std::make_shared<Object>();
  obj->type_name = "Namespace";
  obj->mutable_attrs = true;
  obj->attrs = dict_from_args(args, "namespace()");
  for (const auto& [k, v] : obj->attrs.items)
    if (k.is_string() && !k.as_string().empty() && k.as_string()[0] == '_')
      render_error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got " + k.repr() +
                   ". Please rename the attribute.");
  return Value::object(obj);
}

Value fn_raise_exception(CallArgs& args, Evaluator&) {
  ArgBinder a(args, "raise_exception()", {"message"});
  if (!a.get(0)) render_error("raise_exception() missing 1 required positional argument: 'message'");
  throw RaisedError(a.get(0)->to_str());
}

Value fn_strftime_now(CallArgs& args, Evaluator& ev) {
  ArgBinder a(args, "strftime_now()", {"format"});
  if (!a.get(0) || !a.get(0)->is_string()) render_error("strftime_now() needs a format string");
  static locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
  const std::string& fmt = a.get(0)->as_string();
  if (fmt.empty()) return Value("");
  std::vector<char> buf(check_string_size(size_add(size_mul(fmt.size(), 16), 256), "strftime_now()"));
  size_t n = strftime_l(buf.data(), buf.size(), fmt.c_str(), &ev.options().now, c_locale);
  if (n == 0) render_error("strftime_now(): formatted date too long or empty");
  return Value(std::string(buf.data(), n));
}

Value fn_joiner(CallArgs& args, Evaluator&) {
  ArgBinder a(args, "joiner()", {"sep"});
  std::string sep = a.str(0, ", ");
  auto used = std::make_shared<bool>(false);
  return Value::function("joiner", [sep, used](CallArgs&, Evaluator&) {
    if (!*used) { *used = true; return Value(""); }
    return Value(sep);
  });
}

Value fn_unsupported(const std::string& name) {
  return Value::function(name, [name](CallArgs&, Evaluator&) -> Value {
    render_error("the global '" + name + "' is not supported by llrt's chat template engine");
  });
}

Value make_loop(const ValueList& items, size_t i, std::shared_ptr<Value> last_changed) {
  auto obj = std::make_shared<Object>();
  obj->type_name = "LoopContext";
  int64_t n = static_cast<int64_t>(items.size()), k = static_cast<int64_t>(i);
  Dict& d = obj->attrs;
  d.set("index", Value(k + 1));
  d.set("index0", Value(k));
  d.set("revindex", Value(n - k));
  d.set("revindex0", Value(n - k - 1));
  d.set("first", Value(k == 0));
  d.set("last", Value(k == n - 1));
  d.set("length", Value(n));
  d.set("depth", Value(1));
  d.set("depth0", Value(0));
  d.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
  d.set("nextitem", i + 1 < items.size() ? items[i + 1] : Value::undefined("there is no next item"));
  d.set("cycle", Value::function("loop.cycle", [k](CallArgs& args, Evaluator&) {
    if (args.pos.empty()) render_error("no items for cycling given");
    return args.pos[static_cast<size_t>(k) % args.pos.size()];
  }));
  d.set("changed", Value::function("loop.changed", [last_changed](CallArgs& args, Evaluator&) {
    Value now = Value::list(args.pos);
    if (!last_changed->is_undefined() && py_equal(*last_changed, now)) return Value(false);
    *last_changed = now;
    return Value(true);
  }));
  return Value::object(obj);
}

}  // namespace

Evaluator::Evaluator(const Program& program, const Dict& variables, EvalOptions options)
    : program_(program), opts_(options) {
  auto globals = std::make_shared<Frame>();
  (*globals)["range"] = Value::function("range", fn_range);
  (*globals)["dict"] = Value::function("dict", [](CallArgs& a, Evaluator&) { return Value::dict(dict_from_args(a, "dict()")); });
  (*globals)["namespace"] = Value::function("namespace", fn_namespace);
  (*globals)["joiner"] = Value::function("joiner", fn_joiner);
  (*globals)["cycler"] = fn_unsupported("cycler");
  (*globals)["lipsum"] = fn_unsupported("lipsum");
  (*globals)["raise_exception"] = Value::function("raise_exception", fn_raise_exception);
  (*globals)["strftime_now"] = Value::function("strftime_now", fn_strftime_now);
  auto vars = std::make_shared<Frame>();
  for (const auto& [k, v] : variables.items) (*vars)[k.as_string()] = v;
  scope_ = {globals, vars};
}

Evaluator::~Evaluator() {
  for (auto& f : captured_frames_) f->clear();
}

std::string Evaluator::render() {
  t_work_units = 0;  // the element-visit meter of jinja_limits.h, per render
  std::string out;
  exec(program_.body, out);
  return out;
}

// ---- scopes ------------------------------------------------------------------------------------------------------
Value Evaluator::lookup(const std::string& name) const {
  for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
    auto f = (*it)->find(name);
    if (f != (*it)->end()) return f->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Evaluator::assign(const std::string& name, Value v) { (*scope_.back())[name] = std::move(v); }

void Evaluator::unpack_assign(const std::vector<std::string>& names, bool tuple, const Value& v) {
  if (!tuple) { assign(names[0], v); return; }
  if (v.is_undefined()) undefined_error(v);
  ValueList items = py_iterate(v);
  if (items.size() != names.size())
    render_error("ValueError: cannot unpack " + std::to_string(items.size()) + " values into " +
                 std::to_string(names.size()) + " names");
  for (size_t i = 0; i < names.size(); ++i) assign(names[i], items[i]);
}

std::string Evaluator::capture(const Body& body) {
  scope_.push_back(std::make_shared<Frame>());
  std::string out;
  try {
    exec(body, out);
  } catch (...) {
    scope_.pop_back();
    throw;
  }
  scope_.pop_back();
  return out;
}

// ---- statements --------------------------------------------------------------------------------------------------
// 2 million steps (about a second): the real templates take tens to a few thousand per message.
constexpr uint64_t kMaxSteps = 2'000'000;
constexpr size_t kMaxOutputBytes = size_t(64) << 20;  // 64 MiB of rendered text

void Evaluator::step() {
  if (++steps_ > kMaxSteps)
    render_error("the template does too much work (over 2 million statements and loop iterations): giving up");
}

void Evaluator::check_output(const std::string& out) {
  if (out.size() > kMaxOutputBytes) render_error("the rendered text exceeds 64 MiB: giving up");
}

Evaluator::Flow Evaluator::exec(const Body& body, std::string& out) {
  for (const StmtPtr& s : body) {
    Flow f = exec_stmt(*s, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec_stmt(const Stmt& s, std::string& out) {
  try {
    step();
    switch (s.kind) {
      case StmtKind::Text: out += s.text; check_output(out); return Flow::Normal;
      case StmtKind::Output: out += eval(*s.expr).to_str(); check_output(out); return Flow::Normal;
      case StmtKind::If:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond).truthy()) return exec(body, out);
        return exec(s.else_body, out);
      case StmtKind::For: return exec_for(s, out);
      case StmtKind::Set: exec_set(s); return Flow::Normal;
      case StmtKind::Macro: define_macro(s); return Flow::Normal;
      case StmtKind::FilterBlock: {
        Value text(capture(s.body));
        out += eval_filter(*s.expr, &text).to_str();
        return Flow::Normal;
      }
      case StmtKind::With: {
        auto frame = std::make_shared<Frame>();
        for (const auto& [name, expr] : s.params) (*frame)[name] = eval(*expr);
        scope_.push_back(frame);
        Flow f;
        try { f = exec(s.body, out); } catch (...) { scope_.pop_back(); throw; }
        scope_.pop_back();
        return f;
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
      case StmtKind::Generation: return exec(s.body, out);
    }
  } catch (RenderError& e) {
    if (e.pos == kNoPos) e.pos = s.pos;
    throw;
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s, std::string& out) {
  Value iterable = eval(*s.expr);
  ValueList items = py_iterate(iterable);
  if (s.filter) {
    ValueList kept;
    for (const Value& item : items) {
      step();
      scope_.push_back(std::make_shared<Frame>());
      bool keep;
      try {
        unpack_assign(s.targets, s.tuple_target, item);
        keep = eval(*s.filter).truthy();
      } catch (...) { scope_.pop_back(); throw; }
      scope_.pop_back();
      if (keep) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body, out);
  auto last_changed = std::make_shared<Value>();
  for (size_t i = 0; i < items.size(); ++i) {
    step();
    scope_.push_back(std::make_shared<Frame>());
    Flow f;
    try {
      assign("loop", make_loop(items, i, last_changed));
      unpack_assign(s.targets, s.tuple_target, items[i]);
      f = exec(s.body, out);
    } catch (...) { scope_.pop_back(); throw; }
    scope_.pop_back();
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

void Evaluator::exec_set(const Stmt& s) {
  if (!s.text.empty()) {  // {% set ns.attr = value %}
    Value ns = lookup(s.targets[0]);
    if (ns.is_undefined()) undefined_error(ns);
    if (!ns.is_object() || !ns.as_object().mutable_attrs)
      render_error("Cannot assign attribute on non-namespace object");
    if (s.text[0] == '_')
      render_error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" + s.text + "'.");
    Value v = eval(*s.expr);
    ns.as_object().attrs.set(Value(s.text), std::move(v));
    return;
  }
  if (!s.body.empty() || !s.expr) {  // block set
    Value text(capture(s.body));
    assign(s.targets[0], s.expr ? eval_filter(*s.expr, &text) : text);
    return;
  }
  unpack_assign(s.targets, s.tuple_target, eval(*s.expr));
}

void Evaluator::define_macro(const Stmt& s) {
  const Stmt* macro = &s;
  Scope captured = scope_;
  captured_frames_.insert(captured_frames_.end(), captured.begin(), captured.end());
  assign(s.name, Value::function(s.name, [macro, captured](CallArgs& args, Evaluator& ev) {
    auto frame = std::make_shared<Frame>();
    size_t np = macro->params.size();
    ValueList varargs;
    for (size_t i = 0; i < args.pos.size(); ++i) {
      if (i < np) (*frame)[macro->params[i].first] = args.pos[i];
      else varargs.push_back(args.pos[i]);
    }
    Dict kwargs;
    for (auto& [k, v] : args.kw) {
      bool is_param = false;
      for (const auto& p : macro->params) is_param = is_param || p.first == k;
      if (is_param) (*frame)[k] = v;
      else kwargs.set(Value(k), v);
    }
    if (ev.call_depth_ >= 100) render_error("macro '" + macro->name + "': maximum recursion depth exceeded");
    Scope saved = std::move(ev.scope_);
    ++ev.call_depth_;
    ev.scope_ = captured;
    ev.scope_.push_back(frame);
    std::string out;
    try {
      for (const auto& [name, def] : macro->params)
        if (!frame->count(name))
          (*frame)[name] = def ? ev.eval(*def) : Value::undefined("parameter '" + name + "' was not provided");
      (*frame)["varargs"] = Value::list(std::move(varargs), true);
      (*frame)["kwargs"] = Value::dict(std::move(kwargs));
      ev.exec(macro->body, out);
    } catch (...) {
      ev.scope_ = std::move(saved);
      --ev.call_depth_;
      throw;
    }
    ev.scope_ = std::move(saved);
    --ev.call_depth_;
    return Value(std::move(out));
  }));
}

// ---- expressions -------------------------------------------------------------------------------------------------
Value Evaluator::eval(const Expr& e) {
  try {
    return eval_inner(e);
  } catch (RenderError& err) {
    if (err.pos == kNoPos) err.pos = e.pos;
    throw;
  }
}

CallArgs Evaluator::eval_args(const Expr& e) {
  CallArgs args;
  for (const ExprPtr& a : e.items) args.pos.push_back(eval(*a));
  for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v));
  return args;
}

Value Evaluator::call(const Value& callee, CallArgs& args) {
  if (callee.is_function()) return callee.as_function().fn(args, *this);
  if (callee.is_undefined()) undefined_error(callee);
  render_error("TypeError: '" + callee.type_name() + "' object is not callable");
}

Value Evaluator::eval_filter(const Expr& e, const Value* subject) {
  // In a filter chain `x|a|b` the node for b has operand `x|a`; {% filter %} and block set pass the text.
  Value operand;
  if (!e.a) {
    if (!subject) render_error("internal: filter without operand");
    operand = *subject;
  } else if (subject && e.a->kind == ExprKind::Filter) {
    operand = eval_filter(*e.a, subject);
  } else {
    operand = eval(*e.a);
  }
  if (!e.known) render_error("No filter named '" + e.name + "' found.");
  if (is_unsupported_filter(e.name))
    render_error("the '" + e.name + "' filter is not supported by llrt's chat template engine");
  CallArgs args = eval_args(e);
  return find_filter(e.name)(*this, operand, args);
}

Value Evaluator::eval_compare(const Expr& e) {
  Value lhs = eval(*e.a);
  for (const auto& [op, rhs_expr] : e.chain) {
    Value rhs = eval(*rhs_expr);
    bool r;
    if (op == "==") r = py_equal(lhs, rhs);
    else if (op == "!=") r = !py_equal(lhs, rhs);
    else if (op == "<") r = py_less(lhs, rhs);
    else if (op == ">") r = py_less(rhs, lhs);
    else if (op == "<=") r = py_less(lhs, rhs) || py_equal(lhs, rhs);
    else if (op == ">=") r = py_less(rhs, lhs) || py_equal(lhs, rhs);
    else if (op == "in") r = py_contains(rhs, lhs);
    else r = !py_contains(rhs, lhs);  // not in
    if (!r) return Value(false);
    lhs = std::move(rhs);
  }
  return Value(true);
}

Value Evaluator::eval_inner(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: return lookup(e.name);
    case ExprKind::List: {
      ValueList items;
      for (const ExprPtr& i : e.items) items.push_back(eval(*i));
      return Value::list(std::move(items), e.is_tuple);
    }
    case ExprKind::Dict: {
      Dict d;
      for (size_t i = 0; i < e.items.size(); ++i) {
        Value k = eval(*e.items[i]);
        if (k.is_list_like() && k.kind() == Kind::List) render_error("TypeError: unhashable type: 'list'");
        if (k.is_dict()) render_error("TypeError: unhashable type: 'dict'");
        d.set(std::move(k), eval(*e.values[i]));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::GetAttr: {
      Value obj = eval(*e.a);
      if (obj.is_undefined()) undefined_error(obj);
      return get_attr(obj, e.name);
    }
    case ExprKind::GetItem: {
      Value obj = eval(*e.a);
      if (obj.is_undefined()) undefined_error(obj);
      return get_item(obj, eval(*e.b));
    }
    case ExprKind::Slice: {
      Value obj = eval(*e.a);
      if (obj.is_undefined()) undefined_error(obj);
      Value start = e.b ? eval(*e.b) : Value::none();
      Value stop = e.c ? eval(*e.c) : Value::none();
      Value step = e.items.empty() ? Value::none() : eval(*e.items[0]);
      return slice(obj, start, stop, step);
    }
    case ExprKind::Call: {
      Value callee = eval(*e.a);
      CallArgs args = eval_args(e);
      return call(callee, args);
    }
    case ExprKind::Filter: return eval_filter(e, nullptr);
    case ExprKind::Test: {
      Value operand = eval(*e.a);
      if (!e.known) render_error("No test named '" + e.name + "' found.");
      CallArgs args = eval_args(e);
      return Value(find_test(e.name)(*this, operand, args));
    }
    case ExprKind::Unary: {
      Value v = eval(*e.a);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) undefined_error(v);
      if (v.kind() == Kind::Float) return Value(e.name == "-" ? -v.as_float() : v.as_float());
      if (v.is_int() || v.is_bool()) return Value(e.name == "-" ? -v.as_int() : v.as_int());
      render_error("TypeError: bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
    }
    case ExprKind::Binary: {
      if (e.name == "and") {
        Value l = eval(*e.a);
        return l.truthy() ? eval(*e.b) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.a);
        return l.truthy() ? l : eval(*e.b);
      }
      Value l = eval(*e.a);
      Value r = eval(*e.b);
      return binary_op(e.name, l, r);
    }
    case ExprKind::Compare: return eval_compare(e);
    case ExprKind::CondExpr: {
      if (eval(*e.b).truthy()) return eval(*e.a);
      if (e.c) return eval(*e.c);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
    }
  }
  render_error("internal: unknown expression kind");
}

}  // namespace llrt::jinja
