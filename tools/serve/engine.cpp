// llrt serve: SessionPoolEngine, the scheduler over `parallel` Sessions, and BatchServeEngine, the
// scheduler over one BatchContext (see engine.h).
#include "serve/engine.h"

#include <algorithm>
#include <chrono>

#include "llrt/error.h"

namespace llrt::serve {

using Clock = std::chrono::steady_clock;

const char* seq_end_name(SeqEnd e) {
  switch (e) {
    case SeqEnd::Eos: return "eos";
    case SeqEnd::Length: return "length";
    case SeqEnd::Stop: return "stop string";
    case SeqEnd::Cancelled: return "cancelled";
    case SeqEnd::ContextFull: return "context full";
    case SeqEnd::Shutdown: return "shutdown";
    case SeqEnd::Error: return "error";
  }
  return "?";
}

// ------------------------------------------------------------------ the sequences, QueuedEngine (engine.h)

struct PoolSeq : SeqState {
  size_t evaluated = 0;  // prompt tokens whose K/V the session holds
  bool prefilled = false;
  int32_t next_id = -1;  // the sampled token, evaluated at the next turn
};

struct BatchSeq : SeqState {
  // The prompt, then each sampled token: tokens[evaluated..] are still to be evaluated. After the
  // prompt, the last one is the sampled token whose K/V (and the logits after it) come next.
  std::vector<int32_t> tokens;
  int64_t evaluated = 0;         // positions the sequence holds in the pool
  BatchContext::SeqId id = -1;   // while admitted
  bool admitted_once = false;
  uint64_t order = 0;            // admission stamp: the youngest has the largest
};

template <class Seq>
ServeEngine::Handle QueuedEngine<Seq>::submit(SeqRequest req, SeqCallbacks cb) {
  if (req.prompt.empty()) fail(ErrorCode::InvalidArgument, "the prompt has no tokens");
  const int64_t need = int64_t(req.prompt.size()) + std::max<int64_t>(req.gen.max_new_tokens, 0);
  if (need > n_ctx_ || need < 0)
    fail(ErrorCode::InvalidArgument, "the prompt (" + std::to_string(req.prompt.size()) + " tokens) plus max_tokens (" +
                                         std::to_string(req.gen.max_new_tokens) + ") is " + std::to_string(need) +
                                         " tokens, beyond the context of " + std::to_string(n_ctx_) + " per sequence");
  auto seq = std::make_shared<Seq>();
  seq->gen.emplace(tok_, req.prompt, req.gen, req.top_logprobs, req.continue_text);  // validates the options
  seq->req = std::move(req);
  seq->cb = std::move(cb);
  seq->t_submit = std::chrono::steady_clock::now();
  seq->res.prompt_tokens = int64_t(seq->req.prompt.size());
  init_seq(*seq);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw ShuttingDown("the server is shutting down");
    const int64_t free_slots = slots() - active_.load();
    if (int64_t(queue_.size()) >= max_queue_ + std::max<int64_t>(free_slots, 0))
      throw QueueFull("the queue is full (" + std::to_string(max_queue_) + " requests waiting): retry later");
    seq->handle = next_handle_++;
    queue_.push_back(seq);
    all_.push_back(seq);
  }
  cv_.notify_all();
  return seq->handle;
}
template <class Seq>
void QueuedEngine<Seq>::cancel(Handle h) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& s : all_)
      if (s->handle == h) s->cancelled = true;
  }
  cv_.notify_all();
}
template <class Seq>
EngineLoad QueuedEngine<Seq>::load() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {active_.load(), int64_t(queue_.size()), slots()};
}
template <class Seq>
void QueuedEngine<Seq>::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

template <class Seq>
void QueuedEngine<Seq>::drop_cancelled_locked() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Seq& q = **it;
    if (!q.cancelled && !stopping_) {
      ++it;
      continue;
    }
    auto seq = *it;
    it = queue_.erase(it);
    all_.erase(std::find(all_.begin(), all_.end(), seq));
    seq->res.end = stopping_ && !q.cancelled ? SeqEnd::Shutdown : SeqEnd::Cancelled;
    dropped_.push_back(seq);
  }
}

