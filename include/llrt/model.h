// llrt: the Llama engine.
//
// Model holds the weights (zero-copy views in their stored dtype) and the kernel
// choice for every op, made once at load after the capability check. Context holds
// a KV cache and scratch for one sequence; many contexts can share one Model.
//
// Activation precision (decided and documented): the residual stream, every
// intermediate activation and (by default) the KV cache are F32; every kernel accumulates
// in F32. ContextOptions::kv_dtype may keep the KV cache in F16 or BF16 instead.
// Weights are read in their stored dtype (F32/F16/BF16, or I8 + scales for w8a8) and
// widened in registers. On AVX512_BF16/AMX the BF16 matmul rounds the activation
// operand to BF16 (RNE) for the dot-product instruction (accumulation stays F32);
// the cross-backend checker bounds the effect, and the parity tests against HF's
// float32 reference hold on every backend.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llrt/checkpoint.h"
#include "llrt/session.h"

namespace llrt {

struct KernelVerdict;  // src/engine: one kernel need with the kernel chosen for it

// Where a load is: the weight files are read one after another (a single model.safetensors is
// shard 1 of 1); bytes count the files' sizes. Only a copy (LoadMode::Copy) reads bytes; a mapping
// reports each shard as done when it is mapped.
struct LoadProgress {
  int shard = 0, shards = 0;           // 1-based shard being read, of shards
  uint64_t bytes_done = 0, bytes_total = 0;  // over every shard
};

struct ModelOptions {
  // Copy into huge-page-backed memory (the faster decode, measured in bench/README.md),
  // Mmap (zero-copy, instant start), or Auto (default): Copy when the weights fit in
  // available memory, else Mmap, said through `progress`.
  MapOptions map{LoadMode::Auto};
  int threads = 0;       // 0: physical cores
  // Called while loading with a one-line status: the load mode chosen, "copying shard 2/4
  // (4.9 GB) model-00002-of-00004.safetensors" as each weight file starts (copy only), the
  // kernel measurement when it runs.
  std::function<void(const std::string&)> progress;
  // Called as the weights' bytes arrive (copy: after each 64 MiB chunk and at each shard's start
  // and end; mmap: once per shard), from one thread at a time: for a progress bar.
  std::function<void(const LoadProgress&)> on_bytes = nullptr;
};

struct ContextOptions {
  int64_t n_ctx = 0;      // 0: min(max_position_embeddings, 4096)
  int64_t n_batch = 512;  // tokens per forward chunk during prefill
  // KV cache dtype: F32 (default: exact, what the parity numbers are measured with), or F16 /
  // BF16 (half the memory and half the attention bytes per token; K and V rounded to
  // nearest-even when written, as HF's cache is in a 16-bit model dtype). Anything else is
  // Error{InvalidArgument}; the attention kernel for it is looked up in the registry like
  // every other (Error{UnsupportedKernel} if this CPU has none).
  DType kv_dtype = DType::F32;
};

// What LoadMode::Auto becomes: Copy when the weights are at most 70% of the available
// memory (or it is unknown: 0), else Mmap. Copy and Mmap are returned as asked.
LoadMode resolve_load_mode(LoadMode requested, uint64_t weight_bytes, uint64_t mem_available_bytes);

class Model {
 public:
  static std::shared_ptr<Model> load(const std::filesystem::path& dir, const ModelOptions& opt = {});
  ~Model();

  const ModelConfig& config() const;
  const Checkpoint& checkpoint() const;
  int threads() const;
  void set_threads(int n);
  // The kernel chosen for every need (for diagnostics and the CLI's verbose output).
  const std::vector<KernelVerdict>& kernel_plan() const;
  double load_seconds() const;

  struct Impl;  // the engine's state (src/model_impl.h)

 private:
  friend const Impl& model_impl(const Model& m);
  Model() = default;
  std::unique_ptr<Impl> impl_;
};

class Context : public Session {
 public:
  Context(std::shared_ptr<const Model> model, const ContextOptions& opt = {});
  ~Context() override;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const Model& model() const { return *model_; }
  const ModelConfig& config() const override { return model_->config(); }
  std::string device_name() const override { return "cpu (" + std::to_string(model_->threads()) + " threads)"; }
  int64_t n_ctx() const override;
  int64_t n_past() const override;
  void reset() override;                 // forget all cached positions
  void truncate(int64_t n_keep) override;  // keep the first n_keep positions

  // Appends `tokens` at positions n_past().. and returns the logits (vocab_size F32)
  // of the last one. Prefill runs in n_batch chunks (matrix-matrix); one token is a
  // decode step (matrix-vector). Error{ContextOverflow} if the cache would overflow,
  // Error{InvalidArgument} for a token id outside the vocabulary; state unchanged.
  std::span<const float> eval(std::span<const int32_t> tokens) override;
  // Same, returning logits for every position ([n, vocab] row-major).
  std::vector<float> eval_all(std::span<const int32_t> tokens) override;

  uint64_t allocated_bytes() const;  // KV cache + scratch actually allocated

  struct State;  // engine internals (src/engine/model.cpp)

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<State> st_;
};

// HF's RoPE inverse frequencies (float32, as transformers computes them) for a config.
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace llrt
