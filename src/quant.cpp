// compressed-tensors w8a8: the typed quantization_config, module matching, per-Linear
// tensor validation, and the I8 Linear kernel lookup. The contract is documented in
// include/llrt/quant.h.
#include "llrt/quant.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "llrt/error.h"

namespace llrt {

using json = nlohmann::json;

namespace {

const char* kRoot = "quantization_config";

std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

[[noreturn]] void unsupported(const std::string& key, const json& value, const std::string& why) {
  fail(ErrorCode::UnsupportedModel,
       key + " = " + show(value) + ": " + why + " (llrt runs compressed-tensors int8 w8a8 only: see llrt/quant.h)");
}
[[noreturn]] void malformed(const std::string& key, const json& value, const std::string& why) {
  fail(ErrorCode::Config, key + " = " + show(value) + ": " + why);
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_null_or_empty(const json& v) {
  return v.is_null() || (v.is_object() && v.empty()) || (v.is_array() && v.empty());
}

// ---------------------------------------------------------------- args
struct Args {
  int num_bits = 8;
  std::string type = "int";
  bool symmetric = true;
  std::string strategy;  // after inference
  bool dynamic = false;
};

// Parses a QuantizationArgs object; `role` is "weights" or "input_activations".
Args parse_args(const json& j, const std::string& key, const std::string& role) {
  if (!j.is_object()) malformed(key, j, "must be an object");
  Args a;
  json group_size = nullptr, strategy = nullptr;
  for (const auto& [k, v] : j.items()) {
    const std::string kk = key + "." + k;
    if (k == "num_bits") {
      if (!v.is_number_integer()) malformed(kk, v, "must be an integer");
      a.num_bits = v.get<int>();
      if (a.num_bits != 8) unsupported(kk, v, "only 8-bit integers are supported");
    } else if (k == "type") {
      if (!v.is_string()) malformed(kk, v, "must be a string");
      a.type = lower(v.get<std::string>());
      if (a.type != "int") unsupported(kk, v, "only type \"int\" is supported (float8/fp4 are not)");
    } else if (k == "symmetric") {
      if (!v.is_boolean()) malformed(kk, v, "must be true or false");
      a.symmetric = v.get<bool>();
    } else if (k == "group_size") {
      if (!v.is_null() && !v.is_number_integer()) malformed(kk, v, "must be an integer or null");
      group_size = v;
    } else if (k == "strategy") {
      if (!v.is_null() && !v.is_string()) malformed(kk, v, "must be a string or null");
      strategy = v;
    } else if (k == "block_structure") {
      if (!v.is_null()) unsupported(kk, v, "block quantization is not supported");
    } else if (k == "dynamic") {
      if (v.is_string()) unsupported(kk, v, "dynamic \"local\" (NVFP4-style) is not supported");
      if (!v.is_boolean()) malformed(kk, v, "must be true or false");
      a.dynamic = v.get<bool>();
    } else if (k == "actorder") {
      // "weight"/"static" only changed calibration; "group"/"dynamic"/true need g_idx.
      bool ok = v.is_null() || (v.is_boolean() && !v.get<bool>());
      if (v.is_string()) {
        std::string s = lower(v.get<std::string>());
        ok = role == "weights" && (s == "weight" || s == "static");
      }
      if (!ok) unsupported(kk, v, "activation ordering with g_idx (group/dynamic) is not supported");
    } else if (k == "scale_dtype") {
      // Stored scales carry their own dtype; a dynamic scale rounded to another dtype
      // would change the arithmetic.
      if (!v.is_null() && role == "input_activations" && j.value("dynamic", json(false)) == json(true))
        unsupported(kk, v, "dynamic activation scales rounded to a dtype are not supported");
    } else if (k == "zp_dtype") {
      if (!v.is_null()) {
        if (!v.is_string()) malformed(kk, v, "must be a string or null");
        std::string s = lower(v.get<std::string>());
        if (s != "torch.int8" && s != "int8") unsupported(kk, v, "only int8 zero points are supported");
      }
    } else if (k == "observer" || k == "observer_kwargs") {
      // calibration-time only
    } else {
      unsupported(kk, v, "unknown key: llrt does not guess what it means");
    }
  }
  const std::string gkey = key + ".group_size";
  if (!strategy.is_null()) {
    a.strategy = lower(strategy.get<std::string>());
  } else if (group_size.is_null()) {
    a.strategy = "tensor";  // compressed-tensors' inference
  } else if (group_size.get<int64_t>() == -1) {
    a.strategy = "channel";
  } else {
    unsupported(gkey, group_size, "group quantization is not supported");
  }
  if (!group_size.is_null() && !(group_size.get<int64_t>() == -1 && a.strategy == "channel"))
    unsupported(gkey, group_size, "group quantization is not supported");
  const std::string skey = key + ".strategy";
  const json sval = strategy.is_null() ? json(a.strategy) : strategy;
  if (role == "weights") {
    if (a.strategy != "channel" && a.strategy != "tensor")
      unsupported(skey, sval, "weights must use strategy \"channel\" or \"tensor\"");
    if (!a.symmetric) unsupported(key + ".symmetric", false, "asymmetric int8 weights are not supported");
    if (a.dynamic) unsupported(key + ".dynamic", true, "dynamic weight quantization is not supported");
  } else {
    if (a.dynamic && a.strategy != "token")
      unsupported(skey, sval, "dynamic activations must use strategy \"token\"");
    if (!a.dynamic && a.strategy != "tensor")
      unsupported(skey, sval, "static activations must use strategy \"tensor\"");
  }
  return a;
}

const std::set<std::string> kFormats = {"int-quantized", "naive-quantized"};

QuantScheme parse_scheme(const std::string& gname, const json& g, const std::string& key,
                         const std::string& top_format) {
  QuantScheme s;
  s.group = gname;
  json weights = nullptr, inputs = nullptr;
  bool have_targets = false;
  std::string fmt = top_format;
  std::string fmt_key = std::string(kRoot) + ".format";
  for (const auto& [k, v] : g.items()) {
    const std::string kk = key + "." + k;
    if (k == "targets") {
      if (!v.is_array() || v.empty()) malformed(kk, v, "must be a non-empty list of strings");
      for (const auto& t : v) {
        if (!t.is_string()) malformed(kk, v, "must be a list of strings");
        s.targets.push_back(t.get<std::string>());
      }
      have_targets = true;
    } else if (k == "weights") {
      weights = v;
    } else if (k == "input_activations") {
      inputs = v;
    } else if (k == "output_activations") {
      if (!v.is_null()) unsupported(kk, v, "output activation quantization is not supported");
    } else if (k == "format") {
      if (!v.is_null()) {
        if (!v.is_string()) malformed(kk, v, "must be a string");
        fmt = v.get<std::string>();
        fmt_key = kk;
      }
    } else {
      unsupported(kk, v, "unknown key in a quantization scheme");
    }
  }
  if (!have_targets) malformed(key + ".targets", nullptr, "a config group needs its targets");
  if (weights.is_null() && inputs.is_null()) {
    s.quantized = false;
    return s;
  }
  if (weights.is_null())
    unsupported(key + ".weights", weights, "activation-only quantization is not supported");
  if (inputs.is_null())
    unsupported(key + ".input_activations", inputs,
                "weight-only int8 (w8a16) is not supported: llrt runs w8a8 (int8 activations)");
  const Args w = parse_args(weights, key + ".weights", "weights");
  const Args in = parse_args(inputs, key + ".input_activations", "input_activations");
  s.weight_strategy = w.strategy == "channel" ? QuantWeightStrategy::Channel : QuantWeightStrategy::Tensor;
  s.act_kind = in.dynamic ? QuantActKind::DynamicToken : QuantActKind::StaticTensor;
  s.act_symmetric = in.symmetric;
  if (!kFormats.count(fmt)) {
    if (fmt.empty() || fmt == "mixed-precision")
      malformed(fmt_key, fmt.empty() ? json(nullptr) : json(fmt),
                "config group '" + gname + "' has no format of its own");
    unsupported(fmt_key, fmt,
                "only the \"int-quantized\" and \"naive-quantized\" formats are supported (int8 weights stored as I8)");
  }
  s.format = fmt;
  return s;
}

QuantPattern make_pattern(const std::string& text, const std::string& key) {
  QuantPattern p;
  p.text = text;
  if (text.rfind("re:", 0) == 0) {
    const std::string ecma = python_regex_to_ecmascript(text.substr(3), key);
    p.regex = std::make_shared<const std::regex>(ecma, std::regex::ECMAScript);
  }
  return p;
}

// ---------------------------------------------------------------- Llama module classes
struct ModuleClass {
  std::string name;
  std::vector<std::string> mro;
};

}  // namespace

// ==================================================================== regex

namespace {

constexpr size_t kMaxRegexLen = 1024;       // real patterns: < 100 characters
constexpr int kMaxRegexNesting = 32;        // groups inside groups
constexpr uint64_t kMaxRegexStates = 100000;  // atoms after expanding {m,n} counts

// std::regex compiles (and matches) by recursion, about one level per nested group and per
// term, and expands a{m,n} into copies: a hostile pattern overflows the stack or memory
// before it can report anything. This linear scan bounds the length, the group nesting and
// the expanded size (counts multiply through nested groups) of the ECMAScript text first.
void check_regex_bounds(const std::string& ecma, const std::string& pat, const std::string& where) {
  const std::string shown = pat.size() > 60 ? pat.substr(0, 60) + "..." : pat;
  auto bad = [&](const std::string& what) {
    fail(ErrorCode::Config, where + " = \"re:" + shown + "\": " + what + ": not a module-name pattern llrt accepts");
  };
  if (ecma.size() > kMaxRegexLen)
    bad("the pattern is " + std::to_string(ecma.size()) + " characters long (limit " + std::to_string(kMaxRegexLen) + ")");
  // sizes[d]: expanded atoms so far in the group open at depth d; last[d]: the size of its last atom
  std::vector<uint64_t> sizes{0}, last{0};
  auto add_atom = [&](uint64_t n) {
    sizes.back() += n;
    last.back() = n;
    if (sizes.back() > kMaxRegexStates) bad("the pattern expands to more than " + std::to_string(kMaxRegexStates) + " states");
  };
  for (size_t i = 0; i < ecma.size(); ++i) {
    const char c = ecma[i];
    if (c == '\\') {
      ++i;
      add_atom(1);
    } else if (c == '[') {
      for (++i; i < ecma.size() && ecma[i] != ']'; ++i)
        if (ecma[i] == '\\') ++i;
      add_atom(1);
    } else if (c == '(') {
      if (int(sizes.size()) > kMaxRegexNesting) bad("groups nest more than " + std::to_string(kMaxRegexNesting) + " levels deep");
      sizes.push_back(0);
      last.push_back(0);
    } else if (c == ')') {
      if (sizes.size() == 1) continue;  // unbalanced: std::regex reports it
      const uint64_t g = sizes.back() + 1;
      sizes.pop_back();
      last.pop_back();
      add_atom(g);
    } else if (c == '{') {
      // {m}, {m,}, {m,n}: the last atom is repeated max(m, n) (+1 when open-ended) times
      uint64_t m = 0, n = 0;
      size_t k = i + 1;
      bool any = false, comma = false;
      for (; k < ecma.size() && (std::isdigit(static_cast<unsigned char>(ecma[k])) || ecma[k] == ','); ++k) {
        if (ecma[k] == ',') { comma = true; continue; }
        uint64_t& x = comma ? n : m;
        x = std::min<uint64_t>(x * 10 + uint64_t(ecma[k] - '0'), kMaxRegexStates + 1);
        any = true;
      }
      if (!any || k >= ecma.size() || ecma[k] != '}') { add_atom(1); continue; }  // a literal '{'
      const uint64_t reps = std::max(m, n) + (comma && n == 0 ? 1 : 0);
      const uint64_t grown = last.back() * std::max<uint64_t>(reps, 1);
      if (grown > kMaxRegexStates) bad("the pattern expands to more than " + std::to_string(kMaxRegexStates) + " states");
      sizes.back() += grown - last.back();
      last.back() = grown;
      if (sizes.back() > kMaxRegexStates) bad("the pattern expands to more than " + std::to_string(kMaxRegexStates) + " states");
      i = k;
    } else if (c == '*' || c == '+' || c == '?' || c == '|' || c == '^' || c == '$') {
      // quantifiers and anchors add no copies
    } else {
      add_atom(1);
    }
  }
}

}  // namespace

std::string python_regex_to_ecmascript(const std::string& pat, const std::string& where) {
  if (pat.size() > kMaxRegexLen)
    fail(ErrorCode::Config, where + " = \"re:" + pat.substr(0, 60) + "...\": the pattern is " + std::to_string(pat.size()) +
                                " characters long (limit " + std::to_string(kMaxRegexLen) + "): not a module-name pattern llrt accepts");
  auto bad = [&](const std::string& what) {
    fail(ErrorCode::UnsupportedModel, where + " = \"re:" + pat + "\": the Python regex construct " + what +
                                          " has no std::regex (ECMAScript) equivalent in llrt");
  };
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    const char c = pat[i];
    if (c == '\\') {
      if (i + 1 >= pat.size()) break;  // compile error below
      const char e = pat[i + 1];
      if (!in_class && e == 'A') { out += '^'; ++i; continue; }
      if (!in_class && (e == 'Z' || e == 'z')) { out += '$'; ++i; continue; }
      if (e == 'A' || e == 'Z') bad(std::string("\\") + e + " inside a character class");
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += "\\]", ++i;  // leading ] is literal in Python
      continue;
    }
    if (c == '(' && i + 1 < pat.size() && pat[i + 1] == '?') {
      const std::string rest = pat.substr(i + 2, 3);
      if (rest.rfind(":", 0) == 0 || rest.rfind("=", 0) == 0 || rest.rfind("!", 0) == 0) {
        out += c;
        continue;
      }
      if (rest.rfind("P<", 0) == 0) {  // named group -> plain group
        const size_t close = pat.find('>', i);
        if (close == std::string::npos) break;
        out += '(';
        i = close;
        continue;
      }
      if (rest.rfind("<=", 0) == 0 || rest.rfind("<!", 0) == 0) bad("lookbehind (?<=...) / (?<!...)");
      if (rest.rfind("P=", 0) == 0) bad("named backreference (?P=name)");
      if (rest.rfind("#", 0) == 0) bad("comment group (?#...)");
      if (rest.rfind("(", 0) == 0) bad("conditional group (?(...)...)");
      if (rest.rfind(">", 0) == 0) bad("atomic group (?>...)");
      bad("inline flags (?...)");
    }
    if ((c == '+' || c == '*' || c == '?' || c == '}') && i + 1 < pat.size() && pat[i + 1] == '+')
      bad("possessive quantifier");
    out += c;
  }
  check_regex_bounds(out, pat, where);
  try {
    std::regex test(out, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail(ErrorCode::Config, where + " = \"re:" + pat + "\": invalid regular expression (" + e.what() + ")");
  }
  return out;
}

bool QuantPattern::matches_name(const std::string& module_name) const {
  if (!regex) return text == module_name;
  // Python re.match: anchored at the start only.
  return std::regex_search(module_name, *static_cast<const std::regex*>(regex.get()),
                           std::regex_constants::match_continuous);
}

// ==================================================================== config

std::string QuantScheme::describe() const {
  if (!quantized) return "not quantized (UNQUANTIZED group)";
  std::string s = weight_strategy == QuantWeightStrategy::Channel ? "int8 per-channel weights"
                                                                  : "int8 per-tensor weights";
  s += act_kind == QuantActKind::DynamicToken ? ", dynamic per-token " : ", static per-tensor ";
  s += act_symmetric ? "symmetric" : "asymmetric";
  s += " int8 activations (" + format + ")";
  return s;
}

QuantConfig parse_quantization_config(const json& qc) {
  const std::string R = kRoot;
  if (!qc.is_object()) malformed(R, qc, "must be an object");
  QuantConfig c;
  auto str_field = [&](const char* k, bool required) -> std::string {
    auto it = qc.find(k);
    if (it == qc.end() || it->is_null()) {
      if (required) malformed(R + "." + k, nullptr, "is required");
      return "";
    }
    if (!it->is_string()) malformed(R + "." + k, *it, "must be a string");
    return it->get<std::string>();
  };
  c.quant_method = str_field("quant_method", true);
  if (c.quant_method != "compressed-tensors")
    unsupported(R + ".quant_method", c.quant_method, "only \"compressed-tensors\" checkpoints are supported");
  c.quantization_status = str_field("quantization_status", true);
  if (c.quantization_status != "compressed")
    unsupported(R + ".quantization_status", c.quantization_status,
                "only \"compressed\" checkpoints (int8 weights stored) are supported");
  c.format = str_field("format", false);
  if (!c.format.empty() && !kFormats.count(c.format) && c.format != "mixed-precision")
    unsupported(R + ".format", c.format,
                "only the \"int-quantized\" and \"naive-quantized\" formats are supported");
  const std::string group_default = c.format == "mixed-precision" ? "" : c.format;

  const json* groups = nullptr;
  for (const auto& [k, v] : qc.items()) {
    const std::string kk = R + "." + k;
    if (k == "quant_method" || k == "quantization_status" || k == "format") continue;
    if (k == "config_groups") {
      groups = &v;
    } else if (k == "ignore") {
      if (v.is_null()) continue;
      if (!v.is_array()) malformed(kk, v, "must be a list of module names / \"re:\" patterns");
      for (const auto& e : v) {
        if (!e.is_string()) malformed(kk, v, "must be a list of strings");
        c.ignore.push_back(make_pattern(e.get<std::string>(), kk));
      }
    } else if (k == "kv_cache_scheme") {
      if (!v.is_null()) unsupported(kk, v, "KV-cache quantization is not supported");
    } else if (k == "sparsity_config") {
      if (!is_null_or_empty(v)) unsupported(kk, v, "sparse (e.g. 2:4) checkpoints are not supported");
    } else if (k == "transform_config") {
      if (!is_null_or_empty(v)) unsupported(kk, v, "transforms (rotations/Hadamard) are not supported");
    } else if (k == "version") {
      if (v.is_string()) c.version = v.get<std::string>();
    } else if (k == "global_compression_ratio" || k == "run_compressed" || k == "provider") {
      // informational
    } else {
      unsupported(kk, v, "unknown key: llrt does not guess what it means");
    }
  }
  if (!groups || !groups->is_object() || groups->empty())
    malformed(R + ".config_groups", groups ? *groups : json(nullptr), "must be a non-empty object");
  for (const auto& [gname, g] : groups->items()) {
    const std::string key = R + ".config_groups." + gname;
    if (g.is_array()) {  // preset name -> targets
      const std::string preset = lower(gname);
      QuantScheme s;
      if (preset == "w8a8" || preset == "int8") {
        s = parse_scheme(gname,
                         json{{"targets", g},
                              {"weights", {{"num_bits", 8}, {"type", "int"}, {"strategy", "channel"}, {"symmetric", true}, {"dynamic", false}}},
                              {"input_activations", {{"num_bits", 8}, {"type", "int"}, {"strategy", "token"}, {"symmetric", true}, {"dynamic", true}}}},
                         key, group_default);
      } else if (preset == "unquantized") {
        s = parse_scheme(gname, json{{"targets", g}}, key, group_default);
      } else {
        unsupported(key, g, "preset scheme '" + gname + "' is not supported (only W8A8 / INT8 / UNQUANTIZED)");
      }
      c.groups.push_back(std::move(s));
    } else if (g.is_object()) {
      c.groups.push_back(parse_scheme(gname, g, key, group_default));
    } else {
      malformed(key, g, "must be a scheme object or a list of targets");
    }
  }
  // compressed-tensors: target -> scheme of the LAST group listing it.
  std::map<std::string, size_t> owner;
  std::vector<std::string> order;
  for (size_t gi = 0; gi < c.groups.size(); ++gi)
    for (const auto& t : c.groups[gi].targets) {
      if (!owner.count(t)) order.push_back(t);
      owner[t] = gi;
    }
  for (const auto& t : order)
    c.targets_.push_back({make_pattern(t, R + ".config_groups." + c.groups[owner[t]].group + ".targets"), owner[t]});
  return c;
}

const QuantScheme* QuantConfig::resolve(const std::string& name, const std::vector<std::string>& classes) const {
  auto is_class = [&](const std::string& t) {
    return std::find(classes.begin(), classes.end(), t) != classes.end();
  };
  for (const auto& ig : ignore)
    if (ig.matches_name(name) || (!ig.regex && is_class(ig.text))) return nullptr;
  // Precedence (compressed-tensors match_targets): exact names, then regexes, then
  // class names; within a kind, by target string.
  const Target* best = nullptr;
  int best_rank = 3;
  for (const auto& t : targets_) {
    int rank = 3;
    if (!t.pattern.regex && t.pattern.text == name) rank = 0;
    else if (t.pattern.regex && t.pattern.matches_name(name)) rank = 1;
    else if (!t.pattern.regex && is_class(t.pattern.text)) rank = 2;
    if (rank < best_rank || (rank == best_rank && rank < 3 && t.pattern.text < best->pattern.text)) {
      best = &t;
      best_rank = rank;
    }
  }
  if (!best) return nullptr;
  const QuantScheme* s = &groups[best->group];
  return s->quantized ? s : nullptr;
}

// ==================================================================== Llama plan

const char* const kLlamaLinears[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                      "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                      "mlp.down_proj"};

int LlamaQuantPlan::quantized_count() const {
  int n = lm_head ? 1 : 0;
  for (const auto& l : layers)
    for (auto* s : l) n += s ? 1 : 0;
  return n;
}

LlamaQuantPlan plan_llama_quantization(const QuantConfig& qc, int n_layers, bool tied) {
  const std::vector<std::string> lin = {"Linear", "Module"};
  // Every non-Linear module of HF's LlamaForCausalLM, with its class chain.
  std::vector<ModuleClass> others = {
      {"", {"LlamaForCausalLM", "LlamaPreTrainedModel", "PreTrainedModel", "GenerationMixin", "Module"}},
      {"model", {"LlamaModel", "LlamaPreTrainedModel", "PreTrainedModel", "Module"}},
      {"model.embed_tokens", {"Embedding", "Module"}},
      {"model.norm", {"LlamaRMSNorm", "Module"}},
      {"model.rotary_emb", {"LlamaRotaryEmbedding", "Module"}},
      {"model.layers", {"ModuleList", "Module"}},
  };
  for (int i = 0; i < n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i);
    others.push_back({p, {"LlamaDecoderLayer", "GradientCheckpointingLayer", "Module"}});
    others.push_back({p + ".self_attn", {"LlamaAttention", "Module"}});
    others.push_back({p + ".mlp", {"LlamaMLP", "Module"}});
    others.push_back({p + ".mlp.act_fn", {"SiLU", "SiLUActivation", "Module"}});
    others.push_back({p + ".input_layernorm", {"LlamaRMSNorm", "Module"}});
    others.push_back({p + ".post_attention_layernorm", {"LlamaRMSNorm", "Module"}});
  }
  for (const auto& m : others)
    if (const QuantScheme* s = qc.resolve(m.name, m.mro))
      fail(ErrorCode::UnsupportedModel,
           std::string(kRoot) + ".config_groups." + s->group + " targets " +
               (m.name.empty() ? std::string("the whole model") : "module '" + m.name + "'") + " (" + m.mro[0] +
               "): llrt quantizes only Linear layers; embeddings, norms and attention stay in their own dtype");
  LlamaQuantPlan plan;
  plan.layers.resize(size_t(n_layers));
  for (int i = 0; i < n_layers; ++i)
    for (const char* l : kLlamaLinears)
      plan.layers[size_t(i)].push_back(qc.resolve("model.layers." + std::to_string(i) + "." + l, lin));
  plan.lm_head = qc.resolve("lm_head", lin);
  if (plan.lm_head && tied)
    fail(ErrorCode::UnsupportedModel,
         std::string(kRoot) + ".config_groups." + plan.lm_head->group +
             " quantizes lm_head, but tie_word_embeddings is true (lm_head shares the embedding): unsupported; "
             "add \"lm_head\" to the ignore list");
  return plan;
}

// ==================================================================== one Linear

bool q8_same_activation_quant(const ActQuantParams& a, const ActQuantParams& b) {
  if (a.mode != b.mode) return false;
  if (a.mode != ActQuantMode::Static) return true;
  return a.scale == b.scale && a.zero_point == b.zero_point;
}

WeightView Q8Linear::view() const {
  WeightView v;
  v.data = w;
  v.dtype = DType::I8;
  v.scales = w_scale;
  v.scale_dtype = w_scale_dtype;
  v.granularity = w_scale_per_channel ? ScaleGranularity::Channel : ScaleGranularity::Tensor;
  v.act = act;
  return v;
}

LinearArgs Q8Linear::args(const void* xq, float* y, int64_t ldy, int64_t M, int64_t n0, int64_t n1) const {
  LinearArgs a;
  a.w = view();
  a.K = K;
  a.xp = xq;
  a.y = y;
  a.ldy = ldy;
  a.M = M;
  a.n0 = n0;
  a.n1 = n1;
  return a;
}

std::vector<Q8TensorName> q8_linear_tensor_names(const QuantScheme& s) {
  std::vector<Q8TensorName> v = {{"weight", true}, {"weight_scale", true}, {"weight_zero_point", false}};
  if (s.act_kind == QuantActKind::StaticTensor) {
    v.push_back({"input_scale", true});
    v.push_back({"input_zero_point", !s.act_symmetric});
  }
  return v;
}

namespace {

double element_as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.as<float>()[i];
    case DType::F16: return f16_to_f32(t.as<uint16_t>()[i]);
    case DType::BF16: return bf16_to_f32(t.as<uint16_t>()[i]);
    case DType::I8: return t.as<int8_t>()[i];
    case DType::I32: return t.as<int32_t>()[i];
    default: return NAN;
  }
}

bool shape_is(const Tensor& t, std::initializer_list<std::vector<int64_t>> options) {
  for (const auto& o : options)
    if (t.shape() == o) return true;
  return false;
}

}  // namespace

