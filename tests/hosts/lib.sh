# Shared by the real-host tests (sourced): TAP output, a scratch directory that is removed
# at exit with the processes started in it, and a tiny model to play.
#   ok STATUS NAME     prints "ok N - NAME" or "not ok N - NAME"
#   started PID        kills PID at exit (TERM, then KILL after 2 s)
#   make_model FILE    a tiny model trained 5 steps on the synthetic set (classes click,
#                      noise, tone; 8 kHz, 512 samples): its clips are noise-like
#   finish             prints the plan; the script's exit status
#   need TOOL...       skips the file when a tool is missing (need_plain_plugin: when the
#                      plugin is built with sanitizers)
build=${DMAUDIO_BUILD_DIR:-build}
build=$(cd "$build" && pwd)
D=${DMAUDIO:-$build/dmaudio}
case $D in /*) ;; *) D=$PWD/$D ;; esac
export LV2_PATH=$build/lv2:/usr/lib/lv2
export LC_ALL=C

n=0
fails=0
ok() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}

finish() {
    echo "1..$n"
    [ $fails -eq 0 ]
}

# need TOOL... -- skips the whole file when one is missing
need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "1..0 # SKIP $tool is not installed"
            exit 0
        fi
    done
}

# need_plain_plugin -- skips the whole file when the plugin is built with sanitizers (make
# check): a host that is not built with them cannot load it
need_plain_plugin() {
    if ldd "$build/lv2/dmaudio.lv2/dmaudio.so" 2>/dev/null | grep -qE 'lib(asan|ubsan|tsan)'; then
        echo "1..0 # SKIP the plugin is built with sanitizers: real hosts cannot load it"
        exit 0
    fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmaudio-host.XXXXXX")
pids=()
started() {
    pids+=("$1")
    disown "$1" 2>/dev/null
}
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

make_model() {
    "$D" synth "$tmp/data" --per-class 4 --rate 8000 --length 512 -q --force >/dev/null 2>&1 &&
        "$D" train "$tmp/data" -o "$1" --preset tiny --steps 5 --batch 4 -q --force >/dev/null 2>&1
}

# peak FILE.wav -- the peak sample, as `dmaudio info` reports it
peak() {
    "$D" info "$1" 2>/dev/null | awk '$1 == "peak" { print $2 }'
}
