// The CUDA backend as a module loaded at run time (as ggml's dynamically loaded backends).
//
// Design. The CUDA engine (src/engine/cuda/*.cpp but this file) and its kernels
// (kernels/cuda) are built into a shared module, libllrt-cuda.so, which alone links the CUDA
// runtime and cuBLAS. libllrt.a (the core) has no CUDA dependency: it implements llrt/cuda.h
// here, forwarding every call through the table the module returns (module_api.h). So a
// program built on llrt starts, and runs on the CPU, on a machine without any CUDA library,
// and a CPU run maps no CUDA library (no cuBLAS pages in its RSS).
//
//   - The module exports one C symbol, llrt_cuda_module_v1(), returning the table; all its
//     other definitions are local (kernels/cuda/module.map). What it uses of the core comes
//     from the program that loads it, which exports its symbols (-Wl,--export-dynamic: in
//     llrt_dep and in llrt.pc's Libs). C++ types cross the table, so module and core must be
//     one build: the table's abi and build_id (llrt version, compiler, libstdc++) must match.
//   - The module is loaded once, on the first call that needs it: any llrt/cuda.h function
//     (cuda_status(), cuda_devices(), CudaModel::load...), so `llrt caps`, inspect and
//     `--device cuda` load it; a CPU run (`--device cpu`) never does. `device auto` first asks
//     the driver (cuda_driver_present: dlopen libcuda.so.1, cuInit, cuDeviceGetCount) and loads
//     the module only where a GPU is present.
//   - Loading registers the module's Backend::Cuda kernels in the program's registry
//     (KernelRegistry::global(); its entries have stable addresses, so earlier lookups stay
//     valid), so capability reports list them exactly as before.
//   - Without the module (or when it cannot be loaded: CUDA runtime missing, another build),
//     cuda_built() and cuda_available() are false, cuda_status() says what is missing and what
//     to do, and CudaModel::load fails with Error{Cuda} saying the same.
//
// Search path (the first file that exists is loaded; a failure to load it is reported with
// the paths tried):
//   1. $LLRT_CUDA_MODULE, when set: that file and nothing else;
//   2. the directory of the running executable (/proc/self/exe): DIR/libllrt-cuda.so;
//   3. DIR/../<libdir>/, DIR/../lib/, DIR/../lib64/ (an installed tree: bin/ beside lib/);
//   4. the install libdir (<prefix>/<libdir>, where `meson install` puts it);
//   5. the build folder's kernels/cuda/ (the tests, and tools run from the build folder).
#include "cuda_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "llrt/checkpoint.h"
#include "llrt/cuda.h"
#include "llrt/dtype.h"
#include "llrt/error.h"
#include "llrt/session.h"
#include "module_api.h"
#include "src/engine/cpu.h"
#include "src/engine/kernels.h"
#include "src/engine/llama.h"
#include "src/engine/model_plan.h"

#ifndef LLRT_CUDA_MODULE_NAME
#define LLRT_CUDA_MODULE_NAME "libllrt-cuda.so"
#endif
#ifndef LLRT_CUDA_MODULE_LIBDIR
#define LLRT_CUDA_MODULE_LIBDIR "lib"
#endif
#ifndef LLRT_CUDA_MODULE_INSTALL_DIR
#define LLRT_CUDA_MODULE_INSTALL_DIR ""
#endif
#ifndef LLRT_CUDA_MODULE_BUILD_DIR
#define LLRT_CUDA_MODULE_BUILD_DIR ""
#endif
#ifndef LLRT_CUDA_MODULE_BUILT
#define LLRT_CUDA_MODULE_BUILT 0
#endif