template class QueuedEngine<PoolSeq>;
template class QueuedEngine<BatchSeq>;

// ------------------------------------------------------------------ SessionPoolEngine

struct SessionPoolEngine::Slot {
  std::unique_ptr<Session> session;
  std::vector<int32_t> cached;  // exactly the tokens whose K/V the session holds
  std::shared_ptr<Seq> seq;     // running here, or null (free)
  uint64_t last_used = 0;
};

SessionPoolEngine::SessionPoolEngine(const std::function<std::unique_ptr<Session>()>& make_session, const Tokenizer* tok,
                                     const SessionPoolOptions& opt)
    : QueuedEngine(tok, opt.max_queue), opt_(opt) {
  if (opt.parallel < 1) fail(ErrorCode::InvalidArgument, "the engine needs at least one session (--parallel >= 1)");
  if (opt.prefill_chunk < 1) fail(ErrorCode::InvalidArgument, "prefill_chunk must be >= 1");
  for (int i = 0; i < opt.parallel; ++i) {
    auto s = std::make_unique<Slot>();
    s->session = make_session();
    n_ctx_ = s->session->n_ctx();
    slots_.push_back(std::move(s));
  }
  thread_ = std::thread([this] { loop(); });
}

SessionPoolEngine::~SessionPoolEngine() { shutdown(); }

// Queued sequences that were cancelled (or everything, when stopping) leave the queue; the
// rest take free slots, each the free slot with the longest cached prefix of its prompt.
void SessionPoolEngine::admit_locked() {
  drop_cancelled_locked();
  while (!queue_.empty()) {
    Slot* best = nullptr;
    size_t best_common = 0;
    const auto& prompt = queue_.front()->req.prompt;
    for (auto& s : slots_) {
      if (s->seq) continue;
      size_t c = 0;
      while (c < s->cached.size() && c < prompt.size() && s->cached[c] == prompt[c]) ++c;
      if (!best || c > best_common || (c == best_common && s->last_used < best->last_used)) {
        best = s.get();
        best_common = c;
      }
    }
    if (!best) return;
    best->seq = queue_.front();
    queue_.pop_front();
    ++active_;
    Seq& q = *best->seq;
    if (best_common == prompt.size()) --best_common;  // at least one token to evaluate: its logits
    best->session->truncate(int64_t(best_common));
    best->cached.resize(best_common);
    q.evaluated = best_common;
    q.res.cached_tokens = int64_t(best_common);
    q.res.queue_seconds = std::chrono::duration<double>(Clock::now() - q.t_submit).count();
  }
}

void SessionPoolEngine::loop() {
  size_t rr = 0;  // round-robin start
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (active_ == 0)
        cv_.wait(lk, [&] {
          if (stopping_) return true;
          for (auto& q : queue_)
            if (q->cancelled) return true;
          return !queue_.empty() && active_ < int64_t(slots_.size());
        });
      admit_locked();
    }
    for (auto& seq : dropped_) {
      if (seq->cb.on_done) seq->cb.on_done(seq->res);
    }
    dropped_.clear();
    bool stop_now;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_now = stopping_;
      if (stopping_ && active_ == 0 && queue_.empty()) return;
    }
    // One turn for every running sequence, starting one further each round.
    const size_t n = slots_.size();
    for (size_t k = 0; k < n; ++k) {
      Slot& s = *slots_[(rr + k) % n];
      if (!s.seq) continue;
      if (s.seq->cancelled) finish(s, SeqEnd::Cancelled);
      else if (stop_now) finish(s, SeqEnd::Shutdown);
      else turn(s);
    }
    rr = (rr + 1) % n;
  }
}

