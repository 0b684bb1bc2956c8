// llrt: w8a8 int8 checkpoints in the compressed-tensors format, natively.
//
// Three parts:
//   1. The format contract: `quantization_config` (config.json) parsed into a typed
//      QuantConfig, and `resolve()` saying which scheme (if any) applies to a module.
//   2. Per-Linear tensor validation: Q8Linear, ready for the kernel.
//   3. The I8 Linear kernels (registered in the kernel registry under
//      Op::Linear, weights I8, activations F32).
//
// ---------------------------------------------------------------------------------
// The contract (anything else is Error{UnsupportedModel} naming the key and value):
//   quant_method "compressed-tensors", quantization_status "compressed",
//   format "int-quantized" | "naive-quantized" (top level, or per config group with
//   top-level "mixed-precision"); kv_cache_scheme null; no sparsity/transform config.
//   config_groups: {name: scheme} or {preset: [targets]} with preset W8A8 / INT8 /
//   UNQUANTIZED. A scheme has targets, weights, input_activations,
//   output_activations (null), format (optional):
//     weights            num_bits 8, type int, symmetric true, strategy channel|tensor,
//                        dynamic false, group_size null (or -1 = channel),
//                        block_structure null, actorder null|false|"weight"|"static"
//     input_activations  num_bits 8, type int, either dynamic true + strategy token
//                        (symmetric or asymmetric), or dynamic false + strategy
//                        tensor (symmetric or asymmetric: input_scale [+ input_zero_point])
//   Keys accepted without effect: observer, observer_kwargs, scale_dtype (weights and
//   static activations: the stored tensor's dtype rules), zp_dtype (null or int8),
//   version, global_compression_ratio, run_compressed, provider.
//   Unknown keys are errors: llrt does not guess what a new key means.
//
// Matching (compressed-tensors' own rules, utils/match.py + lifecycle/apply.py):
//   * a module is ignored when any `ignore` entry matches it; entries are exact module
//     names, "re:<pattern>" (Python re.match: anchored at the start, not at the end),
//     or class names (e.g. "Linear");
//   * otherwise the targets of all groups are candidates (a target listed by two
//     groups belongs to the later group); exact-name matches win over regex matches,
//     which win over class-name matches (ties: the target string that sorts first).
//   Regex patterns run on std::regex (ECMAScript) after a small translation from
//   Python syntax: (?P<name>...) -> (...), \A -> ^, \Z -> $. Python-only constructs
//   with no ECMAScript equivalent (lookbehind, inline flags like (?i), (?P=name),
//   conditionals, atomic groups, possessive quantifiers) are Error{UnsupportedModel}.
//   Module names never contain newlines, so `$` behaves the same in both.
//
// ---------------------------------------------------------------------------------
// How the engine uses this (Llama):
//   QuantConfig qc = parse_quantization_config(config.quantization_config);
//   LlamaQuantPlan plan = plan_llama_quantization(qc, n_layers, tie_word_embeddings);
//     -> for every Linear ("model.layers.{i}.self_attn.q_proj", ..., "lm_head"): the
//        scheme or null (not quantized: the module keeps its float `weight`). Errors if
//        the config would quantize a non-Linear module (embeddings, norms, attention).
//   For each quantized module M with [out, in] = [N, K]:
//     tensors  M.weight             I8 [N, K]          used in place, as stored
//              M.weight_scale       BF16/F16/F32, channel: [N, 1] or [N]; tensor: [1], [] or [1, 1]
//              M.weight_zero_point  optional, I8/I32, same shape as weight_scale, must be all 0
//              M.input_scale        static activations only: BF16/F16/F32 [1] or [], finite > 0
//              M.input_zero_point   static asymmetric: I8/I32 [1] or [] (optional when symmetric,
//                                   then it must be 0)
//     q8_linear_tensor_names(scheme) lists them (required / optional) for the tensor-set check;
//     Q8Linear q = validate_q8_linear(name, scheme, N, K, &weight, &weight_scale, ...);
//   Per forward call (x: F32 [M, ldx]), through the one Linear interface (llrt/kernels.h):
//     const LinearKernel& k = linear_q8_kernel(backend)     // or via the registry entry
//     buffer of k.prep_bytes(M, K) bytes (64-byte aligned)
//     k.prep({x, ldx, M, K, 0, M, &q.act, buf})             // once; may be split over tokens
//     k.run(q.args(buf, y, ldy, M, n0, n1))                 // per thread, rows [n0, n1)
//   Variants (registry, Op::Linear I8/F32): ref (scalar oracle), avx2 (16-bit madd),
//   avx_vnni / avx512_vnni (vpdpbusd), amx (tdpbssd tiles for M >= 8 and K % 64 == 0,
//   the avx512_vnni code otherwise). All produce bit-identical outputs.
//   Activation quantization is the kernel's prep, run once per distinct input: it is
//   the "fusion" that pays (a whole-K pass per token, vectorized, ~0.5 us for K = 2048
//   on one core, against ~20 us for the q/k/v matvecs that share it).
//   Linears that read the same input (q/k/v, gate/up) can share one prep when
//   q8_same_activation_quant(a, b) (always true for dynamic activations; static ones
//   need equal input_scale and zero point). The prep buffer layout depends on the
//   kernel: a buffer prepared by one kernel may only be run by the same kernel.
//
// ---------------------------------------------------------------------------------
// Arithmetic (identical in every kernel variant: outputs are bit-identical to Ref):
//   activations, per token m (F32 in, int8 codes out; rint = round half to even):
//     dynamic symmetric    a = max|x|; s = a / 127; q = clamp(rint(x * (127 / a)), -128, 127)
//                          (vLLM's formula; compressed-tensors' fake-quant divides by 127.5:
//                          the two differ by ~8% relative in the mini model's last logits, top-1
//                          identical; llrt follows vLLM, which the references use)
//     dynamic asymmetric   lo = min(min x, 0); hi = max(max x, 0); s = (hi - lo) / 255;
//                          zp = clamp(rint(-128 - lo / s), -128, 127);
//                          q = clamp(rint(x / s) + zp, -128, 127)
//                          (compressed-tensors' range, which always contains 0; vLLM's kernel
//                          uses the raw min/max: the same whenever a token has both signs)
//     static               s = input_scale, zp = input_zero_point (0 if absent);
//                          q = clamp(rint(x / s) + zp, -128, 127)
//     a token of all zeros gives s = 0, q = 0 (output 0); a token holding Inf/NaN gives
//     s = NaN (its outputs are NaN, never silent garbage).
//   matmul:   acc[m, n] = sum_k q[m, k] * w[n, k] - zp[m] * sum_k w[n, k]   (exact int32)
//   output:   y[m, n] = (float(acc) * s[m]) * w_scale[n]       (two F32 roundings, no FMA)
//   K <= 65536 keeps every int32 intermediate exact (validate_q8_linear checks it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llrt/dtype.h"
#include "src/engine/kernels.h"
#include "llrt/tensor.h"

