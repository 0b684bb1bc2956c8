#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan/UBSan) and runs each for a bounded time:
#   fuzz_loader  safetensors header + config parsers   SECONDS
#   fuzz_chat    chat-template engine (Jinja)           SECONDS * 3/4 (LLRT_FUZZ_CHAT_SECONDS)
#   fuzz_tokenizer  tokenizer.json / tokenizer.model    SECONDS / 2 (LLRT_FUZZ_TOKENIZER_SECONDS)
#   fuzz_quant   quantization_config + re: patterns     SECONDS / 2 (LLRT_FUZZ_QUANT_SECONDS)
#   fuzz_index   model.safetensors.index.json           SECONDS / 2 (LLRT_FUZZ_INDEX_SECONDS)
# Seeds include hostile shapes (issue 12): JSON nested past the depth limit, ids past 2^31.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60). Exit non-zero on any crash or hang (>10 s/input).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build-fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/io/bounded_io.cpp src/io/safetensors.cpp src/io/config.cpp src/io/dtype.cpp src/io/tensor.cpp tests/fuzz/fuzz_loader.cpp \
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
# Hostile seeds: deep nesting (past the 128-level limit) and numbers past int32/int64.
python3 - "$shared" "$out/corpus" <<'PY'
import glob, json, os, sys
shared, dst = sys.argv[1], sys.argv[2]
cfg = open(sorted(glob.glob(os.path.join(shared, "models", "*", "config.json")))[0]).read()
deep = "[" * 200 + "]" * 200
seeds = {
    "h_cfg_deep_quant": "\x01" + cfg.rstrip().rstrip("}") + ', "quantization_config": {"a": ' + deep + "}}",
    "h_cfg_eos_2p32": "\x01" + cfg.rstrip().rstrip("}") + ', "eos_token_id": 4294967298}',
    "h_cfg_eos_u64": "\x01" + cfg.rstrip().rstrip("}") + ', "eos_token_id": [1, 18446744073709551615]}',
    "h_gen_deep": "\x02" + '{"eos_token_id": 2, "x": ' + "{\"k\":" * 150 + "1" + "}" * 150 + "}",
    "h_gen_nums": "\x02" + '{"eos_token_id": -0, "temperature": 1e400, "top_k": 9223372036854775808}',
    "h_st_deep_meta": "\x00" + (lambda h: len(h).to_bytes(8, "little").decode("latin-1") + h)('{"__metadata__": ' + deep + "}"),
}
for name, text in seeds.items():
    open(os.path.join(dst, name), "wb").write(text.encode("latin-1"))
PY
echo "[fuzz] running for ${secs}s on $(ls "$out/corpus" | wc -l) seeds"
"$out/fuzz_loader" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$out/corpus" 2>&1 | tail -5
echo "[fuzz] no crash in ${secs}s"

