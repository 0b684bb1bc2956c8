// llrt serve: the OpenAI API's requests and responses, without any HTTP.
//
// parse_chat_request / parse_completion_request turn a request body into the sequences to run
// (prompt ids + GenerateOptions), checking every field's type and range: anything wrong is an
// ApiError (HTTP status + OpenAI's error object, all four keys always present). ChoiceWriter
// turns the engine's token events back into OpenAI's JSON: whole responses, or SSE chunks.
#pragma once
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llrt/chat_template.h"
#include "llrt/generate.h"
#include "llrt/tokenizer.h"
#include "serve/engine.h"

namespace llrt::serve {

using json = nlohmann::json;

// An error as OpenAI sends it: {"error": {"message", "type", "param", "code"}}.
struct ApiError : std::runtime_error {
  int status;
  std::string type;
  std::optional<std::string> param, code;
  ApiError(int status, const std::string& message, std::optional<std::string> param = std::nullopt,
           std::optional<std::string> code = std::nullopt, std::string type = "");
  json body() const;
};
json error_body(int status, const std::string& message, const std::optional<std::string>& param = std::nullopt,
                const std::optional<std::string>& code = std::nullopt, const std::string& type = "");

enum class ReasoningFormat { None, DeepSeek };  // DeepSeek: <think>...</think> -> reasoning_content

// What the API layer needs to know about the served model.
struct ServedModel {
  ServedModel(std::string id_, Tokenizer tok_) : id(std::move(id_)), tok(std::move(tok_)) {}
  std::string id;  // the directory name, or --alias
  Tokenizer tok;
  std::optional<ChatTemplate> tmpl;  // null: the model has none (chat completions are refused)
  std::vector<int32_t> eos_ids;
  SamplingParams defaults;  // generation_config.json (HF semantics)
  int64_t n_ctx = 0;        // per sequence
  int32_t vocab = 0;
  ReasoningFormat reasoning = ReasoningFormat::None;  // --reasoning-format
  int64_t created = 0;      // unix time of the load
  mutable std::mutex render_mu;  // chat template rendering, one at a time
};

enum class ApiKind { Chat, Completion };

struct ParsedRequest {
  ApiKind kind = ApiKind::Chat;
  std::vector<std::vector<int32_t>> prompts;  // chat: one; completions: one per prompt
  std::vector<std::string> prompt_texts;      // for echo
  int n = 1;                                  // choices per prompt
  GenerateOptions gen;                        // max_new_tokens: per choice
  bool max_tokens_given = false;
  std::optional<uint64_t> seed;
  bool stream = false, include_usage = false, echo = false;
  bool logprobs = false;
  int top_logprobs = 0;                       // with logprobs
  ReasoningFormat reasoning = ReasoningFormat::None;
  // The sequences to submit: choice i = prompt (i / n), seed + i (a different draw per choice).
  std::vector<SeqRequest> sequences(uint64_t random_seed) const;
};

ParsedRequest parse_chat_request(const ServedModel& m, const json& body);
ParsedRequest parse_completion_request(const ServedModel& m, const json& body);
// The body text -> a JSON object (ApiError 400 otherwise).
json parse_body(const std::string& text);

// llama-server's /tokenize ({"content", "add_special", "with_pieces"}) and /detokenize ({"tokens"}).
json tokenize_response(const ServedModel& m, const json& body);
json detokenize_response(const ServedModel& m, const json& body);
json models_response(const ServedModel& m);

const char* finish_reason(SeqEnd e);

// Splits a generated text into reasoning (<think>...</think>) and content, fed piece by piece.
// As vLLM's deepseek_r1 parser: a leading "<think>" is dropped, everything before "</think>"
// is reasoning, the rest is content (its leading newlines dropped); text that may be the start
// of "</think>" is held until it is decided.
class ReasoningSplitter {
 public:
  // Appends to *reasoning and *content what this piece decides.
  void push(const std::string& piece, std::string* reasoning, std::string* content);
  void finish(std::string* reasoning, std::string* content);

 private:
  std::string held_;
  bool started_ = false, in_reasoning_ = true, content_started_ = false;
};

// One request's output: its choices' text, logprobs and ends, as chunks (stream) or a whole
// response. Not thread-safe: the HTTP side feeds it from one thread.
class ResponseWriter {
 public:
  ResponseWriter(const ServedModel& m, const ParsedRequest& r, std::string id, int64_t created);
  // SSE chunks (each "data: {...}\n\n") for this event; empty when nothing is due yet.
  std::string on_token(int choice, const TokenEvent& ev);
  std::string on_done(int choice, const SeqResult& res);
  std::string stream_end();  // the usage chunk (include_usage) and "data: [DONE]"
  json whole() const;         // the non-streaming response
  bool all_done() const;
  const std::optional<std::string>& error() const { return error_; }  // a sequence that failed

 private:
  struct Choice {
    std::string text, reasoning;
    ReasoningSplitter split;
    json logprobs_content = json::array();  // chat: [{token, logprob, bytes, top_logprobs}]
    json lp_tokens = json::array(), lp_values = json::array(), lp_top = json::array(), lp_offsets = json::array();
    size_t offset = 0;
    bool done = false, sent_role = false;
    std::string finish;
    SeqResult res;
  };
  std::string chunk(int choice, const std::string& text, const std::string& reasoning, const json& logprobs,
                    const json& finish) ;
  json token_logprob_entry(const TokenLogprobs& lp) const;
  json usage() const;
  const ServedModel& m_;
  const ParsedRequest& r_;
  std::string id_;
  int64_t created_;
  std::vector<Choice> choices_;
  std::optional<std::string> error_;
};

}  // namespace llrt::serve
