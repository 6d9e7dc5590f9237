#!/bin/sh
# Regenerate tests/abi/librisk.abi, the ABI baseline that the 'abi' suite
# compares the built library with. Run it on purpose only: at a release, or
# in the commit that makes a deliberate, compatible ABI change (docs/abi.md).
#
# Usage: tests/abi/update-baseline.sh [BUILDDIR]
# BUILDDIR (default: build-abi, created if missing) must be a -g build
# (debug or debugoptimized): without debug info signature changes go unseen.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-abi}
command -v abidw >/dev/null || { echo "abidw not found: apt-get install abigail-tools" >&2; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$top" --buildtype=debugoptimized -Ddocs=disabled -Dpython=false
fi
meson compile -C "$build" risk
lib=$build/lib/librisk.so
readelf -S "$lib" | grep -q '\.debug_info' || { echo "$lib has no debug info" >&2; exit 1; }
# the same options as abidiff.sh uses for the library it checks
abidw --headers-dir "$top/include" --drop-private-types --no-corpus-path --no-comp-dir-path --no-show-locs \
      --out-file "$top/tests/abi/librisk.abi" "$lib"
echo "wrote tests/abi/librisk.abi from $lib ($(grep -c '<elf-symbol ' "$top/tests/abi/librisk.abi") ELF symbols)"
