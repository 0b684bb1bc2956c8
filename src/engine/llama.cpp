// The Llama checkpoint contract: expected modules and shapes, kernel needs, memory,
// and family detection. Reads config.json and safetensors headers only.
#include <algorithm>
#include <optional>
#include <set>

#include "llrt/error.h"
#include "src/io/config_json.h"
#include "src/engine/llama.h"
#include "src/quant/quant.h"
#include "kernel_choice.h"
#include "scratch_plan.h"
#include "src/io/bounded_io.h"

namespace llrt {

namespace fs = std::filesystem;

std::vector<ModuleSpec> llama_modules(const ModelConfig& c) {
  std::vector<ModuleSpec> m;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  // [out, in] of each of kLlamaLinears: q, k, v, o, gate, up, down.
  const int64_t shape[7][2] = {{c.q_dim(), H}, {c.kv_dim(), H}, {c.kv_dim(), H}, {H, c.q_dim()}, {I, H}, {I, H}, {H, I}};
  m.push_back({"model.embed_tokens", WeightRole::Embedding, c.vocab_size, H});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    m.push_back({p + "input_layernorm", WeightRole::Norm, H, 0, l, 0});
    for (int j = 0; j < 7; ++j) {
      if (j == 4) m.push_back({p + "post_attention_layernorm", WeightRole::Norm, H, 0, l, 1});
      m.push_back({p + kLlamaLinears[j], WeightRole::Linear, shape[j][0], shape[j][1], l, j});
    }
  }
  m.push_back({"model.norm", WeightRole::Norm, H, 0});
  if (!c.tie_word_embeddings) m.push_back({"lm_head", WeightRole::LmHead, c.vocab_size, H});
  return m;
}

int64_t llama_param_count(const ModelConfig& c) {
  int64_t n = 0;
  for (const auto& m : llama_modules(c)) n += m.role == WeightRole::Norm ? m.out : m.out * m.in;
  return n;
}

