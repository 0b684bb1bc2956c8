#include "llrt/config.h"

#include "src/io/config_json.h"

#include <cmath>
#include <limits>

#include "llrt/error.h"
#include "src/io/bounded_io.h"

namespace llrt {

using nlohmann::json;

const char* rope_type_name(RopeScaling::Type t) {
  switch (t) {
    case RopeScaling::Type::None: return "default";
    case RopeScaling::Type::Linear: return "linear";
    case RopeScaling::Type::Llama3: return "llama3";
  }
  return "?";
}

json read_json_file(const std::filesystem::path& path, uint64_t max_bytes) { return io::read_json(path, max_bytes); }

namespace {

struct Reader {
  const json& j;
  std::string what;
  [[noreturn]] void err(const std::string& key, const std::string& msg) const {
    fail(ErrorCode::Config, what + ": '" + key + "' " + msg);
  }
  const json* get(const std::string& key) const {
    auto it = j.find(key);
    return (it == j.end() || it->is_null()) ? nullptr : &*it;
  }
  int64_t integer(const std::string& key, std::optional<int64_t> def = std::nullopt, int64_t lo = 1,
                  int64_t hi = int64_t(1) << 40) const {
    const json* v = get(key);
    if (!v) {
      if (def) return *def;
      err(key, "is missing");
    }
    return io::json_int(*v, what + ": '" + key + "'", lo, hi, ErrorCode::Config);  // never wraps a value past 2^63
  }
  double number(const std::string& key, std::optional<double> def, double lo, double hi) const {
    const json* v = get(key);
    if (!v) {
      if (def) return *def;
      err(key, "is missing");
    }
    if (!v->is_number()) err(key, "must be a number, got " + v->dump());
    double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) err(key, "= " + v->dump() + " is out of range");
    return x;
  }
  std::optional<double> opt_number(const std::string& key, double lo, double hi) const {
    if (!get(key)) return std::nullopt;
    return number(key, std::nullopt, lo, hi);
  }
  std::optional<int64_t> opt_integer(const std::string& key, int64_t lo, int64_t hi) const {
    if (!get(key)) return std::nullopt;
    return integer(key, std::nullopt, lo, hi);
  }
  bool boolean(const std::string& key, bool def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_boolean()) err(key, "must be true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string string(const std::string& key, const std::string& def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_string()) err(key, "must be a string, got " + v->dump());
    return v->get<std::string>();
  }
  std::vector<int64_t> id_list(const std::string& key) const {
    const json* v = get(key);
    std::vector<int64_t> out;
    if (!v) return out;
    // Token ids are int32 everywhere downstream: a value above 2^31 is an error, never truncated.
    auto id = [&](const json& e) {
      if (!e.is_number_integer()) err(key, "must be an integer or a list of integers, got " + v->dump());
      return io::json_int(e, what + ": '" + key + "'", 0, std::numeric_limits<int32_t>::max(), ErrorCode::Config);
    };
    if (v->is_array()) {
      for (const auto& e : *v) out.push_back(id(e));
    } else {
      out.push_back(id(*v));
    }
    return out;
  }
};

RopeScaling parse_rope(const json& cfg, const std::string& what) {
  RopeScaling r;
  auto it = cfg.find("rope_scaling");
  if (it == cfg.end() || it->is_null()) return r;
  if (!it->is_object()) fail(ErrorCode::Config, what + ": 'rope_scaling' must be an object or null");
  Reader rd{*it, what + " rope_scaling"};
  std::string type = rd.string("rope_type", "");
  if (type.empty()) type = rd.string("type", "");  // legacy key
  if (type.empty()) fail(ErrorCode::Config, what + ": rope_scaling has neither 'rope_type' nor 'type'");
  if (type == "default") return r;
  if (type == "linear") {
    r.type = RopeScaling::Type::Linear;
    r.factor = rd.number("factor", std::nullopt, 1e-6, 1e6);
  } else if (type == "llama3") {
    r.type = RopeScaling::Type::Llama3;
    r.factor = rd.number("factor", std::nullopt, 1e-6, 1e6);
    r.low_freq_factor = rd.number("low_freq_factor", std::nullopt, 1e-6, 1e6);
    r.high_freq_factor = rd.number("high_freq_factor", std::nullopt, 1e-6, 1e6);
    r.original_max_position_embeddings = rd.integer("original_max_position_embeddings", std::nullopt, 1, int64_t(1) << 30);
    if (!(r.high_freq_factor > r.low_freq_factor))
      fail(ErrorCode::Config, what + ": rope_scaling high_freq_factor must be greater than low_freq_factor");
  } else {
    fail(ErrorCode::UnsupportedModel, what + ": rope_scaling type '" + type +
                                          "' is not supported (llrt runs default, linear and llama3 RoPE)");
  }
  return r;
}

}  // namespace

