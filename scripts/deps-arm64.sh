#!/usr/bin/env bash
# Installs the aarch64 cross toolchain, qemu-user and the arm64 multiarch libraries llrt links
# (Debian 12, as root), skipping what is already there. Header-only dependencies (nlohmann-json,
# doctest) come from the host's /usr/include; xsimd's and pcre2's .pc files from the arm64
# packages (scripts/cross/aarch64-linux-gnu.ini reads /usr/lib/aarch64-linux-gnu/pkgconfig).
set -euo pipefail
pkgs=(g++-aarch64-linux-gnu qemu-user libc6-dev:arm64 libgomp1:arm64 libpcre2-dev:arm64 libxsimd-dev:arm64
      libbenchmark-dev:arm64 cmake)
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps-arm64] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
