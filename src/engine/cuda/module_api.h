// Internal: the interface between the core (libllrt.a, no CUDA dependency) and the CUDA
// module (libllrt-cuda.so, loaded with dlopen by src/engine/cuda/cuda_loader.cpp).
//
// The module exports exactly one symbol, the C function llrt_cuda_module_v1(), which returns
// a table of function pointers (Api below). Everything else in the module is local (linker
// version script kernels/cuda/module.map), so the module's definitions never interpose on
// the program's. What the module uses of the core (Checkpoint, the model plan, the kernel
// registry, llrt::fail...) it takes from the program that loads it: programs linking llrt
// export their symbols (-Wl,--export-dynamic, in llrt_dep and in llrt.pc), so there is one
// registry, one Error type, one copy of everything.
//
// C++ types (std::string, std::shared_ptr, std::filesystem::path, llrt structs) cross this
// interface: the module and the core must come from one build (same llrt version, compiler
// and standard library). Api::build_id says which build the module is; the loader refuses
// a module whose build_id or abi differs from its own.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llrt/cuda.h"

namespace llrt {
class KernelRegistry;
}

namespace llrt::cudamod {

constexpr uint32_t kAbi = 1;
constexpr const char* kEntry = "llrt_cuda_module_v1";
#ifndef LLRT_VERSION_STRING
#define LLRT_VERSION_STRING "?"
#endif
// Which build a side is: llrt version, compiler, standard library.
#define LLRT_CUDA_MODULE_BUILD_ID \
  ("llrt " LLRT_VERSION_STRING "; " __VERSION__ "; libstdc++ " LLRT_CUDA_STR(_GLIBCXX_RELEASE) "." LLRT_CUDA_STR(__GLIBCXX__))
#define LLRT_CUDA_STR2(x) #x
#define LLRT_CUDA_STR(x) LLRT_CUDA_STR2(x)

struct Api {
  uint32_t abi = kAbi;
  uint32_t size = sizeof(Api);
  const char* build_id = nullptr;

  // Adds the Backend::Cuda kernel entries to the (program's) registry.
  void (*register_kernels)(KernelRegistry& r) = nullptr;

  // Devices (llrt/cuda.h's functions of the same names).
  bool (*available)() = nullptr;
  std::string (*status)() = nullptr;
  std::vector<CudaDeviceInfo> (*devices)() = nullptr;
  int (*selected_device)() = nullptr;
  int (*device_cc)() = nullptr;
  CudaMemoryEstimate (*estimate_memory)(const Checkpoint& ck, int64_t ctx, int64_t batch) = nullptr;
  CudaFit (*check_model)(const Checkpoint& ck, int64_t ctx, int64_t batch) = nullptr;
  double (*copy_bandwidth)(uint64_t bytes, int reps) = nullptr;

  // CudaModel: the module owns CudaModel::Impl (its deleter lives in the module).
  std::shared_ptr<CudaModel::Impl> (*model_load)(const std::filesystem::path& dir, const CudaModelOptions& opt) = nullptr;
  const ModelConfig& (*model_config)(const CudaModel::Impl& m) = nullptr;
  const Checkpoint& (*model_checkpoint)(const CudaModel::Impl& m) = nullptr;
  const CudaDeviceInfo& (*model_device)(const CudaModel::Impl& m) = nullptr;
  const std::vector<KernelVerdict>& (*model_kernel_plan)(const CudaModel::Impl& m) = nullptr;
  double (*model_load_seconds)(const CudaModel::Impl& m) = nullptr;
  double (*model_upload_seconds)(const CudaModel::Impl& m) = nullptr;
  uint64_t (*model_weight_bytes)(const CudaModel::Impl& m) = nullptr;

  // CudaContext: the module owns CudaContext::State.
  std::shared_ptr<CudaContext::State> (*context_create)(const CudaModel::Impl& m, const CudaContextOptions& opt) = nullptr;
  int64_t (*context_n_ctx)(const CudaContext::State& s) = nullptr;
  int64_t (*context_n_past)(const CudaContext::State& s) = nullptr;
  void (*context_reset)(CudaContext::State& s) = nullptr;
  void (*context_truncate)(CudaContext::State& s, int64_t n_keep) = nullptr;
  std::span<const float> (*context_eval)(CudaContext::State& s, std::span<const int32_t> tokens) = nullptr;
  std::vector<float> (*context_eval_all)(CudaContext::State& s, std::span<const int32_t> tokens) = nullptr;
  int32_t (*context_eval_greedy)(CudaContext::State& s, std::span<const int32_t> tokens) = nullptr;
  uint64_t (*context_allocated_bytes)(const CudaContext::State& s) = nullptr;
  bool (*context_graph_captured)(const CudaContext::State& s) = nullptr;
};

}  // namespace llrt::cudamod

extern "C" {
using llrt_cuda_module_fn = const llrt::cudamod::Api* (*)();
}
