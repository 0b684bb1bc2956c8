#!/usr/bin/env bash
# Builds the libFuzzer target with clang (+ASan/UBSan) and runs it for a bounded time.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60). Exit non-zero on any crash.
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
