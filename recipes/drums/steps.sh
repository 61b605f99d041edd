#!/bin/sh
# The quality/speed trade-off of a drum model's sampler: for each step count, N clips per class
# (seeds 1000.., batch 8, the default sampler and guidance), the wall time and the Fréchet
# distance to the validation kits (all classes together, and the mean of the per-class ones).
#
#   sh recipes/drums/steps.sh DMAUDIO MODEL DRUMS_DIR OUT_DIR [STEPS...]
#
# N (env, default 20) clips per class; STEPS default "5 10 25 50". Prints one row per step count:
# steps, seconds, clips per second, FD all, mean per-class FD.
set -eu
dm=$1 model=$2 drums=$3 out=$4
shift 4
steps=${*:-5 10 25 50}
N=${N:-20}
classes=$("$dm" info "$model" --json | sed -n 's/.*"classes": *\[\([^]]*\)\].*/\1/p' | tr -d '" ' | tr ',' ' ')
[ -n "$classes" ] || { echo "steps.sh: $model has no classes" >&2; exit 1; }
rate=$("$dm" info "$model" --json | sed -n 's/.*"sample_rate": *\([0-9]*\).*/\1/p')
printf '%6s %9s %9s %9s %13s\n' steps seconds clips/s fd_all fd_class_mean
for s in $steps; do
    d="$out/steps-$s"
    rm -rf "$d"
    start=$(date +%s.%N)
    for c in $classes; do
        mkdir -p "$d/$c"
        "$dm" sample -m "$model" --class "$c" -n "$N" --seed 1000 --steps "$s" -o "$d/$c/$c.wav" --quiet
    done
    end=$(date +%s.%N)
    "$dm" eval "$d" "$drums/valid" --rate "$rate" --quiet > "$d.txt"
    fd=$(awk '$1 == "frechet_distance" { print $2 }' "$d.txt")
    mean=$(awk '$2 == "fd" { s += $3; n++ } END { if (n) print s / n }' "$d.txt")
    n=$(echo $classes | wc -w)
    echo "$s $start $end $n $N $fd $mean" |
        awk '{ t = $3 - $2; printf "%6d %9.1f %9.2f %9.1f %13.1f\n", $1, t, $4 * $5 / t, $6, $7 }'
done
