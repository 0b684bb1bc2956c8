#!/usr/bin/env bash
# Issue 11's side-by-side set in one script: llrt against llama.cpp on the same synthesized
# models, on the ISA paths this CPU has and the ones it can emulate:
#   avx512_bf16 (no AMX)  LLRT_ISA=avx512_bf16  vs a llama.cpp build with AVX-512/BF16/VNNI, no AMX
#   avx2                  LLRT_ISA=avx2         vs a llama.cpp build with AVX2 only
#   native                (everything; AMX)     vs llama.cpp -march=native
# plus the 1-thread decode rows (GB/s per core) and decode with a busy loop pinned to core 1.
# Every row comes from bench/side_by_side.py (probe, llama-bench, llrt bench in one run).
#
#   bash bench/portability.sh [OUT_DIR]      (defaults below; see bench/README.md for the inputs)
#
# Inputs (outside the repo, see bench/README.md): SYNTH=/work/synth (tools/synth_model.py output
# and gguf/), LLAMA=/work/thirdparty (llama.cpp-avx512noamx, llama.cpp-avx2, llama.cpp-build).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/out/portability-$(date -u +%Y%m%dT%H%M)}
SYNTH=${SYNTH:-/work/synth}
LLAMA=${LLAMA:-/work/thirdparty}
R=${R:-2}
N=${N:-128}
mkdir -p "$OUT"
lscpu > "$OUT/lscpu.txt"
grep -m1 "model name" /proc/cpuinfo | tee "$OUT/cpu.txt"
# The kernel choice is measured once per machine and cached: measure it now, on this (quiet)
# machine, and keep what it chose with the results.
build/tools/llrt caps --retune > "$OUT/caps.txt" 2>&1
sed -n '/^Kernel choice/,/^CUDA/p' "$OUT/caps.txt"

run() {  # name isa llama_build model [extra side_by_side args...]
  local name=$1 isa=$2 build=$3 model=$4
  shift 4
  echo "=== $name (LLRT_ISA=${isa:-unset}, llama.cpp $build, $model) $*"
  if [ -n "$isa" ]; then export LLRT_ISA=$isa; else unset LLRT_ISA; fi
  python3 bench/side_by_side.py "$SYNTH/$model" --llama-bench "$LLAMA/$build/bin/llama-bench" \
    --llama-load mmap --llrt-variant '' -r "$R" -n "$N" --probe-reps 5 --json-out "$OUT/$name.json" "$@" \
    > "$OUT/$name.md" 2>&1
  tail -n 12 "$OUT/$name.md"
}

# Most important first (a run can be cut short and still say the most).
run "avx512bf16-llama-3.2-1b-bf16" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-bf16
run "avx2-llama-3.2-1b-bf16" avx2 llama.cpp-avx2 llama-3.2-1b-bf16
run "avx512bf16-tinyllama-1.1b-f16" avx512_bf16 llama.cpp-avx512noamx tinyllama-1.1b-f16
run "avx512bf16-llama-3.2-1b-w8a8" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-w8a8
run "native-llama-3.2-1b-bf16" "" llama.cpp-build llama-3.2-1b-bf16
run "busy-avx512bf16-llama-3.2-1b-bf16" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-bf16 -p 128 -n 64 --busy-core 1
run "avx2-tinyllama-1.1b-f16" avx2 llama.cpp-avx2 tinyllama-1.1b-f16
run "avx2-llama-3.2-1b-w8a8" avx2 llama.cpp-avx2 llama-3.2-1b-w8a8
run "avx512bf16-llama-3.2-1b-bf16-t1" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-bf16 -t 1 -p 128 -n 64
run "avx2-llama-3.2-1b-bf16-t1" avx2 llama.cpp-avx2 llama-3.2-1b-bf16 -t 1 -p 128 -n 64
run "avx512bf16-tinyllama-1.1b-f16-t1" avx512_bf16 llama.cpp-avx512noamx tinyllama-1.1b-f16 -t 1 -p 128 -n 64
run "avx512bf16-llama-3.2-1b-w8a8-t1" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-w8a8 -t 1 -p 128 -n 64
run "avx2-tinyllama-1.1b-f16-t1" avx2 llama.cpp-avx2 tinyllama-1.1b-f16 -t 1 -p 128 -n 64
run "avx2-llama-3.2-1b-w8a8-t1" avx2 llama.cpp-avx2 llama-3.2-1b-w8a8 -t 1 -p 128 -n 64
run "avx512bf16-llama-3.2-1b-f32-t1" avx512_bf16 llama.cpp-avx512noamx llama-3.2-1b-f32 -t 1 -p 128 -n 64
run "avx2-llama-3.2-1b-f32-t1" avx2 llama.cpp-avx2 llama-3.2-1b-f32 -t 1 -p 128 -n 64
echo "results in $OUT"
