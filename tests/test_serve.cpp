// llrt serve without HTTP: request parsing and validation (tools/serve/api.h), the response
// and SSE shapes, the DeepSeek <think> splitter, and the engine interface (tools/serve/engine.h)
// on the shipped stories260K model. The HTTP server itself is driven end to end by
// tests/serve_e2e.py with the official openai client.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "llrt/error.h"
#include "llrt/generate.h"
#include "llrt/model.h"
#include "serve/api.h"
#include "serve/engine.h"
#include "test_data.h"

using namespace llrt;
using namespace llrt::serve;
using namespace llrt::test;

namespace {
std::filesystem::path stories() { return repo_dir() / "models" / "stories260K"; }

std::unique_ptr<ServedModel> served(const std::filesystem::path& dir, int64_t n_ctx = 512) {
  auto m = std::make_unique<ServedModel>(dir.filename().string(), Tokenizer::load(dir));
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    try {
      m->tmpl = ChatTemplate::from_tokenizer_config(dir / "tokenizer_config.json");
    } catch (const Error&) {
    }
  }
  m->eos_ids = {m->tok.eos_id()};
  m->defaults.temperature = 0;
  m->n_ctx = n_ctx;
  m->vocab = m->tok.vocab_size();
  return m;
}

// The ApiError a parse throws (status 0 when none).
template <class F>
ApiError api_error(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "no error");
}

// Runs sequences through an engine and collects what the callbacks saw.
struct Collected {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> text;
  std::vector<std::optional<SeqResult>> res;
  std::vector<int> logprob_events;
  explicit Collected(size_t n) : ids(n), text(n), res(n), logprob_events(n) {}
  SeqCallbacks callbacks(size_t i) {
    SeqCallbacks cb;
    cb.on_token = [this, i](TokenEvent&& ev) {
      std::lock_guard<std::mutex> lk(mu);
      if (ev.id >= 0) ids[i].push_back(ev.id);
      if (ev.logprobs) ++logprob_events[i];
      text[i] += ev.text;
      cv.notify_all();
    };
    cb.on_done = [this, i](const SeqResult& r) {
      std::lock_guard<std::mutex> lk(mu);
      res[i] = r;
      cv.notify_all();
    };
    return cb;
  }
  bool wait_all(double seconds = 60) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, std::chrono::duration<double>(seconds), [&] {
      for (auto& r : res)
        if (!r) return false;
      return true;
    });
  }
  bool wait_tokens(size_t i, size_t n) {
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, std::chrono::seconds(60), [&] { return ids[i].size() >= n || res[i]; });
  }
};

SeqRequest greedy_seq(const Tokenizer& tok, const std::string& prompt, int64_t max_new) {
  SeqRequest s;
  s.prompt = tok.encode(prompt);
  s.gen.max_new_tokens = max_new;
  s.gen.sampling.temperature = 0;
  s.gen.eos_ids = {2};
  return s;
}
}  // namespace

TEST_CASE("error bodies carry all four OpenAI keys") {
  json b = error_body(400, "bad thing", std::string("max_tokens"), std::string("invalid_value"));
  REQUIRE(b.contains("error"));
  for (const char* k : {"message", "type", "param", "code"}) CHECK(b["error"].contains(k));
  CHECK(b["error"]["type"] == "invalid_request_error");
  json n = error_body(404, "nope");
  CHECK(n["error"]["param"].is_null());
  CHECK(n["error"]["code"].is_null());
  CHECK(n["error"].size() == 4);
  CHECK(ApiError(401, "k").body()["error"]["type"] == "authentication_error");
}

TEST_CASE("request bodies: JSON objects only") {
  CHECK(api_error([] { parse_body("{not json"); }).status == 400);
  CHECK(api_error([] { parse_body("[1, 2]"); }).status == 400);
  CHECK(api_error([] { parse_body(""); }).status == 400);
  CHECK(parse_body("{\"a\": 1}")["a"] == 1);
}

