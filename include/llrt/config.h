// llrt: config.json and generation_config.json for the Llama family, parsed into
// typed structs with every value checked. Unknown architectures, rope types,
// activations or biases are Error{UnsupportedModel}; invalid numbers are Error{Config}.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <memory>

namespace llrt {

struct RopeScaling {
  enum class Type { None, Linear, Llama3 } type = Type::None;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;   // llama3
  int64_t original_max_position_embeddings = 0;            // llama3
};
const char* rope_type_name(RopeScaling::Type t);

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM"
  std::string model_type;    // "llama"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads when absent
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;  // as written ("bfloat16"...); informative only
  // config.json's "quantization_config" as written (null when absent); its meaning is typed by the
  // quantization module (src/quant), the JSON value is internal (src/config_json.h).
  std::shared_ptr<const struct QuantizationConfigJson> quantization_config;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  int64_t n_rep() const { return num_attention_heads / num_key_value_heads; }

  static ModelConfig load(const std::filesystem::path& config_json);
};

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens, max_length;

  static GenerationConfig load(const std::filesystem::path& path);
};

}  // namespace llrt
