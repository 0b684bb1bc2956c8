// w8a8 I8 Linear benchmarks at Llama-3.2-1B shapes (hidden 2048, intermediate 8192,
// 32 heads / 8 KV heads of 64, 16 layers), side by side with the BF16 Linear kernel
// the registry would choose for a BF16 checkpoint of the same shape.
//
//   BM_matvec_q8/<N>/<K>/<backend>   one Linear, M tokens, weights hot in nothing
//   BM_matvec_bf16/<N>/<K>           the same shape in BF16 (best usable backend)
//   BM_layers_q8 / BM_layers_bf16    every Linear of all 16 layers, M = 1 (one decode
//                                    step's projections: 973 MB int8 vs 1.95 GB BF16,
//                                    distinct buffers, so nothing stays in cache)
// Threads: the engine's scheme (OpenMP over output rows, activations prepped once);
// LLRT_BENCH_THREADS (default: all cores). Counters: GB/s of weight bytes streamed and
// GOP/s (2*M*N*K). The embeddings / lm_head (BF16 in both checkpoints: Llama-3.2-1B
// ties them, compressed-tensors ignores lm_head) are not part of these numbers.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llrt/cpu.h"
#include "llrt/kernels.h"
#include "llrt/quant.h"
#include "llrt/tensor.h"

using namespace llrt;

namespace {

int bench_threads() {
  if (const char* e = std::getenv("LLRT_BENCH_THREADS"); e && *e) return std::max(1, std::atoi(e));
  return cpu_info().logical_cores;
}

struct Q8Weights {
  int64_t N = 0, K = 0;
  AlignedBuffer w, scale;
  Q8Weights(int64_t n, int64_t k, uint32_t seed) : N(n), K(k) {
    w = aligned_alloc_bytes(size_t(N * K));
    scale = aligned_alloc_bytes(size_t(N) * 2);
    std::mt19937 rng(seed);
    auto* p = static_cast<uint32_t*>(w.get());
    for (int64_t i = 0; i < N * K / 4; ++i) p[i] = rng();
    auto* s = static_cast<uint16_t*>(scale.get());
    for (int64_t i = 0; i < N; ++i) s[i] = f32_to_bf16(0.01f);
  }
};

struct Bf16Weights {
  int64_t N = 0, K = 0;
  AlignedBuffer w;
  Bf16Weights(int64_t n, int64_t k, uint32_t seed) : N(n), K(k) {
    w = aligned_alloc_bytes(size_t(N * K) * 2);
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 0.02f);
    auto* p = static_cast<uint16_t*>(w.get());
    for (int64_t i = 0; i < N * K; ++i) p[i] = f32_to_bf16(d(rng));
  }
};

std::vector<float> activations(int64_t M, int64_t K) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(size_t(M * K));
  for (auto& v : x) v = d(rng);
  return x;
}

// y = x . W^T with the engine's threading: prep once, rows split over threads.
void run_q8(const LinearKernel& k, const Q8Weights& W, const float* x, int64_t M, void* xq, float* y,
            int threads) {
  ActQuantParams act;
  k.prep(LinearPrepArgs{x, W.K, M, W.K, 0, M, &act, xq});
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (W.N + nt - 1) / nt;
    LinearArgs a;
    a.w.data = W.w.get();
    a.w.dtype = DType::I8;
    a.K = W.K;
    a.w.scales = W.scale.get();
    a.w.scale_dtype = DType::BF16;
    a.w.granularity = ScaleGranularity::Channel;
    a.xp = xq;
    a.y = y;
    a.ldy = W.N;
    a.M = M;
    a.n0 = std::min<int64_t>(W.N, t * chunk);
    a.n1 = std::min<int64_t>(W.N, a.n0 + chunk);
    if (a.n0 < a.n1) k.run(a);
  }
}