TEST_CASE("completions: prompt forms, echo text, defaults, seeds per choice") {
  auto m = served(stories());
  const auto ids = m->tok.encode("Once upon a time");
  ParsedRequest r = parse_completion_request(*m, {{"prompt", "Once upon a time"}, {"max_tokens", 8}});
  REQUIRE(r.prompts.size() == 1);
  CHECK(r.prompts[0] == ids);
  CHECK(r.gen.max_new_tokens == 8);
  CHECK(r.gen.sampling.greedy());  // the model's generation_config default (greedy here)
  r = parse_completion_request(*m, {{"prompt", json::array({"a", "b"})}, {"n", 2}});
  CHECK(r.prompts.size() == 2);
  CHECK(r.gen.max_new_tokens == 512 - int64_t(r.prompts[0].size()));  // no max_tokens: the rest of the context
  r = parse_completion_request(*m, {{"prompt", ids}, {"echo", true}});
  CHECK(r.prompts[0] == ids);
  CHECK(r.echo);
  CHECK(r.prompt_texts[0] == m->tok.decode(ids));
  r = parse_completion_request(*m, {{"prompt", json::array({ids, ids})}, {"logprobs", 3}});
  CHECK(r.prompts.size() == 2);
  CHECK(r.logprobs);
  CHECK(r.top_logprobs == 3);
  // n choices: one sequence each, seeds differ per choice, and follow an explicit seed.
  r = parse_completion_request(*m, {{"prompt", "x"}, {"n", 3}, {"seed", 40}, {"temperature", 0.7}});
  auto seqs = r.sequences(999);
  REQUIRE(seqs.size() == 3);
  CHECK(seqs[0].gen.sampling.seed == 40);
  CHECK(seqs[2].gen.sampling.seed == 42);
  CHECK(seqs[1].top_logprobs == -1);
  CHECK(seqs[0].continue_text);  // a completion's text continues its prompt
  r = parse_completion_request(*m, {{"prompt", "x"}, {"n", 2}});
  seqs = r.sequences(7);
  CHECK(seqs[0].gen.sampling.seed != seqs[1].gen.sampling.seed);
}

