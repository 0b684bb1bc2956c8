// llrt: open a checkpoint on the best device and get sessions - the library's front door.
//
//   auto eng = llrt::open("path/to/model");          // device: auto (cuda when a GPU runs it)
//   std::fprintf(stderr, "%s (%s)\n", eng->device_name().c_str(), eng->device_reason().c_str());
//   auto session = eng->new_session({.n_ctx = 4096});
//   llrt::generate(*session, tokenizer, prompt_ids, options, on_token);
//
// Device choice (OpenOptions::device):
//   Cpu   the CPU engine (llrt/model.h);
//   Cuda  the CUDA engine (llrt/cuda.h); Error{Cuda} when there is no usable GPU;
//   Auto  CUDA when this build has it, a GPU is present, the model's kernels exist for it and
//         weights + one context fit in its free memory, and the KV cache asked for is F32 (the
//         CUDA engine keeps F32); the CPU otherwise. Engine::device_reason() says which rule
//         decided.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llrt/checkpoint.h"
#include "llrt/model.h"  // LoadProgress
#include "llrt/session.h"

namespace llrt {

class Model;
class CudaModel;
struct KernelVerdict;

enum class DeviceChoice : uint8_t { Auto, Cpu, Cuda };
// "auto", "cpu", "cuda" (else Error{InvalidArgument} listing them).
DeviceChoice parse_device_choice(const std::string& s);
const char* device_choice_name(DeviceChoice d);

struct SessionOptions {
  int64_t n_ctx = 0;      // 0: the value OpenOptions::n_ctx gave (or min(max_position_embeddings, 4096))
  int64_t n_batch = 0;    // tokens per forward chunk in prefill; 0: OpenOptions::n_batch
  DType kv_dtype = DType::F32;  // KV cache: F32, F16, BF16 (the CPU engine; CUDA keeps F32)
};

struct OpenOptions {
  DeviceChoice device = DeviceChoice::Auto;
  int threads = 0;                   // CPU threads; 0: physical cores
  MapOptions map{LoadMode::Auto};    // CPU weights: copy into huge pages, mmap, or auto (llrt/model.h)
  int64_t n_ctx = 0;                 // the context sessions will use (checked against the model before the
  int64_t n_batch = 512;             //   load; on CUDA weights + one such context must fit in memory)
  DType kv_dtype = DType::F32;       // the KV cache sessions will use (decides Auto: CUDA keeps F32)
  std::function<void(const std::string&)> progress;  // one-line status messages while loading
  std::function<void(const LoadProgress&)> on_bytes = nullptr;  // CPU: the weights' bytes as they arrive (ModelOptions::on_bytes)
};

class Engine {
 public:
  ~Engine();
  const char* device() const;              // "cpu" or "cuda"
  const std::string& device_reason() const;  // why this device ("asked for", "a GPU is present and runs this model", ...)
  std::string device_name() const;         // "cpu (8 threads)", "cuda:0 NVIDIA H100 ... (sm_90, ...)"
  const Checkpoint& checkpoint() const;
  const ModelConfig& config() const;
  double load_seconds() const;
  const std::vector<KernelVerdict>& kernel_plan() const;  // every need with the kernel chosen for it
  // A new sequence (its own KV cache) on the engine's device; many may share one Engine.
  std::unique_ptr<Session> new_session(const SessionOptions& opt = {}) const;
  // The device engines, for device-specific diagnostics (exactly one is non-null).
  std::shared_ptr<Model> cpu_model() const;
  std::shared_ptr<CudaModel> cuda_model() const;

  struct Impl;

 private:
  friend std::shared_ptr<Engine> open(const std::filesystem::path& dir, const OpenOptions& opt);
  Engine();
  std::unique_ptr<Impl> impl_;
};

// Loads the checkpoint in `dir` on the device OpenOptions::device chooses. Errors are typed
// (llrt/error.h) and say what to do; nothing is loaded when the model cannot run there.
std::shared_ptr<Engine> open(const std::filesystem::path& dir, const OpenOptions& opt = {});

}  // namespace llrt
