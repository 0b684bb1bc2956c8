// llrt serve: request parsing and validation, response building (see api.h).
#include "serve/api.h"

#include <cmath>
#include <limits>

#include "llrt/error.h"
#include "src/text/chat/chat_json.h"

namespace llrt::serve {

namespace {

std::string default_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 500: return "server_error";
    case 503: return "server_error";
    default: return "invalid_request_error";
  }
}

[[noreturn]] void bad(const std::string& param, const std::string& msg, const char* code = "invalid_value") {
  throw ApiError(400, msg, param, std::string(code));
}

const json* field(const json& b, const char* key) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const json& b, const char* key, double lo, double hi) {
  const json* v = field(b, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(key, std::string("'") + key + "' must be a number", "invalid_type");
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi)
    bad(key, std::string("'") + key + "' is " + v->dump() + ", must be between " + json(lo).dump() + " and " + json(hi).dump());
  return d;
}

std::optional<int64_t> get_int(const json& b, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(b, key);
  if (!v) return std::nullopt;
  int64_t i = 0;
  if (v->is_number_integer() && !(v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))) {
    i = v->get<int64_t>();
  } else if (v->is_number_float() && std::nearbyint(v->get<double>()) == v->get<double>() && std::fabs(v->get<double>()) < 9e15) {
    i = int64_t(v->get<double>());
  } else {
    bad(key, std::string("'") + key + "' must be an integer", "invalid_type");
  }
  if (i < lo || i > hi)
    bad(key, std::string("'") + key + "' is " + std::to_string(i) + ", must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return i;
}

std::optional<bool> get_bool(const json& b, const char* key) {
  const json* v = field(b, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) bad(key, std::string("'") + key + "' must be a boolean", "invalid_type");
  return v->get<bool>();
}

void check_model(const ServedModel& m, const json& b) {
  const json* v = field(b, "model");
  if (!v) return;
  if (!v->is_string()) bad("model", "'model' must be a string", "invalid_type");
  if (v->get<std::string>() != m.id)
    throw ApiError(404, "The model '" + v->get<std::string>() + "' does not exist (this server serves '" + m.id + "')", "model",
                   std::string("model_not_found"));
}

