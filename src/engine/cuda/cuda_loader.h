// Internal: what the core knows of CUDA without loading the CUDA module (cuda_loader.cpp).
#pragma once
#include <string>

namespace llrt {

// Whether the NVIDIA driver (libcuda.so.1) is installed and reports at least one device,
// asked of the driver itself (dlopen + cuInit + cuDeviceGetCount, once per process) without
// loading the CUDA module, the CUDA runtime or cuBLAS: `device auto` asks this first, so a
// machine without a GPU never maps them. False: *why says what is missing.
bool cuda_driver_present(std::string* why);

// Whether the module is already loaded (loads nothing).
bool cuda_module_loaded();

}  // namespace llrt
