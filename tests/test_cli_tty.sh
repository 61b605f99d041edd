#!/usr/bin/env bash
# Progress display on a terminal and off it. Every long operation (sample,
# variation, interpolate, inpaint, augment, train, eval) draws a progress bar
# ("\rLABEL  [###   ]  i/n  ETA m:ss") on stderr when stderr is a terminal, and
# nothing of the kind when it is a file or a pipe, or with --quiet; train shows
# one self-rewriting line (step, loss, samples/s, ETA) on a terminal and plain
# periodic lines otherwise. The terminal is a pseudo-terminal from script(1).
# Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_tty.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
if ! command -v script >/dev/null || ! script -qec true /dev/null </dev/null >/dev/null 2>&1; then
    echo "1..0 # SKIP no script(1) or no pseudo-terminal (Debian: bsdutils)"
    exit 0
fi
cli_tmpdir tty

# on_tty LOG COMMAND...: runs it with stdin, stdout and stderr on a terminal;
# everything it printed goes to LOG; returns its exit status
on_tty() {
    local log=$1
    shift
    script -qec "$(printf '%q ' "$@")" /dev/null </dev/null >"$log"
}
bar() { grep -qaE $'\r'"($2)  \\[[# ]{30}\\]  [0-9]+/[0-9]+  ETA [0-9]+:[0-9]{2}" "$1"; }
# a carriage return that does not end a line (the terminal ends lines with \r\n)
lone_cr() { sed $'s/\r$//' "$1" | grep -qa $'\r'; }
# tty_case NAME LABEL COMMAND...: a bar on a terminal; none with --quiet on a
# terminal; none (and no carriage return) when stderr is a file
tty_case() {
    local name=$1 label=$2
    shift 2
    rm -rf o.wav o-*.wav o.png aug
    if on_tty t.log "$@" && bar t.log "$label"; then ok "$name: a progress bar on a terminal"
    else not_ok "$name: a progress bar on a terminal" "$(tr '\r' '\n' <t.log | tail -3)"; fi
    rm -rf o.wav o-*.wav aug
    if on_tty q.log "$@" --quiet && ! lone_cr q.log && ! grep -qaF '[#' q.log; then
        ok "$name --quiet: no bar on a terminal"
    else not_ok "$name --quiet: no bar on a terminal" "$(head -c 300 q.log)"; fi
    rm -rf o.wav o-*.wav aug
    if "$@" >f.out 2>f.err && ! lone_cr f.err && ! grep -qaF '[#' f.err; then
        ok "$name: no bar when stderr is a file"
    else not_ok "$name: no bar when stderr is a file" "$(head -c 300 f.err)"; fi
}

"$D" synth data --per-class 6 --rate 8000 --length 512 -q
"$D" train data -o m.dmm --preset tiny --steps 2 --batch 2 $T -q
in=data/tone/tone_0000.wav
S="-m m.dmm $T --seed 1"

tty_case "sample -n 3 --steps 20" sampling "$D" sample $S -n 3 --steps 20 -o o.wav
tty_case "variation" variation "$D" variation "$in" $S --strength 1 --steps 20 -o o.wav
tty_case "interpolate" interpolate "$D" interpolate -m m.dmm $T --seed 1 --seed 2 --frames 3 --steps 10 -o o.wav
tty_case "inpaint" inpaint "$D" inpaint "$in" $S --from 0.01 --to 0.03 --steps 20 -o o.wav
tty_case "augment" augmenting "$D" augment data -o aug -m m.dmm $T -k 1 --steps 4
tty_case "eval" 'loading GEN|loading REF' "$D" eval data data $T
tty_case "eval --elbo" elbo "$D" eval --elbo m.dmm data --timesteps 4 $T
tty_case "train (loading the data)" loading "$D" train data -o t.dmm --preset tiny --steps 3 --batch 2 $T --force

# train: one line rewritten in place on a terminal, plain lines otherwise
on_tty t.log "$D" train data -o t.dmm --preset tiny --steps 3 --batch 2 $T --force
if grep -qaE $'\r''step 3/3  loss [0-9.]+  [0-9.]+ samples/s  ETA [0-9]+:[0-9]{2}' t.log &&
    ! grep -qa '^dmaudio train: step ' t.log; then
    ok "train on a terminal: step, loss, samples/s and ETA on one rewritten line"
else
    not_ok "train on a terminal: one rewritten line" "$(tr '\r' '\n' <t.log | tail -3)"
fi
"$D" train data -o t.dmm --preset tiny --steps 3 --batch 2 $T --force 2>t.err
if [ "$(grep -cE '^dmaudio train: step [0-9]/3  loss [0-9.]+  [0-9.]+ samples/s  ETA [0-9]+:[0-9]{2}$' t.err)" -ge 1 ] &&
    ! grep -qa $'\r' t.err; then
    ok "train off a terminal: plain lines, no carriage return"
else
    not_ok "train off a terminal: plain lines" "$(head -5 t.err)"
fi

cli_done
