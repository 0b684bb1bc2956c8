#!/usr/bin/env bash
# aarch64: cross-compiles the release build (CUDA off, benchmarks built but not run) and runs
# the kernel (op checker), q8, core, model (HF parity) and generate (stories260K text) suites
# under qemu-user twice:
#   -cpu max         every feature: neon_i8mm (SMMLA), neon_bf16 (BFDOT), neon_dotprod (SDOT)
#   -cpu cortex-a72  ARMv8.0: plain NEON only; the BF16-activation pair is missing (clean error)
# Left out under emulation (time; they hold no ISA-specific code): tokenizer, chat, loader,
# hostile; and model (HF parity) on cortex-a72 (-cpu max already runs it capped at plain neon). Speed is not measured under emulation. Prints "arm64: N passed, M failed".
# LLRT_SKIP_ARM64=1 skips it (scripts/test.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps-arm64.sh || exit 1
dir=build-arm64
if [ ! -f "$dir/build.ninja" ]; then
  setup_log=$(mktemp)
  meson setup "$dir" --cross-file scripts/cross/aarch64-linux-gnu.ini -Dbuildtype=release -Dcuda=disabled >"$setup_log" 2>&1 ||
    { tail -20 "$setup_log"; rm -f "$setup_log"; exit 1; }
  rm -f "$setup_log"
fi
# Builds only what runs here (the CLI, the suites below, the microbenchmarks); the suites
# left out are not compiled either (they cost ~40% of the test compile time).
targets=(tools/llrt $(ninja -C "$dir" -t targets all 2>/dev/null | grep -oE '^bench/bench_[a-z0-9_]+(:|$)' | tr -d :))
for s in ${LLRT_ARM64_SUITES:-core kernels q8 model generate}; do targets+=("tests/test_$s"); done
ninja -C "$dir" -j"$(nproc)" "${targets[@]}" || exit 1
# -cpu max runs the model parity for every level the CPU has (neon_i8mm, plain neon and the
# oracle, by LLRT_ISA caps inside the suite); cortex-a72 repeats the suites whose answer
# depends on the detected features (kernel choice, the missing pair, the CLI text).
suites_max=(${LLRT_ARM64_SUITES:-core kernels q8 model generate})
suites_a72=(${LLRT_ARM64_SUITES:-core kernels q8 generate})
passed=0; failed=0
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib)
# test_generate runs the CLI through popen: the emulated test's shell needs qemu too (no binfmt).
export LLRT_TEST_CLI_WRAPPER="${qemu[*]}"
for cpu in max cortex-a72; do
  if [ "$cpu" == max ]; then suites=("${suites_max[@]}"); else suites=("${suites_a72[@]}"); fi
  echo "== aarch64 under qemu -cpu $cpu: ${suites[*]}"
  "${qemu[@]}" -cpu "$cpu" "$dir/tools/llrt" caps | sed -n '1,5p'
  # meson runs the tests through the cross file's exe_wrapper; QEMU_CPU picks the core.
  QEMU_CPU=$cpu meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 1 --timeout-multiplier 3 "${suites[@]}"
  log="$dir/meson-logs/testlog.json"
  p=$(python3 -c "import json,sys;print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['result'] in ('OK','SKIP')))" "$log")
  f=$(python3 -c "import json,sys;print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['result'] not in ('OK','SKIP')))" "$log")
  passed=$((passed + p)); failed=$((failed + f))
  # The stories260K greedy text, exact, through the CLI on this core.
  want=", there was a little girl named Lily. She loved to play outside in the park. One day,"
  got=$(LLRT_KERNEL_CHOICE=rank "${qemu[@]}" -cpu "$cpu" "$dir/tools/llrt" run models/stories260K -p "Once upon a time" -n 30 --temp 0 2>/dev/null)
  if [ "$got" == "$want" ]; then passed=$((passed + 1)); else echo "stories260K text on $cpu: got [$got]"; failed=$((failed + 1)); fi
done
echo "arm64: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
