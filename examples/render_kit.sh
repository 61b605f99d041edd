#!/bin/sh
# Render a kit: N one-shots of every class of a model, one folder per class, ready to drop
# into a sampler or a DAW.
#
#   examples/render_kit.sh drums.dmm my-kit/         # my-kit/kick/kick-001.wav ... my-kit/snare/...
#   PER_CLASS=16 RATE=48000 examples/render_kit.sh drums.dmm kit48k/
#
# Every file carries its recipe (model, seed, sampler...): `dmaudio sample --recipe FILE` makes
# it again bit for bit, and `dmaudio variation FILE` varies the one you like. The same settings
# render the same kit; change SEED for another one.
#
# Settings (environment variables; defaults in brackets):
#   PER_CLASS  one-shots per class                                [8]
#   SEED       the kit's seed: class k, clip i gets SEED + k * PER_CLASS + i   [1]
#   STEPS      sampler steps                                      [the sampler's default]
#   SAMPLER    ddpm, ddim, dpmpp-2m, euler or heun                [dpmpp-2m]
#   GUIDANCE   classifier-free guidance, 1 = none                 [2]
#   RATE       sample rate of the files                           [the model's]
#   LENGTH     seconds per one-shot, cut with a short fade        [the model's clip length]
#   FORMAT     pcm16, pcm24 or float                              [pcm24]
#   THREADS    threads to use, 0 = all cores                      [0]
#   DMAUDIO    the dmaudio command [dmaudio in PATH, else build/dmaudio of this checkout]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${DMAUDIO:-}" ]; then
    DMAUDIO=$(command -v dmaudio || echo "$here/../build/dmaudio")
fi
if [ $# -ne 2 ]; then
    echo "usage: $0 MODEL.dmm OUT_DIR" >&2
    exit 2
fi
model=$1 out=${2%/}
PER_CLASS=${PER_CLASS:-8} SEED=${SEED:-1}
opts="--format ${FORMAT:-pcm24} --threads ${THREADS:-0}"
[ -n "${STEPS:-}" ] && opts="$opts --steps $STEPS"
[ -n "${SAMPLER:-}" ] && opts="$opts --sampler $SAMPLER"
[ -n "${GUIDANCE:-}" ] && opts="$opts --guidance $GUIDANCE"
[ -n "${RATE:-}" ] && opts="$opts --rate $RATE"
[ -n "${LENGTH:-}" ] && opts="$opts --length $LENGTH"

classes=$("$DMAUDIO" info --json "$model" |
    sed -n 's/.*"classes": \[\([^]]*\)\].*/\1/p' | tr -d '"' | tr ',' ' ')
mkdir -p "$out"
k=0
for c in ${classes:-_}; do
    seed=$((SEED + k * PER_CLASS))
    if [ "$c" = _ ]; then # an unconditional model: one folder of clips
        dir=$out name=clip class=
    else
        dir=$out/$c name=$c class="--class $c"
    fi
    mkdir -p "$dir"
    # -n > 1 numbers the files: NAME-001.wav ...; the seeds are seed, seed + 1, ...
    # shellcheck disable=SC2086
    "$DMAUDIO" sample -m "$model" $class -n "$PER_CLASS" --seed "$seed" $opts \
        -o "$dir/$name.wav" --force -q
    echo "$dir/: $PER_CLASS one-shots (seeds $seed..$((seed + PER_CLASS - 1)))"
    k=$((k + 1))
done
