#!/bin/sh
# Compare the built library with the committed ABI baseline (docs/abi.md).
# Usage: abidiff.sh LIB BASELINE HEADERS_DIR
# Exit 77 (meson: SKIP) when abidiff, the baseline or debug info is missing:
# without -g abidiff misses signature changes (TOOLCHAIN.md §7).
# Additions pass (--no-added-syms); any other change fails: a compatible
# change is accepted by regenerating the baseline on purpose
# (tests/abi/update-baseline.sh) in the same commit.
lib=$1 baseline=$2 headers=$3
command -v abidiff >/dev/null 2>&1 || { echo "abidiff not installed (abigail-tools): skipped"; exit 77; }
[ -f "$baseline" ] || { echo "no baseline $baseline: run tests/abi/update-baseline.sh"; exit 77; }
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "$lib has no debug info (build with -g, e.g. buildtype=debugoptimized): skipped"
    exit 77
fi
abidiff --no-added-syms --headers-dir2 "$headers" "$baseline" "$lib"
rc=$?
case $rc in
    0) echo "ABI compatible with $baseline" ;;
    *) echo "abidiff exit status $rc (4: ABI change, 8: incompatible, 12: removal; 1/2: tool error)."
       echo "If the change is intended and compatible, regenerate the baseline with"
       echo "tests/abi/update-baseline.sh and explain it in CHANGELOG.md (docs/abi.md)."
       exit 1 ;;
esac
