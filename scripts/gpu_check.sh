#!/usr/bin/env bash
# One-shot check of the CUDA backend on a machine with an NVIDIA GPU (< 8 minutes):
#   1. binaries: prebuilt ones in $LLRT_GPU_BIN (llrt, libllrt-cuda.so, test_cuda, test_q8,
#      test_kernels, optional lib/ with libgomp), else built here (meson -Dcuda=enabled, needs the
#      project's build dependencies)
#   2. test_cuda: the CUDA op checker + parity with HF on the shared models ($LLRT_SHARED,
#      default ../shared), graph vs plain launches, memory estimate, errors
#      and, when $LLRT_GPU_BIN/ptx80/test_cuda exists (scripts/gpu_pack.sh), the same
#      suite built from compute_80 PTX only: the sm_80 code path, JIT-compiled for this card
#   3. test_q8 / test_kernels: the CPU suites that walk the registry must still pass on a
#      host where Backend::Cuda is usable
#   4. Llama-3.1-8B-shaped BF16 and w8a8 checkpoints synthesized (tools/synth_model.py),
#      `llrt bench --device cuda -p 512 -n 128` on both, HF transformers (sdpa) on the BF16
#      one (bench/hf_cuda_bench.py), and a table against the issue's targets.
# Logs and results go to $OUT (default /tmp/llrt-gpu-out): test_cuda.log, cpu_suites.log,
# bench.log, results.json, summary.md. Exit status: non-zero when a test failed.
#
# Usage: bash scripts/gpu_check.sh            (from the repository root)
#        LLRT_GPU_BIN=.gpu/bin LLRT_SHARED=.gpu/shared bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/llrt-gpu-out}
mkdir -p "$OUT"
log() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*"; }
fail=0

log "device: $(nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader 2>&1 | head -1)"
log "cpu: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"

# ---------------------------------------------------------------- binaries
BIN=${LLRT_GPU_BIN:-}
if [ -z "$BIN" ]; then
  log "building (meson -Dcuda=enabled)"
  export PATH=/usr/local/cuda/bin:$PATH
  if [ ! -f build-gpu/build.ninja ]; then meson setup build-gpu -Dcuda=enabled -Dbench=false >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" | tail -20; exit 2; }; fi
  ninja -C build-gpu tools/llrt tests/test_cuda tests/test_q8 tests/test_kernels kernels/cuda/libllrt-cuda.so >>"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 2; }
  mkdir -p build-gpu/bin
  cp build-gpu/tools/llrt build-gpu/tests/test_cuda build-gpu/tests/test_q8 build-gpu/tests/test_kernels \
    build-gpu/kernels/cuda/libllrt-cuda.so build-gpu/bin/
  BIN=build-gpu/bin
fi
BIN=$(cd "$BIN" && pwd)
[ -d "$BIN/lib" ] && export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$BIN/lib
# llrt itself needs no CUDA library; its CUDA module (beside it) and test_cuda do.
missing() { ldd "$BIN/llrt" "$BIN/libllrt-cuda.so" "$BIN/test_cuda" 2>/dev/null | grep "not found" | awk '{print $1}' | sort -u; }
if [ -n "$(missing)" ]; then
  log "libraries not found: $(missing | tr '\n' ' ')- searching"
  for lib in $(missing); do
    p=$(find /usr/local /usr/lib /opt -name "$lib*" 2>/dev/null | head -1)
    [ -n "$p" ] && export LD_LIBRARY_PATH=$(dirname "$p"):${LD_LIBRARY_PATH:-}
  done
  [ -n "$(missing)" ] && { log "still missing libraries: $(missing | tr '\n' ' ')"; exit 2; }
fi
export LLRT_SHARED=${LLRT_SHARED:-$(cd .. && pwd)/shared}
LLRT_SHARED=$(cd "$LLRT_SHARED" && pwd)
"$BIN/llrt" caps | sed -n '/CUDA/,$p' | grep -v "^  " | head -5

# ---------------------------------------------------------------- synthesize (background)
SYN=/tmp/llrt-synth
avail_shm=$(df -k --output=avail /dev/shm 2>/dev/null | tail -1)
[ "${avail_shm:-0}" -gt $((30 * 1024 * 1024)) ] && SYN=/dev/shm/llrt-synth
mkdir -p "$SYN"
( python3 tools/synth_model.py --shape llama-3.1-8b --dtype bf16 --out "$SYN/8b-bf16" --shared "$LLRT_SHARED" --force &&
  python3 tools/synth_model.py --shape llama-3.1-8b --dtype w8a8 --out "$SYN/8b-w8a8" --shared "$LLRT_SHARED" --force ) >"$OUT/bench.log" 2>&1 &
