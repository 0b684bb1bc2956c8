// The cross-backend op checker (docs/STYLE.md, rules 5, 6, 11).
//
// One test body per op. Each body runs every registered kernel for the op whose backend
// this machine can execute (KernelRegistry::all() + backend_hw_supported), on random
// data at odd sizes and at the blocking edges, and compares it with the scalar
// reference entry (Backend::Ref, F64 accumulation: the oracle) and with every other
// backend. A backend the CPU lacks is reported as skipped, not failed.
//
// Tolerances are stated per op. u = 2^-24 (F32 unit roundoff), ub = 2^-8 (BF16).
// Where an error is a sum of n independent roundings of zero-mean random data, we use
// the statistical bound 8 * sqrt(n) * u * (sum of magnitudes): the rounding errors are
// independent, each at most u * |partial sum| <= u * S, so their sum has a standard
// deviation below sqrt(n) * u * S / sqrt(3) and 8 * sqrt(n) is a > 10-sigma bound. (The
// worst-case bound n * u * S would be too loose to see a dropped term at K = 4097.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "src/engine/cpu.h"
#include "llrt/dtype.h"
#include "llrt/error.h"
#include "src/engine/kernels.h"
#include "llrt/tensor.h"
#include "random_weights.h"
#include "src/engine/kernel_choice.h"
#include <fstream>
#include <iterator>

using namespace llrt;
using llrt::test::make_weights;
using llrt::test::Rng;
using llrt::test::Weights;

namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr double kUb = 1.0 / 256.0;      // 2^-8: |bf16_rne(x) - x| <= kUb |x|

// Every kernel of (op, w) that this CPU can run, the Ref entry first.
std::vector<const KernelEntry*> runnable(Op op, DType w) {
  std::vector<const KernelEntry*> out;
  for (const auto& e : KernelRegistry::global().all())
    if (e.op == op && e.wtype == w && (e.atype == DType::F32 || e.atype == w) && backend_is_cpu(e.backend) &&
        backend_hw_supported(e.backend))
      out.push_back(&e);  // (Backend::Cuda entries: tests/test_cuda.cpp; atype == w: rounded activations)
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->backend == Backend::Ref && b->backend != Backend::Ref; });
  return out;
}

// Reports the compiled-in entries of an op this CPU cannot run (status, not failure).
void note_skipped(Op op) {
  for (const auto& e : KernelRegistry::global().all())
    if (e.op == op && backend_is_cpu(e.backend) && !backend_hw_supported(e.backend)) MESSAGE("skipped (CPU lacks it): " << std::string(e.name));
}


float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }
const float kSentinel = [] {
  uint32_t u = 0x7fc0dead;  // a NaN nobody computes
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}();

// Outputs of every backend for one case, compared with the reference and pairwise.
// tol(b, i): the allowed |y_b[i] - exact| (without contract terms); extra(a, b, i): the
// extra allowance between two backends whose rounding contracts differ.
// Largest |difference| / tolerance seen per op (reported, so the margin is visible).
std::map<std::string, double> g_worst;

struct WorstReport {
  WorstReport() { g_worst.clear(); }
  ~WorstReport() {
    for (const auto& [op, w] : g_worst) MESSAGE("worst |diff| / tolerance for " << op << ": " << w);
  }
};

struct Compare {
  std::vector<const KernelEntry*> entries;  // [0] is Ref
  std::vector<std::vector<float>> ys;
  std::string label;
  int failures = 0;

  template <class TolFn, class ExtraFn>
  void check(TolFn tol, ExtraFn extra) {
    const auto& ref = ys[0];
    for (size_t b = 0; b < entries.size(); ++b) {
      for (size_t c = b + 1; c < entries.size(); ++c) {
        double worst = 0;
        size_t wi = 0;
        bool nan = false;
        for (size_t i = 0; i < ref.size(); ++i) {
          const float yb = ys[b][i], yc = ys[c][i];
          if (std::isnan(ref[i])) {  // outside the written range: must be untouched
            if (!same_bits(yb, ref[i]) || !same_bits(yc, ref[i])) nan = true;
            continue;
          }
          if (!std::isfinite(yb) || !std::isfinite(yc)) {
            nan = true;
            wi = i;
            continue;
          }
          const double lim = tol(entries[b], i) + tol(entries[c], i) + extra(entries[b], entries[c], i);
          const double r = std::fabs(double(yb) - double(yc)) / std::max(lim, 1e-300);
          if (r > worst) worst = r, wi = i;
        }
        const std::string op = label.substr(0, label.find(' '));
        g_worst[op] = std::max(g_worst[op], worst);
        if (worst > 1.0 || nan) {
          ++failures;
          FAIL_CHECK(label << ": " << std::string(entries[b]->name) << " vs " << std::string(entries[c]->name)
                           << std::string(nan ? " wrote a non-finite value or outside its range" : "")
                           << " at " << wi << ": " << ys[b][wi] << " vs " << ys[c][wi]
                           << " (" << worst << "x the tolerance)");
        }
      }
    }
  }
};

// ---------------------------------------------------------------- Linear