namespace {

bool is_float_dtype(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

std::string where(const Checkpoint& ck, const std::string& tensor) {
  std::string f = ck.file_of(tensor);
  return "tensor '" + tensor + "'" + (f.empty() ? "" : " in " + f);
}

void check_float_tensor(const Checkpoint& ck, const std::string& name, const std::vector<int64_t>& shape) {
  const TensorInfo* t = ck.find(name);
  if (!t) fail(ErrorCode::Checkpoint, ck.dir().string() + ": missing tensor '" + name + "' (config.json implies it)");
  if (!is_float_dtype(t->dtype)) {
    if (!dtype_is_compute(t->dtype) || t->dtype == DType::I8)
      fail(ErrorCode::UnsupportedDType, where(ck, name) + " has dtype " + dtype_name(t->dtype) +
                                            "; llrt runs float weights in F32, F16 or BF16" +
                                            (t->dtype == DType::I8 ? " (I8 weights need a compressed-tensors quantization_config)" : ""));
    fail(ErrorCode::Checkpoint, where(ck, name) + " has dtype " + dtype_name(t->dtype) + ", expected F32, F16 or BF16");
  }
  if (t->shape != shape)
    fail(ErrorCode::Checkpoint, where(ck, name) + " has shape " + shape_str(t->shape) + " but config.json implies " + shape_str(shape));
}

}  // namespace

namespace {

// A quantized Linear's tensors against its scheme (adding their names to `owned`); false when
// the module is not quantized (the caller checks a float weight).
bool validate_quantized_linear(const Checkpoint& ck, const QuantConfig* qc, const ModuleSpec& m, std::set<std::string>& owned) {
  if (!qc) {
    const TensorInfo* t = ck.find(m.name + ".weight");
    if (t && t->dtype == DType::I8)
      fail(ErrorCode::UnsupportedDType, "tensor '" + m.name + ".weight' in " + ck.file_of(m.name + ".weight") +
                                            " is I8 but config.json has no quantization_config: llrt will not guess its scales");
    return false;
  }
  const QuantScheme* s = qc->resolve(m.name);
  if (!s) return false;
  for (const auto& n : q8_linear_tensor_names(*s)) {
    std::string full = m.name + "." + n.suffix;
    if (ck.find(full)) owned.insert(full);
    else if (n.required)
      fail(ErrorCode::Checkpoint, ck.dir().string() + ": missing tensor '" + full + "' (module '" + m.name + "' is quantized: " +
                                      s->describe() + ")");
  }
  (void)llama_q8_linear(ck, m.name, *s, m.out, m.in);
  return true;
}

}  // namespace

Q8Linear llama_q8_linear(const Checkpoint& ck, const std::string& module, const QuantScheme& s, int64_t N, int64_t K) {
  auto opt = [&](const char* suffix) -> std::optional<Tensor> {
    if (!ck.find(module + "." + suffix)) return std::nullopt;
    return ck.tensor(module + "." + suffix);
  };
  auto w = opt("weight"), ws = opt("weight_scale"), wz = opt("weight_zero_point"), is = opt("input_scale"), iz = opt("input_zero_point");
  auto p = [](const std::optional<Tensor>& t) { return t ? &*t : nullptr; };
  return validate_q8_linear(module, s, N, K, p(w), p(ws), p(wz), p(is), p(iz));
}

void validate_llama_checkpoint(const Checkpoint& ck) {
  const ModelConfig& c = ck.config();
  std::optional<QuantConfig> qc;
  if (c.quantization_config) {
    qc = parse_quantization_config(c.quantization_config->value);
    // Rejects configs that would quantize non-Linear modules or a tied lm_head.
    (void)plan_llama_quantization(*qc, int(c.num_hidden_layers), c.tie_word_embeddings);
  }
  std::set<std::string> owned;
  for (const auto& m : llama_modules(c)) {
    if ((m.role == WeightRole::Linear || m.role == WeightRole::LmHead) && validate_quantized_linear(ck, qc ? &*qc : nullptr, m, owned))
      continue;
    std::string w = m.name + ".weight";
    std::vector<int64_t> shape = m.role == WeightRole::Norm ? std::vector<int64_t>{m.out} : std::vector<int64_t>{m.out, m.in};
    check_float_tensor(ck, w, shape);
    owned.insert(w);
  }
  // Every tensor must be usable in place (zero-copy): creating the view checks alignment.
  for (const auto& name : owned) (void)ck.tensor(name);
  for (const TensorInfo* t : ck.tensors()) {
    if (owned.count(t->name)) continue;
    if (t->name.size() > 22 && t->name.compare(t->name.size() - 22, 22, "rotary_emb.inv_freq") == 0) continue;
    if (t->name.find("rotary_emb.inv_freq") != std::string::npos) continue;  // stale HF buffer, recomputed from config
    if (c.tie_word_embeddings && t->name == "lm_head.weight")
      fail(ErrorCode::Checkpoint, where(ck, t->name) + " exists but config.json says tie_word_embeddings=true; "
                                  "llrt will not guess which one is meant");
    fail(ErrorCode::Checkpoint, where(ck, t->name) + " is not part of a LlamaForCausalLM with this config.json");
  }
}

std::vector<KernelNeed> llama_kernel_needs(const Checkpoint& ck, DType kv_dtype, DeviceKind device) {
  std::vector<KernelNeed> needs;
  std::set<std::tuple<int, int, int>> seen;
  auto add = [&](Op op, DType w, const std::string& who) {
    if (seen.insert({int(op), int(w), int(DType::F32)}).second) needs.push_back({op, w, DType::F32, who});
  };
  const ModelConfig& c = ck.config();
  for (const auto& m : llama_modules(c)) {
    const TensorInfo* t = ck.find(m.name + ".weight");
    if (!t) continue;
    switch (m.role) {
      case WeightRole::Embedding:
        add(Op::Embedding, t->dtype, m.name + ".weight");
        if (c.tie_word_embeddings) add(Op::Linear, t->dtype, m.name + ".weight (tied lm_head)");
        break;
      case WeightRole::Norm: add(Op::RmsNorm, t->dtype, m.name + ".weight"); break;
      case WeightRole::Linear:
      case WeightRole::LmHead:
        add(Op::Linear, t->dtype, m.name + ".weight");
        break;
    }
  }
  if (device == DeviceKind::Cuda) {  // the CUDA engine's attention ops (their own work: llrt/kernels.h)
    add(Op::RopeKvStore, kv_dtype, "attention (RoPE + KV cache write)");
    add(Op::AttentionAllHeads, kv_dtype, std::string("attention (") + dtype_name(kv_dtype) + " KV cache)");
  } else {
    add(Op::Rope, DType::F32, "attention (RoPE)");
    add(Op::Attention, kv_dtype, std::string("attention (") + dtype_name(kv_dtype) + " KV cache)");
  }
  add(Op::SiluMul, DType::F32, "MLP (SiLU(gate) * up)");
  add(Op::Add, DType::F32, "residual adds");
  return needs;
}

int64_t context_length(const ModelConfig& c, int64_t requested) {
  const int64_t ctx = requested > 0 ? requested : std::min<int64_t>(c.max_position_embeddings, 4096);
  if (ctx > c.max_position_embeddings)
    fail(ErrorCode::InvalidArgument, "context length " + std::to_string(ctx) + " exceeds the model's max_position_embeddings (" +
                                         std::to_string(c.max_position_embeddings) + ")");
  return ctx;
}

MemoryEstimate estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch, int threads, DType kv_dtype) {
  const ModelConfig& c = ck.config();
  uint64_t prep = 0;
  const auto& reg = KernelRegistry::global();
  for (const auto& n : llama_kernel_needs(ck)) {
    if (n.op != Op::Linear) continue;
    if (!reg.find_best(n.op, n.wtype, n.atype)) continue;
    for (Phase ph : {Phase::Decode, Phase::Prefill}) {  // the kernels the engine will run
      const KernelEntry* e = choose_kernel(n.op, n.wtype, ph).entry;
      if (!e) continue;
      auto prep_fn = e->linear().prep_bytes;
      if (!prep_fn) continue;
      for (int64_t K : {c.hidden_size, c.q_dim(), c.intermediate_size}) prep = std::max<uint64_t>(prep, prep_fn(batch, K));
    }
  }
  auto plan = detail::make_scratch_plan(c, ctx, batch, threads, prep, dtype_size(kv_dtype));
  MemoryEstimate e;
  e.weight_bytes = ck.weight_bytes();
  e.kv_bytes_per_token = plan.kv_per_token_bytes;
  e.ctx = ctx;
  e.kv_bytes = plan.kv_bytes;
  e.scratch_bytes = plan.scratch_bytes();
  e.batch = batch;
  return e;
}