# Chat templates: seeds are the real templates (assets and every model's tokenizer_config).
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/io/bounded_io.cpp src/text/chat/*.cpp tests/fuzz/fuzz_chat.cpp -o "$out/fuzz_chat"
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
  -Iinclude -I. src/io/bounded_io.cpp src/text/tokenizer/*.cpp tests/fuzz/fuzz_tokenizer.cpp -lpcre2-8 -o "$out/fuzz_tokenizer"
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
python3 - "$out/corpus_tok" <<'PY'
import json, os, sys
dst = sys.argv[1]
vocab = {chr(c): c - 0x21 for c in range(0x21, 0x7F)}
base = {"model": {"type": "BPE", "vocab": vocab, "merges": []},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}}
def put(name, j, raw=None):
    text = json.dumps(j)
    if raw: text = text.replace('"@@"', raw)
    open(os.path.join(dst, name), "wb").write(b"\x00" + text.encode())
for key, lst in (("normalizer", "normalizers"), ("pre_tokenizer", "pretokenizers"), ("decoder", "decoders"), ("post_processor", "processors")):
    j = dict(base); j[key] = "@@"
    put("h_deep_" + key, j, ('{"type":"Sequence","%s":[' % lst) * 80 + ('{"type":"Sequence","%s":[]}' % lst) + "]}" * 80)
j = dict(base); j["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}],
                                       "special_tokens": {"<s>": {"id": "<s>", "ids": [4294967296 + 5]}}}
put("h_post_id_2p32", j)
j = dict(base); j["added_tokens"] = [{"id": 1 << 40, "content": "<big>"}, {"id": 94, "content": "<x>", "special": True}]
put("h_added_id_2p40", j)
PY
tok_secs=${LLRT_FUZZ_TOKENIZER_SECONDS:-$((secs / 2))}
echo "[fuzz] tokenizers: running for ${tok_secs}s on $(ls "$out/corpus_tok" | wc -l) seeds"
"$out/fuzz_tokenizer" -max_total_time="$tok_secs" -timeout=10 -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
  "$out/corpus_tok" 2>&1 | tail -5
echo "[fuzz] tokenizers: no crash or hang in ${tok_secs}s"

# quantization_config: the real w8a8 config, its re: variants, and hostile patterns.
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/io/bounded_io.cpp src/quant/quant.cpp src/io/dtype.cpp src/io/tensor.cpp tests/fuzz/fuzz_quant.cpp \
  -o "$out/fuzz_quant"
mkdir -p "$out/corpus_quant"
python3 - "$shared" "$out/corpus_quant" <<'PY'
import glob, json, os, sys
shared, dst = sys.argv[1], sys.argv[2]
qcs = [json.load(open(f))["quantization_config"] for f in sorted(glob.glob(os.path.join(shared, "models", "*", "config.json")))
       if "quantization_config" in json.load(open(f))]
for i, qc in enumerate(qcs):
    open(os.path.join(dst, "real%d" % i), "w").write(json.dumps(qc))
    for j, pat in enumerate(["re:.*down_proj", "re:model\\.layers\\.\\d+\\.mlp\\.(gate|up)_proj", "re:(?P<n>\\d+)\\Z",
                             "re:" + "(" * 40 + "a" + ")" * 40, "re:((a{100}){100}){100}", "re:[\\]A]+x|y*"]):
        for k, where in enumerate(["targets", "ignore"]):
            q = json.loads(json.dumps(qc))
            if where == "targets": q["config_groups"]["group_0"]["targets"] = [pat]
            else: q["ignore"] = ["lm_head", pat]
            open(os.path.join(dst, "re%d_%d_%d" % (i, j, k)), "w").write(json.dumps(q))
open(os.path.join(dst, "deep"), "w").write('{"config_groups": ' + "[" * 200 + "]" * 200 + "}")
PY
quant_secs=${LLRT_FUZZ_QUANT_SECONDS:-$((secs / 2))}
echo "[fuzz] quantization_config: running for ${quant_secs}s on $(ls "$out/corpus_quant" | wc -l) seeds"
"$out/fuzz_quant" -max_total_time="$quant_secs" -timeout=10 -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
  "$out/corpus_quant" 2>&1 | tail -5
echo "[fuzz] quantization_config: no crash or hang in ${quant_secs}s"

# model.safetensors.index.json: every model's index, plus a NUL shard name and deep nesting.
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude -I. src/io/bounded_io.cpp src/io/checkpoint.cpp src/io/safetensors.cpp src/io/config.cpp src/io/dtype.cpp src/io/tensor.cpp \
  tests/fuzz/fuzz_index.cpp -o "$out/fuzz_index"
mkdir -p "$out/corpus_index"
i=0
for f in "$shared"/models/*/model.safetensors.index.json; do [ -f "$f" ] && cp "$f" "$out/corpus_index/ix$i" && i=$((i+1)); done
printf '{"weight_map": {"a": "model-1.safetensors\\u0000.evil", "b": "../x"}}' > "$out/corpus_index/h_nul"
{ printf '{"metadata": '; printf '[%.0s' $(seq 200); printf ']%.0s' $(seq 200); printf ', "weight_map": {"a": "m.safetensors"}}'; } \
  > "$out/corpus_index/h_deep"
index_secs=${LLRT_FUZZ_INDEX_SECONDS:-$((secs / 2))}
echo "[fuzz] shard index: running for ${index_secs}s on $(ls "$out/corpus_index" | wc -l) seeds"
"$out/fuzz_index" -max_total_time="$index_secs" -timeout=10 -max_len=16384 -rss_limit_mb=2048 -print_final_stats=1 \
  "$out/corpus_index" 2>&1 | tail -5
echo "[fuzz] shard index: no crash or hang in ${index_secs}s"
