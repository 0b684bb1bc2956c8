// llrt serve: the HTTP side (cpp-httplib), routes to the API layer and the ServeEngine.
//
// cpp-httplib runs one connection per pool thread with blocking I/O; the pool is sized for
// every running and queued sequence plus spare threads for the cheap routes, so a streaming
// client never waits for a thread. Streams are SSE written from the connection's thread as the
// engine's tokens arrive (through a per-request queue); a failed write (the client went away)
// cancels the request's sequences, which frees their slots at the next token boundary.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "serve/api.h"
#include "serve/engine.h"
#include "serve/metrics.h"

namespace httplib {
class Server;
}

namespace llrt::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (bind() says which)
  std::string api_key;                      // empty: no authentication
  int timeout_s = 600;                      // read / write timeout of a connection
  size_t max_body = size_t(8) << 20;        // larger request bodies: 413
  int http_threads = 32;
  bool verbose = false;                     // a line per request on stderr
};

class HttpServer {
 public:
  explicit HttpServer(const ServerOptions& opt);
  ~HttpServer();
  // Binds the listening socket; returns the port. Error(Io) when it cannot.
  int bind();
  // Serves until stop(); call from its own thread. Before ready(), /health and every API
  // route answer 503.
  void run();
  void ready(const ServedModel* model, ServeEngine* engine);
  // Graceful end: new generation requests get 503; the engine's in-flight sequences end (their
  // streams get a finish_reason and [DONE]); waits up to `grace_s` for the responses to be
  // written, then stops the listener.
  void shutdown(double grace_s);
  void stop();

 private:
  struct Request;
  void routes();
  void generate(const std::string& body, bool chat, void* res);
  ServerOptions opt_;
  std::unique_ptr<httplib::Server> svr_;
  std::atomic<const ServedModel*> model_{nullptr};
  std::atomic<ServeEngine*> engine_{nullptr};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> in_flight_{0};  // generation responses not yet fully written
  std::atomic<uint64_t> next_id_{1};
  Metrics metrics_;
};

}  // namespace llrt::serve
