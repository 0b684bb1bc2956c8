// Chat templates: byte-for-byte against Hugging Face transformers' apply_chat_template renders
// (tests/data/chat/*.json, made by scripts/chat/make_chat_refs.py), plus error cases.
#include <doctest/doctest.h>

#include <chrono>

#include <fstream>
#include <sstream>

#include "llrt/chat_template.h"
#include "src/text/chat/chat_json.h"
#include "llrt/error.h"
#include "test_data.h"

using llrt::ChatTemplate;
using llrt::ErrorCode;
using nlohmann::ordered_json;

namespace {

ordered_json load_json(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing " << p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ordered_json::parse(ss.str());
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing " << p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::filesystem::path chat_data(const char* name) { return llrt::test::repo_dir() / "tests" / "data" / "chat" / name; }

// "2025-03-05T12:00:00" -> ChatDateTime
llrt::ChatDateTime parse_now(const std::string& iso) {
  llrt::ChatDateTime d;
  REQUIRE(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &d.year, &d.month, &d.day, &d.hour, &d.minute, &d.second) == 6);
  return d;
}

struct Outcome {
  bool ok = false;
  std::string text;  // render, or error message
  ErrorCode code = ErrorCode::Internal;
};

Outcome render_case(const ChatTemplate& t, const ordered_json& c) {
  llrt::ChatRenderOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", false);
  o.now = parse_now(c["now"].get<std::string>());
  const ordered_json extra = c.value("extra", ordered_json::object());
  Outcome r;
  try {
    r.text = llrt::render_chat(t, c["messages"], o, extra);
    r.ok = true;
  } catch (const llrt::Error& e) {
    r.text = e.what();
    r.code = e.code();
  }
  return r;
}

// Checks one reference case; returns true when it matched.
bool check_case(const ChatTemplate& t, const ordered_json& c, const std::string& label) {
  Outcome r = render_case(t, c);
  if (c.contains("expected")) {
    std::string want = c["expected"].get<std::string>();
    CHECK_MESSAGE(r.ok, label << ": unexpected error: " << r.text);
    CHECK_MESSAGE(r.text == want, label << "\n--- want:\n" << want << "\n--- got:\n" << r.text);
    return r.ok && r.text == want;
  }
  // HF raised: we must raise a Template error too; for raise_exception (TemplateError) the message is exact.
  const ordered_json& err = c["error"];
  CHECK_MESSAGE(!r.ok, label << ": HF raised " << err.dump() << " but llrt rendered:\n" << r.text);
  if (r.ok) return false;
  CHECK_MESSAGE(r.code == ErrorCode::Template, label << ": wrong error code: " << r.text);
  if (err["type"] == "TemplateError") CHECK_MESSAGE(r.text == err["message"].get<std::string>(), label);
  return r.code == ErrorCode::Template;
}

}  // namespace

TEST_CASE("chat: real model templates match HF apply_chat_template byte-for-byte") {
  ordered_json refs = load_json(chat_data("model_refs.json"));
  int checked = 0, passed = 0;
  for (const ordered_json& entry : refs["entries"]) {
    std::filesystem::path path = llrt::test::shared_dir() / entry["path"].get<std::string>();
    ChatTemplate t = entry["kind"] == "jinja"
                         ? ChatTemplate::from_string(read_text(path), entry["bos_token"].get<std::string>(),
                                                     entry["eos_token"].get<std::string>())
                         : ChatTemplate::from_tokenizer_config(path);
    if (entry["kind"] == "tokenizer_config") {
      CHECK(t.bos_token() == entry["special_tokens_map"]["bos_token"].get<std::string>());
      CHECK(t.eos_token() == entry["special_tokens_map"]["eos_token"].get<std::string>());
    }
    CHECK_MESSAGE(entry["cases"].size() >= 10, entry["id"]);
    for (const ordered_json& c : entry["cases"]) {
      ++checked;
      passed += check_case(t, c, entry["id"].get<std::string>() + "/" + c["name"].get<std::string>());
    }
  }
  MESSAGE("model templates: " << passed << "/" << checked << " renders match HF");
  CHECK(checked >= 100);
}

