// llrt serve: the generation backend behind the HTTP server.
//
// ServeEngine is the whole contract between the server and the engine: submit a sequence
// (prompt ids + generation options), receive its tokens through a callback, cancel it, read
// the load. The HTTP side knows nothing else, so the batched engine (issue 14: a paged KV
// cache, many sequences per forward pass) replaces SessionPoolEngine below without touching
// the server. One OpenAI request with n choices is n sequences.
//
// Two implementations: BatchServeEngine (the CPU: one BatchContext, many sequences per forward
// pass; below, after SessionPoolEngine) and SessionPoolEngine (the CUDA device, which has no
// batch API). SessionPoolEngine: `parallel` Sessions over one shared Model, driven
// by ONE scheduler thread that round-robins token steps across the active sequences
// (sequences join and leave at token boundaries: the shape of the batched engine's loop, one
// sequence per "batch row"). Why not one thread per Session: the forward pass runs on the
// process-wide WorkPool, which runs one job at a time (a second caller's job runs on its own
// thread alone), so concurrent sessions would mostly serialize anyway, with the late ones on one
// core. A prompt is evaluated in chunks of at most `prefill_chunk` tokens per turn, so a long
// prompt delays the others' next tokens by one chunk, not the whole prompt.
//
// Prefix cache: each Session keeps the tokens whose K/V it holds after its sequence ends. A new
// sequence goes to the free Session holding the longest common prefix with its prompt (least
// recently used among ties) and evaluates only the rest (at least the last prompt token, for
// its logits): SeqResult::cached_tokens reports what was reused.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "llrt/batch.h"
#include "llrt/error.h"
#include "llrt/generate.h"
#include "llrt/session.h"
#include "llrt/tokenizer.h"

