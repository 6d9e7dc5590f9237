#!/bin/sh
# Compare the built library with the committed ABI baseline (docs/abi.md).
# Usage: abidiff.sh LIB BASELINE HEADERS_DIR
# Exit 77 (meson: SKIP) when abidiff, the baseline or debug info is missing:
# without -g abidiff misses signature changes (TOOLCHAIN.md §7).
# Additions pass (--no-added-syms); any other change fails: a compatible
# change is accepted by regenerating the baseline on purpose
# (tests/abi/update-baseline.sh) in the same commit.
lib=$1 baseline=$2 headers=$3
command -v abidiff >/dev/null 2>&1 && command -v abidw >/dev/null 2>&1 ||
    { echo "abidiff not installed (abigail-tools): skipped"; exit 77; }
[ -f "$baseline" ] || { echo "no baseline $baseline: run tests/abi/update-baseline.sh"; exit 77; }
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "$lib has no debug info (build with -g, e.g. buildtype=debugoptimized): skipped"
    exit 77
fi
# Both sides as abidw writes them with only the types of the public
# headers (--drop-private-types): the opaque handles' insides may change
# freely. (abidiff's --headers-dir2 against a baseline written without
# locations took every type for a private one and passed a reordered
# public struct: review, 2026-12-07.)
now=$(mktemp "${TMPDIR:-/tmp}/librisk-abi.XXXXXX") || exit 1
trap 'rm -f "$now"' EXIT
abidw --headers-dir "$headers" --drop-private-types --no-corpus-path --no-comp-dir-path \
      --no-show-locs --out-file "$now" "$lib" || { echo "abidw failed on $lib"; exit 1; }
abidiff --no-added-syms "$baseline" "$now"
rc=$?
case $rc in
    0) echo "ABI compatible with $baseline" ;;
    *) echo "abidiff exit status $rc (4: ABI change, 8: incompatible, 12: removal; 1/2: tool error)."
       echo "If the change is intended and compatible, regenerate the baseline with"
       echo "tests/abi/update-baseline.sh and explain it in CHANGELOG.md (docs/abi.md)."
       exit 1 ;;
esac
