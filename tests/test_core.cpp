// Core: dtypes, tensors, CPU detection, registry basics.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "src/engine/cpu.h"
#include "llrt/dtype.h"
#include "llrt/error.h"
#include "src/engine/kernels.h"
#include "llrt/tensor.h"
#include "src/engine/work_pool.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

using namespace llrt;

TEST_CASE("dtype names parse and round-trip") {
  for (const char* n : {"F32", "F16", "BF16", "I8", "I32", "U8", "F64", "I16", "I64", "BOOL", "F8_E4M3", "F8_E5M2"}) {
    auto t = parse_dtype(n);
    REQUIRE(t.has_value());
    CHECK(std::string(dtype_name(*t)) == n);
  }
  CHECK(!parse_dtype("FLOAT32").has_value());
  CHECK(!parse_dtype("").has_value());
  CHECK(dtype_is_compute(DType::BF16));
  CHECK(!dtype_is_compute(DType::F64));
  CHECK(dtype_size(DType::BF16) == 2);
  CHECK(dtype_size(DType::I64) == 8);
}

TEST_CASE("bf16 and f16 conversions round to nearest even") {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  // 1 + 2^-8 is exactly halfway between bf16 1.0 and 1+2^-7: ties to even -> 1.0
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  // every finite f16 round-trips exactly through f32
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;
    float f = f16_to_f32(uint16_t(h));
    CHECK_MESSAGE(f32_to_f16(f) == h, "h=" << h);
  }
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f32_to_f16(65520.0f) == 0x7c00);  // rounds to inf
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
}

TEST_CASE("count_non_finite finds NaN/Inf by exponent bits in every float dtype, none in integers") {
  const float nan = std::nanf(""), inf = INFINITY;
  std::vector<float> f32 = {1.0f, -0.0f, 3.0e38f, 1e-45f, nan, 2.0f, -inf};
  int64_t first = -2;
  CHECK(count_non_finite(DType::F32, f32.data(), int64_t(f32.size()), &first) == 2);
  CHECK(first == 4);
  std::vector<uint16_t> b16, h16;
  for (float v : f32) b16.push_back(f32_to_bf16(v)), h16.push_back(f32_to_f16(v));
  CHECK(count_non_finite(DType::BF16, b16.data(), int64_t(b16.size()), &first) == 2);  // 3.0e38 is finite in BF16
  CHECK(first == 4);
  CHECK(count_non_finite(DType::F16, h16.data(), int64_t(h16.size()), &first) == 3);   // 3.0e38 rounds to F16 Inf
  CHECK(first == 2);
  const std::vector<double> f64 = {0.0, 1e308, -INFINITY};
  CHECK(count_non_finite(DType::F64, f64.data(), 3, &first) == 1);
  CHECK(first == 2);
  const std::vector<int8_t> i8 = {-1, -128, 127};  // all bits set is -1, not a NaN
  CHECK(count_non_finite(DType::I8, i8.data(), 3, &first) == 0);
  CHECK(first == -1);
  CHECK(count_non_finite(DType::F32, f32.data(), 4) == 0);
}

TEST_CASE("tensor owns aligned memory and views do not copy") {
  Tensor t = Tensor::empty(DType::BF16, {3, 5});
  CHECK(t.numel() == 15);
  CHECK(t.nbytes() == 30);
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  CHECK(t.is_contiguous());
  static const float buf[4] = {1, 2, 3, 4};
  Tensor v = Tensor::view(DType::F32, {2, 2}, buf, nullptr);
  CHECK(v.data() == buf);
  CHECK_THROWS_AS(v.mutable_data(), Error);
  CHECK(v.describe() == "F32[2, 2]");
}

TEST_CASE("cpu detection is consistent with the backends it reports") {
  const CpuInfo& c = cpu_info();
  CHECK(c.logical_cores >= 1);
  CHECK(c.physical_cores >= 1);
  CHECK(c.mem_total_bytes > 0);
  if (backend_hw_supported(Backend::Avx512)) CHECK(backend_hw_supported(Backend::Avx2));
  if (c.avx512f) CHECK(c.os_avx512);
  // aarch64 levels: each implies the ones below; an x86 build never reports them (and back).
  if (backend_hw_supported(Backend::NeonI8mm)) CHECK(backend_hw_supported(Backend::NeonBf16));
  if (backend_hw_supported(Backend::NeonBf16)) CHECK(backend_hw_supported(Backend::NeonDotprod));
  if (backend_hw_supported(Backend::NeonDotprod)) CHECK(backend_hw_supported(Backend::Neon));
  CHECK(!(backend_hw_supported(Backend::Neon) && backend_hw_supported(Backend::Avx2)));
  CHECK(backend_hw_supported(Backend::Ref));
  CHECK(!cpu_summary().empty());
}