bool SessionPoolEngine::turn(Slot& s) {
  Seq& q = *s.seq;
  TokenGenerator& gen = *q.gen;
  TokenGenerator::Step step;
  try {
    std::span<const int32_t> toks;
    if (!q.prefilled) {
      const size_t n = std::min<size_t>(size_t(opt_.prefill_chunk), q.req.prompt.size() - q.evaluated);
      toks = {q.req.prompt.data() + q.evaluated, n};
      if (q.evaluated + n < q.req.prompt.size()) {  // more prompt to come: no token yet
        s.session->eval(toks);
        s.cached.insert(s.cached.end(), toks.begin(), toks.end());
        q.evaluated += n;
        return true;
      }
    } else {
      toks = {&q.next_id, 1};
    }
    if (gen.argmax_only()) step = gen.next_argmax(s.session->eval_greedy(toks));
    else step = gen.next(s.session->eval(toks));
    s.cached.insert(s.cached.end(), toks.begin(), toks.end());
    if (!q.prefilled) q.evaluated = q.req.prompt.size();
    q.prefilled = true;
  } catch (const std::exception& e) {  // the session is unchanged by a failed eval; start it afresh anyway
    s.session->reset();
    s.cached.clear();
    finish(s, SeqEnd::Error, e.what());
    return false;
  }
  if (step.id >= 0) {
    if (q.res.completion_tokens++ == 0) q.res.ttft_seconds = std::chrono::duration<double>(Clock::now() - q.t_submit).count();
    if (q.cb.on_token) q.cb.on_token(TokenEvent{step.id, std::move(step.text), std::move(step.logprobs)});
  }
  if (step.done) {
    finish(s, step.reason == StopReason::Eos ? SeqEnd::Eos : step.reason == StopReason::StopString ? SeqEnd::Stop : SeqEnd::Length);
    return false;
  }
  if (s.session->n_past() >= s.session->n_ctx()) {
    finish(s, SeqEnd::ContextFull);
    return false;
  }
  q.next_id = step.id;
  return true;
}

void SessionPoolEngine::finish(Slot& s, SeqEnd end, const std::string& error) {
  std::shared_ptr<Seq> seq = std::move(s.seq);
  s.seq.reset();
  seq->res.end = end;
  seq->res.error = error;
  if (end != SeqEnd::Cancelled && end != SeqEnd::Error) {  // the held text (not after a stop string)
    std::string rest = seq->gen->finish();
    if (!rest.empty() && seq->cb.on_token) seq->cb.on_token(TokenEvent{-1, std::move(rest), std::nullopt});
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    s.last_used = ++clock_;
    all_.erase(std::find(all_.begin(), all_.end(), seq));
    --active_;
  }
  if (seq->cb.on_done) seq->cb.on_done(seq->res);
}

// ------------------------------------------------------------------------------------------------
// BatchServeEngine (see engine.h)
// ------------------------------------------------------------------------------------------------


BatchServeEngine::BatchServeEngine(std::shared_ptr<const Model> model, const Tokenizer* tok, const BatchServeOptions& opt)
    : QueuedEngine(tok, opt.max_queue), opt_(opt) {
  if (opt.batch.parallel < 1) fail(ErrorCode::InvalidArgument, "the engine needs at least one sequence (--parallel >= 1)");
  if (opt.max_running < 0) fail(ErrorCode::InvalidArgument, "max_running must be >= 0");
  max_running_ = opt.max_running > 0 ? opt.max_running : opt.batch.parallel;
  bc_ = std::make_unique<BatchContext>(std::move(model), opt.batch);
  n_ctx_ = bc_->n_ctx();
  pool_ = bc_->pool();
  update_stats();
  thread_ = std::thread([this] { loop(); });
}

BatchServeEngine::~BatchServeEngine() { shutdown(); }

void BatchServeEngine::init_seq(Seq& s) { s.tokens = s.req.prompt; }

BatchServeEngine::Stats BatchServeEngine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void BatchServeEngine::update_stats() {  // engine thread (or the constructor)
  Stats s;
  s.blocks_in_use = bc_->blocks_in_use();
  s.peak_blocks = bc_->peak_blocks();
  s.free_blocks = bc_->free_blocks();
  s.sequences = bc_->sequences();
  std::lock_guard<std::mutex> lk(mu_);
  s.steps = stats_.steps;
  s.preemptions = stats_.preemptions;
  s.max_rows = stats_.max_rows;
  stats_ = s;
}

