#!/usr/bin/env bash
# Replays every fuzz corpus file through its libFuzzer target, once: each
# tests/fuzz/corpus/NAME/* through tests/fuzz/fuzz_NAME.c, built with clang under
# ASan + UBSan into $DMAUDIO_BUILD_DIR/fuzz/ (by `make fuzz-bins`). The corpus holds
# valid files, broken ones and every crash the fuzzer has found, so this is the
# parsers' regression test. Prints TAP, one line per file; skips the whole file when
# clang cannot build a libFuzzer binary (`make deps` installs clang and its runtime).
# Usage: DMAUDIO_BUILD_DIR=build tests/test_fuzz_replay.sh
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
build=${DMAUDIO_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
cc=${FUZZ_CC:-clang}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmaudio-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "1..0 # SKIP $cc not found (make deps installs clang)"
    exit 0
fi
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    > "$tmp/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
    echo "1..0 # SKIP $cc cannot link -fsanitize=fuzzer (make deps installs libclang-rt-14-dev)"
    exit 0
fi

# leaks inside the system's codec libraries that no caller can free (see the file)
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0

n=0
fails=0
if ! make --no-print-directory BUILD="$build" FUZZ_CC="$cc" fuzz-bins > "$tmp/build.log" 2>&1; then
    echo "not ok 1 - build the fuzz targets"
    tail -30 "$tmp/build.log" | sed 's/^/#   /'
    echo "1..1"
    exit 1
fi

shopt -s nullglob
for src in tests/fuzz/fuzz_*.c; do
    target=$(basename "$src" .c)
    name=${target#fuzz_}
    bin=$build/fuzz/$target
    files=(tests/fuzz/corpus/"$name"/*)
    if [ "${#files[@]}" -eq 0 ]; then
        n=$((n + 1))
        fails=$((fails + 1))
        echo "not ok $n - $target has no corpus in tests/fuzz/corpus/$name/"
        continue
    fi
    for f in "${files[@]}"; do
        n=$((n + 1))
        if "$bin" "$f" > "$tmp/run.log" 2>&1; then
            echo "ok $n - $target ${f#tests/fuzz/corpus/}"
        else
            fails=$((fails + 1))
            echo "not ok $n - $target ${f#tests/fuzz/corpus/}"
            grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ ' "$tmp/run.log" | head -20 | sed 's/^/#   /'
        fi
    done
done

echo "1..$n"
[ "$fails" -eq 0 ]