// The activation part of each kernel's contract at M tokens, as a bound relative to
// S = sum |x w|: BF16 weights on AMX tiles (M >= 2) carry x as two BF16 (x ~ xh + xl):
// 2^-16; F16 weights on AMX also leave out wl*xl: 2^-15; exact F32 activations (every other
// kernel, and AMX BF16 at M == 1): 0. Kernels registered with BF16 activations round x once
// to BF16 (nearest even): 2^-8 (kUb).
double activation_bound(const KernelEntry* e, int64_t M) {
  if (e->op == Op::Linear && e->atype == DType::BF16) return kUb;
  if (e->wtype == DType::BF16 && e->backend == Backend::Amx && M >= 2) return std::ldexp(1.0, -16);
  if (e->wtype == DType::F16 && e->backend == Backend::Amx) return std::ldexp(1.0, -15);
  return 0.0;
}
// BF16 weights times split activations: exactly the products of W with xh + xl.
bool splits_bf16_activations(const KernelEntry* e, int64_t M) {
  return e->wtype == DType::BF16 && e->atype == DType::F32 && activation_bound(e, M) > 0;
}
// Sequential F32 roundings per output: K / (k values per accumulator lane) + the lane
// and K-block reductions. Avx2 lanes hold k mod 8 (BF16 decode: k mod 16, even and odd
// halves), Avx512 k mod 16; vdpbf16ps lanes two of every 32 (BF16 activations); AMX
// accumulates all of K in one tile element, twice for split BF16 and three times for split F16.
// (Sequential roundings bound the error as sqrt(n) u S here: random-walk growth, with a factor 8.)
double linear_roundings(const KernelEntry* e, int64_t K, int64_t M) {
  // The packed broadcast form (AVX2 / AVX-512 F32-activation kernels, M >= 8) accumulates
  // each output over a K block of 256 in one lane, then adds the blocks.
  // (The BF16-activation kernel's packed form adds k pairs: the same count, bounded alike.)
  const bool packed = M >= 8 && (e->backend == Backend::Avx2 || e->backend == Backend::Avx512 || e->backend == Backend::Avx512Bf16 ||
                                 e->backend == Backend::Neon);
  if (packed) return double(std::min<int64_t>(K, 256)) + double(K) / 256 + 16;
  switch (e->backend) {
    case Backend::Ref: return 0;
    case Backend::Avx2: return double(K) / 8 + 16;
    case Backend::Avx512: return double(K) / 16 + 16;
    case Backend::Avx512Bf16: return double(K) / 8 + 16;
    case Backend::Neon: return double(K) / 4 + 16;      // lanes hold k mod 4 (BF16 decode: k mod 8)
    // BFDOT without FEAT_EBF16 rounds to odd (up to 1 ulp = 2u) twice per step (the pair sum,
    // then the accumulation): one step per lane per 8 k, 4u each.
    case Backend::NeonBf16: return double(K) / 2 + 16;
    default: return double(K) * (e->wtype == DType::F16 ? 3 : 2) + 16;
  }
}

void run_linear(const KernelEntry* e, const void* w, int64_t K, const float* x, int64_t ldx,
                float* y, int64_t ldy, int64_t M, int64_t n0, int64_t n1) {
  const LinearKernel& lk = e->linear();
  REQUIRE(bool(lk.run));
  CHECK_MESSAGE(bool(lk.prep) == bool(lk.prep_bytes), std::string(e->name));
  AlignedBuffer xp;
  LinearArgs a;
  a.w.data = w;
  a.w.dtype = e->wtype;
  if (lk.prep) {
    xp = aligned_alloc_bytes(std::max<size_t>(lk.prep_bytes(M, K), 64));
    lk.prep(LinearPrepArgs{x, ldx, M, K, 0, M, &a.w.act, xp.get()});
  }
  a.K = K;
  a.x = x;
  a.ldx = ldx;
  a.xp = xp.get();
  a.y = y;
  a.ldy = ldy;
  a.M = M;
  a.n0 = n0;
  a.n1 = n1;
  lk.run(a);
}

int linear_case(DType wt, int64_t N, int64_t K, int64_t M, int64_t n0, int64_t n1, Rng& rng) {
  const auto entries = runnable(Op::Linear, wt);
  REQUIRE(entries.size() >= 1);
  REQUIRE(entries[0]->backend == Backend::Ref);
  const int64_t ldx = K + 3, ldy = N + 2;
  Weights w = make_weights(wt, size_t(N * K), rng, 0.5f);
  std::vector<float> x(static_cast<size_t>(M * ldx)), xr(x.size());
  for (auto& v : x) v = rng.normal();
  for (size_t i = 0; i < x.size(); ++i) {  // xh + xl, the split activations
    const float h = round_bf16(x[i]);
    xr[i] = h + round_bf16(x[i] - h);
  }
  // S[m, n] = sum |x w|, Sr with the split activations.
  std::vector<double> S(size_t(M * ldy), 0), Sr(S.size(), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = n0; n < n1; ++n) {
      double s = 0, sr = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += std::fabs(double(x[m * ldx + k]) * w.f[n * K + k]);
        sr += std::fabs(double(xr[m * ldx + k]) * w.f[n * K + k]);
      }
      S[m * ldy + n] = s;
      Sr[m * ldy + n] = sr;
    }
  // Oracle with the activations already split: the exact answer of the split-BF16
  // contract (xh + xl rounded to F32 on the way in: 2^-24 |x|, inside the tolerance).
  std::vector<float> yref_r(size_t(M * ldy), kSentinel);
  run_linear(entries[0], w.data(), K, xr.data(), ldx, yref_r.data(), ldy, M, n0, n1);
  // And with the activations rounded once to BF16 (the BF16-activation kernels' contract).
  std::vector<float> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = round_bf16(x[i]);
  std::vector<float> yref_b(size_t(M * ldy), kSentinel);
  run_linear(entries[0], w.data(), K, xb.data(), ldx, yref_b.data(), ldy, M, n0, n1);

  std::ostringstream lab;
  lab << "linear " << std::string(dtype_name(wt)) << " N=" << N << " K=" << K << " M=" << M << " n=[" << n0 << "," << n1 << ")";
  Compare c{entries, {}, lab.str()};
  for (auto* e : entries) {
    std::vector<float> y(size_t(M * ldy), kSentinel);
    run_linear(e, w.data(), K, x.data(), ldx, y.data(), ldy, M, n0, n1);
    if (splits_bf16_activations(e, M)) {
      // Tight check against the split-activation oracle: only accumulation error.
      const double nr = linear_roundings(e, K, M);
      for (size_t i = 0; i < y.size(); ++i) {
        if (std::isnan(yref_r[i])) continue;
        const double lim = 8 * std::sqrt(nr) * kU * Sr[i] + 1e-30;
        g_worst["linear-vs-split-activation-ref"] = std::max(g_worst["linear-vs-split-activation-ref"], std::fabs(double(y[i]) - yref_r[i]) / lim);
        if (!(std::fabs(double(y[i]) - yref_r[i]) <= lim)) {
          ++c.failures;
          FAIL_CHECK(c.label << ": " << std::string(e->name) << " vs split-activation reference at " << i << ": " << y[i]
                             << " vs " << yref_r[i] << " (limit " << lim << ")");
          break;
        }
      }
    }
    if (e->atype == DType::BF16) {
      // Tight check against the rounded-activation oracle: only accumulation error
      // (sum |xb w| <= (1 + 2^-8) S).
      const double nr = linear_roundings(e, K, M);
      for (size_t i = 0; i < y.size(); ++i) {
        if (std::isnan(yref_b[i])) continue;
        const double lim = 8 * std::sqrt(nr) * kU * S[i] * 1.01 + 1e-30;
        g_worst["linear-vs-bf16-activation-ref"] = std::max(g_worst["linear-vs-bf16-activation-ref"], std::fabs(double(y[i]) - yref_b[i]) / lim);
        if (!(std::fabs(double(y[i]) - yref_b[i]) <= lim)) {
          ++c.failures;
          FAIL_CHECK(c.label << ": " << std::string(e->name) << " vs bf16-activation reference at " << i << ": " << y[i]
                             << " vs " << yref_b[i] << " (limit " << lim << ")");
          break;
        }
      }
    }
    c.ys.push_back(std::move(y));
  }
  auto tol = [&](const KernelEntry* e, size_t i) {
    double t = 8 * std::sqrt(linear_roundings(e, K, M)) * kU * std::max(S[i], Sr[i]) + 1e-30;
    if (e->backend == Backend::Ref) t += kU * std::fabs(c.ys[0][i]);  // its final rounding
    return t;
  };
  // Activation rounding, rigorous: |sum xr w - sum x w| <= sum |xr - x| |w| <= bound * S.
  // Kernels with the same contract are compared without it.
  auto extra = [&](const KernelEntry* a, const KernelEntry* b, size_t i) {
    const double ba = activation_bound(a, M), bb = activation_bound(b, M);
    return ba == bb ? 0.0 : (ba + bb) * S[i];
  };
  c.check(tol, extra);
  return c.failures;
}

}  // namespace