TEST_CASE("LLRT_ISA cap limits usable backends") {
  set_isa_cap_for_testing(Backend::Avx2);
  CHECK(!backend_usable(Backend::Avx512));
  CHECK(backend_usable(Backend::Avx2) == backend_hw_supported(Backend::Avx2));
  reset_isa_cap_for_testing();
  Backend b;
  CHECK(parse_backend("avx512_bf16", &b));
  CHECK(b == Backend::Avx512Bf16);
  CHECK(!parse_backend("sse9", &b));
}

TEST_CASE("registry never picks the scalar reference silently") {
  auto& reg = KernelRegistry::global();
  REQUIRE(reg.find(Op::Linear, DType::BF16, DType::F32, Backend::Ref) != nullptr);
  const KernelEntry* e = reg.find_best(Op::Linear, DType::BF16, DType::F32);
  if (e) CHECK(e->backend != Backend::Ref);
  set_isa_cap_for_testing(Backend::Ref);
  e = reg.find_best(Op::Linear, DType::BF16, DType::F32);
  REQUIRE(e);
  CHECK(e->backend == Backend::Ref);
  set_isa_cap_for_testing(Backend::Ref, false);  // LLRT_ISA=none
  CHECK(reg.find_best(Op::Linear, DType::BF16, DType::F32) == nullptr);
  reset_isa_cap_for_testing();
  // A pair nobody registers fails with a message naming op, dtype and hardware.
  std::vector<KernelNeed> needs = {{Op::Linear, DType::F64, DType::F32, "test.weight"}};
  try {
    require_kernels(needs);
    FAIL("expected UnsupportedKernel");
  } catch (const Error& err) {
    CHECK(err.code() == ErrorCode::UnsupportedKernel);
    std::string m = err.what();
    CHECK(m.find("linear") != std::string::npos);
    CHECK(m.find("F64") != std::string::npos);
    CHECK(m.find("test.weight") != std::string::npos);
  }
}

// ---------------------------------------------------------------- the engine's work pool

TEST_CASE("work pool: every item once, slots unique while running, results visible, jobs back to back") {
  WorkPool& pool = WorkPool::global();
  for (int threads : {1, 2, 3, 4, 8}) {  // more threads than this machine's cores too
    for (int64_t n : {1, 2, 7, 64, 1000}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);  // plain ints: the join must publish the writes
      std::vector<std::atomic<int>> busy(static_cast<size_t>(threads));
      std::atomic<int> clash{0}, bad_slot{0};
      pool.run(threads, n, [&](int64_t i, int slot) {
        if (slot < 0 || slot >= threads) {
          bad_slot.fetch_add(1);
          return;
        }
        if (busy[size_t(slot)].fetch_add(1) != 0) clash.fetch_add(1);  // two items on one slot at once
        hits[size_t(i)] += 1;
        busy[size_t(slot)].fetch_sub(1);
      });
      CHECK(bad_slot.load() == 0);
      CHECK(clash.load() == 0);
      CHECK(std::count(hits.begin(), hits.end(), 1) == n);
    }
  }
  // Many tiny jobs in a row: a worker that wakes late must not take an item of a later job
  // with the earlier job's function (each job checks its own tag).
  // A stale call (job j's function run again after run() returned, or for job j+1's ticket)
  // shows as a count other than the job's size. Sizes alternate small and large: a worker that
  // wakes late for a small job must not take the large next job's items under the old ticket.
  std::vector<std::atomic<int>> counts(20000);
  for (int job = 0; job < 20000; ++job)
    pool.run(4, job % 2 ? 64 : 2, [&, job](int64_t, int) { counts[size_t(job)].fetch_add(1); });
  int off = 0;
  for (int job = 0; job < 20000; ++job) off += counts[size_t(job)].load() != (job % 2 ? 64 : 2);
  CHECK(off == 0);
  // run() from inside an item runs inline (no deadlock on the pool's own lock).
  std::atomic<int> inner{0};
  pool.run(2, 4, [&](int64_t, int) { pool.run(2, 3, [&](int64_t, int) { inner.fetch_add(1); }); });
  CHECK(inner.load() == 12);
}

TEST_CASE("work pool: two callers at once both finish, each item once") {
  WorkPool& pool = WorkPool::global();
  std::vector<int> a(5000, 0), b(5000, 0);
  std::thread other([&] {
    for (int r = 0; r < 50; ++r) pool.run(3, 100, [&](int64_t i, int) { b[size_t(r * 100 + i)] += 1; });
  });
  for (int r = 0; r < 50; ++r) pool.run(3, 100, [&](int64_t i, int) { a[size_t(r * 100 + i)] += 1; });
  other.join();
  CHECK(std::count(a.begin(), a.end(), 1) == 5000);
  CHECK(std::count(b.begin(), b.end(), 1) == 5000);
}