namespace llrt {

namespace {

namespace fs = std::filesystem;

struct Loaded {
  const cudamod::Api* api = nullptr;
  std::string path;  // the module's file
  std::string why;   // when api is null: what is missing and what to do
};

std::vector<fs::path> candidates() {
  std::vector<fs::path> out;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path()) {
    const fs::path dir = exe.parent_path();
    out.push_back(dir / LLRT_CUDA_MODULE_NAME);
    for (const char* lib : {LLRT_CUDA_MODULE_LIBDIR, "lib", "lib64"}) out.push_back(dir / ".." / lib / LLRT_CUDA_MODULE_NAME);
  }
  if (*LLRT_CUDA_MODULE_INSTALL_DIR) out.push_back(fs::path(LLRT_CUDA_MODULE_INSTALL_DIR) / LLRT_CUDA_MODULE_NAME);
  if (*LLRT_CUDA_MODULE_BUILD_DIR) out.push_back(fs::path(LLRT_CUDA_MODULE_BUILD_DIR) / LLRT_CUDA_MODULE_NAME);
  std::vector<fs::path> unique;  // libdir may be "lib": each place once
  for (auto& p : out)
    if (std::find(unique.begin(), unique.end(), p.lexically_normal()) == unique.end()) unique.push_back(p.lexically_normal());
  return unique;
}

const char* kWhatToDo =
    "What to do: install the CUDA module beside llrt (meson setup -Dcuda=enabled with CUDA 12+ installed, then meson "
    "install) or point LLRT_CUDA_MODULE at libllrt-cuda.so; or run with --device cpu";

// dlopen + the table's checks; "" when loaded.
std::string try_load(const fs::path& p, Loaded& L) {
  void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    std::string why = "the CUDA module " + p.string() + " cannot be loaded: " + (e ? e : "dlopen failed");
    if (why.find("libcudart") != std::string::npos || why.find("libcublas") != std::string::npos)
      why += ". What to do: install the CUDA runtime and cuBLAS this module was built against (or put their folder on "
             "LD_LIBRARY_PATH), or run with --device cpu";
    else if (why.find("undefined symbol") != std::string::npos)
      why += ". The program does not export llrt's symbols to the module: link it with -Wl,--export-dynamic "
             "(pkg-config --libs llrt has it), or run with --device cpu";
    else
      why += std::string(". ") + kWhatToDo;
    return why;
  }
  auto entry = reinterpret_cast<llrt_cuda_module_fn>(dlsym(h, cudamod::kEntry));
  const cudamod::Api* api = entry ? entry() : nullptr;
  std::string why;
  if (!api)
    why = "the CUDA module " + p.string() + " has no " + cudamod::kEntry + " (not an llrt CUDA module). " + kWhatToDo;
  else if (api->abi != cudamod::kAbi || api->size != sizeof(cudamod::Api) || !api->build_id ||
           std::string(api->build_id) != LLRT_CUDA_MODULE_BUILD_ID)
    why = "the CUDA module " + p.string() + " comes from another build (" + (api->build_id ? api->build_id : "?") +
          "; this llrt: " + LLRT_CUDA_MODULE_BUILD_ID + "). What to do: use the module built with this llrt, or run with --device cpu";
  if (!why.empty()) {
    dlclose(h);
    return why;
  }
  L.api = api;
  L.path = p.string();
  return "";
}

Loaded load_module() {
  Loaded L;
  if (const char* env = std::getenv("LLRT_CUDA_MODULE"); env && *env) {
    std::error_code ec;
    if (!fs::exists(env, ec))
      L.why = std::string("LLRT_CUDA_MODULE=") + env +
              ": no such file. What to do: point it at libllrt-cuda.so, or unset it, or run with --device cpu";
    else if (std::string e = try_load(env, L); !e.empty())
      L.why = "LLRT_CUDA_MODULE: " + e;
  } else {
    std::string tried, failed;
    for (const auto& p : candidates()) {
      std::error_code ec;
      if (!fs::exists(p, ec)) {
        tried += (tried.empty() ? "" : ", ") + p.string();
        continue;
      }
      failed = try_load(p, L);
      if (failed.empty()) break;
      tried += (tried.empty() ? "" : ", ") + p.string() + " (unusable)";
    }
    if (!L.api) {
      if (!failed.empty())
        L.why = failed;
      else if (!LLRT_CUDA_MODULE_BUILT)
        L.why = std::string("no CUDA backend: this llrt was built without the CUDA module (nvcc was not found at configure "
                            "time, or -Dcuda=disabled) and no " LLRT_CUDA_MODULE_NAME " was found (looked in: ") +
                tried + "). What to do: rebuild with CUDA 12+ installed (meson setup -Dcuda=enabled), or run with --device cpu";
      else
        L.why = "no CUDA backend: the CUDA module " LLRT_CUDA_MODULE_NAME " was not found (looked in: " + tried + "). " +
                kWhatToDo;
    }
  }
  if (L.api) L.api->register_kernels(KernelRegistry::global());
  return L;
}

