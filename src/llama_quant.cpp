// compressed-tensors w8a8 inside the Llama engine: which Linear modules are quantized
// (llrt/quant.h resolves the config), checkpoint validation of their tensors, binding
// them to the LinearQ8 kernel, and running them (activation quantization once per
// input, then the int8 kernel on row ranges per thread).
#include <atomic>
#include <memory>
#include <optional>
#include <set>

#include "llrt/error.h"
#include "llrt/llama.h"
#include "llrt/quant.h"
#include "kernel_choice.h"
#include "model_impl.h"
#include "work_pool.h"

namespace llrt {

namespace {

// The parsed (and planned) quantization config of a checkpoint. Validation and binding ask
// for it once per Linear module (7 per layer), so the last parse is kept per thread, keyed
// by the config's JSON value and the two model numbers the plan depends on.
std::shared_ptr<const QuantConfig> quant_config_of(const Checkpoint& ck) {
  struct Cached {
    nlohmann::json src;
    int64_t layers = -1;
    bool tied = false;
    std::shared_ptr<const QuantConfig> qc;
  };
  thread_local std::optional<Cached> cache;
  const ModelConfig& c = ck.config();
  if (cache && cache->layers == c.num_hidden_layers && cache->tied == c.tie_word_embeddings &&
      cache->src == *c.quantization_config)
    return cache->qc;
  cache.reset();
  QuantConfig qc = parse_quantization_config(*c.quantization_config);
  // Rejects configs that would quantize non-Linear modules or a tied lm_head.
  (void)plan_llama_quantization(qc, int(c.num_hidden_layers), c.tie_word_embeddings);
  cache = Cached{*c.quantization_config, c.num_hidden_layers, c.tie_word_embeddings,
                 std::make_shared<const QuantConfig>(std::move(qc))};
  return cache->qc;
}

std::optional<Tensor> opt_tensor(const Checkpoint& ck, const std::string& name) {
  if (!ck.find(name)) return std::nullopt;
  return ck.tensor(name);
}

Q8Linear make_q8(const Checkpoint& ck, const std::string& module, const QuantScheme& s, int64_t N, int64_t K) {
  auto w = opt_tensor(ck, module + ".weight");
  auto ws = opt_tensor(ck, module + ".weight_scale");
  auto wz = opt_tensor(ck, module + ".weight_zero_point");
  auto is = opt_tensor(ck, module + ".input_scale");
  auto iz = opt_tensor(ck, module + ".input_zero_point");
  auto p = [](const std::optional<Tensor>& t) { return t ? &*t : nullptr; };
  return validate_q8_linear(module, s, N, K, p(w), p(ws), p(wz), p(is), p(iz));
}

}  // namespace

// Returns false when the module is not quantized (the caller checks a float weight).
bool validate_quantized_linear(const Checkpoint& ck, const ModuleSpec& m, std::set<std::string>& owned) {
  if (!ck.config().quantization_config) {
    const TensorInfo* t = ck.find(m.name + ".weight");
    if (t && t->dtype == DType::I8)
      fail(ErrorCode::UnsupportedDType, "tensor '" + m.name + ".weight' in " + ck.file_of(m.name + ".weight") +
                                            " is I8 but config.json has no quantization_config: llrt will not guess its scales");
    return false;
  }
  const auto qc = quant_config_of(ck);  // held while `s` points into it
  const QuantScheme* s = qc->resolve(m.name);
  if (!s) return false;
  for (const auto& n : q8_linear_tensor_names(*s)) {
    std::string full = m.name + "." + n.suffix;
    if (ck.find(full)) owned.insert(full);
    else if (n.required)
      fail(ErrorCode::Checkpoint, ck.dir().string() + ": missing tensor '" + full + "' (module '" + m.name + "' is quantized: " +
                                      s->describe() + ")");
  }
  (void)make_q8(ck, m.name, *s, m.out, m.in);
  return true;
}

void bind_quantized_linear(const Checkpoint& ck, LinearWeights& lw) {
  std::string module = lw.name.rfind("lm_head", 0) == 0 ? "lm_head" : lw.name;
  const auto qc = quant_config_of(ck);  // held while `s` points into it
  const QuantScheme* s = qc->resolve(module);
  if (!s) fail(ErrorCode::Internal, "bind_quantized_linear on unquantized module " + module);
  auto q = std::make_shared<Q8Linear>(make_q8(ck, module, *s, lw.out, lw.in));
  (void)best_linear_q8_entry();  // the capability answer (throws when none is usable)
  lw.entry = choose_kernel(Op::LinearQ8, DType::I8, Phase::Decode).entry;
  lw.entry_prefill = choose_kernel(Op::LinearQ8, DType::I8, Phase::Prefill).entry;
  lw.q8 = q;
}

namespace {
const Q8Linear& q8_of(const LinearWeights& l) { return *static_cast<const Q8Linear*>(l.q8.get()); }
const LinearQ8Kernel& q8_kernel_of(const LinearWeights& l, int64_t M) {
  return *static_cast<const LinearQ8Kernel*>((M == 1 ? l.entry : l.entry_prefill)->fn);
}
}  // namespace

size_t q8_prep_bytes(const LinearWeights& lw, int64_t M) { return q8_kernel_of(lw, M).prep_bytes(M, lw.in); }

bool q8_can_share_prep(const LinearWeights& a, const LinearWeights& b) {
  return a.entry == b.entry && a.entry_prefill == b.entry_prefill && a.in == b.in && q8_same_activation_quant(q8_of(a).act, q8_of(b).act);
}

// Quantizes x once (tokens split over threads) and runs every linear's rows in one region.
void run_q8_linears(const LinearWeights* const* ls, float* const* ys, int count, const float* x, int64_t M,
                    void* prep_buf, int threads) {
  const LinearQ8Kernel& k = q8_kernel_of(*ls[0], M);
  const Q8Linear& q0 = q8_of(*ls[0]);
  const int64_t K = ls[0]->in;
  // One token (decode): quantized here, so no thread waits at a barrier for another.
  const bool prep_par = M > 1;
  if (!prep_par) k.prep(x, K, M, K, 0, M, q0.act, prep_buf);
  WorkPool& pool = WorkPool::global();
  if (prep_par)  // token ranges of 16
    pool.run(threads, (M + 15) / 16, [&](int64_t b, int) { k.prep(x, K, M, K, b * 16, std::min(M, b * 16 + 16), q0.act, prep_buf); });
  const RowChunks work(ls, count, threads);
  pool.run(threads, work.total, [&](int64_t item, int) {
    int i;
    int64_t n0, n1;
    work.rows(item, &i, &n0, &n1);
    const LinearWeights& L = *ls[i];
    k.run(q8_of(L).args(prep_buf, ys[i], L.out, M, n0, n1));
  });
}

}  // namespace llrt
