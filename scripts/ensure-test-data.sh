#!/usr/bin/env bash
# The tests read ../shared (beside the checkout) when it exists; a fresh clone without it
# gets the same files from tests/data/shared*.tar.xz (the subset the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d ../shared/models ]; then exit 0; fi
if [ -d tests/data/shared/models ]; then exit 0; fi
echo "[data] ../shared not found: unpacking tests/data/shared*.tar.xz"
mkdir -p tests/data
for t in tests/data/shared.tar.xz tests/data/shared-gguf.tar.xz; do tar -C tests/data -xJf "$t"; done
