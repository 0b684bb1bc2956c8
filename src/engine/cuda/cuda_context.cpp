// The CUDA engine's context: KV cache, scratch, the forward pass on the device and the
// decode step captured in a CUDA graph.
//
// The forward pass is src/engine/forward.cpp's, op for op (see there for the math):
//   x = embed(ids)
//   per layer: xb = rmsnorm(x); qkv = xb.[Wq|Wk|Wv]^T; rope(q, k) + write k, v to the
//              cache; att = attention(q, cache); x += att.Wo^T (the residual add fused
//              into the Linear: y = y + dot, one F32 rounding, as the CPU's x += xb);
//              xb = rmsnorm(x); gu = xb.[Wg|Wu]^T; g = silu(g) * u; x += g.Wd^T
//   logits = rmsnorm(x_last).lm_head^T
// Decode (one token) runs as one CUDA graph replay: the token id and the position are
// copied to the device first and every kernel reads the position from there, so the
// graph captured at the first step serves all later ones. Prefill runs in chunks of
// n_batch tokens without a graph (the products go through cuBLAS there).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cuda_engine.h"
#include "llrt/error.h"

namespace llrt {

using namespace cudaeng;

namespace {
// Whether environment variable `name` is set to exactly `value` (the decode-path switches).
bool env_is(const char* name, const char* value) {
  const char* e = std::getenv(name);
  return e && std::string(e) == value;
}
}  // namespace

struct CudaContext::State {
  const CudaModel::Impl* m = nullptr;
  ContextPlan plan;
  char* base = nullptr;
  cuda::Blas* blas = nullptr;
  cudaStream_t s = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool graphs = true;
  bool fused = false;  // decode step through matvec_fused.cu + attention with RoPE fused
  bool pdl = false;    // ... with programmatic dependent launch (sm_90+)
  bool async_norm = false;  // ... RmsNorm inputs staged with cp.async (DecodeLinearCall::async_norm)
  bool q8_silu = false;  // ... w8a8 down_proj: silu*up quantized in one launch (q8_silu_mul), plain int8 GEMV
  int64_t n_past = 0;
  int32_t* h_ids = nullptr;  // pinned
  int32_t* h_pos = nullptr;
  int32_t* h_arg = nullptr;
  float* h_logits = nullptr;
  float *x = nullptr, *xb = nullptr, *qkv = nullptr, *att = nullptr, *gu = nullptr, *logits = nullptr, *kv = nullptr;
  float *cos = nullptr, *sin = nullptr;
  void* conv = nullptr;
  int8_t* xq = nullptr;
  float* xs = nullptr;
  void* q8sync = nullptr;
  int32_t *xzp = nullptr, *acc = nullptr, *ids = nullptr, *pos = nullptr, *arg = nullptr;
  void* attn = nullptr;

  ~State() {
    if (s) cudaStreamSynchronize(s);
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    cuda::blas_destroy(blas);
    if (s) cudaStreamDestroy(s);
    if (base) cudaFree(base);
    for (void* p : {static_cast<void*>(h_ids), static_cast<void*>(h_pos), static_cast<void*>(h_arg), static_cast<void*>(h_logits)})
      if (p) cudaFreeHost(p);
  }

  template <class T>
  T* at(uint64_t off) { return reinterpret_cast<T*>(base + off); }

  // ---------------------------------------------------------------- ops
  // The activation quantization of L's input into the context's codes buffer (the fields
  // Q8QuantizeCall and Q8SiluMulCall share).
  template <class Call>
  void q8_target(Call& q, const DevLinear& L) const {
    q.mode = L.mode;
    q.static_scale = L.a_scale;
    q.static_zp = L.a_zp;
    q.q = xq;
    q.scale = xs;
    q.zp = xzp;
  }