// Queued sequences that were cancelled (or everything, when stopping) leave the queue; then the
// oldest queued sequences join while a slot is free and the pool has room for their prompt.
void BatchServeEngine::admit_locked() {
  drop_cancelled_locked();
  const bool overcommit = max_running_ > opt_.batch.parallel;
  while (!queue_.empty() && int64_t(running_.size()) < max_running_) {
    auto seq = queue_.front();
    Seq& q = *seq;
    BatchContext::SeqId id = bc_->open();
    // The cached prefix (attach_prefix leaves a free block for the copy of a shared last block,
    // so a sequence alone in the pool always fits).
    const int64_t have = opt_.batch.prefix_cache ? bc_->attach_prefix(id, q.tokens) : 0;
    const int64_t need = bc_->blocks_needed(id, int64_t(q.tokens.size()) - have);
    const int64_t spare = overcommit ? int64_t(running_.size()) : 0;
    int64_t reserved = 0;  // what the running sequences' prompts still take
    for (const auto& r : running_) reserved += bc_->blocks_needed(r->id, int64_t(r->tokens.size()) - r->evaluated);
    if (!running_.empty() && bc_->free_blocks() - reserved < need + spare) {  // room later, when a sequence leaves
      bc_->close(id);
      return;
    }
    queue_.pop_front();
    q.id = id;
    q.evaluated = have;
    q.order = ++admit_clock_;
    if (!q.admitted_once) {
      q.admitted_once = true;
      q.res.cached_tokens = have;
      q.res.queue_seconds = std::chrono::duration<double>(Clock::now() - q.t_submit).count();
    }
    running_.push_back(seq);
    ++active_;
  }
}

void BatchServeEngine::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (running_.empty()) cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      admit_locked();
    }
    for (auto& seq : dropped_) {
      if (seq->res.end == SeqEnd::Shutdown && seq->gen && !seq->gen->tokens().empty()) {  // a preempted one: its held text
        std::string rest = seq->gen->finish();
        if (!rest.empty() && seq->cb.on_token) seq->cb.on_token(TokenEvent{-1, std::move(rest), std::nullopt});
      }
      if (seq->cb.on_done) seq->cb.on_done(seq->res);
    }
    dropped_.clear();
    bool stop_now;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_now = stopping_;
      if (stopping_ && running_.empty() && queue_.empty()) return;
    }
    for (auto running = running_; auto& s : running) {  // leave at this boundary
      if (s->cancelled) finish(s, SeqEnd::Cancelled);
      else if (stop_now) finish(s, SeqEnd::Shutdown);
    }
    if (!running_.empty()) step();
  }
}

void BatchServeEngine::preempt_youngest() {
  auto it = std::max_element(running_.begin(), running_.end(), [](const auto& a, const auto& b) { return a->order < b->order; });
  std::shared_ptr<Seq> s = *it;
  running_.erase(it);
  bc_->close(s->id);
  s->id = -1;
  s->evaluated = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_front(s);
    --active_;
    ++stats_.preemptions;
  }
}

