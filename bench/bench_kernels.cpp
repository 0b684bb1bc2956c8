// Kernel microbenchmarks at the real Llama-3.2-1B shapes (hidden 2048, intermediate
// 8192, 32 q heads / 8 kv heads of 64, vocab 128256), for every registered backend this
// CPU can run (the scalar reference is left out: it is an oracle, not a contender).
//
//   build-*/bench/bench_kernels [--benchmark_filter=linear/.*bf16.*M:1/] [google benchmark flags]
//
// Reported counters:
//   GB/s     weight bytes streamed / time (Linear), data bytes / time (other ops)
//   %bw      GB/s as % of the read bandwidth measured at start-up with the same thread
//            count: llrt::measure_read_bandwidth (STREAM-like read of 1 GiB on huge pages,
//            AVX-512 loads with prefetch, OpenMP threads; the probe `llrt bench` uses)
//   GFLOP/s  2*M*N*K / time (Linear)
// Linear weights rotate through a 2 GiB arena (huge pages advised, as the loader's
// copy path does) so each iteration reads weights that are not in the caches, as in a
// real forward pass over ~2.5 GB of weights; time includes `prep` (run once per call,
// on one thread, as the engine does) and the threaded `run`s. Threads split the N rows
// the way the engine does: contiguous blocks, n0 a multiple of 16. Rates are per wall
// time for threads:2 and per CPU time for threads:1 (the same on a quiet machine; on a
// shared one the CPU time still measures the kernel).
#include <benchmark/benchmark.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "src/engine/cpu.h"
#include "llrt/dtype.h"
#include "src/engine/kernels.h"
#include "src/engine/membw.h"
#include "llrt/tensor.h"
#include "tests/random_weights.h"

using namespace llrt;

namespace {

constexpr size_t kArenaBytes = size_t(2) << 30;
std::map<int, double> g_probe;  // threads -> GB/s: llrt::measure_read_bandwidth

// ---------------------------------------------------------------- weight arena

struct Arena {
  DType t = DType::U8;
  AlignedBuffer buf;
};
Arena g_arena;

// 2 GiB of valid weights of dtype t (values ~ N(0, 0.02), no NaN or subnormals).
const uint8_t* arena(DType t) {
  if (g_arena.buf && g_arena.t == t) return static_cast<const uint8_t*>(g_arena.buf.get());
  g_arena.buf.reset();
  g_arena.buf = aligned_alloc_bytes(kArenaBytes, size_t(2) << 20);
  g_arena.t = t;
  uint8_t* p = static_cast<uint8_t*>(g_arena.buf.get());
  madvise(p, kArenaBytes, MADV_HUGEPAGE);
  const size_t n = kArenaBytes / dtype_size(t);
#pragma omp parallel
  {
    std::mt19937 g(1234u + unsigned(omp_get_thread_num()));
    std::normal_distribution<float> d(0.0f, 0.02f);
    float pool[4096];
    for (float& v : pool) v = d(g);
#pragma omp for schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const float v = pool[(i * 2654435761u) & 4095];
      if (t == DType::F32) std::memcpy(p + 4 * i, &v, 4);
      else {
        const uint16_t h = t == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        std::memcpy(p + 2 * i, &h, 2);
      }
    }
  }
  return p;
}

struct Shape {
  const char* name;
  int64_t N, K;
};
const Shape kShapes[] = {
    {"q_proj", 2048, 2048},   {"k_proj", 512, 2048}, {"o_proj", 2048, 2048},
    {"gate_proj", 8192, 2048}, {"down_proj", 2048, 8192}, {"lm_head", 128256, 2048},
};

std::vector<float> random_floats(size_t n, float sd, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void set_rates(benchmark::State& st, double bytes_per_iter, double flops_per_iter, int threads) {
  const double it = double(st.iterations());
  st.counters["GB/s"] = benchmark::Counter(bytes_per_iter * it / 1e9, benchmark::Counter::kIsRate);
  if (flops_per_iter > 0)
    st.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter * it / 1e9, benchmark::Counter::kIsRate);
  if (g_probe.count(threads))
    st.counters["%bw"] = benchmark::Counter(bytes_per_iter * it / 1e9 / g_probe[threads] * 100,
                                            benchmark::Counter::kIsRate);
}

// ---------------------------------------------------------------- Linear

