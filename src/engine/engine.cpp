// llrt::open: the device choice and the engines behind one interface (llrt/engine.h).
#include "llrt/engine.h"

#include "llrt/cuda.h"
#include "llrt/error.h"
#include "src/engine/cuda/cuda_loader.h"
#include "src/engine/kernels.h"
#include "llrt/model.h"

namespace llrt {

DeviceChoice parse_device_choice(const std::string& s) {
  if (s == "auto") return DeviceChoice::Auto;
  if (s == "cpu") return DeviceChoice::Cpu;
  if (s == "cuda") return DeviceChoice::Cuda;
  fail(ErrorCode::InvalidArgument, "device '" + s + "': use auto, cpu or cuda (LLRT_CUDA_DEVICE picks the GPU)");
}

const char* device_choice_name(DeviceChoice d) {
  switch (d) {
    case DeviceChoice::Auto: return "auto";
    case DeviceChoice::Cpu: return "cpu";
    case DeviceChoice::Cuda: return "cuda";
  }
  return "?";
}

struct Engine::Impl {
  std::shared_ptr<Model> cpu;
  std::shared_ptr<CudaModel> cuda;
  std::string reason;
  int64_t n_ctx = 0, n_batch = 512;
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;
const char* Engine::device() const { return impl_->cuda ? "cuda" : "cpu"; }
const std::string& Engine::device_reason() const { return impl_->reason; }
std::string Engine::device_name() const {
  return impl_->cuda ? impl_->cuda->device().describe() : "cpu (" + std::to_string(impl_->cpu->threads()) + " threads)";
}
const Checkpoint& Engine::checkpoint() const { return impl_->cuda ? impl_->cuda->checkpoint() : impl_->cpu->checkpoint(); }
const ModelConfig& Engine::config() const { return checkpoint().config(); }
double Engine::load_seconds() const { return impl_->cuda ? impl_->cuda->load_seconds() : impl_->cpu->load_seconds(); }
const std::vector<KernelVerdict>& Engine::kernel_plan() const {
  return impl_->cuda ? impl_->cuda->kernel_plan() : impl_->cpu->kernel_plan();
}
std::shared_ptr<Model> Engine::cpu_model() const { return impl_->cpu; }
std::shared_ptr<CudaModel> Engine::cuda_model() const { return impl_->cuda; }

std::unique_ptr<Session> Engine::new_session(const SessionOptions& opt) const {
  const int64_t ctx = opt.n_ctx > 0 ? opt.n_ctx : impl_->n_ctx;
  const int64_t batch = opt.n_batch > 0 ? opt.n_batch : impl_->n_batch;
  if (impl_->cuda) {
    if (opt.kv_dtype != DType::F32)
      fail(ErrorCode::InvalidArgument, std::string("KV cache ") + dtype_name(opt.kv_dtype) +
                                           ": the CUDA backend keeps its KV cache in F32 (open the model on the CPU for a 16-bit cache)");
    return std::make_unique<CudaContext>(impl_->cuda, CudaContextOptions{ctx, batch});
  }
  return std::make_unique<Context>(impl_->cpu, ContextOptions{ctx, batch, opt.kv_dtype});
}

std::shared_ptr<Engine> open(const std::filesystem::path& dir, const OpenOptions& opt) {
  if (opt.n_ctx > 0) {  // before the load: a context the model cannot address
    const ModelConfig c = ModelConfig::load(dir / "config.json");
    if (opt.n_ctx > c.max_position_embeddings)
      fail(ErrorCode::InvalidArgument, "a context of " + std::to_string(opt.n_ctx) +
                                           " positions exceeds the model's max_position_embeddings (" +
                                           std::to_string(c.max_position_embeddings) + "): lower --ctx");
  }
  std::shared_ptr<Engine> e(new Engine());
  Engine::Impl& im = *e->impl_;
  im.n_ctx = opt.n_ctx;
  im.n_batch = opt.n_batch;
  bool use_cuda = opt.device == DeviceChoice::Cuda;
  if (use_cuda && opt.kv_dtype != DType::F32)
    fail(ErrorCode::InvalidArgument, std::string("KV cache ") + dtype_name(opt.kv_dtype) +
                                         ": the CUDA backend keeps its KV cache in F32 (use the CPU for a 16-bit cache)");
  if (opt.device != DeviceChoice::Auto) {
    im.reason = "asked for";
  } else if (opt.kv_dtype != DType::F32) {
    im.reason = std::string("the CUDA backend keeps its KV cache in F32 and a ") + dtype_name(opt.kv_dtype) + " cache was asked for";
  } else if (std::string why; !cuda_driver_present(&why)) {
    im.reason = why;  // the CUDA module is not even loaded: a machine without a GPU maps no CUDA library
  } else if (!cuda_available()) {
    im.reason = cuda_status();  // the module is missing or cannot run on this GPU: the reason says which
  } else {
    const CudaFit fit = cuda_check_model(Checkpoint::open(dir), opt.n_ctx, opt.n_batch);
    use_cuda = fit.ok;
    im.reason = fit.ok ? "a GPU is present and runs this model" : fit.reason;
  }
  if (opt.progress)
    opt.progress("loading " + dir.string() + (use_cuda ? (cuda_available() ? " (cuda: " + cuda_status() + ")" : std::string(" (cuda)")) : std::string(" (") + load_mode_name(opt.map.mode) + ")"));
  if (use_cuda) {
    CudaModelOptions mo;
    mo.ctx = opt.n_ctx;
    mo.batch = opt.n_batch;
    mo.progress = opt.progress;
    im.cuda = CudaModel::load(dir, mo);
  } else {
    ModelOptions mo;
    mo.map = opt.map;
    mo.threads = opt.threads;
    mo.progress = opt.progress;
    mo.on_bytes = opt.on_bytes;
    im.cpu = Model::load(dir, mo);
  }
  return e;
}

}  // namespace llrt
