// The CUDA backend's checks.
//
//  1. The registry: every Backend::Cuda entry, CPU lookups never return one (runs without
//     a GPU too).
//  2. The cross-backend op checker for CUDA: every CUDA kernel against the CPU reference
//     kernels (kernels/cpu/ref: F64 accumulation, the oracle) on random data at odd
//     shapes (N, K in 1, 7, 13, 127, 4097 and the aligned 16, 256, 4096 that take the
//     vector paths; M in 1, 3, 17, 65, both the GEMV and the GEMM path at every M), with
//     a stated tolerance per op. Outputs are poisoned first, so an unwritten or
//     overwritten element fails.
//  3. The whole model against HF's float32 references (../shared/references), as
//     tests/test_model.cpp does for the CPU, plus engine behaviour: graph replay equals
//     plain launches bit for bit, prefill equals decode, the memory estimate equals what
//     is allocated, errors leave the state unchanged.
// Without a usable GPU (CI) every GPU case says "no CUDA device: skipping" and passes.
//
// Tolerances (u = 2^-24; S = sum_k |x_k w_k|; "ref" is the reference rounded to F32):
//   Linear F32 accumulation (GEMV; cuBLAS with TF32 off): |y - ref| <= 8 sqrt(K) u S + u |ref|
//     (the statistical bound of tests/test_kernels.cpp with K roundings, worst case order)
//   + activation rounding of the BF16 / F16 GEMM path: 2^-8 S (BF16), 2^-11 S (F16) +
//     2^-24 * sum|w| (F16 subnormal activations)
//   Linear (I8), Embedding, Add, Rope: bit-identical (same integer / F64 arithmetic)
//   RmsNorm: 2 u |ref| (F64 sums in a different order)
//   SiluMul: 8 u |ref| + 1e-30 (expf, one division, one product)
//   Attention: the bound of tests/test_kernels.cpp's attention check (scores, softmax and
//     weighted sums in F32) with n_kv roundings for the sums.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>

#include "kernels/cpu/common/linear_q8.h"
#include "kernels/cuda/cuda_ops.h"
#include "llrt/cuda.h"
#include "llrt/error.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "src/quant/quant.h"
#include "random_weights.h"
#include "reference.h"
#include "src/engine/llama.h"

using namespace llrt;
using namespace llrt::test;

namespace {

constexpr double kU = 1.0 / 16777216.0;

#define SKIP_WITHOUT_GPU()                                                 \
  do {                                                                     \
    if (!cuda_available()) {                                               \
      MESSAGE("no CUDA device: skipping (" << cuda_status() << ")");       \
      return;                                                              \
    }                                                                      \
  } while (0)

// A device buffer.
struct Dev {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t b) : bytes(std::max<size_t>(b, 16)) { cuda::check(cudaMalloc(&p, bytes), "cudaMalloc (test)"); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p); }
  void up(const void* src, size_t n) { cuda::check(cudaMemcpy(p, src, n, cudaMemcpyHostToDevice), "upload"); }
  template <class T>
  void up(const std::vector<T>& v) { up(v.data(), v.size() * sizeof(T)); }
  template <class T>
  std::vector<T> down(size_t n) const {
    std::vector<T> v(n);
    cuda::check(cudaDeviceSynchronize(), "kernel");
    cuda::check(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }
};
template <class T>
std::unique_ptr<Dev> dev_of(const std::vector<T>& v) {
  auto d = std::make_unique<Dev>(v.size() * sizeof(T));
  d->up(v);
  return d;
}


const float kPoison = [] {
  uint32_t u = 0x7fc0dead;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}();
bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }


const KernelEntry& ref_entry(Op op, DType w) {
  const KernelEntry* e = KernelRegistry::global().find(op, w, DType::F32, Backend::Ref);
  REQUIRE(e);
  return *e;
}
const KernelEntry& cuda_entry(Op op, DType w) {
  const KernelEntry* e = KernelRegistry::global().find_best(op, w, DType::F32, DeviceKind::Cuda);
  REQUIRE_MESSAGE(e, "no CUDA kernel for " << op_name(op) << " " << dtype_name(w));
  CHECK(e->backend == Backend::Cuda);
  return *e;
}

std::map<std::string, double> g_worst;
void note_worst(const std::string& op, double r) { g_worst[op] = std::max(g_worst[op], r); }
struct WorstReport {
  ~WorstReport() {
    for (const auto& [op, w] : g_worst) MESSAGE("worst |diff| / tolerance for " << op << ": " << w);
    g_worst.clear();
  }
};

struct CudaFixture {
  cuda::Blas* blas = nullptr;
  CudaFixture() {
    if (cuda_available()) {
      cuda::check(cudaSetDevice(cuda_selected_device()), "cudaSetDevice");
      blas = cuda::blas_create();
    }
  }
  ~CudaFixture() { cuda::blas_destroy(blas); }
};

}  // namespace

// ==================================================================== registry

TEST_CASE("cuda: the registry has Backend::Cuda kernels and CPU lookups never pick them") {
  // The CUDA module (built beside this test) loads on first use and registers its kernels.
  REQUIRE_MESSAGE(cuda_built(), cuda_status());
  MESSAGE("CUDA module: " << cuda_module_path());
  const auto& reg = KernelRegistry::global();
  int n = 0;
  for (const auto& e : reg.all())
    if (e.backend == Backend::Cuda) {
      ++n;
      CHECK(e.min_cc >= 80);
      CHECK(std::string(e.name).find("__cuda") != std::string::npos);
    }
  MESSAGE(n << " CUDA kernels registered; " << cuda_status());
  CHECK(n == 18);  // 14 + the fused decode Linear for F32/F16/BF16/I8
  const Op ops[] = {Op::Linear, Op::Embedding, Op::RmsNorm, Op::Rope, Op::Attention, Op::SiluMul, Op::Add,
                    Op::RopeKvStore, Op::AttentionAllHeads, Op::LinearDecodeFused};
  for (Op op : ops)
    for (DType w : {DType::F32, DType::F16, DType::BF16, DType::I8}) {
      const KernelEntry* e = reg.find_best(op, w, DType::F32);
      if (e) CHECK(backend_is_cpu(e->backend));
      const KernelEntry* c = reg.find_best(op, w, DType::F32, DeviceKind::Cuda);
      if (!cuda_available()) CHECK(c == nullptr);
      if (c) CHECK(c->backend == Backend::Cuda);
    }
  // A CUDA need that cannot be met names the device situation and the way out.
  KernelVerdict v;
  v.need = {Op::Linear, DType::BF16, DType::F32, "test"};
  v.device = DeviceKind::Cuda;
  const std::string msg = unsupported_kernel_message(v);
  CHECK(msg.find("CUDA") != std::string::npos);
  CHECK(msg.find("--device cpu") != std::string::npos);
  CHECK(backend_hw_supported(Backend::Cuda) == cuda_available());
  // The CUDA engine's needs name its own attention ops (their work differs from the CPU's).
  const Checkpoint ck = Checkpoint::open(model_dir("llama-3.2-mini"));
  bool rope_kv = false, all_heads = false, cpu_ops = false;
  for (const auto& n : llama_kernel_needs(ck, DType::F32, DeviceKind::Cuda)) {
    rope_kv = rope_kv || n.op == Op::RopeKvStore;
    all_heads = all_heads || n.op == Op::AttentionAllHeads;
    cpu_ops = cpu_ops || n.op == Op::Rope || n.op == Op::Attention;
  }
  CHECK(rope_kv);
  CHECK(all_heads);
  CHECK(!cpu_ops);
}

TEST_CASE("cuda: the module's errors reach the program as llrt::Error; without a GPU, loads fail saying what to do") {
  REQUIRE_MESSAGE(cuda_built(), cuda_status());
  if (cuda_available()) return;
  // Thrown inside libllrt-cuda.so (its device probe), caught here by type.
  try {
    (void)cuda_measure_copy_bandwidth(1 << 20, 1);
    FAIL("no exception without a device");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Cuda);
    MESSAGE("module error: " << std::string(e.what()));
  }
  try {
    (void)CudaModel::load(model_dir("llama-3.2-mini"));
    FAIL("loaded without a device");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Cuda);
    CHECK(std::string(e.what()).find("What to do") != std::string::npos);
    CHECK(std::string(e.what()).find("--device cpu") != std::string::npos);
  }
  const CudaFit fit = cuda_check_model(Checkpoint::open(model_dir("llama-3.2-mini")), 0, 512);
  CHECK(!fit.ok);
  CHECK(!fit.reason.empty());
}

TEST_CASE("cuda: device report") {
  SKIP_WITHOUT_GPU();
  for (const auto& d : cuda_devices()) {
    MESSAGE(d.describe() << ", " << d.free_bytes / (1 << 20) << " MiB free");
    CHECK(d.total_bytes > 0);
    CHECK(d.free_bytes <= d.total_bytes);
  }
  const auto& reg = KernelRegistry::global();
  for (DType w : {DType::F32, DType::F16, DType::BF16}) CHECK(reg.find_best(Op::Linear, w, DType::F32, DeviceKind::Cuda));
  CHECK(reg.find_best(Op::Linear, DType::I8, DType::F32, DeviceKind::Cuda));
}

// ==================================================================== Linear

