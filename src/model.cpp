// The Llama forward pass (LlamaForCausalLM as HF runs it):
//   x = embed(tokens)
//   per layer: h = rmsnorm(x) ; q,k,v = h.Wq^T, h.Wk^T, h.Wv^T ; rope(q,k) at positions
//              append k,v to the cache ; a = softmax(q.k^T * hd^-0.5, causal) . v  (GQA:
//              kv head j serves query heads j*n_rep .. j*n_rep+n_rep-1) ; x += a.Wo^T
//              h = rmsnorm(x) ; x += (silu(h.Wg^T) * h.Wu^T).Wd^T
//   logits = rmsnorm(x_last) . lm_head^T   (lm_head = embed_tokens when tied)
// Everything F32 except weights (stored dtype). KV cache F32 (or F16/BF16 by
// ContextOptions::kv_dtype: rows rounded to nearest-even as written, widened exactly by the
// attention kernel of that dtype), layout [layer][kv_head][position][head_dim] so each
// head's positions are contiguous.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernel_choice.h"
#include "llrt/error.h"
#include "model_impl.h"
#include "work_pool.h"

namespace llrt {

namespace {
using Clock = std::chrono::steady_clock;

const KernelEntry& best(Op op, DType w) {
  const KernelEntry* e = KernelRegistry::global().find_best(op, w, DType::F32);
  if (!e) {
    KernelVerdict v;
    v.need = {op, w, DType::F32, ""};
    fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
  }
  return *e;
}

NormWeights bind_norm(const Checkpoint& ck, const std::string& name) {
  Tensor t = ck.tensor(name + ".weight");
  NormWeights n;
  n.w = t.data();
  n.dtype = t.dtype();
  n.fn = kernel_fn<RmsNormFn>(best(Op::RmsNorm, t.dtype()));
  return n;
}

LinearWeights bind_linear(const Checkpoint& ck, const std::string& module, const std::string& tensor) {
  Tensor t = ck.tensor(tensor);
  LinearWeights l;
  l.name = module;
  l.out = t.dim(0);
  l.in = t.dim(1);
  l.dtype = t.dtype();
  l.w = t.data();
  if (t.dtype() == DType::I8) {
    bind_quantized_linear(ck, l);
  } else {
    (void)best(Op::Linear, t.dtype());  // the capability answer (throws when none is usable)
    l.entry = choose_kernel(Op::Linear, t.dtype(), Phase::Decode).entry;
    l.entry_prefill = choose_kernel(Op::Linear, t.dtype(), Phase::Prefill).entry;
    l.kernel = static_cast<const LinearKernel*>(l.entry->fn);
    l.kernel_prefill = static_cast<const LinearKernel*>(l.entry_prefill->fn);
  }
  return l;
}

}  // namespace

RowChunks::RowChunks(const LinearWeights* const* ls, int count, int threads) {
  n = count;
  for (int i = 0; i < count; ++i) {
    const int64_t N = ls[i]->out;
    chunk[i] = std::max<int64_t>(16, (N + 4 * threads - 1) / (4 * threads) + 15) / 16 * 16;
    first[i] = total;
    total += (N + chunk[i] - 1) / chunk[i];
    out[i] = N;
  }
}
void RowChunks::rows(int64_t item, int* i, int64_t* n0, int64_t* n1) const {
  int j = 0;
  while (j + 1 < n && item >= first[j + 1]) ++j;
  *i = j;
  *n0 = (item - first[j]) * chunk[j];
  *n1 = std::min(out[j], *n0 + chunk[j]);
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  // transformers: inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim), in float32.
  const int64_t half = c.head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    float expo = float(2 * i) / float(c.head_dim);
    inv[size_t(i)] = 1.0f / float(std::pow(double(float(c.rope_theta)), double(expo)));
  }
  const auto& rs = c.rope_scaling;
  if (rs.type == RopeScaling::Type::Linear) {
    for (auto& f : inv) f = f / float(rs.factor);
  } else if (rs.type == RopeScaling::Type::Llama3) {
    // transformers _compute_llama3_parameters
    const float factor = float(rs.factor), lo = float(rs.low_freq_factor), hi = float(rs.high_freq_factor);
    const float old_ctx = float(rs.original_max_position_embeddings);
    const float low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
    for (auto& f : inv) {
      float wavelen = float(2.0 * M_PI) / f;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        float smooth = (old_ctx / wavelen - lo) / (hi - lo);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

// ------------------------------------------------------------------ Model

void check_eval_tokens(const ModelConfig& c, std::span<const int32_t> toks, int64_t n_past, int64_t n_ctx) {
  if (toks.empty()) fail(ErrorCode::InvalidArgument, "eval() needs at least one token");
  for (int32_t t : toks)
    if (t < 0 || t >= c.vocab_size)
      fail(ErrorCode::InvalidArgument, "token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  if (n_past + int64_t(toks.size()) > n_ctx)
    fail(ErrorCode::ContextOverflow, "context is full: " + std::to_string(n_past) + " cached + " + std::to_string(toks.size()) +
                                         " new tokens > context length " + std::to_string(n_ctx) +
                                         "; raise --ctx (up to max_position_embeddings) or start a new context");
}

void fail_non_finite_logits(int64_t pos, uint64_t n_bad, int64_t vocab, const std::string& where) {
  fail(ErrorCode::NonFinite, "the logits at position " + std::to_string(pos) + " are not finite (" + std::to_string(n_bad) + " NaN/Inf of " +
                                 std::to_string(vocab) + ")" + (where.empty() ? "" : ": " + where) +
                                 ". The weights are probably damaged: `llrt inspect --check-weights MODEL_DIR` lists the tensors holding NaN/Inf");
}

LoadMode resolve_load_mode(LoadMode requested, uint64_t weight_bytes, uint64_t mem_available_bytes) {
  if (requested != LoadMode::Auto) return requested;
  const bool fits = mem_available_bytes == 0 || static_cast<unsigned __int128>(weight_bytes) * 10 <= static_cast<unsigned __int128>(mem_available_bytes) * 7;
  return fits ? LoadMode::Copy : LoadMode::Mmap;
}

std::shared_ptr<Model> Model::load(const std::filesystem::path& dir, const ModelOptions& opt) {
  auto t0 = Clock::now();
  auto say = [&](const std::string& s) { if (opt.progress) opt.progress(s); };
  // 1. Headers, config and the tensor contract: nothing is read from weights yet.
  MapOptions map = opt.map;
  map.copy_threads = opt.threads > 0 ? opt.threads : cpu_info().physical_cores;
  Checkpoint ck = [&] {
    if (map.mode == LoadMode::Mmap) return Checkpoint::open(dir, map);
    // Copy or Auto: headers through a cheap mapping first, to choose (Auto) and to fail on a
    // bad checkpoint before gigabytes are read.
    MapOptions mapped = map;
    mapped.mode = LoadMode::Mmap;
    Checkpoint probe = Checkpoint::open(dir, mapped);
    if (map.mode == LoadMode::Auto) {
      const uint64_t avail = cpu_info().mem_available_bytes;
      map.mode = resolve_load_mode(LoadMode::Auto, probe.weight_bytes(), avail);
      if (map.mode == LoadMode::Mmap) {
        say("weights (" + std::to_string(probe.weight_bytes() >> 20) + " MiB) exceed 70% of available memory (" +
            std::to_string(avail >> 20) + " MiB): mapping them (mmap) instead of copying");
        return probe;
      }
    }
    validate_llama_checkpoint(probe);
    require_kernels(llama_kernel_needs(probe));
    say("copying " + std::to_string(probe.weight_bytes() >> 20) + " MiB of weights into huge-page memory");
    // Progress: the shards are read in order; each read starts with on_copy(0, size).
    LoadProgress lp;
    lp.shards = int(probe.shards().size());
    std::vector<std::string> names;
    for (const auto& sh : probe.shards()) {
      lp.bytes_total += std::filesystem::file_size(sh.path());
      names.push_back(sh.path().filename().string());
    }
    uint64_t base = 0, last = 0;
    map.on_copy = [&](uint64_t done, uint64_t size) {
      if (done == 0) {
        base += last;
        ++lp.shard;
        if (opt.progress && lp.shards > 1) {
          char gb[32];
          std::snprintf(gb, sizeof gb, "%.2f", double(size) / 1e9);
          say("copying shard " + std::to_string(lp.shard) + "/" + std::to_string(lp.shards) + " (" + gb + " GB) " +
              names[size_t(std::min(lp.shard, lp.shards) - 1)]);
        }
      }
      last = size;
      lp.bytes_done = base + done;
      if (opt.on_bytes) opt.on_bytes(lp);
    };
    Checkpoint copied = Checkpoint::open(dir, map);
    map.on_copy = nullptr;
    return copied;
  }();
  if (opt.on_bytes && ck.shards().front().mode() == LoadMode::Mmap) {  // mapped: nothing to read now
    LoadProgress lp;
    lp.shards = int(ck.shards().size());
    for (const auto& sh : ck.shards()) lp.bytes_total += std::filesystem::file_size(sh.path());
    for (lp.shard = 1; lp.shard <= lp.shards; ++lp.shard) {
      lp.bytes_done += std::filesystem::file_size(ck.shards()[size_t(lp.shard - 1)].path());
      opt.on_bytes(lp);
    }
  }
  validate_llama_checkpoint(ck);
  // 2. Capability check: every op x dtype the forward pass needs, before binding anything.
  auto needs = llama_kernel_needs(ck);
  require_kernels(needs);

  for (const auto& n : needs)
    if ((n.op == Op::Linear || n.op == Op::LinearQ8) && kernel_choice_pending(n.op, n.wtype)) {
      say(std::string("measuring the ") + dtype_name(n.wtype) + " " + op_name(n.op) +
          " kernels on this CPU (once; cached in " + kernel_cache_path() + ")");
      break;
    }
  std::shared_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<Impl>();
  Impl& im = *m->impl_;
  im.plan = check_kernels(needs);
  im.cfg = ck.config();
  im.threads = opt.threads > 0 ? opt.threads : cpu_info().physical_cores;
  const ModelConfig& c = im.cfg;

  Tensor emb = ck.tensor("model.embed_tokens.weight");
  im.embed = emb.data();
  im.embed_dtype = emb.dtype();
  im.embed_fn = kernel_fn<EmbeddingFn>(best(Op::Embedding, emb.dtype()));
  im.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights& L = im.layers[size_t(l)];
    L.attn_norm = bind_norm(ck, p + "input_layernorm");
    L.mlp_norm = bind_norm(ck, p + "post_attention_layernorm");
    L.q = bind_linear(ck, p + "self_attn.q_proj", p + "self_attn.q_proj.weight");
    L.k = bind_linear(ck, p + "self_attn.k_proj", p + "self_attn.k_proj.weight");
    L.v = bind_linear(ck, p + "self_attn.v_proj", p + "self_attn.v_proj.weight");
    L.o = bind_linear(ck, p + "self_attn.o_proj", p + "self_attn.o_proj.weight");
    L.gate = bind_linear(ck, p + "mlp.gate_proj", p + "mlp.gate_proj.weight");
    L.up = bind_linear(ck, p + "mlp.up_proj", p + "mlp.up_proj.weight");
    L.down = bind_linear(ck, p + "mlp.down_proj", p + "mlp.down_proj.weight");
  }
  im.final_norm = bind_norm(ck, "model.norm");
  im.lm_head = c.tie_word_embeddings ? bind_linear(ck, "lm_head (tied to model.embed_tokens)", "model.embed_tokens.weight")
                                     : bind_linear(ck, "lm_head", "lm_head.weight");
  im.rope_fn = kernel_fn<RopeFn>(best(Op::Rope, DType::F32));
  im.silu_mul_fn = kernel_fn<SiluMulFn>(best(Op::SiluMul, DType::F32));
  im.add_fn = kernel_fn<AddFn>(best(Op::Add, DType::F32));
  im.inv_freq = rope_inv_freq(c);
  im.ck = std::move(ck);
  im.load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return m;
}

Model::~Model() = default;
const ModelConfig& Model::config() const { return impl_->cfg; }
const Checkpoint& Model::checkpoint() const { return impl_->ck; }
int Model::threads() const { return impl_->threads; }
void Model::set_threads(int n) { impl_->threads = n > 0 ? n : cpu_info().physical_cores; }
const std::vector<KernelVerdict>& Model::kernel_plan() const { return impl_->plan; }
double Model::load_seconds() const { return impl_->load_seconds; }

// ------------------------------------------------------------------ linear runner

void run_linears(const Model::Impl& m, const LinearWeights* const* ls, float* const* ys, int count,
                 const float* x, int64_t M, void* prep_buf) {
  // Activation prep once if all linears share a kernel (q/k/v, gate/up usually do).
  const void* xp[8] = {};
  bool shared = true;
  const bool q8 = ls[0]->dtype == DType::I8;
  auto kernel_of = [M](const LinearWeights& L) { return M == 1 ? L.kernel : L.kernel_prefill; };
  for (int i = 1; i < count; ++i)
    shared = shared && (ls[i]->dtype == DType::I8) == q8 &&
             (q8 ? q8_can_share_prep(*ls[0], *ls[i]) : kernel_of(*ls[i]) == kernel_of(*ls[0]));
  if (!shared) {
    for (int i = 0; i < count; ++i) run_linears(m, &ls[i], &ys[i], 1, x, M, prep_buf);
    return;
  }
  // Quantized linears: activation quantization + int8 kernel (src/llama_quant.cpp).
  if (q8) return run_q8_linears(ls, ys, count, x, M, prep_buf, m.threads);
  const LinearKernel* k = kernel_of(*ls[0]);
  const int64_t K = ls[0]->in;
  // The prep is shared by the threads (16-token blocks) where the kernel allows it.
  const bool prep_par = k->prep && k->prep_rows && M >= 32;
  if (k->prep) {
    if (!prep_par) k->prep(x, K, M, K, prep_buf);
    for (int i = 0; i < count; ++i) xp[i] = prep_buf;
  }
  const int nt = m.threads;
  WorkPool& pool = WorkPool::global();
  if (prep_par)  // the prep shared by the threads, 16-token blocks
    pool.run(nt, (M + 15) / 16, [&](int64_t b, int) { k->prep_rows(x, K, M, K, b * 16, std::min(M, b * 16 + 16), prep_buf); });
  const RowChunks work(ls, count, nt);
  pool.run(nt, work.total, [&](int64_t item, int) {
    int i;
    int64_t n0, n1;
    work.rows(item, &i, &n0, &n1);
    const LinearWeights& L = *ls[i];
    LinearArgs a;
    a.w = L.w;
    a.K = L.in;
    a.x = x;
    a.ldx = L.in;
    a.xp = xp[i];
    a.y = ys[i];
    a.ldy = L.out;
    a.M = M;
    a.n0 = n0;
    a.n1 = n1;
    k->run(a);
  });
}

// ------------------------------------------------------------------ Context

namespace {
// Bytes of activation prep the bound kernels need: decode kernels at M = 1, prefill kernels
// up to M = batch (prep_bytes never shrinks as M grows).
uint64_t bound_prep_bytes(const Model::Impl& m, int64_t batch) {
  uint64_t p = 0;
  auto one = [&](const LinearWeights& L) {
    if (L.dtype == DType::I8) {
      p = std::max<uint64_t>(p, q8_prep_bytes(L, 1));
      if (batch > 1) p = std::max<uint64_t>(p, q8_prep_bytes(L, batch));
      return;
    }
    if (L.kernel->prep_bytes) p = std::max<uint64_t>(p, L.kernel->prep_bytes(1, L.in));
    if (batch > 1 && L.kernel_prefill->prep_bytes) p = std::max<uint64_t>(p, L.kernel_prefill->prep_bytes(batch, L.in));
  };
  for (const auto& L : m.layers)
    for (const LinearWeights* l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) one(*l);
  one(m.lm_head);
  return p;
}
}  // namespace

struct Context::State {
  detail::ScratchPlan plan;
  int64_t n_past = 0;
  std::vector<AlignedBuffer> bufs;
  float *x, *xb, *q, *k, *v, *att, *gate, *up, *logits, *scores, *att_part, *att_lse, *rope_cos, *rope_sin;
  char* kv = nullptr;  // [L][2][kvh][ctx][hd] elements of kv_dtype
  DType kv_dtype = DType::F32;
  size_t kv_esize = 4;
  AttentionFn attn_fn = nullptr;  // the kernel for kv_dtype
  void* prep = nullptr;
  uint64_t bytes = 0;

  float* alloc(int64_t n) {
    bufs.push_back(aligned_alloc_bytes(size_t(std::max<int64_t>(n, 1)) * 4));
    bytes += uint64_t(n) * 4;
    return static_cast<float*>(bufs.back().get());
  }
};

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opt) : model_(std::move(model)), st_(new State) {
  const Model::Impl& m = model_->impl();
  const ModelConfig& c = m.cfg;
  int64_t ctx = opt.n_ctx > 0 ? opt.n_ctx : std::min<int64_t>(c.max_position_embeddings, 4096);
  if (ctx > c.max_position_embeddings)
    fail(ErrorCode::InvalidArgument, "context length " + std::to_string(ctx) + " exceeds the model's max_position_embeddings (" +
                                         std::to_string(c.max_position_embeddings) + ")");
  int64_t batch = std::clamp<int64_t>(opt.n_batch, 1, 4096);
  batch = std::min(batch, ctx);
  if (opt.kv_dtype != DType::F32 && opt.kv_dtype != DType::F16 && opt.kv_dtype != DType::BF16)
    fail(ErrorCode::InvalidArgument, std::string("KV cache dtype ") + dtype_name(opt.kv_dtype) +
                                         ": the CPU engine keeps the KV cache in F32, F16 or BF16");
  AttentionFn attn_fn = kernel_fn<AttentionFn>(best(Op::Attention, opt.kv_dtype));
  MemoryEstimate est = estimate_memory(m.ck, ctx, batch, m.threads, opt.kv_dtype);
  uint64_t need = est.kv_bytes + est.scratch_bytes;
  uint64_t avail = cpu_info().mem_available_bytes;
  if (avail && need > avail)
    fail(ErrorCode::InvalidArgument, "a context of " + std::to_string(ctx) + " tokens needs " + std::to_string(need >> 20) +
                                         " MiB (KV cache + scratch) but only " + std::to_string(avail >> 20) +
                                         " MiB are available: lower --ctx");
  State& s = *st_;
  s.plan = detail::make_scratch_plan(c, ctx, batch, m.threads, 0, dtype_size(opt.kv_dtype));
  s.kv_dtype = opt.kv_dtype;
  s.kv_esize = dtype_size(opt.kv_dtype);
  s.attn_fn = attn_fn;
  // The prep buffer for the kernels this model bound (not a new choice: the environment or a
  // re-measurement may have changed since the load).
  const uint64_t prep = bound_prep_bytes(m, batch);
  s.plan.prep_bytes = prep;
  s.x = s.alloc(s.plan.x);
  s.xb = s.alloc(s.plan.xb);
  s.q = s.alloc(s.plan.q);
  s.k = s.alloc(s.plan.k);
  s.v = s.alloc(s.plan.v);
  s.att = s.alloc(s.plan.att);
  s.gate = s.alloc(s.plan.gate);
  s.up = s.alloc(s.plan.up);
  s.logits = s.alloc(s.plan.logits);
  s.scores = s.alloc(s.plan.att_scores);
  s.att_part = s.alloc(s.plan.att_part);
  s.att_lse = s.alloc(s.plan.att_lse);
  s.rope_cos = s.alloc(s.plan.rope / 2);
  s.rope_sin = s.alloc(s.plan.rope / 2);
  if (prep) {
    s.bufs.push_back(aligned_alloc_bytes(prep));
    s.bytes += prep;
    s.prep = s.bufs.back().get();
  }
  const uint64_t kv_bytes = s.plan.kv_bytes;
  s.bufs.push_back(aligned_alloc_bytes(size_t(std::max<uint64_t>(kv_bytes, 4))));
  s.bytes += kv_bytes;
  s.kv = static_cast<char*>(s.bufs.back().get());
  // RoPE table: freqs = float(pos) * inv_freq (float32, as HF), cos/sin rounded to F32.
  const int64_t half = c.head_dim / 2;
  for (int64_t p = 0; p < ctx; ++p)
    for (int64_t i = 0; i < half; ++i) {
      float f = float(p) * m.inv_freq[size_t(i)];
      s.rope_cos[p * half + i] = float(std::cos(double(f)));
      s.rope_sin[p * half + i] = float(std::sin(double(f)));
    }
}

Context::~Context() = default;
int64_t Context::n_ctx() const { return st_->plan.ctx; }
int64_t Context::n_past() const { return st_->n_past; }
void Context::reset() { st_->n_past = 0; }
void Context::truncate(int64_t n_keep) {
  if (n_keep < 0 || n_keep > st_->n_past)
    fail(ErrorCode::InvalidArgument, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(st_->n_past) + "]");
  st_->n_past = n_keep;
}
uint64_t Context::allocated_bytes() const { return st_->bytes; }

namespace {

// One K or V row into the cache in its dtype: F32 copied, F16/BF16 rounded to nearest-even.
void store_kv_row(DType dt, const float* src, int64_t n, char* dst) {
  if (dt == DType::F32) {
    std::memcpy(dst, src, size_t(n) * 4);
    return;
  }
  uint16_t* d = reinterpret_cast<uint16_t*>(dst);
  if (dt == DType::BF16)
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  else
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}

// Where a forward pass first produced NaN/Inf: asked for only after the logits came out
// non-finite (the pass is run again with checks after every stage; free otherwise).
struct NonFiniteProbe {
  int64_t stage = -3;  // -1: the token embeddings, 0..L-1: that layer's output, L: the final norm; -3: none
  int64_t row = -1;    // the chunk row (token) where it appeared first
  bool found() const { return stage != -3; }
  // True (and recorded) when one of rows [from, T) of `x` ([T, H]) holds a NaN/Inf.
  bool check(int64_t at, const float* x, int64_t from, int64_t T, int64_t H) {
    for (int64_t t = from; t < T; ++t)
      if (count_non_finite(DType::F32, x + t * H, H) > 0) {
        stage = at;
        row = t;
        return true;
      }
    return false;
  }
};

// One forward chunk of T tokens at positions p0..p0+T-1. Writes the final hidden
// state (after the final norm) of rows [out_from, T) into s.xb. With a probe, stops at the
// first stage whose output holds a NaN/Inf and records it there.
void forward_chunk(const Model::Impl& m, Context::State& s, const int32_t* toks, int64_t T, int64_t p0, int64_t out_from,
                   NonFiniteProbe* probe = nullptr) {
  const ModelConfig& c = m.cfg;
  const int64_t H = c.hidden_size, QD = c.q_dim(), KVD = c.kv_dim(), I = c.intermediate_size;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads, rep = c.n_rep();
  const int64_t ctx = s.plan.ctx, half = hd / 2;
  const float eps = float(c.rms_norm_eps);
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int nt = int(s.plan.threads);  // what this context's per-thread scratch was sized for
  WorkPool& pool = WorkPool::global();

  m.embed_fn(m.embed, H, toks, T, s.x);
  if (probe && probe->check(-1, s.x, 0, T, H)) return;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights& L = m.layers[l];
    const size_t es = s.kv_esize;
    char* kc = s.kv + size_t(l) * 2 * size_t(nkv * ctx * hd) * es;
    char* vc = kc + size_t(nkv * ctx * hd) * es;
    pool.run(T > 8 ? nt : 1, T, [&](int64_t t, int) { L.attn_norm.fn(s.x + t * H, L.attn_norm.w, s.xb + t * H, H, eps); });
    {
      const LinearWeights* ls[3] = {&L.q, &L.k, &L.v};
      float* ys[3] = {s.q, s.k, s.v};
      run_linears(m, ls, ys, 3, s.xb, T, s.prep);
    }
    for (int64_t t = 0; t < T; ++t) {
      const float* cs = s.rope_cos + (p0 + t) * half;
      const float* sn = s.rope_sin + (p0 + t) * half;
      m.rope_fn(s.q + t * QD, nh, hd, hd, cs, sn);
      m.rope_fn(s.k + t * KVD, nkv, hd, hd, cs, sn);
      for (int64_t j = 0; j < nkv; ++j) {
        const size_t at = size_t(j * ctx + p0 + t) * size_t(hd) * es;
        store_kv_row(s.kv_dtype, s.k + t * KVD + j * hd, hd, kc + at);
        store_kv_row(s.kv_dtype, s.v + t * KVD + j * hd, hd, vc + at);
      }
    }
    // GQA: the `rep` query heads of one KV head go to the kernel together (n_q = rep), which
    // reads each K/V row once for all of them. Per-head items only when there are fewer
    // (token, KV head) groups than threads. One call: query heads h..h+n_q-1 of token t over
    // positions [b0, b1), outputs (and log-sum-exps, for ranges) where the caller says.
    auto attend = [&](int slot, int64_t t, int64_t h, int64_t n_q, int64_t b0, int64_t b1, float* out, float* lse) {
      const int64_t j = h / rep;
      AttentionArgs a;
      a.q = s.q + t * QD + h * hd;
      a.k = kc + size_t((j * ctx + b0) * hd) * es;
      a.v = vc + size_t((j * ctx + b0) * hd) * es;
      a.kv_stride = hd;
      a.n_kv = b1 - b0;
      a.head_dim = hd;
      a.scale = scale;
      a.out = out;
      a.scratch = s.scores + int64_t(slot) * ctx * rep;
      a.n_q = n_q;
      a.q_stride = a.out_stride = hd;
      a.lse = lse;
      s.attn_fn(a);
    };
    auto attend_all = [&](int slot, int64_t t, int64_t h, int64_t n_q) {
      attend(slot, t, h, n_q, 0, p0 + t + 1, s.att + t * QD + h * hd, nullptr);
    };
    // A decode step with more threads than KV heads: each KV head's positions in S ranges
    // (>= 32 positions each), one (head group, range) per item, merged by log-sum-exp.
    // (att_splits > 1 only when the context has more threads than KV heads.)
    const int64_t S = T == 1 ? std::min<int64_t>(s.plan.att_splits, (p0 + 1) / 32) : 1;
    if (S > 1) {
      const int64_t n = p0 + 1;
      pool.run(nt, nkv * S, [&](int64_t it, int slot) {
        const int64_t j = it / S, si = it % S;
        attend(slot, 0, j * rep, rep, n * si / S, n * (si + 1) / S, s.att_part + (j * S + si) * rep * hd, s.att_lse + (j * S + si) * rep);
      });
      for (int64_t h = 0; h < nh; ++h) {  // out_h = sum_s w_s out_s / sum_s w_s, w_s = exp(lse_s - max lse)
        const int64_t j = h / rep, r = h % rep;
        float mx = -INFINITY;
        for (int64_t si = 0; si < S; ++si) mx = std::max(mx, s.att_lse[(j * S + si) * rep + r]);
        float* o = s.att + h * hd;
        std::fill(o, o + hd, 0.0f);
        double wsum = 0;
        for (int64_t si = 0; si < S; ++si) {
          const float w = float(std::exp(double(s.att_lse[(j * S + si) * rep + r]) - double(mx)));
          const float* p = s.att_part + ((j * S + si) * rep + r) * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] += w * p[d];
          wsum += w;
        }
        const float inv = float(1.0 / wsum);
        for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
      }
    } else if (T * nkv >= nt || T == 1) {
      pool.run(nt, T * nkv, [&](int64_t it, int slot) { attend_all(slot, it / nkv, (it % nkv) * rep, rep); });
    } else {
      pool.run(nt, T * nh, [&](int64_t it, int slot) { attend_all(slot, it / nh, it % nh, 1); });
    }
    {
      const LinearWeights* ls[1] = {&L.o};
      float* ys[1] = {s.xb};
      run_linears(m, ls, ys, 1, s.att, T, s.prep);
    }
    m.add_fn(s.x, s.xb, T * H);
    pool.run(T > 8 ? nt : 1, T, [&](int64_t t, int) { L.mlp_norm.fn(s.x + t * H, L.mlp_norm.w, s.xb + t * H, H, eps); });
    {
      const LinearWeights* ls[2] = {&L.gate, &L.up};
      float* ys[2] = {s.gate, s.up};
      run_linears(m, ls, ys, 2, s.xb, T, s.prep);
    }
    m.silu_mul_fn(s.gate, s.up, s.gate, T * I);
    {
      const LinearWeights* ls[1] = {&L.down};
      float* ys[1] = {s.xb};
      run_linears(m, ls, ys, 1, s.gate, T, s.prep);
    }
    m.add_fn(s.x, s.xb, T * H);
    if (probe && probe->check(int64_t(l), s.x, 0, T, H)) return;
  }
  for (int64_t t = out_from; t < T; ++t) m.final_norm.fn(s.x + t * H, m.final_norm.w, s.xb + t * H, H, eps);
  if (probe) probe->check(int64_t(m.layers.size()), s.xb, out_from, T, H);
}

// Non-finite logits: runs tokens (evaluated from position p_start) again, checking every stage,
// and throws Error{NonFinite} naming the position and the first stage that went non-finite. The
// context is left as before the call (n_past = p_start), like every other eval error.
[[noreturn]] void non_finite_logits(const Model::Impl& m, Context::State& s, std::span<const int32_t> tokens, int64_t p_start,
                                    int64_t bad_pos, int64_t n_bad) {
  const int64_t L = int64_t(m.layers.size()), n = int64_t(tokens.size());
  NonFiniteProbe probe;
  s.n_past = p_start;
  int64_t pos = -1;
  for (int64_t i = 0; i < n && !probe.found(); i += s.plan.batch) {
    const int64_t T = std::min(s.plan.batch, n - i);
    forward_chunk(m, s, tokens.data() + i, T, s.n_past, 0, &probe);
    if (probe.found()) pos = s.n_past + probe.row;
    s.n_past += T;
  }
  s.n_past = p_start;
  std::string where;
  if (!probe.found()) where = "every layer's output is finite, so the output head (lm_head) made them";
  else if (probe.stage == -1)
    where = "the token embedding of token id " + std::to_string(tokens[size_t(pos - p_start)]) + " (position " +
            std::to_string(pos) + ") is non-finite (model.embed_tokens.weight)";
  else if (probe.stage == L)
    where = "every layer's output is finite; the final norm (model.norm.weight) made them";
  else
    where = "layer " + std::to_string(probe.stage) + " of " + std::to_string(L) + " (model.layers." + std::to_string(probe.stage) +
            ".*) is the first whose output is non-finite, at position " + std::to_string(pos);
  fail_non_finite_logits(bad_pos, uint64_t(n_bad), m.cfg.vocab_size, where);
}
}  // namespace