SYNPID=$!
log "synthesizing Llama-3.1-8B bf16 + w8a8 into $SYN (pid $SYNPID)"

# ---------------------------------------------------------------- tests
log "test_cuda (shared data: $LLRT_SHARED)"
timeout 300 "$BIN/test_cuda" >"$OUT/test_cuda.log" 2>&1
rc=$?
grep -E "MESSAGE|ERROR|test cases|assertions|worst" "$OUT/test_cuda.log" | sed 's/^.*MESSAGE: //' | tail -60
[ $rc -ne 0 ] && { log "test_cuda FAILED (rc=$rc)"; fail=1; }
if [ -x "$BIN/ptx80/test_cuda" ]; then
  log "test_cuda built for compute_80 only (PTX, JIT-compiled here): the sm_80 code path on this card"
  timeout 400 "$BIN/ptx80/test_cuda" -tce="cuda perf*" >"$OUT/test_cuda_ptx80.log" 2>&1
  rc=$?
  grep -E "ERROR|test cases|assertions" "$OUT/test_cuda_ptx80.log" | tail -8
  [ $rc -ne 0 ] && { log "test_cuda (compute_80 PTX) FAILED (rc=$rc)"; fail=1; }
fi
log "test_q8 + test_kernels (CPU suites on a host with a usable GPU; a binary not carried is skipped, said)"
rc=0
: >"$OUT/cpu_suites.log"
for t in test_q8 test_kernels; do
  if [ -x "$BIN/$t" ]; then timeout 200 "$BIN/$t" >>"$OUT/cpu_suites.log" 2>&1 || rc=$?
  else log "$t: not in $BIN, skipped"; fi
done
grep -E "test cases|Status" "$OUT/cpu_suites.log"
[ $rc -ne 0 ] && { log "CPU suites FAILED (rc=$rc)"; grep -E "ERROR" "$OUT/cpu_suites.log" | head -5; fail=1; }

log "waiting for the synthesized checkpoints"
wait $SYNPID || { log "synthesis failed"; tail -5 "$OUT/bench.log"; exit 1; }
tail -2 "$OUT/bench.log"