std::atomic<bool> g_loaded{false};

const Loaded& loaded() {
  static const Loaded L = [] {
    Loaded r = load_module();
    g_loaded = r.api != nullptr;
    return r;
  }();
  return L;
}

const cudamod::Api* api() { return loaded().api; }

// The table, or Error{Cuda} saying why there is none.
const cudamod::Api& need() {
  if (const auto* a = api()) return *a;
  fail(ErrorCode::Cuda, loaded().why);
}

// What the module calls in the core (`nm -D --undefined-only libllrt-cuda.so | grep llrt::`),
// referenced here so that a program linking libllrt.a links (and, with --export-dynamic,
// exports) all of it whenever it can load the module; without this a program that never calls,
// say, Checkpoint::open itself would leave it out and the module would fail to load with
// "undefined symbol". tests/cuda_module.sh and scripts/install_check.sh load the module from
// such a minimal program.
[[gnu::used]] const void* const kModuleUses[] = {
    reinterpret_cast<const void*>(static_cast<Checkpoint (*)(const std::filesystem::path&, const MapOptions&)>(&Checkpoint::open)),
    reinterpret_cast<const void*>(&plan_model),
    reinterpret_cast<const void*>(&check_kernels),
    reinterpret_cast<const void*>(&require_kernels),
    reinterpret_cast<const void*>(&unsupported_kernel_message),
    reinterpret_cast<const void*>(&fail_kernel_type),
    reinterpret_cast<const void*>(&KernelRegistry::global),
    reinterpret_cast<const void*>(&count_non_finite),
    reinterpret_cast<const void*>(&check_eval_tokens),
    reinterpret_cast<const void*>(&fail_non_finite_logits),
    reinterpret_cast<const void*>(&llama_kernel_needs),
    reinterpret_cast<const void*>(&validate_llama_checkpoint),
    reinterpret_cast<const void*>(&cpu_info),
    reinterpret_cast<const void*>(&context_length),
};
[[gnu::used]] const auto kModuleUsesAdd = &KernelRegistry::add;
[[gnu::used]] const auto kModuleUsesFindBest = &KernelRegistry::find_best;
[[gnu::used]] const auto kModuleUsesWeightBytes = &LinearPlan::weight_bytes;
[[gnu::used]] const auto kModuleUsesScaleBytes = &LinearPlan::scale_bytes;
[[gnu::used]] const auto kModuleUsesRopeTable = &ModelPlan::rope_table;

}  // namespace

bool cuda_module_loaded() { return g_loaded; }

bool cuda_driver_present(std::string* why) {
  static const std::string reason = [] () -> std::string {
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) return "no NVIDIA driver (libcuda.so.1 not found)";
    using InitFn = int (*)(unsigned);
    using CountFn = int (*)(int*);
    using NameFn = int (*)(int, const char**);
    auto init = reinterpret_cast<InitFn>(dlsym(h, "cuInit"));
    auto count = reinterpret_cast<CountFn>(dlsym(h, "cuDeviceGetCount"));
    auto name = reinterpret_cast<NameFn>(dlsym(h, "cuGetErrorName"));
    if (!init || !count) return "no usable NVIDIA driver (libcuda.so.1 lacks cuInit)";
    const int r = init(0);
    if (r != 0) {
      const char* n = nullptr;
      if (name) name(r, &n);
      return std::string("no CUDA device (cuInit: ") + (n ? n : std::to_string(r)) + ")";
    }
    int devs = 0;
    if (count(&devs) != 0 || devs <= 0) return "no CUDA device (the driver reports none)";
    return "";  // libcuda stays loaded: the CUDA runtime will use it
  }();
  if (why) *why = reason;
  return reason.empty();
}

