#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan/UBSan) and runs each for a bounded time:
#   fuzz_loader  safetensors header + config parsers   SECONDS
#   fuzz_chat    chat-template engine (Jinja)           SECONDS * 3/4 (LLRT_FUZZ_CHAT_SECONDS)
#   fuzz_tokenizer  tokenizer.json / tokenizer.model    SECONDS / 2 (LLRT_FUZZ_TOKENIZER_SECONDS)
# Usage: scripts/fuzz.sh [SECONDS]   (default 60). Exit non-zero on any crash or hang (>10 s/input).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude src/safetensors.cpp src/config.cpp src/dtype.cpp src/tensor.cpp tests/fuzz/fuzz_loader.cpp \
  -o "$out/fuzz_loader"
# Seed corpus: real safetensors headers and configs (selector byte + content).
shared=../shared
[ -d "$shared" ] || shared=tests/data/shared
i=0
for f in "$shared"/models/*/model*.safetensors; do
  [ -f "$f" ] || continue
  n=$(python3 -c "import struct,sys;print(struct.unpack('<Q',open(sys.argv[1],'rb').read(8))[0])" "$f")
  { printf '\x00'; head -c $((8 + n)) "$f"; } > "$out/corpus/st$i"; i=$((i+1))
done
for f in "$shared"/models/*/config.json; do { printf '\x01'; cat "$f"; } > "$out/corpus/cfg$i"; i=$((i+1)); done
for f in "$shared"/models/*/generation_config.json; do { printf '\x02'; cat "$f"; } > "$out/corpus/gen$i"; i=$((i+1)); done
echo "[fuzz] running for ${secs}s on $i seeds"
"$out/fuzz_loader" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$out/corpus" 2>&1 | tail -5
echo "[fuzz] no crash in ${secs}s"

# Chat templates: seeds are the real templates (assets and every model's tokenizer_config).
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/chat/*.cpp tests/fuzz/fuzz_chat.cpp -o "$out/fuzz_chat"
mkdir -p "$out/corpus_chat"
cp "$shared"/assets/chat-templates/*.jinja "$out/corpus_chat/" 2>/dev/null || true
python3 - "$shared" "$out/corpus_chat" <<'PY'
import glob, json, os, sys
shared, dst = sys.argv[1], sys.argv[2]
for i, f in enumerate(sorted(glob.glob(os.path.join(shared, "models", "*", "tokenizer_config.json")))):
    t = json.load(open(f)).get("chat_template")
    if isinstance(t, str):
        open(os.path.join(dst, "tc%d" % i), "w").write(t)
PY
chat_secs=${LLRT_FUZZ_CHAT_SECONDS:-$((secs * 3 / 4))}
echo "[fuzz] chat templates: running for ${chat_secs}s on $(ls "$out/corpus_chat" | wc -l) seeds"
"$out/fuzz_chat" -max_total_time="$chat_secs" -timeout=10 -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
  "$out/corpus_chat" 2>&1 | tail -5
echo "[fuzz] chat templates: no crash or hang in ${chat_secs}s"

# Tokenizers: seeds are stories260K's tokenizer.json and tokenizer.model and a Llama 3
# tokenizer.json cut to its first 800 ids (ByteLevel + the Llama 3 Split regex, small enough
# to mutate quickly). Selector byte: 0 = tokenizer.json, 1 = tokenizer.model.
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/tokenizer/*.cpp tests/fuzz/fuzz_tokenizer.cpp -lpcre2-8 -o "$out/fuzz_tokenizer"
mkdir -p "$out/corpus_tok"
{ printf '\x00'; cat models/stories260K/tokenizer.json; } > "$out/corpus_tok/st_json"
{ printf '\x01'; cat models/stories260K/tokenizer.model; } > "$out/corpus_tok/st_model"
python3 - "$shared/models/llama-3.2-mini/tokenizer.json" "$out/corpus_tok/l3_json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["model"]
keep = {k: v for k, v in m["vocab"].items() if v < 800}
merges = []
for mg in m["merges"]:
    a, b = mg.split(" ") if isinstance(mg, str) else mg
    if a in keep and b in keep and a + b in keep:
        merges.append(mg)
m["vocab"], m["merges"] = keep, merges
j["added_tokens"] = j["added_tokens"][:4]
for i, t in enumerate(j["added_tokens"]):
    t["id"] = 800 + i
open(sys.argv[2], "wb").write(b"\x00" + json.dumps(j, ensure_ascii=False).encode())
PY
tok_secs=${LLRT_FUZZ_TOKENIZER_SECONDS:-$((secs / 2))}
echo "[fuzz] tokenizers: running for ${tok_secs}s on $(ls "$out/corpus_tok" | wc -l) seeds"
"$out/fuzz_tokenizer" -max_total_time="$tok_secs" -timeout=10 -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
  "$out/corpus_tok" 2>&1 | tail -5
echo "[fuzz] tokenizers: no crash or hang in ${tok_secs}s"
