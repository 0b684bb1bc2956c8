// Internal: the model plan. Decided once from the checkpoint (config.json + safetensors
// headers + the parsed quantization config) and executed by every engine: the CPU engine
// binds a kernel to each Linear of it (src/engine/model.cpp), the CUDA engine places it in device
// memory (src/cuda/cuda_model.cpp). Adding a weight format is new kernels, registry lines
// and a rule in plan_model(); adding a module is a line in llama_modules().
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "llrt/checkpoint.h"
#include "src/engine/kernels.h"
#include "src/quant/quant.h"

namespace llrt {

// The Linear modules of a Llama decoder layer, in kLlamaLinears' order (llrt/quant.h).
enum LlamaLinear : int { kQProj, kKProj, kVProj, kOProj, kGateProj, kUpProj, kDownProj, kNumLlamaLinears };

// One Linear: where its weights are and how they are stored.
struct LinearPlan {
  std::string name;    // module ("model.layers.3.mlp.down_proj", "lm_head (tied to model.embed_tokens)")
  std::string tensor;  // its weight tensor
  int64_t N = 0, K = 0;  // [out, in]
  WeightView view;       // data (in the checkpoint's memory), dtype; I8: scales + activation quantization
  const QuantScheme* scheme = nullptr;  // the compressed-tensors scheme (in ModelPlan::quant); null: float
  uint64_t weight_bytes() const;  // N * K * dtype size
  uint64_t scale_bytes() const;   // I8: the scales' bytes (0 otherwise)
};

// A tensor read whole by one op (embedding table, norm weight).
struct TensorPlan {
  std::string tensor;
  const void* data = nullptr;
  DType dtype = DType::F32;
  uint64_t bytes = 0;
};

struct LayerPlan {
  TensorPlan attn_norm, mlp_norm;
  LinearPlan linear[kNumLlamaLinears];
};

struct ModelPlan {
  ModelConfig cfg;
  std::shared_ptr<const QuantConfig> quant;  // parsed once; null when the model is not quantized
  TensorPlan embed;
  std::vector<LayerPlan> layers;
  TensorPlan final_norm;
  LinearPlan lm_head;  // tied: the embedding table
  bool tied_head = false;
  // Fusion groups: q|k|v and gate|up read the same input. `fusable`: in every layer the group's
  // modules agree in dtype, K and (w8a8) scale dtype, granularity and activation quantization,
  // so one activation prep serves the group and its weights can be one matrix.
  bool fuse_qkv = false, fuse_gate_up = false;
  std::vector<float> inv_freq;  // RoPE inverse frequencies (HF's float32 computation)

  // The RoPE table rows for positions [0, ctx): cos[p*half + i], sin[p*half + i] with
  // half = head_dim / 2; freqs = float(p) * inv_freq (F32, as HF), cos/sin in F64 rounded to F32.
  void rope_table(int64_t ctx, float* cos, float* sin) const;
};

// Builds the plan of a validated checkpoint (validate_llama_checkpoint). Reads headers and the
// quantization config only; the views point into `ck`'s tensors, so keep `ck` alive.
ModelPlan plan_model(const Checkpoint& ck);

// Whether two Linears can share one activation prep (and be fused): same dtype and K, and for
// I8 the same scale dtype, granularity and activation quantization.
bool linears_fusable(const LinearPlan& a, const LinearPlan& b);

}  // namespace llrt
