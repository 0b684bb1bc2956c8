// llrt chat templates: Jinja lexer.
//
// Reproduces jinja2.lexer.Lexer for the environment Hugging Face uses (trim_blocks=True, lstrip_blocks=True,
// default delimiters, keep_trailing_newline=False, no line statements):
//   * newlines (\r\n, \r) become \n and one trailing newline of the template is dropped;
//   * text before a tag: `{%-`/`{{-`/`{#-` strip all whitespace before it; otherwise, for block and comment tags
//     not opened with `{%+`, spaces/tabs between the start of the line and the tag are removed (lstrip_blocks);
//   * after a tag: `-%}`/`-}}`/`-#}` strip all following whitespace; a plain `%}` or `#}` eats one newline
//     (trim_blocks), `+%}` none; `}}` never does;
//   * inside tags: names, strings (Python escapes), integers/floats (with _ separators, 0x/0o/0b), operators;
//   * {% raw %}...{% endraw %} is returned as data.
// Whitespace means Python's str.isspace() set. Offsets are byte offsets into the normalized source.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace llrt::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // Data/Name/Op text, String value (unescaped)
  int64_t int_value = 0;
  double float_value = 0;
  size_t pos = 0;
};

// Newline normalization and trailing-newline removal, as Jinja does before lexing.
std::string normalize_source(const std::string& source);

// Tokenizes a normalized source. Throws SyntaxError.
std::vector<Token> tokenize(const std::string& source);

// "line L, column C" of a byte offset (column counts code points, 1-based).
std::string describe_position(const std::string& source, size_t pos);

}  // namespace llrt::jinja