std::span<const float> Context::eval(std::span<const int32_t> tokens) {
  const Model::Impl& m = model_->impl();
  State& s = *st_;
  check_eval_tokens(m.cfg, tokens, s.n_past, s.plan.ctx);
  const int64_t n = int64_t(tokens.size()), H = m.cfg.hidden_size, p_start = s.n_past;
  for (int64_t i = 0; i < n; i += s.plan.batch) {
    int64_t T = std::min(s.plan.batch, n - i);
    bool last = i + T == n;
    forward_chunk(m, s, tokens.data() + i, T, s.n_past, last ? T - 1 : T);
    s.n_past += T;
  }
  int64_t T_last = (n - 1) % s.plan.batch + 1;
  const LinearWeights* ls[1] = {&m.lm_head};
  float* ys[1] = {s.logits};
  run_linears(m, ls, ys, 1, s.xb + (T_last - 1) * H, 1, s.prep);
  // One pass over the vocabulary: NaN/Inf logits stop here, with what made them.
  if (const uint64_t bad = count_non_finite(DType::F32, s.logits, m.cfg.vocab_size))
    non_finite_logits(m, s, tokens, p_start, s.n_past - 1, int64_t(bad));
  return {s.logits, size_t(m.cfg.vocab_size)};
}

std::vector<float> Context::eval_all(std::span<const int32_t> tokens) {
  const Model::Impl& m = model_->impl();
  State& s = *st_;
  check_eval_tokens(m.cfg, tokens, s.n_past, s.plan.ctx);
  const int64_t n = int64_t(tokens.size()), H = m.cfg.hidden_size, V = m.cfg.vocab_size, p_start = s.n_past;
  std::vector<float> out(size_t(n * V));
  for (int64_t i = 0; i < n; i += s.plan.batch) {
    int64_t T = std::min(s.plan.batch, n - i);
    forward_chunk(m, s, tokens.data() + i, T, s.n_past, 0);
    s.n_past += T;
    for (int64_t t = 0; t < T; ++t) {
      const LinearWeights* ls[1] = {&m.lm_head};
      float* ys[1] = {out.data() + (i + t) * V};
      run_linears(m, ls, ys, 1, s.xb + t * H, 1, s.prep);
    }
  }
  for (int64_t t = 0; t < n; ++t)
    if (const uint64_t bad = count_non_finite(DType::F32, out.data() + t * V, V))
      non_finite_logits(m, s, tokens, p_start, p_start + t, int64_t(bad));
  return out;
}

}  // namespace llrt
