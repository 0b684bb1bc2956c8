// The text of `llrt --help` and of `llrt CMD --help` (tools/cli_common.h).
#include <cstring>
#include <string>

#include "cli_common.h"

namespace llrt::cli {

namespace {
const char* kModel = R"(MODEL: a checkpoint folder (config.json, *.safetensors, tokenizer files), or a Hugging Face
  name such as meta-llama/Llama-3.2-1B-Instruct[@REVISION], found offline in the Hub cache
  ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub); positional or -m/--model.
)";

const char* kLoad = R"(loading and device:
  -t, --threads N        threads (0, the default: the physical cores; at most 4x the logical cores)
  -c, --ctx N            context positions (default min(max_position_embeddings, 4096))
  -b, --batch N          prefill chunk, 1..4096 (default 512)
  --kv-type f32|f16|bf16 KV cache type (default f32; 16-bit halves its memory)
  --no-mmap | --mmap     copy the weights into huge-page memory (the faster decode; the default when
                         they fit in 70% of available memory) | map them (zero-copy, instant start)
  --device auto|cpu|cuda auto (the default): cuda when a GPU is present and runs the model (the CUDA
                         module libllrt-cuda.so loaded at run time; LLRT_CUDA_MODULE=FILE names it)
  --quiet                no progress line while loading;  -v, --verbose: the kernel chosen per op,
                         and why auto chose the CPU
)";

const char* kSampling = R"(sampling (defaults from generation_config.json; every value checked before the model loads):
  -n, --n-predict N      new tokens (default 256; chat 1024); -1: until EOS or the context is full
  --temp T               temperature >= 0 (0: greedy)
  --top-k K              >= 0 (0: all)       --top-p P   (0, 1]       --min-p P   [0, 1]
  --repeat-penalty R     > 0 (1: none)       --seed S    >= 0         --stop STR  (repeatable)
)";

const char* kTemplate = R"(chat template:
  --chat-template FILE   a Jinja template file instead of the model's
  --chat-template-kwargs JSON   extra template variables, e.g. '{"date_string": "26 Jul 2024"}'
)";

std::string run_help() {
  return std::string(R"(usage: llrt run MODEL [options]    generate text, streamed to stdout; stats on stderr
prompt (exactly one):
  -p, --prompt TEXT      the prompt
  -f, --file FILE        the prompt from a file
  --ids "1 2 3"          token ids (no tokenizer needed with --print-ids)
  --messages FILE.json   an OpenAI messages array ([{"role": "system"|"user"|"assistant", "content": ...}]),
                         rendered with the chat template (assistant turns included)
  --chat                 apply the chat template to -p/-f (one user turn);  --system TEXT (with --chat)
  --no-bos               do not add BOS (plain prompts)
output:
  --print-ids            the generated ids instead of text
  --print-prompt         the rendered prompt and its token ids, on stderr, before generating
  --json                 one JSON object: text, ids, prompt_ids, stop_reason, timings
)") + kTemplate + kSampling + kLoad + kModel;
}
}  // namespace

#ifdef __aarch64__
#define LLRT_ISA_HELP "environment: LLRT_ISA=none|ref|neon|neon_dotprod|neon_bf16|neon_i8mm caps the instruction sets used\n" \
  "               (each level the one before plus FEAT_DotProd / FEAT_BF16 / FEAT_I8MM; none: no optimized kernel;\n" \
  "               ref: the scalar reference kernels, for debugging)\n"
#else
#define LLRT_ISA_HELP "environment: LLRT_ISA=none|ref|avx2|avx_vnni|avx512|avx512_vnni|avx512_bf16|amx caps the instruction sets used\n" \
  "               (none: what a CPU without AVX2 gets; ref: the scalar reference kernels, for debugging)\n"
#endif

