#!/bin/sh
# Train a model on your own sample folder, then listen to what it makes.
#
#   examples/train_my_sounds.sh ~/samples/drums drums.dmm
#
# SAMPLES_DIR holds one sub-folder per kind of sound (kick/, snare/, hat/...), which become
# the model's classes, or just sound files (an unconditional model). Training runs on the
# CPU and can take a while: stop it with Ctrl-C whenever you like (it saves a checkpoint) and
# run the script again to continue where it stopped, or raise STEPS to train further. Then it
# writes a few clips of every class to audition/ beside the model and plays them.
#
# Settings (environment variables; defaults in brackets):
#   PRESET    network size: tiny, small or base                          [small]
#   STEPS     training steps in all (also when continuing)               [3000]
#   RATE      the model's sample rate; sounds at other rates are resampled  [22050]
#   CLIP_SECONDS  clip length in seconds (LENGTH=samples instead)        [0.5]
#   BATCH     clips per training step                                    [16]
#   MAX_TIME  stop training after this many seconds, and audition anyway [no limit]
#   AUDITION  clips per class to write and play                          [2]
#   PLAY      1: play them (dmaudio play; DEVICE=name or index), 0: only write them  [1]
#   THREADS   threads to use, 0 = all cores                              [0]
#   DMAUDIO   the dmaudio command [dmaudio in PATH, else build/dmaudio of this checkout]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${DMAUDIO:-}" ]; then
    DMAUDIO=$(command -v dmaudio || echo "$here/../build/dmaudio")
fi
if [ $# -ne 2 ]; then
    echo "usage: $0 SAMPLES_DIR MODEL.dmm" >&2
    exit 2
fi
samples=$1 model=$2
PRESET=${PRESET:-small} STEPS=${STEPS:-3000} RATE=${RATE:-22050} CLIP_SECONDS=${CLIP_SECONDS:-0.5}
BATCH=${BATCH:-16} AUDITION=${AUDITION:-2} PLAY=${PLAY:-1} THREADS=${THREADS:-0}

# 1. train, or continue the run a checkpoint holds
limit=
[ -n "${MAX_TIME:-}" ] && limit="--max-time $MAX_TIME"
if [ -f "$model.ckpt" ]; then
    echo "== continuing the training of $model (to step $STEPS)"
    # shellcheck disable=SC2086
    "$DMAUDIO" train "$samples" -o "$model" --resume --steps "$STEPS" --threads "$THREADS" $limit
else
    echo "== training $model on $samples"
    if [ -n "${LENGTH:-}" ]; then size="--length $LENGTH"; else size="--seconds $CLIP_SECONDS"; fi
    # shellcheck disable=SC2086
    "$DMAUDIO" train "$samples" -o "$model" --preset "$PRESET" --steps "$STEPS" \
        --rate "$RATE" $size --batch "$BATCH" --threads "$THREADS" $limit
fi
"$DMAUDIO" info "$model"

# 2. audition: a few clips of every class (sampling is deterministic: seed 1, 2, ...)
dir=$(dirname "$model")/audition
mkdir -p "$dir"
classes=$("$DMAUDIO" info --json "$model" |
    sed -n 's/.*"classes": \[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ')
set --
if [ -z "$classes" ]; then
    "$DMAUDIO" sample -m "$model" -n "$AUDITION" --seed 1 -o "$dir/clip.wav" --force -q \
        --threads "$THREADS"
    set -- "$dir"/clip*.wav
else
    for c in $classes; do
        "$DMAUDIO" sample -m "$model" -c "$c" -n "$AUDITION" --seed 1 -o "$dir/$c.wav" --force -q \
            --threads "$THREADS"
        set -- "$@" "$dir/$c"*.wav
    done
fi
echo "== wrote $# clips to $dir/"

# 3. listen
if [ "$PLAY" = 1 ]; then
    echo "== playing them (Ctrl-C stops)"
    "$DMAUDIO" play ${DEVICE:+--device "$DEVICE"} "$@"
fi
