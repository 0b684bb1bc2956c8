// The CUDA engine's model: the weight plan (where every tensor lives in one device
// allocation), the memory estimate, the capability check and the upload.
//
// Weights go to the device in their stored dtype, each tensor's bytes copied verbatim
// from the mmap'd safetensors: the host fills one of two pinned staging buffers (several
// threads, so page faults of a cold file overlap) while the other buffer's
// cudaMemcpyAsync runs on its own stream. q/k/v (and gate/up) are placed back to back
// when their dtypes (and w8a8 quantization) agree, so each is one matrix with
// N = q_dim + 2 kv_dim (2 intermediate) rows: one launch instead of three at decode.
// A tied lm_head is the embedding table itself (no copy).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>

#include "cuda_engine.h"
#include "src/engine/cpu.h"
#include "llrt/error.h"
#include "src/engine/llama.h"
#include "llrt/model.h"
#include "src/quant/quant.h"
#include "src/engine/model_plan.h"

namespace llrt {
namespace cudaeng {

std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else std::snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  return buf;
}

namespace {

cuda::Q8Mode q8_mode(const ActQuantParams& a) {
  switch (a.mode) {
    case ActQuantMode::DynamicSymmetric: return cuda::Q8Mode::DynamicSymmetric;
    case ActQuantMode::DynamicAsymmetric: return cuda::Q8Mode::DynamicAsymmetric;
    case ActQuantMode::Static: return cuda::Q8Mode::Static;
  }
  return cuda::Q8Mode::DynamicSymmetric;
}

struct Planner {
  WeightPlan& p;
  uint64_t off = 0;

  uint64_t place(uint64_t bytes) {
    const uint64_t o = align_up(off);
    off = o + bytes;
    return o;
  }
  void upload(const void* src, uint64_t bytes, uint64_t dst) {
    if (bytes) p.uploads.push_back({src, bytes, dst});
  }

  void note(const DevLinear& l) {
    if (l.dtype == DType::BF16 || l.dtype == DType::F16) p.max_k_conv = std::max(p.max_k_conv, l.K);
    if (l.dtype == DType::I8) {
      p.max_k_q8 = std::max(p.max_k_q8, l.K);
      p.max_n_q8 = std::max(p.max_n_q8, l.N);
    }
  }

  // Places the modules as one matrix (`fused`: the plan's fusion group) or each on its own,
  // columns side by side.
  std::vector<DevLinear> group(const std::vector<const LinearPlan*>& ms, const std::string& fused_name, bool fused) {
    std::vector<DevLinear> out;
    auto q8_fields = [&](DevLinear& l, const LinearPlan& m) {
      const WeightView& v = m.view;
      l.ws_dtype = v.scale_dtype;
      l.per_channel = v.granularity == ScaleGranularity::Channel;
      l.mode = q8_mode(v.act);
      l.a_scale = v.act.scale;
      l.a_zp = v.act.zero_point;
      l.has_rowsum = !(v.act.mode == ActQuantMode::DynamicSymmetric ||
                       (v.act.mode == ActQuantMode::Static && v.act.zero_point == 0));
    };
    if (fused && ms.size() > 1) {
      DevLinear l;
      l.name = fused_name;
      l.K = ms[0]->K;
      l.dtype = ms[0]->view.dtype;
      uint64_t wbytes = 0, sbytes = 0;
      for (const auto* m : ms) {
        l.N += m->N;
        wbytes += m->weight_bytes();
        sbytes += m->scale_bytes();
      }
      l.w_off = place(wbytes);
      uint64_t at = l.w_off;
      for (const auto* m : ms) upload(m->view.data, m->weight_bytes(), at), at += m->weight_bytes();
      if (l.dtype == DType::I8) {
        q8_fields(l, *ms[0]);
        l.ws_off = place(sbytes);
        at = l.ws_off;
        for (const auto* m : ms) upload(m->view.scales, m->scale_bytes(), at), at += m->scale_bytes();
        if (l.has_rowsum) l.rowsum_off = place(uint64_t(l.N) * 4);
      }
      note(l);
      out.push_back(l);
      return out;
    }
    int64_t col = 0;
    for (const auto* m : ms) {
      DevLinear l;
      l.name = m->name;
      l.N = m->N;
      l.K = m->K;
      l.col = col;
      col += l.N;
      l.dtype = m->view.dtype;
      l.w_off = place(m->weight_bytes());
      upload(m->view.data, m->weight_bytes(), l.w_off);
      if (l.dtype == DType::I8) {
        q8_fields(l, *m);
        l.ws_off = place(m->scale_bytes());
        upload(m->view.scales, m->scale_bytes(), l.ws_off);
        if (l.has_rowsum) l.rowsum_off = place(uint64_t(l.N) * 4);
      }
      note(l);
      out.push_back(l);
    }
    return out;
  }