namespace {

int linear_case(CudaFixture& fx, DType wt, int64_t N, int64_t K, int64_t M, bool padded, bool accumulate, Rng& rng) {
  const int64_t ldx = padded ? K + 3 : K, ldy = N + 2;
  Weights w = make_weights(wt, size_t(N * K), rng, 0.5f);
  std::vector<float> x(size_t(M * ldx)), y0(size_t(M * ldy), kPoison);
  for (auto& v : x) v = rng.normal();
  if (accumulate)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y0[size_t(m * ldy + n)] = rng.normal(4.0f);
  // Oracle: the F64 reference kernel, and S = sum |x w| per output.
  std::vector<float> ref(size_t(M * ldy), kPoison);
  const LinearKernel& rk = ref_entry(Op::Linear, wt).linear();
  LinearArgs ra;
  ra.w.data = w.bytes.data();
  ra.w.dtype = wt;
  ra.K = K;
  ra.x = x.data();
  ra.ldx = ldx;
  ra.y = ref.data();
  ra.ldy = ldy;
  ra.M = M;
  ra.n0 = 0;
  ra.n1 = N;
  rk.run(ra);
  std::vector<double> S(ref.size(), 0), Sw(ref.size(), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        S[size_t(m * ldy + n)] += std::fabs(double(x[size_t(m * ldx + k)]) * w.f[size_t(n * K + k)]);
        Sw[size_t(m * ldy + n)] += std::fabs(double(w.f[size_t(n * K + k)]));
      }
  auto dw = dev_of(w.bytes);
  auto dx = dev_of(x);
  Dev dy(y0.size() * 4), conv(std::max<size_t>(cuda::linear_conv_bytes(wt, std::max<int64_t>(M, 9), K), 16));
  int failures = 0;
  for (int path = 0; path < 2; ++path) {  // 0: GEMV (M <= 8), 1: GEMM (cuBLAS)
    if (path == 0 && M > cuda::kGemvMaxM) continue;
    dy.up(y0);
    cuda::LinearCall c;
    c.w = dw->p;
    c.N = N;
    c.K = K;
    c.x = dx->as<float>();
    c.ldx = ldx;
    c.y = dy.as<float>();
    c.ldy = ldy;
    c.M = M;
    c.accumulate = accumulate;
    c.conv = conv.p;
    c.blas = fx.blas;
    if (path == 0) cuda::gemv(wt, c, nullptr);
    else cuda::gemm(wt, c, nullptr);
    std::vector<float> y = dy.down<float>(y0.size());
    const double act = path == 1 ? (wt == DType::BF16 ? 1.0 / 256 : wt == DType::F16 ? 1.0 / 2048 : 0.0) : 0.0;
    const std::string op = std::string(path == 0 ? "gemv " : "gemm ") + dtype_name(wt);
    for (int64_t m = 0; m < M && failures < 3; ++m)
      for (int64_t n = 0; n < ldy; ++n) {
        const size_t i = size_t(m * ldy + n);
        if (n >= N) {  // outside the matrix: untouched
          if (!same_bits(y[i], y0[i])) {
            ++failures;
            FAIL_CHECK(op << " N=" << N << " K=" << K << " M=" << M << " wrote outside its rows at " << i);
          }
          continue;
        }
        const double want = accumulate ? double(y0[i]) + double(ref[i]) : double(ref[i]);
        const double tol = 8 * std::sqrt(double(K) + 16) * kU * S[i] + kU * std::fabs(want) +
                           act * S[i] + (wt == DType::F16 && path == 1 ? kU * Sw[i] : 0.0) +
                           (accumulate ? kU * std::fabs(want) : 0.0) + 1e-30;
        const double err = std::fabs(double(y[i]) - want);
        note_worst(op, err / tol);
        if (!(err <= tol)) {
          ++failures;
          FAIL_CHECK(op << " N=" << N << " K=" << K << " M=" << M << (padded ? " ldx=K+3" : "")
                        << (accumulate ? " accumulate" : "") << " at m=" << m << " n=" << n << ": " << y[i] << " vs "
                        << want << " (tolerance " << tol << ")");
          break;
        }
      }
  }
  // The registered entry (what the engine calls) must agree with the path it picks.
  dy.up(y0);
  cuda::LinearCall c;
  c.w = dw->p;
  c.N = N;
  c.K = K;
  c.x = dx->as<float>();
  c.ldx = ldx;
  c.y = dy.as<float>();
  c.ldy = ldy;
  c.M = M;
  c.accumulate = accumulate;
  c.conv = conv.p;
  c.blas = fx.blas;
  kernel_fn<cuda::LinearFn>(cuda_entry(Op::Linear, wt))(c, nullptr);
  (void)dy.down<float>(1);
  return failures;
}

}  // namespace

TEST_CASE("cuda kernels: Linear (GEMV and cuBLAS GEMM) against the reference") {
  SKIP_WITHOUT_GPU();
  CudaFixture fx;
  WorstReport report;
  Rng rng(2024);
  const int64_t Ks[] = {1, 7, 13, 127, 4097, 16, 256, 4096};
  const int64_t Ns[] = {1, 7, 13, 127};
  const int64_t Ms[] = {1, 3, 17, 65};
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    int failures = 0;
    for (int64_t K : Ks)
      for (int64_t N : Ns)
        for (int64_t M : Ms) {
          failures += linear_case(fx, wt, N, K, M, false, false, rng);
          if (failures > 10) FAIL("too many failures");
        }
    failures += linear_case(fx, wt, 4097, 127, 3, false, false, rng);
    failures += linear_case(fx, wt, 4097, 256, 1, false, true, rng);
    failures += linear_case(fx, wt, 37, 256, 5, true, false, rng);
    failures += linear_case(fx, wt, 37, 4096, 65, true, true, rng);
    failures += linear_case(fx, wt, 1001, 4096, 8, false, true, rng);
    CHECK(failures == 0);
  }
}

// ==================================================================== LinearQ8

namespace {

int q8_case(CudaFixture& fx, ActQuantMode mode, DType ws_dtype, bool per_channel, int64_t N, int64_t K, int64_t M,
            bool accumulate, Rng& rng) {
  std::vector<int8_t> w(size_t(N * K));
  for (auto& v : w) v = int8_t(std::clamp<int64_t>(int64_t(std::lround(rng.normal(40.0f))), -127, 127));
  const int64_t ns = per_channel ? N : 1;
  std::vector<uint8_t> ws(size_t(ns) * dtype_size(ws_dtype));
  for (int64_t n = 0; n < ns; ++n) {
    const float v = 0.01f * (1.0f + 0.1f * rng.normal());
    if (ws_dtype == DType::F32) std::memcpy(&ws[size_t(4 * n)], &v, 4);
    else {
      const uint16_t h = ws_dtype == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(&ws[size_t(2 * n)], &h, 2);
    }
  }
  std::vector<float> x(size_t(M * K));
  for (auto& v : x) v = rng.normal(mode == ActQuantMode::DynamicAsymmetric ? 1.0f : 2.0f) + (mode == ActQuantMode::DynamicAsymmetric ? 0.7f : 0.0f);
  if (M >= 3) {
    for (int64_t k = 0; k < K; ++k) x[size_t(1 * K + k)] = 0.0f;  // a zero token
    x[size_t(2 * K + K / 2)] = NAN;                                // a poisoned token
  }
  ActQuantParams ap;
  ap.mode = mode;
  if (mode == ActQuantMode::Static) ap.scale = 0.03f, ap.zero_point = 5;
  const int64_t ldy = N + 1;
  std::vector<float> y0(size_t(M * ldy), kPoison);
  if (accumulate)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y0[size_t(m * ldy + n)] = rng.normal();
  // CPU reference: its prep and its run.
  const LinearKernel& rk = ref_entry(Op::Linear, DType::I8).linear();
  AlignedBuffer prep = aligned_alloc_bytes(std::max<size_t>(rk.prep_bytes(M, K), 64));
  rk.prep(LinearPrepArgs{x.data(), K, M, K, 0, M, &ap, prep.get()});
  std::vector<float> ref(y0.size(), kPoison);
  LinearArgs ra;
  ra.w.data = w.data();
  ra.w.dtype = DType::I8;
  ra.K = K;
  ra.w.scales = ws.data();
  ra.w.scale_dtype = ws_dtype;
  ra.w.granularity = per_channel ? ScaleGranularity::Channel : ScaleGranularity::Tensor;
  ra.xp = prep.get();
  ra.y = ref.data();
  ra.ldy = ldy;
  ra.M = M;
  ra.n0 = 0;
  ra.n1 = N;
  rk.run(ra);
  if (accumulate)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) ref[size_t(m * ldy + n)] = y0[size_t(m * ldy + n)] + ref[size_t(m * ldy + n)];
  const auto P = kernels::Q8Prep<int8_t>::at(prep.get(), M, K);
  // GPU
  const int64_t ldq = cuda::q8_ldq(K);
  auto dw = dev_of(w);
  auto dws = dev_of(ws);
  auto dx = dev_of(x);
  Dev dq(size_t(M * ldq)), ds(size_t(M) * 4), dzp(size_t(M) * 4), drs(size_t(N) * 4), dy(y0.size() * 4),
      dacc(std::max<size_t>(cuda::linear_q8_acc_bytes(std::max<int64_t>(M, 9), N), 16));
  cuda::q8_row_sums(dw->as<int8_t>(), N, K, drs.as<int32_t>(), nullptr);
  cuda::Q8QuantizeCall qc;
  qc.x = dx->as<float>();
  qc.ldx = K;
  qc.M = M;
  qc.K = K;
  qc.mode = mode == ActQuantMode::DynamicSymmetric    ? cuda::Q8Mode::DynamicSymmetric
            : mode == ActQuantMode::DynamicAsymmetric ? cuda::Q8Mode::DynamicAsymmetric
                                                      : cuda::Q8Mode::Static;
  qc.static_scale = ap.scale;
  qc.static_zp = ap.zero_point;
  qc.q = dq.as<int8_t>();
  qc.scale = ds.as<float>();
  qc.zp = dzp.as<int32_t>();
  const auto& qk = *cuda_entry(Op::Linear, DType::I8).fn<const cuda::LinearQ8Kernels*>();
  qk.quantize(qc, nullptr);
  int failures = 0;
  const std::string lab = std::string("q8 mode=") + std::to_string(int(mode)) + " ws=" + dtype_name(ws_dtype) +
                          (per_channel ? "/channel" : "/tensor") + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                          " M=" + std::to_string(M) + (accumulate ? " accumulate" : "");
  // Codes, scales, zero points: the same bits as the CPU prep.
  {
    auto q = dq.down<int8_t>(size_t(M * ldq));
    auto s = ds.down<float>(size_t(M));
    auto z = dzp.down<int32_t>(size_t(M));
    for (int64_t m = 0; m < M; ++m) {
      bool ok = same_bits(s[size_t(m)], P.scale[m]) && z[size_t(m)] == P.zp[m];
      for (int64_t k = 0; k < ldq && ok; ++k) ok = q[size_t(m * ldq + k)] == (k < K ? P.codes[m * P.lda + k] : 0);
      if (!ok) {
        ++failures;
        FAIL_CHECK(lab << ": quantized token " << m << " differs from the CPU prep (scale " << s[size_t(m)] << " vs "
                       << P.scale[m] << ", zp " << z[size_t(m)] << " vs " << P.zp[m] << ")");
      }
    }
  }
  for (int path = 0; path < 3; ++path) {  // 0 GEMV, 1 GEMM (cuBLASLt or dp4a tiles), 2 the registered entry
    if (path == 0 && M > cuda::kGemvMaxM) continue;
    dy.up(y0);
    cuda::Q8LinearCall c;
    c.w = dw->as<int8_t>();
    c.N = N;
    c.K = K;
    c.w_scale = dws->p;
    c.w_scale_dtype = ws_dtype;
    c.per_channel = per_channel;
    c.w_rowsum = drs.as<int32_t>();
    c.q = dq.as<int8_t>();
    c.scale = ds.as<float>();
    c.zp = dzp.as<int32_t>();
    c.M = M;
    c.y = dy.as<float>();
    c.ldy = ldy;
    c.accumulate = accumulate;
    c.acc = dacc.as<int32_t>();
    c.blas = fx.blas;
    if (path == 0) cuda::q8_gemv(c, nullptr);
    else if (path == 1) cuda::q8_gemm(c, nullptr);
    else qk.run(c, nullptr);
    auto y = dy.down<float>(y0.size());
    int bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      // NaN outputs (the poisoned token) may carry another payload; outside [0, N) untouched.
      const bool inside = int64_t(i % size_t(ldy)) < N;
      const bool ok = inside ? same_bits(y[i], ref[i]) || (std::isnan(y[i]) && std::isnan(ref[i])) : same_bits(y[i], y0[i]);
      if (!ok && bad++ == 0) first = i;
    }
    if (bad) {
      ++failures;
      FAIL_CHECK(lab << " path " << path << ": " << bad << " outputs differ from the CPU reference, first at " << first << ": "
                     << y[first] << " vs " << ref[first]);
    }
  }
  return failures;
}

}  // namespace