# ---------------------------------------------------------------- benchmarks
run_bench() {  # $1 name, $2 model dir, extra args
  local name=$1 dir=$2; shift 2
  log "llrt bench $name"
  timeout 150 "$BIN/llrt" bench "$dir" --device cuda -p 512 -n 128 -r 3 --json --bandwidth "$@" >"$OUT/$name.json" 2>>"$OUT/bench.log" ||
    { log "llrt bench $name failed"; tail -5 "$OUT/bench.log"; fail=1; }
}
run_bench llrt_bf16 "$SYN/8b-bf16"
# decode variants (what each piece of the decode path is worth)
for v in "nograph:LLRT_CUDA_GRAPHS=0" "nofuse:LLRT_CUDA_FUSED=0" "pdl:LLRT_CUDA_PDL=1" "asyncnorm:LLRT_CUDA_ASYNC_NORM=1"; do
  env ${v#*:} timeout 60 "$BIN/llrt" bench "$SYN/8b-bf16" --device cuda -p 0 -n 128 -r 2 --json --no-bandwidth \
    >"$OUT/llrt_bf16_${v%%:*}.json" 2>>"$OUT/bench.log"
done
run_bench llrt_w8a8 "$SYN/8b-w8a8"
for v in "q8silu:LLRT_CUDA_Q8_SILU=1" "asyncnorm:LLRT_CUDA_ASYNC_NORM=1" \
         "both:LLRT_CUDA_Q8_SILU=1 LLRT_CUDA_ASYNC_NORM=1" "pdl:LLRT_CUDA_PDL=1"; do
  env ${v#*:} timeout 60 "$BIN/llrt" bench "$SYN/8b-w8a8" --device cuda -p 0 -n 128 -r 2 --json --no-bandwidth \
    >"$OUT/llrt_w8a8_${v%%:*}.json" 2>>"$OUT/bench.log"
done
log "HF transformers (sdpa) on the BF16 checkpoint"
timeout 200 python3 bench/hf_cuda_bench.py "$SYN/8b-bf16" -p 512 -n 128 -r 3 >"$OUT/hf_bf16.json" 2>>"$OUT/bench.log" ||
  { log "HF bench failed"; tail -5 "$OUT/bench.log"; }

# ---------------------------------------------------------------- table
python3 - "$OUT" "$SYN/8b-bf16" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, bf16_dir = sys.argv[1], sys.argv[2]
def load(n):
    try:
        text = open(os.path.join(out, n)).read()
    except OSError as e:
        return {"error": str(e)}
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.strip().splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return {"error": "no JSON in " + n}
def g(d, *ks):
    for k in ks:
        if not isinstance(d, dict) or k not in d:
            return 0
        d = d[k]
    return d if isinstance(d, (int, float)) else 0
names = ["llrt_bf16", "llrt_bf16_nograph", "llrt_bf16_nofuse", "llrt_bf16_pdl", "llrt_bf16_asyncnorm", "llrt_w8a8",
         "llrt_w8a8_q8silu", "llrt_w8a8_asyncnorm", "llrt_w8a8_both", "llrt_w8a8_pdl", "hf_bf16"]
r = {k: load(k + ".json") for k in names}
json.dump(r, open(os.path.join(out, "results.json"), "w"), indent=1)
for k in [n + ".json" for n in names]:
    try: os.remove(os.path.join(out, k))
    except OSError: pass
b, w, h, ng = r["llrt_bf16"], r["llrt_w8a8"], r["hf_bf16"], r["llrt_bf16_nograph"]
dev = b.get("device", "?")
bw = g(b, "bandwidth_gbs")
print(f"## llrt CUDA vs HF transformers, Llama-3.1-8B shape (synthesized), {dev}\n")
print("| engine | dtype | pp512 t/s | tg128 t/s | load s | load->first token s |")
print("|---|---|---|---|---|---|")
print(f"| llrt cuda | BF16 | {g(b,'pp','mean_tps'):.0f} | {g(b,'tg','mean_tps'):.1f} | {g(b,'load_seconds'):.2f} | {g(b,'load_to_first_token_seconds'):.2f} |")
print(f"| llrt cuda, no graph | BF16 | - | {g(ng,'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, unfused decode | BF16 | - | {g(r['llrt_bf16_nofuse'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, with PDL | BF16 | - | {g(r['llrt_bf16_pdl'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, cp.async norm prologue (LLRT_CUDA_ASYNC_NORM=1) | BF16 | - | {g(r['llrt_bf16_asyncnorm'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda | w8a8 | {g(w,'pp','mean_tps'):.0f} | {g(w,'tg','mean_tps'):.1f} | {g(w,'load_seconds'):.2f} | {g(w,'load_to_first_token_seconds'):.2f} |")
print(f"| llrt cuda, silu*up quantized in one launch (LLRT_CUDA_Q8_SILU=1) | w8a8 | - | {g(r['llrt_w8a8_q8silu'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, cp.async norm prologue (LLRT_CUDA_ASYNC_NORM=1) | w8a8 | - | {g(r['llrt_w8a8_asyncnorm'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, both (Q8_SILU + ASYNC_NORM) | w8a8 | - | {g(r['llrt_w8a8_both'],'tg','mean_tps'):.1f} | | |")
print(f"| llrt cuda, with PDL | w8a8 | - | {g(r['llrt_w8a8_pdl'],'tg','mean_tps'):.1f} | | |")
print(f"| HF transformers {h.get('transformers','?')} sdpa | BF16 | {g(h,'pp','median_tps'):.0f} | {g(h,'tg','median_tps'):.1f} | {g(h,'load_seconds'):.1f} | |")
wb = g(b, "weight_bytes") or 1
tg = g(b, "tg", "mean_tps")
lim_issue = 0.85 * bw * 1e9 / wb if bw else 0
print(f"\ndevice copy bandwidth (read+write) {bw:.0f} GB/s; weights {wb/1e9:.2f} GB, streamed/token {g(b,'streamed_bytes_per_token')/1e9:.2f} GB")
print(f"upload (host->device) {g(b,'upload_seconds'):.2f} s for {wb/1e9:.2f} GB = {wb/1e9/max(g(b,'upload_seconds'),1e-9):.1f} GB/s\n")
checks = [
    ("BF16 decode >= 85% of copy bw / weight bytes", tg, lim_issue),
    ("BF16 decode >= 10x HF generate", tg, 10 * g(h, "tg", "median_tps")),
    ("BF16 pp512 >= HF", g(b, "pp", "mean_tps"), g(h, "pp", "median_tps")),
    ("w8a8 decode >= 1.5x BF16 decode", g(w, "tg", "mean_tps"), 1.5 * tg),
    ("w8a8 (LLRT_CUDA_Q8_SILU=1) decode >= 1.5x BF16 decode", g(r["llrt_w8a8_q8silu"], "tg", "mean_tps"), 1.5 * tg),
    ("w8a8 (both variants) decode >= 1.5x BF16 decode", g(r["llrt_w8a8_both"], "tg", "mean_tps"), 1.5 * tg),
]
print("| target | llrt | needed | met |\n|---|---|---|---|")
for name, have, need in checks:
    print(f"| {name} | {have:.1f} | {need:.1f} | {'yes' if have >= need and need > 0 else 'NO'} |")
EOF
log "done (fail=$fail)"
exit $fail
