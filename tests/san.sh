#!/bin/sh
# exe_wrapper of the 'sanitize' test setup, for a build configured with
# -Db_sanitize=address,undefined (clang also needs -Db_lundef=false).
#
# Why a wrapper (TOOLCHAIN.md §4): LeakSanitizer reports found when a
# Criterion worker exits do not fail the test, and UBSan does not halt by
# default. Every sanitizer report goes to a file in a private directory
# instead, UBSan halts on the first error, and the test fails if any report
# was written, whatever the exit status.
d=$(mktemp -d "${TMPDIR:-/tmp}/san.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT

# The caller's options come first so that ours (the log paths) win.
# exitcode=0: a report file is the verdict, so the exit status stays the
# program's own (a leak check at exit would otherwise replace it with 1).
ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}:exitcode=0:log_path=$d/asan"
UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}:halt_on_error=1:log_path=$d/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS

# True if a report holds nothing but leaks that Criterion's runner itself
# allocated (frame #1 in libcriterion; 48 bytes in the runner of
# tests/test_journal.c, whatever the tests do). A leak of ours always has our code at frame #1
# (risk_malloc, a test), so it still fails; so does any other report.
criterion_only() {
    awk '/ERROR: LeakSanitizer/ { lsan = 1; next }
         /ERROR:|runtime error/ { other = 1 }
         /^(Direct|Indirect) leak of/ { blocks++; want = 1; next }
         want && /^ *#1 / { if ($0 ~ /libcriterion\.so/) crit++; want = 0 }
         END { exit !(lsan && !other && blocks > 0 && crit == blocks) }' "$1"
}

"$@"
rc=$?

for f in "$d"/*; do
    if [ -e "$f" ] && criterion_only "$f"; then
        echo "san.sh: ignored ${f##*/}: leaks allocated by Criterion itself, not by us" >&2
        rm -f "$f"
    fi
done
if [ -n "$(ls -A "$d")" ]; then
    for f in "$d"/*; do
        echo "san.sh: sanitizer report ${f##*/}:" >&2
        cat "$f" >&2
    done
    echo "san.sh: FAIL (sanitizer reports above; the program's own exit status was $rc)" >&2
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then exit 1; fi
    exit "$rc"
fi
exit "$rc"