TEST_CASE("cuda kernels: LinearQ8 (quantize, dp4a GEMV, cuBLASLt int8 GEMM) bit-identical to the reference") {
  SKIP_WITHOUT_GPU();
  CudaFixture fx;
  Rng rng(88);
  int failures = 0;
  const int64_t Ks[] = {1, 7, 13, 127, 4097, 16, 256, 4096};
  for (ActQuantMode mode : {ActQuantMode::DynamicSymmetric, ActQuantMode::DynamicAsymmetric, ActQuantMode::Static})
    for (int64_t K : Ks)
      for (int64_t N : {1, 7, 13, 127})
        for (int64_t M : {1, 3, 17, 65}) {
          failures += q8_case(fx, mode, DType::BF16, true, N, K, M, false, rng);
          if (failures > 10) FAIL("too many failures");
        }
  failures += q8_case(fx, ActQuantMode::DynamicSymmetric, DType::F32, false, 300, 4096, 17, true, rng);
  failures += q8_case(fx, ActQuantMode::DynamicSymmetric, DType::F16, true, 4097, 256, 1, true, rng);
  failures += q8_case(fx, ActQuantMode::DynamicAsymmetric, DType::BF16, true, 1000, 4096, 65, true, rng);
  CHECK(failures == 0);
}

// ==================================================================== small ops

TEST_CASE("cuda kernels: Embedding, Add and Rope are bit-identical, RmsNorm and SiluMul within their bounds") {
  SKIP_WITHOUT_GPU();
  WorstReport report;
  Rng rng(5);
  // Embedding
  for (DType wt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t D : {1, 7, 13, 127, 4097}) {
      const int64_t V = 50;
      Weights t = make_weights(wt, size_t(V * D), rng, 1.0f);
      std::vector<int32_t> ids = {0, 49, 3, 3, 17, 48, 0, 25, 1};
      const int64_t n = int64_t(ids.size());
      auto dt = dev_of(t.bytes);
      auto di = dev_of(ids);
      Dev out(size_t(n * D + 1) * 4);
      std::vector<float> poison(size_t(n * D + 1), kPoison);
      out.up(poison);
      cuda::EmbeddingCall c{dt->p, D, di->as<int32_t>(), n, out.as<float>()};
      kernel_fn<cuda::EmbeddingFn>(cuda_entry(Op::Embedding, wt))(c, nullptr);
      auto y = out.down<float>(poison.size());
      int bad = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t d = 0; d < D; ++d) bad += !same_bits(y[size_t(i * D + d)], t.f[size_t(ids[size_t(i)] * D + d)]);
      CHECK_MESSAGE(bad == 0, "embedding " << dtype_name(wt) << " D=" << D);
      CHECK(same_bits(y.back(), kPoison));
    }
  // RmsNorm (rows, strided), F64 sums in another order: 2 u |ref|.
  for (DType wt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t dim : {1, 7, 13, 127, 4097}) {
      const int64_t rows = 5, ld = dim + 3;
      std::vector<float> x(size_t(rows * ld));
      for (auto& v : x) v = rng.normal(3.0f);
      Weights w = make_weights(wt, size_t(dim), rng, 1.0f);
      std::vector<float> ref(x.size(), kPoison);
      auto rf = kernel_fn<RmsNormFn>(ref_entry(Op::RmsNorm, wt));
      for (int64_t r = 0; r < rows; ++r) rf(x.data() + r * ld, w.bytes.data(), ref.data() + r * ld, dim, 1e-5f);
      auto dx = dev_of(x);
      auto dw = dev_of(w.bytes);
      Dev dy(x.size() * 4);
      std::vector<float> poison(x.size(), kPoison);
      dy.up(poison);
      cuda::RmsNormCall c{dx->as<float>(), ld, dw->p, dy.as<float>(), ld, rows, dim, 1e-5f};
      kernel_fn<cuda::RmsNormFn>(cuda_entry(Op::RmsNorm, wt))(c, nullptr);
      auto y = dy.down<float>(x.size());
      for (size_t i = 0; i < y.size(); ++i) {
        if (int64_t(i % size_t(ld)) >= dim) {
          CHECK(same_bits(y[i], kPoison));
          continue;
        }
        const double tol = 2 * kU * std::fabs(ref[i]) + 1e-35;
        note_worst("rmsnorm", std::fabs(double(y[i]) - ref[i]) / tol);
        if (!(std::fabs(double(y[i]) - ref[i]) <= tol)) {
          FAIL_CHECK("rmsnorm " << dtype_name(wt) << " dim=" << dim << " at " << i << ": " << y[i] << " vs " << ref[i]);
          break;
        }
      }
    }
  // SiluMul and Add
  for (int64_t n : {1, 7, 13, 127, 4097}) {
    const int64_t rows = 3, ld = 2 * n + 1;
    std::vector<float> gu(size_t(rows * ld));
    for (auto& v : gu) v = rng.normal(4.0f);
    const float extremes[] = {-100.0f, 100.0f, -88.5f, 88.5f, 0.0f, -1e-30f, 20.0f, -20.0f};
    for (size_t i = 0; i < std::min<size_t>(size_t(n), 8); ++i) gu[i] = extremes[i];
    std::vector<float> ref(size_t(rows * n));
    auto rf = kernel_fn<SiluMulFn>(ref_entry(Op::SiluMul, DType::F32));
    for (int64_t r = 0; r < rows; ++r) rf(gu.data() + r * ld, gu.data() + r * ld + n, ref.data() + r * n, n);
    auto dg = dev_of(gu);
    Dev dy(ref.size() * 4);
    cuda::SiluMulCall c{dg->as<float>(), dg->as<float>() + n, ld, dy.as<float>(), n, rows, n};
    kernel_fn<cuda::SiluMulFn>(cuda_entry(Op::SiluMul, DType::F32))(c, nullptr);
    auto y = dy.down<float>(ref.size());
    for (size_t i = 0; i < y.size(); ++i) {
      const double tol = 8 * kU * std::fabs(ref[i]) + 1e-30;
      note_worst("silu_mul", std::fabs(double(y[i]) - ref[i]) / tol);
      if (!(std::fabs(double(y[i]) - ref[i]) <= tol)) {
        FAIL_CHECK("silu_mul n=" << n << " at " << i << ": " << y[i] << " vs " << ref[i]);
        break;
      }
    }
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (auto& v : a) v = rng.normal();
    for (auto& v : b) v = rng.normal();
    auto da = dev_of(a);
    auto db = dev_of(b);
    kernel_fn<cuda::AddFn>(cuda_entry(Op::Add, DType::F32))(da->as<float>(), db->as<float>(), n, nullptr);
    auto s = da->down<float>(size_t(n));
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += !same_bits(s[size_t(i)], a[size_t(i)] + b[size_t(i)]);
    CHECK_MESSAGE(bad == 0, "add n=" << n);
  }
  // Rope (+ KV write), host and device position.
  for (int64_t hd : {2, 8, 12, 32, 64, 128})
    for (int64_t T : {1, 3, 17}) {
      const int64_t nh = 4, nkv = 2, ctx = 64, half = hd / 2, ld = (nh + 2 * nkv) * hd + 5, p0 = 11;
      std::vector<float> qkv(size_t(T * ld)), cs(size_t(ctx * half)), sn(cs.size());
      for (auto& v : qkv) v = rng.normal(2.0f);
      for (size_t i = 0; i < cs.size(); ++i) {
        const double a = 0.37 * double(i);
        cs[i] = float(std::cos(a));
        sn[i] = float(std::sin(a));
      }
      std::vector<float> ref = qkv;
      auto rf = kernel_fn<RopeFn>(ref_entry(Op::Rope, DType::F32));
      for (int64_t t = 0; t < T; ++t) {
        rf(ref.data() + t * ld, nh, hd, hd, cs.data() + (p0 + t) * half, sn.data() + (p0 + t) * half);
        rf(ref.data() + t * ld + nh * hd, nkv, hd, hd, cs.data() + (p0 + t) * half, sn.data() + (p0 + t) * half);
      }
      for (int use_dev = 0; use_dev < 2; ++use_dev) {
        auto dq = dev_of(qkv);
        auto dc = dev_of(cs);
        auto dsn = dev_of(sn);
        std::vector<int32_t> pv = {int32_t(p0)};
        auto dp = dev_of(pv);
        Dev kc(size_t(nkv * ctx * hd) * 4), vc(size_t(nkv * ctx * hd) * 4);
        cuda::RopeCall r;
        r.q = dq->as<float>();
        r.k = dq->as<float>() + nh * hd;
        r.v = dq->as<float>() + (nh + nkv) * hd;
        r.ld = ld;
        r.T = T;
        r.n_heads = nh;
        r.n_kv_heads = nkv;
        r.head_dim = hd;
        r.cos = dc->as<float>();
        r.sin = dsn->as<float>();
        r.kc = kc.as<float>();
        r.vc = vc.as<float>();
        r.ctx = ctx;
        r.p0 = use_dev ? 0 : p0;
        r.p0_dev = use_dev ? dp->as<int32_t>() : nullptr;
        kernel_fn<cuda::RopeFn>(cuda_entry(Op::RopeKvStore, DType::F32))(r, nullptr);
        auto y = dq->down<float>(qkv.size());
        auto k = kc.down<float>(size_t(nkv * ctx * hd));
        auto v = vc.down<float>(size_t(nkv * ctx * hd));
        int bad = 0;
        for (size_t i = 0; i < y.size(); ++i) bad += !same_bits(y[i], ref[i]);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < nkv; ++j)
            for (int64_t d = 0; d < hd; ++d) {
              bad += !same_bits(k[size_t((j * ctx + p0 + t) * hd + d)], ref[size_t(t * ld + (nh + j) * hd + d)]);
              bad += !same_bits(v[size_t((j * ctx + p0 + t) * hd + d)], ref[size_t(t * ld + (nh + nkv + j) * hd + d)]);
            }
        CHECK_MESSAGE(bad == 0, "rope hd=" << hd << " T=" << T << (use_dev ? " (device position)" : ""));
      }
    }
}

