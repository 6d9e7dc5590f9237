#!/bin/sh
# Run a libFuzzer target (tests/fuzz/meson.build).
#   run-fuzz.sh TARGET replay CORPUS   run each input of CORPUS once
#   run-fuzz.sh TARGET SECONDS CORPUS  fuzz for SECONDS, seeded by CORPUS
# Inputs found while fuzzing go to a scratch corpus, crash artifacts to
# ./fuzz-artifacts/ of the working directory (the build tree), so the
# source corpus changes only when someone copies a finding in on purpose.
set -eu
target=$1 mode=$2 corpus=$3
mkdir -p fuzz-artifacts
art="-artifact_prefix=$PWD/fuzz-artifacts/$(basename "$target")-"
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "corpus $corpus is empty: replay runs the empty input only"
    mkdir -p fuzz-empty-corpus
    corpus=fuzz-empty-corpus
fi
if [ "$mode" = replay ]; then
    exec "$target" "$art" -runs=0 "$corpus"
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$target" "$art" -max_total_time="$mode" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$scratch" "$corpus"
