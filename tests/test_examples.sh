#!/usr/bin/env bash
# The examples a user copies (examples/), run on tiny inputs with the sizes
# turned down through their environment variables: train_my_sounds.sh (and its
# audition through `dmaudio play`, on an ALSA device that writes to a file),
# render_kit.sh, augment_dataset.sh (one process, and 3 shards merged), the cluster
# scripts (a Slurm job array run by hand, mpirun and GNU parallel when installed, MPI
# training), and the C program examples/generate.c (built by `make examples`).
# Prints TAP. Usage: DMAUDIO=build/dmaudio DMAUDIO_BUILD_DIR=build tests/test_examples.sh
set -u
DMAUDIO=${DMAUDIO:-build/dmaudio}
case $DMAUDIO in /*) ;; *) DMAUDIO=$PWD/$DMAUDIO ;; esac
build=${DMAUDIO_BUILD_DIR:-$(dirname "$DMAUDIO")}
case $build in /*) ;; *) build=$PWD/$build ;; esac
examples=$(cd "$(dirname "${BASH_SOURCE[0]}")/../examples" && pwd)
export DMAUDIO
D=$DMAUDIO
n=0
fails=0
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
tmp=$(mktemp -d "$base/dmaudio-examples.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
out=$tmp/.out err=$tmp/.err
unset DMAUDIO_MODEL DMAUDIO_DEVICE
export THREADS=1 # the examples' setting: one thread is fastest on a busy test machine

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1: $2"
    [ -s "$out" ] && sed 's/^/#   stdout: /' "$out" | tail -5
    [ -s "$err" ] && sed 's/^/#   stderr: /' "$err" | tail -5
    fails=$((fails + 1))
}
check() { # check NAME EXPECTED_STATUS STDOUT_PATTERN STDERR_PATTERN -- COMMAND...
    local name=$1 want=$2 pout=$3 perr=$4
    shift 5
    "$@" >"$out" 2>"$err"
    local got=$? why=
    [ "$got" -eq "$want" ] || why="exit status $got, expected $want"
    [ -z "$why" ] && [ -n "$pout" ] && ! grep -qE -- "$pout" "$out" && why="stdout lacks /$pout/"
    [ -z "$why" ] && [ -n "$perr" ] && ! grep -qE -- "$perr" "$err" && why="stderr lacks /$perr/"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why"; fi
}
assert() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}
json() { # json FILE KEY: a value of `dmaudio info --json FILE`
    "$D" info --json "$1" 2>/dev/null | grep -oE "\"$2\": (\"[^\"]*\"|[-0-9.e+]+|null)" | head -1 |
        sed -E "s/^\"$2\": \"?//; s/\"$//"
}
count() { find "$@" -name '*.wav' | wc -l; }

"$D" synth samples --per-class 6 --rate 8000 --length 512 -q

# ---- train_my_sounds.sh: train, audition, play ----
play=0
if [ -f /usr/share/alsa/alsa.conf ]; then # the audition goes to a file (see test_cli_play.sh)
    printf 'pcm.!default {\n type file\n slave.pcm "null"\n file "%s"\n format "raw"\n}\n' \
        "$tmp/played.raw" >alsa.conf
    export ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:$tmp/alsa.conf
    play=1
fi
mkdir kit
check "train_my_sounds.sh trains and auditions" 0 '== wrote 6 clips to .*kit/audition/' '' -- \
    env PRESET=tiny STEPS=10 RATE=8000 LENGTH=512 BATCH=4 AUDITION=2 PLAY=$play \
    sh "$examples/train_my_sounds.sh" samples kit/drums.dmm
assert "... a model with the folders as classes" grep -qE '^classes +3: click, noise, tone$' "$out"
assert "... 2 clips of each class, at the model's rate" \
    [ "$(count kit/audition)" -eq 6 -a -f kit/audition/tone-001.wav -a "$(json kit/audition/noise-002.wav rate)" = 8000 ]
if [ $play = 1 ]; then
    assert "... played, one after the other (6 x 512 float samples reached the device)" \
        [ "$(wc -c <played.raw)" -eq $((6 * 512 * 4)) ]
else
    n=$((n + 1)); echo "ok $n # SKIP no /usr/share/alsa/alsa.conf"
fi
check "run again: it continues the checkpoint" 0 '== continuing the training of kit/drums.dmm \(to step 20\)' '' -- \
    env STEPS=20 AUDITION=1 PLAY=0 sh "$examples/train_my_sounds.sh" samples kit/drums.dmm
assert "... to step 20" grep -q 'step 20/20' "$err"
check "train_my_sounds.sh without arguments: usage" 2 '' '^usage: ' -- sh "$examples/train_my_sounds.sh"

# ---- render_kit.sh ----
check "render_kit.sh renders one folder per class" 0 'click/: 3 one-shots \(seeds 1..3\)' '' -- \
    env PER_CLASS=3 STEPS=4 RATE=16000 FORMAT=pcm16 sh "$examples/render_kit.sh" kit/drums.dmm out-kit
assert "... 3 x 3 files, numbered" \
    [ "$(count out-kit)" -eq 9 -a -f out-kit/click/click-001.wav -a -f out-kit/tone/tone-003.wav ]
assert "... resampled, 16-bit, with the class and seed in the recipe" \
    [ "$(json out-kit/tone/tone-003.wav rate)/$(json out-kit/tone/tone-003.wav class)/$(json out-kit/tone/tone-003.wav seed)" = 16000/tone/9 \
    -a "$(json out-kit/tone/tone-003.wav format)" = "WAV (Microsoft), Signed 16 bit PCM" ]
"$D" sample -m kit/drums.dmm --recipe out-kit/noise/noise-002.wav -o again.wav -q
assert "... and each file remakes itself from its recipe" cmp -s again.wav out-kit/noise/noise-002.wav

# ---- augment_dataset.sh ----
check "augment_dataset.sh, one process" 0 '== 36 variations listed in one/manifest.csv' '' -- \
    env PER_FILE=2 STEPS=4 STRENGTH=0.25:0.5 sh "$examples/augment_dataset.sh" samples one kit/drums.dmm
assert "... the labels' folders kept" [ "$(count one/tone)" -eq 12 -a -f one/click/click_0005-v02.wav ]
check "augment_dataset.sh, 3 shards side by side" 0 '== 36 variations listed in three/manifest.csv' '' -- \
    env PER_FILE=2 STEPS=4 STRENGTH=0.25:0.5 SHARDS=3 sh "$examples/augment_dataset.sh" samples three kit/drums.dmm
assert "... the shards' merged manifest is the one-process manifest" cmp -s three/manifest.csv one/manifest.csv
assert "... and the same files" \
    [ "$(cd one && find . -name '*.wav' -exec md5sum {} + | sort)" = "$(cd three && find . -name '*.wav' -exec md5sum {} + | sort)" ]

# ---- the cluster scripts: each split gives the one-process files and manifest ----
same_files() { # same_files DIR: the .wav files of one/ and DIR are identical
    [ "$(cd one && find . -name '*.wav' -exec md5sum {} + | sort)" = "$(cd "$1" && find . -name '*.wav' -exec md5sum {} + | sort)" ]
}
AUG="PER_FILE=2 STEPS=4 STRENGTH=0.25:0.5"
for i in 0 1 2; do # the Slurm array's tasks, run by hand, then the merge job
    env $AUG SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 DMAUDIO="$D" \
        bash "$examples/augment_slurm_array.sbatch" samples slurm kit/drums.dmm >"$out" 2>"$err" ||
        not_ok "augment_slurm_array.sbatch task $i" "failed"
done
check "merge_manifests.sh refuses a missing shard" 1 '' 'manifest-0-of-4.csv is missing' -- \
    sh "$examples/merge_manifests.sh" slurm 4
check "augment_slurm_array.sbatch: 3 tasks, then merge_manifests.sh" 0 '== 36 variations' '' -- \
    sh "$examples/merge_manifests.sh" slurm 3
assert "... the one-process manifest and files" eval 'cmp -s slurm/manifest.csv one/manifest.csv && same_files slurm'
check "augment_slurm_array.sbatch outside an array: a message" 1 '' 'not an array task' -- \
    env -u SLURM_ARRAY_TASK_ID bash "$examples/augment_slurm_array.sbatch" samples x kit/drums.dmm
if command -v mpirun >/dev/null; then
    check "augment_mpirun.sh, 2 processes" 0 '== 36 variations listed in mpi/manifest.csv' '' -- \
        env $AUG NP=2 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        MPIRUN="mpirun --oversubscribe" sh "$examples/augment_mpirun.sh" samples mpi kit/drums.dmm
    assert "... the one-process manifest and files" eval 'cmp -s mpi/manifest.csv one/manifest.csv && same_files mpi'
else
    n=$((n + 1)); echo "ok $n # SKIP no mpirun"
    n=$((n + 1)); echo "ok $n # SKIP no mpirun"
fi
if command -v parallel >/dev/null; then
    check "augment_gnu_parallel.sh, 4 shards 2 at a time" 0 '== 36 variations' '' -- \
        env $AUG JOBS=2 SHARDS=4 sh "$examples/augment_gnu_parallel.sh" samples par kit/drums.dmm
    assert "... the one-process manifest and files" eval 'cmp -s par/manifest.csv one/manifest.csv && same_files par'
else
    n=$((n + 1)); echo "ok $n # SKIP no GNU parallel"
    n=$((n + 1)); echo "ok $n # SKIP no GNU parallel"
fi
mpi_dmaudio=$build/tests/dmaudio-mpi # built by make tests when MPI is installed
if command -v mpirun >/dev/null && [ -x "$mpi_dmaudio" ]; then
    check "train_mpirun.sh trains on 2 processes" 0 '' 'done, step 4/4' -- \
        env NP=2 PRESET=tiny STEPS=4 BATCH=4 RATE=8000 CLIP_SECONDS=0.064 THREADS=1 \
        DMAUDIO="$mpi_dmaudio" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        ASAN_OPTIONS=detect_leaks=0 MPIRUN="mpirun --oversubscribe --bind-to none" \
        sh "$examples/train_mpirun.sh" samples mpi.dmm
else
    n=$((n + 1)); echo "ok $n # SKIP no MPI-enabled dmaudio or no mpirun"
fi
check "train_mpirun.sh with a dmaudio without MPI: a message" 1 '' 'built without MPI' -- \
    sh "$examples/train_mpirun.sh" samples x.dmm

# ---- generate.c ----
gen=$build/examples/generate
if [ -x "$gen" ]; then
    check "examples/generate.c writes a clip" 0 '' 'wrote g.wav: 0.064 s at 8000 Hz from model .drums., seed 5' -- \
        "$gen" kit/drums.dmm g.wav 5 tone
    assert "... a WAV at the model's rate and length, titled" \
        [ "$(json g.wav rate)/$(json g.wav frames)/$(json g.wav title)" = "8000/512/made by examples/generate.c" ]
    "$D" sample -m kit/drums.dmm --seed 5 -c tone -o s.wav -q
    assert "... the audio 'dmaudio sample --seed 5 -c tone' makes" \
        [ -n "$(json g.wav audio_crc)" -a "$(json g.wav audio_crc)" = "$(json s.wav audio_crc)" ]
    check "generate: a missing model" 1 '' 'nomodel.dmm' -- "$gen" nomodel.dmm x.wav
    check "generate: usage" 2 '' '^usage: ' -- "$gen"
else
    not_ok "examples/generate.c" "$gen is missing (make examples)"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
