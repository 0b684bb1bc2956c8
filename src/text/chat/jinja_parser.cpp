// llrt chat templates: Jinja parser (see jinja_parser.h).
#include "src/text/chat/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "src/text/chat/jinja_builtins.h"
#include "src/text/chat/jinja_error.h"
#include "src/text/chat/jinja_lexer.h"

namespace llrt::jinja {
namespace {

const char* tok_desc(const Token& t) {
  switch (t.type) {
    case Tok::VarEnd: return "end of print statement";
    case Tok::BlockEnd: return "end of statement block";
    case Tok::Eof: return "end of template";
    default: return nullptr;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (cur().type != Tok::Eof) fail("unexpected token");
    return body;
  }

 private:
  // ---- token helpers ------------------------------------------------------------------------------------------
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) { if (is_op(op)) { next(); return true; } return false; }
  bool skip_name(const char* n) { if (is_name(n)) { next(); return true; } return false; }

  [[noreturn]] void fail(const std::string& msg, size_t pos = kNoPos) const {
    throw SyntaxError(msg, pos == kNoPos ? cur().pos : pos);
  }
  [[noreturn]] void unexpected() const {
    const Token& t = cur();
    if (const char* d = tok_desc(t)) fail(std::string("unexpected '") + d + "'");
    fail("unexpected '" + t.text + "'");
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) {
      if (const char* d = tok_desc(cur())) fail(std::string("expected token '") + op + "', got '" + d + "'");
      fail(std::string("expected token '") + op + "', got '" + cur().text + "'");
    }
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) unexpected();
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd) fail("expected end of statement block, got '" + describe(cur()) + "'");
    next();
  }
  static std::string describe(const Token& t) {
    if (const char* d = tok_desc(t)) return d;
    return t.text;
  }

  // ---- statements ---------------------------------------------------------------------------------------------
  // Parses until a block tag whose name is in `ends` (left unconsumed, positioned at the name) or EOF.
  Body parse_body(std::initializer_list<const char*> ends, const char* innermost = nullptr) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::Eof) {
        if (ends.size() == 0) return body;
        std::string looking;
        for (const char* e : ends) looking += std::string(looking.empty() ? "" : " or ") + "'" + e + "'";
        fail(std::string("unexpected end of template: Jinja was looking for ") + looking +
             "; the innermost block that needs to be closed is '" + innermost + "'");
      }
      if (t.type == Tok::Data) {
        auto s = std::make_unique<Stmt>(StmtKind::Text, t.pos);
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::VarBegin) {
        auto s = std::make_unique<Stmt>(StmtKind::Output, t.pos);
        next();
        s->expr = parse_tuple(true, false);
        if (cur().type != Tok::VarEnd) unexpected();
        next();
        body.push_back(std::move(s));
      } else if (t.type == Tok::BlockBegin) {
        const Token& name = peek();
        if (name.type == Tok::Name)
          for (const char* e : ends)
            if (name.text == e) { next(); return body; }
        next();
        body.push_back(parse_statement());
      } else {
        unexpected();
      }
    }
  }

  StmtPtr parse_statement() {
    DepthGuard guard(*this);
    if (cur().type != Tok::Name) fail("tag name expected");
    size_t pos = cur().pos;
    std::string tag = next().text;
    if (tag == "if") return parse_if(pos);
    if (tag == "for") return parse_for(pos);
    if (tag == "set") return parse_set(pos);
    if (tag == "macro") return parse_macro(pos);
    if (tag == "filter") return parse_filter_block(pos);
    if (tag == "with") return parse_with(pos);
    if (tag == "generation") {
      expect_block_end();
      auto s = std::make_unique<Stmt>(StmtKind::Generation, pos);
      s->body = parse_body({"endgeneration"}, "generation");
      next();
      expect_block_end();
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a for loop", pos);
      expect_block_end();
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, pos);
    }
    static const char* unsupported[] = {"include", "import", "from", "extends", "block", "call", "autoescape",
                                        "do", "trans", "pluralize", "debug"};
    for (const char* u : unsupported)
      if (tag == u) fail("the '" + tag + "' tag is not supported by llrt's chat template engine", pos);
    fail("Encountered unknown tag '" + tag + "'", pos);
  }

  StmtPtr parse_if(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::If, pos);
    bool saved_soft = soft_;
    soft_ = true;
    while (true) {
      ExprPtr cond = parse_tuple(false, false);
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"}, "if");
      s->branches.emplace_back(std::move(cond), std::move(body));
      std::string t = next().text;
      if (t == "elif") continue;
      if (t == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"}, "if");
        next();
      }
      break;
    }
    expect_block_end();
    soft_ = saved_soft;
    return s;
  }

  void parse_targets(Stmt& s) {
    // Names, possibly a tuple: `a`, `a, b`, `(a, b)`.
    bool paren = skip_op("(");
    do {
      s.targets.push_back(expect_name());
      if (!is_op(",")) break;
      next();
      s.tuple_target = true;
    } while (cur().type == Tok::Name);
    if (paren) { expect_op(")"); s.tuple_target = true; }
  }

  StmtPtr parse_for(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::For, pos);
    parse_targets(*s);
    if (!skip_name("in")) fail("expected 'in' in for loop");
    s->expr = parse_tuple(false, false, "recursive");
    bool saved_soft = soft_;
    if (skip_name("if")) s->filter = parse_expression();
    if (is_name("recursive")) fail("recursive for loops are not supported by llrt's chat template engine");
    expect_block_end();
    soft_ = false;  // the loop body is a new (non-soft) frame in Jinja's compiler
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"}, "for");
    --loop_depth_;
    if (is_name("else")) {
      next();
      expect_block_end();
      s->else_body = parse_body({"endfor"}, "for");
    }
    next();  // 'endfor'
    soft_ = saved_soft;
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::Set, pos);
    if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == ".") {
      s->targets.push_back(next().text);
      next();
      s->text = expect_name();  // namespace attribute
    } else {
      parse_targets(*s);
    }
    if (skip_op("=")) {
      s->expr = parse_tuple(true, false);
      expect_block_end();
      return s;
    }
    if (!s->text.empty() || s->tuple_target) fail("block set needs a single name target");
    if (is_op("|")) s->expr = parse_filter_chain(nullptr);
    expect_block_end();
    bool saved_soft = soft_;
    soft_ = false;
    s->body = parse_body({"endset"}, "set");
    soft_ = saved_soft;
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::Macro, pos);
    s->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      std::string p = expect_name();
      ExprPtr def;
      if (skip_op("=")) def = parse_expression();
      s->params.emplace_back(std::move(p), std::move(def));
    }
    next();
    expect_block_end();
    bool saved_soft = soft_;
    int saved_loops = loop_depth_;
    soft_ = false;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"}, "macro");
    soft_ = saved_soft;
    loop_depth_ = saved_loops;
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::FilterBlock, pos);
    s->expr = parse_filter_chain(nullptr, /*first_without_pipe=*/true);
    expect_block_end();
    bool saved_soft = soft_;
    soft_ = false;
    s->body = parse_body({"endfilter"}, "filter");
    soft_ = saved_soft;
    next();
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(size_t pos) {
    auto s = std::make_unique<Stmt>(StmtKind::With, pos);
    while (cur().type != Tok::BlockEnd) {
      if (!s->params.empty()) expect_op(",");
      std::string n = expect_name();
      expect_op("=");
      s->params.emplace_back(std::move(n), parse_expression());
    }
    expect_block_end();
    bool saved_soft = soft_;
    soft_ = false;
    s->body = parse_body({"endwith"}, "with");
    soft_ = saved_soft;
    next();
    expect_block_end();
    return s;
  }

  // ---- expressions --------------------------------------------------------------------------------------------
  ExprPtr make(ExprKind k, size_t pos) { return std::make_unique<Expr>(k, pos); }

  bool tuple_end(const char* extra_end) const {
    const Token& t = cur();
    if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || t.type == Tok::Eof) return true;
    if (t.type == Tok::Op && t.text == ")") return true;
    return extra_end && t.type == Tok::Name && t.text == extra_end;
  }

  // parse_tuple: comma-separated expressions; a single one without comma is returned as is.
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, const char* extra_end = nullptr) {
    size_t pos = cur().pos;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        saw_comma = true;
      }
      if (tuple_end(extra_end)) break;
      items.push_back(with_condexpr ? parse_expression() : parse_or());
      if (!is_op(",")) break;
    }
    if (!saw_comma && items.size() == 1) return std::move(items[0]);
    if (items.empty() && !explicit_parens) fail("Expected an expression, got '" + describe(cur()) + "'");
    auto e = make(ExprKind::List, pos);
    e->items = std::move(items);
    e->is_tuple = true;
    return finish(std::move(e));
  }

  // Guards the recursive descent against stack exhaustion on hostile input (Python's parser has a limit too).
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail("template nests too deeply (more than " + std::to_string(kMaxDepth) + " levels)");
    }
    ~DepthGuard() { --p.depth_; }
  };
  static constexpr int kMaxDepth = 200;

  // Sets e->depth from its children; left-associative chains (a+b+c..., x|f|g..., a.b.c...) are built in loops,
  // so the tree height is checked here too (evaluation and destruction recurse over it).
  ExprPtr finish(ExprPtr e) {
    int d = 0;
    for (const Expr* c : {e->a.get(), e->b.get(), e->c.get()}) if (c) d = std::max(d, c->depth);
    for (const ExprPtr& c : e->items) d = std::max(d, c->depth);
    for (const ExprPtr& c : e->values) d = std::max(d, c->depth);
    for (const auto& kv : e->kwargs) d = std::max(d, kv.second->depth);
    for (const auto& kv : e->chain) d = std::max(d, kv.second->depth);
    e->depth = d + 1;
    if (e->depth > kMaxAstDepth) fail("expression nests too deeply (more than " + std::to_string(kMaxAstDepth) + " levels)", e->pos);
    return e;
  }
  static constexpr int kMaxAstDepth = 400;

  ExprPtr parse_expression() {
    DepthGuard guard(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      size_t pos = cur().pos;
      next();
      bool saved_soft = soft_;
      soft_ = true;
      auto ce = make(ExprKind::CondExpr, pos);
      ce->b = parse_or();
      if (skip_name("else")) ce->c = parse_expression();
      soft_ = saved_soft;
      ce->a = std::move(expr);  // a: value if true, b: condition, c: else value
      expr = finish(std::move(ce));
    }
    return expr;
  }

  ExprPtr binary(const char* op, size_t pos, ExprPtr l, ExprPtr r) {
    auto e = make(ExprKind::Binary, pos);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return finish(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) { size_t p = next().pos; l = binary("or", p, std::move(l), parse_and()); }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) { size_t p = next().pos; l = binary("and", p, std::move(l), parse_not()); }
    return l;
  }
  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      auto e = make(ExprKind::Unary, next().pos);
      e->name = "not";
      e->a = parse_not();
      return finish(std::move(e));
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    size_t pos = cur().pos;
    ExprPtr l = parse_math1();
    std::vector<std::pair<std::string, ExprPtr>> chain;
    while (true) {
      if (cur().type == Tok::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                    cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        std::string op = next().text;
        chain.emplace_back(op, parse_math1());
      } else if (is_name("in")) {
        next();
        chain.emplace_back("in", parse_math1());
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        next();
        next();
        chain.emplace_back("not in", parse_math1());
      } else {
        break;
      }
    }
    if (chain.empty()) return l;
    auto e = make(ExprKind::Compare, pos);
    e->a = std::move(l);
    e->chain = std::move(chain);
    return finish(std::move(e));
  }
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      std::string op = t.text;
      l = binary(op == "+" ? "+" : "-", t.pos, std::move(l), parse_concat());
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) { size_t p = next().pos; l = binary("~", p, std::move(l), parse_math2()); }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      std::string op = t.text;
      l = binary(op == "*" ? "*" : op == "/" ? "/" : op == "//" ? "//" : "%", t.pos, std::move(l), parse_pow());
    }
    return l;
  }
  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) { size_t p = next().pos; l = binary("**", p, std::move(l), parse_unary(true)); }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      auto e = make(ExprKind::Unary, t.pos);
      e->name = t.text == "-" ? "-" : "+";
      e->a = parse_unary(false);
      node = finish(std::move(e));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    size_t pos = t.pos;
    if (t.type == Tok::Name) {
      next();
      const std::string& n = t.text;
      if (n == "true" || n == "True") { auto e = make(ExprKind::Literal, pos); e->value = Value(true); return e; }
      if (n == "false" || n == "False") { auto e = make(ExprKind::Literal, pos); e->value = Value(false); return e; }
      if (n == "none" || n == "None") { auto e = make(ExprKind::Literal, pos); e->value = Value::none(); return e; }
      auto e = make(ExprKind::Name, pos);
      e->name = n;
      return e;
    }
    if (t.type == Tok::String) {
      std::string s;
      while (cur().type == Tok::String) s += next().text;  // adjacent literals concatenate
      auto e = make(ExprKind::Literal, pos);
      e->value = Value(std::move(s));
      return e;
    }
    if (t.type == Tok::Int || t.type == Tok::Float) {
      next();
      auto e = make(ExprKind::Literal, pos);
      e->value = t.type == Tok::Int ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(true, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      next();
      auto e = make(ExprKind::List, pos);
      while (!is_op("]")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("]")) break;
        e->items.push_back(parse_expression());
      }
      next();
      return finish(std::move(e));
    }
    if (is_op("{")) {
      next();
      auto e = make(ExprKind::Dict, pos);
      while (!is_op("}")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("}")) break;
        e->items.push_back(parse_expression());
        expect_op(":");
        e->values.push_back(parse_expression());
      }
      next();
      return finish(std::move(e));
    }
    unexpected();
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        size_t pos = next().pos;
        if (cur().type == Tok::Name) {
          auto e = make(ExprKind::GetAttr, pos);
          e->a = std::move(node);
          e->name = next().text;
          node = finish(std::move(e));
        } else if (cur().type == Tok::Int) {
          auto e = make(ExprKind::GetItem, pos);
          e->a = std::move(node);
          e->b = make(ExprKind::Literal, cur().pos);
          e->b->value = Value(next().int_value);
          node = finish(std::move(e));
        } else {
          fail("expected name or number after '.'");
        }
      } else if (is_op("[")) {
        node = finish(parse_subscript(std::move(node)));
      } else if (is_op("(")) {
        auto e = make(ExprKind::Call, cur().pos);
        e->a = std::move(node);
        parse_call_args(*e);
        node = finish(std::move(e));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    size_t pos = next().pos;  // '['
    auto slice_part = [&]() -> ExprPtr {
      if (is_op(":") || is_op("]")) return nullptr;
      return parse_expression();
    };
    ExprPtr first = slice_part();
    if (!is_op(":")) {
      if (!first) fail("expected an index expression");
      if (is_op(",")) fail("tuple subscripts (x[a, b]) are not supported by llrt's chat template engine");
      expect_op("]");
      auto e = make(ExprKind::GetItem, pos);
      e->a = std::move(node);
      e->b = std::move(first);
      return e;
    }
    next();
    auto e = make(ExprKind::Slice, pos);
    e->a = std::move(node);
    e->b = std::move(first);
    e->c = slice_part();
    if (skip_op(":")) {
      ExprPtr step = slice_part();
      if (step) e->items.push_back(std::move(step));
    }
    expect_op("]");
    return e;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.items.empty() || !e.kwargs.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args / **kwargs in calls are not supported by llrt's chat template engine");
      if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) fail("positional argument after keyword argument");
        e.items.push_back(parse_expression());
      }
    }
    next();
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) node = parse_filter_chain(std::move(node));
      else if (is_name("is")) node = parse_test(std::move(node));
      else if (is_op("(")) {
        auto e = make(ExprKind::Call, cur().pos);
        e->a = std::move(node);
        parse_call_args(*e);
        node = finish(std::move(e));
      } else return node;
    }
  }

  // One or more `| name(args)`; operand null for {% filter %} / block set.
  ExprPtr parse_filter_chain(ExprPtr node, bool first_without_pipe = false) {
    bool first = true;
    while (is_op("|") || (first && first_without_pipe)) {
      if (!(first && first_without_pipe)) next();
      first = false;
      size_t pos = cur().pos;
      std::string name = expect_name();
      while (is_op(".")) { next(); name += '.'; name += expect_name(); }
      auto e = make(ExprKind::Filter, pos);
      e->name = name;
      e->a = std::move(node);
      if (is_op("(")) parse_call_args(*e);
      e->known = find_filter(name) != nullptr;
      if (!e->known && !soft_) fail("No filter named '" + name + "'", pos);
      node = finish(std::move(e));
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    size_t pos = next().pos;  // 'is'
    bool negated = skip_name("not");
    std::string name = expect_name();
    while (is_op(".")) { next(); name += '.'; name += expect_name(); }
    auto e = make(ExprKind::Test, pos);
    e->name = name;
    e->a = std::move(node);
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      e->items.push_back(parse_postfix(parse_primary()));
    }
    e->known = find_test(name) != nullptr;
    if (!e->known && !soft_) fail("No test named '" + name + "'", pos);
    if (!negated) return finish(std::move(e));
    auto n = make(ExprKind::Unary, pos);
    n->name = "not";
    n->a = finish(std::move(e));
    return finish(std::move(n));
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  bool soft_ = false;  // inside an if/condexpr: unknown filters/tests fail at run time only
  int loop_depth_ = 0;
};

}  // namespace

Program parse_template(const std::string& source) {
  Program p;
  p.source = normalize_source(source);
  p.body = Parser(tokenize(p.source)).parse_all();
  return p;
}

}  // namespace llrt::jinja
