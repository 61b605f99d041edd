#!/bin/sh
# Augment a labelled dataset with mpirun: each of NP processes (on this machine, or on the
# machines of a hostfile) takes one shard, then the shards' manifests are merged. dmaudio
# augment needs no MPI library: mpirun is only the launcher, and each process reads its
# rank from the environment (Open MPI: OMPI_COMM_WORLD_RANK / _SIZE; MPICH and Slurm's PMI:
# PMI_RANK / PMI_SIZE).
#
#   examples/augment_mpirun.sh ~/data/drums ~/data/drums-aug drums.dmm
#   NP=64 HOSTFILE=hosts examples/augment_mpirun.sh ~/data/drums ~/data/drums-aug drums.dmm
#
# A hostfile lists the machines and their slots, one per line ("node1 slots=16"); every
# machine must see IN_DIR, OUT_DIR and the model at the same paths. The files written do not
# depend on NP; if a process fails, run the script again: every shard keeps what it wrote.
#
# Settings (environment variables; defaults in brackets):
#   NP        processes (shards)                                    [the number of cores]
#   HOSTFILE  mpirun --hostfile                                     [this machine only]
#   MPIRUN    the launcher and its options (e.g. "mpirun --oversubscribe") [mpirun]
#   PER_FILE, STRENGTH, STEPS, SEED: as in augment_dataset.sh       [4, 0.2:0.5, -, 1]
#   DMAUDIO   the dmaudio command [dmaudio in PATH, else build/dmaudio of this checkout]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${DMAUDIO:-}" ]; then
    DMAUDIO=$(command -v dmaudio || echo "$here/../build/dmaudio")
fi
if [ $# -ne 3 ]; then
    echo "usage: $0 IN_DIR OUT_DIR MODEL.dmm" >&2
    exit 2
fi
in=$1 out=${2%/} model=$3
NP=${NP:-$(nproc)}
MPIRUN=${MPIRUN:-mpirun}
hosts=
[ -n "${HOSTFILE:-}" ] && hosts="--hostfile $HOSTFILE"
opts="--per-file ${PER_FILE:-4} --strength ${STRENGTH:-0.2:0.5} --seed ${SEED:-1}"
[ -n "${STEPS:-}" ] && opts="$opts --steps $STEPS"

# Each process: its shard from its rank. The paths travel as positional parameters ($1..$4)
# so that spaces survive.
# shellcheck disable=SC2016,SC2086
$MPIRUN -np "$NP" $hosts sh -c '
    rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-${SLURM_PROCID:-0}}}
    size=${OMPI_COMM_WORLD_SIZE:-${PMI_SIZE:-${SLURM_NTASKS:-1}}}
    exec "$1" augment "$2" -o "$3" -m "$4" '"$opts"' --threads 1 -q --shard "$rank/$size"
' sh "$DMAUDIO" "$in" "$out" "$model"

sh "$here/merge_manifests.sh" "$out" "$NP"
