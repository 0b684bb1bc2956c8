// Internal: the engine's fork/join, whose join waits for the work, not for the threads.
//
// OpenMP's parallel region ends when every thread of the team has arrived: on a shared
// machine, a thread that another process keeps off its core for a time slice holds every
// other thread (and the token) for that slice, once per region (about 80 regions per token).
// Here the items of a job are taken from one atomic ticket by whichever threads are running,
// and run() returns when every item is DONE: a worker that wakes late finds the ticket spent
// (or moved on to the next job: the ticket carries the job's sequence number) and takes
// nothing, delaying nobody.
//
// Waiting: workers spin briefly (a job usually follows within microseconds during a forward
// pass), then sleep on a futex (std::atomic::wait); the caller spins on the done count and
// yields its core after a while (on a loaded machine the thread it waits for may need it).
#pragma once
#include <cstdint>
#include <functional>

namespace llrt {

class WorkPool {
 public:
  // The process-wide pool (workers start on first use, grow to the largest thread count asked).
  static WorkPool& global();
  // Runs f(item, slot) for every item in [0, n), on at most `threads` threads, the caller
  // being one of them. slot in [0, threads) is unique among the calls running at one time
  // (for per-thread scratch). Returns when all items have finished; their writes are visible.
  // Concurrent run() calls from different threads are serialized (a second caller runs its
  // items alone when the pool is busy: never a deadlock, never a wrong slot).
  void run(int threads, int64_t n, const std::function<void(int64_t item, int slot)>& f);

  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;
  ~WorkPool();

 private:
  WorkPool() = default;
  struct State;
  State* st_ = nullptr;
};

}  // namespace llrt
