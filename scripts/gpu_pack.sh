#!/usr/bin/env bash
# Prepares .gpu/ for a lent GPU machine (which has nvcc and PyTorch but not this project's
# build dependencies): builds here with -Dcuda=enabled, packs the stripped binaries (with the
# CUDA module libllrt-cuda.so beside them, where llrt looks first) and the
# two non-system shared libraries they need into .gpu/bin.tar.xz. Then prints the one
# command to run there (scripts/gpu_check.sh). .gpu/ must be git-ignored locally:
#   mkdir -p .git/info && echo /.gpu/ >> .git/info/exclude
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-cuda}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" -Dcuda=enabled >/dev/null
ninja -C "$BUILD" tools/llrt tests/test_cuda tests/test_q8 tests/test_kernels kernels/cuda/libllrt-cuda.so
rm -rf .gpu && mkdir -p .gpu/bin/lib
for b in tools/llrt tests/test_cuda tests/test_q8 tests/test_kernels kernels/cuda/libllrt-cuda.so; do
  strip -o ".gpu/bin/$(basename $b)" "$BUILD/$b"
done
# The sm_80 code path, for a check on Hopper: test_cuda with compute_80 PTX only (the driver
# JIT-compiles it for the card in hand; no sm_90 machine code or PTX inside).
PTX80=${PTX80:-build-ptx80}
[ -f "$PTX80/build.ninja" ] || meson setup "$PTX80" -Dcuda=enabled -Dbench=false \
  "-Dnvcc_gencode=['-gencode=arch=compute_80,code=compute_80']" >/dev/null
ninja -C "$PTX80" tests/test_cuda kernels/cuda/libllrt-cuda.so
mkdir -p .gpu/bin/ptx80 && strip -o .gpu/bin/ptx80/test_cuda "$PTX80/tests/test_cuda"
strip -o .gpu/bin/ptx80/libllrt-cuda.so "$PTX80/kernels/cuda/libllrt-cuda.so"
for lib in libgomp.so.1 libpcre2-8.so.0; do
  p=$(ldd .gpu/bin/llrt | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$p" ] && cp -L "$p" .gpu/bin/lib/
done
# The whole transfer (tracked files ~55 MB + carried paths) must stay under 64 MiB: the
# binaries travel xz-compressed (17 MB -> ~2 MB), the test data as the tracked
# tests/data/shared.tar.xz (what a clone without ../shared unpacks too).
tar -C .gpu -cf - bin | xz -9 -T2 > .gpu/bin.tar.xz
rm -rf .gpu/bin
du -sh .gpu
cat <<'EOF'
device command (carry [".gpu"], timeout_s 500; 3-4 minutes on an H200):
set -o pipefail; tar -C .gpu -xJf .gpu/bin.tar.xz && mkdir -p /tmp/llrt-data && tar -C /tmp/llrt-data -xJf tests/data/shared.tar.xz && LLRT_GPU_BIN=.gpu/bin LLRT_SHARED=/tmp/llrt-data/shared bash scripts/gpu_check.sh 2>&1 | tee $OUT/console.log
EOF
