#!/bin/sh
# Merge the manifests of N augment shards into the manifest one process would have written.
#
#   examples/merge_manifests.sh OUT_DIR N
#
# `dmaudio augment --shard I/N` writes OUT_DIR/manifest-I-of-N.csv. Once all N shards have
# finished, this writes OUT_DIR/manifest.csv: one header, then every line once, sorted
# bytewise (LC_ALL=C), exactly as an unsharded run sorts it. It refuses to merge while a
# shard's manifest is missing (that shard has not run, or is still running: run it again).
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 OUT_DIR N" >&2
    exit 2
fi
out=${1%/} n=$2
i=0
while [ "$i" -lt "$n" ]; do
    if [ ! -f "$out/manifest-$i-of-$n.csv" ]; then
        echo "$0: $out/manifest-$i-of-$n.csv is missing: shard $i/$n has not finished" >&2
        exit 1
    fi
    i=$((i + 1))
done
(
    head -n 1 "$out/manifest-0-of-$n.csv"
    i=0
    while [ "$i" -lt "$n" ]; do
        tail -n +2 "$out/manifest-$i-of-$n.csv"
        i=$((i + 1))
    done | LC_ALL=C sort -u
) >"$out/manifest.csv.tmp"
mv "$out/manifest.csv.tmp" "$out/manifest.csv"
echo "== $(($(wc -l <"$out/manifest.csv") - 1)) variations listed in $out/manifest.csv"
