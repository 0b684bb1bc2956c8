// The load progress line (run_common.h: progress_line): shown on a terminal only, and only once a
// load has taken a second, so fast loads print nothing; redrawn in place (\r) at most 10 times a
// second, ended with a newline. LLRT_PROGRESS_AFTER=SECONDS changes the second (the tests use 0).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "run_common.h"

namespace llrt::cli {

std::function<void(const LoadProgress&)> progress_line(double after_seconds) {
  if (const char* e = std::getenv("LLRT_PROGRESS_AFTER")) after_seconds = std::atof(e);  // tests: 0 shows every load
  using Clock = std::chrono::steady_clock;
  struct State {
    Clock::time_point start = Clock::now(), last{};
    bool shown = false, ended = false;
  };
  auto st = std::make_shared<State>();
  return [st, after_seconds](const LoadProgress& p) {
    const auto now = Clock::now();
    const double t = std::chrono::duration<double>(now - st->start).count();
    const bool done = p.bytes_total > 0 && p.bytes_done >= p.bytes_total && p.shard >= p.shards;
    if (st->ended || (!st->shown && t < after_seconds)) return;
    if (!done && st->shown && now - st->last < std::chrono::milliseconds(100)) return;
    st->shown = true;
    st->last = now;
    std::fprintf(stderr, "\rllrt: loading shard %d/%d  %.2f / %.2f GB  %.2f GB/s   ", p.shard, p.shards, double(p.bytes_done) / 1e9,
                 double(p.bytes_total) / 1e9, t > 0 ? double(p.bytes_done) / 1e9 / t : 0.0);
    if (done) {
      std::fputc('\n', stderr);
      st->ended = true;
    }
    std::fflush(stderr);
  };
}

}  // namespace llrt::cli
