// The model plan (src/model_plan.h): every module of llama_modules() with its weights and
// the quantization resolved once.
#include "model_plan.h"

#include <cmath>
#include <optional>

#include "llrt/error.h"
#include "src/io/config_json.h"
#include "src/engine/llama.h"
#include "llrt/model.h"

namespace llrt {

uint64_t LinearPlan::weight_bytes() const { return uint64_t(N) * uint64_t(K) * dtype_size(view.dtype); }
uint64_t LinearPlan::scale_bytes() const {
  if (view.granularity == ScaleGranularity::None) return 0;
  return uint64_t(view.granularity == ScaleGranularity::Channel ? N : 1) * dtype_size(view.scale_dtype);
}

bool linears_fusable(const LinearPlan& a, const LinearPlan& b) {
  if (a.view.dtype != b.view.dtype || a.K != b.K) return false;
  if (a.view.dtype != DType::I8) return true;
  return a.view.granularity == ScaleGranularity::Channel && b.view.granularity == ScaleGranularity::Channel &&
         a.view.scale_dtype == b.view.scale_dtype && q8_same_activation_quant(a.view.act, b.view.act);
}

void ModelPlan::rope_table(int64_t ctx, float* cos, float* sin) const {
  const int64_t half = cfg.head_dim / 2;
  for (int64_t p = 0; p < ctx; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const float f = float(p) * inv_freq[size_t(i)];
      cos[p * half + i] = float(std::cos(double(f)));
      sin[p * half + i] = float(std::sin(double(f)));
    }
}

namespace {

TensorPlan tensor_plan(const Checkpoint& ck, const std::string& name) {
  Tensor t = ck.tensor(name);
  return {name, t.data(), t.dtype(), t.nbytes()};
}

LinearPlan linear_plan(const Checkpoint& ck, const QuantConfig* qc, const std::string& module, const std::string& label) {
  const std::string tensor = module + ".weight";
  Tensor w = ck.tensor(tensor);
  LinearPlan l;
  l.name = label;
  l.tensor = tensor;
  l.N = w.dim(0);
  l.K = w.dim(1);
  l.view.data = w.data();
  l.view.dtype = w.dtype();
  if (w.dtype() != DType::I8) return l;
  const QuantScheme* s = qc ? qc->resolve(module) : nullptr;
  if (!s) fail(ErrorCode::Internal, "I8 weight of a module the quantization config does not quantize: " + module);
  l.view = llama_q8_linear(ck, module, *s, l.N, l.K).view();
  l.scheme = s;
  return l;
}

}  // namespace

ModelPlan plan_model(const Checkpoint& ck) {
  ModelPlan p;
  p.cfg = ck.config();
  const ModelConfig& c = p.cfg;
  if (c.quantization_config) {
    auto qc = std::make_shared<QuantConfig>(parse_quantization_config(c.quantization_config->value));
    // Rejects configs that would quantize non-Linear modules or a tied lm_head.
    (void)plan_llama_quantization(*qc, int(c.num_hidden_layers), c.tie_word_embeddings);
    p.quant = std::move(qc);
  }
  const QuantConfig* qc = p.quant.get();
  p.layers.resize(size_t(c.num_hidden_layers));
  p.tied_head = c.tie_word_embeddings;
  // One pass over the module list (llama_modules: the one place the names are written).
  for (const ModuleSpec& m : llama_modules(c)) {
    switch (m.role) {
      case WeightRole::Embedding:
        p.embed = tensor_plan(ck, m.name + ".weight");
        if (p.tied_head) {
          p.lm_head = linear_plan(ck, nullptr, m.name, "lm_head (tied to " + m.name + ")");
          p.lm_head.tensor = m.name + ".weight";
        }
        break;
      case WeightRole::Norm:
        if (m.layer < 0) p.final_norm = tensor_plan(ck, m.name + ".weight");
        else (m.slot == 0 ? p.layers[size_t(m.layer)].attn_norm : p.layers[size_t(m.layer)].mlp_norm) = tensor_plan(ck, m.name + ".weight");
        break;
      case WeightRole::Linear:
        p.layers[size_t(m.layer)].linear[m.slot] = linear_plan(ck, qc, m.name, m.name);
        break;
      case WeightRole::LmHead: p.lm_head = linear_plan(ck, qc, m.name, m.name); break;
    }
  }
  p.fuse_qkv = p.fuse_gate_up = !p.layers.empty();
  for (const LayerPlan& L : p.layers) {
    p.fuse_qkv = p.fuse_qkv && linears_fusable(L.linear[kQProj], L.linear[kKProj]) &&
                 linears_fusable(L.linear[kQProj], L.linear[kVProj]);
    p.fuse_gate_up = p.fuse_gate_up && linears_fusable(L.linear[kGateProj], L.linear[kUpProj]);
  }
  p.inv_freq = rope_inv_freq(c);
  return p;
}

}  // namespace llrt
