// llrt: a STREAM-like memory read-bandwidth probe, so benchmarks can state the limit
// measured in the same run as the engine (this machine is shared and noisy).
#pragma once
#include <cstdint>

namespace llrt {
// Reads a `bytes` buffer (huge pages advised; allocated and touched once, not timed)
// `reps` times with `threads` OpenMP threads (each a contiguous slice; AVX-512 64-byte
// loads with prefetch where the CPU has them, else AVX2, else scalar); returns the best
// GB/s (1e9 B/s).
double measure_read_bandwidth(uint64_t bytes = 1ull << 30, int threads = 0, int reps = 10);
}  // namespace llrt
