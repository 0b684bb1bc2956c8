#!/usr/bin/env bash
# `meson install` into a DESTDIR, then checks what a user gets: the llrt CLI runs, the pkg-config
# file is sound (no xsimd, no flag twice) and tests/consumer/hello.cpp builds with
# `pkg-config --cflags --libs llrt` (and --static) and generates text; the CUDA module is
# installed, found by the installed CLI and loadable from a consumer. Usage: install_check.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name llrt.pc | head -1)
[ -n "$pc" ] || { echo "install_check: no llrt.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
export PKG_CONFIG_PATH=$(dirname "$pc")
pcf() { pkg-config --define-variable=prefix="$dest$prefix" "$@" llrt; }
libs=$(pcf --libs); cflags=$(pcf --cflags)
if grep -q xsimd "$pc"; then echo "install_check: llrt.pc requires xsimd"; exit 1; fi
dups=$(printf '%s\n' $libs $cflags | sort | uniq -d)
[ -z "$dups" ] || { echo "install_check: repeated in pkg-config output: $dups"; exit 1; }
[ -f "$dest$prefix/include/llrt/model.h" ] || { echo "install_check: headers not installed"; exit 1; }
# every public header compiles against the installed tree (none includes a source-tree-only file)
for h in "$dest$prefix"/include/llrt/*.h; do echo "#include <llrt/$(basename "$h")>"; done |
  c++ -std=c++20 -fsyntax-only -x c++ - $(pcf --cflags) || { echo "install_check: the installed headers do not compile"; exit 1; }
[ -f "$(pcf --variable=libdir)/libllrt.a" ] || { echo "install_check: libllrt.a not installed"; exit 1; }
"$dest$prefix/bin/llrt" --version
for mode in "" --static; do
  # shellcheck disable=SC2046
  c++ -std=c++20 -O1 tests/consumer/hello.cpp -o "$dest/hello" $cflags $(pcf --libs $mode)
  out=$("$dest/hello" models/stories260K 2>/dev/null)
  case "$out" in *"there was a little"*) echo "install_check: consumer ($mode${mode:+ }pkg-config): $out";;
    *) echo "install_check: the consumer wrote: $out"; exit 1;; esac
done
# The CUDA backend is a module (libllrt-cuda.so in libdir, when built with CUDA): the installed CLI
# names no CUDA library, finds the installed module (bin/../<libdir>), and a minimal consumer
# built with pkg-config loads it (the module binds to the consumer's llrt: --export-dynamic).
if ldd "$dest$prefix/bin/llrt" | grep -Ei 'libcudart|libcublas'; then echo "install_check: llrt links CUDA libraries"; exit 1; fi
mod="$(pcf --variable=libdir)/libllrt-cuda.so"
if [ -f "$build/kernels/cuda/libllrt-cuda.so" ]; then
  [ -f "$mod" ] || { echo "install_check: libllrt-cuda.so not installed in $(pcf --variable=libdir)"; exit 1; }
  found=$("$dest$prefix/bin/llrt" caps --json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cuda_module", ""))')
  [ "$found" -ef "$mod" ] || { echo "install_check: the installed llrt found the CUDA module at '$found', not $mod"; exit 1; }
  printf '%s\n' '#include <cstdio>' '#include <llrt/cuda.h>' \
    'int main() { std::printf("%d %s\n", int(llrt::cuda_built()), llrt::cuda_status().c_str()); return llrt::cuda_built() ? 0 : 1; }' \
    >"$dest/cuda_probe.cpp"
  # shellcheck disable=SC2046
  c++ -std=c++20 -O1 "$dest/cuda_probe.cpp" -o "$dest/cuda_probe" $cflags $(pcf --libs)
  out=$(LLRT_CUDA_MODULE="$mod" "$dest/cuda_probe") || { echo "install_check: a consumer cannot load the CUDA module: $out"; exit 1; }
  echo "install_check: the CUDA module loads in a consumer (cuda_built, status: ${out#* })"
fi
echo "install_check: ok"
