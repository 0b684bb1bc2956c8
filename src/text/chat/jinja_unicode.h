// llrt chat templates: the Unicode behaviour of Python's str that chat templates rely on.
//
// Strings are UTF-8 std::string; Python counts and indexes code points, so these helpers decode on the fly.
// Whitespace is Python's str.isspace() set (what strip()/split()/trim use). Case mapping (upper/lower/title)
// follows Python's full mapping: glibc's C.UTF-8 simple mappings plus the unconditional SpecialCasing entries
// that matter in practice (German sharp s, ligatures, dotted I, final sigma). A code point whose Python mapping
// we cannot reproduce raises a RenderError instead of mis-rendering.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace llrt::jinja {

std::u32string utf8_decode(std::string_view s);  // RenderError on malformed UTF-8
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(std::u32string_view s);
size_t utf8_length(std::string_view s);

bool py_isspace(char32_t c);
bool py_isprintable(char32_t c);  // for repr()

enum class StripSide { Both, Left, Right };
// str.strip([chars]); chars == nullptr strips whitespace
std::string py_strip(std::string_view s, const std::string* chars, StripSide side);
// str.split() / str.split(sep, maxsplit) / rsplit
std::vector<std::string> py_split(std::string_view s, const std::string* sep, long maxsplit, bool from_right);
std::vector<std::string> py_splitlines(std::string_view s);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string jinja_title(std::string_view s);    // the |title filter (word starts after -, space, ( { [ <)
bool py_is_cased_all(std::string_view s, bool upper);  // str.isupper() / str.islower()

// Character classes for str.isdigit()/isalpha()/isalnum()/isspace(); ASCII exact, others via C.UTF-8.
bool py_isdigit_str(std::string_view s);
bool py_isalpha_str(std::string_view s);
bool py_isalnum_str(std::string_view s);
bool py_isspace_str(std::string_view s);

}  // namespace llrt::jinja
