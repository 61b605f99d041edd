# tests/cli_lib.sh — the helpers the tests/test_cli*.sh scripts share; sourced by
# them (its name does not start with test_, so tests/run.sh does not run it).
#
# After `. tests/cli_lib.sh`:
#   D         the dmaudio binary, absolute ($DMAUDIO, else build/dmaudio)
#   T         "--threads 1": results do not depend on it; one thread is fastest on a
#             busy machine
#   bg        the pid of a background dmaudio a test starts, killed at exit if set
# and the functions below. Every script ends with `cli_done`.

set -u
DMAUDIO=${DMAUDIO:-build/dmaudio}
case $DMAUDIO in /*) ;; *) DMAUDIO=$PWD/$DMAUDIO ;; esac
D=$DMAUDIO
T="--threads 1"
n=0
fails=0
bg=
tmp=
out=/dev/null
err=/dev/null

# cli_tmpdir NAME [BASE]: makes BASE/dmaudio-NAME.XXXXXX (BASE: $TMPDIR, else /tmp), goes
# there, and removes it at exit; check keeps its output in .out and .err there.
cli_tmpdir() {
    tmp=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/dmaudio-$1.XXXXXX") || exit 1
    trap cli_cleanup EXIT
    cd "$tmp" || exit 1
    out=$tmp/.out err=$tmp/.err
}
cli_cleanup() {
    [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
    if [ -n "$tmp" ]; then
        chmod -R u+w "$tmp" 2>/dev/null
        rm -rf "$tmp"
    fi
}

ok() { n=$((n + 1)); echo "ok $n - $1"; }
# not_ok NAME WHY: a failure, with the start of the last command's output
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1: $2"
    [ -s "$out" ] && sed 's/^/#   stdout: /' "$out" | head -5
    [ -s "$err" ] && sed 's/^/#   stderr: /' "$err" | head -5
    fails=$((fails + 1))
}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
# check NAME EXPECTED_STATUS STDOUT_PATTERN STDERR_PATTERN -- COMMAND...
# (patterns: grep -E; empty: not checked)
check() {
    local name=$1 want=$2 pout=$3 perr=$4
    shift 5
    "$@" >"$out" 2>"$err"
    local got=$? why=
    [ "$got" -eq "$want" ] || why="exit status $got, expected $want"
    [ -z "$why" ] && [ -n "$pout" ] && ! grep -qE -- "$pout" "$out" && why="stdout lacks /$pout/"
    [ -z "$why" ] && [ -n "$perr" ] && ! grep -qE -- "$perr" "$err" && why="stderr lacks /$perr/"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why"; fi
}
# assert NAME COMMAND...: passes when the command succeeds
assert() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}
# json FILE KEY: the first value of KEY (a number, a string or null) in
# `dmaudio info --json FILE`
json() {
    "$D" info --json "$1" 2>/dev/null | grep -oE "\"$2\": (\"[^\"]*\"|[-0-9.e+]+|null)" | head -1 |
        sed -E "s/^\"$2\": \"?//; s/\"$//"
}
# stop_when SIG PATTERN COMMAND...: runs COMMAND in the background (with SIGINT
# not ignored, as from a terminal: a script's background jobs ignore it), its
# stderr in $err; once a line of it matches PATTERN (grep -E; at most 60 s),
# sends SIG and waits. The command's exit status is then in $st.
stop_when() {
    local sig=$1 pat=$2
    shift 2
    env --default-signal=INT "$@" >/dev/null 2>"$err" &
    bg=$!
    for _ in $(seq 1200); do
        grep -qE -- "$pat" "$err" && break
        kill -0 "$bg" 2>/dev/null || break
        sleep 0.05
    done
    kill -"$sig" "$bg" 2>/dev/null
    wait "$bg"
    st=$?
    bg=
}
# cli_done: the TAP plan; the exit status says whether everything passed
cli_done() {
    echo "1..$n"
    [ "$fails" -eq 0 ]
}
