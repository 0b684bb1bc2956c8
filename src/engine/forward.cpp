// The Llama forward pass (LlamaForCausalLM as HF runs it), over the rows of one step:
//   x = embed(tokens)
//   per layer: h = rmsnorm(x) ; q,k,v = h.Wq^T, h.Wk^T, h.Wv^T ; rope(q,k) at each row's position
//              append k,v to the row's sequence's cache ; a = softmax(q.k^T * hd^-0.5, causal) . v
//              over that sequence's positions (GQA: kv head j serves query heads
//              j*n_rep .. j*n_rep+n_rep-1) ; x += a.Wo^T
//              h = rmsnorm(x) ; x += (silu(h.Wg^T) * h.Wu^T).Wd^T
//   out = rmsnorm(x) of the rows asked for (the caller runs lm_head on them)
// Every Linear runs once over all rows of the step, whichever sequences they belong to.
#include "forward.h"

#include <algorithm>

#include "work_pool.h"

namespace llrt {

float* ForwardBuffers::alloc(int64_t n) {
  bufs.push_back(aligned_alloc_bytes(size_t(std::max<int64_t>(n, 1)) * 4));
  bytes += uint64_t(std::max<int64_t>(n, 0)) * 4;
  return static_cast<float*>(bufs.back().get());
}

void ForwardBuffers::allocate(const Model::Impl& m, const detail::ScratchPlan& p, AttentionFn fn) {
  plan = p;
  attn_fn = fn;
  x = alloc(p.x);
  xb = alloc(p.xb);
  q = alloc(p.q);
  k = alloc(p.k);
  v = alloc(p.v);
  att = alloc(p.att);
  gate = alloc(p.gate);
  up = alloc(p.up);
  att_s.scores = alloc(p.att_scores);
  att_s.part = alloc(p.att_part);
  att_s.lse = alloc(p.att_lse);
  att_s.splits = p.att_splits;
  att_s.run = p.ctx;
  rope_cos = alloc(p.rope / 2);
  rope_sin = alloc(p.rope / 2);
  if (p.prep_bytes) {
    bufs.push_back(aligned_alloc_bytes(p.prep_bytes));
    bytes += p.prep_bytes;
    prep = bufs.back().get();
  }
  m.plan.rope_table(p.ctx, rope_cos, rope_sin);
}

uint64_t bound_prep_bytes(const Model::Impl& m, int64_t batch) {
  uint64_t p = 0;
  auto one = [&](const LinearWeights& L) {
    if (auto f = L.decode->linear().prep_bytes) p = std::max<uint64_t>(p, f(1, L.in));
    if (auto f = L.prefill->linear().prep_bytes; f && batch > 1) p = std::max<uint64_t>(p, f(batch, L.in));
  };
  for (const auto& L : m.layers)
    for (const LinearWeights& l : L.lin) one(l);
  one(m.lm_head);
  return p;
}

bool NonFiniteProbe::check(int64_t at, const float* x, int64_t from, int64_t T, int64_t H) {
  for (int64_t t = from; t < T; ++t)
    if (count_non_finite(DType::F32, x + t * H, H) > 0) {
      stage = at;
      row = t;
      return true;
    }
  return false;
}

void forward_rows(const Model::Impl& m, ForwardBuffers& s, const int32_t* toks, std::span<const AttendSeq> seqs,
                  std::span<const int64_t> out_rows, NonFiniteProbe* probe) {
  const ModelConfig& c = m.cfg;
  const int64_t H = c.hidden_size, QD = c.q_dim(), KVD = c.kv_dim(), I = c.intermediate_size;
  const int64_t hd = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads, half = hd / 2;
  const float eps = float(c.rms_norm_eps);
  int64_t T = 0;
  for (const AttendSeq& sq : seqs) T += sq.T;
  const int nt = int(s.plan.threads);  // what the per-thread scratch was sized for
  WorkPool& pool = WorkPool::global();
  auto rmsnorm = [&](const NormWeights& n, const float* x, float* y, int64_t rows) {
    pool.run(rows > 8 ? nt : 1, rows, [&](int64_t t, int) { n.fn(x + t * H, n.w, y + t * H, H, eps); });
  };
  auto linears = [&](std::initializer_list<const LinearWeights*> ls, std::initializer_list<float*> ys, const float* x) {
    run_linears(m, ls.begin(), ys.begin(), int(ls.size()), x, T, s.prep);
  };

  m.embed_fn(m.embed, H, toks, T, s.x);  // x = embed(tokens)
  if (probe && probe->check(-1, s.x, 0, T, H)) return;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights& L = m.layers[l];
    // h = rmsnorm(x); q, k, v = h Wq^T, h Wk^T, h Wv^T; RoPE at the positions; k, v to the caches
    rmsnorm(L.attn_norm, s.x, s.xb, T);
    linears({&L.lin[kQProj], &L.lin[kKProj], &L.lin[kVProj]}, {s.q, s.k, s.v}, s.xb);
    for (const AttendSeq& sq : seqs) {
      for (int64_t t = 0; t < sq.T; ++t) {
        const int64_t r = sq.row0 + t;
        const float* cs = s.rope_cos + (sq.p0 + t) * half;
        const float* sn = s.rope_sin + (sq.p0 + t) * half;
        m.rope_fn(s.q + r * QD, nh, hd, hd, cs, sn);
        m.rope_fn(s.k + r * KVD, nkv, hd, hd, cs, sn);
      }
      sq.kv->store(int64_t(l), sq.p0, sq.T, s.k + sq.row0 * KVD, s.v + sq.row0 * KVD);
    }
    // a = softmax(q k^T / sqrt(hd), causal) v ; x += a Wo^T
    attend(pool, nt, s.attn_fn, c, seqs, int64_t(l), s.q, s.att, s.att_s);
    linears({&L.lin[kOProj]}, {s.xb}, s.att);
    m.add_fn(s.x, s.xb, T * H);
    // h = rmsnorm(x); x += (silu(h Wg^T) * h Wu^T) Wd^T
    rmsnorm(L.mlp_norm, s.x, s.xb, T);
    linears({&L.lin[kGateProj], &L.lin[kUpProj]}, {s.gate, s.up}, s.xb);
    m.silu_mul_fn(s.gate, s.up, s.gate, T * I);
    linears({&L.lin[kDownProj]}, {s.xb}, s.gate);
    m.add_fn(s.x, s.xb, T * H);
    if (probe && probe->check(int64_t(l), s.x, 0, T, H)) return;
  }
  const int64_t n_out = int64_t(out_rows.size());
  for (int64_t i = 0; i < n_out; ++i) m.final_norm.fn(s.x + out_rows[size_t(i)] * H, m.final_norm.w, s.xb + i * H, H, eps);
  if (probe && probe->check(int64_t(m.layers.size()), s.xb, 0, n_out, H)) probe->row = out_rows[size_t(probe->row)];
}

}  // namespace llrt
