#!/bin/bash
# Configures and builds bertcl. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBERTCL_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