const char* usage() {
  return R"(usage: llrt <command> [options]        (llrt <command> --help: that command's options)
commands:
  run MODEL          generate text (-p PROMPT | -f FILE | --ids "1 2 3" | --messages FILE.json)
  chat MODEL         interactive chat with the model's template (line editing, /help)
  tokenize MODEL TEXT   token ids (--pieces, --no-bos, --file F, --stdin)
  inspect MODEL      family, shapes, dtypes, tokenizer, memory, kernels, verdict (= llrt-inspect)
  bench MODEL        throughput like llama-bench (-p 128,512 -n 128 -t 1,2 -o md|json|jsonl|csv)
  batched-bench MODEL   many sequences per step like llama-batched-bench (-npp 128 -ntg 128 -npl 1,2,4)
  perplexity MODEL -f FILE   llama-perplexity's measure
  list [DIR ...]     checkpoints found (default ~/models and the Hugging Face cache)
  serve MODEL        OpenAI-compatible HTTP server (llrt serve --help)
  caps               CPU features, backends and registered kernels (--json, --retune)
  --version          the version
MODEL: a checkpoint folder or a Hugging Face name (org/name) in the local Hub cache; also -m/--model.
)" LLRT_ISA_HELP R"(             LLRT_CUDA_DEVICE=N picks the GPU; LLRT_CUDA_GRAPHS=0 disables the decode graph
             HF_HUB_CACHE / HF_HOME: where Hugging Face names are looked up
)";
}

