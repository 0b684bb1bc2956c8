// llrt serve: an OpenAI-compatible HTTP server (tools/serve/: engine, API, HTTP, metrics).
//
// Order of events: options checked -> the port bound and served (/health answers 503) -> the
// model loaded -> the engine made (CPU: BatchServeEngine, one batched KV pool; CUDA: SessionPoolEngine) -> "listening on URL" on stdout -> requests until
// SIGINT/SIGTERM -> new requests refused, in-flight streams ended with a finish_reason -> exit 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "cli_common.h"
#include "llrt/chat_template.h"
#include "run_common.h"
#include "serve/api.h"
#include "serve/engine.h"
#include "serve/server.h"

namespace llrt::cli {

namespace {
std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

int cmd_serve(Args& a) {
  RunSetup setup = parse_run_setup(a);
  serve::ServerOptions so;
  serve::SessionPoolOptions eo;
  a.value({"--host"}, &so.host);
  a.number({"--port"}, &so.port, 0, 65535, "0 picks a free port");
  a.number({"--parallel", "-np"}, &eo.parallel, 1, 256, "sequences generated at once");
  a.number<int64_t>({"--max-queue"}, &eo.max_queue, 0, 100000, "sequences waiting for a slot before 503");
  int max_running = 0;
  a.number({"--max-running"}, &max_running, 0, 4096, "sequences running at once on the CPU; 0: --parallel");
  a.number({"--timeout"}, &so.timeout_s, 1, 86400, "seconds a connection may stall reading or writing");
  std::string key_file, alias, reasoning = "none";
  a.value({"--api-key"}, &so.api_key);
  const bool have_key_file = a.value({"--api-key-file"}, &key_file);
  a.value({"--alias"}, &alias);
  a.value({"--reasoning-format"}, &reasoning);
  so.verbose = setup.verbose;
  auto pos = a.positionals();
  if (pos.size() != 1) fail(ErrorCode::InvalidArgument, "serve: give exactly one MODEL_DIR");
  if (have_key_file) {
    if (!so.api_key.empty()) fail(ErrorCode::InvalidArgument, "serve: give --api-key or --api-key-file, not both");
    so.api_key = trim(read_text_file(key_file));
    if (so.api_key.empty()) fail(ErrorCode::InvalidArgument, "serve: --api-key-file " + key_file + " holds no key");
  }
  if (reasoning != "none" && reasoning != "deepseek")
    fail(ErrorCode::InvalidArgument, "--reasoning-format: '" + reasoning + "' is not a format (use none or deepseek)");
  if (!std::filesystem::is_directory(pos[0])) fail(ErrorCode::Io, "serve: " + pos[0] + " is not a directory");
  eo.prefill_chunk = setup.batch;
  so.http_threads = int(std::min<int64_t>(std::max(eo.parallel, max_running) + eo.max_queue + 16, 1024));

  // Signals go to one thread (sigwait); every other thread is made with them blocked.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is a failed write, not the end of the server

  serve::HttpServer http(so);
  const int port = http.bind();
  std::thread listener([&] { http.run(); });
  std::atomic<bool> loaded{false}, load_failed{false}, signalled{false};
  std::thread sig_thread([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (load_failed) return;
    signalled = true;
    std::fprintf(stderr, "llrt serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    if (!loaded) {  // a load cannot be interrupted: leave now
      std::fflush(stdout);
      std::_Exit(0);
    }
    http.shutdown(10.0);
  });
  auto wake_sig_thread = [&] {
    if (!signalled) kill(getpid(), SIGTERM);  // blocked everywhere but in sigwait: the signal thread takes it
    sig_thread.join();
  };

  std::printf("llrt serve: loading %s, /health answers 503 on http://%s:%d until it is ready\n", pos[0].c_str(), so.host.c_str(), port);
  std::fflush(stdout);
  std::optional<Engine> loaded_model;
  try {
    // LLRT_SERVE_LOAD_DELAY_MS: a pause before the load, so the test suite can see /health's 503.
    if (const char* d = std::getenv("LLRT_SERVE_LOAD_DELAY_MS")) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(d)));
    loaded_model.emplace(load_engine(pos[0], setup));
  } catch (...) {
    load_failed = true;
    http.stop();
    listener.join();
    wake_sig_thread();
    throw;
  }
  Engine& model = *loaded_model;
  serve::ServedModel served(alias.empty() ? std::filesystem::path(pos[0]).lexically_normal().filename().string() : alias,
                            Tokenizer::load(pos[0]));
  if (served.id.empty()) served.id = std::filesystem::absolute(pos[0]).parent_path().filename().string();
  const auto tc = std::filesystem::path(pos[0]) / "tokenizer_config.json";
  if (std::filesystem::exists(tc)) {
    try {
      served.tmpl = ChatTemplate::from_tokenizer_config(tc);
    } catch (const Error& e) {
      std::fprintf(stderr, "llrt serve: no chat template (%s): /v1/chat/completions will answer 400\n", e.what());
    }
  }
  served.eos_ids = eos_ids_for(model.config(), model.checkpoint().generation_config());
  served.defaults = sampling_from_generation_config(model.checkpoint().generation_config());
  served.vocab = int32_t(model.config().vocab_size);
  served.reasoning = reasoning == "deepseek" ? serve::ReasoningFormat::DeepSeek : serve::ReasoningFormat::None;
  served.created = int64_t(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  // The CPU: one BatchContext, every sequence in one forward pass per step (BatchServeEngine);
  // CUDA has no batch API: `parallel` sessions stepped in turn (SessionPoolEngine).
  std::unique_ptr<serve::ServeEngine> engine;
  std::string pool_line;
  if (model.cpu) {
    serve::BatchServeOptions bo;
    bo.batch.n_ctx = setup.ctx;
    bo.batch.parallel = eo.parallel;
    bo.batch.n_batch = setup.batch;
    bo.batch.kv_dtype = setup.kv_dtype;
    bo.max_queue = eo.max_queue;
    bo.max_running = max_running;
    auto be = std::make_unique<serve::BatchServeEngine>(model.cpu, &served.tok, bo);
    const KvPoolSize p = be->pool();
    char buf[256];
    std::snprintf(buf, sizeof buf, "; KV pool %lld blocks x %lld positions, %.1f MiB", (long long)p.blocks, (long long)p.block_size,
                  double(p.bytes) / double(1 << 20));
    pool_line = buf;
    engine = std::move(be);
  } else {
    engine = std::make_unique<serve::SessionPoolEngine>([&] { return model.session(setup.ctx, setup.batch, setup.kv_dtype); },
                                                        &served.tok, eo);
  }
  served.n_ctx = engine->n_ctx();
  http.ready(&served, engine.get());
  loaded = true;
  std::printf("llrt serve: listening on http://%s:%d (model '%s', %lld slots x %lld positions, %s%s)\n", so.host.c_str(), port,
              served.id.c_str(), (long long)engine->load().slots, (long long)served.n_ctx, model.device_name().c_str(), pool_line.c_str());
  std::fflush(stdout);

  listener.join();  // returns after http.shutdown() (the signal thread) stopped it
  wake_sig_thread();
  engine->shutdown();
  std::fprintf(stderr, "llrt serve: stopped\n");
  return 0;
}

}  // namespace llrt::cli