TEST_CASE("chat: the 37 HF templates of ollama's template index match HF") {
  ordered_json refs = load_json(chat_data("ollama_refs.json"));
  ordered_json index = load_json(llrt::test::shared_dir() / "assets/chat-templates/ollama-template-index.json");
  int checked = 0, passed = 0;
  for (const ordered_json& entry : refs["entries"]) {
    const ordered_json& tpl = index[entry["index"].get<size_t>()];
    std::string label = "ollama[" + std::to_string(entry["index"].get<int>()) + "] " + tpl["name"].get<std::string>();
    ChatTemplate t = ChatTemplate::from_string(tpl["template"].get<std::string>(), entry["bos_token"].get<std::string>(),
                                               entry["eos_token"].get<std::string>());
    for (const ordered_json& c : entry["cases"]) {
      ++checked;
      passed += check_case(t, c, label + "/" + c["name"].get<std::string>());
    }
  }
  MESSAGE("ollama index templates: " << passed << "/" << checked << " renders match HF");
}

TEST_CASE("chat: Jinja constructs match HF's Jinja environment") {
  ordered_json refs = load_json(chat_data("jinja_cases.json"));
  int checked = 0, passed = 0;
  for (const ordered_json& c : refs["entries"]) {
    std::string label = "template " + c["template"].dump();
    ++checked;
    ordered_json vars = c["vars"];
    // The case's variables are passed as HF **kwargs; messages (if any) go through the message path.
    ordered_json messages = vars.contains("messages") ? vars["messages"] : ordered_json::array({{{"role", "user"}, {"content", "x"}}});
    std::optional<ChatTemplate> t;
    Outcome r;
    try {
      std::string bos = vars.value("bos_token", ""), eos = vars.value("eos_token", "");
      t = ChatTemplate::from_string(c["template"].get<std::string>(), bos, eos);
    } catch (const llrt::Error& e) {
      r.text = e.what();
      r.code = e.code();
    }
    if (t) {
      llrt::ChatRenderOptions o;
      o.now = parse_now(c["now"].get<std::string>());
      ordered_json extra = ordered_json::object();
      for (auto it = vars.begin(); it != vars.end(); ++it)
        if (it.key() != "messages" && it.key() != "bos_token" && it.key() != "eos_token") extra[it.key()] = it.value();
      try {
        r.text = llrt::render_chat(*t, messages, o, extra);
        r.ok = true;
      } catch (const llrt::Error& e) {
        r.text = e.what();
        r.code = e.code();
      }
    }
    if (c.value("llrt_unsupported", false)) {
      // Valid Jinja llrt does not implement: must be a clear Template error, never a different render.
      bool clear = !r.ok && r.code == ErrorCode::Template &&
                   (r.text.find("not supported") != std::string::npos || r.text.find("cannot print") != std::string::npos);
      CHECK_MESSAGE(clear, label << ": expected a 'not supported' Template error, got: " << r.text);
      passed += clear;
    } else if (c.contains("expected")) {
      CHECK_MESSAGE(r.ok, label << ": unexpected error: " << r.text);
      CHECK_MESSAGE(r.text == c["expected"].get<std::string>(),
                    label << "\n--- want:\n" << c["expected"].get<std::string>() << "\n--- got:\n" << r.text);
      passed += r.ok && r.text == c["expected"].get<std::string>();
    } else {
      CHECK_MESSAGE(!r.ok, label << ": HF raised " << c["error"].dump() << " but llrt rendered: " << r.text);
      CHECK_MESSAGE(r.code == ErrorCode::Template, label << ": " << r.text);
      if (c["error"]["type"] == "TemplateError") CHECK(r.text == c["error"]["message"].get<std::string>());
      passed += !r.ok && r.code == ErrorCode::Template;
    }
  }
  MESSAGE("jinja constructs: " << passed << "/" << checked << " match HF");
}

