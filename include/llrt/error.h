// llrt: typed errors. Every failure the library reports is an llrt::Error with a
// code a program can switch on and a message a person can act on.
#pragma once
#include <stdexcept>
#include <string>

namespace llrt {

enum class ErrorCode {
  InvalidArgument,    // caller passed something invalid (API misuse, bad CLI value)
  Io,                 // a file could not be opened / read / mapped
  Format,             // a file's bytes are malformed (safetensors header, JSON, tokenizer file)
  Config,             // config.json / generation_config.json values are invalid
  Checkpoint,         // the tensor set does not match the config (missing, extra, wrong shape)
  UnsupportedDType,   // a recognised dtype that llrt does not compute with
  UnsupportedModel,   // architecture / rope type / quantization scheme llrt does not run
  UnsupportedKernel,  // no kernel for (op, dtype) usable on this hardware
  ContextOverflow,    // more tokens than the KV cache holds
  Tokenizer,          // tokenizer file unsupported / encode-decode problem
  Template,           // chat template render error
  Cuda,               // CUDA runtime errors
  NonFinite,          // NaN or Inf where numbers must be finite (logits, weights): a damaged checkpoint
  Internal,           // a bug in llrt
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

}  // namespace llrt
