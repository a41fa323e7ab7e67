#!/bin/bash
# Quick start, step 1: install dependencies, build, fetch the default model, run the main job.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/build.sh build
scripts/fetch-model.sh
echo
echo "== OpenCL devices (the one marked * is used by default)"
build/bertcl devices