TEST_CASE("kernels: Linear, every backend against the reference and each other") {
  Rng rng(1234);
  note_skipped(Op::Linear);
  WorstReport report;
  const int64_t Ks[] = {1, 5, 7, 13, 31, 32, 33, 64, 100, 257, 4097};
  const int64_t Ms[] = {1, 2, 3, 16, 17, 33, 64, 65};
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    MESSAGE("Linear " << std::string(dtype_name(wt)) << ": " << runnable(Op::Linear, wt).size() << " runnable kernels");
    int failures = 0;
    for (int64_t K : Ks)
      for (int64_t M : Ms) {
        const int64_t N = 37;  // two 16-row groups + 5; sub-ranges unaligned to 16
        failures += linear_case(wt, N, K, M, 0, N, rng);
        failures += linear_case(wt, N, K, M, 3, 36, rng);
        failures += linear_case(wt, N, K, M, 1, 20, rng);
        if (failures > 20) FAIL("too many failures");
      }
    // Blocking edges: several N panels and K blocks (prefill), many rows (decode), more
    // than one AMX token chunk (256), K chunks of 2048 with a partial last one.
    failures += linear_case(wt, 1001, 1100, 7, 0, 1001, rng);
    failures += linear_case(wt, 1001, 1100, 1, 5, 1000, rng);
    failures += linear_case(wt, 37, 64, 300, 0, 37, rng);
    failures += linear_case(wt, 70, 33, 257, 2, 69, rng);
    failures += linear_case(wt, 48, 2048 + 2048 + 40, 18, 0, 48, rng);
    // The packed prefill form: several 256-row panels, M 9..15 (edge tiles of 12), K blocks of 256.
    for (int64_t M : {9, 13, 15}) failures += linear_case(wt, 600, 300, M, 7, 590, rng);
    failures += linear_case(wt, 529, 513, 25, 0, 529, rng);
    CHECK(failures == 0);
  }
}

TEST_CASE("kernels: Linear prep_bytes never shrinks as M grows") {
  // The engine sizes one prep buffer with prep_bytes(largest M, K) and reuses it for
  // every smaller M (decode), so a kernel must never need more for fewer tokens.
  for (const auto& e : KernelRegistry::global().all()) {
    if (e.op != Op::Linear || !backend_is_cpu(e.backend)) continue;  // CUDA entries hold another struct
    const LinearKernel& lk = e.linear();
    if (!lk.prep_bytes) continue;
    for (int64_t K : {1, 31, 2048, 4097, 8192}) {
      size_t prev = 0;
      for (int64_t M = 1; M <= 600; ++M) {
        const size_t b = lk.prep_bytes(M, K);
        CHECK_MESSAGE(b >= prev, std::string(e.name) << " K=" << K << " M=" << M);
        prev = b;
      }
    }
  }
}

TEST_CASE("kernels: Linear prep over any split of the tokens writes what one prep writes") {
  // The engine shares the prep between threads (16-token blocks) when a kernel says prep_splits.
  Rng rng(91);
  int kernels = 0;
  for (const auto& e : KernelRegistry::global().all()) {
    if (e.op != Op::Linear || !backend_is_cpu(e.backend) || !backend_hw_supported(e.backend)) continue;
    const LinearKernel& lk = e.linear();
    if (!lk.prep || !lk.prep_splits) continue;
    const ActQuantParams act;  // I8 kernels: dynamic symmetric
    ++kernels;
    for (int64_t M : {1, 2, 15, 16, 17, 40, 300})
      for (int64_t K : {31, 64, 100, 2048 + 40}) {
        const int64_t ldx = K + 3;
        std::vector<float> x(size_t(M * ldx));
        for (auto& v : x) v = rng.normal();
        const size_t bytes = lk.prep_bytes(M, K);
        std::vector<uint8_t> a(bytes + 64, 0xAB), b(bytes + 64, 0xAB);
        lk.prep(LinearPrepArgs{x.data(), ldx, M, K, 0, M, &act, a.data()});
        // Uneven block ranges, in reverse order (threads finish in any order).
        const int64_t nb = (M + 15) / 16;
        std::vector<int64_t> cuts = {0};
        for (int64_t c = 1; c < nb; c += 1 + c % 3) cuts.push_back(c);
        cuts.push_back(nb);
        for (size_t i = cuts.size() - 1; i > 0; --i)
          lk.prep(LinearPrepArgs{x.data(), ldx, M, K, cuts[i - 1] * 16, std::min(M, cuts[i] * 16), &act, b.data()});
        CHECK_MESSAGE(a == b, std::string(e.name) << " M=" << M << " K=" << K);
      }
  }
  MESSAGE(kernels << " kernels whose prep splits over tokens");
  if (backend_hw_supported(Backend::Amx)) CHECK(kernels >= 4);  // BF16 and F16 AMX, I8 ref and AMX
}