TokenizerFiles find_tokenizer_files(const fs::path& dir) {
  TokenizerFiles tf;
  if (fs::exists(dir / "tokenizer.json")) {
    std::string kind = "tokenizer.json";
    try {
      auto j = read_json_file(dir / "tokenizer.json", io::kMaxTokenizerFile);
      std::string model = j.value("/model/type"_json_pointer, std::string("?"));
      bool bytelevel = j.dump().find("\"ByteLevel\"") != std::string::npos;
      kind = "HF tokenizers " + model + (bytelevel ? " (byte-level, Llama 3 style)" : " (SentencePiece-style, byte fallback)");
    } catch (const Error& e) {
      kind = std::string("unreadable: ") + e.what();
    }
    tf.files.push_back({"tokenizer.json", kind});
  }
  if (fs::exists(dir / "tokenizer.model")) {
    std::string head;
    try {
      head = io::read_head(dir / "tokenizer.model", 4096);
    } catch (const Error&) {
    }
    bool tiktoken = !head.empty() && head.find(' ') != std::string::npos && head.find('\n') != std::string::npos &&
                    std::all_of(head.begin(), head.begin() + std::min<size_t>(head.size(), 64), [](char ch) {
                      return ch == '\n' || ch == ' ' || ch == '=' || ch == '+' || ch == '/' || std::isalnum(static_cast<unsigned char>(ch));
                    });
    tf.files.push_back({"tokenizer.model", tiktoken ? "tiktoken BPE ranks (Meta original format)" : "SentencePiece model (protobuf)"});
  }
  if (fs::exists(dir / "tokenizer_config.json")) {
    std::string kind = "tokenizer_config.json";
    try {
      auto j = read_json_file(dir / "tokenizer_config.json");
      tf.has_chat_template = j.contains("chat_template") && !j["chat_template"].is_null();
      kind += tf.has_chat_template ? " (with chat_template)" : " (no chat_template)";
    } catch (const Error& e) {
      kind = std::string("unreadable: ") + e.what();
    }
    tf.files.push_back({"tokenizer_config.json", kind});
  }
  return tf;
}

