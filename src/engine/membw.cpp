#include "src/engine/membw.h"

#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define LLRT_MEMBW_X86 1
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "src/engine/cpu.h"
#include "llrt/tensor.h"

namespace llrt {

namespace {
#ifdef LLRT_MEMBW_X86
// Sum of 32-byte vectors: one load per 32 bytes, 4 independent accumulators.
__attribute__((target("avx2"))) double sum_avx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float t[8];
  _mm256_storeu_ps(t, s);
  double r = 0;
  for (float v : t) r += v;
  for (; i < n; ++i) r += p[i];
  return r;
}
// Sum of 64-byte vectors, 8 accumulators, a software prefetch 2 KiB ahead: what a
// weight-streaming kernel can hope for on AVX-512 machines (reads ~10% above the AVX2 sum).
__attribute__((target("avx512f"))) double sum_avx512(const float* p, size_t n) {
  __m512 a[8];
  for (auto& v : a) v = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 512), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 512 + 64), _MM_HINT_T0);
    for (int j = 0; j < 8; ++j) a[j] = _mm512_add_ps(a[j], _mm512_load_ps(p + i + 16 * j));
  }
  for (int j = 1; j < 8; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  alignas(64) float l[16];
  _mm512_store_ps(l, a[0]);
  double r = 0;
  for (float v : l) r += v;
  for (; i < n; ++i) r += p[i];
  return r;
}
#endif
#if defined(__aarch64__)
// Sum of 16-byte vectors, 8 accumulators (128 bytes per step): NEON is in every aarch64 core.
double sum_neon(const float* p, size_t n) {
  float32x4_t a[8];
  for (auto& v : a) v = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 8; ++j) a[j] = vaddq_f32(a[j], vld1q_f32(p + i + 4 * j));
  for (int j = 1; j < 8; ++j) a[0] = vaddq_f32(a[0], a[j]);
  double r = vaddvq_f32(a[0]);
  for (; i < n; ++i) r += p[i];
  return r;
}
#endif
double sum_scalar(const float* p, size_t n) {
  double r = 0;
  for (size_t i = 0; i < n; ++i) r += p[i];
  return r;
}
}  // namespace

double measure_read_bandwidth(uint64_t bytes, int threads, int reps) {
  if (threads <= 0) threads = cpu_info().physical_cores;
  size_t n = size_t(bytes / 4) / 256 * 256;
  auto buf = aligned_alloc_bytes(n * 4, 2u << 20);
  float* p = static_cast<float*>(buf.get());
  madvise(p, n * 4, MADV_HUGEPAGE);  // like the weights' copy mode (best case for decode)
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) p[i] = 1.0f;
#ifdef LLRT_MEMBW_X86
  const bool avx512 = backend_hw_supported(Backend::Avx512), avx2 = backend_hw_supported(Backend::Avx2);
#endif
  double best = 0;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      size_t chunk = (n / size_t(nt)) / 256 * 256;
      size_t b = size_t(t) * chunk, e = t == nt - 1 ? n : b + chunk;
#ifdef LLRT_MEMBW_X86
      total += avx512 ? sum_avx512(p + b, e - b) : avx2 ? sum_avx2(p + b, e - b) : sum_scalar(p + b, e - b);
#elif defined(__aarch64__)
      total += sum_neon(p + b, e - b);
#else
      total += sum_scalar(p + b, e - b);
#endif
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    best = std::max(best, double(n) * 4 / s / 1e9);
  }
  (void)sink;
  return best;
}

}  // namespace llrt