TEST_CASE("kernels: Linear outputs do not depend on how rows are split across threads") {
  // The engine runs [n0, n1) blocks per thread; a row's result must be the same bits
  // whatever block it falls in (no split-dependent tails).
  Rng rng(77);
  for (DType wt : {DType::F32, DType::F16, DType::BF16})
    for (auto* e : runnable(Op::Linear, wt)) {
      if (e->backend == Backend::Ref) continue;
      for (int64_t M : {1, 5, 48}) {
        const int64_t N = 80, K = 300;
        Weights w = make_weights(wt, size_t(N * K), rng, 0.5f);
        std::vector<float> x(static_cast<size_t>(M * K));
        for (auto& v : x) v = rng.normal();
        std::vector<float> y1(static_cast<size_t>(M * N)), y2(static_cast<size_t>(M * N));
        run_linear(e, w.data(), K, x.data(), K, y1.data(), N, M, 0, N);
        run_linear(e, w.data(), K, x.data(), K, y2.data(), N, M, 0, 32);
        run_linear(e, w.data(), K, x.data(), K, y2.data(), N, M, 32, 64);
        run_linear(e, w.data(), K, x.data(), K, y2.data(), N, M, 64, N);
        int diff = 0;
        for (size_t i = 0; i < y1.size(); ++i) diff += !same_bits(y1[i], y2[i]);
        CHECK_MESSAGE(diff == 0, e->name << " M=" << M << ": " << diff << " outputs differ");
      }
    }
}

// ---------------------------------------------------------------- Embedding

TEST_CASE("kernels: Embedding is exact on every backend") {
  Rng rng(5);
  note_skipped(Op::Embedding);
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    const auto entries = runnable(Op::Embedding, wt);
    for (int64_t D : {1, 5, 7, 13, 16, 33, 64, 100, 2053}) {
      const int64_t V = 50, n = 9;
      Weights t = make_weights(wt, size_t(V * D), rng);
      std::vector<int32_t> ids = {0, 49, 3, 3, 17, 48, 0, 25, 1};
      for (auto* e : entries) {
        std::vector<float> out(size_t(n * D) + 1, kSentinel);
        kernel_fn<EmbeddingFn>(*e)(t.data(), D, ids.data(), n, out.data());
        int bad = 0;
        for (int64_t i = 0; i < n; ++i)
          for (int64_t d = 0; d < D; ++d) bad += !same_bits(out[i * D + d], t.f[ids[i] * D + d]);
        CHECK_MESSAGE(bad == 0, e->name << " D=" << D);
        CHECK_MESSAGE(same_bits(out.back(), kSentinel), e->name << " wrote past the end, D=" << D);
      }
    }
  }
}

// ---------------------------------------------------------------- RmsNorm

TEST_CASE("kernels: RmsNorm, every backend against the reference and each other") {
  // Tolerance: the sum of squares has n = dim/8 + 16 roundings of positive terms
  // (worst case n*u relative); 1/sqrt halves it (+3u for the scalar ops), and
  // (x*inv)*w adds two roundings: |y - y_ref| <= ((dim/8 + 16)/2 + 6) u |y_ref|.
  Rng rng(9);
  note_skipped(Op::RmsNorm);
  WorstReport report;
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    const auto entries = runnable(Op::RmsNorm, wt);
    REQUIRE(entries[0]->backend == Backend::Ref);
    for (int64_t dim : {1, 5, 7, 13, 31, 32, 33, 64, 100, 257, 2048, 4097})
      for (float eps : {1e-5f, 1e-6f})
        for (bool alias : {false, true}) {
          Weights w = make_weights(wt, size_t(dim), rng);
          std::vector<float> x(static_cast<size_t>(dim));
          const float sc = rng.uniform(0.01f, 30.0f);
          for (auto& v : x) v = rng.normal(sc);
          std::ostringstream lab;
          lab << "rmsnorm " << std::string(dtype_name(wt)) << " dim=" << dim << " eps=" << eps << (alias ? " in place" : "");
          Compare c{entries, {}, lab.str()};
          for (auto* e : entries) {
            std::vector<float> y(size_t(dim) + 1, kSentinel);
            if (alias) {
              std::copy(x.begin(), x.end(), y.begin());
              kernel_fn<RmsNormFn>(*e)(y.data(), w.data(), y.data(), dim, eps);
            } else {
              kernel_fn<RmsNormFn>(*e)(x.data(), w.data(), y.data(), dim, eps);
            }
            c.ys.push_back(std::move(y));
          }
          const double rel = (double(dim) / 8 + 16) / 2 + 6;
          c.check([&](const KernelEntry*, size_t i) { return rel * kU * std::fabs(c.ys[0][i]) + 1e-35; },
                  [](auto, auto, size_t) { return 0.0; });
        }
  }
}

// ---------------------------------------------------------------- Rope