namespace llrt::serve {

struct SeqRequest {
  std::vector<int32_t> prompt;  // at least one id
  GenerateOptions gen;          // max_new_tokens, sampling (seeded), eos_ids, stop_strings
  int top_logprobs = -1;        // -1: no logprobs; N >= 0: the chosen token's plus the top N
  bool continue_text = false;   // text continues the prompt's (completions) rather than standing alone (chat)
};

struct TokenEvent {
  int32_t id = -1;   // -1: no token, only text (the held text flushed at the end)
  std::string text;  // text that became complete (stop strings held back)
  std::optional<TokenLogprobs> logprobs;
};

enum class SeqEnd { Eos, Length, Stop, Cancelled, ContextFull, Shutdown, Error };
const char* seq_end_name(SeqEnd e);

struct SeqResult {
  SeqEnd end = SeqEnd::Length;
  int64_t prompt_tokens = 0;      // the prompt's length
  int64_t cached_tokens = 0;      // of which reused from the prefix cache (not evaluated)
  int64_t completion_tokens = 0;  // generated (EOS excluded)
  double queue_seconds = 0;       // submit -> admitted to a slot
  double ttft_seconds = 0;        // submit -> first token (0 if none)
  std::string error;              // SeqEnd::Error: what went wrong
};

struct SeqCallbacks {
  // Both are called on the engine's thread: keep them short (push to a queue), never block.
  std::function<void(TokenEvent&&)> on_token;
  std::function<void(const SeqResult&)> on_done;  // exactly once, last
};

struct EngineLoad {
  int64_t active = 0, queued = 0, slots = 0;
};

class ServeEngine {
 public:
  using Handle = uint64_t;
  virtual ~ServeEngine() = default;
  // Queues a sequence; returns at once. Error(InvalidArgument) when it can never run (prompt +
  // max_new_tokens beyond n_ctx(), empty prompt); QueueFull when max_queue are waiting;
  // ShuttingDown after shutdown().
  virtual Handle submit(SeqRequest req, SeqCallbacks cb) = 0;
  // Ends a sequence (queued or running) with SeqEnd::Cancelled at the next token boundary and
  // frees its slot. Unknown or finished handles are ignored.
  virtual void cancel(Handle h) = 0;
  virtual EngineLoad load() const = 0;
  virtual int64_t n_ctx() const = 0;  // positions per sequence (prompt + generated)
  // Stops admitting; ends every queued and running sequence with SeqEnd::Shutdown at its next
  // token boundary; returns when all on_done calls were made and the engine thread is gone.
  virtual void shutdown() = 0;
};

struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShuttingDown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What every engine keeps of a sequence (each engine's Seq extends it).
struct SeqState {
  ServeEngine::Handle handle = 0;
  SeqRequest req;
  SeqCallbacks cb;
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point t_submit;
  SeqResult res;
  std::optional<TokenGenerator> gen;
};

// The submission side both engines share, under one mutex: submit()'s checks and the queue,
// cancel(), load(), shutdown(), and taking cancelled queued sequences out of the queue. The
// engine runs its scheduler on `thread_` and calls shutdown() from its destructor.
template <class Seq>
class QueuedEngine : public ServeEngine {
 public:
  Handle submit(SeqRequest req, SeqCallbacks cb) override;
  void cancel(Handle h) override;
  EngineLoad load() const override;
  int64_t n_ctx() const override { return n_ctx_; }
  void shutdown() override;

 protected:
  QueuedEngine(const Tokenizer* tok, int64_t max_queue) : tok_(tok), max_queue_(max_queue) {}
  virtual int64_t slots() const = 0;  // sequences that may run at once
  virtual void init_seq(Seq&) {}      // the engine's own fields, from seq.req
  // Queued sequences that were cancelled (or every one, when stopping) leave the queue for
  // dropped_ (their on_done is due, outside the lock). Under mu_.
  void drop_cancelled_locked();

  const Tokenizer* tok_;
  int64_t max_queue_ = 64;
  int64_t n_ctx_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Seq>> queue_;     // waiting
  std::vector<std::shared_ptr<Seq>> all_;      // queued + running, for cancel()
  std::vector<std::shared_ptr<Seq>> dropped_;  // left the queue (cancelled, shutdown): on_done due
  Handle next_handle_ = 1;
  bool stopping_ = false;
  std::atomic<int64_t> active_{0};
  std::thread thread_;
};

// Defined and instantiated in engine.cpp, for the two engines' sequence types.
struct PoolSeq;
struct BatchSeq;
extern template class QueuedEngine<PoolSeq>;
extern template class QueuedEngine<BatchSeq>;

struct SessionPoolOptions {
  int parallel = 1;             // Sessions (sequences running at once)
  int64_t max_queue = 64;       // sequences waiting for a Session (beyond: QueueFull)
  int64_t prefill_chunk = 256;  // prompt tokens evaluated per scheduler turn
};

class SessionPoolEngine final : public QueuedEngine<PoolSeq> {
 public:
  // make_session() is called `parallel` times, up front. `tok` for the text of tokens and stop
  // strings (may be null: then no text). The engine owns the sessions.
  SessionPoolEngine(const std::function<std::unique_ptr<Session>()>& make_session, const Tokenizer* tok,
                    const SessionPoolOptions& opt);
  ~SessionPoolEngine() override;

 private:
  using Seq = PoolSeq;
  struct Slot;
  int64_t slots() const override { return int64_t(slots_.size()); }
  void loop();
  void admit_locked();
  bool turn(Slot& s);  // one prefill chunk or one token; false when the sequence ended
  void finish(Slot& s, SeqEnd end, const std::string& error = {});

  SessionPoolOptions opt_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t clock_ = 0;  // LRU stamps
};

// BatchServeEngine: every running sequence in ONE BatchContext (llrt/batch.h: paged KV blocks,
// prefix sharing), driven by one scheduler thread. Each loop iteration is one eval() step:
//   - every running sequence in decode contributes its one next token (oldest first);
//   - sequences still in their prompt contribute chunks in the rows left (at most n_batch rows in
//     all), oldest admitted first: a long prompt is cut into chunks so decodes keep flowing, and
//     the oldest prompt always progresses, so none starves;
//   - sequences join and leave at these step boundaries: a finished or cancelled sequence is
//     closed (its blocks go back to the pool, full ones stay cached for prefixes) before the next
//     step is built.
// Admission (oldest queued first): at most max_running sequences run at once; a sequence joins
// when the pool's free blocks cover its prompt (BatchContext::blocks_needed after
// attach_prefix(), which gives it the cached blocks of its prompt's longest cached prefix:
// SeqResult::cached_tokens) beside what the running sequences' prompts still need, plus, when the
// pool is overcommitted, one spare block per running sequence; otherwise it waits in the queue
// (it never fails for want of blocks).
// max_running = 0 (the default) is BatchOptions::parallel: the pool holds parallel * n_ctx
// positions, so running sequences can always grow to n_ctx; only the copy of a shared cached
// block (a prefix) may then find no block free, and preempt as below.
// max_running > parallel overcommits the pool (many short sequences share it). Then, when a
// running sequence in decode needs a block and none is free or evictable, the YOUNGEST running
// sequence is preempted: closed (its blocks freed; its full blocks stay in the prefix cache) and
// put back at the head of the queue with its prompt + the tokens generated so far; re-admitted
// later, it evaluates them again (most of them usually come back from the prefix cache) and
// continues where it was: its client sees no gap but time. Sequences never overwrite each
// other's K/V (BatchContext guarantees it).
struct BatchServeOptions {
  BatchOptions batch;        // n_ctx (per sequence), parallel (pool size), n_batch, block_size, kv_dtype, prefix_cache
  int64_t max_queue = 64;    // sequences waiting beyond the free slots (beyond: QueueFull)
  int max_running = 0;       // sequences running at once; 0: batch.parallel (no overcommit, no preemption)
};

class BatchServeEngine final : public QueuedEngine<BatchSeq> {
 public:
  // Makes the BatchContext (its pool reserved up front) and starts the scheduler thread. `tok`
  // as for SessionPoolEngine.
  BatchServeEngine(std::shared_ptr<const Model> model, const Tokenizer* tok, const BatchServeOptions& opt);
  ~BatchServeEngine() override;

  // The pool (exactly BatchContext::pool()) and its use, as of the last step boundary.
  struct Stats {
    int64_t blocks_in_use = 0, peak_blocks = 0, free_blocks = 0, sequences = 0;
    int64_t steps = 0, preemptions = 0, max_rows = 0;  // eval() calls, sequences preempted, most rows in one step
  };
  KvPoolSize pool() const { return pool_; }
  Stats stats() const;

 private:
  using Seq = BatchSeq;
  int64_t slots() const override { return max_running_; }
  void init_seq(Seq& s) override;
  void loop();
  void admit_locked();
  bool step();  // one eval() over the running sequences; false when nothing could run
  void preempt_youngest();
  void finish(const std::shared_ptr<Seq>& s, SeqEnd end, const std::string& error = {});
  void update_stats();

  BatchServeOptions opt_;
  int max_running_ = 1;
  KvPoolSize pool_;
  std::unique_ptr<BatchContext> bc_;  // the engine thread's alone (after the constructor)
  std::vector<std::shared_ptr<Seq>> running_;  // admitted, oldest first (engine thread only)
  uint64_t admit_clock_ = 0;           // (queue_: preempted sequences go back at its head)
  Stats stats_;  // under mu_
};

}  // namespace llrt::serve
