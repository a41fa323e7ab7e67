#!/bin/bash
# Fetches the host BLAS that bertcl's "blas" GEMM backend prefers on CPU devices: OpenBLAS from
# the PyPI wheel scipy-openblas32 (a current OpenBLAS built for every x86-64/arm64 kernel set,
# which recognises new CPUs that Debian 12's OpenBLAS 0.3.21 runs with its slowest kernels), into
# deps/scipy-openblas32 (or $1). CMake finds it there at configure time; bertcl loads it at run
# time (no environment variable needed). Without it bertcl tries the system's BLAS libraries,
# and without any it runs every product on CLBlast. Only PyPI is contacted, through pip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/deps/scipy-openblas32}
version=0.3.34.481.3
if [ -f "$dest/lib/libscipy_openblas.so" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "host BLAS already present: $dest"; exit 0
fi
case "$(uname -m)" in
  x86_64|aarch64) ;;
  *) echo "fetch-blas: no scipy-openblas32 wheel for $(uname -m); bertcl will use the system's BLAS or CLBlast"; exit 0 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
     "scipy-openblas32==$version" 2>"$tmp/err"; then
  cat "$tmp/err" >&2
  echo "fetch-blas: could not download scipy-openblas32; bertcl will use the system's BLAS or CLBlast" >&2
  exit 0
fi
whl=$(ls "$tmp"/scipy_openblas32-*.whl)
python3 - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/lib"
cp "$tmp/x/scipy_openblas32/lib/libscipy_openblas.so" "$dest.tmp/lib/"
# the wheel's own licence files travel with the library
cp "$tmp"/x/scipy_openblas32-*.dist-info/LICENSE* "$dest.tmp/" 2>/dev/null || true
echo "$version" > "$dest.tmp/VERSION"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "host BLAS ready: $dest/lib/libscipy_openblas.so (OpenBLAS, scipy-openblas32 $version)"