Q8Linear validate_q8_linear(const std::string& module, const QuantScheme& s, int64_t N, int64_t K,
                            const Tensor* weight, const Tensor* wscale, const Tensor* wzp,
                            const Tensor* iscale, const Tensor* izp) {
  auto bad = [&](const std::string& tensor, const std::string& what) {
    fail(ErrorCode::Checkpoint, module + "." + tensor + ": " + what + " (quantization scheme: " + s.describe() + ")");
  };
  auto need_float = [&](const Tensor& t, const std::string& nm) {
    if (t.dtype() != DType::BF16 && t.dtype() != DType::F16 && t.dtype() != DType::F32)
      bad(nm, std::string("dtype ") + dtype_name(t.dtype()) + ", expected BF16, F16 or F32");
  };
  auto need_int = [&](const Tensor& t, const std::string& nm) {
    if (t.dtype() != DType::I8 && t.dtype() != DType::I32)
      bad(nm, std::string("dtype ") + dtype_name(t.dtype()) + ", expected I8 or I32");
  };
  if (!s.quantized) fail(ErrorCode::Internal, module + ": validate_q8_linear on an unquantized scheme");
  if (!weight) bad("weight", "missing");
  if (weight->dtype() != DType::I8)
    bad("weight", std::string("dtype ") + dtype_name(weight->dtype()) + ", expected I8 for " + s.format);
  if (weight->shape() != std::vector<int64_t>{N, K})
    bad("weight", "shape " + shape_str(weight->shape()) + ", expected " + shape_str({N, K}));
  if (!weight->is_contiguous()) bad("weight", "not contiguous");
  if (K > 65536) bad("weight", "in_features " + std::to_string(K) + " > 65536: int32 accumulation could overflow");
  if (!wscale) bad("weight_scale", "missing");
  need_float(*wscale, "weight_scale");
  const bool per_channel = s.weight_strategy == QuantWeightStrategy::Channel;
  if (per_channel ? !shape_is(*wscale, {{N, 1}, {N}}) : !shape_is(*wscale, {{1}, {}, {1, 1}}))
    bad("weight_scale", "shape " + shape_str(wscale->shape()) + ", expected " +
                            (per_channel ? shape_str({N, 1}) + " or " + shape_str({N}) : std::string("[1] or []")));
  for (int64_t i = 0; i < wscale->numel(); ++i) {
    const double v = element_as_double(*wscale, i);
    if (!std::isfinite(v) || v < 0) bad("weight_scale", "element " + std::to_string(i) + " is " + std::to_string(v) + ", expected finite >= 0");
  }
  if (wzp) {
    need_int(*wzp, "weight_zero_point");
    if (wzp->numel() != wscale->numel())
      bad("weight_zero_point", "shape " + shape_str(wzp->shape()) + " does not match weight_scale " + shape_str(wscale->shape()));
    for (int64_t i = 0; i < wzp->numel(); ++i)
      if (element_as_double(*wzp, i) != 0)
        bad("weight_zero_point", "element " + std::to_string(i) + " is " + std::to_string(int64_t(element_as_double(*wzp, i))) +
                                     ": symmetric weights need all-zero zero points");
  }
  Q8Linear q;
  q.name = module;
  q.N = N;
  q.K = K;
  q.w = weight->as<int8_t>();
  q.w_scale = wscale->data();
  q.w_scale_dtype = wscale->dtype();
  q.w_scale_per_channel = per_channel;
  if (s.act_kind == QuantActKind::DynamicToken) {
    if (iscale) bad("input_scale", "present, but the scheme quantizes activations dynamically");
    if (izp) bad("input_zero_point", "present, but the scheme quantizes activations dynamically");
    q.act.mode = s.act_symmetric ? ActQuantMode::DynamicSymmetric : ActQuantMode::DynamicAsymmetric;
    return q;
  }
  q.act.mode = ActQuantMode::Static;
  if (!iscale) bad("input_scale", "missing (static activation quantization)");
  need_float(*iscale, "input_scale");
  if (iscale->numel() != 1) bad("input_scale", "shape " + shape_str(iscale->shape()) + ", expected [1] (per-tensor)");
  const double sc = element_as_double(*iscale, 0);
  if (!std::isfinite(sc) || !(sc > 0) || !std::isfinite(float(sc)) || !(float(sc) > 0))
    bad("input_scale", "value " + std::to_string(sc) + ", expected finite > 0");
  q.act.scale = float(sc);
  if (izp) {
    need_int(*izp, "input_zero_point");
    if (izp->numel() != 1) bad("input_zero_point", "shape " + shape_str(izp->shape()) + ", expected [1] (per-tensor)");
    const double zp = element_as_double(*izp, 0);
    if (zp < -128 || zp > 127) bad("input_zero_point", "value " + std::to_string(int64_t(zp)) + " outside [-128, 127]");
    if (s.act_symmetric && zp != 0)
      bad("input_zero_point", "value " + std::to_string(int64_t(zp)) + ", but the scheme's activations are symmetric");
    q.act.zero_point = int32_t(zp);
  } else if (!s.act_symmetric) {
    bad("input_zero_point", "missing (static asymmetric activation quantization)");
  }
  return q;
}

}  // namespace llrt
