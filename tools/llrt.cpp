// llrt: the command-line front end.
//   llrt run MODEL_DIR -p PROMPT | --ids "1 2 3"   generate (streams text)
//   llrt chat MODEL_DIR                           interactive multi-turn chat
//   llrt tokenize MODEL_DIR TEXT                  ids (--pieces, --no-bos, --file F, --stdin)
//   llrt inspect MODEL_DIR [--json] [--ctx N]     diagnostics (also: llrt-inspect)
//   llrt bench MODEL_DIR                          pp/tg throughput like llama-bench
//   llrt caps [--json]                            what this machine can run
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_common.h"
#include "llrt/error.h"

using namespace llrt;

static const char* kUsage = R"(usage: llrt <command> [options]
commands:
  run MODEL_DIR      generate text: -p PROMPT | --ids "1 2 3" | --file F
                     -n N (max new tokens, default 256), --temp T, --top-k K, --top-p P,
                     --min-p P, --repeat-penalty R, --seed S, --stop STR (repeatable),
                     -t THREADS, --ctx N, --batch N, --kv-type f32|f16|bf16 (KV cache;
                     default f32, 16-bit halves its memory), --print-ids, --no-bos,
                     --chat [--system TEXT] (apply the model's chat template),
                     --no-mmap (copy the weights into huge-page memory: the faster decode;
                     the default when they fit in 70% of available memory) | --mmap
                     (zero-copy, instant start), --verbose,
                     --device cpu|cuda (default: cuda when a GPU is present and runs the model)
  chat MODEL_DIR     interactive chat with the model's template (same sampling options)
  tokenize MODEL_DIR TEXT   print token ids (--pieces, --no-bos, --file F, --stdin)
  inspect MODEL_DIR  diagnostics: family, shapes, dtypes, tokenizer, memory, kernels (--json, --ctx N,
                     --kv-type f32|f16|bf16 for the memory estimate, --check-weights: scan
                     every tensor for NaN/Inf)
  bench MODEL_DIR    throughput: -p 512 -n 128 -r 3 -t THREADS, -d DEPTH (tokens already in the
                     context), --kv-type, --json, --mmap|--no-mmap, --device
  caps               CPU features, backends and registered kernels (--json)
  perplexity MODEL_DIR --file F   perplexity of a text (llama-perplexity's measure): --ctx N
                     positions per chunk (default 512; BOS first when the model adds it),
                     --chunks K (first K only), --json, and the run options (-t, --kv-type, ...)
numbers are checked before anything loads: -t 0 (the default) uses the physical cores, at most 4x the
  logical cores; --ctx 1..max_position_embeddings; --batch 1..4096; --temp >= 0; --top-p (0, 1]; --min-p [0, 1]
environment: LLRT_ISA caps the instruction sets used: x86-64 avx2|avx_vnni|avx512|avx512_vnni|avx512_bf16|amx,
               aarch64 neon|neon_dotprod|neon_bf16|neon_i8mm (each level the one before plus
               FEAT_DotProd / FEAT_BF16 / FEAT_I8MM); none (no optimized kernel), ref (scalar oracle)
             LLRT_CUDA_DEVICE=N picks the GPU; LLRT_CUDA_GRAPHS=0 disables the decode graph
)";

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  for (int i = 2; i < argc; ++i)  // `llrt CMD --help`: the usage (every command's options are in it)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  try {
    cli::Args args(argc, argv, 2);
    if (cmd == "run") return cli::cmd_run(args);
    if (cmd == "chat") return cli::cmd_chat(args);
    if (cmd == "tokenize") return cli::cmd_tokenize(args);
    if (cmd == "inspect") return cli::cmd_inspect(args);
    if (cmd == "bench") return cli::cmd_bench(args);
    if (cmd == "caps") return cli::cmd_caps(args);
    if (cmd == "perplexity") return cli::cmd_perplexity(args);
    std::fprintf(stderr, "llrt: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "llrt %s: error [%s]: %s\n", cmd.c_str(), error_code_name(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llrt %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
