// Quantized (compressed-tensors w8a8) linear modules: checkpoint validation.
#include <set>

#include "llrt/error.h"
#include "llrt/llama.h"
#include "model_impl.h"

namespace llrt {
void validate_quantized_linear(const Checkpoint& ck, const ModuleSpec& m, std::set<std::string>& owned) {
  (void)owned;
  fail(ErrorCode::UnsupportedModel, ck.dir().string() + ": module '" + m.name +
                                        "' is quantized; w8a8 support is not wired into this build yet");
}
}  // namespace llrt

namespace llrt {
void bind_quantized_linear(const Checkpoint& ck, LinearWeights& lw) {
  fail(ErrorCode::UnsupportedModel, ck.dir().string() + ": module '" + lw.name + "' is quantized; w8a8 is not wired into this build yet");
}
size_t q8_prep_bytes(const LinearWeights&, int64_t) { return 0; }
void run_q8_linear(const LinearWeights& lw, const float*, int64_t, float*, void*, int) {
  fail(ErrorCode::Internal, "quantized linear " + lw.name + " has no runner");
}
}  // namespace llrt