  DevNorm norm(const TensorPlan& t) {
    DevNorm n;
    n.dtype = t.dtype;
    n.off = place(t.bytes);
    upload(t.data, t.bytes, n.off);
    return n;
  }
};

}  // namespace

WeightPlan plan_weights(const ModelPlan& mp) {
  const ModelConfig& c = mp.cfg;
  WeightPlan p;
  Planner pl{p};
  p.embed_dtype = mp.embed.dtype;
  p.embed_off = pl.place(mp.embed.bytes);
  pl.upload(mp.embed.data, mp.embed.bytes, p.embed_off);
  p.layers.resize(size_t(c.num_hidden_layers));
  p.fused_qkv = mp.fuse_qkv;
  p.fused_gate_up = mp.fuse_gate_up;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerPlan& LP = mp.layers[size_t(l)];
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    DevLayer& L = p.layers[size_t(l)];
    L.attn_norm = pl.norm(LP.attn_norm);
    L.mlp_norm = pl.norm(LP.mlp_norm);
    L.qkv = pl.group({&LP.linear[kQProj], &LP.linear[kKProj], &LP.linear[kVProj]}, pre + "self_attn.qkv (q_proj|k_proj|v_proj)",
                     p.fused_qkv);
    L.o = pl.group({&LP.linear[kOProj]}, "", false)[0];
    L.gate_up = pl.group({&LP.linear[kGateProj], &LP.linear[kUpProj]}, pre + "mlp.gate_up (gate_proj|up_proj)", p.fused_gate_up);
    L.down = pl.group({&LP.linear[kDownProj]}, "", false)[0];
  }
  p.final_norm = pl.norm(mp.final_norm);
  if (mp.tied_head) {
    DevLinear l;
    l.name = mp.lm_head.name;
    l.N = mp.lm_head.N;
    l.K = mp.lm_head.K;
    l.dtype = mp.lm_head.view.dtype;
    l.w_off = p.embed_off;
    pl.note(l);
    p.lm_head = l;
  } else {
    p.lm_head = pl.group({&mp.lm_head}, "", false)[0];
  }
  p.bytes = align_up(pl.off);
  return p;
}

int64_t batch_size(int64_t requested, int64_t ctx) { return std::min(std::clamp<int64_t>(requested, 1, 4096), ctx); }

ContextPlan plan_context(const ModelConfig& c, const WeightPlan& w, int64_t ctx, int64_t batch) {
  ContextPlan p;
  p.ctx = ctx;
  p.batch = batch;
  p.logit_rows = std::min<int64_t>(batch, 32);
  const uint64_t B = uint64_t(batch), H = uint64_t(c.hidden_size), QD = uint64_t(c.q_dim()), KVD = uint64_t(c.kv_dim());
  const uint64_t I = uint64_t(c.intermediate_size), V = uint64_t(c.vocab_size), hd = uint64_t(c.head_dim);
  uint64_t off = 0;
  auto place = [&](uint64_t bytes) {
    const uint64_t o = align_up(off);
    off = o + bytes;
    return o;
  };
  p.x = place(B * H * 4);
  p.xb = place(B * H * 4);
  p.qkv = place(B * (QD + 2 * KVD) * 4);
  p.att = place(B * QD * 4);
  p.gu = place(B * 2 * I * 4);
  p.logits = place(uint64_t(p.logit_rows) * V * 4);
  p.conv = place(w.max_k_conv ? cuda::linear_conv_bytes(DType::BF16, batch, w.max_k_conv) : 0);
  if (w.max_k_q8) {
    p.xq = place(B * uint64_t(cuda::q8_ldq(w.max_k_q8)));
    p.xs = place(B * 4);
    p.xzp = place(B * 4);
    p.acc = place(cuda::linear_q8_acc_bytes(batch, w.max_n_q8));
    p.q8sync = place(cuda::q8_silu_mul_sync_bytes());  // zeroed with the rest at allocation
  }
  p.attn_bytes = cuda::attention_scratch_bytes(c.num_attention_heads, c.num_key_value_heads, c.head_dim, ctx);
  p.attn = place(p.attn_bytes);
  p.rope_cos = place(uint64_t(ctx) * (hd / 2) * 4);
  p.rope_sin = place(uint64_t(ctx) * (hd / 2) * 4);
  p.ids = place(B * 4);
  p.pos = place(4);
  p.argmax = place(4);
  p.kv_bytes = uint64_t(c.num_hidden_layers) * 2 * KVD * uint64_t(ctx) * 4;
  p.kv = place(p.kv_bytes);
  p.total = align_up(off);
  return p;
}