// ==================================================================== Attention

namespace {

// Reference per (t, h) with the CPU reference kernel, and the tolerance of
// tests/test_kernels.cpp's attention check.
int attention_case(int64_t hd, int64_t nh, int64_t nkv, int64_t T, int64_t p0, int path, Rng& rng, float qscale) {
  const int64_t ctx = p0 + T + 3, ldq = nh * hd + 1, ldo = nh * hd + 2;
  std::vector<float> q(size_t(T * ldq)), kc(size_t(nkv * ctx * hd)), vc(kc.size());
  for (auto& v : q) v = rng.normal(qscale);
  for (auto& v : kc) v = rng.normal();
  for (auto& v : vc) v = rng.normal();
  const float scale = 1.0f / std::sqrt(float(hd));
  const int64_t rep = nh / nkv;
  std::vector<float> ref(size_t(T * ldo), kPoison), tol(ref.size(), 0.0);
  auto rf = kernel_fn<AttentionFn>(ref_entry(Op::Attention, DType::F32));
  std::vector<float> scratch(static_cast<size_t>(ctx));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t j = h / rep, n_kv = p0 + t + 1;
      AttentionArgs a;
      a.q = q.data() + t * ldq + h * hd;
      a.k = kc.data() + j * ctx * hd;
      a.v = vc.data() + j * ctx * hd;
      a.kv_stride = hd;
      a.n_kv = n_kv;
      a.head_dim = hd;
      a.scale = scale;
      a.out = ref.data() + t * ldo + h * hd;
      a.scratch = scratch.data();
      rf(a);
      std::vector<double> s(static_cast<size_t>(n_kv));
      double smax = -INFINITY, s_abs = 0;
      for (int64_t i = 0; i < n_kv; ++i) {
        double d = 0, da = 0;
        for (int64_t e = 0; e < hd; ++e) {
          const float ke = kc[size_t((j * ctx + i) * hd + e)];
          d += double(a.q[e]) * ke;
          da += std::fabs(double(a.q[e]) * ke);
        }
        s[size_t(i)] = d * scale;
        smax = std::max(smax, s[size_t(i)]);
        s_abs = std::max(s_abs, da * scale);
      }
      double z = 0;
      for (auto& v : s) z += (v = std::exp(v - smax));
      const double ds = 8 * std::sqrt(double(hd) + 16) * kU * s_abs;
      const double rel = 2 * ds + 16 * std::sqrt(double(n_kv) + 16) * kU + 8 * kU;
      for (int64_t e = 0; e < hd; ++e) {
        double A = 0;
        for (int64_t i = 0; i < n_kv; ++i) A += s[size_t(i)] / z * std::fabs(vc[size_t((j * ctx + i) * hd + e)]);
        tol[size_t(t * ldo + h * hd + e)] = float(rel * A + kU * std::fabs(a.out[e]) + 1e-35);
      }
    }
  auto dq = dev_of(q);
  auto dk = dev_of(kc);
  auto dv = dev_of(vc);
  Dev out(ref.size() * 4), scr(cuda::attention_scratch_bytes(nh, nkv, hd, ctx));
  cuda::check(cudaMemset(scr.p, 0, scr.bytes), "memset");
  int failures = 0;
  for (int rep_call = 0; rep_call < 2; ++rep_call) {  // twice: the split counters must reset themselves
    std::vector<float> poison(ref.size(), kPoison);
    out.up(poison);
    cuda::AttentionCall c;
    c.q = dq->as<float>();
    c.ldq = ldq;
    c.kc = dk->as<float>();
    c.vc = dv->as<float>();
    c.ctx = ctx;
    c.n_heads = nh;
    c.n_kv_heads = nkv;
    c.head_dim = hd;
    c.T = T;
    c.p0 = p0;
    c.scale = scale;
    c.out = out.as<float>();
    c.ldo = ldo;
    c.scratch = scr.p;
    if (path == 0) cuda::attention_rows(c, nullptr);
    else if (path == 1) cuda::attention_tiled(c, nullptr);
    else kernel_fn<cuda::AttentionFn>(cuda_entry(Op::AttentionAllHeads, DType::F32))(c, nullptr);
    auto y = out.down<float>(ref.size());
    const std::string op = path == 1 ? "attention tiled" : "attention rows";
    for (size_t i = 0; i < y.size(); ++i) {
      if (same_bits(ref[i], kPoison)) {
        if (!same_bits(y[i], kPoison)) {
          ++failures;
          FAIL_CHECK(op << " hd=" << hd << " T=" << T << " wrote outside its outputs at " << i);
          break;
        }
        continue;
      }
      const double err = std::fabs(double(y[i]) - ref[i]);
      note_worst(op, err / tol[i]);
      if (!(err <= tol[i])) {
        ++failures;
        FAIL_CHECK(op << " hd=" << hd << " heads=" << nh << "/" << nkv << " T=" << T << " p0=" << p0 << " at " << i << ": "
                      << y[i] << " vs " << ref[i] << " (tolerance " << tol[i] << ")");
        break;
      }
    }
  }
  return failures;
}

}  // namespace

TEST_CASE("cuda kernels: Attention (split decode, rows and tiled prefill) against the reference") {
  SKIP_WITHOUT_GPU();
  WorstReport report;
  Rng rng(17);
  int failures = 0;
  // Decode: one token at many cache lengths (1 split .. many splits), GQA ratios 1, 2, 4.
  for (int64_t hd : {8, 12, 32, 64, 128, 5, 17})
    for (int64_t p0 : {0, 6, 63, 64, 999, 3000})
      for (int64_t kvh : {1, 2}) failures += attention_case(hd, kvh * (hd % 2 ? 1 : 4), kvh, 1, p0, 0, rng, 1.0f);
  failures += attention_case(128, 32, 8, 1, 4100, 2, rng, 6.0f);
  // Prefill: the rows kernel at any head_dim, the tiled kernel at 64 / 128.
  for (int64_t T : {3, 17, 65, 130})
    for (int64_t p0 : {0, 37}) {
      for (int64_t hd : {8, 12, 32}) failures += attention_case(hd, 4, 2, T, p0, 0, rng, 1.0f);
      for (int64_t hd : {64, 128}) {
        failures += attention_case(hd, 8, 2, T, p0, 1, rng, T == 65 ? 6.0f : 1.0f);
        failures += attention_case(hd, 8, 2, T, p0, 0, rng, 1.0f);
      }
    }
  CHECK(failures == 0);
}

// ==================================================================== fused decode

