// llrt chat templates: the Jinja syntax tree the parser builds and the evaluator walks.
// Every node keeps the byte offset of its first token, so errors can name line and column.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/text/chat/jinja_value.h"

namespace llrt::jinja {

// ----------------------------------------------------------------------------------------------------------------
// Expressions
// ----------------------------------------------------------------------------------------------------------------
enum class ExprKind {
  Literal,    // value
  Name,       // name
  List,       // items (tuple: is_tuple)
  Dict,       // keys / items
  GetAttr,    // obj.name
  GetItem,    // obj[index]
  Slice,      // obj[start:stop:step] (absent parts are null)
  Call,       // callee(args, kwargs)
  Filter,     // operand | name(args, kwargs); operand null inside {% filter %}
  Test,       // operand is name(args, kwargs)
  Unary,      // op: "not", "-", "+"
  Binary,     // op: "or" "and" "+" "-" "*" "/" "//" "%" "**" "~" "in" "not in"
  Compare,    // operand, then (op, rhs) chain: == != < <= > >=
  CondExpr,   // then if cond else otherwise (otherwise may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  size_t pos = 0;
  Value value;                                  // Literal
  std::string name;                             // Name, GetAttr attribute, Filter/Test name, Unary/Binary op
  ExprPtr a, b, c;                              // operand/obj/callee/cond ..., see make_* in the parser
  std::vector<ExprPtr> items;                   // List items, Dict keys, Call/Filter/Test positional args
  std::vector<ExprPtr> values;                  // Dict values
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call/Filter/Test keyword args
  std::vector<std::pair<std::string, ExprPtr>> chain;   // Compare: (op, rhs)
  bool is_tuple = false;                        // List
  bool known = true;                            // Filter/Test: exists (false: error when evaluated)
  int depth = 1;                                // height of this subtree (the parser bounds it)

  Expr(ExprKind k, size_t p) : kind(k), pos(p) {}
};

// ----------------------------------------------------------------------------------------------------------------
// Statements
// ----------------------------------------------------------------------------------------------------------------
enum class StmtKind {
  Text,        // text
  Output,      // {{ expr }}
  If,          // branches (cond, body), else_body
  For,         // targets in iter [if filter] body [else else_body]
  Set,         // targets = expr | ns.attr = expr | block set (body, optional filter)
  Macro,       // name(params) body
  FilterBlock, // {% filter f %} body
  With,        // {% with a = 1 %} body
  Break,
  Continue,
  Generation,  // HF's {% generation %} body {% endgeneration %}: renders the body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  size_t pos = 0;
  std::string text;                                   // Text; Set: namespace attribute (ns.attr) if non-empty
  ExprPtr expr;                                       // Output, For iter, Set value, FilterBlock/Set filter
  ExprPtr filter;                                     // For: `if` condition
  std::vector<std::string> targets;                   // For/Set names (several: tuple unpacking)
  bool tuple_target = false;
  std::vector<std::pair<ExprPtr, Body>> branches;     // If
  Body body, else_body;
  std::string name;                                   // Macro
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro params (default may be null); With assignments

  Stmt(StmtKind k, size_t p) : kind(k), pos(p) {}
};

// A parsed template: the normalized source (for error positions) and its statements.
struct Program {
  std::string source;
  Body body;
};

}  // namespace llrt::jinja
