#!/usr/bin/env bash
# Installs what is missing, builds llrt, and runs the main job on the model that ships
# in the repo (stories260K, a real trained TinyStories Llama): greedy from BOS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build
./build/tools/llrt run models/stories260K --ids 1 --temp 0 -n 200 "$@"