TEST_CASE("cuda kernels: the fused decode steps equal the separate kernels bit for bit") {
  SKIP_WITHOUT_GPU();
  CudaFixture fx;
  Rng rng(99);
  int failures = 0;
  // rmsnorm/silu + GEMV (+ quantization) in one launch == the kernels one after another.
  for (DType wt : {DType::F32, DType::F16, DType::BF16, DType::I8})
    for (int input = 0; input < 3; ++input)
      for (int64_t K : {16, 256, 4096, 1040})
        for (int64_t N : {7, 127, 1000, 40000}) {
          if (N == 40000 && K > 256) continue;
          const bool q8 = wt == DType::I8;
          const auto in = cuda::DecodeInput(input);
          std::vector<uint8_t> w(size_t(N * K) * (q8 ? 1 : dtype_size(wt)));
          if (q8) for (auto& b : w) b = uint8_t(int8_t(std::clamp<int64_t>(int64_t(std::lround(rng.normal(30.0f))), -127, 127)));
          else w = make_weights(wt, size_t(N * K), rng, 0.3f).bytes;
          Weights nw = make_weights(DType::BF16, size_t(K), rng, 1.0f);
          std::vector<uint16_t> ws(static_cast<size_t>(N));
          for (auto& v : ws) v = f32_to_bf16(0.01f * (1.0f + 0.1f * rng.normal()));
          std::vector<float> x(size_t(2 * K)), y0(static_cast<size_t>(N));
          for (auto& v : x) v = rng.normal(2.0f);
          for (auto& v : y0) v = rng.normal();
          auto dw = dev_of(w);
          auto dnw = dev_of(nw.bytes);
          auto dws = dev_of(ws);
          auto dx = dev_of(x);
          Dev dt(size_t(K) * 4), dq(size_t(cuda::q8_ldq(K))), ds(16), dz(16), drs(size_t(N) * 4), ya(size_t(N) * 4), yb(size_t(N) * 4);
          cuda::q8_row_sums(dw->as<int8_t>(), N, K, drs.as<int32_t>(), nullptr);
          const bool acc = (N + K + input) % 2 == 0;
          const auto mode = K == 1040 ? cuda::Q8Mode::DynamicAsymmetric : cuda::Q8Mode::DynamicSymmetric;
          // separate kernels
          const float* src = dx->as<float>();
          if (in == cuda::DecodeInput::RmsNorm) {
            cuda::RmsNormCall r{dx->as<float>(), K, dnw->p, dt.as<float>(), K, 1, K, 1e-5f};
            cuda::rmsnorm_bf16w(r, nullptr);
            src = dt.as<float>();
          } else if (in == cuda::DecodeInput::SiluMul) {
            cuda::SiluMulCall sm{dx->as<float>(), dx->as<float>() + K, 2 * K, dt.as<float>(), K, 1, K};
            cuda::silu_mul_f32(sm, nullptr);
            src = dt.as<float>();
          }
          ya.up(y0);
          if (q8) {
            cuda::Q8QuantizeCall qc{src, K, 1, K, mode, 0, 0, dq.as<int8_t>(), ds.as<float>(), dz.as<int32_t>()};
            cuda::q8_quantize(qc, nullptr);
            cuda::Q8LinearCall c;
            c.w = dw->as<int8_t>();
            c.N = N;
            c.K = K;
            c.w_scale = dws->p;
            c.w_rowsum = drs.as<int32_t>();
            c.q = dq.as<int8_t>();
            c.scale = ds.as<float>();
            c.zp = dz.as<int32_t>();
            c.M = 1;
            c.y = ya.as<float>();
            c.ldy = N;
            c.accumulate = acc;
            cuda::q8_gemv(c, nullptr);
          } else {
            cuda::LinearCall c;
            c.w = dw->p;
            c.N = N;
            c.K = K;
            c.x = src;
            c.ldx = K;
            c.y = ya.as<float>();
            c.ldy = N;
            c.M = 1;
            c.accumulate = acc;
            cuda::gemv(wt, c, nullptr);
          }
          // fused
          yb.up(y0);
          cuda::DecodeLinearCall f;
          f.wtype = wt;
          f.w = dw->p;
          f.N = N;
          f.K = K;
          f.input = in;
          f.x = dx->as<float>();
          f.norm_w = dnw->p;
          f.norm_dtype = DType::BF16;
          f.eps = 1e-5f;
          f.up_off = K;
          f.y = yb.as<float>();
          f.accumulate = acc;
          f.w_scale = dws->p;
          f.w_rowsum = drs.as<int32_t>();
          f.mode = mode;
          REQUIRE(cuda::decode_linear_supported(f));
          cuda::decode_linear(f, nullptr);
          auto a = ya.down<float>(size_t(N));
          auto b = yb.down<float>(size_t(N));
          int bad = 0;
          for (int64_t n = 0; n < N; ++n) bad += !same_bits(a[size_t(n)], b[size_t(n)]);
          if (in == cuda::DecodeInput::RmsNorm) {  // the cp.async prologue: the same bits
            yb.up(y0);
            f.async_norm = true;
            REQUIRE(cuda::decode_linear_supported(f));
            cuda::decode_linear(f, nullptr);
            auto c = yb.down<float>(size_t(N));
            for (int64_t n = 0; n < N; ++n) bad += !same_bits(a[size_t(n)], c[size_t(n)]);
          }
          if (bad) {
            ++failures;
            FAIL_CHECK("decode_linear " << dtype_name(wt) << " input " << input << " N=" << N << " K=" << K << ": " << bad
                                        << " outputs differ from the separate kernels");
          }
        }
  // Attention with RoPE and the KV write fused == rope.cu then attention.
  for (int64_t hd : {8, 12, 32, 64, 128})
    for (int64_t p0 : {0, 5, 31, 32, 200, 2000, 4000}) {  // 4000: two chunks per split, own row in the second
      const int64_t nh = 8, nkv = 2, ctx = p0 + 9, half = hd / 2, ld = (nh + 2 * nkv) * hd;
      std::vector<float> qkv(static_cast<size_t>(ld)), kc(size_t(nkv * ctx * hd)), cs(size_t(ctx * half)), sn(cs.size());
      for (auto& v : qkv) v = rng.normal(2.0f);
      for (auto& v : kc) v = rng.normal();
      for (size_t i = 0; i < cs.size(); ++i) cs[i] = float(std::cos(0.01 * double(i))), sn[i] = float(std::sin(0.01 * double(i)));
      auto dc = dev_of(cs);
      auto dsn = dev_of(sn);
      std::vector<int32_t> pv = {int32_t(p0)};
      auto dp = dev_of(pv);
      std::vector<float> outs[2], caches[2];
      for (int fused = 0; fused < 2; ++fused) {
        auto dq = dev_of(qkv);
        auto dk = dev_of(kc);
        auto dv = dev_of(kc);
        Dev out(size_t(nh * hd) * 4), scr(cuda::attention_scratch_bytes(nh, nkv, hd, ctx));
        cuda::check(cudaMemset(scr.p, 0, scr.bytes), "memset");
        cuda::AttentionCall a;
        a.q = dq->as<float>();
        a.ldq = ld;
        a.kc = dk->as<float>();
        a.vc = dv->as<float>();
        a.ctx = ctx;
        a.n_heads = nh;
        a.n_kv_heads = nkv;
        a.head_dim = hd;
        a.T = 1;
        a.p0_dev = dp->as<int32_t>();
        a.scale = 1.0f / std::sqrt(float(hd));
        a.out = out.as<float>();
        a.ldo = nh * hd;
        a.scratch = scr.p;
        if (fused) {
          a.cos = dc->as<float>();
          a.sin = dsn->as<float>();
          a.k_new = dq->as<float>() + nh * hd;
          a.v_new = dq->as<float>() + (nh + nkv) * hd;
        } else {
          cuda::RopeCall r;
          r.q = dq->as<float>();
          r.k = dq->as<float>() + nh * hd;
          r.v = dq->as<float>() + (nh + nkv) * hd;
          r.ld = ld;
          r.T = 1;
          r.n_heads = nh;
          r.n_kv_heads = nkv;
          r.head_dim = hd;
          r.cos = dc->as<float>();
          r.sin = dsn->as<float>();
          r.kc = dk->as<float>();
          r.vc = dv->as<float>();
          r.ctx = ctx;
          r.p0_dev = dp->as<int32_t>();
          cuda::rope_f32(r, nullptr);
        }
        cuda::attention_rows(a, nullptr);
        outs[fused] = out.down<float>(size_t(nh * hd));
        caches[fused] = dk->down<float>(kc.size());
        auto vcache = dv->down<float>(kc.size());
        caches[fused].insert(caches[fused].end(), vcache.begin(), vcache.end());
      }
      int bad = 0;
      for (size_t i = 0; i < outs[0].size(); ++i) bad += !same_bits(outs[0][i], outs[1][i]);
      for (size_t i = 0; i < caches[0].size(); ++i) bad += !same_bits(caches[0][i], caches[1][i]);
      if (bad) {
        ++failures;
        FAIL_CHECK("attention with fused RoPE hd=" << hd << " p0=" << p0 << ": " << bad << " values differ");
      }
    }
  CHECK(failures == 0);
}