// The fields every generation request shares (sampling, stop, n, stream, logprobs for chat).
void parse_common(const ServedModel& m, const json& b, ParsedRequest& r) {
  check_model(m, b);
  SamplingParams& s = r.gen.sampling;
  s = m.defaults;
  r.gen.eos_ids = m.eos_ids;
  if (auto v = get_number(b, "temperature", 0, 1e6)) s.temperature = float(*v);
  if (auto v = get_number(b, "top_p", 0, 1)) {
    if (*v <= 0) bad("top_p", "'top_p' must be greater than 0 (1 keeps every token)");
    s.top_p = float(*v);
  }
  if (auto v = get_int(b, "top_k", -1, INT32_MAX)) s.top_k = *v < 0 ? 0 : *v;
  if (auto v = get_number(b, "min_p", 0, 1)) s.min_p = float(*v);
  if (auto v = get_number(b, "repetition_penalty", 0, 1e6)) {
    if (*v <= 0) bad("repetition_penalty", "'repetition_penalty' must be greater than 0 (1 is none)");
    s.repetition_penalty = float(*v);
  }
  if (auto v = get_number(b, "presence_penalty", -2, 2)) s.presence_penalty = float(*v);
  if (auto v = get_number(b, "frequency_penalty", -2, 2)) s.frequency_penalty = float(*v);
  if (const json* v = field(b, "seed")) {
    if (v->is_number_unsigned()) r.seed = v->get<uint64_t>();
    else if (v->is_number_integer()) r.seed = uint64_t(v->get<int64_t>());
    else bad("seed", "'seed' must be an integer", "invalid_type");
  }
  if (const json* v = field(b, "logit_bias")) {
    if (!v->is_object()) bad("logit_bias", "'logit_bias' must be an object mapping token ids to biases", "invalid_type");
    if (v->size() > 1024) bad("logit_bias", "'logit_bias' has more than 1024 entries");
    for (auto it = v->begin(); it != v->end(); ++it) {
      const std::string& k = it.key();
      int64_t id = -1;
      if (!k.empty() && k.size() <= 10 && k.find_first_not_of("0123456789") == std::string::npos) id = std::stoll(k);
      if (id < 0 || id >= m.vocab)
        bad("logit_bias", "logit_bias key '" + k + "' is not a token id of this model (0.." + std::to_string(m.vocab - 1) + ")");
      if (!it.value().is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < -100 || it->get<double>() > 100)
        bad("logit_bias", "logit_bias values must be numbers from -100 to 100");
      const double bias = it->get<double>();
      s.logit_bias.push_back({int32_t(id), bias <= -100 ? -1e30f : float(bias)});  // -100 bans the token
    }
  }
  if (const json* v = field(b, "stop")) {
    if (v->is_string()) {
      r.gen.stop_strings.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > 16) bad("stop", "'stop' holds more than 16 strings");
      for (const auto& e : *v) {
        if (!e.is_string()) bad("stop", "'stop' must be a string or a list of strings", "invalid_type");
        r.gen.stop_strings.push_back(e.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or a list of strings", "invalid_type");
    }
    for (const auto& st : r.gen.stop_strings)
      if (st.empty()) bad("stop", "an empty stop string would stop before the first token");
  }
  if (auto v = get_int(b, "n", 1, 16)) r.n = int(*v);
  if (auto v = get_bool(b, "stream")) r.stream = *v;
  if (const json* v = field(b, "stream_options")) {
    if (!v->is_object()) bad("stream_options", "'stream_options' must be an object", "invalid_type");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed with 'stream': true");
    if (auto u = get_bool(*v, "include_usage")) r.include_usage = *u;
  }
  auto mt = get_int(b, "max_tokens", 0, INT32_MAX);
  if (auto v = get_int(b, "max_completion_tokens", 0, INT32_MAX)) mt = v;
  r.max_tokens_given = mt.has_value();
  int64_t longest = 0;
  for (const auto& p : r.prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
  const char* prompt_field = r.kind == ApiKind::Chat ? "messages" : "prompt";
  if (longest >= m.n_ctx)
    throw ApiError(400, "the prompt is " + std::to_string(longest) + " tokens, the context holds " + std::to_string(m.n_ctx) +
                            " per sequence: no room to generate", prompt_field, std::string("context_length_exceeded"));
  if (mt && longest + *mt > m.n_ctx)
    throw ApiError(400, "the prompt (" + std::to_string(longest) + " tokens) plus max_tokens (" + std::to_string(*mt) +
                            ") exceeds the context of " + std::to_string(m.n_ctx) + " tokens per sequence",
                   "max_tokens", std::string("context_length_exceeded"));
  r.gen.max_new_tokens = mt ? *mt : m.n_ctx - longest;
  try {
    Sampler check(s);
  } catch (const Error& e) {
    bad("", e.what());
  }
}

std::vector<int32_t> token_ids(const json& v, int32_t vocab, const char* param) {
  std::vector<int32_t> ids;
  for (const auto& e : v) {
    if (!e.is_number_integer()) bad(param, std::string("'") + param + "' token ids must be integers", "invalid_type");
    const int64_t id = e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX) ? -1 : e.get<int64_t>();
    if (id < 0 || id >= vocab)
      bad(param, "token id " + e.dump() + " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
    ids.push_back(int32_t(id));
  }
  return ids;
}

std::string message_content(const json& content, size_t i) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(param, "'" + param + "' must be a string or a list of text parts", "invalid_type");
  std::string out;
  for (size_t k = 0; k < content.size(); ++k) {
    const json& part = content[k];
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") || !part["text"].is_string())
      bad(param, "'" + param + "' parts must be {\"type\": \"text\", \"text\": \"...\"} (llrt serves text models)", "invalid_type");
    if (k) out += "\n";
    out += part["text"].get<std::string>();
  }
  return out;
}

}  // namespace

ApiError::ApiError(int status_, const std::string& message, std::optional<std::string> param_, std::optional<std::string> code_,
                   std::string type_)
    : std::runtime_error(message), status(status_), type(type_.empty() ? default_type(status_) : std::move(type_)),
      param(std::move(param_)), code(std::move(code_)) {}