TEST_CASE("chat: errors name the construct and position") {
  auto err = [](const std::string& src, const std::vector<llrt::ChatMessage>& msgs = {{"user", "hi"}}) {
    try {
      ChatTemplate::from_string(src, "<s>", "</s>").render(msgs);
    } catch (const llrt::Error& e) {
      CHECK(e.code() == ErrorCode::Template);
      return std::string(e.what());
    }
    FAIL("no error for " << src);
    return std::string();
  };
  auto has = [](const std::string& s, const char* part) {
    CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s);
  };
  std::string e = err("{{ messages|nosuchfilter }}");
  has(e, "No filter named 'nosuchfilter'");
  has(e, "line 1, column 13");
  e = err("line one\n{% if true %}never closed");
  has(e, "'endif'");
  has(e, "'if'");
  e = err("{% for m in messages %}{{ m.role }}");
  has(e, "'endfor'");
  e = err("{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}");
  CHECK(e == "Conversation roles must alternate user/assistant/user/assistant/...");
  e = err("ok\n  {% include 'x.jinja' %}");
  has(e, "'include' tag is not supported");
  has(e, "line 2");
  e = err("{{ messages[0].content + 1 }}");
  has(e, "can only concatenate str");
  has(e, "line 1, column");
  e = err("{{ undefined_thing.attr }}");
  has(e, "'undefined_thing' is undefined");
  e = err("{{ messages|groupby('role') }}");
  has(e, "'groupby' filter is not supported");
  e = err("{{ 'x'.format(1) }}");
  has(e, "str.format() is not supported");
  e = err("{{ messages|map(attribute='role') }}");
  has(e, "cannot print a generator");
  e = err("{{ x }", {});  // lexer error
  has(e, "unexpected '}'");

  // Hostile templates: deep nesting and unbounded macro recursion are errors, not stack overflows.
  has(err("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), "nests too deeply");
  has(err("{{ " + std::string(3000, '[') + std::string(3000, ']') + " }}"), "nests too deeply");
  std::string long_chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) long_chain += " + 1";
  has(err(long_chain + " }}"), "nests too deeply");
  std::string filter_chain = "{{ 'x'";
  for (int i = 0; i < 20000; ++i) filter_chain += "|trim";
  has(err(filter_chain + " }}"), "nests too deeply");
  has(err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "maximum recursion depth");
  std::string nested_ifs;
  for (int i = 0; i < 2000; ++i) nested_ifs += "{% if true %}";
  has(err(nested_ifs), "nests too deeply");
  // ... and unbounded work or memory is an error too, not a hang or an allocation failure.
  has(err("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"), "too much work");
  has(err("{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
      "'~' would build a string of 134217728 bytes, over the 64 MiB limit");
  has(err("{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}"),
      "str + str would build a string of 134217728 bytes, over the 64 MiB limit");
  has(err("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}"),
      "list + list would build a list of 1048576 items, over the limit of a million");
  has(err("{{ ([1] * 1000000000)|length }}"), "list * 1000000000 would build a list of 1000000000 items");
  has(err("{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}"), "exceeds 64 MiB");
  // Many tags on one line lex in linear time (lstrip_blocks looks back only to the last tag).
  std::string one_line;
  for (int i = 0; i < 100000; ++i) one_line += "{% if true %}x{% endif %}";
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(ChatTemplate::from_string(one_line, "", "").render({{"user", "hi"}}).size() == 100000);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));  // quadratic took minutes

  // Bad input to the API is an Error, not a crash.
  ChatTemplate t = ChatTemplate::from_string("{{ messages[0].content }}", "", "");
  CHECK_THROWS_AS(t.render({}), llrt::Error);
  llrt::ChatRenderOptions o;
  o.extra_json = "[]";
  CHECK_THROWS_AS(t.render({{"user", "x"}}, o), llrt::Error);
  o.extra_json = "{\"date_string\": ";  // not JSON: a clear error too
  CHECK_THROWS_AS(t.render({{"user", "x"}}, o), llrt::Error);
  o.extra_json = "{}";
  o.now = llrt::ChatDateTime{2025, 2, 30};
  CHECK_THROWS_AS(t.render({{"user", "x"}}, o), llrt::Error);
  CHECK_THROWS_AS(t.render_json(R"([1, 2])"), llrt::Error);
  CHECK(t.render_json(R"([{"role": "user", "content": "hi"}])") == "hi");
  CHECK_THROWS_AS(ChatTemplate::from_tokenizer_config("/nonexistent/tokenizer_config.json"), llrt::Error);
  CHECK_THROWS_AS(ChatTemplate::from_tokenizer_config(llrt::test::model_dir("llama-3.1-mini-sharded") / "config.json"),
                  llrt::Error);  // a JSON file without chat_template
}

