// Internal: the engine's weight structs and the threaded op runners.
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include "llrt/model.h"
#include "scratch_plan.h"

namespace llrt {

struct LinearWeights {
  std::string name;
  int64_t out = 0, in = 0;
  DType dtype = DType::F32;
  const void* w = nullptr;  // [out, in] in `dtype`, straight from the file
  // The kernel per phase (src/kernel_choice.h: measured on this machine): `entry`/`kernel`
  // run decode steps (M == 1), `entry_prefill`/`kernel_prefill` every M > 1.
  const LinearKernel* kernel = nullptr;  // float weights
  const KernelEntry* entry = nullptr;
  const LinearKernel* kernel_prefill = nullptr;
  const KernelEntry* entry_prefill = nullptr;
  // w8a8 (compressed-tensors): filled by the quantized-linear binder.
  std::shared_ptr<const void> q8;  // opaque per-module quantization state
};

struct NormWeights {
  const void* w = nullptr;
  DType dtype = DType::F32;
  RmsNormFn fn = nullptr;
};

struct LayerWeights {
  NormWeights attn_norm, mlp_norm;
  LinearWeights q, k, v, o, gate, up, down;
};

struct Model::Impl {
  Checkpoint ck;
  ModelConfig cfg;
  std::vector<LayerWeights> layers;
  NormWeights final_norm;
  const void* embed = nullptr;
  DType embed_dtype = DType::F32;
  EmbeddingFn embed_fn = nullptr;
  LinearWeights lm_head;
  RopeFn rope_fn = nullptr;
  SiluMulFn silu_mul_fn = nullptr;
  AddFn add_fn = nullptr;
  std::vector<KernelVerdict> plan;
  int threads = 1;
  double load_seconds = 0;
  std::vector<float> inv_freq;
};

// The rows of up to 8 linears run in one parallel region, as work items of whole 16-row
// blocks (about 4 per thread and linear) that threads take in turn (an atomic counter):
// a thread that another process keeps off its core leaves its items to the others, instead
// of every thread waiting for its fixed share. Row results do not depend on the split.
struct RowChunks {
  int n = 0;
  int64_t total = 0;
  int64_t chunk[8] = {}, first[8] = {}, out[8] = {};
  RowChunks(const LinearWeights* const* ls, int count, int threads);
  void rows(int64_t item, int* i, int64_t* n0, int64_t* n1) const;  // item in [0, total)
};

// Runs y_i = x . W_i^T for several linears sharing one input, in one parallel
// region; activations prepared once per distinct kernel.
void run_linears(const Model::Impl& m, const LinearWeights* const* ls, float* const* ys, int count,
                 const float* x, int64_t M, void* prep_buf);

// Quantized-linear hooks (src/llama_quant.cpp).
void bind_quantized_linear(const Checkpoint& ck, LinearWeights& lw);
size_t q8_prep_bytes(const LinearWeights& lw, int64_t M);  // the kernel that runs M tokens
bool q8_can_share_prep(const LinearWeights& a, const LinearWeights& b);
void run_q8_linears(const LinearWeights* const* ls, float* const* ys, int count, const float* x, int64_t M,
                    void* prep_buf, int threads);

}  // namespace llrt