std::string command_help(const std::string& cmd) {
  if (cmd == "run") return run_help();
  if (cmd == "chat")
    return std::string(R"(usage: llrt chat MODEL [options]   interactive multi-turn chat, streamed
  --system TEXT          the system prompt
  in the chat: Enter sends; a line ending in \ continues on the next line; Up/Down: history
  /reset  clear the conversation   /system TEXT  set the system prompt (and reset)
  /save FILE  write the conversation (OpenAI messages JSON)   /load FILE  read one (as run --messages)
  /exit, Ctrl-D: quit; Ctrl-C stops a reply (at an empty prompt: quits)
  When the conversation outgrows the context, the oldest turns are dropped (the system prompt
  stays) and that is said; room for the reply (-n, at most half the context) is kept free.
)") + kTemplate + kSampling + kLoad + kModel;
  if (cmd == "tokenize")
    return std::string(R"(usage: llrt tokenize MODEL TEXT | --file F | --stdin
  --pieces               one id per line with its piece
  --no-bos               no special tokens
)") + kModel;
  if (cmd == "inspect")
    return std::string(R"(usage: llrt inspect MODEL [options]   (also: llrt-inspect)   exit status 1: cannot run here
  --json                 machine-readable
  -c, --ctx N            context for the memory estimate;  --kv-type f32|f16|bf16;  -t N threads
  --parallel N           the batched engine's KV pool (llrt serve on the CPU) for N sequences of
                         --ctx positions (default 1), exactly: blocks x positions, bytes;  --block-size N (32)
  --check-weights        scan every tensor for NaN/Inf
)") + kModel;
  if (cmd == "bench")
    return std::string(R"(usage: llrt bench MODEL [options]   llama-bench's pp/tg: tokens/s, mean +/- sd over -r runs
  -p, --n-prompt LIST    prompt tokens per pp test, e.g. 128,512 (default 512; 0 skips)
  -n, --n-gen LIST       generated tokens per tg test (default 128; 0 skips)
  -t, --threads LIST     thread counts, e.g. 1,2 (default 0: the physical cores)
  -d, --n-depth N        tokens already in the context;  -r, --repetitions N (default 3)
  -o, --output md|json|jsonl|csv   (default md; --json = -o json)
  --bandwidth            also measure the memory read bandwidth (~3.5 s) and tg's % of its limit
  -c/--ctx, -b/--batch, --kv-type, --mmap/--no-mmap, --device as for run
A warning is printed when a test's runs spread by more than 10% of their mean.
)") + kModel;
  if (cmd == "batched-bench")
    return std::string(R"(usage: llrt batched-bench MODEL [options]   llama-batched-bench on the batched engine (CPU)
  For each PP x TG x B: B sequences of PP pseudo-random prompt tokens prefilled together (calls of
  at most -b rows), then TG decode steps of one token per sequence, each step ONE forward pass of
  B rows. Columns as llama-batched-bench: PP, TG, B, N_KV = B*(PP+TG), T_PP s, S_PP t/s = B*PP/T_PP,
  T_TG s, S_TG t/s = B*TG/T_TG, T s, S t/s. The pool is sized for the largest B and PP+TG.
  -npp LIST              prompt tokens per sequence, e.g. 128,512 (default 128,256,512)
  -ntg LIST              generated tokens per sequence (default 128,256)
  -npl LIST              sequences decoded together (default 1,2,4,8,16,32)
  -pps                   one prompt shared by the B sequences (prefilled once, the others take
                         its KV blocks through the prefix cache; S_PP = PP/T_PP)
  -b, --batch N          rows per forward pass (default 2048, as llama-batched-bench)
  --block-size N         positions per KV block (default 32)
  -c, --ctx N            positions per sequence (default max PP + max TG; larger tests are skipped)
  -o, --output md|json|jsonl   (default md; jsonl: llama-batched-bench's keys, a row per line)
  -t N, --kv-type f32|f16|bf16, --mmap/--no-mmap as for run
)") + kModel;
  if (cmd == "perplexity")
    return std::string(R"(usage: llrt perplexity MODEL -f FILE [options]
  llama-perplexity's measure: the text (BOS first) is cut into chunks of --ctx tokens (default 512;
  a partial last chunk is dropped; at least 2 chunks), each evaluated from a fresh context with BOS
  in place of its first token, and the second half of each chunk is scored. Prints "[1]x,[2]y,..."
  (the running value) and "Final estimate: PPL = X +/- Y".
  --chunks K             the first K chunks only
  --all-positions        instead: chunks of BOS + ctx-1 tokens, every position scored, the last
                         chunk kept (llrt's earlier measure)
  --json                 machine-readable
)") + kLoad + kModel;
  if (cmd == "list")
    return R"(usage: llrt list [DIR ...] [--json]
  Every checkpoint folder found (a folder with config.json, searched 3 levels deep) in the DIRs,
  by default ~/models and the Hugging Face cache, with its family, dtype, size on disk and inspect's
  verdict on this machine.
)";
  if (cmd == "serve")
    return std::string(R"(usage: llrt serve MODEL [options]
  OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models, /health,
  /metrics, /tokenize, /detokenize); loopback by default, prints the URL when ready.
  --host H               address to listen on (default 127.0.0.1)
  --port P               port (default 8080; 0: any free port)
  --parallel N           sequences at once (default 1). On the CPU every running sequence goes
                         through one forward pass per step (the batched engine: a KV pool of
                         N x --ctx positions in blocks, prompts in chunks of at most --batch rows
                         beside the decodes, prompt prefixes reused across requests); on CUDA
                         N sessions take turns
  --max-queue N          waiting sequences before 503 (default 64)
  --max-running N        CPU: sequences running at once (default: --parallel). More than --parallel
                         overcommits the KV pool (sized for --parallel x --ctx): a sequence joins when
                         the free blocks cover its prompt; when the pool is full the youngest running
                         sequence is preempted and recomputed later (its client only waits)
  --timeout S            connection read/write timeout in seconds (default 600)
  --api-key KEY | --api-key-file F   require "Authorization: Bearer KEY"
  --alias NAME           the model id (default: the directory name)
  --reasoning-format none|deepseek   DeepSeek-R1's <think> part as reasoning_content
  --ctx N                positions per sequence; and --kv-type, -t, --batch, --device, --mmap|--no-mmap
)") + kLoad + kModel;
  if (cmd == "caps")
    return R"(usage: llrt caps [--json] [--retune]
  CPU features, backends, every registered kernel and the measured kernel choice
  (--retune: measure again).
)";
  return usage();
}

}  // namespace llrt::cli
