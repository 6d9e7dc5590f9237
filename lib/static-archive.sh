#!/bin/sh
# Make the installable static library OUT from the internal archive IN:
# every object linked into one (ld -r), then the hidden symbols made local
# (objcopy --localize-hidden), so that, as in the shared library, only the
# risk_ functions of the public headers are global. A host linking
# librisk.a cannot then collide with librisk's internal helpers (a host's
# own `datasync` or `intern`), nor call them. (docs/abi.md)
# Usage: static-archive.sh OUT IN LD OBJCOPY AR
set -eu
out=$1 in=$2 ld=$3 objcopy=$4 ar=$5
obj=$out.o
rm -f "$out" "$obj"
"$ld" -r -o "$obj" --whole-archive "$in"
"$objcopy" --localize-hidden "$obj"
"$ar" rcs "$out" "$obj"
rm -f "$obj"