bool BatchServeEngine::step() {
  struct Planned {
    std::shared_ptr<Seq> seq;
    int64_t n = 0;
  };
  std::vector<Planned> plan;
  std::vector<BatchContext::Item> items;
  const int64_t n_batch = bc_->n_batch(), bs = std::max<int64_t>(pool_.block_size, 1);
  for (;;) {
    if (running_.empty()) return false;
    plan.clear();
    int64_t avail = bc_->free_blocks(), rows = 0;
    bool decode_blocked = false;
    for (const auto& s : running_) {  // decodes, oldest first (running_ is in admission order)
      if (int64_t(s->tokens.size()) - s->evaluated != 1 || rows >= n_batch) continue;
      const int64_t nb = bc_->blocks_needed(s->id, 1);
      if (nb > avail) {
        decode_blocked = true;
        continue;
      }
      avail -= nb;
      plan.push_back({s, 1});
      ++rows;
    }
    for (const auto& s : running_) {  // prompt chunks in the rows left, oldest first
      const int64_t left = int64_t(s->tokens.size()) - s->evaluated;
      if (left <= 1 || rows >= n_batch) continue;
      int64_t n = std::min(left, n_batch - rows);
      const int64_t fit = (bs - s->evaluated % bs) % bs + avail * bs;  // the room in its last block + the free blocks
      n = std::min(n, fit);
      while (n > 0 && bc_->blocks_needed(s->id, n) > avail) --n;
      if (n <= 0) continue;  // waits for blocks
      avail -= bc_->blocks_needed(s->id, n);
      plan.push_back({s, n});
      rows += n;
    }
    if (decode_blocked || plan.empty()) {  // a running sequence cannot go on: make room
      preempt_youngest();
      continue;
    }
    items.clear();
    for (const auto& p : plan) {
      const bool last = p.seq->evaluated + p.n == int64_t(p.seq->tokens.size());
      items.push_back({p.seq->id, std::span<const int32_t>(p.seq->tokens).subspan(size_t(p.seq->evaluated), size_t(p.n)), last});
    }
    try {
      bc_->eval(items);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::ContextOverflow && running_.size() > 1) {  // the pool (a plan is an estimate): make room
        preempt_youngest();
        continue;
      }
      if (e.code() == ErrorCode::NonFinite && bc_->failed_item() >= 0 && plan.size() > 1) {
        finish(plan[size_t(bc_->failed_item())].seq, SeqEnd::Error, e.what());  // the others are unchanged: go on
        update_stats();
        return true;
      }
      for (const auto& p : plan) finish(p.seq, SeqEnd::Error, e.what());  // nothing changed; these cannot run
      update_stats();
      return false;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      ++stats_.steps;
      stats_.max_rows = std::max(stats_.max_rows, rows);
    }
    break;
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    Seq& q = *plan[i].seq;
    q.evaluated += plan[i].n;
    if (!items[i].logits) continue;
    TokenGenerator& gen = *q.gen;
    TokenGenerator::Step st;
    try {
      const std::span<const float> lg = bc_->logits(i);
      if (gen.argmax_only()) st = gen.next_argmax(int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin()));
      else st = gen.next(lg);
    } catch (const std::exception& e) {
      finish(plan[i].seq, SeqEnd::Error, e.what());
      continue;
    }
    if (st.id >= 0) {
      if (q.res.completion_tokens++ == 0) q.res.ttft_seconds = std::chrono::duration<double>(Clock::now() - q.t_submit).count();
      if (q.cb.on_token) q.cb.on_token(TokenEvent{st.id, std::move(st.text), std::move(st.logprobs)});
    }
    if (st.done) {
      finish(plan[i].seq, st.reason == StopReason::Eos ? SeqEnd::Eos : st.reason == StopReason::StopString ? SeqEnd::Stop : SeqEnd::Length);
      continue;
    }
    if (q.evaluated >= n_ctx_) {
      finish(plan[i].seq, SeqEnd::ContextFull);
      continue;
    }
    q.tokens.push_back(st.id);
  }
  update_stats();
  return true;
}

void BatchServeEngine::finish(const std::shared_ptr<Seq>& s, SeqEnd end, const std::string& error) {
  std::shared_ptr<Seq> seq = s;  // `s` may be an element of running_
  auto it = std::find(running_.begin(), running_.end(), seq);
  if (it != running_.end()) running_.erase(it);
  if (seq->id >= 0) {
    bc_->close(seq->id);
    seq->id = -1;
  }
  seq->res.end = end;
  seq->res.error = error;
  if (end != SeqEnd::Cancelled && end != SeqEnd::Error) {  // the held text (not after a stop string)
    std::string rest = seq->gen->finish();
    if (!rest.empty() && seq->cb.on_token) seq->cb.on_token(TokenEvent{-1, std::move(rest), std::nullopt});
  }
  update_stats();
  {
    std::lock_guard<std::mutex> lk(mu_);
    all_.erase(std::find(all_.begin(), all_.end(), seq));
    --active_;
  }
  if (seq->cb.on_done) seq->cb.on_done(seq->res);
}

}  // namespace llrt::serve