ModelFamily classify_model(const Checkpoint& ck) {
  const ModelConfig& c = ck.config();
  ModelFamily f;
  f.sharded = ck.sharded();
  f.evidence.push_back("config.json: architecture " + (c.architecture.empty() ? std::string("(none)") : c.architecture) +
                       ", model_type " + (c.model_type.empty() ? std::string("(none)") : c.model_type));
  std::string tok_cfg;
  if (fs::exists(ck.dir() / "tokenizer_config.json")) {
    try {  // an unreadable one is reported by find_tokenizer_files; here it is only evidence
      tok_cfg = io::read_file(ck.dir() / "tokenizer_config.json", io::kMaxConfigJson);
    } catch (const Error&) {
    }
  }
  const bool deepseek = tok_cfg.find("begin\xe2\x96\x81of\xe2\x96\x81sentence") != std::string::npos ||
                        tok_cfg.find("<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") != std::string::npos;
  const auto& rs = c.rope_scaling;
  if (deepseek) {
    f.family = "DeepSeek-R1-Distill-Llama";
    f.evidence.push_back("tokenizer_config.json uses DeepSeek's special tokens (<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>, <\xef\xbd\x9c" "Assistant\xef\xbd\x9c>)");
    if (rs.type == RopeScaling::Type::Llama3) f.evidence.push_back("rope_scaling llama3 (Llama 3.1 architecture)");
  } else if (rs.type == RopeScaling::Type::Llama3) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "rope_scaling llama3 with factor %g", rs.factor);
    f.evidence.push_back(buf);
    if (rs.factor >= 16) {
      f.family = "Meta Llama 3.2";
      f.evidence.push_back("factor 32 is Llama 3.2's (1B/3B)");
    } else {
      f.family = "Meta Llama 3.1";
      f.evidence.push_back("factor 8 is Llama 3.1's");
    }
    if (c.vocab_size == 128256) f.evidence.push_back("vocab_size 128256 (Llama 3 tokenizer)");
  } else if (c.vocab_size == 32000 && rs.type == RopeScaling::Type::None) {
    f.family = "TinyLlama / Llama 2";
    f.evidence.push_back("vocab_size 32000 (Llama 2 SentencePiece vocabulary), rope_theta " + std::to_string(int64_t(c.rope_theta)) + ", no rope scaling");
    if (tok_cfg.find("<|assistant|>") != std::string::npos) f.evidence.push_back("zephyr-style chat template (TinyLlama-Chat)");
  } else if (c.vocab_size == 128256) {
    f.family = "Meta Llama 3";
    f.evidence.push_back("vocab_size 128256 without llama3 rope scaling");
  } else {
    f.family = "Llama (generic LlamaForCausalLM)";
    f.evidence.push_back("vocab_size " + std::to_string(c.vocab_size) + ", rope " + rope_type_name(rs.type));
  }
  // Variant: dtypes, tying, quantization, sharding.
  std::map<DType, uint64_t> by = ck.bytes_by_dtype();
  std::string dts;
  for (auto& [dt, b] : by) dts += std::string(dts.empty() ? "" : "+") + dtype_name(dt);
  if (c.quantization_config) {
    f.quantized = true;
    std::string method = c.quantization_config->value.value("quant_method", std::string("?"));
    std::string format = c.quantization_config->value.value("format", std::string("?"));
    f.variant = method + " " + format + " (" + dts + ")";
    if (method == "compressed-tensors") f.variant = "compressed-tensors w8a8 " + format + " (" + dts + ")";
    f.evidence.push_back("quantization_config.quant_method = " + method + ", format = " + format);
  } else {
    f.variant = dts;
  }
  f.variant += c.tie_word_embeddings ? ", tied embeddings" : ", untied lm_head";
  f.variant += ck.sharded() ? ", sharded (" + std::to_string(ck.shards().size()) + " files)" : ", single file";
  if (ck.sharded()) f.evidence.push_back("model.safetensors.index.json with " + std::to_string(ck.shards().size()) + " shards");
  if (!c.torch_dtype.empty()) f.evidence.push_back("torch_dtype " + c.torch_dtype);
  return f;
}

}  // namespace llrt