CudaMemoryEstimate estimate_memory(const Checkpoint& ck, int64_t ctx, int64_t batch) {
  const ModelConfig& c = ck.config();
  WeightPlan w = plan_weights(plan_model(ck));
  ctx = context_length(c, ctx);
  batch = batch_size(batch, ctx);
  ContextPlan p = plan_context(c, w, ctx, batch);
  CudaMemoryEstimate e;
  e.weight_bytes = w.bytes;
  e.kv_bytes = p.kv_bytes;
  e.scratch_bytes = p.scratch_bytes();
  e.workspace_bytes = cuda::kBlasWorkspaceBytes;
  e.ctx = ctx;
  e.batch = batch;
  return e;
}

namespace {
uint64_t free_device_bytes(int dev) {
  cuda::check(cudaSetDevice(dev), "cudaSetDevice");
  size_t free_b = 0, total_b = 0;
  cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  return free_b;
}
std::string memory_message(const CudaMemoryEstimate& e, uint64_t free_b, const std::string& dev) {
  return "the model needs " + human_bytes(e.total()) + " on " + dev + " (weights " + human_bytes(e.weight_bytes) +
         " + KV cache " + human_bytes(e.kv_bytes) + " for " + std::to_string(e.ctx) + " positions + scratch " +
         human_bytes(e.scratch_bytes) + " for batch " + std::to_string(e.batch) + " + cuBLAS workspace " +
         human_bytes(e.workspace_bytes) + ") but only " + human_bytes(free_b) +
         " are free: lower --ctx or --batch, or run with --device cpu";
}
}  // namespace

CudaFit check_model(const Checkpoint& ck, int64_t ctx, int64_t batch) {
  CudaFit f;
  if (!available()) {
    f.reason = status();
    return f;
  }
  f.kernels = check_kernels(llama_kernel_needs(ck, DType::F32, DeviceKind::Cuda), DeviceKind::Cuda);
  for (const auto& v : f.kernels)
    if (!v.chosen) {
      f.reason = unsupported_kernel_message(v);
      return f;
    }
  f.memory = estimate_memory(ck, ctx, batch);
  f.free_bytes = free_device_bytes(selected_device());
  if (f.memory.total() > f.free_bytes) {
    f.reason = memory_message(f.memory, f.free_bytes, device_info(selected_device()).describe());
    return f;
  }
  f.ok = true;
  return f;
}

// ------------------------------------------------------------------ upload

