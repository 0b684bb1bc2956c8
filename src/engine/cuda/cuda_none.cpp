// llrt/cuda.h for builds without the CUDA backend (nvcc not found, or -Dcuda=disabled):
// no devices, and loading a model on CUDA is a clear error.
#include "llrt/cuda.h"
#include "llrt/error.h"
#include "src/engine/kernels.h"

namespace llrt {

namespace {
const char* kWhy =
    "this llrt was built without the CUDA backend (nvcc was not found at configure time, or -Dcuda=disabled); "
    "rebuild with CUDA 12+ installed (meson setup -Dcuda=enabled), or run with --device cpu";
[[noreturn]] void no_cuda() { fail(ErrorCode::Cuda, kWhy); }
}  // namespace

struct CudaModel::Impl {};
struct CudaContext::State {};

std::string CudaDeviceInfo::describe() const { return "cuda:" + std::to_string(index) + " " + name; }
bool cuda_built() { return false; }
bool cuda_available() { return false; }
std::string cuda_status() { return kWhy; }
std::vector<CudaDeviceInfo> cuda_devices() { return {}; }
int cuda_selected_device() { return -1; }
int cuda_device_cc() { return 0; }
CudaMemoryEstimate cuda_estimate_memory(const Checkpoint&, int64_t, int64_t) { no_cuda(); }
CudaFit cuda_check_model(const Checkpoint&, int64_t, int64_t) {
  CudaFit f;
  f.reason = kWhy;
  return f;
}
double cuda_measure_copy_bandwidth(uint64_t, int) { no_cuda(); }

std::shared_ptr<CudaModel> CudaModel::load(const std::filesystem::path&, const CudaModelOptions&) { no_cuda(); }
CudaModel::~CudaModel() = default;
const ModelConfig& CudaModel::config() const { no_cuda(); }
const Checkpoint& CudaModel::checkpoint() const { no_cuda(); }
const CudaDeviceInfo& CudaModel::device() const { no_cuda(); }
const std::vector<KernelVerdict>& CudaModel::kernel_plan() const { no_cuda(); }
double CudaModel::load_seconds() const { no_cuda(); }
double CudaModel::upload_seconds() const { no_cuda(); }
uint64_t CudaModel::weight_bytes() const { no_cuda(); }

CudaContext::CudaContext(std::shared_ptr<const CudaModel> model, const CudaContextOptions&) : model_(std::move(model)) {
  no_cuda();
}
CudaContext::~CudaContext() = default;
const ModelConfig& CudaContext::config() const { no_cuda(); }
int64_t CudaContext::n_ctx() const { no_cuda(); }
int64_t CudaContext::n_past() const { no_cuda(); }
void CudaContext::reset() { no_cuda(); }
void CudaContext::truncate(int64_t) { no_cuda(); }
std::span<const float> CudaContext::eval(std::span<const int32_t>) { no_cuda(); }
std::vector<float> CudaContext::eval_all(std::span<const int32_t>) { no_cuda(); }
int32_t CudaContext::eval_greedy(std::span<const int32_t>) { no_cuda(); }
std::string CudaContext::device_name() const { no_cuda(); }
uint64_t CudaContext::allocated_bytes() const { no_cuda(); }
bool CudaContext::graph_captured() const { return false; }

}  // namespace llrt