void run_bf16(const LinearKernel& k, const Bf16Weights& W, const float* x, int64_t M, void* xp, float* y,
              int threads) {
  const ActQuantParams act;
  if (k.prep) k.prep(LinearPrepArgs{x, W.K, M, W.K, 0, M, &act, xp});
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (W.N + nt - 1) / nt;
    LinearArgs a;
    a.w.data = W.w.get();
    a.w.dtype = DType::BF16;
    a.K = W.K;
    a.x = x;
    a.ldx = W.K;
    a.xp = xp;
    a.y = y;
    a.ldy = W.N;
    a.M = M;
    a.n0 = std::min<int64_t>(W.N, t * chunk);
    a.n1 = std::min<int64_t>(W.N, a.n0 + chunk);
    if (a.n0 < a.n1) k.run(a);
  }
}

void counters(benchmark::State& st, double weight_bytes, double ops) {
  st.counters["GB/s"] = benchmark::Counter(weight_bytes, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.counters["GOP/s"] = benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

const LinearKernel* best_bf16() {
  const auto* e = KernelRegistry::global().find_best(Op::Linear, DType::BF16, DType::F32);
  return e ? &e->linear() : nullptr;
}

// ---------------------------------------------------------------- single Linear
void BM_matvec_q8(benchmark::State& st) {
  const int64_t N = st.range(0), K = st.range(1), M = st.range(3);
  const Backend b = Backend(st.range(2));
  if (!backend_hw_supported(b)) return st.SkipWithError("backend not supported by this CPU");
  const LinearKernel& k = linear_q8_kernel(b);
  // Several copies so the weights come from memory (as in decode), not from cache.
  const int copies = int(std::max<int64_t>(1, (256ll << 20) / (N * K)));
  std::vector<Q8Weights> W;
  for (int i = 0; i < copies; ++i) W.emplace_back(N, K, 100 + i);
  const auto x = activations(M, K);
  AlignedBuffer xq = aligned_alloc_bytes(k.prep_bytes(M, K));
  std::vector<float> y(size_t(M * N));
  const int threads = bench_threads();
  int i = 0;
  for (auto _ : st) {
    run_q8(k, W[size_t(i)], x.data(), M, xq.get(), y.data(), threads);
    i = (i + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, double(N * K), 2.0 * double(M * N * K));
  st.SetLabel(std::string(backend_name(b)) + " M=" + std::to_string(M) + " threads=" + std::to_string(threads));
}

void BM_matvec_bf16(benchmark::State& st) {
  const int64_t N = st.range(0), K = st.range(1), M = st.range(2);
  const LinearKernel* k = best_bf16();
  if (!k) return st.SkipWithError("no usable BF16 Linear kernel in this build");
  const int copies = int(std::max<int64_t>(1, (256ll << 20) / (2 * N * K)));
  std::vector<Bf16Weights> W;
  for (int i = 0; i < copies; ++i) W.emplace_back(N, K, 100 + i);
  const auto x = activations(M, K);
  AlignedBuffer xp = aligned_alloc_bytes(k->prep_bytes ? k->prep_bytes(M, K) : 64);
  std::vector<float> y(size_t(M * N));
  const int threads = bench_threads();
  int i = 0;
  for (auto _ : st) {
    run_bf16(*k, W[size_t(i)], x.data(), M, xp.get(), y.data(), threads);
    i = (i + 1) % copies;
    benchmark::DoNotOptimize(y.data());
  }
  counters(st, double(2 * N * K), 2.0 * double(M * N * K));
  st.SetLabel(std::string(KernelRegistry::global().find_best(Op::Linear, DType::BF16, DType::F32)->name) +
              " M=" + std::to_string(M) + " threads=" + std::to_string(threads));
}

// Llama-3.2-1B projection shapes (N = out, K = in).
const int64_t kShapes[4][2] = {{2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}};

void q8_args(benchmark::internal::Benchmark* b) {
  for (auto& s : kShapes)
    for (Backend be : {Backend::Avx2, Backend::AvxVnni, Backend::Avx512Vnni}) b->Args({s[0], s[1], int64_t(be), 1});
  for (Backend be : {Backend::Avx2, Backend::AvxVnni, Backend::Avx512Vnni, Backend::Amx})
    for (int64_t M : {16, 128}) b->Args({8192, 2048, int64_t(be), M});
}
void bf16_args(benchmark::internal::Benchmark* b) {
  for (auto& s : kShapes) b->Args({s[0], s[1], 1});
  b->Args({8192, 2048, 16});
  b->Args({8192, 2048, 128});
}
BENCHMARK(BM_matvec_q8)->Apply(q8_args)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_matvec_bf16)->Apply(bf16_args)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Compute speed with the weights hot in L2 (512 KiB int8 / 1 MiB BF16), one thread,
// rates per CPU second: what the kernel's instruction stream can do per core when
// memory is not the limit (and a number that stays meaningful on a loaded machine).
void BM_hot_q8(benchmark::State& st) {
  const Backend b = Backend(st.range(0));
  if (!backend_hw_supported(b)) return st.SkipWithError("backend not supported by this CPU");
  const LinearKernel& k = linear_q8_kernel(b);
  const Q8Weights W(256, 2048, 1);
  const auto x = activations(1, 2048);
  AlignedBuffer xq = aligned_alloc_bytes(k.prep_bytes(1, 2048));
  std::vector<float> y(256);
  for (auto _ : st) {
    run_q8(k, W, x.data(), 1, xq.get(), y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GB/s"] = benchmark::Counter(double(256 * 2048), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.SetLabel(backend_name(b));
}
void BM_hot_bf16(benchmark::State& st) {
  const LinearKernel* k = best_bf16();
  if (!k) return st.SkipWithError("no usable BF16 Linear kernel in this build");
  const Bf16Weights W(256, 2048, 1);
  const auto x = activations(1, 2048);
  AlignedBuffer xp = aligned_alloc_bytes(k->prep_bytes ? k->prep_bytes(1, 2048) : 64);
  std::vector<float> y(256);
  for (auto _ : st) {
    run_bf16(*k, W, x.data(), 1, xp.get(), y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GB/s"] = benchmark::Counter(double(2 * 256 * 2048), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.SetLabel(KernelRegistry::global().find_best(Op::Linear, DType::BF16, DType::F32)->name);
}
// Activation quantization alone (the per-call prep), one token.
void BM_prep_q8(benchmark::State& st) {
  const Backend b = Backend(st.range(0));
  const int64_t K = st.range(1);
  if (!backend_hw_supported(b)) return st.SkipWithError("backend not supported by this CPU");
  const LinearKernel& k = linear_q8_kernel(b);
  const auto x = activations(1, K);
  AlignedBuffer xq = aligned_alloc_bytes(k.prep_bytes(1, K));
  ActQuantParams act;
  act.mode = ActQuantMode(st.range(2));
  act.scale = 0.05f;
  for (auto _ : st) {
    k.prep(LinearPrepArgs{x.data(), K, 1, K, 0, 1, &act, xq.get()});
    benchmark::DoNotOptimize(xq.get());
  }
  st.SetLabel(std::string(backend_name(b)) + (act.mode == ActQuantMode::DynamicSymmetric ? " dynamic-sym" : act.mode == ActQuantMode::DynamicAsymmetric ? " dynamic-asym" : " static"));
}
BENCHMARK(BM_prep_q8)->ArgsProduct({{int64_t(Backend::Avx2), int64_t(Backend::Avx512Vnni)}, {2048, 8192}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_hot_q8)->Arg(int64_t(Backend::Avx2))->Arg(int64_t(Backend::AvxVnni))->Arg(int64_t(Backend::Avx512Vnni))
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_hot_bf16)->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- all 16 layers
constexpr int kLayers = 16;
const int64_t kLayerShapes[7][2] = {{2048, 2048}, {512, 2048}, {512, 2048}, {2048, 2048},
                                    {8192, 2048}, {8192, 2048}, {2048, 8192}};

void BM_layers_q8(benchmark::State& st) {
  const Backend b = Backend(st.range(0));
  if (!backend_hw_supported(b)) return st.SkipWithError("backend not supported by this CPU");
  const LinearKernel& k = linear_q8_kernel(b);
  std::vector<Q8Weights> W;
  double bytes = 0;
  for (int l = 0; l < kLayers; ++l)
    for (auto& s : kLayerShapes) W.emplace_back(s[0], s[1], uint32_t(W.size())), bytes += double(s[0] * s[1]);
  const auto x = activations(1, 8192);
  AlignedBuffer xq = aligned_alloc_bytes(k.prep_bytes(1, 8192));
  std::vector<float> y(8192);
  const int threads = bench_threads();
  for (auto _ : st)
    for (const auto& w : W) run_q8(k, w, x.data(), 1, xq.get(), y.data(), threads);
  counters(st, bytes, 2.0 * bytes);
  st.SetLabel(std::string(backend_name(b)) + " threads=" + std::to_string(threads));
}

void BM_layers_bf16(benchmark::State& st) {
  const LinearKernel* k = best_bf16();
  if (!k) return st.SkipWithError("no usable BF16 Linear kernel in this build");
  std::vector<Bf16Weights> W;
  double bytes = 0;
  for (int l = 0; l < kLayers; ++l)
    for (auto& s : kLayerShapes) W.emplace_back(s[0], s[1], uint32_t(W.size())), bytes += 2.0 * double(s[0] * s[1]);
  const auto x = activations(1, 8192);
  AlignedBuffer xp = aligned_alloc_bytes(k->prep_bytes ? k->prep_bytes(1, 8192) : 64);
  std::vector<float> y(8192);
  const int threads = bench_threads();
  for (auto _ : st)
    for (const auto& w : W) run_bf16(*k, w, x.data(), 1, xp.get(), y.data(), threads);
  counters(st, bytes, bytes);
  st.SetLabel(std::string(KernelRegistry::global().find_best(Op::Linear, DType::BF16, DType::F32)->name) +
              " threads=" + std::to_string(threads));
}
// Both in one loop, alternating, so that load from other processes hits both alike:
// counter "speedup" = BF16 time / int8 time for the 16 layers' projections.
void BM_layers_speedup(benchmark::State& st) {
  const LinearKernel* kb = best_bf16();
  if (!kb) return st.SkipWithError("no usable BF16 Linear kernel in this build");
  const KernelEntry* eqp = KernelRegistry::global().find_best(Op::Linear, DType::I8, DType::F32);
  if (!eqp) return st.SkipWithError("no usable I8 Linear kernel in this build");
  const KernelEntry& eq = *eqp;
  const LinearKernel& kq = eq.linear();
  std::vector<Q8Weights> Wq;
  std::vector<Bf16Weights> Wb;
  for (int l = 0; l < kLayers; ++l)
    for (auto& s : kLayerShapes) {
      Wq.emplace_back(s[0], s[1], uint32_t(Wq.size()));
      Wb.emplace_back(s[0], s[1], uint32_t(Wb.size()));
    }
  const auto x = activations(1, 8192);
  AlignedBuffer xq = aligned_alloc_bytes(kq.prep_bytes(1, 8192));
  AlignedBuffer xp = aligned_alloc_bytes(kb->prep_bytes ? kb->prep_bytes(1, 8192) : 64);
  std::vector<float> y(8192);
  const int threads = bench_threads();
  double tq = 0, tb = 0;
  for (auto _ : st) {
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& w : Wq) run_q8(kq, w, x.data(), 1, xq.get(), y.data(), threads);
    auto t1 = std::chrono::steady_clock::now();
    for (const auto& w : Wb) run_bf16(*kb, w, x.data(), 1, xp.get(), y.data(), threads);
    auto t2 = std::chrono::steady_clock::now();
    tq += std::chrono::duration<double>(t1 - t0).count();
    tb += std::chrono::duration<double>(t2 - t1).count();
  }
  st.counters["int8_ms"] = 1e3 * tq / double(st.iterations());
  st.counters["bf16_ms"] = 1e3 * tb / double(st.iterations());
  st.counters["speedup"] = tb / tq;
  st.SetLabel(std::string(eq.name) + " vs " +
              KernelRegistry::global().find_best(Op::Linear, DType::BF16, DType::F32)->name +
              " threads=" + std::to_string(threads));
}
BENCHMARK(BM_layers_speedup)->Unit(benchmark::kMillisecond)->MinTime(3.0);

BENCHMARK(BM_layers_q8)->Arg(int64_t(Backend::Avx2))->Arg(int64_t(Backend::AvxVnni))->Arg(int64_t(Backend::Avx512Vnni))->Arg(int64_t(Backend::Amx))
    ->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_layers_bf16)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
