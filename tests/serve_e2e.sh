#!/usr/bin/env bash
# The end-to-end test of `llrt serve` (tests/serve_e2e.py) with the official openai client,
# installed from PyPI into a venv cached in the build folder. Without PyPI the test FAILS, saying
# so; LLRT_SKIP_SERVE_E2E=1 skips it (meson reports SKIP).
#   serve_e2e.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -uo pipefail
build=$1 src=$2 shared=$3
if [ "${LLRT_SKIP_SERVE_E2E:-0}" = 1 ]; then
  echo "serve e2e: skipped (LLRT_SKIP_SERVE_E2E=1)"
  exit 77
fi
venv=$build/serve-e2e-venv
if ! "$venv/bin/python" -c "import openai, httpx" 2>/dev/null; then
  echo "serve e2e: creating $venv with the openai client from PyPI"
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    echo "serve e2e: FAILED: python3 -m venv failed (Debian: apt-get install python3-venv; scripts/deps.sh installs it)"
    exit 1
  fi
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --timeout 30 "openai>=1.40,<3"; then
    rm -rf "$venv"
    echo "serve e2e: FAILED: pip could not install the openai client from PyPI (no network?)."
    echo "           Set LLRT_SKIP_SERVE_E2E=1 to skip this test knowingly."
    exit 1
  fi
fi
exec "$venv/bin/python" "$src/tests/serve_e2e.py" --llrt "$build/tools/llrt" --source "$src" --shared "$shared"