namespace llrt {

// ============================== 1. the config ==============================

enum class QuantWeightStrategy : uint8_t { Channel, Tensor };
enum class QuantActKind : uint8_t { DynamicToken, StaticTensor };

struct QuantScheme {
  std::string group;                 // config group name, e.g. "group_0"
  std::vector<std::string> targets;  // as written in the config
  std::string format;                // "int-quantized" / "naive-quantized"
  bool quantized = true;             // false: an UNQUANTIZED preset / scheme without args
  QuantWeightStrategy weight_strategy = QuantWeightStrategy::Channel;
  QuantActKind act_kind = QuantActKind::DynamicToken;
  bool act_symmetric = true;
  std::string describe() const;  // "int8 per-channel weights, dynamic per-token symmetric int8 activations"
};

// One ignore entry or target: exact name, regex ("re:"), or class name.
struct QuantPattern {
  std::string text;                          // as written, e.g. "re:.*down_proj"
  std::shared_ptr<const void> regex;         // compiled std::regex for "re:" entries
  bool matches_name(const std::string& module_name) const;
};

struct QuantConfig {
  std::string quant_method;          // "compressed-tensors"
  std::string format;                // top-level format
  std::string quantization_status;   // "compressed"
  std::string version;               // informational, may be empty
  std::vector<QuantScheme> groups;   // in config order
  std::vector<QuantPattern> ignore;