  void linear(const DevLinear& L, const float* in, int64_t ldx, float* y, int64_t ldy, int64_t M, bool accumulate,
              bool quantized) {
    if (L.dtype == DType::I8) {
      const auto& k = *L.entry->fn<const cuda::LinearQ8Kernels*>();
      if (!quantized) {
        cuda::Q8QuantizeCall q;
        q.x = in;
        q.ldx = ldx;
        q.M = M;
        q.K = L.K;
        q8_target(q, L);
        k.quantize(q, s);
      }
      cuda::Q8LinearCall c;
      c.w = static_cast<const int8_t*>(L.w);
      c.N = L.N;
      c.K = L.K;
      c.w_scale = L.ws;
      c.w_scale_dtype = L.ws_dtype;
      c.per_channel = L.per_channel;
      c.w_rowsum = L.rowsum;
      c.q = xq;
      c.scale = xs;
      c.zp = xzp;
      c.M = M;
      c.y = y + L.col;
      c.ldy = ldy;
      c.accumulate = accumulate;
      c.acc = acc;
      c.blas = blas;
      k.run(c, s);
      return;
    }
    cuda::LinearCall c;
    c.w = L.w;
    c.N = L.N;
    c.K = L.K;
    c.x = in;
    c.ldx = ldx;
    c.y = y + L.col;
    c.ldy = ldy;
    c.M = M;
    c.accumulate = accumulate;
    c.conv = conv;
    c.blas = blas;
    kernel_fn<cuda::LinearFn>(*L.entry)(c, s);
  }

  static bool same_quant(const DevLinear& a, const DevLinear& b) {
    return a.dtype == DType::I8 && b.dtype == DType::I8 && a.K == b.K && a.mode == b.mode && a.a_scale == b.a_scale &&
           a.a_zp == b.a_zp;
  }

  // Linears that read the same input: activations quantized once when they can be.
  void group(const std::vector<DevLinear>& g, const float* in, int64_t ldx, float* y, int64_t ldy, int64_t M) {
    for (size_t i = 0; i < g.size(); ++i) linear(g[i], in, ldx, y, ldy, M, false, i > 0 && same_quant(g[i - 1], g[i]));
  }

  void norm(const DevNorm& n, const float* in, float* out, int64_t rows) {
    const ModelConfig& c = m->cfg;
    cuda::RmsNormCall r;
    r.x = in;
    r.ldx = c.hidden_size;
    r.w = n.w;
    r.y = out;
    r.ldy = c.hidden_size;
    r.rows = rows;
    r.dim = c.hidden_size;
    r.eps = float(c.rms_norm_eps);
    kernel_fn<cuda::RmsNormFn>(*n.entry)(r, s);
  }

  // T tokens (ids already on the device) at positions p0.. (or *pos when dev_pos); the
  // final norm of rows [out_from, T) lands in xb.
  void forward(int64_t T, int64_t p0, bool dev_pos, int64_t out_from) {
    const ModelConfig& c = m->cfg;
    const WeightPlan& w = m->plan;
    const int64_t H = c.hidden_size, QD = c.q_dim(), KVD = c.kv_dim(), I = c.intermediate_size, QKV = QD + 2 * KVD;
    const int64_t ctx = plan.ctx, hd = c.head_dim, nkv = c.num_key_value_heads;
    cuda::EmbeddingCall e;
    e.table = w.embed_w;
    e.D = H;
    e.ids = ids;
    e.n = T;
    e.out = x;
    m->embed_fn(e, s);
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const DevLayer& L = w.layers[l];
      float* kc = kv + int64_t(l) * 2 * nkv * ctx * hd;
      float* vc = kc + nkv * ctx * hd;
      norm(L.attn_norm, x, xb, T);
      group(L.qkv, xb, H, qkv, QKV, T);
      cuda::RopeCall r;
      r.q = qkv;
      r.k = qkv + QD;
      r.v = qkv + QD + KVD;
      r.ld = QKV;
      r.T = T;
      r.n_heads = c.num_attention_heads;
      r.n_kv_heads = nkv;
      r.head_dim = hd;
      r.cos = cos;
      r.sin = sin;
      r.kc = kc;
      r.vc = vc;
      r.ctx = ctx;
      r.p0 = p0;
      r.p0_dev = dev_pos ? pos : nullptr;
      m->rope_fn(r, s);
      cuda::AttentionCall a;
      a.q = qkv;
      a.ldq = QKV;
      a.kc = kc;
      a.vc = vc;
      a.ctx = ctx;
      a.n_heads = c.num_attention_heads;
      a.n_kv_heads = nkv;
      a.head_dim = hd;
      a.T = T;
      a.p0 = p0;
      a.p0_dev = dev_pos ? pos : nullptr;
      a.scale = float(1.0 / std::sqrt(double(hd)));
      a.out = att;
      a.ldo = QD;
      a.scratch = attn;
      m->attn_fn(a, s);
      linear(L.o, att, QD, x, H, T, true, false);
      norm(L.mlp_norm, x, xb, T);
      group(L.gate_up, xb, H, gu, 2 * I, T);
      cuda::SiluMulCall sm;
      sm.g = gu;
      sm.u = gu + I;
      sm.ldg = 2 * I;
      sm.out = gu;
      sm.ldo = 2 * I;
      sm.rows = T;
      sm.n = I;
      m->silu_fn(sm, s);
      linear(L.down, gu, 2 * I, x, H, T, true, false);
    }
    if (out_from < T) norm(w.final_norm, x + out_from * H, xb + out_from * H, T - out_from);
  }