// hot: the same weights every iteration (in L2 for the "hot" shape): the kernel's arithmetic
// ceiling per core, i.e. the GB/s it would stream on a core whose memory is never the limit.
void bm_linear(benchmark::State& st, const KernelEntry* e, Shape s, int64_t M, int threads, bool hot = false) {
  const LinearKernel& lk = e->linear();
  const size_t wbytes = size_t(s.N * s.K) * dtype_size(e->wtype);
  const size_t slot = (wbytes + 4095) / 4096 * 4096;
  const size_t ncopies = hot ? 1 : std::max<size_t>(1, kArenaBytes / slot);
  const uint8_t* base = arena(e->wtype);
  std::vector<float> x = random_floats(size_t(M * s.K), 1.0f, 7);
  AlignedBuffer y = aligned_alloc_bytes(size_t(M * s.N) * 4);
  AlignedBuffer xp;
  if (lk.prep_bytes) xp = aligned_alloc_bytes(std::max<size_t>(lk.prep_bytes(M, s.K), 64));
  const int64_t chunk = ((s.N + threads - 1) / threads + 15) / 16 * 16;
  size_t it = 0;
  for (auto _ : st) {
    const void* w = base + (it++ % ncopies) * slot;
    const ActQuantParams act;
    if (lk.prep) lk.prep(LinearPrepArgs{x.data(), s.K, M, s.K, 0, M, &act, xp.get()});
#pragma omp parallel num_threads(threads)
    {
      LinearArgs a;
      a.w.data = w;
      a.w.dtype = e->wtype;
      a.K = s.K;
      a.x = x.data();
      a.ldx = s.K;
      a.xp = xp.get();
      a.y = static_cast<float*>(y.get());
      a.ldy = s.N;
      a.M = M;
      a.n0 = std::min<int64_t>(s.N, omp_get_thread_num() * chunk);
      a.n1 = std::min<int64_t>(s.N, a.n0 + chunk);
      if (a.n0 < a.n1) lk.run(a);
    }
    benchmark::ClobberMemory();
  }
  set_rates(st, double(wbytes), 2.0 * double(M) * double(s.N) * double(s.K), threads);
}

// ---------------------------------------------------------------- Attention

// One decode step of one layer: 32 query heads over 8 shared KV heads (GQA) of 64, the
// engine's KV cache layout [kv_head][n_kv][64] in the kernel's KV dtype (kv_stride = 64).
// group 1: one query head per call (the 4 heads of a group read their K/V 4 times, from the
// caches when it fits); group 4: the engine's call, the 4 heads of a KV head together (each
// K/V row read once). Bytes = the K and V read once.
void bm_attention(benchmark::State& st, const KernelEntry* e, int64_t n_kv, int threads, int64_t group) {
  const int64_t hd = 64, nh = 32, nkv = 8, rep = nh / nkv;
  std::vector<float> q = random_floats(size_t(nh * hd), 1.0f, 1);
  test::Rng rng(2);  // K and V in the kernel's KV dtype
  const test::Weights k = test::make_weights(e->wtype, size_t(nkv * n_kv * hd), rng), v = test::make_weights(e->wtype, k.f.size(), rng);
  const size_t es = dtype_size(e->wtype);
  std::vector<float> out(static_cast<size_t>(nh * hd));
  std::vector<float> scratch(static_cast<size_t>(threads * n_kv * group));
  auto fn = kernel_fn<AttentionFn>(*e);
  for (auto _ : st) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t h = 0; h < nh; h += group) {
      AttentionArgs a;
      a.q = q.data() + h * hd;
      a.k = k.bytes.data() + size_t((h / rep) * n_kv * hd) * es;
      a.v = v.bytes.data() + size_t((h / rep) * n_kv * hd) * es;
      a.kv_stride = hd;
      a.n_kv = n_kv;
      a.head_dim = hd;
      a.scale = 0.125f;
      a.out = out.data() + h * hd;
      a.scratch = scratch.data() + omp_get_thread_num() * n_kv * group;
      a.n_q = group;
      a.q_stride = a.out_stride = hd;
      fn(a);
    }
    benchmark::ClobberMemory();
  }
  set_rates(st, double(2 * nkv * n_kv * hd) * double(es), 4.0 * double(nh * n_kv * hd), threads);
}

// ---------------------------------------------------------------- RmsNorm, Rope, SiluMul

void bm_rmsnorm(benchmark::State& st, const KernelEntry* e, int64_t rows) {
  const int64_t dim = 2048;
  std::vector<float> x = random_floats(size_t(rows * dim), 1.0f, 4), y(x.size());
  const uint8_t* w = arena(e->wtype);
  auto fn = kernel_fn<RmsNormFn>(*e);
  for (auto _ : st) {
    for (int64_t r = 0; r < rows; ++r) fn(x.data() + r * dim, w, y.data() + r * dim, dim, 1e-5f);
    benchmark::ClobberMemory();
  }
  set_rates(st, double(rows * dim * 8), 0, 1);
}

void bm_rope(benchmark::State& st, const KernelEntry* e, int64_t tokens) {
  const int64_t hd = 64, heads = 32 + 8;  // q and k heads of one token
  std::vector<float> x = random_floats(size_t(tokens * heads * hd), 1.0f, 5);
  std::vector<float> cs(static_cast<size_t>(hd / 2)), sn(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) {  // a real rotation: magnitudes stay put
    cs[size_t(i)] = float(std::cos(0.37 * double(i + 1)));
    sn[size_t(i)] = float(std::sin(0.37 * double(i + 1)));
  }
  auto fn = kernel_fn<RopeFn>(*e);
  for (auto _ : st) {
    for (int64_t t = 0; t < tokens; ++t) fn(x.data() + t * heads * hd, heads, hd, hd, cs.data(), sn.data());
    benchmark::ClobberMemory();
  }
  set_rates(st, double(tokens * heads * hd * 8), 0, 1);
}