std::string CudaDeviceInfo::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "cuda:%d %s (sm_%d%d, %.1f GiB, %d SMs)", index, name.c_str(), cc_major, cc_minor,
                double(total_bytes) / double(1ull << 30), sm_count);
  return buf;
}

bool cuda_built() { return api() != nullptr; }
bool cuda_available() { return api() && api()->available(); }
std::string cuda_status() { return api() ? api()->status() : loaded().why; }
std::string cuda_module_path() { return loaded().path; }
std::vector<CudaDeviceInfo> cuda_devices() { return api() ? api()->devices() : std::vector<CudaDeviceInfo>{}; }
int cuda_selected_device() { return api() ? api()->selected_device() : -1; }
int cuda_device_cc() { return api() ? api()->device_cc() : 0; }
CudaMemoryEstimate cuda_estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch) {
  return need().estimate_memory(ck, ctx, batch);
}
CudaFit cuda_check_model(const Checkpoint& ck, int64_t ctx, int64_t batch) {
  if (const auto* a = api()) return a->check_model(ck, ctx, batch);
  CudaFit f;
  f.reason = loaded().why;
  return f;
}
double cuda_measure_copy_bandwidth(uint64_t bytes, int reps) { return need().copy_bandwidth(bytes, reps); }

std::shared_ptr<CudaModel> CudaModel::load(const std::filesystem::path& dir, const CudaModelOptions& opt) {
  const cudamod::Api& a = need();
  if (!a.available()) {
    std::string why = a.status();
    if (std::string drv; !cuda_driver_present(&drv)) why = drv + "; the CUDA runtime says: " + why;
    fail(ErrorCode::Cuda, "cannot run on CUDA: " + why +
                              ". What to do: run on a machine with an NVIDIA GPU of compute capability 8.0 or newer and "
                              "its driver, or run with --device cpu");
  }
  std::shared_ptr<CudaModel> m(new CudaModel());
  m->impl_ = a.model_load(dir, opt);
  return m;
}
CudaModel::~CudaModel() = default;
const ModelConfig& CudaModel::config() const { return api()->model_config(*impl_); }
const Checkpoint& CudaModel::checkpoint() const { return api()->model_checkpoint(*impl_); }
const CudaDeviceInfo& CudaModel::device() const { return api()->model_device(*impl_); }
const std::vector<KernelVerdict>& CudaModel::kernel_plan() const { return api()->model_kernel_plan(*impl_); }
double CudaModel::load_seconds() const { return api()->model_load_seconds(*impl_); }
double CudaModel::upload_seconds() const { return api()->model_upload_seconds(*impl_); }
uint64_t CudaModel::weight_bytes() const { return api()->model_weight_bytes(*impl_); }

CudaContext::CudaContext(std::shared_ptr<const CudaModel> model, const CudaContextOptions& opt) : model_(std::move(model)) {
  if (!model_) fail(ErrorCode::InvalidArgument, "CudaContext: no model");
  st_ = need().context_create(*model_->impl_, opt);
}
CudaContext::~CudaContext() = default;
const ModelConfig& CudaContext::config() const { return model_->config(); }
int64_t CudaContext::n_ctx() const { return api()->context_n_ctx(*st_); }
int64_t CudaContext::n_past() const { return api()->context_n_past(*st_); }
void CudaContext::reset() { api()->context_reset(*st_); }
void CudaContext::truncate(int64_t n_keep) { api()->context_truncate(*st_, n_keep); }
std::span<const float> CudaContext::eval(std::span<const int32_t> tokens) { return api()->context_eval(*st_, tokens); }
std::vector<float> CudaContext::eval_all(std::span<const int32_t> tokens) { return api()->context_eval_all(*st_, tokens); }
int32_t CudaContext::eval_greedy(std::span<const int32_t> tokens) { return api()->context_eval_greedy(*st_, tokens); }
std::string CudaContext::device_name() const { return model_->device().describe(); }
uint64_t CudaContext::allocated_bytes() const { return api()->context_allocated_bytes(*st_); }
bool CudaContext::graph_captured() const { return api()->context_graph_captured(*st_); }

}  // namespace llrt
