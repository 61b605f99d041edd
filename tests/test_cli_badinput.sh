#!/usr/bin/env bash
# Bad input, across the subcommands (the per-subcommand tests check their own
# cases in more depth; this one checks that none is left out):
#   - every subcommand that reads audio, on a missing file, an empty file, a
#     text file, a file cut in its header and a file cut in its samples;
#   - every subcommand that reads a model, on a corrupt, a truncated and an
#     empty model, and train --resume on a corrupt checkpoint;
#   - every subcommand that writes, on an existing output (kept without
#     --force), a missing output folder, and a full disk (a 32 KiB tmpfs).
# Each: exit 1, one line on stderr naming the file, no output left behind,
# nothing overwritten. Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_badinput.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cli_tmpdir bad

# fails_cleanly NAME PATTERN COMMAND...: exit 1, stderr one line matching
# PATTERN, and the folder o/ (where every output goes) still empty
fails_cleanly() {
    local name=$1 perr=$2
    shift 2
    rm -rf o && mkdir o
    "$@" >"$out" 2>"$err"
    local got=$? why=
    [ "$got" -eq 1 ] || why="exit status $got, expected 1"
    [ -z "$why" ] && [ "$(wc -l <"$err")" -ne 1 ] && why="$(wc -l <"$err") lines on stderr, expected 1"
    [ -z "$why" ] && ! grep -qE -- "$perr" "$err" && why="stderr lacks /$perr/"
    [ -z "$why" ] && [ -n "$(ls -A o)" ] && why="left in o/: $(ls -A o | head -3 | tr '\n' ' ')"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why"; fi
}

"$D" synth data --per-class 3 --rate 8000 --length 512 -q
"$D" train data -o m.dmm --preset tiny --steps 2 --batch 2 $T -q
good=data/tone/tone_0000.wav
S="-m m.dmm --steps 2 $T -q --seed 1"

# ---- bad audio ----
: >empty.wav
echo "this is not audio" >text.wav
head -c 30 $good >cuthead.wav
head -c 1000 $good >cutdata.wav
declare -A why=([nofile.wav]='No such file' [empty.wav]='empty' [text.wav]='not a sound file'
    [cuthead.wav]='not a sound file' [cutdata.wav]='truncated')
for f in nofile.wav empty.wav text.wav cuthead.wav cutdata.wav; do
    w=${why[$f]}
    fails_cleanly "variation $f" "^dmaudio variation: $f: .*$w" "$D" variation $f -o o/x.wav $S
    fails_cleanly "inpaint $f" "^dmaudio inpaint: $f: .*$w" "$D" inpaint $f --from 0 --to 0.01 -o o/x.wav $S
    fails_cleanly "spectrogram $f" "^dmaudio spectrogram: $f: .*$w" "$D" spectrogram $f -o o/x.png -q
    fails_cleanly "info $f" "^dmaudio info: $f.*$w" "$D" info $f
    # (a file cut in its samples may keep its metadata: the synthetic one has no recipe)
    [ $f = cutdata.wav ] && r="^dmaudio sample: $f: bad recipe" || r="^dmaudio sample: --recipe: $f: .*$w"
    fails_cleanly "sample --recipe $f" "$r" "$D" sample -m m.dmm --recipe $f -o o/x.wav $T -q
    [ $f = nofile.wav ] && continue
    rm -rf set && cp -r data set && cp $f set/tone/
    fails_cleanly "train on a folder holding $f" "^dmaudio train: set/tone/$f: .*$w" \
        "$D" train set -o o/t.dmm --preset tiny --steps 1 $T -q
    fails_cleanly "eval on a folder holding $f" "^dmaudio eval: set/tone/$f: .*$w" "$D" eval set data $T -q
done

# ---- bad models ----
echo "not a model" >garbage.dmm
head -c 3000 m.dmm >truncated.dmm
: >empty.dmm
declare -A mwhy=([garbage.dmm]='bad magic' [truncated.dmm]='truncated' [empty.dmm]='')
for f in garbage.dmm truncated.dmm empty.dmm; do
    w=${mwhy[$f]}
    M="-m $f --steps 2 $T -q --seed 1"
    fails_cleanly "sample -m $f" "^dmaudio sample: $f: $w" "$D" sample $M -o o/x.wav
    fails_cleanly "variation -m $f" "^dmaudio variation: $f: $w" "$D" variation $good $M -o o/x.wav
    fails_cleanly "interpolate -m $f" "^dmaudio interpolate: $f: $w" \
        "$D" interpolate -m $f --seed 1 --seed 2 --frames 2 -o o/x.wav $T -q
    fails_cleanly "inpaint -m $f" "^dmaudio inpaint: $f: $w" "$D" inpaint $good --from 0 --to 0.01 $M -o o/x.wav
    fails_cleanly "augment -m $f" "^dmaudio augment: $f: $w" "$D" augment data -m $f -o o/aug $T -q
    fails_cleanly "info $f" "^dmaudio info: $f" "$D" info $f
    fails_cleanly "eval --elbo $f" "^dmaudio eval: $f: $w" "$D" eval --elbo $f data $T -q
    cp $f o.dmm.ckpt
    fails_cleanly "train --resume from $f" "^dmaudio train: o/../o.dmm.ckpt: $w" \
        "$D" train data -o o/../o.dmm --resume $T -q
    assert "... the checkpoint is untouched, no model written" eval 'cmp -s $f o.dmm.ckpt && [ ! -e o.dmm ]'
    rm -f o.dmm.ckpt
done