TEST_CASE("kernels: Rope, every backend against the reference and each other") {
  // Each output is a*c - b*s (or b*c + a*s) with one product rounded and one fused
  // multiply-add: |err| <= 2u (|a c| + |b s|) + the reference's own final rounding.
  Rng rng(11);
  note_skipped(Op::Rope);
  WorstReport report;
  const auto entries = runnable(Op::Rope, DType::F32);
  for (int64_t hd : {2, 6, 10, 32, 34, 64, 128})
    for (int64_t nh : {1, 3, 5}) {
      const int64_t stride = hd + 3;
      std::vector<float> x(static_cast<size_t>(nh * stride));
      for (auto& v : x) v = rng.normal(3.0f);
      std::vector<float> cs(static_cast<size_t>(hd / 2)), sn(static_cast<size_t>(hd / 2));
      for (size_t i = 0; i < cs.size(); ++i) {
        const double ang = rng.uniform(-300.0f, 300.0f);
        cs[i] = float(std::cos(ang));
        sn[i] = float(std::sin(ang));
      }
      std::vector<double> mag(x.size(), 0);  // |a c| + |b s| per output
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t i = 0; i < hd / 2; ++i) {
          const double a = x[h * stride + i], b = x[h * stride + hd / 2 + i];
          mag[h * stride + i] = std::fabs(a * cs[i]) + std::fabs(b * sn[i]);
          mag[h * stride + hd / 2 + i] = std::fabs(b * cs[i]) + std::fabs(a * sn[i]);
        }
      std::ostringstream lab;
      lab << "rope head_dim=" << hd << " heads=" << nh;
      Compare c{entries, {}, lab.str()};
      for (auto* e : entries) {
        std::vector<float> y = x;
        for (int64_t h = 0; h < nh; ++h)  // the gaps between heads must stay untouched
          for (int64_t g = hd; g < stride; ++g) y[h * stride + g] = kSentinel;
        kernel_fn<RopeFn>(*e)(y.data(), nh, stride, hd, cs.data(), sn.data());
        c.ys.push_back(std::move(y));
      }
      c.check([&](const KernelEntry*, size_t i) { return 2 * kU * mag[i] + kU * std::fabs(c.ys[0][i]) + 1e-35; },
              [](auto, auto, size_t) { return 0.0; });
    }
}

// ---------------------------------------------------------------- SiluMul, Add

TEST_CASE("kernels: SiluMul and Add, every backend against the reference and each other") {
  // silu_mul: exp within 2 ulp, then 1+e, g/(.), *u: |err| <= 8u |ref| (the derivative
  // of g/(1+e^-g) with respect to e^-g never amplifies a relative error beyond 1).
  // Absolute floor 1e-30: for g < -88.3 the F32 exp(-g) overflows and silu gives -0
  // instead of a value below 1e-36. add: one F32 rounding, as the reference: exact.
  Rng rng(13);
  note_skipped(Op::SiluMul);
  WorstReport report;
  note_skipped(Op::Add);
  for (int64_t n : {1, 5, 7, 13, 31, 33, 100, 257, 4097}) {
    std::vector<float> g(static_cast<size_t>(n)), u(static_cast<size_t>(n));
    for (auto& v : g) v = rng.normal(4.0f);
    for (auto& v : u) v = rng.normal();
    const float extremes[] = {-100.0f, 100.0f, -88.5f, 88.5f, 0.0f, -1e-30f, 20.0f, -20.0f};
    for (size_t i = 0; i < std::min<size_t>(g.size(), 8); ++i) g[i] = extremes[i];
    const auto se = runnable(Op::SiluMul, DType::F32);
    Compare c{se, {}, "silu_mul n=" + std::to_string(n)};
    for (auto* e : se) {
      std::vector<float> y(size_t(n) + 1, kSentinel);
      kernel_fn<SiluMulFn>(*e)(g.data(), u.data(), y.data(), n);
      c.ys.push_back(std::move(y));
    }
    c.check([&](const KernelEntry*, size_t i) { return 8 * kU * std::fabs(c.ys[0][i]) + 1e-30; },
            [](auto, auto, size_t) { return 0.0; });

    for (auto* e : runnable(Op::Add, DType::F32)) {
      std::vector<float> y = u;
      y.push_back(kSentinel);
      kernel_fn<AddFn>(*e)(y.data(), g.data(), n);
      int bad = 0;
      for (int64_t i = 0; i < n; ++i) bad += !same_bits(y[i], u[i] + g[i]);
      CHECK_MESSAGE(bad == 0, e->name << " n=" << n);
      CHECK(same_bits(y.back(), kSentinel));
    }
  }
}

// ---------------------------------------------------------------- Attention

namespace {
// One AttentionArgs over n_q rows (q rows qstride apart, outputs ostride apart).
AttentionArgs attn_args(const float* q, const void* k, const void* v, int64_t stride, int64_t n_kv, int64_t hd, float* out,
                        float* scratch, int64_t nq, int64_t qstride, int64_t ostride) {
  AttentionArgs a;
  a.q = q;
  a.k = k;
  a.v = v;
  a.kv_stride = stride;
  a.n_kv = n_kv;
  a.head_dim = hd;
  a.scale = 1.0f / std::sqrt(float(hd));
  a.out = out;
  a.scratch = scratch;
  a.n_q = nq;
  a.q_stride = qstride;
  a.out_stride = ostride;
  return a;
}
}  // namespace

