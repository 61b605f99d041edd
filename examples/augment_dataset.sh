#!/bin/sh
# Augment a labelled dataset: K variations of every sound under IN_DIR, written to OUT_DIR
# with the same folders (so the labels carry over), listed in OUT_DIR/manifest.csv.
#
#   examples/augment_dataset.sh ~/data/drums ~/data/drums-aug drums.dmm
#
# Stop it whenever you like and run it again: finished files are kept and it continues. The
# files written never depend on how the work was split (jobs, shards) or interrupted.
#
# Settings (environment variables; defaults in brackets):
#   PER_FILE   variations of each sound                            [4]
#   STRENGTH   how far from the source: S, or LO:HI for a range    [0.2:0.5]
#   STEPS      sampler steps for a full denoise                    [the sampler's default]
#   SEED       seed of the whole run                               [1]
#   JOBS       worker threads in each process, each generating its own files  [1]
#   THREADS    threads in all in each process, 0 = all cores (with SHARDS: 1 each) [0]
#   SHARDS     split the files among this many processes, run here side by side,
#              then merge their manifests (as a job array would)   [1]
#   DMAUDIO    the dmaudio command [dmaudio in PATH, else build/dmaudio of this checkout]
#
# On many machines, each process takes one shard: --shard I/N handles the files whose index
# in the sorted list is I mod N, and the N shards together are exactly one run. Ready-made:
# augment_gnu_parallel.sh (GNU parallel, here or over ssh), augment_slurm_array.sbatch (a
# Slurm job array) and augment_mpirun.sh (mpirun, with a hostfile).
#
# A failed or pre-empted shard is simply run again. Each shard writes OUT/manifest-I-of-N.csv;
# when all are done, merge_manifests.sh OUT N makes the manifest one process would have written.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${DMAUDIO:-}" ]; then
    DMAUDIO=$(command -v dmaudio || echo "$here/../build/dmaudio")
fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 IN_DIR OUT_DIR [MODEL.dmm]   (no MODEL: \$DMAUDIO_MODEL or the bundled one)" >&2
    exit 2
fi
in=$1 out=${2%/}
opts="--per-file ${PER_FILE:-4} --strength ${STRENGTH:-0.2:0.5} --seed ${SEED:-1} --jobs ${JOBS:-1}"
[ $# -eq 3 ] && export DMAUDIO_MODEL="$3" # what -m would say, spaces and all
[ -n "${STEPS:-}" ] && opts="$opts --steps $STEPS"
SHARDS=${SHARDS:-1}
if [ "$SHARDS" -le 1 ]; then threads=${THREADS:-0}; else threads=${THREADS:-1}; fi
opts="$opts --threads $threads"

if [ "$SHARDS" -le 1 ]; then
    # shellcheck disable=SC2086
    "$DMAUDIO" augment "$in" -o "$out" $opts
else
    echo "== $SHARDS shards side by side"
    i=0 pids=
    while [ $i -lt "$SHARDS" ]; do
        # shellcheck disable=SC2086
        "$DMAUDIO" augment "$in" -o "$out" $opts -q --shard "$i/$SHARDS" &
        pids="$pids $!"
        i=$((i + 1))
    done
    failed=0
    for p in $pids; do wait "$p" || failed=1; done
    if [ $failed -ne 0 ]; then
        echo "a shard failed (see above); run the script again to finish it" >&2
        exit 1
    fi
    sh "$here/merge_manifests.sh" "$out" "$SHARDS" >/dev/null
fi
echo "== $(($(wc -l <"$out/manifest.csv") - 1)) variations listed in $out/manifest.csv"
