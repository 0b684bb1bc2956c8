// llrt serve: routes, authentication, SSE streaming, errors (see server.h).
#include "serve/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "llrt/error.h"

namespace llrt::serve {

using Clock = std::chrono::steady_clock;

namespace {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.body()); }

// Constant-time comparison of the presented key with the configured one.
bool same_key(const std::string& a, const std::string& b) {
  unsigned char d = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) d |= (unsigned char)(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return d == 0 && !b.empty();
}

std::string route_of(const std::string& path) {
  static const char* known[] = {"/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions", "/v1/models",
                                "/models", "/health", "/v1/health", "/metrics", "/tokenize", "/detokenize"};
  for (const char* k : known)
    if (path == k) return k;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

std::string random_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lk(mu);
  char b[40];
  std::snprintf(b, sizeof b, "%016llx%08llx", (unsigned long long)rng(), (unsigned long long)(rng() & 0xffffffffu));
  return std::string(prefix) + b;
}

uint64_t random_seed() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lk(mu);
  return rng();
}

// The connection's socket as cpp-httplib's Stream, with a bound on the request head. cpp-httplib
// 0.11 caps each header line (8 KiB) but not how many there are: a client could send headers
// until memory runs out. Here the bytes before the blank line that ends the head are counted,
// and past kMaxHead the read fails (the request is answered 400 or the connection dropped).
class GuardedStream final : public httplib::Stream {
 public:
  static constexpr size_t kMaxHead = 64 << 10;
  GuardedStream(int sock, int read_timeout_ms, int write_timeout_ms)
      : sock_(sock), read_ms_(read_timeout_ms), write_ms_(write_timeout_ms) {}
  void start_request() {
    in_head_ = true;
    head_bytes_ = 0;
    tail_ = 0;
  }
  bool buffered() const { return pos_ < len_; }
  static bool wait(int sock, short events, int ms) {
    pollfd p{sock, events, 0};
    int r;
    do r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
  }
  bool is_readable() const override { return buffered() || wait(sock_, POLLIN, read_ms_); }
  bool is_writable() const override { return wait(sock_, POLLOUT, write_ms_); }
  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (!wait(sock_, POLLIN, read_ms_)) return -1;
      ssize_t n;
      do n = ::recv(sock_, buf_, sizeof buf_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return -1;
      pos_ = 0;
      len_ = size_t(n);
    }
    const size_t n = std::min(size, len_ - pos_);
    for (size_t i = 0; in_head_ && i < n; ++i) {
      tail_ = (tail_ << 8) | uint8_t(buf_[pos_ + i]);
      if (++head_bytes_ > kMaxHead) return -1;
      if (tail_ == 0x0d0a0d0au) in_head_ = false;  // "\r\n\r\n": the head ends, the body (if any) follows
    }
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!wait(sock_, POLLOUT, write_ms_)) return -1;
    ssize_t n;
    do n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  void address(bool peer, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if ((peer ? getpeername(sock_, reinterpret_cast<sockaddr*>(&a), &len) : getsockname(sock_, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
      return;
    char b[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      auto* v = reinterpret_cast<sockaddr_in*>(&a);
      inet_ntop(AF_INET, &v->sin_addr, b, sizeof b);
      port = ntohs(v->sin_port);
    } else if (a.ss_family == AF_INET6) {
      auto* v = reinterpret_cast<sockaddr_in6*>(&a);
      inet_ntop(AF_INET6, &v->sin6_addr, b, sizeof b);
      port = ntohs(v->sin6_port);
    }
    ip = b;
  }
  int sock_, read_ms_, write_ms_;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0;
  bool in_head_ = true;
  size_t head_bytes_ = 0;
  uint32_t tail_ = 0;
};

// The socket of the connection this thread is serving (set by GuardedServer): lets a
// non-streaming request notice that its client went away while it waits for the engine.
thread_local int t_conn_sock = -1;

bool peer_gone(int sock) {
  if (sock < 0) return false;
  pollfd p{sock, short(POLLRDHUP), 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

}  // namespace

// cpp-httplib's Server with its per-connection loop (keep-alive, then one request at a time)
// over GuardedStream; everything else (parsing, routing, responses) is the library's.
class GuardedServer final : public httplib::Server {
 private:
  bool process_and_close_socket(socket_t sock) override {
    t_conn_sock = sock;
    GuardedStream strm(sock, int(read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000),
                       int(write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000));
    bool ret = false;
    for (size_t count = keep_alive_max_count_; svr_sock_ != INVALID_SOCKET && count > 0; --count) {
      // Keep-alive: wait for the next request (in slices, so that stop() is noticed).
      bool readable = strm.buffered();
      for (time_t waited_ms = 0; !readable && waited_ms < keep_alive_timeout_sec_ * 1000 && svr_sock_ != INVALID_SOCKET; waited_ms += 100)
        readable = GuardedStream::wait(sock, POLLIN, 100);
      if (!readable) break;
      strm.start_request();
      bool closed = false;
      ret = process_request(strm, count == 1, closed, nullptr);
      if (!ret || closed) break;
    }
    t_conn_sock = -1;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
  }
};

// One generation request: its sequences' events, queued by the engine thread for the
// connection's thread.
struct HttpServer::Request {
  struct Event {
    int choice = 0;
    bool done = false;
    TokenEvent tok;
    SeqResult res;
  };
  ParsedRequest parsed;
  std::unique_ptr<ResponseWriter> writer;
  ServeEngine* engine = nullptr;
  std::vector<ServeEngine::Handle> handles;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  std::vector<Clock::time_point> last_token;
  int done = 0;
  bool finished = false;  // every sequence's on_done arrived
  void cancel_all() {
    for (auto h : handles) engine->cancel(h);
  }
};

HttpServer::HttpServer(const ServerOptions& opt) : opt_(opt), svr_(std::make_unique<GuardedServer>()) {
  const int threads = std::max(opt.http_threads, 4);
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  svr_->set_payload_max_length(opt.max_body);
  svr_->set_read_timeout(opt.timeout_s, 0);
  svr_->set_write_timeout(opt.timeout_s, 0);
  svr_->set_keep_alive_timeout(2);
  svr_->set_keep_alive_max_count(1000);
  svr_->set_tcp_nodelay(true);  // a token per write: no Nagle delay
  routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  int port = opt_.port;
  bool ok;
  if (port == 0) {
    port = svr_->bind_to_any_port(opt_.host);
    ok = port > 0;
  } else {
    ok = svr_->bind_to_port(opt_.host, port);
  }
  if (!ok) fail(ErrorCode::Io, "cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) + " (in use, or not an address of this machine)");
  return port;
}

void HttpServer::run() { svr_->listen_after_bind(); }

void HttpServer::ready(const ServedModel* model, ServeEngine* engine) {
  engine_ = engine;
  model_ = model;
}

void HttpServer::stop() { svr_->stop(); }

void HttpServer::shutdown(double grace_s) {
  stopping_ = true;
  if (ServeEngine* e = engine_.load()) e->shutdown();
  const auto until = Clock::now() + std::chrono::duration<double>(grace_s);
  while (in_flight_.load() > 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  svr_->stop();
}

void HttpServer::routes() {
  httplib::Server& s = *svr_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opt_.api_key.empty() || req.path == "/health" || req.path == "/v1/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string pre = "Bearer ";
    if (auth.rfind(pre, 0) == 0 && same_key(auth.substr(pre.size()), opt_.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    send_json(res, 401, error_body(401, auth.empty() ? "missing API key: send 'Authorization: Bearer KEY'" : "incorrect API key provided",
                                   std::nullopt, std::string("invalid_api_key"), "invalid_request_error"));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_json(res, 404, error_body(404, "unknown route: " + req.method + " " + req.path, std::nullopt, std::string("not_found")));
    else if (res.status == 413)
      send_json(res, 413, error_body(413, "the request body is larger than the limit of " + std::to_string(opt_.max_body) + " bytes",
                                     std::nullopt, std::string("request_too_large")));
    else
      send_json(res, res.status, error_body(res.status, "malformed or unsupported HTTP request (status " + std::to_string(res.status) + ")",
                                            std::nullopt, std::string("bad_request")));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body(500, what, std::nullopt, std::string("internal_error")));
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.request(route_of(req.path), res.status);
    if (opt_.verbose) std::fprintf(stderr, "llrt serve: %s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  auto not_ready = [this](httplib::Response& res) {
    if (model_.load() && !stopping_) return false;
    send_json(res, 503, error_body(503, stopping_ ? "the server is shutting down" : "the model is loading", std::nullopt,
                                   std::string(stopping_ ? "shutting_down" : "model_loading"), "unavailable_error"));
    return true;
  };
  auto health = [this, not_ready](const httplib::Request&, httplib::Response& res) {
    if (!not_ready(res)) send_json(res, 200, {{"status", "ok"}});
  };
  s.Get("/health", health);
  s.Get("/v1/health", health);
  auto models = [this, not_ready](const httplib::Request&, httplib::Response& res) {
    if (!not_ready(res)) send_json(res, 200, models_response(*model_.load()));
  };
  s.Get("/v1/models", models);
  s.Get("/models", models);
  s.Get(R"(/v1/models/(.+))", [this, not_ready](const httplib::Request& req, httplib::Response& res) {
    if (not_ready(res)) return;
    const ServedModel& m = *model_.load();
    if (req.matches[1] != m.id)
      return send_json(res, 404, error_body(404, "The model '" + std::string(req.matches[1]) + "' does not exist", std::string("model"),
                                            std::string("model_not_found")));
    send_json(res, 200, models_response(m)["data"][0]);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    ServeEngine* e = engine_.load();
    res.set_content(metrics_.text(e ? e->load() : EngineLoad{}), "text/plain; version=0.0.4");
  });
  auto json_route = [this, not_ready](json (*fn)(const ServedModel&, const json&)) {
    return [this, not_ready, fn](const httplib::Request& req, httplib::Response& res) {
      if (not_ready(res)) return;
      try {
        send_json(res, 200, fn(*model_.load(), parse_body(req.body)));
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    };
  };
  s.Post("/tokenize", json_route(&tokenize_response));
  s.Post("/detokenize", json_route(&detokenize_response));
  auto gen = [this, not_ready](bool chat) {
    return [this, not_ready, chat](const httplib::Request& req, httplib::Response& res) {
      if (!not_ready(res)) generate(req.body, chat, &res);
    };
  };
  s.Post("/v1/chat/completions", gen(true));
  s.Post("/chat/completions", gen(true));
  s.Post("/v1/completions", gen(false));
  s.Post("/completions", gen(false));
}

void HttpServer::generate(const std::string& body, bool chat, void* res_ptr) {
  httplib::Response& res = *static_cast<httplib::Response*>(res_ptr);
  const ServedModel& m = *model_.load();
  ServeEngine* engine = engine_.load();
  auto rq = std::make_shared<Request>();
  try {
    json b = parse_body(body);
    rq->parsed = chat ? parse_chat_request(m, b) : parse_completion_request(m, b);
  } catch (const ApiError& e) {
    return send_error(res, e);
  }
  const ParsedRequest& p = rq->parsed;
  rq->engine = engine;
  rq->writer = std::make_unique<ResponseWriter>(m, p, random_id(chat ? "chatcmpl-" : "cmpl-"),
                                                int64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                                            std::chrono::system_clock::now().time_since_epoch()).count()));
  std::vector<SeqRequest> seqs = p.sequences(random_seed());
  rq->last_token.resize(seqs.size());
  struct InFlight {  // counts the response until it is fully written (or abandoned)
    std::atomic<int64_t>* n;
    explicit InFlight(std::atomic<int64_t>* p) : n(p) { ++*n; }
    ~InFlight() { --*n; }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
  };
  auto guard = std::make_shared<InFlight>(&in_flight_);
  for (size_t i = 0; i < seqs.size(); ++i) {
    SeqCallbacks cb;
    std::weak_ptr<Request> w = rq;
    const int choice = int(i);
    cb.on_token = [this, w, choice](TokenEvent&& ev) {
      auto r = w.lock();
      if (!r) return;
      std::lock_guard<std::mutex> lk(r->mu);
      const auto now = Clock::now();
      if (ev.id >= 0) {
        if (r->last_token[size_t(choice)] != Clock::time_point{})
          metrics_.inter_token(std::chrono::duration<double>(now - r->last_token[size_t(choice)]).count());
        r->last_token[size_t(choice)] = now;
      }
      Request::Event e;
      e.choice = choice;
      e.tok = std::move(ev);
      r->events.push_back(std::move(e));
      r->cv.notify_all();
    };
    cb.on_done = [this, w, choice](const SeqResult& sr) {
      metrics_.sequence_done(sr);
      auto r = w.lock();
      if (!r) return;
      std::lock_guard<std::mutex> lk(r->mu);
      Request::Event ev;
      ev.choice = choice;
      ev.done = true;
      ev.res = sr;
      r->events.push_back(std::move(ev));
      if (++r->done == int(r->last_token.size())) r->finished = true;
      r->cv.notify_all();
    };
    try {
      rq->handles.push_back(engine->submit(std::move(seqs[i]), std::move(cb)));
    } catch (const QueueFull& e) {
      rq->cancel_all();
      res.set_header("Retry-After", "1");
      return send_json(res, 503, error_body(503, e.what(), std::nullopt, std::string("queue_full"), "server_error"));
    } catch (const ShuttingDown& e) {
      rq->cancel_all();
      return send_json(res, 503, error_body(503, e.what(), std::nullopt, std::string("shutting_down"), "unavailable_error"));
    } catch (const Error& e) {
      rq->cancel_all();
      return send_json(res, 400, error_body(400, e.what(), std::nullopt, std::string("invalid_value")));
    }
  }

  if (!p.stream) {
    const int sock = t_conn_sock;
    bool cancelled = false;
    std::unique_lock<std::mutex> lk(rq->mu);
    auto next_check = Clock::now();
    for (;;) {
      rq->cv.wait_for(lk, std::chrono::milliseconds(250), [&] { return !rq->events.empty(); });
      if (!cancelled && Clock::now() >= next_check) {  // the client may leave while it waits: cancel (slots freed)
        next_check = Clock::now() + std::chrono::milliseconds(250);
        if (peer_gone(sock)) {
          cancelled = true;
          lk.unlock();
          rq->cancel_all();
          lk.lock();
        }
      }
      while (!rq->events.empty()) {
        Request::Event ev = std::move(rq->events.front());
        rq->events.pop_front();
        if (ev.done) rq->writer->on_done(ev.choice, ev.res);
        else rq->writer->on_token(ev.choice, ev.tok);
      }
      if (rq->finished) break;
    }
    lk.unlock();
    if (rq->writer->error()) return send_json(res, 500, error_body(500, "generation failed: " + *rq->writer->error(), std::nullopt,
                                                                   std::string("generation_failed"), "server_error"));
    return send_json(res, 200, rq->writer->whole());
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [rq, guard](size_t, httplib::DataSink& sink) {
        for (;;) {
          std::deque<Request::Event> evs;
          {
            std::unique_lock<std::mutex> lk(rq->mu);
            rq->cv.wait_for(lk, std::chrono::seconds(1), [&] { return !rq->events.empty(); });
            evs.swap(rq->events);
          }
          std::string out;
          if (evs.empty()) out = ": keep-alive\n\n";  // a write: finds a client that went away
          for (auto& ev : evs) out += ev.done ? rq->writer->on_done(ev.choice, ev.res) : rq->writer->on_token(ev.choice, ev.tok);
          if (!out.empty() && !sink.write(out.data(), out.size())) {
            rq->cancel_all();
            return false;
          }
          if (rq->writer->all_done()) {
            const std::string end = rq->writer->stream_end();
            sink.write(end.data(), end.size());
            sink.done();
            return true;
          }
        }
      },
      [rq, guard](bool) {
        if (!rq->writer->all_done()) rq->cancel_all();  // the response was dropped (client gone)
      });
}

}  // namespace llrt::serve