TEST_CASE("completions: every bad field is a 400 naming it") {
  auto m = served(stories());
  struct Bad {
    json body;
    const char* param;
  };
  const std::vector<Bad> bad = {
      {{{"max_tokens", 4}}, "prompt"},
      {{{"prompt", 5}}, "prompt"},
      {{{"prompt", json::array()}}, "prompt"},
      {{{"prompt", json::array({1, 99999})}}, "prompt"},
      {{{"prompt", json::array({1, -1})}}, "prompt"},
      {{{"prompt", "x"}, {"max_tokens", -5}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", "ten"}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 2.5}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 600}}, "max_tokens"},  // prompt + 600 > 512
      {{{"prompt", "x"}, {"temperature", "hot"}}, "temperature"},
      {{{"prompt", "x"}, {"temperature", -0.1}}, "temperature"},
      {{{"prompt", "x"}, {"top_p", 0}}, "top_p"},
      {{{"prompt", "x"}, {"top_p", 1.5}}, "top_p"},
      {{{"prompt", "x"}, {"top_k", -2}}, "top_k"},
      {{{"prompt", "x"}, {"min_p", 2}}, "min_p"},
      {{{"prompt", "x"}, {"presence_penalty", 3}}, "presence_penalty"},
      {{{"prompt", "x"}, {"frequency_penalty", -2.5}}, "frequency_penalty"},
      {{{"prompt", "x"}, {"repetition_penalty", 0}}, "repetition_penalty"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"n", 17}}, "n"},
      {{{"prompt", "x"}, {"stop", 3}}, "stop"},
      {{{"prompt", "x"}, {"stop", json::array({"a", 1})}}, "stop"},
      {{{"prompt", "x"}, {"stop", ""}}, "stop"},
      {{{"prompt", "x"}, {"seed", "abc"}}, "seed"},
      {{{"prompt", "x"}, {"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"logit_bias", {{"512", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"logit_bias", {{"5", 101}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"logit_bias", json::array()}}, "logit_bias"},
      {{{"prompt", "x"}, {"logprobs", 21}}, "logprobs"},
      {{{"prompt", "x"}, {"echo", "yes"}}, "echo"},
      {{{"prompt", "x"}, {"stream", 1}}, "stream"},
      {{{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}, "stream_options"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.body.dump());
    ApiError e = api_error([&] { parse_completion_request(*m, b.body); });
    CHECK(e.status == 400);
    CHECK(e.param == std::optional<std::string>(b.param));
  }
  ApiError e = api_error([&] { parse_completion_request(*m, {{"prompt", "x"}, {"model", "gpt-4"}}); });
  CHECK(e.status == 404);
  CHECK(e.code == std::optional<std::string>("model_not_found"));
  e = api_error([&] { parse_completion_request(*m, {{"prompt", "x"}, {"max_tokens", 600}}); });
  CHECK(e.code == std::optional<std::string>("context_length_exceeded"));
  // The model's own id, null fields and every range edge are accepted.
  CHECK_NOTHROW(parse_completion_request(*m, {{"prompt", "x"}, {"model", "stories260K"}, {"temperature", nullptr}, {"top_p", 1},
                                               {"top_k", -1}, {"min_p", 0}, {"n", 16}, {"presence_penalty", -2}, {"max_tokens", 0},
                                               {"logit_bias", {{"511", -100}}}, {"stop", json::array({"a", "b"})}}));
  ParsedRequest r = parse_completion_request(*m, {{"prompt", "x"}, {"logit_bias", {{"7", -100}, {"9", 2.5}}}});
  REQUIRE(r.gen.sampling.logit_bias.size() == 2);
  CHECK(r.gen.sampling.logit_bias[0].second < -1e29f);  // -100 bans
  CHECK(r.gen.sampling.logit_bias[1] == std::pair<int32_t, float>(9, 2.5f));
}

TEST_CASE("chat: messages rendered by the model's template; content parts; validation") {
  auto m = served(model_dir("llama-3.2-mini"), 4096);
  REQUIRE(m->tmpl);
  json msgs = json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hello"}}});
  ParsedRequest r = parse_chat_request(*m, {{"messages", msgs}, {"max_tokens", 5}, {"chat_template_kwargs", {{"date_string", "1 Jan 2026"}}}});
  REQUIRE(r.prompts.size() == 1);
  CHECK(r.prompt_texts[0].find("Hello") != std::string::npos);
  CHECK(r.prompt_texts[0].find("1 Jan 2026") != std::string::npos);
  CHECK(r.prompt_texts[0].rfind("<|start_header_id|>assistant<|end_header_id|>\n\n") == r.prompt_texts[0].size() - 47);
  CHECK(m->tok.decode(r.prompts[0]) == r.prompt_texts[0]);  // BOS written by the template, not added twice
  json parts = json::array({{{"role", "system"}, {"content", "Be brief."}},
                            {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "Hello"}}})}}});
  ParsedRequest r2 = parse_chat_request(*m, {{"messages", parts}, {"max_tokens", 5}, {"chat_template_kwargs", {{"date_string", "1 Jan 2026"}}}});
  CHECK(r2.prompts[0] == r.prompts[0]);
  r = parse_chat_request(*m, {{"messages", msgs}, {"logprobs", true}, {"top_logprobs", 4}, {"stream", true},
                              {"stream_options", {{"include_usage", true}}}});
  CHECK(r.logprobs);
  CHECK(r.top_logprobs == 4);
  CHECK(r.include_usage);
  const std::vector<std::pair<json, std::string>> bad = {
      {json::object(), "messages"},
      {{{"messages", "hi"}}, "messages"},
      {{{"messages", json::array()}}, "messages"},
      {{{"messages", json::array({"hi"})}}, "messages[0]"},
      {{{"messages", json::array({{{"content", "hi"}}})}}, "messages[0].role"},
      {{{"messages", json::array({{{"role", "user"}, {"content", 5}}})}}, "messages[0].content"},
      {{{"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "image_url"}}})}}})}}, "messages[0].content"},
      {{{"messages", msgs}, {"top_logprobs", 2}}, "top_logprobs"},
      {{{"messages", msgs}, {"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs"},
      {{{"messages", msgs}, {"logprobs", 1}}, "logprobs"},
      {{{"messages", msgs}, {"max_completion_tokens", -1}}, "max_completion_tokens"},
      {{{"messages", msgs}, {"tools", json::array({{{"type", "function"}}})}}, "tools"},
      {{{"messages", msgs}, {"reasoning_format", "xml"}}, "reasoning_format"},
  };
  for (const auto& [body, param] : bad) {
    CAPTURE(body.dump());
    ApiError e = api_error([&] { parse_chat_request(*m, body); });
    CHECK(e.status == 400);
    CHECK(e.param == std::optional<std::string>(param));
  }
  // A model without a chat template: chat is a 400 that says to use completions.
  auto s = served(stories());
  CHECK(!s->tmpl);
  ApiError e = api_error([&] { parse_chat_request(*s, {{"messages", msgs}}); });
  CHECK(e.status == 400);
  CHECK(std::string(e.what()).find("/v1/completions") != std::string::npos);
}

TEST_CASE("reasoning splitter: <think> part apart from the answer, any piece boundaries") {
  const std::string out = "<think>\nLet me see.</think>\n\nThe answer is 4.";
  for (size_t step : {size_t(1), size_t(2), size_t(3), size_t(7), out.size()}) {
    CAPTURE(step);
    ReasoningSplitter sp;
    std::string r, c;
    for (size_t i = 0; i < out.size(); i += step) sp.push(out.substr(i, step), &r, &c);
    sp.finish(&r, &c);
    CHECK(r == "\nLet me see.");
    CHECK(c == "The answer is 4.");
  }
  ReasoningSplitter no_open;  // the template's generation prompt already opened <think>
  std::string r, c;
  no_open.push("thinking</think>answer", &r, &c);
  no_open.finish(&r, &c);
  CHECK(r == "thinking");
  CHECK(c == "answer");
  ReasoningSplitter unfinished;  // never closed: all reasoning (as vLLM's deepseek_r1 parser)
  r.clear();
  c.clear();
  unfinished.push("still thinking </thi", &r, &c);
  unfinished.finish(&r, &c);
  CHECK(r == "still thinking </thi");
  CHECK(c.empty());
}

TEST_CASE("response writer: chat chunks, role first, finish_reason, usage, [DONE]") {
  auto m = served(stories());
  ParsedRequest r;
  r.kind = ApiKind::Chat;
  r.prompts = {{1, 2, 3}};
  r.n = 2;
  r.stream = true;
  r.include_usage = true;
  ResponseWriter w(*m, r, "chatcmpl-x", 123);
  auto data = [](const std::string& s) {
    REQUIRE(s.rfind("data: ", 0) == 0);
    REQUIRE(s.size() > 8);
    return json::parse(s.substr(6));
  };
  json c0 = data(w.on_token(0, TokenEvent{5, "Hi", std::nullopt}));
  CHECK(c0["object"] == "chat.completion.chunk");
  CHECK(c0["choices"][0]["delta"]["role"] == "assistant");
  CHECK(c0["choices"][0]["delta"]["content"] == "Hi");
  CHECK(c0["choices"][0]["finish_reason"].is_null());
  CHECK(c0["usage"].is_null());
  json c1 = data(w.on_token(0, TokenEvent{6, " there", std::nullopt}));
  CHECK(!c1["choices"][0]["delta"].contains("role"));
  CHECK(w.on_token(1, TokenEvent{7, "", std::nullopt}).empty());  // nothing to say yet
  SeqResult done;
  done.end = SeqEnd::Eos;
  done.prompt_tokens = 3;
  done.cached_tokens = 2;
  done.completion_tokens = 2;
  json f0 = data(w.on_done(0, done));
  CHECK(f0["choices"][0]["finish_reason"] == "stop");
  CHECK(!w.all_done());
  done.end = SeqEnd::Length;
  done.completion_tokens = 1;
  json f1 = data(w.on_done(1, done));
  CHECK(f1["choices"][0]["finish_reason"] == "length");
  CHECK(f1["choices"][0]["delta"]["role"] == "assistant");  // its first chunk
  CHECK(w.all_done());
  const std::string end = w.stream_end();
  CHECK(end.size() > 14);
  CHECK(end.substr(end.size() - 14) == "data: [DONE]\n\n");
  json u = data(end.substr(0, end.find("\n\n") + 2));
  CHECK(u["choices"].empty());
  CHECK(u["usage"]["prompt_tokens"] == 3);  // one prompt, counted once for its n choices
  CHECK(u["usage"]["completion_tokens"] == 3);
  CHECK(u["usage"]["total_tokens"] == 6);
  CHECK(u["usage"]["prompt_tokens_details"]["cached_tokens"] == 2);
  json whole = w.whole();
  CHECK(whole["object"] == "chat.completion");
  CHECK(whole["choices"][0]["message"]["content"] == "Hi there");
  CHECK(whole["choices"][1]["finish_reason"] == "length");
}

TEST_CASE("response writer: completion logprobs and echo") {
  auto m = served(stories());
  ParsedRequest r;
  r.kind = ApiKind::Completion;
  r.prompts = {m->tok.encode("Once")};
  r.prompt_texts = {"Once"};
  r.echo = true;
  r.logprobs = true;
  r.top_logprobs = 1;
  ResponseWriter w(*m, r, "cmpl-x", 1);
  TokenLogprobs lp;
  lp.chosen = {403, -0.5f};
  lp.top = {{403, -0.5f}};
  w.on_token(0, TokenEvent{403, " upon", lp});
  SeqResult done;
  done.end = SeqEnd::Stop;
  w.on_done(0, done);
  json j = w.whole();
  CHECK(j["choices"][0]["text"] == "Once upon");
  CHECK(j["choices"][0]["finish_reason"] == "stop");
  CHECK(j["choices"][0]["logprobs"]["token_logprobs"][0] == doctest::Approx(-0.5));
  CHECK(j["choices"][0]["logprobs"]["tokens"].size() == 1);
  CHECK(j["choices"][0]["logprobs"]["top_logprobs"][0].size() == 1);
}

TEST_CASE("tokenize / detokenize: llama-server's shapes; special tokens only when asked") {
  auto m = served(stories());
  json t = tokenize_response(*m, {{"content", "Once upon"}});
  auto plain = m->tok.encode("Once upon", false);
  CHECK(t["tokens"].get<std::vector<int32_t>>() == plain);
  json ts = tokenize_response(*m, {{"content", "Once upon"}, {"add_special", true}});
  CHECK(ts["tokens"][0] == m->tok.bos_id());
  json tp = tokenize_response(*m, {{"content", "Once"}, {"with_pieces", true}});
  CHECK(tp["tokens"][0].contains("piece"));
  CHECK(detokenize_response(*m, {{"tokens", plain}})["content"] == "Once upon");
  CHECK(api_error([&] { tokenize_response(*m, {{"content", 5}}); }).status == 400);
  CHECK(api_error([&] { detokenize_response(*m, {{"tokens", json::array({1, 100000})}}); }).status == 400);
  CHECK(models_response(*m)["data"][0]["id"] == "stories260K");
}

TEST_CASE("engine: interleaved sequences give each exactly its solo greedy tokens") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  SessionPoolOptions o;
  o.parallel = 3;
  SessionPoolEngine engine([&] { return std::make_unique<Context>(model, ContextOptions{256}); }, &tok, o);
  CHECK(engine.n_ctx() == 256);
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Ben went", "A big dog", "One day"};
  Collected got(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) engine.submit(greedy_seq(tok, prompts[i], 30), got.callbacks(i));
  REQUIRE(got.wait_all());
  for (size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(prompts[i]);
    Context solo(model, ContextOptions{256});
    SeqRequest s = greedy_seq(tok, prompts[i], 30);
    auto st = generate(solo, &tok, s.prompt, s.gen, nullptr);
    CHECK(got.ids[i] == st.tokens);
    CHECK(got.text[i] == tok.decode(st.tokens, true));
    CHECK(got.res[i]->completion_tokens == int64_t(st.tokens.size()));
    CHECK(got.res[i]->prompt_tokens == int64_t(s.prompt.size()));
    CHECK(got.res[i]->end == (st.reason == StopReason::Eos ? SeqEnd::Eos : SeqEnd::Length));
  }
  // The same prompt again: its prefix is in a session already (all but the last token reused).
  Collected once(1), again(1);
  engine.submit(greedy_seq(tok, prompts[0], 30), once.callbacks(0));
  REQUIRE(once.wait_all());
  engine.submit(greedy_seq(tok, prompts[0], 30), again.callbacks(0));
  REQUIRE(again.wait_all());
  CHECK(again.res[0]->cached_tokens == int64_t(tok.encode(prompts[0]).size()) - 1);
  CHECK(again.ids[0] == got.ids[0]);
  // A longer prompt that starts with a finished conversation pays only for its new tokens.
  const std::string turn2 = prompts[0] + tok.decode(got.ids[0], true) + " The end.";
  Collected cont(1);
  engine.submit(greedy_seq(tok, turn2, 5), cont.callbacks(0));
  REQUIRE(cont.wait_all());
  CHECK(cont.res[0]->cached_tokens >= int64_t(tok.encode(prompts[0]).size()));
}

TEST_CASE("engine: cancel frees the slot at a token boundary; logprobs; stop strings") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  SessionPoolOptions o;
  o.parallel = 1;
  SessionPoolEngine engine([&] { return std::make_unique<Context>(model, ContextOptions{512}); }, &tok, o);
  for (int round = 0; round < 3; ++round) {
    Collected got(1);
    SeqRequest s = greedy_seq(tok, "Once upon a time", 400);
    s.gen.eos_ids.clear();
    auto h = engine.submit(std::move(s), got.callbacks(0));
    REQUIRE(got.wait_tokens(0, 2));
    engine.cancel(h);
    REQUIRE(got.wait_all());
    CHECK(got.res[0]->end == SeqEnd::Cancelled);
    CHECK(got.res[0]->completion_tokens < 400);
    engine.cancel(h);  // already finished: ignored
  }
  CHECK(engine.load().active == 0);
  Collected lp(1);
  SeqRequest s = greedy_seq(tok, "Once upon a time", 6);
  s.top_logprobs = 3;
  s.gen.stop_strings = {"Lily"};
  engine.submit(std::move(s), lp.callbacks(0));
  REQUIRE(lp.wait_all());
  CHECK(lp.logprob_events[0] == int(lp.ids[0].size()));
  CHECK(lp.text[0].find("Lily") == std::string::npos);
}

TEST_CASE("engine: submit refuses what can never run, a full queue, and work after shutdown") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  SessionPoolOptions o;
  o.parallel = 1;
  o.max_queue = 1;
  SessionPoolEngine engine([&] { return std::make_unique<Context>(model, ContextOptions{128}); }, &tok, o);
  SeqRequest empty;
  CHECK_THROWS_AS(engine.submit(empty, {}), Error);
  CHECK_THROWS_AS(engine.submit(greedy_seq(tok, "Once upon a time", 200), {}), Error);  // beyond 128 positions
  SeqRequest badp = greedy_seq(tok, "x", 4);
  badp.gen.sampling.top_p = 0;
  CHECK_THROWS_AS(engine.submit(badp, {}), Error);
  Collected got(3);
  auto long_seq = [&] {
    SeqRequest s = greedy_seq(tok, "Once", 110);
    s.gen.eos_ids.clear();
    return s;
  };
  engine.submit(long_seq(), got.callbacks(0));
  engine.submit(long_seq(), got.callbacks(1));
  CHECK_THROWS_AS(engine.submit(long_seq(), got.callbacks(2)), QueueFull);
  engine.shutdown();  // ends both with Shutdown (or they finished first)
  CHECK_THROWS_AS(engine.submit(long_seq(), {}), ShuttingDown);
  std::unique_lock<std::mutex> lk(got.mu);
  REQUIRE(got.res[0]);
  REQUIRE(got.res[1]);
  CHECK(!got.res[2]);
  CHECK((got.res[1]->end == SeqEnd::Shutdown || got.res[1]->end == SeqEnd::Length));
}

// ---- BatchServeEngine: one BatchContext, every running sequence in one forward pass per step ----

namespace {
BatchServeOptions batch_opts(int parallel, int64_t n_ctx, int64_t n_batch = 512, int64_t block_size = 32, int max_running = 0) {
  BatchServeOptions o;
  o.batch.parallel = parallel;
  o.batch.n_ctx = n_ctx;
  o.batch.n_batch = n_batch;
  o.batch.block_size = block_size;
  o.max_running = max_running;
  return o;
}
std::vector<int32_t> solo_greedy(const std::shared_ptr<Model>& model, const Tokenizer& tok, const SeqRequest& s, int64_t n_ctx) {
  Context solo(model, ContextOptions{n_ctx});
  return generate(solo, &tok, s.prompt, s.gen, nullptr).tokens;
}
// A prompt of about n tokens (stories260K's vocabulary).
SeqRequest long_seq(const Tokenizer& tok, size_t n, int64_t max_new) {
  std::string text;
  while (tok.encode(text).size() < n) text += "Once upon a time there was a little girl named Lily. She liked to play in the park. ";
  SeqRequest s = greedy_seq(tok, "", max_new);
  s.prompt = tok.encode(text);
  s.prompt.resize(n);
  s.gen.eos_ids.clear();
  return s;
}
}  // namespace

TEST_CASE("batch engine: many sequences at once give each exactly its solo greedy tokens; prefixes are reused") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  BatchServeEngine engine(model, &tok, batch_opts(4, 256, 512, 16));
  CHECK(engine.n_ctx() == 256);
  CHECK(engine.pool().blocks == kv_pool_size(model->config(), batch_opts(4, 256, 512, 16).batch).blocks);
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Ben went", "A big dog", "One day",
                                            "Tom had a ball", "The sun was", "Sue liked to"};
  Collected got(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) engine.submit(greedy_seq(tok, prompts[i], 30), got.callbacks(i));
  REQUIRE(got.wait_all());
  for (size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(prompts[i]);
    SeqRequest s = greedy_seq(tok, prompts[i], 30);
    Context solo(model, ContextOptions{256});
    auto st = generate(solo, &tok, s.prompt, s.gen, nullptr);
    CHECK(got.ids[i] == st.tokens);
    CHECK(got.text[i] == tok.decode(st.tokens, true));
    CHECK(got.res[i]->completion_tokens == int64_t(st.tokens.size()));
    CHECK(got.res[i]->prompt_tokens == int64_t(s.prompt.size()));
    CHECK(got.res[i]->end == (st.reason == StopReason::Eos ? SeqEnd::Eos : SeqEnd::Length));
  }
  BatchServeEngine::Stats st = engine.stats();
  CHECK(st.max_rows > 1);  // sequences really shared forward passes
  CHECK(st.blocks_in_use == 0);
  CHECK(st.peak_blocks > 0);
  CHECK(st.preemptions == 0);  // max_running = parallel: the pool always has room
  CHECK(engine.load().active == 0);
  // The same long prompt twice: the second takes the first's blocks from the prefix cache.
  SeqRequest lp = long_seq(tok, 100, 10);
  Collected once(1), again(1);
  engine.submit(lp, once.callbacks(0));
  REQUIRE(once.wait_all());
  engine.submit(lp, again.callbacks(0));
  REQUIRE(again.wait_all());
  CHECK(once.res[0]->cached_tokens < 16);  // at most the start it shares with "Once upon a time" above
  CHECK(again.res[0]->cached_tokens == 99);  // all but the last prompt token (evaluated for its logits)
  CHECK(again.ids[0] == once.ids[0]);
  CHECK(once.ids[0] == solo_greedy(model, tok, lp, 256));
  CHECK(engine.stats().blocks_in_use == 0);
}

