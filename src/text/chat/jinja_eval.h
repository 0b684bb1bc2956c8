// llrt chat templates: Jinja evaluator (Program + variables -> text).
//
// Scoping follows Jinja2: the template's top level and {% if %} share one scope; each for-loop iteration,
// macro call, {% with %} and block set opens a new one (so `set` inside a loop does not leak out - templates
// use namespace() for that). Names resolve innermost-first, then template variables, then globals
// (range, dict, namespace, joiner, cycler, raise_exception, strftime_now). Output is concatenated strings;
// {{ x }} prints Python str(x).
#pragma once
#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/text/chat/jinja_ast.h"
#include "src/text/chat/jinja_value.h"

namespace llrt::jinja {

struct EvalOptions {
  std::tm now{};  // what strftime_now() formats (Python: datetime.now())
};

class Evaluator {
 public:
  using Frame = std::unordered_map<std::string, Value>;
  using Scope = std::vector<std::shared_ptr<Frame>>;

  Evaluator(const Program& program, const Dict& variables, EvalOptions options);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;
  std::string render();

  // Used by builtins.
  Value call(const Value& callee, CallArgs& args);
  const EvalOptions& options() const { return opts_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body& body, std::string& out);
  Flow exec_stmt(const Stmt& s, std::string& out);
  Flow exec_for(const Stmt& s, std::string& out);
  void exec_set(const Stmt& s);
  void define_macro(const Stmt& s);
  Value eval(const Expr& e);
  Value eval_inner(const Expr& e);
  Value eval_compare(const Expr& e);
  Value eval_filter(const Expr& e, const Value* subject);
  CallArgs eval_args(const Expr& e);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  void unpack_assign(const std::vector<std::string>& names, bool tuple, const Value& v);
  std::string capture(const Body& body);

  const Program& program_;
  EvalOptions opts_;
  int call_depth_ = 0;  // macro recursion (Python would raise RecursionError)
  // Work budget: statements executed + loop iterations (a hostile template must end with
  // an error, not run for hours); the rendered text is bounded too.
  uint64_t steps_ = 0;
  void step();
  static void check_output(const std::string& out);
  // Frames a macro closure captured. A macro is stored in a frame it also captures (a
  // shared_ptr cycle), so the destructor clears these frames to break the cycles.
  std::vector<std::shared_ptr<Frame>> captured_frames_;
  Scope scope_;  // scope_[0]: globals, scope_[1]: template variables and top-level sets
};

}  // namespace llrt::jinja
