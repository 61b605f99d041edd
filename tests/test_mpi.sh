#!/usr/bin/env bash
# Data-parallel training on MPI: `mpirun -np 2 dmaudio train` on one machine trains bitwise
# the weights of one process with the same global batch, seed and --shards 2; a checkpoint
# written by 2 processes resumes in 1 and the other way round, bitwise; a job whose rank 1 is
# killed (SIGKILL) mid-run and resumed from its last checkpoint ends with the weights of the
# uninterrupted run; SIGTERM to mpirun stops every process at one step and saves; a process
# count that cannot share the shards is refused by every process with one message.
#
# Uses $DMAUDIO when it was built with MPI=1 (`dmaudio version` names the MPI library), else
# $DMAUDIO_BUILD_DIR/tests/dmaudio-mpi (built by `make tests` when MPI is installed); skips
# (TAP "1..0 # SKIP") when there is neither or no mpirun.
# Prints TAP. Usage: DMAUDIO=build/dmaudio DMAUDIO_BUILD_DIR=build tests/test_mpi.sh
set -u
DMAUDIO=${DMAUDIO:-build/dmaudio}
case $DMAUDIO in /*) ;; *) DMAUDIO=$PWD/$DMAUDIO ;; esac
build=${DMAUDIO_BUILD_DIR:-$(dirname "$DMAUDIO")}
case $build in /*) ;; *) build=$PWD/$build ;; esac

D=
if "$DMAUDIO" version 2>/dev/null | grep -q '^data-parallel training:'; then
    D=$DMAUDIO
elif [ -x "$build/tests/dmaudio-mpi" ]; then
    D=$build/tests/dmaudio-mpi
fi
if [ -z "$D" ]; then
    echo "1..0 # SKIP dmaudio is not built with MPI (install libopenmpi-dev, or make MPI=1)"
    exit 0
fi
if ! command -v mpirun >/dev/null; then
    echo "1..0 # SKIP no mpirun (install openmpi-bin)"
    exit 0
fi

n=0
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmaudio-mpi.XXXXXX") || exit 1
bg=
cleanup() {
    [ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
out=$tmp/.out err=$tmp/.err

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1: $2"
    [ -s "$err" ] && sed 's/^/#   stderr: /' "$err" | tail -8
    fails=$((fails + 1))
}
# check NAME EXPECTED_STATUS STDERR_PATTERN -- COMMAND...
check() {
    local name=$1 want=$2 perr=$3
    shift 4
    "$@" >"$out" 2>"$err"
    local got=$? why=
    [ "$got" -eq "$want" ] || why="exit status $got, expected $want"
    [ -z "$why" ] && [ -n "$perr" ] && ! grep -qE -- "$perr" "$err" && why="stderr lacks /$perr/"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why"; fi
}
same() { # same NAME A B: the two files are identical
    if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1" "$2 and $3 differ"; fi
}

# One machine, as root in CI containers: oversubscribe the cores; one thread per process.
# Open MPI's own allocations at exit are not ours: no leak report for the MPI processes of
# a sanitizer build (memory errors are still reported).
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi_asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi() { # mpi NP ARGS...: dmaudio on NP processes
    local np=$1
    shift
    ASAN_OPTIONS=$mpi_asan mpirun -np "$np" --oversubscribe --allow-run-as-root "$D" "$@"
}
mpi_bg() { # mpi_bg NP ARGS...: the same in the background, mpirun's pid in $bg
    local np=$1
    shift
    ASAN_OPTIONS=$mpi_asan mpirun -np "$np" --oversubscribe --allow-run-as-root "$D" "$@" &
    bg=$!
}
# a tiny model on a tiny set; every run the same settings, name and seed
NET="--channels 8,16 --factors 4 --groups 4 --heads 2 --batch 4 --seed 3 --name t --threads 1"

"$D" synth data --per-class 4 --rate 8000 --length 512 --seed 1 --quiet >/dev/null 2>&1 ||
    { echo "Bail out! dmaudio synth failed"; exit 1; }

echo "1..10"

# 1-2: two processes against one with the same shards
check "mpirun -np 2 trains" 0 "2 processes \(.*MPI.*\) share each step's 2 shard" -- \
    mpi 2 train data -o two.dmm $NET --steps 6
if [ "$(grep -c 'dmaudio train: done' "$err")" = 1 ]; then
    ok "only rank 0 prints progress and writes"
else
    not_ok "only rank 0 prints progress and writes" "$(grep -c 'dmaudio train: done' "$err") 'done' lines"
fi
"$D" train data -o one.dmm $NET --steps 6 --shards 2 -q 2>"$err" || not_ok "one process" "failed"
same "2 processes train bitwise the weights of 1 process with --shards 2" two.dmm one.dmm
same "... and the same checkpoint (moments, EMA, step)" two.dmm.ckpt one.dmm.ckpt

# 5-6: resume with another process count. The reference: 3 steps and a resume to 6 in one
# process (a run's learning-rate schedule is the first --steps; the resumed runs keep it).
"$D" train data -o r.dmm $NET --steps 3 --shards 2 -q 2>"$err" &&
    "$D" train data -o r.dmm $NET --steps 6 --resume -q 2>>"$err" || not_ok "reference" "failed"
mpi 2 train data -o a.dmm $NET --steps 3 -q 2>"$err" &&
    "$D" train data -o a.dmm $NET --steps 6 --resume -q 2>>"$err" || not_ok "2 then 1" "failed"
same "a 2-process checkpoint resumes in 1 process, bitwise" a.dmm r.dmm
"$D" train data -o b.dmm $NET --steps 3 --shards 2 -q 2>"$err" &&
    mpi 2 train data -o b.dmm $NET --steps 6 --resume -q 2>>"$err" || not_ok "1 then 2" "failed"
same "a 1-process checkpoint resumes on 2 processes, bitwise" b.dmm r.dmm

# 7-8: rank 1 killed mid-run (SIGKILL), resumed from the last checkpoint
LONG="--steps 200 --checkpoint-every 2"
"$D" train data -o whole.dmm $NET $LONG --shards 2 -q 2>"$err" || not_ok "uninterrupted run" "failed"
mpi_bg 2 train data -o k.dmm $NET $LONG -q 2>"$err"
rank1=
for _ in $(seq 6000); do # the first checkpoint, then rank 1 (up to 5 minutes on a loaded machine)
    if [ -f k.dmm.ckpt ]; then
        for p in $(pgrep -P "$bg"); do
            tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' &&
                rank1=$p
        done
        [ -n "$rank1" ] && break
    fi
    sleep 0.05
done
[ -n "$rank1" ] && kill -KILL "$rank1"
wait "$bg"
status=$?
bg=
if [ -n "$rank1" ] && [ "$status" -ne 0 ] && [ ! -f k.dmm ]; then
    ok "killing rank 1 ends the job before its end (status $status, no model written)"
else
    not_ok "killing rank 1 ends the job before its end" "rank 1 pid '${rank1}', status $status"
fi
mpi 2 train data -o k.dmm $NET $LONG --resume -q 2>>"$err" || not_ok "resume after the kill" "failed"
same "the killed job, resumed, ends with the uninterrupted run's weights" k.dmm whole.dmm

# 9: SIGTERM to mpirun: every process stops at one step, rank 0 saves, resume finishes. A
# longer run than the others: mpirun may take a second to pass the signal on, and 200 steps
# of this network can be over by then.
LONGER="--steps 1000 --checkpoint-every 2"
"$D" train data -o whole9.dmm $NET $LONGER --shards 2 -q 2>"$err" || not_ok "uninterrupted run" "failed"
mpi_bg 2 train data -o s.dmm $NET $LONGER 2>"$err"
for _ in $(seq 6000); do [ -f s.dmm.ckpt ] && break; sleep 0.05; done
kill -TERM "$bg"
wait "$bg"
status=$?
bg=
stopped=$(grep -c 'stopped by SIGTERM' "$err")
mpi 2 train data -o s.dmm $NET $LONGER --resume -q 2>>"$err"
if [ "$stopped" = 1 ] && [ "$status" -ne 0 ] && cmp -s s.dmm whole9.dmm; then
    ok "SIGTERM saves once (status $status); the resumed run ends with the same weights"
else
    not_ok "SIGTERM saves once; resuming ends the same" "status $status, $stopped 'stopped' lines"
fi

# 10: every process refuses a count that cannot share the shards, with one message
mpi 3 train data -o bad.dmm $NET --shards 2 --steps 2 >"$out" 2>"$err"
status=$?
msgs=$(grep -c '3 processes cannot share the 2 shard' "$err")
if [ "$status" -ne 0 ] && [ "$msgs" = 1 ] && [ ! -e bad.dmm ]; then
    ok "3 processes cannot share 2 shards: status $status, one message, nothing written"
else
    not_ok "3 processes cannot share 2 shards" "status $status, $msgs messages"
fi

[ "$fails" -eq 0 ]