TEST_CASE("chat: every operation that grows a string or list checks the limit before it allocates") {
  // Each of these asked for gigabytes to terabytes before any check (std::bad_alloc or a
  // length_error, not an llrt::Error): now the size is computed first and refused.
  auto err = [](const std::string& src) {
    try {
      ChatTemplate::from_string(src, "<s>", "</s>").render({{"user", "hi"}});
    } catch (const llrt::Error& e) {
      CHECK(e.code() == ErrorCode::Template);
      return std::string(e.what());
    }
    FAIL("no error for " << src);
    return std::string();
  };
  auto has = [](const std::string& s, const char* part) {
    CHECK_MESSAGE(s.find(part) != std::string::npos, "'" << part << "' not in: " << s);
  };
  const char* over_string = "over the 64 MiB limit on template strings";
  // padding widths
  std::string e = err("{{ 'x'.center(10**12) }}");
  has(e, "str.center(1000000000000) would build a string of 1000000000000 bytes");
  has(e, over_string);
  has(err("{{ 'x'.ljust(10**12, '*') }}"), "str.ljust(1000000000000)");
  has(err("{{ 'x'.rjust(10**12, '\u00e9') }}"), "str.rjust(1000000000000) would build a string of 1999999999999 bytes");
  has(err("{{ '-5'.zfill(10**12) }}"), "str.zfill(1000000000000)");
  has(err("{{ 'ab'|center(10**12) }}"), "str.center(1000000000000)");
  // join: of big items, with a big separator, as a filter and as str.join
  has(err("{{ ['x' * 40000000, 'y' * 40000000]|join }}"), "join() would build a string of 80000000 bytes");
  has(err("{{ '-'.join(['x' * 40000000, 'y' * 40000000]) }}"), "str.join() would build a string of 80000001 bytes");
  has(err("{{ range(100000)|map('string')|join('x' * 1000) }}"), "join() would build");
  // replace: many replacements, and the empty pattern (between every character)
  has(err("{{ ('x' * 1000000).replace('x', 'y' * 1000) }}"), "str.replace() would build a string of 1000000000 bytes");
  has(err("{{ ('x' * 1000000)|replace('x', 'y' * 1000) }}"), "str.replace() would build");
  has(err("{{ ('x' * 1000000).replace('', 'y' * 100) }}"), "str.replace() would build a string of 101000100 bytes");
  // list repetition copies its strings: a list of one big string repeated
  has(err("{{ (['x' * 60000000] * 2)|length }}"), "list * 2 would build a list holding 120000000 bytes of strings");
  has(err("{{ (['x' * 1000] * 1000000)|length }}"), "list * 1000000 would build a list holding 1000000000 bytes");
  has(err("{{ ((['x' * 1000] * 60000) + (['x' * 1000] * 60000))|length }}"), "list + list would build a list holding");
  // lists built item by item, filler and indents
  has(err("{{ range(100000)|map('center', 1000)|list|length }}"), "map() would build a list holding");
  has(err("{{ [1]|batch(10**12, 0)|list|length }}"), "batch(1000000000000, fill_with) would build a list of 1000000000000 items");
  has(err("{{ 'a\nb'|indent(10**12) }}"), "indent(1000000000000) would build a string");
  has(err("{{ 'a'|indent(10**12, true) }}"), "indent(1000000000000)");
  has(err("{{ [1, 2]|tojson(indent=10**12) }}"), "tojson(indent=...) would build a string");
  has(err("{{ ('x' * 2000000)|list|length }}"), "iterating over a string would build a list of 2000000 items");
  has(err("{{ 'x' * (10**18 * 10) }}"), "integer overflow");
  has(err("{{ 'abc' * 9223372036854775807 }}"), "str * 9223372036854775807 would build a string of more than 2^64 bytes");
  // Splitting builds one item per separator: checked per part.
  has(err("{{ (' ' * 3000000).split(' ')|length }}"), "str.split() would build a list of 1000001 items");
  has(err("{{ (' x' * 2000000).split()|length }}"), "str.split() would build a list of 1000001 items");
  has(err("{{ ('\n' * 3000000).splitlines()|length }}"), "splitting lines would build a list of 1000001 items");
  has(err("{{ ('\n' * 3000000)|indent }}"), "splitting lines would build a list");
  // Shared inner lists are cheap to hold but not to print: printing and tojson check as they grow.
  const std::string huge = "{% set l = [[0] * 1000000] * 1000000 %}";
  has(err(huge + "{{ l }}"), "printing a list would build a string of");
  has(err(huge + "{{ l|tojson }}"), "tojson() would build a string of");
  has(err(huge + "{{ l|string|length }}"), "printing a list would build");
  // One expression that visits 10^9+ elements is too much work, not a hang.
  const std::string ab = "{% set a = [0] * 1000000 %}{% set b = [0] * 1000000 %}";
  const auto t0 = std::chrono::steady_clock::now();
  has(err(ab + "{{ ([a] * 1000) == ([b] * 1000) }}"), "too much work (comparisons over huge lists");
  has(err("{{ ((range(100000)|list) * 10)|unique|list|length }}"), "too much work");
  has(err(ab + "{% for i in range(1000) %}{{ a|map('string')|list|length }}{% endfor %}"), "too much work");
  has(err(ab + "{% for i in range(1000) %}{{ 1 in a }}{% endfor %}"), "too much work");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));
  // Within the limits nothing changes, and negative widths/counts are Python's (no padding).
  auto render = [](const std::string& src) { return ChatTemplate::from_string(src, "", "").render({{"user", "hi"}}); };
  CHECK(render("{{ 'ab'.center(6, '*') }}|{{ 'ab'.ljust(4, '.') }}|{{ '-5'.zfill(4) }}|{{ 'x'.center(-5) }}") == "**ab**|ab..|-005|x");
  CHECK(render("{{ 'a\nb'|indent(2, true) }}|{{ 'a\nb'|indent(-3) }}") == "  a\n  b|a\nb");
  CHECK(render("{{ 'aXbX'.replace('X', '--') }}|{{ 'ab'.replace('', '.') }}|{{ 'aaa'.replace('a', 'b', 2) }}") == "a--b--|.a.b.|bba");
  CHECK(render("{{ (['ab'] * 3)|join(',') }}|{{ [1]|batch(3, 0)|list }}|{{ 'abc'|truncate(9223372036854775807, leeway=9223372036854775807) }}") ==
        "ab,ab,ab|[[1, 0, 0]]|abc");
  CHECK(render("{{ ('x' * 60000000)|length }}") == "60000000");  // big, but under the limit
  CHECK(render("{% set a = [0] * 1000000 %}{{ ([a] * 1000) == ([a] * 1000) }}|{{ 'a b  c'.split() }}|{{ 'a,b'.split(',') }}") ==
        "True|['a', 'b', 'c']|['a', 'b']");  // identical lists compare equal at once, as in Python
}

