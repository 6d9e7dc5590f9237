#!/bin/sh
# exe_wrapper of the 'valgrind' test setup (meson test --setup valgrind).
#
# Why a wrapper (TOOLCHAIN.md §3): Criterion runs every test in a re-exec'd
# worker and ignores the worker's exit status once the test has reported, so
# valgrind's --error-exitcode alone lets leaks and invalid accesses pass.
# Here every process of ours writes its own log; the test fails unless each
# log says "ERROR SUMMARY: 0 errors".
#
# Programs a test spawns from /usr, /bin or a python installation (sh,
# python3, …) are not traced: they are not ours, and valgrind on them is slow
# and noisy.
d=$(mktemp -d "${TMPDIR:-/tmp}/vg.XXXXXX") || exit 1
trap 'rm -rf "$d"' EXIT

valgrind --trace-children=yes --trace-children-skip='/usr/*,/bin/*,/sbin/*,*/python*,*/.pyenv/*' \
    --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=1 --log-file="$d/vg.%p.log" "$@"
rc=$?

bad=0
for log in "$d"/vg.*.log; do
    [ -e "$log" ] || continue
    if ! grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
        # A process that exec'd an untraced program (or was SIGKILLed)
        # leaves a log that holds only valgrind's header: nothing was
        # checked there, and nothing went wrong while it was ours.
        if ! grep -Evq '^==[0-9]+== (Memcheck, |Copyright |Using Valgrind|Command: |Parent PID: |$)' "$log"; then
            continue
        fi
        bad=1
        echo "vg.sh: valgrind found errors in ${log##*/}:" >&2
        cat "$log" >&2
    fi
done
if [ "$bad" -ne 0 ]; then
    echo "vg.sh: FAIL (valgrind errors above; the program's own exit status was $rc)" >&2
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then exit 1; fi
    exit "$rc"
fi
exit "$rc"