json ApiError::body() const { return error_body(status, what(), param, code, type); }

json error_body(int status, const std::string& message, const std::optional<std::string>& param,
                const std::optional<std::string>& code, const std::string& type) {
  json e = json::object();
  e["message"] = message;
  e["type"] = type.empty() ? default_type(status) : type;
  e["param"] = param ? json(*param) : json(nullptr);
  e["code"] = code ? json(*code) : json(nullptr);
  return json{{"error", e}};
}

json parse_body(const std::string& text) {
  json b;
  try {
    b = json::parse(text);
  } catch (const std::exception& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what(), std::nullopt, std::string("invalid_json"));
  }
  if (!b.is_object()) throw ApiError(400, "the request body must be a JSON object", std::nullopt, std::string("invalid_json"));
  return b;
}

std::vector<SeqRequest> ParsedRequest::sequences(uint64_t random_seed) const {
  std::vector<SeqRequest> out;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int j = 0; j < n; ++j) {
      SeqRequest s;
      s.prompt = prompts[p];
      s.gen = gen;
      s.gen.sampling.seed = (seed ? *seed : random_seed) + uint64_t(p * size_t(n) + size_t(j));
      s.top_logprobs = logprobs ? top_logprobs : -1;
      s.continue_text = kind == ApiKind::Completion;
      out.push_back(std::move(s));
    }
  return out;
}