void bm_silu_mul(benchmark::State& st, const KernelEntry* e, int64_t tokens) {
  const int64_t n = 8192 * tokens;
  std::vector<float> g = random_floats(size_t(n), 2.0f, 8), u = random_floats(size_t(n), 1.0f, 9), o(static_cast<size_t>(n));
  auto fn = kernel_fn<SiluMulFn>(*e);
  for (auto _ : st) {
    fn(g.data(), u.data(), o.data(), n);
    benchmark::ClobberMemory();
  }
  set_rates(st, double(n * 12), 0, 1);
}

// ---------------------------------------------------------------- registration

std::vector<const KernelEntry*> contenders(Op op, DType w) {
  std::vector<const KernelEntry*> out;
  for (const auto& e : KernelRegistry::global().all())
    if (e.op == op && e.wtype == w && (e.atype == DType::F32 || e.atype == w) && e.backend != Backend::Ref &&
        backend_is_cpu(e.backend) && backend_hw_supported(e.backend))
      out.push_back(&e);
  return out;
}

void register_all() {
  for (int t : {1, 2}) {
    benchmark::RegisterBenchmark(("membw/llrt_probe/threads:" + std::to_string(t)).c_str(),
                                 [t](benchmark::State& st) {
                                   double gbs = 0;
                                   for (auto _ : st) gbs = measure_read_bandwidth(uint64_t(1) << 30, t, 3);
                                   st.counters["GB/s"] = gbs;
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  // Compute ceilings: M = 1 over 256 x 2048 weights that stay in L2 (1-2 MiB), one thread.
  for (DType w : {DType::BF16, DType::F16, DType::F32})
    for (const KernelEntry* e : contenders(Op::Linear, w))
      for (int64_t M : {1, 4}) {
        const std::string name = std::string("linear_hot/") + e->name + "/256x2048/M:" + std::to_string(M) + "/threads:1";
        benchmark::RegisterBenchmark(name.c_str(), bm_linear, e, Shape{"hot", 256, 2048}, M, 1, true)->Unit(benchmark::kMicrosecond);
      }
  for (DType w : {DType::BF16, DType::F16, DType::F32})
    for (const KernelEntry* e : contenders(Op::Linear, w))
      for (const Shape& s : kShapes)
        for (int64_t M : {1, 8, 16, 32, 128, 512}) {
          if (std::string(s.name) == "lm_head" && M > 1) continue;  // prefill needs its last row only
          for (int t : {1, 2}) {
            const std::string name = std::string("linear/") + e->name + "/" + s.name + "/M:" +
                                     std::to_string(M) + "/threads:" + std::to_string(t);
            auto* b = benchmark::RegisterBenchmark(name.c_str(), bm_linear, e, s, M, t, false);
            b->Unit(benchmark::kMicrosecond);
            if (t > 1) b->UseRealTime();
          }
        }
  for (DType kv : {DType::F32, DType::F16, DType::BF16})
    for (const KernelEntry* e : contenders(Op::Attention, kv))
      for (int64_t n_kv : {128, 512, 2048, 8192})
        for (int t : {1, 2})
          for (int64_t group : {1, 4}) {
            if (kv != DType::F32 && group == 1) continue;
            auto* b = benchmark::RegisterBenchmark((std::string("attention/") + e->name + "/n_kv:" + std::to_string(n_kv) +
                                                    "/threads:" + std::to_string(t) + "/heads_per_call:" + std::to_string(group))
                                                       .c_str(),
                                                   bm_attention, e, n_kv, t, group);
            b->Unit(benchmark::kMicrosecond);
            if (t > 1) b->UseRealTime();
          }
  for (DType w : {DType::BF16, DType::F32})
    for (const KernelEntry* e : contenders(Op::RmsNorm, w))
      for (int64_t rows : {1, 512})
        benchmark::RegisterBenchmark((std::string("rmsnorm/") + e->name + "/dim:2048/rows:" + std::to_string(rows)).c_str(),
                                     bm_rmsnorm, e, rows)
            ->Unit(benchmark::kMicrosecond);
  for (const KernelEntry* e : contenders(Op::Rope, DType::F32))
    for (int64_t tokens : {1, 512})
      benchmark::RegisterBenchmark((std::string("rope/") + e->name + "/40x64/tokens:" + std::to_string(tokens)).c_str(),
                                   bm_rope, e, tokens)
          ->Unit(benchmark::kMicrosecond);
  for (const KernelEntry* e : contenders(Op::SiluMul, DType::F32))
    for (int64_t tokens : {1, 512})
      benchmark::RegisterBenchmark((std::string("silu_mul/") + e->name + "/8192/tokens:" + std::to_string(tokens)).c_str(),
                                   bm_silu_mul, e, tokens)
          ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (int t : {1, 2})
    g_probe[t] = measure_read_bandwidth(uint64_t(1) << 30, t, 5);
  benchmark::AddCustomContext("cpu", cpu_summary());
  for (auto& [t, g] : g_probe)
    benchmark::AddCustomContext("read_bw_probe_threads_" + std::to_string(t), std::to_string(g) + " GB/s");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