TEST_CASE("batch engine: cancel mid-prefill and mid-decode frees the blocks at the next step") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  // n_batch 2: a decoding sequence takes one row a step, a prompt gets one: a 300-token prompt
  // is mid-prefill for ~300 steps.
  BatchServeEngine engine(model, &tok, batch_opts(2, 512, 2, 16));
  Collected got(2);
  std::atomic<ServeEngine::Handle> h_long{0};
  SeqCallbacks cb0 = got.callbacks(0);
  auto on_token0 = cb0.on_token;
  int seen0 = 0;
  cb0.on_token = [&, on_token0](TokenEvent&& ev) {  // the engine's thread, at a step boundary
    if (++seen0 == 3) engine.cancel(h_long.load());  // the long prompt is still being evaluated
    on_token0(std::move(ev));
  };
  SeqRequest a = greedy_seq(tok, "Once upon a time", 40);
  a.gen.eos_ids.clear();
  SeqCallbacks cb1 = got.callbacks(1);
  engine.submit(a, cb0);
  h_long = engine.submit(long_seq(tok, 300, 50), cb1);
  REQUIRE(got.wait_all());
  CHECK(got.res[1]->end == SeqEnd::Cancelled);
  CHECK(got.res[1]->completion_tokens == 0);  // cancelled mid-prefill
  CHECK(got.res[0]->end == SeqEnd::Length);
  CHECK(got.ids[0] == solo_greedy(model, tok, a, 512));
  CHECK(engine.stats().blocks_in_use == 0);
  // Mid-decode: the sequence cancels itself after its 3rd token.
  Collected dec(1);
  std::atomic<ServeEngine::Handle> h{0};
  SeqCallbacks cb = dec.callbacks(0);
  auto on_token = cb.on_token;
  int seen = 0;
  cb.on_token = [&, on_token](TokenEvent&& ev) {
    if (++seen == 3) {
      while (h.load() == 0) std::this_thread::yield();
      engine.cancel(h.load());
    }
    on_token(std::move(ev));
  };
  SeqRequest d = greedy_seq(tok, "Once upon a time", 400);
  d.gen.eos_ids.clear();
  h = engine.submit(d, cb);
  REQUIRE(dec.wait_all());
  CHECK(dec.res[0]->end == SeqEnd::Cancelled);
  CHECK(dec.res[0]->completion_tokens >= 3);
  CHECK(dec.res[0]->completion_tokens < 400);
  CHECK(engine.stats().blocks_in_use == 0);
  CHECK(engine.load().active == 0);
  // Cancelled while queued (one slot busy).
  BatchServeEngine one(model, &tok, batch_opts(1, 512, 64, 16));
  Collected q(2);
  SeqRequest busy = greedy_seq(tok, "Once upon a time", 300);
  busy.gen.eos_ids.clear();
  auto hb = one.submit(busy, q.callbacks(0));
  auto hq = one.submit(greedy_seq(tok, "The cat", 5), q.callbacks(1));
  one.cancel(hq);
  REQUIRE(q.wait_tokens(0, 2));
  one.cancel(hb);
  REQUIRE(q.wait_all());
  CHECK(q.res[1]->end == SeqEnd::Cancelled);
  CHECK(q.res[1]->completion_tokens == 0);
  CHECK(one.stats().blocks_in_use == 0);
}

