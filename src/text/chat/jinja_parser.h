// llrt chat templates: Jinja parser (tokens -> Program).
//
// Follows jinja2.parser.Parser: the same operator precedence (condexpr < or < and < not < compare (==, !=, <,
// <=, >, >=, in, not in) < + - < ~ < * / // % < ** < unary - + < postfix (. [] ()) and filters/tests), the same
// statement grammar for if/elif/else, for (with `if` filter, else, tuple targets), set (expression, namespace
// attribute, block form), macro, filter, with, break/continue (loopcontrols), raw, and HF's generation block.
// Like Jinja, an unknown filter or test is a compile-time error unless it sits inside an if/condexpr (there it
// fails only when evaluated). Tags llrt does not implement (include, import, extends, block, call, ...) are a
// SyntaxError naming the tag.
#pragma once
#include <string>

#include "src/text/chat/jinja_ast.h"

namespace llrt::jinja {

// Parses a template source (raw text from tokenizer_config.json). Throws SyntaxError with an offset into
// Program::source (the normalized text).
Program parse_template(const std::string& source);

}  // namespace llrt::jinja
