#!/bin/sh
# Evaluates a drum model against the validation kits (`make model` runs it; the model card
# quotes its figures).
#
#   sh recipes/drums/evaluate.sh DMAUDIO MODEL DRUMS_DIR OUT_PREFIX
#
# With N clips per class (env N, default 200; seeds 1000.. of `dmaudio sample`, its default
# sampler and guidance), it writes OUT_PREFIX.gen/CLASS/*.wav and:
#   OUT_PREFIX.valid.txt   generated vs the validation kits: Fréchet distance, KID per class
#   OUT_PREFIX.floor.txt   the training kits vs the validation kits: the floor a model of the
#                           training data can hope for
#   OUT_PREFIX.noise.txt   white noise vs the validation kits: the ceiling
#   OUT_PREFIX.train.txt   generated vs the training kits: memorisation (nearest-neighbour
#                           distances) and classification by a 5-NN classifier fitted on them
#   OUT_PREFIX.elbo.txt    the model's variational bound on the validation kits (bits/sample)
# and prints a table. Needs tools/drumkits (for the noise) next to DMAUDIO's build.
set -eu
dm=$1 model=$2 drums=$3 out=$4
N=${N:-200}
tools=$(dirname "$dm")/tools

rate=$("$dm" info "$model" --json | sed -n 's/.*"sample_rate": *\([0-9]*\).*/\1/p')
length=$("$dm" info "$model" --json | sed -n 's/.*"length": *\([0-9]*\).*/\1/p')
classes=$("$dm" info "$model" --json | sed -n 's/.*"classes": *\[\([^]]*\)\].*/\1/p' | tr -d '" ' | tr ',' ' ')
[ -n "$classes" ] || { echo "evaluate.sh: $model has no classes" >&2; exit 1; }

rm -rf "$out.gen" "$out.noise"
for c in $classes; do
    mkdir -p "$out.gen/$c"
    echo "evaluate: sampling $N clips of $c"
    "$dm" sample -m "$model" --class "$c" -n "$N" --seed 1000 -o "$out.gen/$c/$c.wav" --quiet
done
"$tools/drumkits" --noise 50 --rate "$rate" --length "$length" -o "$out.noise" --quiet

"$dm" eval "$out.gen" "$drums/valid" --rate "$rate" --quiet > "$out.valid.txt"
"$dm" eval "$drums/train" "$drums/valid" --rate "$rate" --quiet > "$out.floor.txt"
"$dm" eval "$out.noise" "$drums/valid" --rate "$rate" --quiet > "$out.noise.txt"
"$dm" eval "$out.gen" "$drums/train" --rate "$rate" --quiet > "$out.train.txt"
"$dm" eval --elbo "$model" "$drums/valid" --quiet > "$out.elbo.txt" 2>&1 ||
    echo "evaluate: no ELBO: $(cat "$out.elbo.txt")"
rm -rf "$out.noise"

# the table: one row per class, from the per-class lines of eval's text output
fig() { # FILE CLASS KEY -> the word after KEY on CLASS's line
    awk -v c="$2" -v k="$3" '$1 == c && $2 == "fd" { for (i = 2; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$1" | tr -d '%'
}
printf '%-12s %10s %10s %10s %8s %11s %8s\n' class fd_gen fd_floor fd_noise gen/floor classified closer
for c in $classes; do
    g=$(fig "$out.valid.txt" "$c" fd)
    f=$(fig "$out.floor.txt" "$c" fd)
    n=$(fig "$out.noise.txt" "$c" fd)
    k=$(fig "$out.train.txt" "$c" classified)
    m=$(fig "$out.train.txt" "$c" closer)
    printf '%-12s %10.4g %10.4g %10.4g %8.2f %10s%% %7s%%\n' "$c" "$g" "$f" "$n" \
        "$(echo "$g $f" | awk '{ print ($2 > 0 ? $1 / $2 : 0) }')" "$k" "$m"
done
grep '^classified' "$out.train.txt" || true
grep -i 'bits' "$out.elbo.txt" | head -n 2 || true
echo "evaluate: figures in $out.{valid,floor,noise,train,elbo}.txt"
