#!/usr/bin/env bash
# `meson install` into a DESTDIR, then checks what a user gets: the llrt CLI runs, the pkg-config
# file is sound (no xsimd, no flag twice) and tests/consumer/hello.cpp builds with
# `pkg-config --cflags --libs llrt` (and --static) and generates text. Usage: install_check.sh [BUILD_DIR]
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
echo "install_check: ok"