namespace {

void par_copy(char* dst, const char* src, size_t n, int threads) {
  constexpr size_t kBlock = size_t(1) << 20;
  if (n <= 2 * kBlock || threads <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  const int64_t blocks = int64_t((n + kBlock - 1) / kBlock);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const size_t o = size_t(b) * kBlock;
    std::memcpy(dst + o, src + o, std::min(kBlock, n - o));
  }
}

struct Staging {
  void* host[2] = {};
  cudaStream_t st[2] = {};
  cudaEvent_t ev[2] = {};
  ~Staging() {
    for (int i = 0; i < 2; ++i) {
      if (st[i]) cudaStreamSynchronize(st[i]), cudaStreamDestroy(st[i]);
      if (ev[i]) cudaEventDestroy(ev[i]);
      if (host[i]) cudaFreeHost(host[i]);
    }
  }
};

// Copies every upload into the device arena; returns seconds.
double upload_weights(std::vector<Upload> ups, char* dev, size_t cap, uint64_t total,
                      const std::function<void(const std::string&)>& say, const std::string& where) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  std::sort(ups.begin(), ups.end(), [](const Upload& a, const Upload& b) { return a.src < b.src; });
  cap = std::max<size_t>(cap, size_t(1) << 20);
  Staging S;
  for (int i = 0; i < 2; ++i) {
    cuda::check(cudaHostAlloc(&S.host[i], cap, cudaHostAllocDefault), "cudaHostAlloc(staging buffer)");
    cuda::check(cudaStreamCreateWithFlags(&S.st[i], cudaStreamNonBlocking), "cudaStreamCreate");
    cuda::check(cudaEventCreateWithFlags(&S.ev[i], cudaEventDisableTiming), "cudaEventCreate");
  }
  const int threads = std::max(1, std::min(8, cpu_info().physical_cores));
  struct Pending { uint64_t dst, off, n; };
  std::vector<Pending> pend;
  int cur = 0;
  size_t fill = 0;
  bool used[2] = {false, false};
  uint64_t done = 0, next_report = uint64_t(2) << 30;
  auto flush = [&] {
    for (const auto& p : pend)
      cuda::check(cudaMemcpyAsync(dev + p.dst, static_cast<char*>(S.host[cur]) + p.off, p.n, cudaMemcpyHostToDevice, S.st[cur]),
                  "cudaMemcpyAsync(weights)");
    cuda::check(cudaEventRecord(S.ev[cur], S.st[cur]), "cudaEventRecord");
    used[cur] = true;
    pend.clear();
    fill = 0;
    cur ^= 1;
    if (used[cur]) cuda::check(cudaEventSynchronize(S.ev[cur]), "weight upload");  // its copies are done
  };
  for (const auto& u : ups) {
    uint64_t off = 0;
    while (off < u.bytes) {
      const size_t n = size_t(std::min<uint64_t>(u.bytes - off, cap - fill));
      par_copy(static_cast<char*>(S.host[cur]) + fill, static_cast<const char*>(u.src) + off, n, threads);
      pend.push_back({u.dst + off, fill, n});
      fill += n;
      off += n;
      done += n;
      if (fill == cap) flush();
      if (say && done >= next_report && done < total) {
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        char buf[160];
        std::snprintf(buf, sizeof buf, "uploading weights to %s: %.1f / %.1f GB (%.1f GB/s)", where.c_str(), double(done) / 1e9,
                      double(total) / 1e9, double(done) / 1e9 / std::max(s, 1e-9));
        say(buf);
        next_report += uint64_t(2) << 30;
      }
    }
  }
  if (fill) flush();
  for (int i = 0; i < 2; ++i) cuda::check(cudaStreamSynchronize(S.st[i]), "weight upload");
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

const KernelEntry& cuda_entry(Op op, DType w) {
  const KernelEntry* e = KernelRegistry::global().find_best(op, w, DType::F32, DeviceKind::Cuda);
  if (!e) {
    KernelVerdict v;
    v.need = {op, w, DType::F32, ""};
    v.device = DeviceKind::Cuda;
    fail(ErrorCode::UnsupportedKernel, unsupported_kernel_message(v));
  }
  return *e;
}

}  // namespace

}  // namespace cudaeng

CudaModel::Impl::~Impl() {
  if (arena) cudaFree(arena);
}

