// CUDA devices (in the CUDA module): discovery (once per process), the selected device,
// the copy-bandwidth probe. A machine without the driver or without a GPU is not an error
// here: the functions report "none" and say why (cudaeng::status, behind cuda_status()).
#include <cstdlib>
#include <mutex>

#include "cuda_engine.h"
#include "llrt/error.h"

namespace llrt {

namespace {

constexpr int kMinCc = 80;  // the lowest compute capability this build has machine code for

struct Probe {
  std::vector<CudaDeviceInfo> devs;  // without free_bytes
  int selected = -1;
  int selected_cc = 0;
  std::string status;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.status = std::string("no CUDA device (") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + ")";
      return r;
    }
    if (n == 0) {
      r.status = "no CUDA device";
      return r;
    }
    for (int i = 0; i < n; ++i) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      CudaDeviceInfo d;
      d.index = i;
      d.name = prop.name;
      d.cc_major = prop.major;
      d.cc_minor = prop.minor;
      d.total_bytes = prop.totalGlobalMem;
      d.sm_count = prop.multiProcessorCount;
      r.devs.push_back(d);
    }
    int sel = 0;
    if (const char* env = std::getenv("LLRT_CUDA_DEVICE"); env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end == env || *end || v < 0 || v >= long(r.devs.size())) {
        r.status = std::string("LLRT_CUDA_DEVICE=") + env + " is not a device index (" + std::to_string(r.devs.size()) +
                   " devices)";
        return r;
      }
      sel = int(v);
    }
    if (r.devs.empty()) {
      r.status = "no CUDA device (properties unreadable)";
      return r;
    }
    r.selected = sel;
    r.selected_cc = r.devs[size_t(sel)].cc();
    r.status = std::to_string(r.devs.size()) + " CUDA device" + (r.devs.size() > 1 ? "s" : "") + ", using " +
               r.devs[size_t(sel)].describe();
    if (r.selected_cc < kMinCc)
      r.status += ": compute capability below 8.0, which this build has no machine code for";
    return r;
  }();
  return p;
}

}  // namespace

namespace cudaeng {
bool available() { return probe().selected >= 0 && probe().selected_cc >= kMinCc; }
std::string status() { return probe().status; }
int selected_device() { return probe().selected; }
int device_cc() { return probe().selected >= 0 ? probe().selected_cc : 0; }

std::vector<CudaDeviceInfo> devices() {
  std::vector<CudaDeviceInfo> out = probe().devs;
  int prev = -1;
  cudaGetDevice(&prev);
  for (auto& d : out) {
    size_t f = 0, t = 0;
    if (cudaSetDevice(d.index) == cudaSuccess && cudaMemGetInfo(&f, &t) == cudaSuccess) d.free_bytes = f;
    cudaGetLastError();
  }
  if (prev >= 0) cudaSetDevice(prev);
  return out;
}

CudaDeviceInfo device_info(int index) {
  for (const auto& d : probe().devs)
    if (d.index == index) return d;
  fail(ErrorCode::Cuda, "no CUDA device " + std::to_string(index) + ": " + status());
}

double measure_copy_bandwidth(uint64_t bytes, int reps) {
  const int dev = selected_device();
  if (dev < 0) fail(ErrorCode::Cuda, "no CUDA device: " + status());
  cuda::check(cudaSetDevice(dev), "cudaSetDevice");
  void *a = nullptr, *b = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  double best = 0;
  try {
    cuda::check(cudaMalloc(&a, bytes), "cudaMalloc(bandwidth probe)");
    cuda::check(cudaMalloc(&b, bytes), "cudaMalloc(bandwidth probe)");
    cuda::check(cudaMemset(a, 1, bytes), "cudaMemset");
    cuda::check(cudaEventCreate(&e0), "cudaEventCreate");
    cuda::check(cudaEventCreate(&e1), "cudaEventCreate");
    for (int r = 0; r < reps + 1; ++r) {
      cuda::check(cudaEventRecord(e0), "cudaEventRecord");
      cuda::check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
      cuda::check(cudaEventRecord(e1), "cudaEventRecord");
      cuda::check(cudaEventSynchronize(e1), "bandwidth probe");
      float ms = 0;
      cuda::check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
      if (r > 0) best = std::max(best, 2.0 * double(bytes) / (double(ms) * 1e-3) / 1e9);
    }
  } catch (...) {
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    throw;
  }
  cudaFree(a);
  cudaFree(b);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return best;
}

}  // namespace cudaeng
}  // namespace llrt