ParsedRequest parse_chat_request(const ServedModel& m, const json& b) {
  ParsedRequest r;
  r.kind = ApiKind::Chat;
  r.reasoning = m.reasoning;
  check_model(m, b);
  const json* msgs = field(b, "messages");
  if (!msgs) bad("messages", "'messages' is required", "missing_required_parameter");
  if (!msgs->is_array()) bad("messages", "'messages' must be a list of messages", "invalid_type");
  if (msgs->empty()) bad("messages", "'messages' must hold at least one message");
  if (const json* t = field(b, "tools"); t && !(t->is_array() && t->empty()))
    bad("tools", "tool calling is not supported by llrt serve", "unsupported_parameter");
  nlohmann::ordered_json conv = nlohmann::ordered_json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& mj = (*msgs)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!mj.is_object()) bad(param, "'" + param + "' must be an object", "invalid_type");
    if (!mj.contains("role") || !mj["role"].is_string()) bad(param + ".role", "'" + param + ".role' must be a string", "invalid_type");
    nlohmann::ordered_json om = nlohmann::ordered_json::object();
    om["role"] = mj["role"];
    om["content"] = message_content(mj.contains("content") ? mj["content"] : json(nullptr), i);
    for (auto it = mj.begin(); it != mj.end(); ++it)
      if (it.key() != "role" && it.key() != "content") om[it.key()] = nlohmann::ordered_json::parse(it.value().dump());
    conv.push_back(std::move(om));
  }
  if (!m.tmpl) throw ApiError(400, "this model has no chat template: use /v1/completions", "messages", std::string("no_chat_template"));
  ChatRenderOptions o;
  o.add_generation_prompt = true;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (const json* k = field(b, "chat_template_kwargs")) {
    if (!k->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object", "invalid_type");
    extra = nlohmann::ordered_json::parse(k->dump());
  }
  std::string text;
  try {
    std::lock_guard<std::mutex> lk(m.render_mu);
    text = render_chat(*m.tmpl, conv, o, extra);
  } catch (const Error& e) {
    bad("messages", std::string("the chat template refused these messages: ") + e.what());
  }
  std::vector<int32_t> ids;
  try {
    if (!text.empty()) ids = m.tok.encode(text, !m.tmpl->starts_with_bos(text));
  } catch (const Error& e) {
    bad("messages", e.what());
  }
  if (ids.empty()) bad("messages", "the chat template rendered no tokens for these messages");
  r.prompts.push_back(std::move(ids));
  r.prompt_texts.push_back(text);
  if (auto v = get_bool(b, "logprobs")) r.logprobs = *v;
  if (auto v = get_int(b, "top_logprobs", 0, 20)) {
    if (!r.logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r.top_logprobs = int(*v);
  }
  if (const json* v = field(b, "reasoning_format")) {
    if (*v == "none") r.reasoning = ReasoningFormat::None;
    else if (*v == "deepseek") r.reasoning = ReasoningFormat::DeepSeek;
    else bad("reasoning_format", "'reasoning_format' must be \"none\" or \"deepseek\"");
  }
  parse_common(m, b, r);
  return r;
}

ParsedRequest parse_completion_request(const ServedModel& m, const json& b) {
  ParsedRequest r;
  r.kind = ApiKind::Completion;
  check_model(m, b);
  const json* p = field(b, "prompt");
  if (!p) bad("prompt", "'prompt' is required", "missing_required_parameter");
  auto add_text = [&](const std::string& s) {
    std::vector<int32_t> ids;
    try {
      ids = m.tok.encode(s, true);
    } catch (const Error& e) {
      bad("prompt", e.what());
    }
    if (ids.empty()) bad("prompt", "the prompt has no tokens");
    r.prompts.push_back(std::move(ids));
    r.prompt_texts.push_back(s);
  };
  auto add_ids = [&](const json& arr) {
    auto ids = token_ids(arr, m.vocab, "prompt");
    if (ids.empty()) bad("prompt", "the prompt has no tokens");
    r.prompt_texts.push_back(m.tok.decode(ids));
    r.prompts.push_back(std::move(ids));
  };
  if (p->is_string()) {
    add_text(p->get<std::string>());
  } else if (p->is_array() && !p->empty()) {
    if ((*p)[0].is_number()) add_ids(*p);
    else
      for (const auto& e : *p) {
        if (e.is_string()) add_text(e.get<std::string>());
        else if (e.is_array()) add_ids(e);
        else bad("prompt", "'prompt' must be a string, a list of strings, a list of token ids or a list of such lists", "invalid_type");
      }
  } else {
    bad("prompt", "'prompt' must be a non-empty string, list of strings, list of token ids or list of such lists", "invalid_type");
  }
  if (r.prompts.size() > 64) bad("prompt", "at most 64 prompts per request");
  if (auto v = get_bool(b, "echo")) r.echo = *v;
  if (auto v = get_int(b, "logprobs", 0, 20)) {
    r.logprobs = true;
    r.top_logprobs = int(*v);
  }
  parse_common(m, b, r);
  if (r.prompts.size() * size_t(r.n) > 64) bad("n", "at most 64 choices (prompts x n) per request");
  return r;
}

json tokenize_response(const ServedModel& m, const json& b) {
  const json* c = field(b, "content");
  if (!c || !c->is_string()) bad("content", "'content' must be a string", "invalid_type");
  bool add_special = false, pieces = false;
  if (auto v = get_bool(b, "add_special")) add_special = *v;
  if (auto v = get_bool(b, "with_pieces")) pieces = *v;
  std::vector<int32_t> ids;
  try {
    ids = m.tok.encode(c->get<std::string>(), add_special);
  } catch (const Error& e) {
    bad("content", e.what());
  }
  json toks = json::array();
  for (int32_t id : ids) {
    if (pieces) toks.push_back({{"id", id}, {"piece", m.tok.decode(std::span<const int32_t>(&id, 1))}});
    else toks.push_back(id);
  }
  return {{"tokens", toks}};
}

json detokenize_response(const ServedModel& m, const json& b) {
  const json* t = field(b, "tokens");
  if (!t || !t->is_array()) bad("tokens", "'tokens' must be a list of token ids", "invalid_type");
  return {{"content", m.tok.decode(token_ids(*t, m.vocab, "tokens"))}};
}

json models_response(const ServedModel& m) {
  return {{"object", "list"},
          {"data", json::array({{{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", "llrt"},
                                 {"max_model_len", m.n_ctx}}})}};
}

const char* finish_reason(SeqEnd e) {
  switch (e) {
    case SeqEnd::Eos:
    case SeqEnd::Stop: return "stop";
    default: return "length";  // max_tokens, the context, or a server shutdown cut it short
  }
}

// ---- reasoning ----------------------------------------------------------------------------

namespace {
const std::string kThinkOpen = "<think>", kThinkClose = "</think>";
size_t held_prefix(const std::string& s, const std::string& tag) {  // longest suffix of s that is a proper prefix of tag
  for (size_t n = std::min(tag.size() - 1, s.size()); n > 0; --n)
    if (s.compare(s.size() - n, n, tag, 0, n) == 0) return n;
  return 0;
}
}  // namespace

void ReasoningSplitter::push(const std::string& piece, std::string* reasoning, std::string* content) {
  held_ += piece;
  if (!started_) {
    size_t ws = held_.find_first_not_of(" \n");
    if (ws == std::string::npos) return;
    std::string rest = held_.substr(ws);
    if (rest.size() < kThinkOpen.size() && kThinkOpen.compare(0, rest.size(), rest) == 0) return;  // may be "<think>"
    if (rest.compare(0, kThinkOpen.size(), kThinkOpen) == 0) held_ = rest.substr(kThinkOpen.size());
    started_ = true;
  }
  if (in_reasoning_) {
    size_t at = held_.find(kThinkClose);
    if (at == std::string::npos) {
      size_t hold = held_prefix(held_, kThinkClose);
      *reasoning += held_.substr(0, held_.size() - hold);
      held_.erase(0, held_.size() - hold);
      return;
    }
    *reasoning += held_.substr(0, at);
    held_.erase(0, at + kThinkClose.size());
    in_reasoning_ = false;
  }
  if (!content_started_) {
    size_t s = held_.find_first_not_of("\n");
    if (s == std::string::npos) {
      held_.clear();
      return;
    }
    held_.erase(0, s);
    content_started_ = true;
  }
  *content += held_;
  held_.clear();
}

void ReasoningSplitter::finish(std::string* reasoning, std::string* content) {
  if (in_reasoning_) *reasoning += held_;
  else if (content_started_ || held_.find_first_not_of("\n") != std::string::npos)
    *content += held_.substr(content_started_ ? 0 : held_.find_first_not_of("\n"));
  held_.clear();
}

// ---- responses ----------------------------------------------------------------------------

ResponseWriter::ResponseWriter(const ServedModel& m, const ParsedRequest& r, std::string id, int64_t created)
    : m_(m), r_(r), id_(std::move(id)), created_(created), choices_(r.prompts.size() * size_t(r.n)) {}

json ResponseWriter::token_logprob_entry(const TokenLogprobs& lp) const {
  auto entry = [&](int32_t id, float logprob) {
    std::string t = m_.tok.decode(std::span<const int32_t>(&id, 1));
    json bytes = json::array();
    for (unsigned char c : t) bytes.push_back(int(c));
    return json{{"token", t}, {"logprob", logprob}, {"bytes", bytes}};
  };
  json e = entry(lp.chosen.id, lp.chosen.logprob);
  json top = json::array();
  for (const auto& t : lp.top) top.push_back(entry(t.id, t.logprob));
  e["top_logprobs"] = top;
  return e;
}

std::string ResponseWriter::chunk(int choice, const std::string& text, const std::string& reasoning, const json& logprobs,
                                  const json& finish) {
  Choice& c = choices_[size_t(choice)];
  json ch = {{"index", choice}};
  json out = {{"id", id_}, {"created", created_}, {"model", m_.id}};
  if (r_.kind == ApiKind::Chat) {
    json delta = json::object();
    if (!c.sent_role) delta["role"] = "assistant";
    if (!text.empty() || !c.sent_role) delta["content"] = text;
    if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
    ch["delta"] = delta;
    out["object"] = "chat.completion.chunk";
  } else {
    std::string t = text;
    if (r_.echo && !c.sent_role) t = r_.prompt_texts[size_t(choice) / size_t(r_.n)] + t;
    ch["text"] = t;
    out["object"] = "text_completion";
  }
  c.sent_role = true;
  ch["logprobs"] = logprobs;
  ch["finish_reason"] = finish;
  out["choices"] = json::array({ch});
  if (r_.include_usage) out["usage"] = nullptr;
  return "data: " + out.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string ResponseWriter::on_token(int choice, const TokenEvent& ev) {
  Choice& c = choices_[size_t(choice)];
  std::string content, reasoning;
  if (r_.kind == ApiKind::Chat && r_.reasoning == ReasoningFormat::DeepSeek) c.split.push(ev.text, &reasoning, &content);
  else content = ev.text;
  c.text += content;
  c.reasoning += reasoning;
  json lp = nullptr;
  if (ev.logprobs) {
    if (r_.kind == ApiKind::Chat) {
      json e = token_logprob_entry(*ev.logprobs);
      c.logprobs_content.push_back(e);
      lp = {{"content", json::array({e})}};
    } else {
      const int32_t id = ev.logprobs->chosen.id;
      std::string t = m_.tok.decode(std::span<const int32_t>(&id, 1));
      json top = json::object();
      for (const auto& x : ev.logprobs->top) top[m_.tok.decode(std::span<const int32_t>(&x.id, 1))] = x.logprob;
      c.lp_tokens.push_back(t);
      c.lp_values.push_back(ev.logprobs->chosen.logprob);
      c.lp_top.push_back(top);
      c.lp_offsets.push_back(c.offset);
      lp = {{"tokens", json::array({t})}, {"token_logprobs", json::array({ev.logprobs->chosen.logprob})},
            {"top_logprobs", json::array({top})}, {"text_offset", json::array({c.offset})}};
    }
  }
  c.offset += content.size();
  if (!r_.stream || (content.empty() && reasoning.empty() && lp.is_null())) return {};
  return chunk(choice, content, reasoning, lp, nullptr);
}

std::string ResponseWriter::on_done(int choice, const SeqResult& res) {
  Choice& c = choices_[size_t(choice)];
  c.done = true;
  c.res = res;
  c.finish = finish_reason(res.end);
  std::string content, reasoning;
  if (r_.kind == ApiKind::Chat && r_.reasoning == ReasoningFormat::DeepSeek) c.split.finish(&reasoning, &content);
  c.text += content;
  c.reasoning += reasoning;
  if (res.end == SeqEnd::Error) {
    if (!error_) error_ = res.error;
    if (r_.stream)
      return "data: " + error_body(500, "generation failed: " + res.error).dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    return {};
  }
  if (!r_.stream) return {};
  return chunk(choice, content, reasoning, nullptr, c.finish);
}

bool ResponseWriter::all_done() const {
  for (const auto& c : choices_)
    if (!c.done) return false;
  return true;
}

json ResponseWriter::usage() const {
  int64_t prompt = 0, completion = 0, cached = 0;
  for (size_t p = 0; p < r_.prompts.size(); ++p) {
    prompt += int64_t(r_.prompts[p].size());
    int64_t best = 0;
    for (int j = 0; j < r_.n; ++j) best = std::max(best, choices_[p * size_t(r_.n) + size_t(j)].res.cached_tokens);
    cached += best;
  }
  for (const auto& c : choices_) completion += c.res.completion_tokens;
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion},
          {"prompt_tokens_details", {{"cached_tokens", cached}}}};
}

std::string ResponseWriter::stream_end() {
  std::string s;
  if (r_.include_usage) {
    json out = {{"id", id_}, {"object", r_.kind == ApiKind::Chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
                {"model", m_.id}, {"choices", json::array()}, {"usage", usage()}};
    s += "data: " + out.dump() + "\n\n";
  }
  return s + "data: [DONE]\n\n";
}

json ResponseWriter::whole() const {
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json ch = {{"index", i}, {"finish_reason", c.finish}};
    if (r_.kind == ApiKind::Chat) {
      json msg = {{"role", "assistant"}, {"content", c.text}};
      if (r_.reasoning == ReasoningFormat::DeepSeek) msg["reasoning_content"] = c.reasoning;
      ch["message"] = msg;
      ch["logprobs"] = r_.logprobs ? json{{"content", c.logprobs_content}} : json(nullptr);
    } else {
      ch["text"] = (r_.echo ? r_.prompt_texts[i / size_t(r_.n)] : std::string()) + c.text;
      ch["logprobs"] = r_.logprobs ? json{{"tokens", c.lp_tokens}, {"token_logprobs", c.lp_values}, {"top_logprobs", c.lp_top},
                                          {"text_offset", c.lp_offsets}}
                                   : json(nullptr);
    }
    choices.push_back(ch);
  }
  return {{"id", id_},
          {"object", r_.kind == ApiKind::Chat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", m_.id},
          {"choices", choices},
          {"usage", usage()}};
}

}  // namespace llrt::serve
