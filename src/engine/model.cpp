// The CPU engine: Model (load, kernel binding, the Linear runner) and Context (one sequence
// over one contiguous KV cache). The forward pass itself is src/forward.cpp (shared with the
// batched engine, src/batch.cpp); the KV cache's layout and the attention schedule live in
// src/kv_cache.h.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernel_choice.h"
#include "llrt/error.h"
#include "forward.h"
#include "kv_cache.h"
#include "src/engine/llama.h"
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

NormWeights bind_norm(const TensorPlan& t) {
  NormWeights n;
  n.w = t.data;
  n.dtype = t.dtype;
  n.fn = kernel_fn<RmsNormFn>(best(Op::RmsNorm, t.dtype));
  return n;
}

// The plan's Linear with its kernels (the capability check ran before: best() only confirms).
LinearWeights bind_linear(const LinearPlan& p) {
  LinearWeights l;
  l.name = p.name;
  l.out = p.N;
  l.in = p.K;
  l.w = p.view;
  (void)best(Op::Linear, p.view.dtype);  // the capability answer (throws when none is usable)
  l.decode = choose_kernel(Op::Linear, p.view.dtype, Phase::Decode).entry;
  l.prefill = choose_kernel(Op::Linear, p.view.dtype, Phase::Prefill).entry;
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
    if (n.op == Op::Linear && kernel_choice_pending(n.op, n.wtype)) {
      say(std::string("measuring the ") + dtype_name(n.wtype) + " " + op_name(n.op) +
          " kernels on this CPU (once; cached in " + kernel_cache_path() + ")");
      break;
    }
  std::shared_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<Impl>();
  Impl& im = *m->impl_;
  im.verdicts = check_kernels(needs);
  im.cfg = ck.config();
  im.threads = opt.threads > 0 ? opt.threads : cpu_info().physical_cores;
  // 3. The plan (modules, dtypes, quantization, fusion groups, RoPE), then kernels bound to it.
  im.plan = plan_model(ck);
  const ModelPlan& p = im.plan;
  im.embed = p.embed.data;
  im.embed_dtype = p.embed.dtype;
  im.embed_fn = kernel_fn<EmbeddingFn>(best(Op::Embedding, p.embed.dtype));
  im.layers.resize(p.layers.size());
  for (size_t l = 0; l < p.layers.size(); ++l) {
    LayerWeights& L = im.layers[l];
    L.attn_norm = bind_norm(p.layers[l].attn_norm);
    L.mlp_norm = bind_norm(p.layers[l].mlp_norm);
    for (int j = 0; j < kNumLlamaLinears; ++j) L.lin[j] = bind_linear(p.layers[l].linear[j]);
  }
  im.final_norm = bind_norm(p.final_norm);
  im.lm_head = bind_linear(p.lm_head);
  im.rope_fn = kernel_fn<RopeFn>(best(Op::Rope, DType::F32));
  im.silu_mul_fn = kernel_fn<SiluMulFn>(best(Op::SiluMul, DType::F32));
  im.add_fn = kernel_fn<AddFn>(best(Op::Add, DType::F32));
  im.ck = std::move(ck);
  im.load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return m;
}

Model::~Model() = default;
const ModelConfig& Model::config() const { return impl_->cfg; }
const Checkpoint& Model::checkpoint() const { return impl_->ck; }
int Model::threads() const { return impl_->threads; }
void Model::set_threads(int n) { impl_->threads = n > 0 ? n : cpu_info().physical_cores; }
const std::vector<KernelVerdict>& Model::kernel_plan() const { return impl_->verdicts; }
double Model::load_seconds() const { return impl_->load_seconds; }

// ------------------------------------------------------------------ linear runner

void run_linears(const Model::Impl& m, const LinearWeights* const* ls, float* const* ys, int count,
                 const float* x, int64_t M, void* prep_buf) {
  // One activation prep for all when they share the kernel and what its prep depends on (the
  // input width and, for I8 weights, the activation quantization): q/k/v and gate/up usually do.
  const LinearKernel& k = ls[0]->entry(M).linear();
  const int64_t K = ls[0]->in;
  bool shared = true;
  for (int i = 1; i < count; ++i)
    shared = shared && &ls[i]->entry(M) == &ls[0]->entry(M) && ls[i]->in == K &&
             (ls[0]->w.dtype != DType::I8 || q8_same_activation_quant(ls[i]->w.act, ls[0]->w.act));
  if (!shared) {
    for (int i = 0; i < count; ++i) run_linears(m, &ls[i], &ys[i], 1, x, M, prep_buf);
    return;
  }
  const int nt = m.threads;
  WorkPool& pool = WorkPool::global();
  if (k.prep) {
    LinearPrepArgs p{x, K, M, K, 0, M, &ls[0]->w.act, prep_buf};
    if (k.prep_splits && M >= 16) {  // shared by the threads, 16-token blocks
      pool.run(nt, (M + 15) / 16, [&](int64_t b, int) {
        LinearPrepArgs pb = p;
        pb.m0 = b * 16;
        pb.m1 = std::min(M, b * 16 + 16);
        k.prep(pb);
      });
    } else {
      k.prep(p);
    }
  }
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
    a.xp = k.prep ? prep_buf : nullptr;
    a.y = ys[i];
    a.ldy = L.out;
    a.M = M;
    a.n0 = n0;
    a.n1 = n1;
    k.run(a);
  });
}

