// Internal: the engine's weight structs and the threaded op runners.
#pragma once
#include <chrono>
#include <memory>
#include <vector>

#include "llrt/model.h"
#include "model_plan.h"
#include "scratch_plan.h"

namespace llrt {

// One Linear of the plan with the kernels bound to it on this machine (src/kernel_choice.h:
// measured per phase): `decode` runs M == 1, `prefill` every M > 1. Every weight format (F32,
// F16, BF16, I8 + scales) is the same struct and goes through the same runner.
struct LinearWeights {
  std::string name;
  int64_t out = 0, in = 0;
  WeightView w;  // from the plan: data, dtype, scales, activation quantization
  const KernelEntry* decode = nullptr;
  const KernelEntry* prefill = nullptr;
  const KernelEntry& entry(int64_t M) const { return *(M == 1 ? decode : prefill); }
};

struct NormWeights {
  const void* w = nullptr;
  DType dtype = DType::F32;
  RmsNormFn fn = nullptr;
};

struct LayerWeights {
  NormWeights attn_norm, mlp_norm;
  LinearWeights lin[kNumLlamaLinears];  // q, k, v, o, gate, up, down (LlamaLinear)
};

struct Model::Impl {
  Checkpoint ck;
  ModelPlan plan;  // what is run (src/model_plan.h); its views point into ck
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
  std::vector<KernelVerdict> verdicts;
  int threads = 1;
  double load_seconds = 0;
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

// Runs y_i = x . W_i^T for several linears sharing one input, in one parallel region;
// the activations are prepared once when the linears share a kernel and its prep
// (linears_fusable: same dtype, K and activation quantization).
void run_linears(const Model::Impl& m, const LinearWeights* const* ls, float* const* ys, int count,
                 const float* x, int64_t M, void* prep_buf);

}  // namespace llrt