# ---- existing outputs: kept without --force ----
mkdir -p keep
# kept NAME FILE COMMAND...: FILE exists before; the command fails naming it and leaves it as it was
kept() {
    local name=$1 file=$2
    shift 2
    echo "precious" >"$file"
    "$@" >"$out" 2>"$err"
    local got=$?
    if [ $got -eq 1 ] && grep -qE "$file exists" "$err" && [ "$(cat "$file")" = precious ] &&
        [ "$(wc -l <"$err")" -eq 1 ]; then
        ok "$name: an existing $file is kept"
    else
        not_ok "$name: an existing $file is kept" "exit status $got"
    fi
}
kept "sample" keep/s.wav "$D" sample $S -o keep/s.wav
kept "sample -n 2 (the second name)" keep/n-002.wav "$D" sample $S -n 2 -o keep/n.wav
kept "variation" keep/v.wav "$D" variation $good $S -o keep/v.wav
kept "interpolate" keep/i-002.wav "$D" interpolate -m m.dmm --seed 1 --seed 2 --frames 2 -o keep/i.wav $T -q
kept "inpaint" keep/p.wav "$D" inpaint $good --from 0 --to 0.01 $S -o keep/p.wav
kept "spectrogram" keep/g.png "$D" spectrogram $good -o keep/g.png -q
kept "train" keep/t.dmm "$D" train data -o keep/t.dmm --preset tiny --steps 1 $T -q
assert "no other file was written in keep/" \
    [ "$(ls -A keep | tr '\n' ' ')" = "g.png i-002.wav n-002.wav p.wav s.wav t.dmm v.wav " ]

# ---- a missing output folder ----
fails_cleanly "sample into a missing folder" '^dmaudio sample: o/no/x.wav: cannot write in the folder o/no' \
    "$D" sample $S -o o/no/x.wav
fails_cleanly "variation into a missing folder" '^dmaudio variation: o/no/x.wav: cannot write' \
    "$D" variation $good $S -o o/no/x.wav
fails_cleanly "interpolate into a missing folder" '^dmaudio interpolate: o/no/x-001.wav: cannot write' \
    "$D" interpolate -m m.dmm --seed 1 --seed 2 --frames 2 -o o/no/x.wav $T -q
fails_cleanly "inpaint into a missing folder" '^dmaudio inpaint: o/no/x.wav: cannot write' \
    "$D" inpaint $good --from 0 --to 0.01 $S -o o/no/x.wav
fails_cleanly "spectrogram into a missing folder" '^dmaudio spectrogram: o/no/x.png' \
    "$D" spectrogram $good -o o/no/x.png -q
fails_cleanly "train into a missing folder" '^dmaudio train: o/no/t.dmm: cannot write in the folder o/no' \
    "$D" train data -o o/no/t.dmm --preset tiny --steps 1 $T -q

# ---- a full disk ----
# Each writer runs in a private mount namespace on a 32 KiB tmpfs that already
# holds old.wav and is then filled; each must exit 1 with a message, keep
# old.wav, and leave no temporary file. (Needs user namespaces.)
if unshare -rm true 2>/dev/null; then
    cp $good old.wav
    mkdir full
    unshare -rm bash -c '
        D=$1 good=$2 T=$3
        mount -t tmpfs -o size=32k tmpfs full || exit 99
        cp old.wav full/old.wav
        head -c 1000000 /dev/zero >full/fill 2>/dev/null
        run() { # run NAME COMMAND...: status, lines of stderr, the old file, temporaries
            local name=$1; shift
            "$@" >/dev/null 2>full.err
            echo "$name $? $(wc -l <full.err) $(cmp -s old.wav full/old.wav && echo kept || echo changed) $(find full -name ".*" | wc -l) $(head -1 full.err)"
        }
        S="-m m.dmm --steps 2 $T -q --seed 1"
        run sample "$D" sample $S -o full/old.wav --force
        run variation "$D" variation "$good" $S -o full/old.wav --force
        run interpolate "$D" interpolate -m m.dmm --seed 1 --seed 2 --frames 2 -o full/i.wav $T -q
        run inpaint "$D" inpaint "$good" --from 0 --to 0.01 $S -o full/old.wav --force
        run spectrogram "$D" spectrogram "$good" -o full/g.png -q
        run train "$D" train data -o full/t.dmm --preset tiny --steps 1 $T -q
        run synth "$D" synth full/syn --per-class 50 --rate 8000 --length 4096 -q
        run augment "$D" augment data -o full/aug -m m.dmm --steps 2 $T -q
        ls -A full | tr "\n" " " >full.ls
        find full -name "*.wav" ! -name old.wav -print0 | xargs -0 -r -n1 "$D" info >/dev/null 2>full.bad || echo bad >>full.bad
    ' bash "$D" "$good" "$T" >full.results
    while read -r name status lines old temps msg; do
        if [ "$status" = 1 ] && [ "$lines" = 1 ] && [ "$old" = kept ] && [ "$temps" = 0 ]; then
            ok "full disk: $name exits 1 with one line ($msg), the old file kept, no temporary file"
        else
            not_ok "full disk: $name" "status $status, $lines lines, old file $old, $temps temporaries: $msg"
        fi
    done <full.results
    assert "full disk: 8 writers ran" [ "$(wc -l <full.results)" -eq 8 ]
    assert "full disk: no model or checkpoint left ($(cat full.ls))" eval '! grep -qE "t\.dmm" full.ls'
    assert "full disk: every WAV that remains is complete" [ ! -s full.bad ]
else
    n=$((n + 1)); echo "ok $n # SKIP no user namespaces for a tmpfs"
fi

cli_done