// ------------------------------------------------------------------ Context


struct Context::State {
  ForwardBuffers f;  // activations, attention scratch, RoPE table (src/forward.h)
  int64_t n_past = 0;
  float* logits = nullptr;
  KvCache kv;  // one block of the whole context (src/kv_cache.h)
  uint64_t bytes = 0;
};

Context::Context(std::shared_ptr<const Model> model, const ContextOptions& opt) : model_(std::move(model)), st_(new State) {
  const Model::Impl& m = model_impl(*model_);
  const ModelConfig& c = m.cfg;
  const int64_t ctx = context_length(c, opt.n_ctx);
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
  detail::ScratchPlan plan = detail::make_scratch_plan(c, ctx, batch, m.threads, 0, dtype_size(opt.kv_dtype));
  // The prep buffer for the kernels this model bound (not a new choice: the environment or a
  // re-measurement may have changed since the load).
  plan.prep_bytes = bound_prep_bytes(m, batch);
  s.f.allocate(m, plan, attn_fn);
  s.logits = s.f.alloc(plan.logits);
  const uint64_t kv_bytes = plan.kv_bytes;
  s.f.bufs.push_back(aligned_alloc_bytes(size_t(std::max<uint64_t>(kv_bytes, 4))));
  s.f.bytes += kv_bytes;
  s.bytes = s.f.bytes;
  s.kv = KvCache(static_cast<char*>(s.f.bufs.back().get()), opt.kv_dtype, c.num_hidden_layers, c.num_key_value_heads, ctx, c.head_dim);
}

Context::~Context() = default;
int64_t Context::n_ctx() const { return st_->f.plan.ctx; }
int64_t Context::n_past() const { return st_->n_past; }
void Context::reset() { st_->n_past = 0; }
void Context::truncate(int64_t n_keep) {
  if (n_keep < 0 || n_keep > st_->n_past)
    fail(ErrorCode::InvalidArgument, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(st_->n_past) + "]");
  st_->n_past = n_keep;
}
uint64_t Context::allocated_bytes() const { return st_->bytes; }

namespace {

// One forward chunk of T tokens at positions p0.. of the context's cache; the final hidden
// states of rows [out_from, T) go to rows 0.. of s.f.xb.
void forward_chunk(const Model::Impl& m, Context::State& s, const int32_t* toks, int64_t T, int64_t p0, int64_t out_from,
                   NonFiniteProbe* probe = nullptr) {
  const AttendSeq seq{&s.kv, 0, T, p0};
  std::vector<int64_t> rows(size_t(T - out_from));
  for (int64_t t = out_from; t < T; ++t) rows[size_t(t - out_from)] = t;
  forward_rows(m, s.f, toks, {&seq, 1}, rows, probe);
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
  for (int64_t i = 0; i < n && !probe.found(); i += s.f.plan.batch) {
    const int64_t T = std::min(s.f.plan.batch, n - i);
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
  const Model::Impl& m = model_impl(*model_);
  State& s = *st_;
  check_eval_tokens(m.cfg, tokens, s.n_past, s.f.plan.ctx);
  const int64_t n = int64_t(tokens.size()), p_start = s.n_past;
  for (int64_t i = 0; i < n; i += s.f.plan.batch) {
    int64_t T = std::min(s.f.plan.batch, n - i);
    bool last = i + T == n;
    forward_chunk(m, s, tokens.data() + i, T, s.n_past, last ? T - 1 : T);
    s.n_past += T;
  }
  const LinearWeights* ls[1] = {&m.lm_head};
  float* ys[1] = {s.logits};
  run_linears(m, ls, ys, 1, s.f.xb, 1, s.f.prep);
  // One pass over the vocabulary: NaN/Inf logits stop here, with what made them.
  if (const uint64_t bad = count_non_finite(DType::F32, s.logits, m.cfg.vocab_size))
    non_finite_logits(m, s, tokens, p_start, s.n_past - 1, int64_t(bad));
  return {s.logits, size_t(m.cfg.vocab_size)};
}

std::vector<float> Context::eval_all(std::span<const int32_t> tokens) {
  const Model::Impl& m = model_impl(*model_);
  State& s = *st_;
  check_eval_tokens(m.cfg, tokens, s.n_past, s.f.plan.ctx);
  const int64_t n = int64_t(tokens.size()), H = m.cfg.hidden_size, V = m.cfg.vocab_size, p_start = s.n_past;
  std::vector<float> out(size_t(n * V));
  for (int64_t i = 0; i < n; i += s.f.plan.batch) {
    int64_t T = std::min(s.f.plan.batch, n - i);
    forward_chunk(m, s, tokens.data() + i, T, s.n_past, 0);
    s.n_past += T;
    for (int64_t t = 0; t < T; ++t) {
      const LinearWeights* ls[1] = {&m.lm_head};
      float* ys[1] = {out.data() + (i + t) * V};
      run_linears(m, ls, ys, 1, s.f.xb + t * H, 1, s.f.prep);
    }
  }
  for (int64_t t = 0; t < n; ++t)
    if (const uint64_t bad = count_non_finite(DType::F32, out.data() + t * V, V))
      non_finite_logits(m, s, tokens, p_start, p_start + t, int64_t(bad));
  return out;
}

}  // namespace llrt
