#!/usr/bin/env bash
# Prepares .gpu/ for a lent GPU machine (which has nvcc and PyTorch but not this project's
# build dependencies): builds here with -Dcuda=enabled, copies the stripped binaries and
# the two non-system shared libraries they need, and packs the shared test data (models
# without deepseek-r1-distill-mini, whose 17 MB would break the 64 MiB transfer limit;
# tokenizer.json of llama-3.2-mini only, for tools/synth_model.py). Then prints the one
# command to run there (scripts/gpu_check.sh). .gpu/ must be git-ignored locally:
#   mkdir -p .git/info && echo /.gpu/ >> .git/info/exclude
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-cuda}
SHARED=${SHARED:-../shared}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" -Dcuda=enabled >/dev/null
ninja -C "$BUILD" tools/llrt tests/test_cuda tests/test_q8 tests/test_kernels
rm -rf .gpu && mkdir -p .gpu/bin/lib
for b in tools/llrt tests/test_cuda tests/test_q8 tests/test_kernels; do strip -o ".gpu/bin/$(basename $b)" "$BUILD/$b"; done
# The sm_80 code path, for a check on Hopper: test_cuda with compute_80 PTX only (the driver
# JIT-compiles it for the card in hand; no sm_90 machine code or PTX inside).
PTX80=${PTX80:-build-ptx80}
[ -f "$PTX80/build.ninja" ] || meson setup "$PTX80" -Dcuda=enabled -Dbench=false \
  "-Dnvcc_gencode=['-gencode=arch=compute_80,code=compute_80']" >/dev/null
ninja -C "$PTX80" tests/test_cuda
mkdir -p .gpu/bin/ptx80 && strip -o .gpu/bin/ptx80/test_cuda "$PTX80/tests/test_cuda"
for lib in libgomp.so.1 libpcre2-8.so.0; do
  p=$(ldd .gpu/bin/llrt | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$p" ] && cp -L "$p" .gpu/bin/lib/
done
tmp=$(mktemp -d)
mkdir -p "$tmp/shared/models" "$tmp/shared/references"
for m in llama-3.2-mini llama-3.1-mini-sharded llama-3.1-mini-w8a8 tinyllama-mini-f16 tinyllama-mini-f32; do
  mkdir -p "$tmp/shared/models/$m"
  cp "$SHARED/models/$m/"*.json "$SHARED/models/$m/"*.safetensors "$tmp/shared/models/$m/"
  [ "$m" = llama-3.2-mini ] || rm -f "$tmp/shared/models/$m/"tokenizer*.json
  cp "$SHARED/references/$m".* "$tmp/shared/references/"
done
tar -C "$tmp" -cf - shared | xz -9 -T2 > .gpu/shared.tar.xz
rm -rf "$tmp"
du -sh .gpu
cat <<'EOF'
device command (carry [".gpu"], timeout_s 500; about 100 s on an H200 before the compute_80 PTX
suite and the decode variants were added: expect 3-4 minutes):
set -o pipefail; python3 -c "import tarfile;tarfile.open('.gpu/shared.tar.xz').extractall('/tmp/llrt-data', filter='data')" && LLRT_GPU_BIN=.gpu/bin LLRT_SHARED=/tmp/llrt-data/shared bash scripts/gpu_check.sh 2>&1 | tee $OUT/console.log
EOF
