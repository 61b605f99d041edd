#!/usr/bin/env bash
# tests/run.sh BUILD_DIR — run the dmaudio test suite, print a summary.
#
# Runs, from the repository root:
#   every BUILD_DIR/tests/test_* binary, with CMOCKA_MESSAGE_OUTPUT=TAP, prefixed by
#     $TEST_WRAPPER if set (e.g. TEST_WRAPPER="valgrind --error-exitcode=1 -q");
#   every tests/test_*.sh and tests/hosts/test_*.sh script (with bash; the latter play the
#     LV2 plugin in real hosts), with DMAUDIO=BUILD_DIR/dmaudio and
#     DMAUDIO_BUILD_DIR=BUILD_DIR in the environment.
# Each prints TAP lines "ok N - name" / "not ok N - name" ("ok N # SKIP why" is a skip,
# a plan "1..0 # SKIP why" skips the whole file). A program that exits non-zero without a
# "not ok" line, or that prints no result at all, counts as one failure under its own name.
# Each program is stopped after $TEST_TIMEOUT seconds (default 1800; 0 = no limit).
#
# The last line is "N passed, M failed"; the exit status is non-zero when M > 0.

set -u

if [ $# -ne 1 ]; then
    echo "usage: tests/run.sh BUILD_DIR" >&2
    exit 2
fi
build=$1
case $build in /*) ;; *) build=$PWD/$build ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
if [ ! -d "$build" ]; then
    echo "tests/run.sh: no build directory $build" >&2
    exit 2
fi

read -r -a wrapper <<< "${TEST_WRAPPER:-}"
limit=${TEST_TIMEOUT:-1800}
export CMOCKA_MESSAGE_OUTPUT=TAP
# Idle OpenMP threads sleep instead of spinning: on a shared, busy machine (CI)
# spinning threads made 2-thread runs 13-30x slower than 1-thread ones.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export DMAUDIO="$build/dmaudio"
export DMAUDIO_BUILD_DIR="$build"

passed=0
failed=0
skipped=0
failures=()
out=$(mktemp "${TMPDIR:-/tmp}/dmaudio-test.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT

# run_one NAME COMMAND... — runs it, shows its output, adds its results to the counts.
run_one() {
    local name=$1
    shift
    local cmd=("$@")
    if [ "$limit" != 0 ] && command -v timeout >/dev/null; then
        cmd=(timeout -k 10 "$limit" "${cmd[@]}")
    fi

    echo "# ---- $name"
    "${cmd[@]}" < /dev/null 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}

    local line results=0 bad=0 plan_skip=0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case $line in
        "not ok "*)
            results=$((results + 1))
            if [[ $line =~ \#[[:space:]]*([Tt][Oo][Dd][Oo]|[Ss][Kk][Ii][Pp]) ]]; then
                skipped=$((skipped + 1))
            else
                bad=$((bad + 1))
                failed=$((failed + 1))
                failures+=("$name: ${line#not ok }")
            fi
            ;;
        "ok "*)
            results=$((results + 1))
            if [[ $line =~ \#[[:space:]]*[Ss][Kk][Ii][Pp] ]]; then
                skipped=$((skipped + 1))
            else
                passed=$((passed + 1))
            fi
            ;;
        "1..0"*)
            plan_skip=1
            ;;
        esac
    done < "$out"

    local why=
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        if [ "$rc" -eq 124 ] && [ "${cmd[0]}" = timeout ]; then
            why="timed out after ${limit}s"
        elif [ "$rc" -gt 128 ]; then
            why="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
        else
            why="exit status $rc"
        fi
    elif [ "$rc" -eq 0 ] && [ "$results" -eq 0 ] && [ "$plan_skip" -eq 0 ]; then
        why="printed no test result"
    fi
    if [ -n "$why" ]; then
        echo "not ok - $name ($why)"
        failed=$((failed + 1))
        failures+=("$name: $why")
    fi
}

shopt -s nullglob
ran=0
for bin in "$build"/tests/test_*; do
    [ -f "$bin" ] && [ -x "$bin" ] || continue
    [ -f "tests/$(basename "$bin").c" ] || continue # left over from a removed test
    run_one "$(basename "$bin")" "${wrapper[@]}" "$bin"
    ran=$((ran + 1))
done
for script in tests/test_*.sh tests/hosts/test_*.sh; do
    run_one "${script#tests/}" bash "$script"
    ran=$((ran + 1))
done

echo "#"
if [ "$ran" -eq 0 ]; then
    failed=$((failed + 1))
    failures+=("no test found in $build/tests or tests/test_*.sh")
fi
if [ "${#failures[@]}" -gt 0 ]; then
    echo "# failures:"
    for f in "${failures[@]}"; do
        echo "#   $f"
    done
fi
if [ "$skipped" -gt 0 ]; then
    echo "# $skipped skipped"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