TEST_CASE("kernels: Attention, every backend against the reference and each other") {
  // Tolerance per output i, with p from the reference (in F64) and A_i = sum_j p_j |v_ji|:
  //   scores: head_dim/8 + 16 roundings of terms bounded by scale*sum|q k| = s_abs, so
  //     |ds| <= 8 sqrt(head_dim/8 + 16) u s_abs (statistical, see top); a score error ds
  //     moves p_j by a relative 2 ds (the max subtraction included);
  //   softmax sum and the weighted V sum: n_kv/2 + 16 roundings each of terms bounded
  //     by A_i: 8 sqrt(n_kv/2 + 16) u A_i each; exp and 1/sum: 4u.
  //   |out_i - ref_i| <= (2 |ds| + 16 sqrt(n_kv/2 + 16) u + 4u) A_i + u |ref_i|.
  Rng rng(17);
  note_skipped(Op::Attention);
  WorstReport report;
  // The KV cache in F32, F16 or BF16 (ContextOptions::kv_dtype): the kernels widen the stored
  // elements exactly, so the same bound holds with K and V as stored (rounded here first).
  for (DType kvdt : {DType::F32, DType::F16, DType::BF16}) {
  const auto entries = runnable(Op::Attention, kvdt);
  REQUIRE(entries.size() >= 2);  // the reference and at least one ISA kernel per KV dtype
  // n_q query rows over the same K/V (a GQA group: the kernels take 4, then 2, then 1 at a
  // time), rows and outputs strided, untouched memory between them checked.
  for (int64_t nq : {1, 2, 3, 4, 8})
  for (int64_t hd : {64, 128, 5, 17, 33})
    for (int64_t n_kv : {1, 2, 7, 15, 16, 17, 100, 1000, 3001})
      for (float qscale : {1.0f, 6.0f}) {
        if ((kvdt != DType::F32 || nq != 1) && qscale != 1.0f) continue;
        if (nq != 1 && kvdt != DType::F32 && n_kv > 100) continue;
        const int64_t stride = hd * 3 + 1, qstride = hd + 3, ostride = hd + 5;
        std::vector<float> q(static_cast<size_t>(nq * qstride));
        for (auto& v : q) v = rng.normal(qscale);
        // K/V as the cache stores them (bytes in kvdt), and their exact F32 values
        const Weights kw = make_weights(kvdt, size_t(n_kv * stride + hd), rng), vw = make_weights(kvdt, kw.f.size(), rng);
        const std::vector<float>&kv = kw.f, &vv = vw.f;
        const std::vector<uint8_t>&kb = kw.bytes, &vb = vw.bytes;
        const float scale = 1.0f / std::sqrt(float(hd));
        // reference probabilities (F64) per row for the tolerance
        std::vector<double> A(size_t(nq * hd), 0), rel(static_cast<size_t>(nq));
        for (int64_t r = 0; r < nq; ++r) {
          const float* qr = q.data() + r * qstride;
          std::vector<double> sc(static_cast<size_t>(n_kv));
          double smax = -INFINITY, s_abs = 0;
          for (int64_t j = 0; j < n_kv; ++j) {
            double d = 0, da = 0;
            for (int64_t i = 0; i < hd; ++i) {
              d += double(qr[i]) * kv[j * stride + i];
              da += std::fabs(double(qr[i]) * kv[j * stride + i]);
            }
            sc[j] = d * scale;
            smax = std::max(smax, sc[j]);
            s_abs = std::max(s_abs, da * scale);
          }
          double z = 0;
          for (auto& v : sc) z += (v = std::exp(v - smax));
          for (int64_t i = 0; i < hd; ++i)
            for (int64_t j = 0; j < n_kv; ++j) A[size_t(r * hd + i)] += sc[j] / z * std::fabs(vv[j * stride + i]);
          const double ds = 8 * std::sqrt(double(hd) / 8 + 16) * kU * s_abs;
          rel[size_t(r)] = 2 * ds + 16 * std::sqrt(double(n_kv) / 2 + 16) * kU + 4 * kU;
        }

        std::ostringstream lab;
        lab << "attention " << dtype_name(kvdt) << " KV n_q=" << nq << " head_dim=" << hd << " n_kv=" << n_kv << " |q|~" << qscale;
        Compare c{entries, {}, lab.str()};
        for (auto* e : entries) {
          std::vector<float> out(size_t(nq * ostride) + 1, kSentinel), scratch(static_cast<size_t>(nq * n_kv));
          AttentionArgs a = attn_args(q.data(), kb.data(), vb.data(), stride, n_kv, hd, out.data(), scratch.data(), nq, qstride, ostride);
          REQUIRE(a.scale == scale);
          kernel_fn<AttentionFn>(*e)(a);
          c.ys.push_back(std::move(out));
        }
        c.check([&](const KernelEntry*, size_t i) {
                  const int64_t r = int64_t(i) / ostride, col = int64_t(i) % ostride;
                  return r < nq && col < hd ? rel[size_t(r)] * A[size_t(r * hd + col)] + kU * std::fabs(c.ys[0][i]) + 1e-35 : 0.0;
                },
                [](auto, auto, size_t) { return 0.0; });
      }
  }
}

TEST_CASE("kernels: Attention writes each row's log-sum-exp (for merging position ranges)") {
  Rng rng(23);
  for (DType kvdt : {DType::F32, DType::F16, DType::BF16})
    for (const KernelEntry* e : runnable(Op::Attention, kvdt))
      for (int64_t hd : {64, 17})
        for (int64_t n_kv : {1, 33, 300})
          for (int64_t nq : {1, 3, 4}) {
            const int64_t stride = hd + 1;
            std::vector<float> q(size_t(nq * hd));
            for (auto& v : q) v = rng.normal(2.0f);
            const Weights kw = make_weights(kvdt, size_t(n_kv * stride), rng);
            const std::vector<float>& kf = kw.f;
            const std::vector<uint8_t>& kb = kw.bytes;
            const float scale = 1.0f / std::sqrt(float(hd));
            std::vector<float> out(size_t(nq * hd)), scratch(size_t(nq * n_kv)), lse(size_t(nq), kSentinel);
            AttentionArgs a = attn_args(q.data(), kb.data(), kb.data(), stride, n_kv, hd, out.data(), scratch.data(), nq, hd, hd);
            a.lse = lse.data();
            kernel_fn<AttentionFn>(*e)(a);
            for (int64_t r = 0; r < nq; ++r) {
              double mx = -INFINITY, s_abs = 0;
              std::vector<double> sc(static_cast<size_t>(n_kv));
              for (int64_t j = 0; j < n_kv; ++j) {
                double d = 0, da = 0;
                for (int64_t i = 0; i < hd; ++i) d += double(q[size_t(r * hd + i)]) * kf[size_t(j * stride + i)],
                                                 da += std::fabs(double(q[size_t(r * hd + i)]) * kf[size_t(j * stride + i)]);
                sc[size_t(j)] = d * scale;
                mx = std::max(mx, sc[size_t(j)]);
                s_abs = std::max(s_abs, da * scale);
              }
              double sum = 0;
              for (double v : sc) sum += std::exp(v - mx);
              const double want = mx + std::log(sum);
              const double tol = 8 * std::sqrt(double(hd) + 16) * kU * s_abs + 16 * std::sqrt(double(n_kv) + 16) * kU + 4 * kU * std::fabs(want) + 1e-6;
              CHECK_MESSAGE(std::fabs(double(lse[size_t(r)]) - want) <= tol,
                            e->name << " hd=" << hd << " n_kv=" << n_kv << " n_q=" << nq << " row " << r << ": lse " << lse[size_t(r)]
                                    << " vs " << want);
            }
          }
}

