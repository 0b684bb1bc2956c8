// llrt: the CUDA backend (NVIDIA GPUs, compute capability 8.0 and newer).
//
// The engine lives in a module, libllrt-cuda.so, built when meson finds nvcc (option
// cuda=auto|enabled|disabled) and loaded with dlopen the first time one of these functions
// is called (src/engine/cuda/cuda_loader.cpp: the search path; LLRT_CUDA_MODULE=FILE names
// it). libllrt and the programs built on it need no CUDA library. Without the module every
// function here still exists: cuda_built() is false, cuda_available() is false, cuda_status()
// says what is missing and what to do, and CudaModel::load fails with Error{Cuda} saying so.
//
// The engine mirrors the CPU one (llrt/model.h) on the device: the same forward pass,
// F32 activations and F32 KV cache ([layer][kv_head][pos][head_dim]), weights uploaded in
// the dtype the file stores (F32/F16/BF16, or I8 + scales for compressed-tensors w8a8)
// from the mmap'd safetensors through pinned staging buffers on two streams, kernels
// from the registry's Backend::Cuda entries (a missing (op, dtype) for this GPU's
// compute capability fails before anything is uploaded), and the decode step captured
// once in a CUDA graph and replayed. Memory: cuda_estimate_memory() is exactly what
// the engine allocates (weights + KV + scratch + the cuBLAS workspace); it is checked
// against cudaMemGetInfo's free memory before allocating.
// Environment: LLRT_CUDA_DEVICE=N picks the GPU; LLRT_CUDA_GRAPHS=0 runs the decode step
// without a graph, LLRT_CUDA_FUSED=0 with the unfused kernels, LLRT_CUDA_PDL=1 with
// programmatic dependent launch (all give the same bits; for measurements).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llrt/checkpoint.h"
#include "llrt/session.h"

namespace llrt {

struct KernelVerdict;  // src/engine: one kernel need with the kernel chosen for it

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
  int sm_count = 0;
  int cc() const { return cc_major * 10 + cc_minor; }
  std::string describe() const;  // "cuda:0 NVIDIA H200 (sm_90, 139.8 GiB, 132 SMs)"
};

bool cuda_built();       // the CUDA module is loaded (loads it on first use)
bool cuda_available();   // a CUDA device this build can run on is present
std::string cuda_status();  // one line: the devices, or why there are none (module or driver missing)
std::string cuda_module_path();  // the file the CUDA module was loaded from ("" when none)
std::vector<CudaDeviceInfo> cuda_devices();  // every device the runtime sees (empty: none)
// The device the engine uses: LLRT_CUDA_DEVICE (an index) or 0; -1 when there is none.
int cuda_selected_device();
int cuda_device_cc();  // compute capability (major*10+minor) of that device, 0 when none

// Exactly what CudaModel + one CudaContext allocate on the device.
struct CudaMemoryEstimate {
  uint64_t weight_bytes = 0;     // every tensor in its stored dtype (+ int8 row sums for asymmetric w8a8)
  uint64_t kv_bytes = 0;         // F32 K and V, all layers, ctx positions
  uint64_t scratch_bytes = 0;    // activations, conversion buffers, attention partials, RoPE table
  uint64_t workspace_bytes = 0;  // cuBLAS/cuBLASLt workspace
  int64_t ctx = 0, batch = 0;
  uint64_t context_bytes() const { return kv_bytes + scratch_bytes + workspace_bytes; }
  uint64_t total() const { return weight_bytes + context_bytes(); }
};
CudaMemoryEstimate cuda_estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch);

// Whether the model runs on the selected GPU: every kernel need has a usable
// Backend::Cuda entry and the estimate fits in free memory. Reads headers only.
struct CudaFit {
  bool ok = false;
  std::string reason;  // why not (empty when ok)
  std::vector<KernelVerdict> kernels;
  CudaMemoryEstimate memory;
  uint64_t free_bytes = 0;
};
CudaFit cuda_check_model(const Checkpoint& ck, int64_t ctx, int64_t batch);

struct CudaModelOptions {
  int64_t ctx = 0;        // the context that will be opened (0: as CudaContextOptions' default):
  int64_t batch = 512;    //   weights + that context must fit before any byte is uploaded
  size_t staging_bytes = size_t(64) << 20;  // each of the two pinned staging buffers
  std::function<void(const std::string&)> progress;
};

class CudaModel {
 public:
  static std::shared_ptr<CudaModel> load(const std::filesystem::path& dir, const CudaModelOptions& opt = {});
  ~CudaModel();
  CudaModel(const CudaModel&) = delete;
  CudaModel& operator=(const CudaModel&) = delete;

  const ModelConfig& config() const;
  const Checkpoint& checkpoint() const;
  const CudaDeviceInfo& device() const;
  const std::vector<KernelVerdict>& kernel_plan() const;
  double load_seconds() const;    // open + validate + upload
  double upload_seconds() const;  // the host-to-device part
  uint64_t weight_bytes() const;  // device bytes held by the weights

  struct Impl;  // in the CUDA module (src/engine/cuda/cuda_engine.h)

 private:
  friend class CudaContext;
  CudaModel() = default;
  std::shared_ptr<Impl> impl_;  // made and destroyed by the module
};

struct CudaContextOptions {
  int64_t n_ctx = 0;      // 0: min(max_position_embeddings, 4096)
  int64_t n_batch = 512;  // tokens per forward chunk during prefill
  bool graphs = true;     // capture the decode step in a CUDA graph (LLRT_CUDA_GRAPHS=0 also disables)
};

class CudaContext final : public Session {
 public:
  explicit CudaContext(std::shared_ptr<const CudaModel> model, const CudaContextOptions& opt = {});
  ~CudaContext() override;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  const CudaModel& model() const { return *model_; }
  const ModelConfig& config() const override;
  int64_t n_ctx() const override;
  int64_t n_past() const override;
  void reset() override;
  void truncate(int64_t n_keep) override;
  std::span<const float> eval(std::span<const int32_t> tokens) override;
  std::vector<float> eval_all(std::span<const int32_t> tokens) override;
  int32_t eval_greedy(std::span<const int32_t> tokens) override;
  std::string device_name() const override;

  uint64_t allocated_bytes() const;  // KV + scratch + workspace on the device (== estimate)
  bool graph_captured() const;       // the decode graph exists (after the first 1-token eval)

  struct State;  // in the CUDA module (src/engine/cuda/cuda_context.cpp)

 private:
  std::shared_ptr<const CudaModel> model_;
  std::shared_ptr<State> st_;  // made and destroyed by the module
};

// Device-to-device copy bandwidth (bytes read + bytes written per second, in GB/s) of
// the selected device, best of `reps` copies of `bytes`: the ceiling decode is held to.
double cuda_measure_copy_bandwidth(uint64_t bytes = uint64_t(1) << 30, int reps = 10);

}  // namespace llrt
