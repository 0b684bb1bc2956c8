#!/usr/bin/env bash
# Installs what is missing, builds llrt, and runs the whole test suite:
#   1. release build + every doctest suite (meson test)
#   2. the same suites under AddressSanitizer + UndefinedBehaviorSanitizer
#   2b. meson install into a DESTDIR + a pkg-config consumer built and run (scripts/install_check.sh)
#   3. the libFuzzer target on the loader/config parsers for a bounded time
#   4. aarch64: cross-compiled, the kernel/q8/core/model/generate suites under qemu-user with
#      -cpu max and -cpu cortex-a72 (scripts/test-arm64.sh; LLRT_SKIP_ARM64=1 skips it)
# Ends with "N passed, M failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1
bash scripts/ensure-test-data.sh || exit 1
jobs=$(nproc)
passed=0; failed=0

run_suite() {  # $1 build dir, $2... meson setup args
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "$@" >/dev/null || return 1; fi
  ninja -C "$dir" -j"$jobs" || return 1
  meson test -C "$dir" --print-errorlogs --num-processes 1 "${MESON_TEST_ARGS[@]}"
  local rc=$?
  local log="$dir/meson-logs/testlog.json"
  if [ -f "$log" ]; then
    local p f
    p=$(python3 -c "import json,sys;print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['result'] in ('OK','EXPECTEDFAIL','SKIP')))" "$log")
    f=$(python3 -c "import json,sys;print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['result'] not in ('OK','EXPECTEDFAIL','SKIP')))" "$log")
    passed=$((passed + p)); failed=$((failed + f))
  fi
  return $rc
}

MESON_TEST_ARGS=()
echo "== release build + tests"
run_suite build -Dbuildtype=release || failed=$((failed + 1))
echo "== install into a DESTDIR + a pkg-config consumer"
if bash scripts/install_check.sh build; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

if [ "${LLRT_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== ASan + UBSan build + tests"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  MESON_TEST_ARGS=(--timeout-multiplier 4)
  # Gating: a sanitizer report (leak, overflow, UB) fails the suite and so CI. CUDA off here: the
  # release build above compiles the CUDA engine (nvcc, minutes), its device tests cannot run
  # without a GPU, and the sanitizers cover host code.
  run_suite build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false -Dcuda=disabled \
    || failed=$((failed + 1))
fi

if [ "${LLRT_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzzing the loader (${LLRT_FUZZ_SECONDS:-30}s)"
  if bash scripts/fuzz.sh "${LLRT_FUZZ_SECONDS:-30}"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

if [ "${LLRT_SKIP_ARM64:-0}" != 1 ]; then
  echo "== aarch64 cross build + tests under qemu-user"
  arm_out=$(mktemp)
  bash scripts/test-arm64.sh 2>&1 | tee "$arm_out"
  arm_line=$(grep '^arm64: ' "$arm_out" | tail -1)
  if [ -n "$arm_line" ]; then
    passed=$((passed + $(echo "$arm_line" | awk '{print $2}'))); failed=$((failed + $(echo "$arm_line" | awk '{print $4}')))
  else
    failed=$((failed + 1))  # the build or the install failed
  fi
  rm -f "$arm_out"
fi

echo "llrt tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
