// Internal: the CUDA engine's weight and buffer plans, shared by the memory estimate
// (which reports them), the model loader and the context (which allocate exactly them),
// so the estimate is exact by construction.
#pragma once
#include <cuda_runtime_api.h>

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_ops.h"
#include "llrt/cuda.h"
#include "src/engine/llama.h"
#include "src/engine/model_plan.h"

namespace llrt::cudaeng {

constexpr uint64_t kAlign = 256;
inline uint64_t align_up(uint64_t v, uint64_t a = kAlign) { return (v + a - 1) / a * a; }

// One tensor's bytes, from the mapped file into the weight arena.
struct Upload {
  const void* src = nullptr;
  uint64_t bytes = 0;
  uint64_t dst = 0;
};

// A Linear on the device: one module, or q|k|v (gate|up) fused into one matrix when
// their dtypes (and w8a8 quantization) agree, their rows then contiguous in the arena.
struct DevLinear {
  std::string name;
  int64_t N = 0, K = 0;
  int64_t col = 0;  // first output column in the destination rows (unfused q/k/v, gate/up)
  DType dtype = DType::F32;  // F32/F16/BF16, or I8 (w8a8)
  uint64_t w_off = 0;
  // w8a8
  uint64_t ws_off = 0;
  DType ws_dtype = DType::BF16;
  bool per_channel = true;
  bool has_rowsum = false;  // activations may have a zero point: sum_k w precomputed
  uint64_t rowsum_off = 0;
  cuda::Q8Mode mode = cuda::Q8Mode::DynamicSymmetric;
  float a_scale = 0;
  int32_t a_zp = 0;
  // bound at load
  const KernelEntry* entry = nullptr;
  const void* w = nullptr;
  const void* ws = nullptr;
  const int32_t* rowsum = nullptr;
};

struct DevNorm {
  uint64_t off = 0;
  DType dtype = DType::F32;
  const KernelEntry* entry = nullptr;
  const void* w = nullptr;
};

struct DevLayer {
  DevNorm attn_norm, mlp_norm;
  std::vector<DevLinear> qkv;      // 1 fused or 3 (columns q | k | v)
  DevLinear o;
  std::vector<DevLinear> gate_up;  // 1 fused or 2 (columns gate | up)
  DevLinear down;
};

struct WeightPlan {
  std::vector<DevLayer> layers;
  DevNorm final_norm;
  uint64_t embed_off = 0;
  DType embed_dtype = DType::F32;
  const void* embed_w = nullptr;
  DevLinear lm_head;  // tied: points at the embedding table (same device bytes)
  std::vector<Upload> uploads;
  uint64_t bytes = 0;
  int64_t max_k_conv = 0;  // largest K of a BF16/F16 linear (activation conversion buffer)
  int64_t max_k_q8 = 0, max_n_q8 = 0;
  bool fused_qkv = false, fused_gate_up = false;
};
// Where the model plan's tensors go in device memory (its fusion groups become one matrix);
// reads headers only, the uploads' sources are the plan's host views.
WeightPlan plan_weights(const ModelPlan& mp);

// Device buffers of one context, as offsets into one allocation.
struct ContextPlan {
  int64_t ctx = 0, batch = 0, logit_rows = 0;
  uint64_t x = 0, xb = 0, qkv = 0, att = 0, gu = 0, logits = 0, conv = 0;
  uint64_t xq = 0, xs = 0, xzp = 0, acc = 0, q8sync = 0, attn = 0, rope_cos = 0, rope_sin = 0;
  uint64_t ids = 0, pos = 0, argmax = 0;
  uint64_t kv = 0;
  uint64_t kv_bytes = 0, attn_bytes = 0, total = 0;
  uint64_t scratch_bytes() const { return total - kv_bytes; }
};
int64_t batch_size(int64_t requested, int64_t ctx);
ContextPlan plan_context(const ModelConfig& c, const WeightPlan& w, int64_t ctx, int64_t batch);

// The device selected for this process, with its properties (Error{Cuda} when none).
CudaDeviceInfo device_info(int index);
std::string human_bytes(uint64_t b);

// What the module's table (module.cpp) points at: llrt/cuda.h's functions, implemented here
// (device.cpp, cuda_model.cpp, cuda_context.cpp). The core's functions of llrt/cuda.h
// forward to them through the table (cuda_loader.cpp).
bool available();
std::string status();
std::vector<CudaDeviceInfo> devices();
int selected_device();
int device_cc();
double measure_copy_bandwidth(uint64_t bytes, int reps);
CudaMemoryEstimate estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch);
CudaFit check_model(const Checkpoint& ck, int64_t ctx, int64_t batch);
std::shared_ptr<CudaModel::Impl> load_model(const std::filesystem::path& dir, const CudaModelOptions& opt);
std::shared_ptr<CudaContext::State> create_context(const CudaModel::Impl& m, const CudaContextOptions& opt);
int64_t context_n_ctx(const CudaContext::State& s);
int64_t context_n_past(const CudaContext::State& s);
void context_reset(CudaContext::State& s);
void context_truncate(CudaContext::State& s, int64_t n_keep);
std::span<const float> context_eval(CudaContext::State& s, std::span<const int32_t> tokens);
std::vector<float> context_eval_all(CudaContext::State& s, std::span<const int32_t> tokens);
int32_t context_eval_greedy(CudaContext::State& s, std::span<const int32_t> tokens);
uint64_t context_allocated_bytes(const CudaContext::State& s);
bool context_graph_captured(const CudaContext::State& s);

}  // namespace llrt::cudaeng

namespace llrt {
struct CudaModel::Impl {
  Checkpoint ck;
  ModelPlan mp;  // the model plan both engines execute (src/model_plan.h); views into ck
  ModelConfig cfg;
  CudaDeviceInfo dev;
  cudaeng::WeightPlan plan;
  void* arena = nullptr;
  std::vector<KernelVerdict> verdicts;
  cuda::EmbeddingFn embed_fn = nullptr;
  cuda::RopeFn rope_fn = nullptr;
  cuda::AttentionFn attn_fn = nullptr;
  cuda::SiluMulFn silu_fn = nullptr;
  // The fused decode step's Linear per weight dtype (Op::LinearDecodeFused; absent: the step
  // runs the separate kernels).
  std::map<DType, cuda::DecodeLinearFn> fused_linear;
  double load_seconds = 0, upload_seconds = 0;
  ~Impl();
};
}  // namespace llrt
