// BatchContext (llrt/batch.h): sequences over a pool of paged KV blocks, evaluated together.
//
// Block bookkeeping, in one place:
//   * a block is free (in `free_`, lowest index first: the memory touched stays compact), held
//     (ref > 0: by that many sequences), or cached (ref 0 but indexed for prefixes: in
//     `evictable_`, least recently used first, taken when no block is free);
//   * indexed blocks are read-only: a full block under the hash of its tokens and of every
//     token before it (`by_hash_`), and every indexed block, full or the partial tail a closed
//     sequence left, under its parent's hash (`by_parent_`, for the longest partial match);
//   * a sequence writes only into a block it alone holds and that is not indexed: before a step
//     writes into the middle of a shared or indexed block, the block is copied (copy-on-write).
#include "llrt/batch.h"

#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "cpu.h"
#include "forward.h"
#include "kernel_choice.h"
#include "llama.h"
#include "llrt/error.h"
#include "llrt/model.h"
#include "model_impl.h"

namespace llrt {

namespace {

void check_options(const BatchOptions& o) {
  if (o.parallel < 1 || o.parallel > 65536)
    fail(ErrorCode::InvalidArgument, "parallel sequences " + std::to_string(o.parallel) + " outside [1, 65536]");
  if (o.block_size < 1 || o.block_size > 65536)
    fail(ErrorCode::InvalidArgument, "KV block size " + std::to_string(o.block_size) + " outside [1, 65536] positions");
  if (o.n_batch < 1) fail(ErrorCode::InvalidArgument, "batch size " + std::to_string(o.n_batch) + ": must be >= 1");
  if (o.kv_dtype != DType::F32 && o.kv_dtype != DType::F16 && o.kv_dtype != DType::BF16)
    fail(ErrorCode::InvalidArgument, std::string("KV cache dtype ") + dtype_name(o.kv_dtype) +
                                         ": the CPU engine keeps the KV cache in F32, F16 or BF16");
}

// Chain hash of a block: its parent's hash and its tokens (splitmix64 per token).
constexpr uint64_t kRootHash = 0x6c6c72742d6b7631ull;
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t chain_hash(uint64_t parent, const int32_t* t, int64_t n) {
  uint64_t h = mix(parent);
  for (int64_t i = 0; i < n; ++i) h = mix(h ^ uint64_t(uint32_t(t[i])));
  return h;
}

}  // namespace

KvPoolSize kv_pool_size(const ModelConfig& c, const BatchOptions& opt) {
  check_options(opt);
  const int64_t ctx = context_length(c, opt.n_ctx);
  const detail::PlanMath pm{ctx, opt.n_batch};
  KvPoolSize p;
  p.block_size = opt.block_size;
  p.blocks = pm.mul(int64_t(opt.parallel), (ctx + opt.block_size - 1) / opt.block_size);
  if (p.blocks > INT32_MAX)
    fail(ErrorCode::InvalidArgument, "a KV pool of " + std::to_string(p.blocks) + " blocks (parallel x ceil(ctx / block size)) is more than " +
                                         "2^31 - 1: use larger blocks or fewer sequences");
  p.block_bytes = pm.umul(pm.umul(uint64_t(2 * c.num_hidden_layers * c.kv_dim()), uint64_t(opt.block_size)), dtype_size(opt.kv_dtype));
  p.bytes = pm.umul(p.block_bytes, uint64_t(p.blocks));
  return p;
}

struct BatchContext::Impl {
  struct Block {
    int32_t ref = 0;
    bool indexed = false, full = false;
    uint64_t hash = 0, parent = 0, lru = 0;
    std::vector<int32_t> toks;  // indexed blocks: the tokens whose K/V they hold
  };
  struct Seq {
    std::vector<int32_t> blocks;  // block table: position p is in blocks[p / B]
    std::vector<char*> ptrs;      // their addresses (what KvCache reads)
    std::vector<int32_t> toks;    // the tokens whose K/V the sequence holds (n_past of them)
    std::vector<uint64_t> hashes; // chain hash of each full block
    int64_t n_past() const { return int64_t(toks.size()); }
  };

