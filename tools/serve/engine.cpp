// llrt serve: SessionPoolEngine, the scheduler over `parallel` Sessions (see engine.h).
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

struct SessionPoolEngine::Seq {
  Handle handle = 0;
  SeqRequest req;
  SeqCallbacks cb;
  std::atomic<bool> cancelled{false};
  Clock::time_point t_submit;
  SeqResult res;
  std::optional<TokenGenerator> gen;
  size_t evaluated = 0;  // prompt tokens whose K/V the session holds
  bool prefilled = false;
  int32_t next_id = -1;  // the sampled token, evaluated at the next turn
};

struct SessionPoolEngine::Slot {
  std::unique_ptr<Session> session;
  std::vector<int32_t> cached;  // exactly the tokens whose K/V the session holds
  std::shared_ptr<Seq> seq;     // running here, or null (free)
  uint64_t last_used = 0;
};

SessionPoolEngine::SessionPoolEngine(const std::function<std::unique_ptr<Session>()>& make_session, const Tokenizer* tok,
                                     const SessionPoolOptions& opt)
    : tok_(tok), opt_(opt) {
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

ServeEngine::Handle SessionPoolEngine::submit(SeqRequest req, SeqCallbacks cb) {
  if (req.prompt.empty()) fail(ErrorCode::InvalidArgument, "the prompt has no tokens");
  const int64_t need = int64_t(req.prompt.size()) + std::max<int64_t>(req.gen.max_new_tokens, 0);
  if (need > n_ctx_)
    fail(ErrorCode::InvalidArgument, "the prompt (" + std::to_string(req.prompt.size()) + " tokens) plus max_tokens (" +
                                         std::to_string(req.gen.max_new_tokens) + ") is " + std::to_string(need) +
                                         " tokens, beyond the context of " + std::to_string(n_ctx_) + " per sequence");
  auto seq = std::make_shared<Seq>();
  seq->gen.emplace(tok_, req.prompt, req.gen, req.top_logprobs, req.continue_text);  // validates the options
  seq->req = std::move(req);
  seq->cb = std::move(cb);
  seq->t_submit = Clock::now();
  seq->res.prompt_tokens = int64_t(seq->req.prompt.size());
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw ShuttingDown("the server is shutting down");
    const int64_t free_slots = int64_t(slots_.size()) - active_.load();
    if (int64_t(queue_.size()) >= opt_.max_queue + std::max<int64_t>(free_slots, 0))
      throw QueueFull("the queue is full (" + std::to_string(opt_.max_queue) + " requests waiting): retry later");
    seq->handle = next_handle_++;
    queue_.push_back(seq);
    all_.push_back(seq);
  }
  cv_.notify_all();
  return seq->handle;
}

void SessionPoolEngine::cancel(Handle h) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& s : all_)
      if (s->handle == h) s->cancelled = true;
  }
  cv_.notify_all();
}

EngineLoad SessionPoolEngine::load() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {active_.load(), int64_t(queue_.size()), int64_t(slots_.size())};
}

void SessionPoolEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Queued sequences that were cancelled (or everything, when stopping) leave the queue; the
// rest take free slots, each the free slot with the longest cached prefix of its prompt.
void SessionPoolEngine::admit_locked() {
  for (auto it = queue_.begin(); it != queue_.end() && !queue_.empty();) {
    Seq& q = **it;
    if (!q.cancelled && !stopping_) { ++it; continue; }
    auto seq = *it;
    it = queue_.erase(it);
    all_.erase(std::find(all_.begin(), all_.end(), seq));
    seq->res.end = stopping_ && !q.cancelled ? SeqEnd::Shutdown : SeqEnd::Cancelled;
    dropped_.push_back(seq);
  }
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

}  // namespace llrt::serve
