#!/bin/sh
# Augment a labelled dataset with GNU parallel: the files are split into SHARDS shards
# (`dmaudio augment --shard I/N`), GNU parallel runs them JOBS at a time, here or on the
# machines of a --sshloginfile, then the shards' manifests are merged.
#
#   examples/augment_gnu_parallel.sh ~/data/drums ~/data/drums-aug drums.dmm
#
# The files written do not depend on the split: SHARDS=1, 8 or 64 give the same files and
# the same manifest. A shard that fails (or a machine that goes away) is simply run again:
# run the script again and every shard skips what it already wrote (GNU parallel's --retries
# does it for you). Apt package: parallel.
#
# Settings (environment variables; defaults in brackets):
#   SHARDS     how many pieces to cut the work into                    [4 x JOBS]
#   JOBS       shards running at once (on each machine)                [the number of cores]
#   SSHLOGINS  a GNU parallel --sshloginfile: run on these machines too (they must see IN_DIR,
#              OUT_DIR and the model at the same paths, e.g. over NFS)  [this machine only]
#   PER_FILE, STRENGTH, STEPS, SEED: as in augment_dataset.sh           [4, 0.2:0.5, -, 1]
#   DMAUDIO    the dmaudio command [dmaudio in PATH, else build/dmaudio of this checkout]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${DMAUDIO:-}" ]; then
    DMAUDIO=$(command -v dmaudio || echo "$here/../build/dmaudio")
fi
if [ $# -ne 3 ]; then
    echo "usage: $0 IN_DIR OUT_DIR MODEL.dmm" >&2
    exit 2
fi
if ! command -v parallel >/dev/null; then
    echo "$0: GNU parallel is not installed (apt-get install parallel)" >&2
    exit 1
fi
in=$1 out=${2%/} model=$3
JOBS=${JOBS:-$(nproc)}
SHARDS=${SHARDS:-$((4 * JOBS))}
opts="-m $model --per-file ${PER_FILE:-4} --strength ${STRENGTH:-0.2:0.5} --seed ${SEED:-1}"
[ -n "${STEPS:-}" ] && opts="$opts --steps $STEPS"
where=
[ -n "${SSHLOGINS:-}" ] && where="--sshloginfile $SSHLOGINS"

# One process per shard, one thread each: JOBS of them keep JOBS cores busy. {} is the
# shard's index; --halt now,fail=1 stops at the first failure, --retries 2 retries a shard.
# shellcheck disable=SC2086
seq 0 $((SHARDS - 1)) | parallel -j "$JOBS" $where --retries 2 --halt now,fail=1 \
    "$DMAUDIO" augment "$in" -o "$out" $opts --threads 1 -q --shard "{}/$SHARDS"

sh "$here/merge_manifests.sh" "$out" "$SHARDS"
