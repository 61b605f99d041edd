#!/bin/sh
# Train a model on several processes or machines with MPI (a dmaudio built with make MPI=1).
#
#   examples/train_mpirun.sh ~/samples/drums drums.dmm                 # this machine
#   NP=8 HOSTFILE=hosts examples/train_mpirun.sh ~/samples/drums drums.dmm
#
# Every process computes the gradient of its share of each batch (BATCH / NP clips), the
# gradients are summed, and all processes take the same step: the weights stay identical,
# and are bitwise those one process trains with --shards NP (NP a power of two). Rank 0 prints
# the progress and writes the model and the checkpoint; every process reads SAMPLES_DIR and,
# to continue, the checkpoint, so they must be at the same path on every machine (NFS...).
# Stop it whenever you like (Ctrl-C, or kill mpirun: the processes save and stop together)
# and run it again: it continues the checkpoint, on any NP that divides its shards.
#
# A hostfile lists the machines and how many processes each takes:
#     node1 slots=2
#     node2 slots=2
# One process per machine (or per socket) with THREADS threads each is usually fastest:
# OpenMP then uses the cores, and the only traffic is one gradient sum per step.
#
# Settings (environment variables; defaults in brackets):
#   NP        processes                                           [2]
#   HOSTFILE  mpirun --hostfile                                   [this machine only]
#   MPIRUN    the launcher and its options                        [mpirun --bind-to none]
#   PRESET, STEPS, BATCH, RATE, CLIP_SECONDS as in train_my_sounds.sh  [small, 3000, 16, 22050, 0.5]
#   THREADS   threads of each process, 0 = the machine's cores / its processes  [0]
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
if ! "$DMAUDIO" version | grep -q '^data-parallel training:'; then
    echo "$0: $DMAUDIO is built without MPI (rebuild with make MPI=1)" >&2
    exit 1
fi
samples=$1 model=$2
NP=${NP:-2}
MPIRUN=${MPIRUN:-mpirun --bind-to none}
hosts=
[ -n "${HOSTFILE:-}" ] && hosts="--hostfile $HOSTFILE"
resume=
if [ -f "$model.ckpt" ]; then
    echo "== continuing the training of $model on $NP processes"
    resume=--resume
fi
# --bind-to none: by default Open MPI binds each process to one core (to one socket above 2
# processes), which would confine its OpenMP threads there.
# shellcheck disable=SC2086
$MPIRUN -np "$NP" $hosts "$DMAUDIO" train "$samples" -o "$model" $resume \
    --preset "${PRESET:-small}" --steps "${STEPS:-3000}" --batch "${BATCH:-16}" \
    --rate "${RATE:-22050}" --seconds "${CLIP_SECONDS:-0.5}" --threads "${THREADS:-0}"