ModelConfig model_config_from_json(const json& j, const std::string& what) {
  if (!j.is_object()) fail(ErrorCode::Config, what + ": not a JSON object");
  Reader rd{j, what};
  ModelConfig c;
  c.model_type = rd.string("model_type", "");
  if (const json* a = rd.get("architectures")) {
    if (!a->is_array() || a->empty() || !(*a)[0].is_string()) rd.err("architectures", "must be a list of strings");
    c.architecture = (*a)[0].get<std::string>();
  }
  if (c.architecture.empty() && c.model_type.empty())
    fail(ErrorCode::Config, what + ": neither 'architectures' nor 'model_type' is given");
  if (!c.architecture.empty() && c.architecture != "LlamaForCausalLM")
    fail(ErrorCode::UnsupportedModel, what + ": architecture '" + c.architecture + "' is not supported (llrt runs LlamaForCausalLM)");
  if (!c.model_type.empty() && c.model_type != "llama")
    fail(ErrorCode::UnsupportedModel, what + ": model_type '" + c.model_type + "' is not supported (llrt runs 'llama')");
  c.vocab_size = rd.integer("vocab_size", std::nullopt, 1, int64_t(1) << 24);
  c.hidden_size = rd.integer("hidden_size", std::nullopt, 1, int64_t(1) << 20);
  c.intermediate_size = rd.integer("intermediate_size", std::nullopt, 1, int64_t(1) << 22);
  c.num_hidden_layers = rd.integer("num_hidden_layers", std::nullopt, 1, 4096);
  c.num_attention_heads = rd.integer("num_attention_heads", std::nullopt, 1, 4096);
  c.num_key_value_heads = rd.integer("num_key_value_heads", c.num_attention_heads, 1, 4096);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(ErrorCode::Config, what + ": num_attention_heads (" + std::to_string(c.num_attention_heads) +
                                ") is not a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  if (rd.get("head_dim")) {
    c.head_dim = rd.integer("head_dim", std::nullopt, 2, 4096);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(ErrorCode::Config, what + ": hidden_size (" + std::to_string(c.hidden_size) + ") is not divisible by num_attention_heads (" +
                                  std::to_string(c.num_attention_heads) + ") and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail(ErrorCode::Config, what + ": head_dim " + std::to_string(c.head_dim) + " is odd; RoPE needs pairs");
  c.max_position_embeddings = rd.integer("max_position_embeddings", 2048, 1, int64_t(1) << 30);
  c.rms_norm_eps = rd.number("rms_norm_eps", 1e-6, 0.0, 1.0);
  c.rope_theta = rd.number("rope_theta", 10000.0, 1.0, 1e12);
  c.rope_scaling = parse_rope(j, what);
  c.tie_word_embeddings = rd.boolean("tie_word_embeddings", false);
  if (rd.get("bos_token_id")) c.bos_token_id = rd.integer("bos_token_id", std::nullopt, 0, c.vocab_size - 1);
  c.eos_token_ids = rd.id_list("eos_token_id");
  if (const json* p = rd.get("pad_token_id"); p && p->is_number_integer())
    c.pad_token_id = io::json_int(*p, what + ": 'pad_token_id'", -1, std::numeric_limits<int32_t>::max(), ErrorCode::Config);
  c.torch_dtype = rd.string("torch_dtype", rd.string("dtype", ""));
  std::string act = rd.string("hidden_act", "silu");
  if (act != "silu")
    fail(ErrorCode::UnsupportedModel, what + ": hidden_act '" + act + "' is not supported (Llama uses silu)");
  if (rd.boolean("attention_bias", false))
    fail(ErrorCode::UnsupportedModel, what + ": attention_bias=true is not supported (Llama checkpoints have no biases)");
  if (rd.boolean("mlp_bias", false))
    fail(ErrorCode::UnsupportedModel, what + ": mlp_bias=true is not supported (Llama checkpoints have no biases)");
  if (rd.get("pretraining_tp") && rd.integer("pretraining_tp", 1, 1, 1024) != 1) {
    // HF only uses pretraining_tp>1 to slice matmuls; the math is identical. Accept.
  }
  if (const json* q = rd.get("quantization_config")) {
    if (!q->is_object()) rd.err("quantization_config", "must be an object");
    c.quantization_config = std::make_shared<const QuantizationConfigJson>(QuantizationConfigJson{*q});
  }
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& p) { return model_config_from_json(read_json_file(p), p.string()); }

GenerationConfig generation_config_from_json(const json& j, const std::string& what) {
  if (!j.is_object()) fail(ErrorCode::Config, what + ": not a JSON object");
  Reader rd{j, what};
  GenerationConfig g;
  g.bos_token_id = rd.opt_integer("bos_token_id", 0, int64_t(1) << 24);
  g.eos_token_ids = rd.id_list("eos_token_id");
  if (rd.get("do_sample")) g.do_sample = rd.boolean("do_sample", false);
  g.temperature = rd.opt_number("temperature", 0.0, 1e6);
  g.top_p = rd.opt_number("top_p", 0.0, 1.0);
  g.min_p = rd.opt_number("min_p", 0.0, 1.0);
  g.repetition_penalty = rd.opt_number("repetition_penalty", 1e-6, 1e6);
  g.top_k = rd.opt_integer("top_k", 0, int64_t(1) << 24);
  g.max_new_tokens = rd.opt_integer("max_new_tokens", 0, int64_t(1) << 30);
  g.max_length = rd.opt_integer("max_length", 0, int64_t(1) << 30);
  return g;
}

GenerationConfig GenerationConfig::load(const std::filesystem::path& p) { return generation_config_from_json(read_json_file(p), p.string()); }

}  // namespace llrt