// ---------------------------------------------------------------- selection

namespace {
const Op kOps[] = {Op::Linear, Op::Embedding, Op::RmsNorm, Op::Rope, Op::Attention, Op::SiluMul, Op::Add};
bool has_weights(Op op) { return op == Op::Linear || op == Op::Embedding || op == Op::RmsNorm; }

// The backend this file's kernel set should give for (op, w) under a cap, on this CPU.
Backend expected_backend(Op op, DType w, Backend cap) {
  const bool bf16_linear = op == Op::Linear && w == DType::BF16;
  const bool f16_linear = op == Op::Linear && w == DType::F16;
  for (int b = int(cap); b > int(Backend::Ref); --b) {
    const Backend be = Backend(b);
    if (!backend_hw_supported(be)) continue;
    if (be == Backend::Avx2 || be == Backend::Avx512 || be == Backend::Neon) return be;
    if (bf16_linear && (be == Backend::Avx512Bf16 || be == Backend::Amx)) return be;
    if (f16_linear && be == Backend::Amx) return be;
  }
  return Backend::Ref;
}
}  // namespace

TEST_CASE("kernels: LLRT_ISA-capped selection picks the expected backend for every op") {
  auto& reg = KernelRegistry::global();
  const Backend caps[] = {Backend::Avx2, Backend::AvxVnni, Backend::Avx512, Backend::Avx512Vnni,
                          Backend::Avx512Bf16, Backend::Amx, Backend::Neon, Backend::NeonDotprod,
                          Backend::NeonBf16, Backend::NeonI8mm};
  for (Backend cap : caps) {
    if (!backend_hw_supported(cap)) {
      MESSAGE("cap " << std::string(backend_name(cap)) << ": skipped (CPU lacks it)");
      continue;
    }
    set_isa_cap_for_testing(cap);
    for (Op op : kOps)
      for (DType w : {DType::F32, DType::F16, DType::BF16}) {
        if (!has_weights(op) && w != DType::F32) continue;
        const KernelEntry* e = reg.find_best(op, w, DType::F32);
        REQUIRE_MESSAGE(e, std::string(op_name(op)) << " " << std::string(dtype_name(w)) << " cap " << std::string(backend_name(cap)));
        CHECK_MESSAGE(e->backend == expected_backend(op, w, cap),
                      std::string(op_name(op)) << " " << std::string(dtype_name(w)) << " cap " << std::string(backend_name(cap)) << " chose " << std::string(e->name));
        CHECK(int(e->backend) <= int(cap));
      }
  }
  set_isa_cap_for_testing(Backend::Ref);
  for (Op op : kOps) {
    const KernelEntry* e = reg.find_best(op, DType::F32, DType::F32);
    REQUIRE(e);
    CHECK(e->backend == Backend::Ref);
  }
  reset_isa_cap_for_testing();
}

TEST_CASE("kernels: every op x dtype a Llama model needs has a base-level kernel (AVX2 / NEON) and one on the best backend here") {
  auto& reg = KernelRegistry::global();
#if LLRT_HAVE_ARM_KERNELS
  const Backend base = Backend::Neon;
  const std::string base_suffix = "__neon";
#else
  const Backend base = Backend::Avx2;
  const std::string base_suffix = "__avx2";
#endif
  Backend best = Backend::Ref;
  for (Backend b : {Backend::Avx2, Backend::Avx512, Backend::Avx512Bf16, Backend::Amx, Backend::Neon, Backend::NeonDotprod,
                    Backend::NeonBf16, Backend::NeonI8mm})
    if (backend_hw_supported(b)) best = b;
  MESSAGE("best CPU backend here: " << std::string(backend_name(best)) << " (" << cpu_summary() << ")");
  for (DType w : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<KernelNeed> needs;
    for (Op op : kOps) needs.push_back({op, has_weights(op) ? w : DType::F32, DType::F32, "llama"});
    for (const auto& n : needs) {
      const KernelEntry* a = reg.find(n.op, n.wtype, n.atype, base);
      CHECK_MESSAGE(a, "no " << base_suffix << " kernel for " << std::string(op_name(n.op)) << " " << std::string(dtype_name(n.wtype)));
      if (a) {
        const std::string name = a->name;
        CHECK_MESSAGE(name.find(base_suffix) != std::string::npos, name);
      }
    }
    if (best == Backend::Ref) continue;
    CHECK_NOTHROW(require_kernels(needs));
    for (const auto& v : check_kernels(needs)) {
      REQUIRE(v.chosen);
      CHECK_MESSAGE(v.chosen->backend == expected_backend(v.need.op, v.need.wtype, best),
                    std::string(op_name(v.need.op)) << " " << std::string(dtype_name(v.need.wtype)) << " chose " << std::string(v.chosen->name));
    }
  }
}

// ---------------------------------------------------------------- measured kernel choice

#if LLRT_HAVE_ARM_KERNELS
// Feature-based choice on ARM (CI runs this under qemu -cpu max and -cpu cortex-a72): the
// w8a8 kernel follows FEAT_DotProd / FEAT_I8MM, and the BFDOT pair (Linear BF16w/BF16a) is
// there with FEAT_BF16 and otherwise a missing pair with the typed, specific message.
TEST_CASE("kernels (aarch64): the choice follows HWCAP, a missing pair is a clean error") {
  const auto& reg = KernelRegistry::global();
  const CpuInfo& c = cpu_info();
  MESSAGE("this CPU: " << cpu_summary());
  const KernelEntry* q8 = reg.find_best(Op::Linear, DType::I8, DType::F32);
  REQUIRE(q8);
  CHECK(q8->backend == (backend_hw_supported(Backend::NeonI8mm)      ? Backend::NeonI8mm
                        : c.asimd_dotprod                            ? Backend::NeonDotprod
                                                                     : Backend::Neon));
  const std::vector<KernelNeed> bf16a = {{Op::Linear, DType::BF16, DType::BF16, "a BF16-activation Linear"}};
  if (backend_hw_supported(Backend::NeonBf16)) {
    CHECK_NOTHROW(require_kernels(bf16a));
  } else {
    try {
      require_kernels(bf16a);
      FAIL("BF16w/BF16a accepted on a CPU without FEAT_BF16");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::UnsupportedKernel);
      const std::string m = e.what();
      CHECK(m.find("linear") != std::string::npos);
      CHECK(m.find("neon_bf16 (CPU lacks it)") != std::string::npos);
      MESSAGE(m);
    }
  }
}

