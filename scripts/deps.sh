#!/usr/bin/env bash
# Installs what llrt needs on Debian 12 (as root), skipping what is already there.
set -euo pipefail
pkgs=(meson ninja-build g++ pkg-config libxsimd-dev nlohmann-json3-dev doctest-dev libbenchmark-dev
      libpcre2-dev libedit-dev clang libclang-rt-14-dev python3 xz-utils libcpp-httplib-dev python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[deps] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