TEST_CASE("cuda kernels: silu*up quantized in one launch (grid barrier) equals silu_mul then q8_quantize bit for bit") {
  SKIP_WITHOUT_GPU();
  CudaFixture fx;
  Rng rng(7);
  Dev sync(cuda::q8_silu_mul_sync_bytes());
  cuda::check(cudaMemset(sync.p, 0, sync.bytes), "memset");
  int failures = 0;
  // n: one partial block, exact multiples of 16, Llama-8B's 14336, and a row longer than the
  // grid covers in one pass (the grid is capped at one block per SM).
  for (int64_t n : {1, 16, 100, 1040, 4096, 14336, 1000003})
    for (auto mode : {cuda::Q8Mode::DynamicSymmetric, cuda::Q8Mode::DynamicAsymmetric, cuda::Q8Mode::Static})
      for (int special = 0; special < 3; ++special) {  // 0 random, 1 all zero, 2 one NaN
        if (special && n != 1040) continue;
        std::vector<float> x(size_t(2 * n));
        for (auto& v : x) v = special == 1 ? 0.0f : rng.normal(2.0f);
        if (special == 2) x[size_t(n / 3)] = std::nanf("");
        const int64_t ldq = cuda::q8_ldq(n);
        auto dx = dev_of(x);
        Dev ha(size_t(n) * 4), qa(static_cast<size_t>(ldq)), sa(16), za(16), qb(static_cast<size_t>(ldq)), sb(16), zb(16);
        cuda::SiluMulCall sm{dx->as<float>(), dx->as<float>() + n, 2 * n, ha.as<float>(), n, 1, n};
        cuda::silu_mul_f32(sm, nullptr);
        cuda::Q8QuantizeCall qc{ha.as<float>(), n, 1, n, mode, 0.037f, mode == cuda::Q8Mode::Static ? 3 : 0, qa.as<int8_t>(),
                                sa.as<float>(), za.as<int32_t>()};
        cuda::q8_quantize(qc, nullptr);
        const auto h_ref = ha.down<float>(size_t(n));
        const auto q_ref = qa.down<int8_t>(size_t(ldq));
        const auto s_ref = sa.down<float>(1);
        const auto z_ref = za.down<int32_t>(1);
        // three launches in a row (the barrier is reused), the first in place (out = g)
        for (int rep = 0; rep < 3; ++rep) {
          auto dg = dev_of(x);
          Dev hb(size_t(n) * 4);
          cuda::check(cudaMemset(qb.p, 0x55, qb.bytes), "memset");
          cuda::Q8SiluMulCall c;
          c.g = dg->as<float>();
          c.u = dg->as<float>() + n;
          c.out = rep == 0 ? dg->as<float>() : hb.as<float>();
          c.n = n;
          c.mode = mode;
          c.static_scale = 0.037f;
          c.static_zp = mode == cuda::Q8Mode::Static ? 3 : 0;
          c.q = qb.as<int8_t>();
          c.scale = sb.as<float>();
          c.zp = zb.as<int32_t>();
          c.sync = sync.p;
          cuda::q8_silu_mul(c, nullptr);
          const auto h = (rep == 0 ? *dg : hb).down<float>(size_t(n));
          const auto q = qb.down<int8_t>(size_t(ldq));
          const auto sc = sb.down<float>(1);
          const auto z = zb.down<int32_t>(1);
          int bad = !same_bits(sc[0], s_ref[0]) + (z[0] != z_ref[0]);
          for (int64_t i = 0; i < n; ++i) bad += !same_bits(h[size_t(i)], h_ref[size_t(i)]);
          for (int64_t i = 0; i < ldq; ++i) bad += q[size_t(i)] != q_ref[size_t(i)];
          if (bad) {
            ++failures;
            FAIL_CHECK("q8_silu_mul n=" << n << " mode " << int(mode) << " special " << special << " launch " << rep << ": " << bad
                                        << " values differ from silu_mul_f32 + q8_quantize");
          }
        }
      }
  // Captured in a graph and replayed: the barrier works across replays without a reset.
  {
    const int64_t n = 14336;
    std::vector<float> x(size_t(2 * n));
    for (auto& v : x) v = rng.normal(2.0f);
    auto dx = dev_of(x);
    Dev h(size_t(n) * 4), qa(static_cast<size_t>(n)), sa(16), za(16), qb(static_cast<size_t>(n)), sb(16), zb(16);
    cuda::SiluMulCall sm{dx->as<float>(), dx->as<float>() + n, 2 * n, h.as<float>(), n, 1, n};
    cuda::silu_mul_f32(sm, nullptr);
    cuda::Q8QuantizeCall qc{h.as<float>(), n, 1, n, cuda::Q8Mode::DynamicSymmetric, 0, 0, qa.as<int8_t>(), sa.as<float>(),
                            za.as<int32_t>()};
    cuda::q8_quantize(qc, nullptr);
    cudaStream_t st = nullptr;
    cuda::check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "stream");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cuda::check(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "capture");
    cuda::Q8SiluMulCall c;
    c.g = dx->as<float>();
    c.u = dx->as<float>() + n;
    c.out = h.as<float>();
    c.n = n;
    c.q = qb.as<int8_t>();
    c.scale = sb.as<float>();
    c.zp = zb.as<int32_t>();
    c.sync = sync.p;
    cuda::q8_silu_mul(c, st);
    cuda::check(cudaStreamEndCapture(st, &graph), "end capture");
    cuda::check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (int rep = 0; rep < 5; ++rep) {
      cuda::check(cudaMemsetAsync(qb.p, 0x55, qb.bytes, st), "memset");
      cuda::check(cudaGraphLaunch(exec, st), "graph launch");
      cuda::check(cudaStreamSynchronize(st), "sync");
      CHECK(qb.down<int8_t>(size_t(n)) == qa.down<int8_t>(size_t(n)));
      CHECK(same_bits(sb.down<float>(1)[0], sa.down<float>(1)[0]));
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(st);
  }
  CHECK(failures == 0);
}

// ==================================================================== sampling

TEST_CASE("cuda kernels: argmax and top-k on the device equal the host's") {
  SKIP_WITHOUT_GPU();
  Rng rng(3);
  for (int64_t n : {1, 7, 1000, 32000, 128256}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = std::round(rng.normal(3.0f) * 4.0f) / 4.0f;  // many exact ties
    if (n > 10) x[3] = NAN;
    auto dx = dev_of(x);
    Dev di(64 * 4), dv(64 * 4);
    cuda::argmax_f32(dx->as<float>(), n, di.as<int32_t>(), nullptr);
    const int32_t got = di.down<int32_t>(1)[0];
    std::vector<int32_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    auto before = [&](int32_t a, int32_t b) {
      const float va = x[size_t(a)], vb = x[size_t(b)];
      if (std::isnan(va) != std::isnan(vb)) return std::isnan(vb);
      if (!std::isnan(va) && va != vb) return va > vb;
      return a < b;
    };
    std::sort(idx.begin(), idx.end(), before);
    CHECK_MESSAGE(got == idx[0], "argmax n=" << n);
    const int k = int(std::min<int64_t>(n, 40));
    cuda::topk_f32(dx->as<float>(), n, k, dv.as<float>(), di.as<int32_t>(), nullptr);
    auto ids = di.down<int32_t>(size_t(k));
    auto vals = dv.down<float>(size_t(k));
    for (int i = 0; i < k; ++i) {
      CHECK_MESSAGE(ids[size_t(i)] == idx[size_t(i)], "topk n=" << n << " rank " << i);
      CHECK(same_bits(vals[size_t(i)], x[size_t(idx[size_t(i)])]));
    }
  }
}

// ==================================================================== the engine

namespace {

int argmax(std::span<const float> v) { return int(std::max_element(v.begin(), v.end()) - v.begin()); }

// One prompt through a context with n_batch `batch`; returns how many greedy tokens were
// compared (while HF's margin exceeds 3x our error).
size_t parity_prompt(const std::string& name, const std::shared_ptr<CudaModel>& model, const RefPrompt& f,
                     const RefPrompt& nat, int64_t batch, size_t pi) {
  const size_t V = f.last_logits.size();
  CudaContext ctx(model, CudaContextOptions{256, batch});
  std::vector<float> all = ctx.eval_all(f.prompt);
  REQUIRE(all.size() == f.prompt.size() * V);
  const float* last = all.data() + (f.prompt.size() - 1) * V;
  const float scale = max_abs(f.last_logits.data(), V);
  const float err = max_abs_diff(last, f.last_logits.data(), V);
  const float native_err = max_abs_diff(nat.last_logits.data(), f.last_logits.data(), V);
  const float tol = std::max(native_err, 2e-4f * scale);
  MESSAGE(name << " [cuda, n_batch " << batch << "] prompt " << pi << " (" << f.prompt.size() << " tokens): max|ours-f32| = "
               << err << ", HF native vs f32 = " << native_err << ", |logit| max = " << scale);
  CHECK(err <= tol);
  for (size_t p = 0; p < f.prompt.size(); ++p)
    for (size_t r = 0; r < f.top_ids[p].size(); ++r)
      CHECK(std::fabs(all[p * V + size_t(f.top_ids[p][r])] - f.top_logits[p][r]) <= tol);
  const float token_tol = 3 * std::max(err, 1e-5f * scale);
  int next = argmax({last, V});
  size_t compared = 0;
  for (size_t step = 0; step < f.greedy.size(); ++step) {
    if (f.greedy_margins[step] <= token_tol) break;
    CHECK_MESSAGE(next == f.greedy[step], name << " greedy step " << step);
    if (next != f.greedy[step]) break;
    ++compared;
    int32_t tok = next;
    next = argmax(ctx.eval({&tok, 1}));  // decode: the CUDA graph
  }
  CHECK(ctx.graph_captured() == (compared > 0));
  MESSAGE("  greedy tokens compared with clear margin: " << compared << "/" << f.greedy.size());
  return compared;
}

void check_cuda_parity(const std::string& name) {
  if (!std::filesystem::exists(model_dir(name))) {
    MESSAGE(name << ": model not present here, skipped");
    return;
  }
  CudaModelOptions mo;
  mo.ctx = 256;
  auto model = CudaModel::load(model_dir(name), mo);
  for (const auto& v : model->kernel_plan()) {
    REQUIRE(v.chosen);
    CHECK(v.chosen->backend == Backend::Cuda);
  }
  Reference ref = load_reference(name);
  for (size_t pi = 0; pi < ref.f32.prompts.size(); ++pi) {
    const RefPrompt& f = ref.f32.prompts[pi];
    const RefPrompt& nat = ref.native.prompts[pi];
    // n_batch 8: every product through the GEMV, F32 activations (the CPU engine's contract):
    // as close to HF's float32 run as the CPU, greedy tokens followed.
    const size_t compared = parity_prompt(name, model, f, nat, 8, pi);
    CHECK(compared >= std::min<size_t>(4, f.greedy.size()));
    // Default n_batch: prompts over 8 tokens go through cuBLAS, activations rounded to the
    // weight dtype (gemm.cu): must stay within HF's own native-dtype error.
    parity_prompt(name, model, f, nat, 512, pi);
  }
}

}  // namespace

TEST_CASE("cuda: parity with HF float32 reference") {
  SKIP_WITHOUT_GPU();
  for (const char* name : {"llama-3.2-mini", "llama-3.1-mini-sharded", "tinyllama-mini-f16", "tinyllama-mini-f32",
                           "deepseek-r1-distill-mini", "llama-3.1-mini-w8a8"}) {
    SUBCASE(name) { check_cuda_parity(name); }
  }
}

