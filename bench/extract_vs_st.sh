#!/bin/sh
# Rows/s of `bertcl extract` next to PyTorch on the same texts, batch size and maximum length:
#   mean    all-MiniLM-L6-v2 sentence embeddings (the model's pooling: mean + normalize) vs
#           sentence-transformers `encode`;
#   layers  every hidden layer (7 for MiniLM) of every real token (`--pool none --layers all
#           --tokens`) vs transformers with output_hidden_states=True, copied to host memory.
# bertcl's figure is its summary's rows/s (whole job, model load excluded); PyTorch's is the
# encode loop's (load and warm-up excluded). fp32 on both sides (TF32 off). Not a CI test.
#
#   bench/extract_vs_st.sh BERTCL_BIN MODEL_DIR CORPUS [LINES] [COLUMN] [DEVICE] [BATCH] [MAX_LEN]
#   bench/extract_vs_st.sh build/bertcl models/all-MiniLM-L6-v2 ../shared/data/sst2/train.tsv \
#       20000 sentence nvidia 128 128
#
# On the GPU machine (64 MiB carry): carry an F16 copy of the model (bench/make_f16_model.py,
# 46 MB) with a small Release build (BERTCL_BUILD_TESTS=OFF) and .devdeps, and a corpus file
# (a few MB of text); both sides widen the F16 weights to fp32. PyTorch side: bench/st_encode.py.
set -eu
BIN=$1 MODEL=$2 CORPUS=$3 LINES=${4:-2000} COLUMN=${5:-} DEVICE=${6:-${BERTCL_DEVICE:-}}
BATCH=${7:-128} MAXLEN=${8:-128}
HERE=$(dirname "$0")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# one plain text file of the first LINES texts, the same for both sides
python3 - "$CORPUS" "$LINES" "$COLUMN" > "$TMP/in.txt" <<'PY'
import csv, sys
path, n, col = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, encoding="utf-8", newline="") as f:
    if col:
        rows = (r[col] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    else:
        rows = (line.rstrip("\n") for line in f)
    for i, t in enumerate(rows):
        if n and i >= n:
            break
        print(t.replace("\n", " "))
PY
DEV=""
[ -n "$DEVICE" ] && DEV="--device $DEVICE"
head -n 64 "$TMP/in.txt" > "$TMP/warm.txt"
# shellcheck disable=SC2086
"$BIN" extract -m "$MODEL" -i "$TMP/warm.txt" -o "$TMP/warm.npy" $DEV --quiet
run() { # name, options...
  name=$1
  shift
  # shellcheck disable=SC2086
  "$BIN" extract -m "$MODEL" -i "$TMP/in.txt" -o "$TMP/$name.safetensors" $DEV \
    --batch-size "$BATCH" --max-len "$MAXLEN" --max-tokens $((BATCH * MAXLEN)) "$@" \
    2> "$TMP/$name.log" || { cat "$TMP/$name.log" >&2; exit 1; }
  tail -n 2 "$TMP/$name.log" >&2
  grep -o '[0-9.]* rows/s' "$TMP/$name.log" | tail -n 1 | cut -d' ' -f1
}
M=$(run mean)
L=$(run layers --pool none --layers all --tokens)
DEVNAME=$(grep -o ' on [^,]*$' "$TMP/mean.log" | tail -n 1 | sed 's/^ on //')
python3 "$HERE/st_encode.py" "$MODEL" "$TMP/in.txt" "$BATCH" "$MAXLEN" both > "$TMP/torch.jsonl" \
  || echo "bench/extract_vs_st.sh: no PyTorch figures" >&2
python3 - "$M" "$L" "$DEVNAME" "$TMP/torch.jsonl" "$BATCH" "$MAXLEN" "$(wc -l < "$TMP/in.txt")" <<'PY'
import json, sys
m, l, dev, tj, batch, maxlen, rows = sys.argv[1:8]
torch = {}
for line in open(tj):
    d = json.loads(line)
    torch[d["mode"]] = d
out = {"bench": "extract_vs_pytorch", "rows": int(rows), "batch": int(batch),
       "max_len": int(maxlen), "device": dev,
       "bertcl_rows_per_s": {"mean": float(m), "layers": float(l)},
       "pytorch": torch}
for k in ("mean", "layers"):
    if k in torch:
        out[f"ratio_{k}_bertcl_vs_pytorch"] = round(float(out["bertcl_rows_per_s"][k]) /
                                                    torch[k]["rows_per_s"], 3)
print(json.dumps(out, indent=1))
PY
