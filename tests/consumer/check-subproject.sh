#!/bin/sh
# Build tests/consumer/consumer.c in a scratch host project that embeds
# librisk as a meson subproject (dependency('librisk') resolved through
# meson.override_dependency in lib/meson.build), and run it.
# Usage: check-subproject.sh SRCDIR VERSION
set -eu
top=$1 version=$2
t=$(mktemp -d "${TMPDIR:-/tmp}/subproject.XXXXXX")
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/host/subprojects"
cp "$top/tests/consumer/subproject/meson.build" "$top/tests/consumer/consumer.c" "$t/host/"
ln -s "$top" "$t/host/subprojects/librisk"
unset CC
meson setup "$t/build" "$t/host" --force-fallback-for=librisk >"$t/setup.log" 2>&1 \
    || { cat "$t/setup.log"; exit 1; }
ninja -C "$t/build" >"$t/ninja.log" 2>&1 || { cat "$t/ninja.log"; exit 1; }
out=$("$t/build/consumer")
echo "consumer (librisk as a subproject) printed: $out"
[ "$out" = "$version" ] || { echo "expected $version"; exit 1; }
# only the library: riskctl and risk-bench are not built into the host
for tool in riskctl bench/risk-bench; do
    [ ! -e "$t/build/subprojects/librisk/tools/$tool" ] ||
        { echo "the subproject built tools/$tool"; exit 1; }
done