  const Model::Impl* m = nullptr;
  BatchOptions opt;
  int64_t ctx = 0, batch = 0, B = 0;
  KvPoolSize pool;
  char* base = nullptr;
  std::vector<Block> blocks;
  std::set<int32_t> free_;
  std::set<std::pair<uint64_t, int32_t>> evictable_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::unordered_multimap<uint64_t, int32_t> by_parent_;
  std::unordered_map<SeqId, Seq> seqs;
  SeqId next_id = 1;
  uint64_t clock = 0;
  int64_t in_use = 0, peak = 0;
  ForwardBuffers f;
  std::vector<float> logits;
  std::vector<int64_t> logit_row;  // per item of the last eval: its row in `logits`, or -1
  int64_t failed_item = -1;        // the item whose logits made the last eval() fail (NonFinite)

  ~Impl() {
    if (base) munmap(base, size_t(pool.bytes));
  }

  char* block_ptr(int32_t id) const { return base + uint64_t(id) * pool.block_bytes; }
  Seq& seq(SeqId s) {
    auto it = seqs.find(s);
    if (it == seqs.end()) fail(ErrorCode::InvalidArgument, "sequence " + std::to_string(s) + " is not open in this batch context");
    return it->second;
  }
  int64_t free_blocks() const { return int64_t(free_.size() + evictable_.size()); }

