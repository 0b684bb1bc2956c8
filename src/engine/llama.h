// llrt: what a Llama checkpoint must contain, what it needs from the kernel
// registry, how much memory it takes, and which family it is. Everything here
// works from config.json and the safetensors headers only: no weight is read.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "llrt/checkpoint.h"
#include "src/engine/kernels.h"
#include "src/quant/quant.h"

namespace llrt {

enum class WeightRole { Embedding, Norm, Linear, LmHead };

// One module of the model that holds weights, with the shape config.json implies.
struct ModuleSpec {
  std::string name;            // "model.layers.3.mlp.down_proj"
  WeightRole role;
  int64_t out = 0, in = 0;     // Linear/LmHead: [out, in]; Embedding: [vocab, hidden]; Norm: out=hidden
  int64_t layer = -1;          // decoder layer, -1 outside the layers
  int slot = 0;                // in a layer: Linear - index in kLlamaLinears; Norm - 0 input, 1 post-attention
};
// Every weight-holding module of LlamaForCausalLM in checkpoint order: the one list of
// Llama module names (with kLlamaLinears, llrt/quant.h) that validation, the model plan
// and both engines read.
std::vector<ModuleSpec> llama_modules(const ModelConfig& c);
// Parameter count implied by the config (tied embeddings counted once).
int64_t llama_param_count(const ModelConfig& c);

// Checks the checkpoint's tensor set against the config: every expected tensor
// present with the right shape and a supported dtype, nothing unexpected (HF's
// stale rotary_emb.inv_freq buffers are tolerated). Error{Checkpoint} names the
// tensor and its file. Quantized linears are checked by the quantization scheme.
void validate_llama_checkpoint(const Checkpoint& ck);
// One quantized Linear's tensors from the checkpoint, checked against its scheme and [N, K]
// (validate_q8_linear; Error{Checkpoint} naming what is wrong). Validation and the plan share it.
Q8Linear llama_q8_linear(const Checkpoint& ck, const std::string& module, const QuantScheme& s, int64_t N, int64_t K);

// Every (op, weight dtype, activation dtype) the forward pass will call, with who needs it;
// attention is keyed by the KV cache's dtype (`kv_dtype`: F32, F16 or BF16).
// `device`: the CPU and CUDA engines split attention into different ops (llrt/kernels.h).
std::vector<KernelNeed> llama_kernel_needs(const Checkpoint& ck, DType kv_dtype = DType::F32,
                                           DeviceKind device = DeviceKind::Cpu);

// The context length an engine takes for `requested` positions (0: min(max_position_embeddings,
// 4096)); beyond max_position_embeddings is Error{InvalidArgument}. Context, BatchContext and the
// CUDA engine all size their caches with it.
int64_t context_length(const ModelConfig& c, int64_t requested);

struct MemoryEstimate {
  uint64_t weight_bytes = 0;        // exactly the tensors' bytes in the files
  uint64_t kv_bytes_per_token = 0;  // K and V in the KV dtype, all layers
  int64_t ctx = 0;
  uint64_t kv_bytes = 0;            // kv_bytes_per_token * ctx
  uint64_t scratch_bytes = 0;       // activations + kernel prep buffers for the batch size
  int64_t batch = 0;
  uint64_t total() const { return weight_bytes + kv_bytes + scratch_bytes; }
};
// `threads` sizes the per-thread attention scratch. The engine allocates exactly
// kv_bytes + scratch_bytes (same function), so the estimate is exact.
// `kv_dtype`: the KV cache's (ContextOptions::kv_dtype: F32, F16 or BF16).
MemoryEstimate estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch, int threads,
                               DType kv_dtype = DType::F32);

struct ModelFamily {
  std::string family;    // "Meta Llama 3.2", "TinyLlama / Llama 2", "DeepSeek-R1-Distill-Llama", ...
  std::string variant;   // "BF16, tied embeddings", "compressed-tensors w8a8 (int8 per-channel...)"
  bool sharded = false;
  bool quantized = false;
  std::vector<std::string> evidence;
};
ModelFamily classify_model(const Checkpoint& ck);

struct TokenizerFiles {
  std::vector<std::pair<std::string, std::string>> files;  // (file name, kind)
  bool has_chat_template = false;
};
TokenizerFiles find_tokenizer_files(const std::filesystem::path& dir);

}  // namespace llrt