TEST_CASE("kernel choice (aarch64): F32 activations within 5%, BFDOT only when measurably faster") {
  auto& reg = KernelRegistry::global();
  const KernelEntry* n = reg.find(Op::Linear, DType::BF16, DType::F32, Backend::Neon);
  const KernelEntry* nb = reg.find(Op::Linear, DType::BF16, DType::BF16, Backend::NeonBf16);
  REQUIRE(n);
  REQUIRE(nb);
  const std::vector<const KernelEntry*> c = {n, nb};
  std::string why;
  CHECK(choose_by_measure(c, {15.0, 15.5}) == n);
  CHECK(choose_by_measure(c, {15.0, 28.0}) == nb);
  CHECK(choose_by_measure(c, {0, 0}, &why) == n);
  CHECK(why == "ISA rank (not measured)");
}
#endif

#if LLRT_HAVE_X86_KERNELS
TEST_CASE("kernel choice: the measured rule picks the fastest, keeps rank within 5%") {
  auto& reg = KernelRegistry::global();
  const KernelEntry* a2 = reg.find(Op::Linear, DType::BF16, DType::F32, Backend::Avx2);
  const KernelEntry* a5 = reg.find(Op::Linear, DType::BF16, DType::F32, Backend::Avx512);
  const KernelEntry* bf = reg.find(Op::Linear, DType::BF16, DType::F32, Backend::Avx512Bf16);
  const KernelEntry* ba = reg.find(Op::Linear, DType::BF16, DType::BF16, Backend::Avx512Bf16);
  REQUIRE(a2);  // x86 builds register all four (usable or not: the rule itself is pure)
  REQUIRE(a5);
  REQUIRE(bf);
  REQUIRE(ba);
  const std::vector<const KernelEntry*> c = {a2, a5, bf, ba};
  std::string why;
  // The Zen 4 numbers (GB/s): AVX2 beats both AVX-512 kernels by > 5%.
  CHECK(choose_by_measure(c, {19.9, 16.5, 15.6, 0.0}, &why) == a2);
  CHECK(why.find("fastest measured") == 0);
  // Within 5% of the fastest: the higher ISA keeps its place (no flapping on noise).
  CHECK(choose_by_measure(c, {15.3, 15.0, 15.1, 0.0}, &why) == bf);
  CHECK(why.find("within 5%") == 0);
  // Rounded activations only when measurably faster; F32-grade preferred on a tie.
  CHECK(choose_by_measure(c, {15.0, 15.0, 15.0, 15.5}) == bf);
  CHECK(choose_by_measure(c, {19.9, 16.5, 15.6, 28.0}) == ba);
  // Unmeasured (rank policy): F32 activations, highest ISA.
  CHECK(choose_by_measure(c, {0, 0, 0, 0}, &why) == bf);
  CHECK(why == "ISA rank (not measured)");
  CHECK(choose_by_measure({a2}, {0}, &why) == a2);
  CHECK(why == "the only usable kernel");
}
#endif

TEST_CASE("kernel choice: measured on this machine, cached, and what the engine binds") {
  const std::string cache = std::string(LLRT_BUILD_DIR) + "/test-kernel-choice.json";
  setenv("LLRT_KERNEL_CACHE", cache.c_str(), 1);
  setenv("LLRT_KERNEL_PROBE_MB", "16", 1);
  set_kernel_choice_for_testing("measured");
  kernel_choice_retune();  // no numbers in memory, no file
  for (DType w : {DType::BF16, DType::F16, DType::F32}) {
    const auto cands = kernel_candidates(Op::Linear, w);
    if (cands.size() < 2) continue;  // one kernel: nothing to measure
    for (Phase ph : {Phase::Decode, Phase::Prefill}) {
      const KernelChoice kc = choose_kernel(Op::Linear, w, ph);
      REQUIRE(kc.entry);
      CHECK(std::find(cands.begin(), cands.end(), kc.entry) != cands.end());
      std::vector<double> m;
      for (auto* e : cands) {
        const KernelMeasure km = kernel_measure(*e);
        CHECK(km.decode_gbs > 0.05);  // a real measurement: some MB/s at least
        CHECK(km.prefill_gflops > 0.05);
        m.push_back(ph == Phase::Decode ? km.decode_gbs : km.prefill_gflops);
      }
      CHECK(choose_by_measure(cands, m) == kc.entry);  // the rule over the cached numbers
      MESSAGE(std::string(dtype_name(w)) << (ph == Phase::Decode ? " decode: " : " prefill: ") << std::string(kc.entry->name) << " [" << kc.why << "]");
    }
    // Each candidate's numbers are in the cache file, keyed by its name.
    std::ifstream f(cache);
    REQUIRE(f.good());
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (auto* e : cands) CHECK_MESSAGE(text.find(e->name) != std::string::npos, e->name);
  }
  // LLRT_ACT=f32: no rounded-activation kernel is a candidate.
  setenv("LLRT_ACT", "f32", 1);
  for (auto* e : kernel_candidates(Op::Linear, DType::BF16)) CHECK(e->atype == DType::F32);
  unsetenv("LLRT_ACT");
  kernel_choice_retune();
  CHECK_FALSE(std::ifstream(cache).good());
  set_kernel_choice_for_testing(nullptr);
  unsetenv("LLRT_KERNEL_CACHE");
  unsetenv("LLRT_KERNEL_PROBE_MB");
}
