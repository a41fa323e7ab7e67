#!/bin/bash
# Installs a built tree into a temporary prefix and uses it the ways a C user would:
#   - the layout (bin/bertcl, the versioned shared library and its SONAME, the static library,
#     the header, the CMake package, bertcl.pc) and one version everywhere (header, CMake
#     package, pkg-config, library, CLI);
#   - the shared library exports exactly the functions include/bertcl.h declares;
#   - examples/embed.c built out of tree four times: find_package(bertcl) (shared),
#     find_package(bertcl COMPONENTS static), `pkg-config --cflags --libs bertcl`, and the static
#     library with `pkg-config --static` (its Libs.private); each is run.
# Usage: scripts/check-install.sh [BUILD_DIR]   (default build/; needs a configured, built tree)
# The examples run on $BERTCL_TEST_DEVICE (else the default device) with all-MiniLM-L6-v2 when
# models/ has it, else the tiny test model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "check-install: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libbertcl.so' | head -n1)")
[ -n "$libdir" ] || fail "no libbertcl.so installed"

# one version, written in include/bertcl.h
hver=$(sed -n 's/^#define BERTCL_VERSION_STRING "\(.*\)"/\1/p' "$root/include/bertcl.h")
major=${hver%%.*}; minor=${hver#*.}; minor=${minor%%.*}
[ "$major" = 0 ] && so="$major.$minor" || so=$major
for f in bin/bertcl include/bertcl.h "${libdir#"$prefix"/}/libbertcl.a" \
         "${libdir#"$prefix"/}/libbertcl.so.$hver" "${libdir#"$prefix"/}/cmake/bertcl/bertclConfig.cmake" \
         "${libdir#"$prefix"/}/cmake/bertcl/bertclConfigVersion.cmake" \
         "${libdir#"$prefix"/}/pkgconfig/bertcl.pc"; do
  [ -e "$prefix/$f" ] || fail "missing $f in the installed tree"
done
soname=$(readelf -d "$libdir/libbertcl.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libbertcl.so.$so" ] || fail "SONAME is '$soname', expected libbertcl.so.$so"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pcver=$(pkg-config --modversion bertcl)
cliver=$("$prefix/bin/bertcl" --version 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)
cmver=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")/\1/p' "$libdir/cmake/bertcl/bertclConfigVersion.cmake")
for v in "$pcver" "$cmver" "$cliver"; do
  [ "$v" = "$hver" ] || fail "versions differ: header $hver, pkg-config $pcver, CMake $cmver, CLI $cliver"
done
echo "check-install: version $hver everywhere (header, CMake package, pkg-config, CLI); SONAME $soname"

# exports: exactly what the header declares
gcc -E -P "$root/include/bertcl.h" | grep -oE '\bbertcl_[a-z0-9_]+ *\(' | tr -d '( ' | sort -u \
  >"$work/declared"
nm -D --defined-only "$libdir/libbertcl.so" | awk '{print $3}' | sort -u >"$work/exported"
if ! diff "$work/declared" "$work/exported" >"$work/diff"; then
  cat "$work/diff" >&2
  fail "libbertcl.so exports differ from include/bertcl.h ('<' declared only, '>' exported only)"
fi
echo "check-install: libbertcl.so exports the $(wc -l <"$work/declared") functions of bertcl.h, nothing else"

# examples/embed.c out of tree
model=$root/models/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || model=$root/tests/data/tiny-bert
[ -n "${BERTCL_TEST_DEVICE:-}" ] && export BERTCL_DEVICE=$BERTCL_TEST_DEVICE
run_embed() { # name exe
  local out
  out=$("$2" "$model" "A cat sits on the mat." "A kitten rests on a rug." "Stocks fell today.") ||
    fail "$1: the example failed"
  echo "$out" | grep -q "cosine(0, 1)" || fail "$1: unexpected output: $out"
  echo "check-install: $1: $(echo "$out" | head -n1)"
}
cmake -S "$root/examples" -B "$work/shared" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/shared" >/dev/null
ldd "$work/shared/embed" | grep -q "$libdir/libbertcl.so.$so" ||
  fail "find_package build does not link the installed shared library"
run_embed "find_package(bertcl)" "$work/shared/embed"
cmake -S "$root/examples" -B "$work/static" -DCMAKE_PREFIX_PATH="$prefix" \
  -DBERTCL_EXAMPLE_STATIC=ON >/dev/null
cmake --build "$work/static" >/dev/null
if ldd "$work/static/embed" | grep -q libbertcl; then fail "static build links libbertcl.so"; fi
run_embed "find_package(bertcl COMPONENTS static)" "$work/static/embed"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$work/embed-pc" "$root/examples/embed.c" \
  $(pkg-config --cflags --libs bertcl)
LD_LIBRARY_PATH=$libdir run_embed "pkg-config bertcl" "$work/embed-pc"
# the static library with bertcl.pc's Libs.private: every dependency must be listed there
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$work/embed-pc-static" "$root/examples/embed.c" \
  $(pkg-config --cflags bertcl) "$libdir/libbertcl.a" \
  $(pkg-config --static --libs bertcl | sed 's/-lbertcl\b//')
if ldd "$work/embed-pc-static" | grep -q libbertcl; then fail "static pkg-config build links libbertcl.so"; fi
run_embed "pkg-config --static bertcl" "$work/embed-pc-static"
echo "check-install: passed"