  // Which scheme applies to `module_name`, whose class and base classes are
  // `class_names` (Python MRO names; a Llama projection is {"Linear", "Module"}).
  // Null: not quantized (ignored, unmatched, or an UNQUANTIZED group).
  const QuantScheme* resolve(const std::string& module_name,
                             const std::vector<std::string>& class_names = {"Linear", "Module"}) const;

 private:
  friend QuantConfig parse_quantization_config(const nlohmann::json& qc);
  struct Target { QuantPattern pattern; size_t group; };
  std::vector<Target> targets_;  // one per distinct target string (later group wins)
};

// Throws Error{UnsupportedModel} for anything outside the contract (naming the key
// path and value, e.g. "quantization_config.config_groups.group_0.weights.num_bits = 4")
// and Error{Config} for malformed JSON shapes (a string where a list belongs, ...).
QuantConfig parse_quantization_config(const nlohmann::json& qc);

// Translate a Python `re` pattern to ECMAScript (see the header comment); throws
// Error{UnsupportedModel} for constructs without an equivalent, Error{Config} when the
// pattern does not compile. `where` names the config key for the message.
std::string python_regex_to_ecmascript(const std::string& pattern, const std::string& where);

// The quantization of every Linear in a Llama model.
struct LlamaQuantPlan {
  // layers[i][j]: scheme of model.layers.i.<kLlamaLinears[j]>, null = float weight.
  std::vector<std::vector<const QuantScheme*>> layers;
  const QuantScheme* lm_head = nullptr;
  int quantized_count() const;
};
extern const char* const kLlamaLinears[7];  // "self_attn.q_proj", ..., "mlp.down_proj"
// Throws Error{UnsupportedModel} when a group would quantize a module that is not a
// Linear (embed_tokens, norms, attention, mlp, decoder layer, ...) or lm_head of a
// model with tied embeddings. The plan points into `qc`: keep qc alive.
LlamaQuantPlan plan_llama_quantization(const QuantConfig& qc, int n_layers, bool tie_word_embeddings);

// ============================== 2. one quantized Linear ==============================

// (ActQuantMode / ActQuantParams: llrt/kernels.h, beside the Linear interface that uses them.)
bool q8_same_activation_quant(const ActQuantParams& a, const ActQuantParams& b);

// A validated quantized Linear: pointers into the checkpoint's tensors (no copies).
struct Q8Linear {
  std::string name;
  int64_t N = 0, K = 0;
  const int8_t* w = nullptr;            // [N, K]
  const void* w_scale = nullptr;
  DType w_scale_dtype = DType::BF16;    // BF16 / F16 / F32
  bool w_scale_per_channel = true;
  ActQuantParams act;
  // The weight view the Linear kernels read (data, scales, granularity, activation quantization).
  WeightView view() const;
  // Arguments for LinearKernel::run over rows [n0, n1) of M tokens prepared in xq.
  LinearArgs args(const void* xq, float* y, int64_t ldy, int64_t M, int64_t n0, int64_t n1) const;
};

struct Q8TensorName {
  std::string suffix;  // "weight", "weight_scale", ...
  bool required;
};
// The tensors a module quantized with `s` has (module name + "." + suffix).
std::vector<Q8TensorName> q8_linear_tensor_names(const QuantScheme& s);

// Checks one module's tensors against its scheme and the config's shape [N, K]:
// dtypes, shapes, weight_zero_point all zero, input scale finite > 0, zero point in
// range, weight_scale finite >= 0, K <= 65536. Null pointers: tensor absent.
// Throws Error{Checkpoint} naming the module, the tensor and what is wrong.
Q8Linear validate_q8_linear(const std::string& module, const QuantScheme& s, int64_t N, int64_t K,
                            const Tensor* weight, const Tensor* weight_scale,
                            const Tensor* weight_zero_point, const Tensor* input_scale,
                            const Tensor* input_zero_point);

// ============================== 3. the kernel ==============================
// w8a8 kernels are Linear kernels (llrt/kernels.h) registered for I8 weights: prep quantizes
// the activations (the arithmetic above) into xp, run reads the int8 weights and their scales
// from LinearArgs::w.

// The I8 Linear kernel of exactly backend `b` (usable or not); Error{UnsupportedKernel}
// when this build has none.
const LinearKernel& linear_q8_kernel(Backend b);

}  // namespace llrt
