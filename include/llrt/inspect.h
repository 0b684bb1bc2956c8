// llrt: model diagnostics (`llrt inspect` / `llrt-inspect`). Reads headers, JSON and the
// tokenizer (which must load for the model to run on text); reads weight bytes only when
// asked to check them (check_weights).
#pragma once
#include <filesystem>
#include <string>

#include "llrt/dtype.h"

namespace llrt {

struct InspectOptions {
  int64_t ctx = 0;    // 0: min(max_position_embeddings, 4096)
  int64_t batch = 512;
  int threads = 0;    // 0: physical cores
  DType kv_dtype = DType::F32;  // the KV cache the memory estimate assumes (F32, F16, BF16)
  bool check_weights = false;   // scan every tensor for NaN/Inf (reads all weight bytes)
  int parallel = 1;             // the batched engine's KV pool (llrt/batch.h) for this many sequences of ctx
  int64_t block_size = 32;      //   positions, in blocks of block_size: reported exactly (kv_pool_size)
};

struct InspectReport {
  bool runnable = false;  // the model runs here as configured
  std::string json;       // the whole report (the schema `llrt inspect --json` prints)
  std::string text;       // the same, for people
};
// Never throws for a bad model: the error goes into the report's "error" ({code, message}) and
// runnable is false. What makes it false, first found first: the checkpoint (tensors, config),
// a context over max_position_embeddings, a tokenizer that does not load, NaN/Inf weights
// (check_weights), a missing kernel, memory.
InspectReport inspect(const std::filesystem::path& dir, const InspectOptions& opt = {});

// This machine: CPU, flags, memory, backends, every registered kernel and the kernel choice.
struct CapabilityReport {
  std::string json, text;
};
CapabilityReport capabilities();

}  // namespace llrt