TEST_CASE("cuda: graph replay equals plain launches bit for bit; prefill equals decode; chunked prefill") {
  SKIP_WITHOUT_GPU();
  for (const char* name : {"llama-3.1-mini-sharded", "llama-3.1-mini-w8a8"}) {
    if (!std::filesystem::exists(model_dir(name))) continue;
    auto model = CudaModel::load(model_dir(name));
    const std::vector<int32_t> toks = {1, 17, 300, 41, 9, 1000, 22, 5, 77, 3000, 12, 4095, 0, 8};
    const size_t V = size_t(model->config().vocab_size);
    CudaContext g(model, {64, 512, true}), p(model, {64, 512, false}), a(model, {64, 512}), c(model, {64, 4});
    int diff = 0;
    float worst = 0;
    std::vector<float> all = a.eval_all(toks);
    for (size_t i = 0; i < toks.size(); ++i) {
      auto lg = g.eval({&toks[i], 1});
      std::vector<float> l1(lg.begin(), lg.end());
      auto lp = p.eval({&toks[i], 1});
      for (size_t k = 0; k < V; ++k) diff += !same_bits(l1[k], lp[k]);
      worst = std::max(worst, max_abs_diff(l1.data(), all.data() + i * V, V) / max_abs(l1.data(), V));
    }
    CHECK(g.graph_captured());
    CHECK(!p.graph_captured());
    CHECK_MESSAGE(diff == 0, name << ": graph and plain decode differ in " << diff << " logits");
    auto chunked = c.eval(toks);
    const float chunk_err =
        max_abs_diff(chunked.data(), all.data() + (toks.size() - 1) * V, V) / max_abs(chunked.data(), V);
    // Chunks of 4 take the decode path's kernels (GEMV, F32 activations): the same bits.
    // Prefill of 14 tokens (> 8) goes through cuBLAS, which rounds the activations of BF16
    // linears to BF16 (gemm.cu's contract; w8a8: only the BF16 lm_head): reported, and
    // bounded loosely here (the parity test holds that path to HF's own native error).
    std::vector<float> dec(V);
    {
      CudaContext d(model, {64, 512});
      for (size_t i = 0; i < toks.size(); ++i) {
        auto lg = d.eval({&toks[i], 1});
        std::copy(lg.begin(), lg.end(), dec.begin());
      }
    }
    const float chunk_vs_decode = max_abs_diff(chunked.data(), dec.data(), V) / max_abs(dec.data(), V);
    MESSAGE(std::string(name) << ": prefill (cuBLAS) vs decode max relative diff " << worst << "; chunked (batch 4) vs decode " << chunk_vs_decode
                 << "; chunked vs prefill " << chunk_err);
    CHECK(chunk_vs_decode < 2e-4f);
    CHECK(worst < 5e-2f);
    // eval_greedy (the device argmax) agrees with the host argmax of eval, prefill and decode.
    CudaContext e(model, {64, 512}), f(model, {64, 512});
    CHECK(e.eval_greedy({toks.data(), 5}) == argmax(f.eval({toks.data(), 5})));
    for (size_t i = 5; i < toks.size(); ++i) CHECK(e.eval_greedy({&toks[i], 1}) == argmax(f.eval({&toks[i], 1})));
  }
}

TEST_CASE("cuda: the opt-in decode variants (LLRT_CUDA_Q8_SILU=1, LLRT_CUDA_ASYNC_NORM=1) equal the default bit for bit") {
  SKIP_WITHOUT_GPU();
  for (const char* name : {"llama-3.1-mini-w8a8", "llama-3.1-mini-sharded"}) {
    if (!std::filesystem::exists(model_dir(name))) {
      MESSAGE("skipped: " << model_dir(name) << " not present");
      continue;
    }
    auto model = CudaModel::load(model_dir(name));
    const std::vector<int32_t> toks = {1, 17, 300, 41, 9, 1000, 22, 5};
    const size_t V = size_t(model->config().vocab_size);
    const char* vars[] = {"LLRT_CUDA_Q8_SILU", "LLRT_CUDA_ASYNC_NORM"};
    std::vector<std::vector<float>> logits[3];
    for (int variant = 0; variant < 3; ++variant) {  // 0 default, 1 Q8_SILU, 2 both
      for (int v = 0; v < 2; ++v) {
        if (variant > v) setenv(vars[v], "1", 1);
        else unsetenv(vars[v]);
      }
      for (bool graphs : {true, false}) {
        CudaContext ctx(model, {64, 512, graphs});
        for (int32_t t : toks) {
          auto lg = ctx.eval({&t, 1});
          logits[variant].emplace_back(lg.begin(), lg.end());
        }
      }
    }
    for (const char* v : vars) unsetenv(v);
    for (int variant = 1; variant < 3; ++variant) {
      int diff = 0;
      for (size_t i = 0; i < logits[0].size(); ++i)
        for (size_t k = 0; k < V; ++k) diff += !same_bits(logits[0][i][k], logits[variant][i][k]);
      CHECK_MESSAGE(diff == 0, name << ": variant " << variant << " changed " << diff << " logits");
    }
  }
}

TEST_CASE("cuda: greedy generation through generate() follows HF where margins are clear") {
  SKIP_WITHOUT_GPU();
  const std::string name = "llama-3.1-mini-sharded";
  if (!std::filesystem::exists(model_dir(name))) return;
  auto cm = CudaModel::load(model_dir(name));
  Reference ref = load_reference(name);
  const auto& pr = ref.f32.prompts[0];
  GenerateOptions o;
  o.max_new_tokens = int64_t(pr.greedy.size());
  o.sampling.temperature = 0;  // greedy: generate() asks the session for the device argmax
  CudaContext gc(cm, {128, 512});
  auto a = generate(gc, nullptr, pr.prompt, o, nullptr);
  const float scale = max_abs(pr.last_logits.data(), pr.last_logits.size());
  size_t same = 0;
  while (same < a.tokens.size() && same < pr.greedy.size() && pr.greedy_margins[same] > 1e-3f * scale &&
         a.tokens[same] == pr.greedy[same])
    ++same;
  MESSAGE("generate() on " << gc.device_name() << ": " << same << " greedy tokens equal HF's (clear margins) of "
                           << a.tokens.size());
  CHECK(same >= std::min<size_t>(4, pr.greedy.size()));
  CHECK(a.generated_tokens == o.max_new_tokens);
}

TEST_CASE("cuda: memory estimate is what is allocated; errors leave the state unchanged") {
  SKIP_WITHOUT_GPU();
  const std::string name = "llama-3.1-mini-w8a8";
  if (!std::filesystem::exists(model_dir(name))) return;
  auto model = CudaModel::load(model_dir(name));
  const CudaMemoryEstimate e = cuda_estimate_memory(model->checkpoint(), 100, 16);
  CHECK(e.weight_bytes == model->weight_bytes());
  CHECK(e.weight_bytes >= model->checkpoint().weight_bytes());
  CudaContext ctx(model, {100, 16});
  CHECK(ctx.allocated_bytes() == e.context_bytes());
  MESSAGE("estimate: weights " << e.weight_bytes << " + KV " << e.kv_bytes << " + scratch " << e.scratch_bytes
                               << " + workspace " << e.workspace_bytes);
  const CudaFit fit = cuda_check_model(model->checkpoint(), 100, 16);
  CHECK(fit.ok);
  std::vector<int32_t> toks(98, 5);
  ctx.eval(toks);
  std::vector<int32_t> more(3, 5);
  CHECK_THROWS_WITH_AS(ctx.eval(more), doctest::Contains("context is full"), Error);
  CHECK(ctx.n_past() == 98);
  int32_t bad = 4096;
  CHECK_THROWS_WITH_AS(ctx.eval({&bad, 1}), doctest::Contains("outside the vocabulary"), Error);
  CHECK(ctx.n_past() == 98);
  ctx.truncate(2);
  CHECK(ctx.n_past() == 2);
  CHECK_THROWS_AS(CudaContext(model, {1 << 30, 4}), Error);  // beyond max_position_embeddings
}

// ==================================================================== performance (report only)

