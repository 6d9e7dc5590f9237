#!/bin/sh
# Install the build into a scratch DESTDIR, then build tests/consumer/
# consumer.c the way an outside project would: only the installed header,
# `pkg-config --cflags --libs librisk`, and the installed shared library.
# Usage: check-install.sh BUILDDIR SRCDIR VERSION CC [CC args...]
set -eu
build=$1 src=$2 version=$3
shift 3
t=$(mktemp -d "${TMPDIR:-/tmp}/consumer.XXXXXX")
trap 'rm -rf "$t"' EXIT

# --no-rebuild: meson test has built everything; a nested ninja would race.
meson install -C "$build" --destdir "$t/root" --no-rebuild --quiet >"$t/install.log" 2>&1 \
    || { cat "$t/install.log"; exit 1; }

pc=$(find "$t/root" -name librisk.pc | head -n 1)
[ -n "$pc" ] || { echo "librisk.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$t/root"
export PKG_CONFIG_LIBDIR="$PKG_CONFIG_PATH"   # nothing from the host system
flags=$(pkg-config --cflags --libs librisk)
echo "pkg-config: $flags"

# The public header must be clean under strict warnings for consumers too.
# shellcheck disable=SC2086
"$@" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$t/consumer" "$src/consumer.c" $flags

libdir=$(dirname "$(find "$t/root" -name 'librisk.so.*' | head -n 1)")
out=$(LD_LIBRARY_PATH="$libdir" "$t/consumer")
echo "consumer printed: $out"
[ "$out" = "$version" ] || { echo "expected $version"; exit 1; }

# It must really use the installed copy, not the one in the build tree.
LD_LIBRARY_PATH="$libdir" ldd "$t/consumer" | grep -q "$libdir/librisk.so" \
    || { echo "consumer did not resolve librisk from $libdir"; exit 1; }