TEST_CASE("batch engine: a full pool makes sequences wait (admission) or recompute later (preemption), never fail") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  SUBCASE("admission waits for blocks") {
    // A pool for one sequence of 128 positions (8 blocks of 16), two slots: the second 100-token
    // prompt does not fit beside the first and waits until it leaves.
    BatchServeEngine engine(model, &tok, batch_opts(1, 128, 64, 16, 2));
    CHECK(engine.pool().blocks == 8);
    SeqRequest a = long_seq(tok, 100, 20), b = long_seq(tok, 90, 20);
    b.prompt[0] = tok.bos_id();
    b.prompt[1] = 3;  // diverges from a at once (no shared prefix)
    Collected got(2);
    engine.submit(a, got.callbacks(0));
    engine.submit(b, got.callbacks(1));
    REQUIRE(got.wait_all());
    CHECK(got.res[0]->end == SeqEnd::Length);
    CHECK(got.res[1]->end == SeqEnd::Length);
    CHECK(got.ids[0] == solo_greedy(model, tok, a, 128));
    CHECK(got.ids[1] == solo_greedy(model, tok, b, 128));
    CHECK(engine.stats().peak_blocks <= 8);
    CHECK(engine.stats().blocks_in_use == 0);
  }
  SUBCASE("running sequences outgrow an overcommitted pool: the youngest is preempted and recomputed") {
    // 16 blocks of 16 positions; four sequences of ~105 positions (7 blocks each) run together.
    BatchServeEngine engine(model, &tok, batch_opts(2, 128, 64, 16, 4));
    const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily and Ben went", "A big dog"};
    Collected got(prompts.size());
    std::vector<SeqRequest> reqs;
    for (size_t i = 0; i < prompts.size(); ++i) {
      reqs.push_back(greedy_seq(tok, prompts[i], 100));
      reqs.back().gen.eos_ids.clear();
      engine.submit(reqs.back(), got.callbacks(i));
    }
    REQUIRE(got.wait_all(120));
    for (size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(prompts[i]);
      CHECK(got.res[i]->end == SeqEnd::Length);
      CHECK(got.ids[i] == solo_greedy(model, tok, reqs[i], 128));
      CHECK(got.text[i] == tok.decode(got.ids[i], true));
    }
    const auto st = engine.stats();
    CHECK(st.preemptions > 0);
    CHECK(st.peak_blocks <= 16);
    CHECK(st.blocks_in_use == 0);
  }
}