TEST_CASE("chat: BOS helper and injectable date") {
  ChatTemplate llama = ChatTemplate::from_tokenizer_config(llrt::test::model_dir("llama-3.2-mini") / "tokenizer_config.json");
  llrt::ChatRenderOptions o;
  o.add_generation_prompt = true;
  o.now = llrt::ChatDateTime{2024, 7, 23};
  std::string text = llama.render({{"user", "Hi"}}, o);
  CHECK(llama.starts_with_bos(text));
  CHECK(text.find("Today Date: 23 Jul 2024\n") != std::string::npos);
  o.extra_json = R"({"date_string": "01 Jan 2030"})";
  CHECK(llama.render({{"user", "Hi"}}, o).find("Today Date: 01 Jan 2030\n") != std::string::npos);

  ChatTemplate tiny = ChatTemplate::from_tokenizer_config(llrt::test::model_dir("tinyllama-mini-f16") / "tokenizer_config.json");
  CHECK(tiny.bos_token() == "<s>");
  std::string t2 = tiny.render({{"user", "Hi"}}, o);
  CHECK(t2 == "<|user|>\nHi</s>\n<|assistant|>\n");
  CHECK_FALSE(tiny.starts_with_bos(t2));

  ChatTemplate ds = ChatTemplate::from_tokenizer_config(llrt::test::model_dir("deepseek-r1-distill-mini") / "tokenizer_config.json");
  CHECK(ds.bos_token() == "<｜begin▁of▁sentence｜>");  // AddedToken object form
  CHECK(ds.starts_with_bos(ds.render({{"user", "Hi"}})));
}