TEST_CASE("cuda perf: decode GEMV bandwidth and prefill GEMM rate at Llama-3.1-8B shapes (reported)") {
  SKIP_WITHOUT_GPU();
  CudaFixture fx;
  cudaEvent_t e0, e1;
  cuda::check(cudaEventCreate(&e0), "event");
  cuda::check(cudaEventCreate(&e1), "event");
  const double copy_bw = cuda_measure_copy_bandwidth(uint64_t(1) << 30, 5);
  MESSAGE("device copy bandwidth (read+write): " << copy_bw << " GB/s");
  struct Shape { const char* what; int64_t N, K; };
  const Shape shapes[] = {{"qkv 6144x4096", 6144, 4096}, {"o 4096x4096", 4096, 4096}, {"gate_up 28672x4096", 28672, 4096},
                          {"down 4096x14336", 4096, 14336}, {"lm_head 128256x4096", 128256, 4096}};
  for (const auto& sh : shapes)
    for (DType wt : {DType::BF16, DType::I8}) {
      const size_t wbytes = size_t(sh.N * sh.K) * (wt == DType::I8 ? 1 : 2);
      const int nbuf = int(std::max<size_t>(1, (size_t(256) << 20) / wbytes + 1));  // rotate past the L2
      std::vector<std::unique_ptr<Dev>> ws;
      for (int i = 0; i < nbuf; ++i) {
        ws.push_back(std::make_unique<Dev>(wbytes));
        cuda::check(cudaMemset(ws.back()->p, 0x3c, wbytes), "memset");  // 0x3c3c: a non-zero BF16
      }
      Dev x(size_t(sh.K) * 4), y(size_t(sh.N) * 4), q(size_t(cuda::q8_ldq(sh.K))), sc(64), zp(64), wsc(size_t(sh.N) * 2);
      cuda::check(cudaMemset(x.p, 0x3c, x.bytes), "memset");
      cuda::check(cudaMemset(q.p, 0x11, q.bytes), "memset");
      cuda::check(cudaMemset(sc.p, 0x3c, sc.bytes), "memset");
      cuda::check(cudaMemset(zp.p, 0, zp.bytes), "memset");
      cuda::check(cudaMemset(wsc.p, 0x3c, wsc.bytes), "memset");
      auto launch = [&](int i) {
        if (wt == DType::I8) {
          cuda::Q8LinearCall c;
          c.w = ws[size_t(i % nbuf)]->as<int8_t>();
          c.N = sh.N;
          c.K = sh.K;
          c.w_scale = wsc.p;
          c.q = q.as<int8_t>();
          c.scale = sc.as<float>();
          c.zp = zp.as<int32_t>();
          c.M = 1;
          c.y = y.as<float>();
          c.ldy = sh.N;
          cuda::q8_gemv(c, nullptr);
        } else {
          cuda::LinearCall c;
          c.w = ws[size_t(i % nbuf)]->p;
          c.N = sh.N;
          c.K = sh.K;
          c.x = x.as<float>();
          c.ldx = sh.K;
          c.y = y.as<float>();
          c.ldy = sh.N;
          c.M = 1;
          cuda::gemv(wt, c, nullptr);
        }
      };
      for (int i = 0; i < 3; ++i) launch(i);
      const int reps = 30;
      cuda::check(cudaEventRecord(e0), "record");
      for (int i = 0; i < reps; ++i) launch(i);
      cuda::check(cudaEventRecord(e1), "record");
      cuda::check(cudaEventSynchronize(e1), "sync");
      float ms = 0;
      cuda::check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
      const double us = ms * 1e3 / reps, gbs = double(wbytes) / (us * 1e-6) / 1e9;
      MESSAGE("gemv " << (wt == DType::I8 ? "int8 " : "bf16 ") << std::string(sh.what) << ": " << us << " us, " << gbs << " GB/s ("
                      << 100 * gbs / copy_bw << "% of copy bandwidth)");
    }
  // The fused decode steps (one token) at the same shapes, the input transform included.
  {
    const int64_t H = 4096, I = 14336;
    struct Step { const char* what; int64_t N, K; cuda::DecodeInput in; };
    const Step steps[] = {{"rmsnorm+qkv", 6144, H, cuda::DecodeInput::RmsNorm}, {"o", H, H, cuda::DecodeInput::Plain},
                          {"rmsnorm+gate_up", 2 * I, H, cuda::DecodeInput::RmsNorm}, {"silu+down", H, I, cuda::DecodeInput::SiluMul}, {"down", H, I, cuda::DecodeInput::Plain},
                          {"rmsnorm+lm_head", 128256, H, cuda::DecodeInput::RmsNorm}};
    Dev x(size_t(2 * I) * 4), nw(size_t(H) * 2), y(size_t(128256) * 4), wsc(size_t(128256) * 2);
    cuda::check(cudaMemset(x.p, 0x3c, x.bytes), "memset");
    cuda::check(cudaMemset(nw.p, 0x3f, nw.bytes), "memset");
    cuda::check(cudaMemset(wsc.p, 0x3c, wsc.bytes), "memset");
    for (const auto& st : steps)
      for (DType wt : {DType::BF16, DType::I8}) {
        const size_t wbytes = size_t(st.N * st.K) * (wt == DType::I8 ? 1 : 2);
        const int nbuf = int(std::max<size_t>(1, (size_t(256) << 20) / wbytes + 1));
        std::vector<std::unique_ptr<Dev>> ws;
        for (int i = 0; i < nbuf; ++i) {
          ws.push_back(std::make_unique<Dev>(wbytes));
          cuda::check(cudaMemset(ws.back()->p, 0x3c, wbytes), "memset");
        }
        cuda::DecodeLinearCall c;
        c.wtype = wt;
        c.N = st.N;
        c.K = st.K;
        c.input = st.in;
        c.x = x.as<float>();
        c.norm_w = nw.p;
        c.eps = 1e-5f;
        c.up_off = I;
        c.y = y.as<float>();
        c.w_scale = wsc.p;
        for (int i = 0; i < 3; ++i) c.w = ws[size_t(i % nbuf)]->p, cuda::decode_linear(c, nullptr);
        cuda::check(cudaEventRecord(e0), "record");
        for (int i = 0; i < 30; ++i) c.w = ws[size_t(i % nbuf)]->p, cuda::decode_linear(c, nullptr);
        cuda::check(cudaEventRecord(e1), "record");
        cuda::check(cudaEventSynchronize(e1), "sync");
        float ms = 0;
        cuda::check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
        const double us = ms * 1e3 / 30, gbs = double(wbytes) / (us * 1e-6) / 1e9;
        MESSAGE("decode_linear " << (wt == DType::I8 ? "int8 " : "bf16 ") << std::string(st.what) << ": " << us << " us, " << gbs << " GB/s ("
                                 << 100 * gbs / copy_bw << "%)");
      }
  }
  for (int64_t n_kv : {128, 1024, 4096}) {  // decode attention with RoPE fused, 32/8 heads x 128
    const int64_t nh = 32, nkv = 8, hd = 128, ctx = 4096;
    Dev qkv(size_t((nh + 2 * nkv) * hd) * 4), kc(size_t(nkv * ctx * hd) * 4), vc(kc.bytes), out(size_t(nh * hd) * 4),
        cs(size_t(ctx * hd / 2) * 4), sn(cs.bytes), scr(cuda::attention_scratch_bytes(nh, nkv, hd, ctx)), pos(16);
    cuda::check(cudaMemset(qkv.p, 0x3c, qkv.bytes), "memset");
    cuda::check(cudaMemset(kc.p, 0x3c, kc.bytes), "memset");
    cuda::check(cudaMemset(vc.p, 0x3c, vc.bytes), "memset");
    cuda::check(cudaMemset(cs.p, 0x3c, cs.bytes), "memset");
    cuda::check(cudaMemset(sn.p, 0x3c, sn.bytes), "memset");
    cuda::check(cudaMemset(scr.p, 0, scr.bytes), "memset");
    std::vector<int32_t> pv = {int32_t(n_kv - 1)};
    pos.up(pv);
    cuda::AttentionCall a;
    a.q = qkv.as<float>();
    a.ldq = (nh + 2 * nkv) * hd;
    a.kc = kc.as<float>();
    a.vc = vc.as<float>();
    a.ctx = ctx;
    a.n_heads = nh;
    a.n_kv_heads = nkv;
    a.head_dim = hd;
    a.T = 1;
    a.p0_dev = pos.as<int32_t>();
    a.scale = 0.088f;
    a.out = out.as<float>();
    a.ldo = nh * hd;
    a.scratch = scr.p;
    a.cos = cs.as<float>();
    a.sin = sn.as<float>();
    a.k_new = qkv.as<float>() + nh * hd;
    a.v_new = qkv.as<float>() + (nh + nkv) * hd;
    cuda::attention_rows(a, nullptr);
    cuda::check(cudaEventRecord(e0), "record");
    for (int i = 0; i < 30; ++i) cuda::attention_rows(a, nullptr);
    cuda::check(cudaEventRecord(e1), "record");
    cuda::check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    MESSAGE("attention decode (RoPE fused) n_kv=" << n_kv << ": " << ms * 1e3 / 30 << " us");
  }
  // Prefill: 512 tokens through cuBLAS (BF16) and cuBLASLt (int8), and the tiled attention.
  {
    const int64_t M = 512, N = 14336, K = 4096;
    Dev w(size_t(N * K) * 2), x(size_t(M * K) * 4), y(size_t(M * N) * 4), conv(cuda::linear_conv_bytes(DType::BF16, M, K));
    cuda::check(cudaMemset(w.p, 0x3c, w.bytes), "memset");
    cuda::check(cudaMemset(x.p, 0x3c, x.bytes), "memset");
    cuda::LinearCall c;
    c.w = w.p;
    c.N = N;
    c.K = K;
    c.x = x.as<float>();
    c.ldx = K;
    c.y = y.as<float>();
    c.ldy = N;
    c.M = M;
    c.conv = conv.p;
    c.blas = fx.blas;
    for (int i = 0; i < 3; ++i) cuda::gemm(DType::BF16, c, nullptr);
    cuda::check(cudaEventRecord(e0), "record");
    for (int i = 0; i < 10; ++i) cuda::gemm(DType::BF16, c, nullptr);
    cuda::check(cudaEventRecord(e1), "record");
    cuda::check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    MESSAGE("gemm bf16 512x14336x4096 (with the activation conversion): " << ms / 10 << " ms, "
                                                                            << 2.0 * M * N * K / (ms / 10 * 1e-3) / 1e12 << " TFLOP/s");
  }
  {
    const int64_t T = 512, nh = 32, nkv = 8, hd = 128, ctx = 1024;
    Dev q(size_t(T * nh * hd) * 4), kc(size_t(nkv * ctx * hd) * 4), vc(kc.bytes), out(q.bytes);
    cuda::check(cudaMemset(q.p, 0x3c, q.bytes), "memset");
    cuda::check(cudaMemset(kc.p, 0x3c, kc.bytes), "memset");
    cuda::check(cudaMemset(vc.p, 0x3c, vc.bytes), "memset");
    cuda::AttentionCall a;
    a.q = q.as<float>();
    a.ldq = nh * hd;
    a.kc = kc.as<float>();
    a.vc = vc.as<float>();
    a.ctx = ctx;
    a.n_heads = nh;
    a.n_kv_heads = nkv;
    a.head_dim = hd;
    a.T = T;
    a.p0 = 0;
    a.scale = 0.088f;
    a.out = out.as<float>();
    a.ldo = nh * hd;
    cuda::attention_tiled(a, nullptr);
    cuda::check(cudaEventRecord(e0), "record");
    for (int i = 0; i < 10; ++i) cuda::attention_tiled(a, nullptr);
    cuda::check(cudaEventRecord(e1), "record");
    cuda::check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    MESSAGE("attention tiled prefill 512 tokens, 32/8 heads x 128 (one layer): " << ms / 10 << " ms");
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}
