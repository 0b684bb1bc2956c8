#!/usr/bin/env bash
# Issue 16 point 1: the CUDA engine is a module loaded at run time (src/engine/cuda/cuda_loader.cpp),
# so CPU programs need no CUDA library and a CPU run hears nothing of CUDA.
#   - ldd of llrt, llrt-inspect and the test binaries other than test_cuda names no CUDA library;
#   - a CPU run (default device and --device cpu) writes no line about CUDA to stderr, and
#     --device cpu (and auto on a machine without the NVIDIA driver) does not even map the module;
#   - --verbose says why auto chose the CPU;
#   - --device cuda fails, saying what is missing and what to do, where there is no usable GPU
#     (module missing, LLRT_CUDA_MODULE wrong, or no driver/GPU), and runs where there is one;
#   - with the module built: `llrt caps --json` reports it and its Backend::Cuda kernels.
# Usage: cuda_module.sh BUILD_DIR HAVE_CUDA(0|1) VERSION   (run from the source root; models/stories260K)
set -uo pipefail
build=$1
have_cuda=$2
version=${3:-0.1.0}  # the project version: in the module's build id
llrt=$build/tools/llrt
model=models/stories260K
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. No CUDA library in the CPU programs.
for bin in "$llrt" "$build/tools/llrt-inspect" "$build"/tests/test_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  case "$(basename "$bin")" in test_cuda) continue;; esac
  if ldd "$bin" | grep -Ei 'libcuda|libcudart|libcublas' >"$tmp/ldd"; then
    bad "ldd $(basename "$bin") names CUDA libraries: $(tr '\n' ' ' <"$tmp/ldd")"
  else
    ok "ldd $(basename "$bin") names no CUDA library"
  fi
done

# Is there a usable GPU here (the module loaded and a device found)?
gpu=0
if "$llrt" caps --json >"$tmp/caps.json" 2>"$tmp/caps.err"; then
  python3 - "$tmp/caps.json" <<'EOF' && gpu=1
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j.get("cuda_built") and j.get("cuda_devices") else 1)
EOF
else
  bad "llrt caps --json failed: $(cat "$tmp/caps.err")"
fi
driver=0
ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && driver=1
echo "info: have_cuda=$have_cuda gpu=$gpu driver=$driver"

run() {  # run ARGS... : a 4-token greedy run on the tiny model; stdout/stderr in $tmp/out, $tmp/err
  "$llrt" run "$model" --ids 1 -n 4 --temp 0 "$@" >"$tmp/out" 2>"$tmp/err"
}

# 2. CPU runs say nothing of CUDA.
for dev in "" "--device cpu"; do
  [ -n "$dev" ] || [ "$gpu" = 0 ] || continue  # with a GPU, the default runs on it
  # shellcheck disable=SC2086
  if run $dev; then
    if grep -i 'cuda' "$tmp/err" >"$tmp/cudalines"; then
      bad "a CPU run (${dev:-default device}) wrote about CUDA: $(cat "$tmp/cudalines")"
    else
      ok "a CPU run (${dev:-default device}) says nothing of CUDA"
    fi
  else
    bad "the CPU run (${dev:-default device}) failed: $(cat "$tmp/err")"
  fi
done

# ... and does not map the module (or the CUDA runtime): --device cpu always, auto without a driver.
loaded_libs() { LD_DEBUG=libs "$llrt" run "$model" --ids 1 -n 1 --temp 0 "$@" 2>&1 >/dev/null | grep -Eo 'libllrt-cuda\.so|libcudart[^ ]*|libcublas[^ ]*' | sort -u; }
# shellcheck disable=SC2046
for dev in "--device cpu" $([ "$driver" = 0 ] && echo auto); do
  [ "$dev" = auto ] && args=() || args=(--device cpu)
  libs=$(loaded_libs "${args[@]}")
  if [ -n "$libs" ]; then bad "a CPU run ($dev) loaded: $(echo $libs)"; else ok "a CPU run ($dev) maps no CUDA library"; fi
done

# 3. --verbose says why auto chose the CPU.
if [ "$gpu" = 0 ]; then
  if run --verbose && grep -q 'device cpu (default: ' "$tmp/err"; then
    ok "--verbose says why: $(grep 'device cpu (default: ' "$tmp/err")"
  else
    bad "--verbose did not say why auto chose the CPU: $(cat "$tmp/err")"
  fi
fi

