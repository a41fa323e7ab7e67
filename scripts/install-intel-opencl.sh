#!/bin/bash
# Installs Intel's OpenCL CPU runtime (a second OpenCL implementation next to PoCL) without root
# and without touching the system Python: pip downloads three wheels from PyPI, intel-opencl-rt
# (libintelocl.so and its compiler), intel-cmplr-lib-rt (libimf, libsvml, libirng, libintlc) and
# tbb (libtbb.so.12), whose libraries are unpacked into one folder; a vendors folder holds an .icd
# file naming libintelocl.so by its full path plus copies of the system's .icd files, so the
# OpenCL loader lists Intel's platform beside the system's own.
#
# Usage: scripts/install-intel-opencl.sh [DEST]    (default: .intel-opencl in the repository,
#        git-ignored; or $BERTCL_INTEL_OCL_DIR)
# Writes DEST/env.sh; `source DEST/env.sh` sets OCL_ICD_VENDORS, after which `bertcl devices`
# lists "Intel(R) OpenCL" and `--device intel` selects it. (libintelocl.so finds its libraries
# through its own $ORIGIN run path: no LD_LIBRARY_PATH, so the system's OpenCL loader and
# libraries stay the ones in use.)
# Idempotent: a complete install of the same versions is kept (only the copies of the system's
# .icd files are refreshed).
# Exit status: 0 installed (or already there); 77 skipped, with the reason on the last line of
# stderr (no network, no pip, a failed download, not x86-64) and in DEST.skipped; 1 an error
# (a download that unpacks wrong, a runtime the OpenCL loader cannot list).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${BERTCL_INTEL_OCL_DIR:-$root/.intel-opencl}}
# Pinned so that CI tests one known runtime; change together (intel-opencl-rt names the others).
OCL_RT=intel-opencl-rt==2026.2.0
CMPLR_RT=intel-cmplr-lib-rt==2026.2.0
TBB=tbb==2023.2.0
pins="$OCL_RT $CMPLR_RT $TBB"
sys_vendors=${BERTCL_SYSTEM_ICD_DIR:-/etc/OpenCL/vendors}

skip() {
  mkdir -p "$(dirname "$dest")"
  echo "$*" >"$dest.skipped"
  echo "install-intel-opencl: skipped: $*" >&2
  exit 77
}
die() { echo "install-intel-opencl: error: $*" >&2; exit 1; }

# The vendors folder: Intel's .icd plus the system's, refreshed on every run.
write_vendors() { # dir libdir
  local dir=$1 lib=$2
  mkdir -p "$dir"
  find "$dir" -maxdepth 1 -name '*.icd' ! -name intel-cpu.icd -delete
  if [ -d "$sys_vendors" ]; then
    for icd in "$sys_vendors"/*.icd; do
      [ -e "$icd" ] && [ "$(basename "$icd")" != intel-cpu.icd ] && cp "$icd" "$dir"/
    done
  fi
  echo "$lib/libintelocl.so" >"$dir/intel-cpu.icd"
}

# Checks that the OpenCL loader lists Intel's platform with the env file sourced.
verify() {
  command -v clinfo >/dev/null || { echo "install-intel-opencl: clinfo absent, not verified"; return 0; }
  local list
  list=$(OCL_ICD_VENDORS="$dest/vendors" clinfo -l 2>&1) || true
  if ! grep -q "Intel(R) OpenCL" <<<"$list"; then
    die "the OpenCL loader does not list Intel's platform with OCL_ICD_VENDORS=$dest/vendors:
$list"
  fi
  echo "$list"
}

if [ -f "$dest/env.sh" ] && [ -f "$dest/lib/libintelocl.so" ] &&
   [ "$(cat "$dest/VERSIONS" 2>/dev/null)" = "$pins" ]; then
  write_vendors "$dest/vendors" "$dest/lib"
  rm -f "$dest.skipped"
  echo "install-intel-opencl: already installed ($pins) in $dest"
  verify
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || skip "Intel's OpenCL CPU runtime is for x86-64 only (this is $(uname -m))"
command -v python3 >/dev/null || skip "python3 not found (pip fetches the runtime from PyPI)"
python3 -m pip --version >/dev/null 2>&1 || skip "pip not found (apt-get install python3-pip)"

mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "install-intel-opencl: downloading $pins (about 270 MB) from PyPI"
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --retries 2 --timeout 60 \
     --dest "$tmp/whl" $pins >"$tmp/pip.log" 2>&1; then
  tail -n 3 "$tmp/pip.log" >&2
  why=$(grep -m1 '^ERROR' "$tmp/pip.log" || tail -n 1 "$tmp/pip.log")
  if grep -qE 'NewConnectionError|ConnectTimeout|Name or service not known|Temporary failure in name resolution|Network is unreachable|ProxyError' "$tmp/pip.log"; then
    skip "PyPI unreachable (no network?): pip download of $pins: $why"
  fi
  skip "pip download of $pins failed: $why"
fi

# Unpack the wheels' lib folders into one (wheels hold no symlinks: each .so name is a file).
# Intel's own libOpenCL.so (an ICD loader) is left out so the system's loader stays in use.
python3 - "$tmp/inst" "$tmp"/whl/*.whl <<'PY' || die "unpacking the wheels failed"
import os, shutil, sys, zipfile
out = sys.argv[1]
for d in ("lib", "licensing"):
    os.makedirs(os.path.join(out, d), exist_ok=True)
for whl in sys.argv[2:]:
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            parts = info.filename.split("/")
            name = parts[-1]
            if info.is_dir():
                continue
            if parts[0].endswith(".dist-info") and name.startswith("LICENSE"):
                target = os.path.join(out, "licensing", parts[0].split("-")[0] + "-" + name)
            elif not parts[0].endswith(".data") or len(parts) < 4:
                continue
            elif parts[1:3] == ["data", "lib"] and len(parts) == 4:
                if name.startswith("libOpenCL.so"):
                    continue
                target = os.path.join(out, "lib", name)
            elif parts[1:4] == ["data", "share", "doc"]:
                target = os.path.join(out, "licensing", name)
            else:
                continue
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
[ -f "$tmp/inst/lib/libintelocl.so" ] || die "libintelocl.so is not in the downloaded wheels"
for w in "$tmp"/whl/*.whl; do basename "$w"; done >"$tmp/inst/WHEELS"

# Move into place, then write what names the final path.
rm -rf "$dest"
mv "$tmp/inst" "$dest"
write_vendors "$dest/vendors" "$dest/lib"
cat >"$dest/env.sh" <<EOF
# Written by scripts/install-intel-opencl.sh: Intel's OpenCL CPU runtime ($OCL_RT) beside the
# system's OpenCL drivers. Source it, then 'bertcl devices' lists "Intel(R) OpenCL".
export OCL_ICD_VENDORS="$dest/vendors"
EOF
echo "$pins" >"$dest/VERSIONS"
rm -f "$dest.skipped"
echo "install-intel-opencl: installed in $dest ($(du -sh "$dest" | cut -f1)); source $dest/env.sh"
verify
