// The decode kernels' one software prefetch: the next tile's weight row at the k being read.
//
// A tile reads NB weight rows side by side; the hardware prefetcher restarts at every 4 KiB
// page (every 1-2 rows of a Llama Linear), so without help each new tile's first lines arrive
// late. One prefetch per cache line of the row NB rows further (the same row of the next
// tile) puts them in flight a whole tile early. Into L2 (prefetcht1) where the caller issues
// one per line: L1 fill buffers then no longer cap the lines in flight (paired A/B on the
// project VM, decode tg64: 1B BF16 avx512_bf16 +2.4-3.4%, AVX2 BF16 +4.0-4.7%, I8 ~+1%).
// Callers that issue one per 16/32-byte step keep prefetcht0 (AVX2 F16 decode: t1 -1..-3%).
// Never faults, even past the end of the weights. Header-only, anonymous namespace: one copy
// per ISA translation unit.
#pragma once

namespace llrt::kernels {
namespace {

template <bool kIntoL2>
inline void prefetch_next_tile(const void* p) {
  __builtin_prefetch(p, 0, kIntoL2 ? 2 : 3);
}

}  // namespace
}  // namespace llrt::kernels