# 4. --device cuda.
expect_cuda_error() {  # DESCRIPTION PATTERN [ENV=...]
  local what=$1 pat=$2
  shift 2
  if env "$@" "$llrt" run "$model" --ids 1 -n 4 --temp 0 --device cuda >"$tmp/out" 2>"$tmp/err"; then
    bad "--device cuda ($what) succeeded without a usable GPU"
  elif grep -q "$pat" "$tmp/err" && grep -q 'What to do' "$tmp/err" && grep -q -- '--device cpu' "$tmp/err"; then
    ok "--device cuda ($what) fails clearly: $(head -c 400 "$tmp/err")"
  else
    bad "--device cuda ($what): unclear failure: $(cat "$tmp/err")"
  fi
}
if [ "$gpu" = 1 ]; then
  if run --device cuda; then ok "--device cuda runs on the GPU"; else bad "--device cuda failed with a GPU: $(cat "$tmp/err")"; fi
elif [ "$have_cuda" = 1 ]; then
  expect_cuda_error "module present, no GPU" 'cannot run on CUDA: no'
else
  expect_cuda_error "built without CUDA" 'built without the CUDA module'
fi
expect_cuda_error "LLRT_CUDA_MODULE names no file" 'LLRT_CUDA_MODULE=/nonexistent/libllrt-cuda.so: no such file' \
  LLRT_CUDA_MODULE=/nonexistent/libllrt-cuda.so
echo 'not a module' >"$tmp/libllrt-cuda.so"
expect_cuda_error "LLRT_CUDA_MODULE names a file that is no module" 'cannot be loaded' LLRT_CUDA_MODULE="$tmp/libllrt-cuda.so"
if [ "$have_cuda" = 1 ]; then
  # The module's copy with its CUDA runtime renamed (as on a machine without it), and with another
  # build's id: refused, each saying what to do.
  mod=$build/kernels/cuda/libllrt-cuda.so
  python3 - "$mod" "$tmp" "$version" <<'EOF2'
import re, sys
b = open(sys.argv[1], "rb").read()
ours = ("llrt " + sys.argv[3] + "; ").encode()
assert re.search(rb"libcudart\.so\.\d+\0", b) and ours in b
open(sys.argv[2] + "/nocudart.so", "wb").write(re.sub(rb"libcudart\.so\.\d+\0", lambda m: b"libcudart.so." + b"9" * (len(m.group()) - 14) + b"\0", b))
open(sys.argv[2] + "/otherbuild.so", "wb").write(b.replace(ours, b"llrt " + b"9" * (len(ours) - 7) + b"; "))
EOF2
  expect_cuda_error "the CUDA runtime missing" 'cannot be loaded: libcudart.so.9' LLRT_CUDA_MODULE="$tmp/nocudart.so"
  expect_cuda_error "another build's module" 'comes from another build' LLRT_CUDA_MODULE="$tmp/otherbuild.so"
fi
# auto with an unusable module: the CPU, silently (the reason with --verbose).
if LLRT_CUDA_MODULE=/nonexistent/libllrt-cuda.so "$llrt" run "$model" --ids 1 -n 4 --temp 0 >"$tmp/out" 2>"$tmp/err" &&
   ! grep -qi cuda "$tmp/err"; then
  ok "auto without the module runs on the CPU, silently"
else
  bad "auto without the module: $(cat "$tmp/err")"
fi

# 5. Capability reporting: the module and its kernels (when built).
if [ "$have_cuda" = 1 ]; then
  python3 - "$tmp/caps.json" <<'EOF' && ok "caps: the CUDA module is loaded and lists its kernels" || bad "caps does not report the CUDA module: $(head -c 600 "$tmp/caps.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["cuda_built"], "cuda_built is false: " + j.get("cuda_status", "")
assert j["cuda_module"].endswith("libllrt-cuda.so"), j["cuda_module"]
n = sum(1 for k in j["kernels"] if k["backend"] == "cuda")
assert n == 18, f"{n} CUDA kernels"
EOF
  if "$build/tools/llrt-inspect" "$model" >"$tmp/out" 2>"$tmp/err"; then
    ok "llrt-inspect runs ($(grep -ci cuda "$tmp/out") lines about CUDA)"
  else
    bad "llrt-inspect failed: $(cat "$tmp/err")"
  fi
fi

[ "$fails" = 0 ] && echo "cuda_module: ok" || echo "cuda_module: $fails failure(s)"
exit $((fails > 0))