namespace cudaeng {

std::shared_ptr<CudaModel::Impl> load_model(const std::filesystem::path& dir, const CudaModelOptions& opt) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto say = [&](const std::string& s) { if (opt.progress) opt.progress(s); };
  const int dev = selected_device();
  if (dev < 0 || !available()) fail(ErrorCode::Cuda, "no usable CUDA device: " + status());
  // 1. Headers, the tensor contract and the capability check on this GPU: nothing read yet.
  Checkpoint ck = Checkpoint::open(dir);
  validate_llama_checkpoint(ck);
  const auto needs = llama_kernel_needs(ck, DType::F32, DeviceKind::Cuda);
  require_kernels(needs, DeviceKind::Cuda);
  auto m = std::make_shared<CudaModel::Impl>();
  CudaModel::Impl& im = *m;
  im.verdicts = check_kernels(needs, DeviceKind::Cuda);
  im.cfg = ck.config();
  im.dev = device_info(dev);
  im.mp = plan_model(ck);
  im.plan = plan_weights(im.mp);
  // 2. Memory: weights + the context the caller will open, against free device memory.
  const int64_t ctx = context_length(im.cfg, opt.ctx);
  const int64_t batch = batch_size(opt.batch, ctx);
  CudaMemoryEstimate est;
  est.weight_bytes = im.plan.bytes;
  const ContextPlan cp = plan_context(im.cfg, im.plan, ctx, batch);
  est.kv_bytes = cp.kv_bytes;
  est.scratch_bytes = cp.scratch_bytes();
  est.workspace_bytes = cuda::kBlasWorkspaceBytes;
  est.ctx = ctx;
  est.batch = batch;
  const uint64_t free_b = free_device_bytes(dev);
  if (est.total() > free_b) fail(ErrorCode::Cuda, memory_message(est, free_b, im.dev.describe()));
  // 3. Upload.
  cuda::check(cudaMalloc(&im.arena, im.plan.bytes), "cudaMalloc(weights)");
  say("uploading " + human_bytes(im.plan.bytes) + " of weights to " + im.dev.describe());
  im.upload_seconds = upload_weights(im.plan.uploads, static_cast<char*>(im.arena), opt.staging_bytes, im.plan.bytes, say,
                                     "cuda:" + std::to_string(dev));
  im.plan.uploads.clear();
  // 4. Bind device pointers and kernels; derived int8 row sums.
  char* base = static_cast<char*>(im.arena);
  auto bind = [&](DevLinear& l) {
    l.w = base + l.w_off;
    if (l.dtype == DType::I8) {
      l.ws = base + l.ws_off;
      if (l.has_rowsum) {
        l.rowsum = reinterpret_cast<const int32_t*>(base + l.rowsum_off);
        cuda::q8_row_sums(static_cast<const int8_t*>(l.w), l.N, l.K, const_cast<int32_t*>(l.rowsum), nullptr);
      }
      l.entry = &cuda_entry(Op::Linear, DType::I8);
    } else {
      l.entry = &cuda_entry(Op::Linear, l.dtype);
    }
  };
  auto bind_norm = [&](DevNorm& n) {
    n.w = base + n.off;
    n.entry = &cuda_entry(Op::RmsNorm, n.dtype);
  };
  for (auto& L : im.plan.layers) {
    bind_norm(L.attn_norm);
    bind_norm(L.mlp_norm);
    for (auto& l : L.qkv) bind(l);
    bind(L.o);
    for (auto& l : L.gate_up) bind(l);
    bind(L.down);
  }
  bind_norm(im.plan.final_norm);
  bind(im.plan.lm_head);
  im.plan.embed_w = base + im.plan.embed_off;
  im.embed_fn = kernel_fn<cuda::EmbeddingFn>(cuda_entry(Op::Embedding, im.plan.embed_dtype));
  im.rope_fn = kernel_fn<cuda::RopeFn>(cuda_entry(Op::RopeKvStore, DType::F32));
  im.attn_fn = kernel_fn<cuda::AttentionFn>(cuda_entry(Op::AttentionAllHeads, DType::F32));
  im.silu_fn = kernel_fn<cuda::SiluMulFn>(cuda_entry(Op::SiluMul, DType::F32));
  for (DType w : {DType::F32, DType::F16, DType::BF16, DType::I8})
    if (const KernelEntry* e = KernelRegistry::global().find_best(Op::LinearDecodeFused, w, DType::F32, DeviceKind::Cuda))
      im.fused_linear[w] = e->fn<cuda::DecodeLinearFn>();
  cuda::check(cudaDeviceSynchronize(), "row sums");
  im.ck = std::move(ck);
  im.load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  char buf[200];
  std::snprintf(buf, sizeof buf, "weights on %s: %s in %.2f s (%.1f GB/s host to device)", im.dev.describe().c_str(),
                human_bytes(im.plan.bytes).c_str(), im.upload_seconds, double(im.plan.bytes) / 1e9 / std::max(im.upload_seconds, 1e-9));
  say(buf);
  return m;
}

}  // namespace cudaeng

}  // namespace llrt