TEST_CASE("batch engine: refuses what can never run, a full queue, and work after shutdown") {
  auto model = Model::load(stories());
  Tokenizer tok = Tokenizer::load(stories());
  BatchServeOptions o = batch_opts(1, 128);
  o.max_queue = 1;
  BatchServeEngine engine(model, &tok, o);
  CHECK_THROWS_AS(engine.submit(SeqRequest{}, {}), Error);
  CHECK_THROWS_AS(engine.submit(greedy_seq(tok, "Once upon a time", 200), {}), Error);  // beyond 128 positions
  Collected got(3);
  auto lng = [&] {
    SeqRequest s = greedy_seq(tok, "Once", 110);
    s.gen.eos_ids.clear();
    return s;
  };
  // The first sequence's first token holds the engine thread until the queue was tested, so
  // the first sequence is still running and the second still queued (no race with a fast model).
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  SeqCallbacks first = got.callbacks(0);
  auto on_token = first.on_token;
  first.on_token = [on_token, opened](TokenEvent&& ev) {
    opened.wait();
    on_token(std::move(ev));
  };
  engine.submit(lng(), first);
  engine.submit(lng(), got.callbacks(1));
  CHECK_THROWS_AS(engine.submit(lng(), got.callbacks(2)), QueueFull);
  gate.set_value();
  engine.shutdown();
  CHECK_THROWS_AS(engine.submit(lng(), {}), ShuttingDown);
  std::unique_lock<std::mutex> lk(got.mu);
  REQUIRE(got.res[0]);
  REQUIRE(got.res[1]);
  CHECK(!got.res[2]);
  CHECK((got.res[1]->end == SeqEnd::Shutdown || got.res[1]->end == SeqEnd::Length));
}