  // lm_head on one final-normed row of xb, then the device argmax.
  void head(int64_t row) {
    const ModelConfig& c = m->cfg;
    linear(m->plan.lm_head, xb + row * c.hidden_size, c.hidden_size, logits, c.vocab_size, 1, false, false);
    cuda::argmax_f32(logits, c.vocab_size, arg, s);
  }

  // ---------------------------------------------------------------- fused decode step
  // 6 launches per layer: [rmsnorm+qkv] [rope+kv write+attention] [o (+x)] [rmsnorm+gate_up]
  // [silu*up] [down (+x)] (w8a8: the activation quantization inside each), then
  // [final norm+lm_head] and the argmax. The same bits as forward(1) + head(0): the fused
  // kernels share their arithmetic with the separate ones (fused_math.cuh).
  cuda::DecodeLinearCall dl(const DevLinear& L, cuda::DecodeInput in, const float* in_x, const DevNorm* nrm, int64_t up_off,
                            float* y, bool accumulate) const {
    cuda::DecodeLinearCall c;
    c.wtype = L.dtype;
    c.w = L.w;
    c.N = L.N;
    c.K = L.K;
    c.input = in;
    c.x = in_x;
    if (nrm) {
      c.norm_w = nrm->w;
      c.norm_dtype = nrm->dtype;
      c.eps = float(m->cfg.rms_norm_eps);
    }
    c.up_off = up_off;
    c.y = y + L.col;
    c.accumulate = accumulate;
    c.pdl = pdl;
    c.async_norm = async_norm;
    if (L.dtype == DType::I8) {
      c.w_scale = L.ws;
      c.w_scale_dtype = L.ws_dtype;
      c.per_channel = L.per_channel;
      c.w_rowsum = L.rowsum;
      c.mode = L.mode;
      c.static_scale = L.a_scale;
      c.static_zp = L.a_zp;
    }
    return c;
  }
  struct LayerCalls {
    cuda::DecodeLinearCall qkv, o, gate_up, down;
  };
  LayerCalls layer_calls(const DevLayer& L) const {
    return {dl(L.qkv[0], cuda::DecodeInput::RmsNorm, x, &L.attn_norm, 0, qkv, false),
            dl(L.o, cuda::DecodeInput::Plain, att, nullptr, 0, x, true),
            dl(L.gate_up[0], cuda::DecodeInput::RmsNorm, x, &L.mlp_norm, 0, gu, false),
            dl(L.down, cuda::DecodeInput::Plain, gu, nullptr, 0, x, true)};
  }
  cuda::DecodeLinearCall head_call() const {
    return dl(m->plan.lm_head, cuda::DecodeInput::RmsNorm, x, &m->plan.final_norm, 0, logits, false);
  }
  // The registry's fused decode Linear for the call's weight dtype (can_fuse checked it exists).
  void launch_fused(const cuda::DecodeLinearCall& c) { m->fused_linear.at(c.wtype)(c, s); }
  bool can_fuse() const {
    if (env_is("LLRT_CUDA_FUSED", "0")) return false;
    if (m->cfg.head_dim % 2 != 0) return false;
    for (const auto& L : m->plan.layers) {
      if (L.qkv.size() != 1 || L.gate_up.size() != 1) return false;
      const LayerCalls k = layer_calls(L);
      for (const auto* c : {&k.qkv, &k.o, &k.gate_up, &k.down})
        if (!m->fused_linear.count(c->wtype) || !cuda::decode_linear_supported(*c)) return false;
    }
    return m->fused_linear.count(head_call().wtype) && cuda::decode_linear_supported(head_call());
  }
  void decode_fused() {
    const ModelConfig& c = m->cfg;
    const WeightPlan& w = m->plan;
    const int64_t QD = c.q_dim(), KVD = c.kv_dim(), ctx = plan.ctx, hd = c.head_dim, nkv = c.num_key_value_heads;
    cuda::EmbeddingCall e;
    e.table = w.embed_w;
    e.D = c.hidden_size;
    e.ids = ids;
    e.n = 1;
    e.out = x;
    m->embed_fn(e, s);
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const LayerCalls k = layer_calls(w.layers[l]);
      float* kc = kv + int64_t(l) * 2 * nkv * ctx * hd;
      launch_fused(k.qkv);
      cuda::AttentionCall a;
      a.q = qkv;
      a.ldq = QD + 2 * KVD;
      a.kc = kc;
      a.vc = kc + nkv * ctx * hd;
      a.ctx = ctx;
      a.n_heads = c.num_attention_heads;
      a.n_kv_heads = nkv;
      a.head_dim = hd;
      a.T = 1;
      a.p0_dev = pos;
      a.scale = float(1.0 / std::sqrt(double(hd)));
      a.out = att;
      a.ldo = QD;
      a.scratch = attn;
      a.cos = cos;
      a.sin = sin;
      a.k_new = qkv + QD;
      a.v_new = qkv + QD + KVD;
      a.pdl = pdl;
      m->attn_fn(a, s);
      launch_fused(k.o);
      launch_fused(k.gate_up);
      if (q8_silu) {  // the codes come from the silu kernel; down is the plain int8 GEMV (+x)
        const DevLinear& D = w.layers[l].down;
        cuda::Q8SiluMulCall q;
        q.g = gu;
        q.u = gu + c.intermediate_size;
        q.out = gu;
        q.n = c.intermediate_size;
        q8_target(q, D);
        q.sync = q8sync;
        cuda::q8_silu_mul(q, s);
        linear(D, gu, 2 * c.intermediate_size, x, c.hidden_size, 1, true, true);
        continue;
      }
      cuda::SiluMulCall sm;  // separate: fusing it would recompute silu over I per block (measured slower)
      sm.g = gu;
      sm.u = gu + c.intermediate_size;
      sm.ldg = 2 * c.intermediate_size;
      sm.out = gu;
      sm.ldo = 2 * c.intermediate_size;
      sm.rows = 1;
      sm.n = c.intermediate_size;
      m->silu_fn(sm, s);
      launch_fused(k.down);
    }
    launch_fused(head_call());
    cuda::argmax_f32(logits, c.vocab_size, arg, s);
  }

  void decode_body() {
    if (fused) return decode_fused();
    forward(1, 0, true, 0);
    head(0);
  }

  void capture() {
    cuda::check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      decode_body();
    } catch (...) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    cuda::check(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture");
    cuda::check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  }

  void sync(const char* what) { cuda::check(cudaStreamSynchronize(s), what); }

  // Runs the tokens; afterwards `logits` (device) and `arg` hold the last token's.
  void run(std::span<const int32_t> toks) {
    cuda::check(cudaSetDevice(m->dev.index), "cudaSetDevice");
    const int64_t n = int64_t(toks.size());
    if (n == 1) {
      h_ids[0] = toks[0];
      *h_pos = int32_t(n_past);
      cuda::check(cudaMemcpyAsync(ids, h_ids, 4, cudaMemcpyHostToDevice, s), "copy token");
      cuda::check(cudaMemcpyAsync(pos, h_pos, 4, cudaMemcpyHostToDevice, s), "copy position");
      if (graphs) {
        if (!exec) capture();
        cuda::check(cudaGraphLaunch(exec, s), "cudaGraphLaunch");
      } else {
        decode_body();
      }
      n_past += 1;
      return;
    }
    for (int64_t i = 0; i < n; i += plan.batch) {
      const int64_t T = std::min(plan.batch, n - i);
      const bool last = i + T == n;
      sync("eval");  // h_ids is about to be rewritten
      std::memcpy(h_ids, toks.data() + i, size_t(T) * 4);
      cuda::check(cudaMemcpyAsync(ids, h_ids, size_t(T) * 4, cudaMemcpyHostToDevice, s), "copy tokens");
      forward(T, n_past, false, last ? T - 1 : T);
      if (last) head(T - 1);
      n_past += T;
    }
  }
};

