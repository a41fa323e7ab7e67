#!/bin/bash
# The Python module as a user installs it: `pip install ./python` into a fresh virtual
# environment (scikit-build-core builds libbertcl and the bertcl command into it), then the
# pytest suite in python/tests with that environment's interpreter, library and command.
# When the system Python has sentence-transformers (a development machine; not CI's fresh
# Debian), python/tests/test_st.py also runs there, against the library the fresh environment
# built, comparing embeddings with SentenceTransformer.encode.
# Usage: scripts/check-python.sh   (from anywhere; needs python3 with venv, and PyPI)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
t0=$(date +%s)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python pytest
t1=$(date +%s)
echo "check-python: pip install ./python into a fresh venv: $((t1 - t0)) s"
lib=$("$work/venv/bin/python" -c 'import bertcl._lib as l; print(l.library_path())')
unset BERTCL_LIBRARY BERTCL_BIN
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider python/tests
echo "check-python: pytest in the fresh venv: $(($(date +%s) - t1)) s"
if python3 -c 'import sentence_transformers' 2>/dev/null; then
  python3 -m venv --system-site-packages "$work/venv-st"
  "$work/venv-st/bin/python" -m pip install --quiet --disable-pip-version-check pytest
  BERTCL_LIBRARY=$lib PYTHONPATH=$root/python \
    "$work/venv-st/bin/python" -m pytest -q -p no:cacheprovider python/tests/test_st.py
else
  echo "check-python: sentence-transformers is not installed: no comparison with it"
fi
