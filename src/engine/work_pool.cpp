#include "work_pool.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LLRT_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define LLRT_PAUSE() __asm__ __volatile__("yield")
#else
#define LLRT_PAUSE() ((void)0)
#endif

namespace llrt {

namespace {
// Futex on the job sequence word (std::atomic::wait of GCC 12's libstdc++ lost wake-ups here).
void futex_wait(std::atomic<uint32_t>* a, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* a) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}
constexpr int kWorkerSpins = 1 << 11;  // ~0.1-0.3 ms of pause (40-140 cycles each) before a worker sleeps
constexpr int kCallerSpins = 1 << 12;  // then the caller yields between checks
thread_local bool t_in_job = false;    // a run() from inside an item runs inline (no self-deadlock)
using Fn = std::function<void(int64_t, int)>;
}  // namespace

struct WorkPool::State {
  std::mutex run_mu;                  // one job at a time
  std::mutex grow_mu;
  std::vector<std::thread> workers;   // worker w has slot w + 1
  std::atomic<uint32_t> seq{0};       // job number; workers wait on it
  std::atomic<uint64_t> ticket{0};    // (seq << 32) | next item
  std::atomic<int64_t> done{0};       // items finished in the current job
  std::atomic<const Fn*> fn{nullptr};
  std::atomic<int64_t> n{0};
  std::atomic<int> threads{0};
  std::atomic<int> sleepers{0};       // workers in seq.wait (the caller notifies only then)

  // Takes and runs items of job s while the ticket belongs to it. Returns the count run.
  int64_t work(uint32_t s, const Fn* f, int64_t total, int slot) {
    int64_t ran = 0;
    t_in_job = true;  // items that call run() again run inline
    uint64_t t = ticket.load(std::memory_order_acquire);
    for (;;) {
      if (uint32_t(t >> 32) != s || int64_t(t & 0xffffffffu) >= total) break;
      if (!ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      (*f)(int64_t(t & 0xffffffffu), slot);
      ++ran;
      done.fetch_add(1, std::memory_order_acq_rel);
      t = ticket.load(std::memory_order_acquire);
    }
    t_in_job = false;
    return ran;
  }

  void worker_main(int slot) {
    uint32_t seen = seq.load(std::memory_order_acquire);
    for (;;) {
      uint32_t s = seq.load(std::memory_order_acquire);
      for (int i = 0; s == seen && i < kWorkerSpins; ++i) {
        LLRT_PAUSE();
        s = seq.load(std::memory_order_acquire);
      }
      if (s == seen) {
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        futex_wait(&seq, seen);  // returns at once if seq moved meanwhile
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      seen = s;
      // The job's fields may already belong to a later job: the ticket's sequence check in
      // work() refuses every item then, so a stale read runs nothing.
      const Fn* f = fn.load(std::memory_order_acquire);
      const int64_t total = n.load(std::memory_order_acquire);
      if (slot >= threads.load(std::memory_order_acquire) || !f) continue;
      work(s, f, total, slot);
    }
  }
};

WorkPool& WorkPool::global() {
  // Never destroyed: its workers sleep until the process exits, and no static destructor
  // elsewhere can find it gone.
  static WorkPool* p = new WorkPool;
  return *p;
}

WorkPool::~WorkPool() = default;  // (the global pool is never destroyed)

void WorkPool::run(int threads, int64_t n, const Fn& f) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1 || t_in_job || n >= int64_t(0xffffffffu)) {  // (items are 32-bit in the ticket)
    for (int64_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
  static std::once_flag once;
  std::call_once(once, [this] { st_ = new State; });
  State& s = *st_;
  std::unique_lock<std::mutex> lk(s.run_mu, std::try_to_lock);
  if (!lk.owns_lock()) {  // another thread's job is running: do ours alone
    for (int64_t i = 0; i < n; ++i) f(i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> g(s.grow_mu);
    while (int(s.workers.size()) < threads - 1) {
      const int slot = int(s.workers.size()) + 1;
      s.workers.emplace_back([&s, slot] { s.worker_main(slot); });
    }
  }
  // Publish: fields first, then the ticket for the new sequence, then the sequence.
  const uint32_t seq = s.seq.load(std::memory_order_relaxed) + 1;
  s.fn.store(&f, std::memory_order_release);
  s.n.store(n, std::memory_order_release);
  s.threads.store(threads, std::memory_order_release);
  s.done.store(0, std::memory_order_release);
  s.ticket.store(uint64_t(seq) << 32, std::memory_order_release);
  s.seq.store(seq, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) > 0) futex_wake_all(&s.seq);
  s.work(seq, &f, n, 0);
  for (int i = 0; s.done.load(std::memory_order_acquire) < n; ++i) {
    if (i < kCallerSpins) LLRT_PAUSE();
    else sched_yield();
  }
  // Spend this job's ticket for good before the next job's fields are written: a worker that
  // woke for this job and reads the next job's fn/n then finds no item left under this
  // sequence (it cannot run the next job's items, or this job's function after it is gone).
  s.ticket.store((uint64_t(seq) << 32) | 0xffffffffu, std::memory_order_release);
  s.fn.store(nullptr, std::memory_order_release);
}

}  // namespace llrt
