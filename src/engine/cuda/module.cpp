// The CUDA module's one exported symbol: llrt_cuda_module_v1() returns the table the core's
// loader (src/engine/cuda/cuda_loader.cpp) forwards llrt/cuda.h through (module_api.h).
#include "cuda_engine.h"
#include "module_api.h"

namespace llrt::kernels {
void register_cuda(KernelRegistry& r);  // kernels/cuda/register_cuda.cpp
}

namespace llrt::cudaeng {
namespace {

cudamod::Api make_api() {
  cudamod::Api a;
  a.build_id = LLRT_CUDA_MODULE_BUILD_ID;
  a.register_kernels = &kernels::register_cuda;
  a.available = &available;
  a.status = &status;
  a.devices = &devices;
  a.selected_device = &selected_device;
  a.device_cc = &device_cc;
  a.estimate_memory = &estimate_memory;
  a.check_model = &check_model;
  a.copy_bandwidth = &measure_copy_bandwidth;
  a.model_load = &load_model;
  a.model_config = [](const CudaModel::Impl& m) -> const ModelConfig& { return m.cfg; };
  a.model_checkpoint = [](const CudaModel::Impl& m) -> const Checkpoint& { return m.ck; };
  a.model_device = [](const CudaModel::Impl& m) -> const CudaDeviceInfo& { return m.dev; };
  a.model_kernel_plan = [](const CudaModel::Impl& m) -> const std::vector<KernelVerdict>& { return m.verdicts; };
  a.model_load_seconds = [](const CudaModel::Impl& m) { return m.load_seconds; };
  a.model_upload_seconds = [](const CudaModel::Impl& m) { return m.upload_seconds; };
  a.model_weight_bytes = [](const CudaModel::Impl& m) { return m.plan.bytes; };
  a.context_create = &create_context;
  a.context_n_ctx = &context_n_ctx;
  a.context_n_past = &context_n_past;
  a.context_reset = &context_reset;
  a.context_truncate = &context_truncate;
  a.context_eval = &context_eval;
  a.context_eval_all = &context_eval_all;
  a.context_eval_greedy = &context_eval_greedy;
  a.context_allocated_bytes = &context_allocated_bytes;
  a.context_graph_captured = &context_graph_captured;
  return a;
}

}  // namespace
}  // namespace llrt::cudaeng

extern "C" __attribute__((visibility("default"))) const llrt::cudamod::Api* llrt_cuda_module_v1() {
  static const llrt::cudamod::Api api = llrt::cudaeng::make_api();
  return &api;
}