  void unindex(int32_t id) {
    Block& b = blocks[size_t(id)];
    if (!b.indexed) return;
    if (b.full) {
      auto it = by_hash_.find(b.hash);
      if (it != by_hash_.end() && it->second == id) by_hash_.erase(it);
    }
    auto [lo, hi] = by_parent_.equal_range(b.parent);
    for (auto it = lo; it != hi; ++it)
      if (it->second == id) {
        by_parent_.erase(it);
        break;
      }
    b.indexed = b.full = false;
    b.toks.clear();
  }
  // A block of the sequence's own: free first, else the least recently used cached one.
  int32_t take() {
    int32_t id;
    if (!free_.empty()) {
      id = *free_.begin();
      free_.erase(free_.begin());
    } else if (!evictable_.empty()) {
      id = evictable_.begin()->second;
      evictable_.erase(evictable_.begin());
      unindex(id);
    } else {
      fail(ErrorCode::Internal, "KV block pool: no block left after the check said there was one");
    }
    blocks[size_t(id)].ref = 1;
    ++in_use;
    peak = std::max<int64_t>(peak, id + 1);
    return id;
  }
  void acquire(int32_t id) {
    Block& b = blocks[size_t(id)];
    if (b.ref++ == 0) {
      ++in_use;
      evictable_.erase({b.lru, id});
    }
  }
  void release(int32_t id) {
    Block& b = blocks[size_t(id)];
    if (--b.ref > 0) return;
    --in_use;
    if (b.indexed) {
      b.lru = ++clock;
      evictable_.insert({b.lru, id});
    } else {
      free_.insert(id);
    }
  }
  void push_block(Seq& s, int32_t id) {
    s.blocks.push_back(id);
    s.ptrs.push_back(block_ptr(id));
  }
  void pop_blocks(Seq& s, size_t keep) {
    while (s.blocks.size() > keep) {
      release(s.blocks.back());
      s.blocks.pop_back();
      s.ptrs.pop_back();
    }
  }
  // The tail block a step appending at position p0 would write into the middle of, when the
  // sequence may not write it in place (shared or indexed): it is copied first.
  bool needs_copy(const Seq& s) const {
    const int64_t p0 = s.n_past();
    if (p0 % B == 0 || size_t(p0 / B) >= s.blocks.size()) return false;
    const Block& b = blocks[size_t(s.blocks[size_t(p0 / B)])];
    return b.ref > 1 || b.indexed;
  }
  int64_t blocks_needed(const Seq& s, int64_t n) const {
    const int64_t need = (s.n_past() + n + B - 1) / B;
    return std::max<int64_t>(0, need - int64_t(s.blocks.size())) + (n > 0 && needs_copy(s) ? 1 : 0);
  }
  // Room for n more positions: the copy of a shared tail block, then new blocks.
  void grow(Seq& s, int64_t n) {
    if (needs_copy(s)) {
      const size_t i = size_t(s.n_past() / B);
      const int32_t old = s.blocks[i], id = take();
      std::memcpy(block_ptr(id), block_ptr(old), size_t(pool.block_bytes));
      release(old);
      s.blocks[i] = id;
      s.ptrs[i] = block_ptr(id);
    }
    const size_t need = size_t((s.n_past() + n + B - 1) / B);
    while (s.blocks.size() < need) push_block(s, take());
  }
  // Full blocks the sequence's tokens now cover get their chain hash and, when no block holds
  // that prefix yet, go into the index.
  void register_full(Seq& s) {
    const size_t full = size_t(s.n_past() / B);
    while (s.hashes.size() < full) {
      const size_t i = s.hashes.size();
      const uint64_t parent = i == 0 ? kRootHash : s.hashes[i - 1];
      const uint64_t h = chain_hash(parent, s.toks.data() + int64_t(i) * B, B);
      s.hashes.push_back(h);
      if (!opt.prefix_cache || by_hash_.count(h)) continue;
      Block& b = blocks[size_t(s.blocks[i])];
      if (b.indexed) continue;  // reached through the index already (attached)
      b.indexed = b.full = true;
      b.hash = h;
      b.parent = parent;
      b.toks.assign(s.toks.begin() + int64_t(i) * B, s.toks.begin() + int64_t(i + 1) * B);
      by_hash_[h] = s.blocks[i];
      by_parent_.insert({parent, s.blocks[i]});
    }
  }
};

BatchContext::BatchContext(std::shared_ptr<const Model> model, const BatchOptions& opt) : model_(std::move(model)), impl_(new Impl) {
  if (!model_) fail(ErrorCode::InvalidArgument, "BatchContext needs a model");
  const Model::Impl& m = model_impl(*model_);
  const ModelConfig& c = m.cfg;
  Impl& im = *impl_;
  im.m = &m;
  im.opt = opt;
  im.pool = kv_pool_size(c, opt);  // checks the options
  im.ctx = context_length(c, opt.n_ctx);
  im.batch = std::min<int64_t>(opt.n_batch, 4096);
  im.B = opt.block_size;
  const KernelEntry* attn = KernelRegistry::global().find_best(Op::Attention, opt.kv_dtype, DType::F32);
  if (!attn) {
    KernelVerdict v;
    v.need = {Op::Attention, opt.kv_dtype, DType::F32, "attention over the KV cache"};
    fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
  }
  const AttentionFn attn_fn = kernel_fn<AttentionFn>(*attn);
  detail::ScratchPlan plan = detail::make_scratch_plan(c, im.ctx, im.batch, m.threads, 0, dtype_size(opt.kv_dtype));
  plan.prep_bytes = bound_prep_bytes(m, im.batch);
  const uint64_t avail = cpu_info().mem_available_bytes;
  const uint64_t need = im.pool.bytes + plan.scratch_bytes();  // + the gather buffers, below (small)
  if (avail && need > avail)
    fail(ErrorCode::InvalidArgument, "the KV pool for " + std::to_string(opt.parallel) + " sequences of " + std::to_string(im.ctx) +
                                         " positions needs " + std::to_string(im.pool.bytes >> 20) + " MiB (plus " +
                                         std::to_string(plan.scratch_bytes() >> 20) + " MiB of scratch) but only " +
                                         std::to_string(avail >> 20) + " MiB are available: lower --parallel or --ctx, or use --kv-type f16");
  // Reserved, not committed: a block's pages are backed when first written.
  void* p = mmap(nullptr, size_t(im.pool.bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) fail(ErrorCode::InvalidArgument, "could not reserve " + std::to_string(im.pool.bytes >> 20) + " MiB for the KV pool");
  im.base = static_cast<char*>(p);
  im.blocks.resize(size_t(im.pool.blocks));
  for (int32_t i = 0; i < int32_t(im.pool.blocks); ++i) im.free_.insert(im.free_.end(), i);
  im.f.allocate(m, plan, attn_fn);
  // Each thread's gather buffer: K and V of one KV head over a whole sequence (src/kv_cache.h).
  const size_t gather = (size_t(im.ctx) * size_t(c.head_dim) * dtype_size(opt.kv_dtype) + 63) / 64 * 64 * 2;
  im.f.att_s.gather_bytes = gather;
  im.f.bufs.push_back(aligned_alloc_bytes(gather * size_t(plan.threads)));
  im.f.bytes += gather * size_t(plan.threads);
  im.f.att_s.gather = im.f.bufs.back().get();
}

BatchContext::~BatchContext() = default;

const ModelConfig& BatchContext::config() const { return impl_->m->cfg; }
int64_t BatchContext::n_ctx() const { return impl_->ctx; }
int64_t BatchContext::n_batch() const { return impl_->batch; }
KvPoolSize BatchContext::pool() const { return impl_->pool; }
int64_t BatchContext::free_blocks() const { return impl_->free_blocks(); }
int64_t BatchContext::blocks_in_use() const { return impl_->in_use; }
int64_t BatchContext::peak_blocks() const { return impl_->peak; }
int64_t BatchContext::sequences() const { return int64_t(impl_->seqs.size()); }
int64_t BatchContext::n_past(SeqId s) const { return const_cast<Impl&>(*impl_).seq(s).n_past(); }
int64_t BatchContext::blocks_needed(SeqId s, int64_t n) const {
  if (n < 0) fail(ErrorCode::InvalidArgument, "blocks_needed: negative position count");
  return impl_->blocks_needed(const_cast<Impl&>(*impl_).seq(s), n);
}

BatchContext::SeqId BatchContext::open() {
  const SeqId id = impl_->next_id++;
  impl_->seqs.emplace(id, Impl::Seq{});
  return id;
}

int64_t BatchContext::attach_prefix(SeqId sid, std::span<const int32_t> tokens) {
  Impl& im = *impl_;
  Impl::Seq& s = im.seq(sid);
  if (s.n_past() != 0 || !s.blocks.empty())
    fail(ErrorCode::InvalidArgument, "attach_prefix: sequence " + std::to_string(sid) + " already holds positions");
  if (!im.opt.prefix_cache || tokens.size() < 2) return 0;
  const int64_t limit = std::min<int64_t>(int64_t(tokens.size()) - 1, im.ctx);
  const int64_t B = im.B;
  uint64_t parent = kRootHash;
  int64_t pos = 0;
  while (pos + B <= limit) {  // whole blocks, through the chain hash
    const uint64_t h = chain_hash(parent, tokens.data() + pos, B);
    auto it = im.by_hash_.find(h);
    if (it == im.by_hash_.end()) break;
    const Impl::Block& b = im.blocks[size_t(it->second)];
    if (b.parent != parent || !std::equal(b.toks.begin(), b.toks.end(), tokens.begin() + pos)) break;
    im.acquire(it->second);
    im.push_block(s, it->second);
    s.hashes.push_back(h);
    parent = h;
    pos += B;
  }
  // The longest partial match among the indexed children of the last matched block: shared
  // until the sequence writes into it (then copied).
  int32_t best = -1;
  int64_t best_n = 0;
  auto [lo, hi] = im.by_parent_.equal_range(parent);
  for (auto it = lo; it != hi; ++it) {
    const Impl::Block& b = im.blocks[size_t(it->second)];
    const int64_t most = std::min<int64_t>(int64_t(b.toks.size()), limit - pos);
    int64_t n = 0;
    while (n < most && b.toks[size_t(n)] == tokens[size_t(pos + n)]) ++n;
    if (n > best_n) {
      best_n = n;
      best = it->second;
    }
  }
  if (best >= 0) {
    im.acquire(best);
    if (im.free_blocks() > 0) {
      im.push_block(s, best);
      pos += best_n;
    } else {  // no block would be left for its copy: a sequence alone in the pool could never write
      im.release(best);
    }
  }
  s.toks.assign(tokens.begin(), tokens.begin() + pos);
  return pos;
}

void BatchContext::close(SeqId sid) {
  Impl& im = *impl_;
  Impl::Seq& s = im.seq(sid);
  const int64_t n = s.n_past(), B = im.B;
  // The partial tail block the sequence alone holds stays findable for a prefix (chat turns).
  if (im.opt.prefix_cache && n % B != 0 && size_t(n / B) < s.blocks.size()) {
    const int32_t id = s.blocks[size_t(n / B)];
    Impl::Block& b = im.blocks[size_t(id)];
    if (b.ref == 1 && !b.indexed) {
      b.indexed = true;
      b.full = false;
      b.parent = n / B == 0 ? kRootHash : s.hashes[size_t(n / B - 1)];
      b.toks.assign(s.toks.begin() + (n / B) * B, s.toks.end());
      im.by_parent_.insert({b.parent, id});
    }
  }
  im.pop_blocks(s, 0);
  im.seqs.erase(sid);
}

void BatchContext::truncate(SeqId sid, int64_t n_keep) {
  Impl& im = *impl_;
  Impl::Seq& s = im.seq(sid);
  if (n_keep < 0 || n_keep > s.n_past())
    fail(ErrorCode::InvalidArgument, "truncate(" + std::to_string(n_keep) + ") outside [0, " + std::to_string(s.n_past()) + "]");
  im.pop_blocks(s, size_t((n_keep + im.B - 1) / im.B));
  s.toks.resize(size_t(n_keep));
  s.hashes.resize(std::min(s.hashes.size(), size_t(n_keep / im.B)));
}

void BatchContext::eval(std::span<const Item> items) {
  Impl& im = *impl_;
  const Model::Impl& m = *im.m;
  const ModelConfig& c = m.cfg;
  if (items.empty()) fail(ErrorCode::InvalidArgument, "eval() needs at least one item");
  im.failed_item = -1;
  // 1. Everything checked before anything changes.
  std::vector<Impl::Seq*> ss(items.size());
  int64_t rows = 0, blocks = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    ss[i] = &im.seq(items[i].seq);
    for (size_t j = 0; j < i; ++j)
      if (ss[j] == ss[i]) fail(ErrorCode::InvalidArgument, "eval(): sequence " + std::to_string(items[i].seq) + " appears twice in one step");
    check_eval_tokens(c, items[i].tokens, ss[i]->n_past(), im.ctx);
    rows += int64_t(items[i].tokens.size());
    blocks += im.blocks_needed(*ss[i], int64_t(items[i].tokens.size()));
  }
  if (rows > im.batch)
    fail(ErrorCode::InvalidArgument, "eval(): " + std::to_string(rows) + " tokens in one step, more than the batch size " + std::to_string(im.batch));
  if (blocks > im.free_blocks())
    fail(ErrorCode::ContextOverflow, "the KV block pool is full: this step needs " + std::to_string(blocks) + " blocks of " +
                                         std::to_string(im.B) + " positions, " + std::to_string(im.free_blocks()) + " of " +
                                         std::to_string(im.pool.blocks) + " are free; wait for sequences to end, or raise --parallel");
  // 2. Blocks, rows, the sequences' views.
  std::vector<size_t> had(items.size());
  std::vector<int32_t> toks;
  toks.reserve(size_t(rows));
  std::vector<KvCache> views(items.size());
  std::vector<AttendSeq> att(items.size());
  std::vector<int64_t> out_rows;
  im.logit_row.assign(items.size(), -1);
  int64_t row = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    Impl::Seq& s = *ss[i];
    const int64_t T = int64_t(items[i].tokens.size());
    had[i] = s.blocks.size();
    im.grow(s, T);
    views[i] = KvCache(s.ptrs.data(), im.opt.kv_dtype, c.num_hidden_layers, c.num_key_value_heads, im.B, c.head_dim);
    att[i] = AttendSeq{&views[i], row, T, s.n_past()};
    toks.insert(toks.end(), items[i].tokens.begin(), items[i].tokens.end());
    row += T;
    if (items[i].logits) {
      im.logit_row[i] = int64_t(out_rows.size());
      out_rows.push_back(row - 1);
    }
  }
  // 3. The forward pass over every row, then lm_head over the rows asked for.
  forward_rows(m, im.f, toks.data(), att, out_rows);
  const int64_t n_out = int64_t(out_rows.size()), V = c.vocab_size;
  im.logits.resize(size_t(n_out * V));
  if (n_out) {
    const LinearWeights* ls[1] = {&m.lm_head};
    float* ys[1] = {im.logits.data()};
    run_linears(m, ls, ys, 1, im.f.xb, n_out, im.f.prep);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (im.logit_row[i] < 0) continue;
    if (const uint64_t bad = count_non_finite(DType::F32, im.logits.data() + im.logit_row[i] * V, V)) {
      for (size_t j = 0; j < items.size(); ++j) im.pop_blocks(*ss[j], had[j]);  // a copied tail block stays: same K/V
      im.logit_row.assign(items.size(), -1);
      im.failed_item = int64_t(i);
      fail_non_finite_logits(ss[i]->n_past() + int64_t(items[i].tokens.size()) - 1, bad, V,
                             "sequence " + std::to_string(items[i].seq) + " of a batched step");
    }
  }
  // 4. The step happened: positions advance, newly full blocks are indexed.
  for (size_t i = 0; i < items.size(); ++i) {
    Impl::Seq& s = *ss[i];
    s.toks.insert(s.toks.end(), items[i].tokens.begin(), items[i].tokens.end());
    im.register_full(s);
  }
}

int64_t BatchContext::failed_item() const { return impl_->failed_item; }

std::span<const float> BatchContext::logits(size_t item) const {
  const Impl& im = *impl_;
  if (item >= im.logit_row.size() || im.logit_row[item] < 0)
    fail(ErrorCode::InvalidArgument, "logits(" + std::to_string(item) + "): the last eval() made no logits for that item");
  const int64_t V = im.m->cfg.vocab_size;
  return {im.logits.data() + im.logit_row[item] * V, size_t(V)};
}

}  // namespace llrt