namespace cudaeng {

std::shared_ptr<CudaContext::State> create_context(const CudaModel::Impl& m, const CudaContextOptions& opt) {
  auto st = std::make_shared<CudaContext::State>();
  CudaContext::State& S = *st;
  S.m = &m;
  const ModelConfig& c = m.cfg;
  const int64_t ctx = context_length(c, opt.n_ctx);
  const int64_t batch = batch_size(opt.n_batch, ctx);
  S.plan = plan_context(c, m.plan, ctx, batch);
  cuda::check(cudaSetDevice(m.dev.index), "cudaSetDevice");
  size_t free_b = 0, total_b = 0;
  cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  const uint64_t need = S.plan.total + cuda::kBlasWorkspaceBytes;
  if (need > free_b)
    fail(ErrorCode::Cuda, "a context of " + std::to_string(ctx) + " tokens needs " + human_bytes(need) + " on " + m.dev.describe() +
                              " (KV cache " + human_bytes(S.plan.kv_bytes) + " + scratch " + human_bytes(S.plan.scratch_bytes()) +
                              " + cuBLAS workspace " + human_bytes(cuda::kBlasWorkspaceBytes) + ") but only " + human_bytes(free_b) +
                              " are free: lower --ctx or --batch");
  cuda::check(cudaMalloc(reinterpret_cast<void**>(&S.base), S.plan.total), "cudaMalloc(context)");
  cuda::check(cudaMemset(S.base, 0, S.plan.total), "cudaMemset(context)");
  cuda::check(cudaStreamCreateWithFlags(&S.s, cudaStreamNonBlocking), "cudaStreamCreate");
  S.blas = cuda::blas_create();
  const ContextPlan& p = S.plan;
  S.x = S.at<float>(p.x);
  S.xb = S.at<float>(p.xb);
  S.qkv = S.at<float>(p.qkv);
  S.att = S.at<float>(p.att);
  S.gu = S.at<float>(p.gu);
  S.logits = S.at<float>(p.logits);
  S.conv = S.at<void>(p.conv);
  S.xq = S.at<int8_t>(p.xq);
  S.xs = S.at<float>(p.xs);
  S.xzp = S.at<int32_t>(p.xzp);
  S.acc = S.at<int32_t>(p.acc);
  S.q8sync = S.at<void>(p.q8sync);
  S.attn = S.at<void>(p.attn);
  S.cos = S.at<float>(p.rope_cos);
  S.sin = S.at<float>(p.rope_sin);
  S.ids = S.at<int32_t>(p.ids);
  S.pos = S.at<int32_t>(p.pos);
  S.arg = S.at<int32_t>(p.argmax);
  S.kv = S.at<float>(p.kv);
  cuda::check(cudaHostAlloc(reinterpret_cast<void**>(&S.h_ids), size_t(batch) * 4, cudaHostAllocDefault), "cudaHostAlloc");
  cuda::check(cudaHostAlloc(reinterpret_cast<void**>(&S.h_pos), 4, cudaHostAllocDefault), "cudaHostAlloc");
  cuda::check(cudaHostAlloc(reinterpret_cast<void**>(&S.h_arg), 4, cudaHostAllocDefault), "cudaHostAlloc");
  cuda::check(cudaHostAlloc(reinterpret_cast<void**>(&S.h_logits), size_t(c.vocab_size) * 4, cudaHostAllocDefault),
              "cudaHostAlloc");
  // The plan's RoPE table (the one the CPU engine uses).
  const int64_t half = c.head_dim / 2;
  std::vector<float> cs(size_t(ctx * half)), sn(cs.size());
  m.mp.rope_table(ctx, cs.data(), sn.data());
  cuda::check(cudaMemcpy(S.cos, cs.data(), cs.size() * 4, cudaMemcpyHostToDevice), "copy RoPE table");
  cuda::check(cudaMemcpy(S.sin, sn.data(), sn.size() * 4, cudaMemcpyHostToDevice), "copy RoPE table");
  S.graphs = opt.graphs && !env_is("LLRT_CUDA_GRAPHS", "0");
  S.fused = S.can_fuse();
  if (S.fused) cuda::decode_linear_init();  // kernel attributes are set outside any graph capture
  // Programmatic dependent launch: measured slower on an H200 for this chain (193.9 vs 203.4
  // tokens/s, Llama-3.1-8B BF16), so off unless LLRT_CUDA_PDL=1.
  S.pdl = S.fused && m.dev.cc() >= 90 && env_is("LLRT_CUDA_PDL", "1");
  // Not yet measured on a GPU, so opt-in until kernels/cuda/NOTES.md has their numbers:
  // the RmsNorm prologue staged with cp.async, and w8a8 down_proj from codes made by the
  // silu kernel (one grid barrier) instead of each block of down quantizing the whole row.
  S.async_norm = S.fused && env_is("LLRT_CUDA_ASYNC_NORM", "1");
  S.q8_silu = S.fused && p.q8sync && env_is("LLRT_CUDA_Q8_SILU", "1");
  for (const auto& L : m.plan.layers) S.q8_silu = S.q8_silu && L.down.dtype == DType::I8 && L.down.K == c.intermediate_size;
  return st;
}

int64_t context_n_ctx(const CudaContext::State& s) { return s.plan.ctx; }
int64_t context_n_past(const CudaContext::State& s) { return s.n_past; }
void context_reset(CudaContext::State& s) { s.n_past = 0; }
void context_truncate(CudaContext::State& s, int64_t n_keep) {
  if (n_keep < 0 || n_keep > s.n_past)
    fail(ErrorCode::InvalidArgument, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(s.n_past) + "]");
  s.n_past = n_keep;
}
uint64_t context_allocated_bytes(const CudaContext::State& s) { return s.plan.total + cuda::kBlasWorkspaceBytes; }
bool context_graph_captured(const CudaContext::State& s) { return s.exec != nullptr; }

std::span<const float> context_eval(CudaContext::State& S, std::span<const int32_t> tokens) {
  check_eval_tokens(S.m->cfg, tokens, S.n_past, S.plan.ctx);
  const int64_t p_start = S.n_past;
  S.run(tokens);
  const int64_t V = S.m->cfg.vocab_size;
  cuda::check(cudaMemcpyAsync(S.h_logits, S.logits, size_t(V) * 4, cudaMemcpyDeviceToHost, S.s), "copy logits");
  S.sync("eval");
  if (const uint64_t bad = count_non_finite(DType::F32, S.h_logits, V)) {  // one pass over the vocabulary
    S.n_past = p_start;
    fail_non_finite_logits(p_start + int64_t(tokens.size()) - 1, bad, V, "");
  }
  return {S.h_logits, size_t(V)};
}

int32_t context_eval_greedy(CudaContext::State& S, std::span<const int32_t> tokens) {
  check_eval_tokens(S.m->cfg, tokens, S.n_past, S.plan.ctx);
  S.run(tokens);
  cuda::check(cudaMemcpyAsync(S.h_arg, S.arg, 4, cudaMemcpyDeviceToHost, S.s), "copy argmax");
  S.sync("eval");
  return *S.h_arg;
}

std::vector<float> context_eval_all(CudaContext::State& S, std::span<const int32_t> tokens) {
  const ModelConfig& c = S.m->cfg;
  check_eval_tokens(c, tokens, S.n_past, S.plan.ctx);
  cuda::check(cudaSetDevice(S.m->dev.index), "cudaSetDevice");
  const int64_t n = int64_t(tokens.size()), H = c.hidden_size, V = c.vocab_size, R = S.plan.logit_rows, p_start = S.n_past;
  std::vector<float> out(size_t(n * V));
  for (int64_t i = 0; i < n; i += S.plan.batch) {
    const int64_t T = std::min(S.plan.batch, n - i);
    S.sync("eval_all");
    std::memcpy(S.h_ids, tokens.data() + i, size_t(T) * 4);
    cuda::check(cudaMemcpyAsync(S.ids, S.h_ids, size_t(T) * 4, cudaMemcpyHostToDevice, S.s), "copy tokens");
    S.forward(T, S.n_past, false, 0);
    S.n_past += T;
    for (int64_t r = 0; r < T; r += R) {
      const int64_t rows = std::min(R, T - r);
      S.linear(S.m->plan.lm_head, S.xb + r * H, H, S.logits, V, rows, false, false);
      cuda::check(cudaMemcpyAsync(out.data() + (i + r) * V, S.logits, size_t(rows * V) * 4, cudaMemcpyDeviceToHost, S.s),
                  "copy logits");
      S.sync("eval_all");
    }
  }
  for (int64_t t = 0; t < n; ++t)
    if (const uint64_t bad = count_non_finite(DType::F32, out.data() + t * V, V)) {
      S.n_past = p_start;
      fail_non_finite_logits(p_start + t, bad, V, "");
    }
  return out;
}

}  // namespace cudaeng

}  // namespace llrt
