#!/usr/bin/env bash
# `dmaudio augment` end to end, on a tiny model (`synth` + `train --preset tiny`)
# and a folder of 200 short files: what is written (folders, names, rate,
# length, recipe, manifest), and that the result is one and the same whether
# the run is uninterrupted, stopped by SIGINT and then SIGKILL and restarted,
# split in 3 shards, or run with 2 jobs. Then bad input: exit status, message,
# nothing half-written.
# Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_augment.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
# Every output is fsync'd (file, folder, manifest line): without a TMPDIR of its
# own choosing, the test runs in memory when it can, 2-3 times faster.
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
cli_tmpdir augment "$base"
bg=
# the options of every run below: 2 variations a file, 4 sampler steps
A="-m m.dmm -k 2 --steps 4 $T"

# every file under DIR (hidden ones too) with its MD5, by relative path
sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum); }
wavs() { find "$1" -name '*.wav' | wc -l; }
same_as_ref() { sums "$1" | cmp -s - ref.sums; }
same_wavs_as_ref() { # the .wav files only
    (cd "$1" && find . -type f -name '*.wav' -print0 | LC_ALL=C sort -z | xargs -0 md5sum) |
        cmp -s - <(grep '\.wav$' ref.sums)
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# wait_lines FILE N: until FILE has at least N lines (at most 60 s)
wait_lines() {
    for _ in $(seq 3000); do
        [ "$(lines "$1")" -ge "$2" ] && return 0
        kill -0 "$bg" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}

# ---- a tiny model and 200 sources ----
"$D" synth data --per-class 8 --rate 8000 --length 512 -q &&
    "$D" train data -o m.dmm --preset tiny --steps 10 --batch 4 $T -q
assert "a tiny class-conditional model (synth + train --preset tiny)" [ -s m.dmm ]
# in/: 60 files in each of the model's classes, 19 in a folder that is not a
# class (+ one with an upper-case extension), 1 at the top; and what is skipped
"$D" synth in --per-class 60 --rate 8000 --length 400 --seed 2 -q
mkdir -p in/misc
for i in $(seq 10 28); do cp in/tone/tone_00$i.wav in/misc/copy_$i.wav; done
mv in/misc/copy_28.wav in/misc/UPPER.WAV
cp in/noise/noise_0001.wav in/loose.wav
cp in/click/click_0001.wav in/.hidden.wav
mkdir in/.git && cp in/click/click_0002.wav in/.git/x.wav
echo "not audio" >in/notes.txt
assert "200 source files" [ "$(find in -iname '*.wav' -not -path '*/.*' | wc -l)" -eq 200 ]

# ---- one uninterrupted run: the reference ----
start=$(date +%s.%N)
check "augment: 200 files x 2 variations" 0 '' 'wrote 400 outputs \(0 were already there\)' -- \
    "$D" augment in -o ref $A
secs=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
assert "400 outputs (took ${secs}s)" [ "$(wavs ref)" -eq 400 ]
assert "folders kept, names <stem>-vNN.wav" \
    [ -f ref/tone/tone_0000-v01.wav -a -f ref/tone/tone_0000-v02.wav -a -f ref/misc/copy_10-v02.wav \
    -a -f ref/misc/UPPER-v01.wav -a -f ref/loose-v01.wav -a ! -e ref/tone/tone_0000-v03.wav ]
assert "hidden files and folders, and non-audio files, are skipped" \
    [ ! -e ref/.hidden-v01.wav -a ! -e ref/.git -a ! -e ref/notes-v01.wav ]
assert "outputs: the model's rate and length (8000 Hz, 512 frames), mono, not silent" \
    [ "$(json ref/noise/noise_0007-v02.wav rate)/$(json ref/noise/noise_0007-v02.wav frames)/$(json ref/noise/noise_0007-v02.wav channels)" = 8000/512/1 \
    -a "$(awk -v p="$(json ref/noise/noise_0007-v02.wav peak)" 'BEGIN { print (p > 0.01) }')" = 1 ]
assert "recipe: mode variation, the class of the folder, strength 0.3" \
    [ "$(json ref/click/click_0003-v01.wav mode)/$(json ref/click/click_0003-v01.wav class)" = variation/click \
    -a "$(awk -v s="$(json ref/click/click_0003-v01.wav strength)" 'BEGIN { print (s == 0.3) }')" = 1 ]
assert "recipe: a folder that is not a class -> no class" \
    [ "$(json ref/misc/copy_12-v01.wav class)" = null -o "$(json ref/misc/copy_12-v01.wav class)" = - ]
m=ref/manifest.csv
assert "manifest: header + 400 lines" \
    [ "$(head -1 $m)" = "source,output,seed,strength,model" -a "$(lines $m)" -eq 401 ]
assert "manifest: sorted (LC_ALL=C sort), no duplicate" \
    sh -c 'tail -n +2 "$1" | LC_ALL=C sort -c -u' sh $m
line=$(grep -F ',tone/tone_0005-v02.wav,' $m)
assert "manifest: source, output, seed, strength, model ($line)" \
    [ "$(echo "$line" | cut -d, -f1,2,4,5)" = "tone/tone_0005.wav,tone/tone_0005-v02.wav,0.3,m" ]
assert "manifest: the seed is the one in the file's recipe" \
    [ "$(echo "$line" | cut -d, -f3)" = "$(json ref/tone/tone_0005-v02.wav seed)" ]
assert "every manifest line names an output that exists" \
    sh -c 'tail -n +2 "$1" | cut -d, -f2 | while read -r o; do [ -f "ref/$o" ] || exit 1; done' sh $m
assert "same content, other path (misc/copy_15 = tone/tone_0015) -> other seeds, other audio" \
    [ "$(json ref/misc/copy_15-v01.wav audio_crc)" != "$(json ref/tone/tone_0015-v01.wav audio_crc)" ]
sums ref >ref.sums
if "$D" help variation >/dev/null 2>&1; then
    "$D" variation in/tone/tone_0005.wav -o remade.wav -m m.dmm -c tone --strength 0.3 --steps 4 \
        --seed "$(echo "$line" | cut -d, -f3)" $T -q
    assert "an output is 'dmaudio variation SOURCE --seed SEED --strength S --class C' (the manifest's)" \
        [ -n "$(json remade.wav audio_crc)" -a "$(json remade.wav audio_crc)" = "$(json ref/tone/tone_0005-v02.wav audio_crc)" ]
else
    n=$((n + 1)); echo "ok $n # SKIP no 'dmaudio variation' in this build"
fi

check "a rerun finds everything done" 0 '' 'wrote 0 outputs \(400 were already there\)' -- \
    "$D" augment in -o ref $A
assert "... and changes nothing" same_as_ref ref
check "a rerun with another seed refuses to mix two runs" 1 '' \
    'ref/click/click_0000-v01.wav exists but was made with another seed' -- "$D" augment in -o ref $A --seed 2
check "--json: one object per output" 0 '^\{"source": "in/click/click_0000.wav", "output": "ref/click/click_0000-v01.wav", "seed": [0-9]+, "strength": 0.3, "class": "click", "status": "exists"\}$' '' -- \
    "$D" augment in -o ref $A --json -q
assert "--json: 400 lines" [ "$(lines "$out")" -eq 400 ]

# ---- interrupted twice, then completed: the same files and manifest ----
env --default-signal=INT "$D" augment in -o int $A 2>int.err &
bg=$!
wait_lines int/manifest.csv 120
kill -INT $bg
wait $bg
st=$?
bg=
cp int.err "$err"
if [ $st -eq 130 ] && grep -q 'stopped by Ctrl-C (SIGINT): .*run the same command again' int.err; then
    ok "SIGINT: exit 130, a message"
else
    not_ok "SIGINT" "exit status $st, expected 130"
fi
done1=$(wavs int)
assert "SIGINT stopped half-way ($done1 of 400), one manifest line per output, no temporary file" \
    [ "$done1" -gt 0 -a "$done1" -lt 400 -a "$(lines int/manifest.csv)" -eq $((done1 + 1)) \
    -a -z "$(find int -name '.*')" ]
env --default-signal=INT "$D" augment in -o int $A 2>int.err &
bg=$!
wait_lines int/manifest.csv $((done1 + 100))
kill -KILL $bg
wait $bg 2>/dev/null
bg=
done2=$(wavs int)
assert "SIGKILL in the second run ($done2 of 400 done)" [ "$done2" -gt "$done1" -a "$done2" -lt 400 ]
# what a SIGKILL at the worst moments leaves: temporary files of an output and
# of the manifest, an output renamed in place whose manifest line was never
# written, and a manifest line cut in the middle
touch int/tone/.tone_0059-v02.wav.a1b2c3 int/.manifest.csv.Zz9Yx8
last=$(tail -1 int/manifest.csv | cut -d, -f2)
sed -i '$d' int/manifest.csv
printf 'tone/tone_0059.wav,tone/tone_00' >>int/manifest.csv
check "the third run completes" 0 '' "wrote [0-9]+ outputs \([0-9]+ were already there\)" -- \
    "$D" augment in -o int $A
assert "interrupted + resumed: the output of the killed line ($last) is kept" [ -f "int/$last" ]
assert "interrupted + resumed: the same files, byte for byte, no temporary left" same_as_ref int
assert "interrupted + resumed: the same manifest" cmp -s int/manifest.csv ref/manifest.csv

rm int/noise/noise_0030-v01.wav
check "a deleted output is made again" 0 '' 'wrote 1 outputs \(399 were already there\)' -- \
    "$D" augment in -o int $A
assert "... identical, with one manifest line" \
    sh -c 'cmp -s int/noise/noise_0030-v01.wav ref/noise/noise_0030-v01.wav && cmp -s int/manifest.csv ref/manifest.csv'

check "fewer variations (-k 1) on a finished folder: nothing to do" 0 '' 'wrote 0 outputs \(200 were already there\)' -- \
    "$D" augment in -o int -m m.dmm -k 1 --steps 4 $T
assert "... the lines of the other outputs stay in the manifest" cmp -s int/manifest.csv ref/manifest.csv

# ---- shards ----
for i in 0 1 2; do
    check "--shard $i/3" 0 '' "shard $i/3 of 200 files" -- "$D" augment in -o sh $A --shard $i/3
done
assert "3 shards: the files of one run, byte for byte (no gap, no overlap)" same_wavs_as_ref sh
assert "3 shards: disjoint manifests of 134 + 134 + 132 outputs (67, 67, 66 files)" \
    [ "$(lines sh/manifest-0-of-3.csv)/$(lines sh/manifest-1-of-3.csv)/$(lines sh/manifest-2-of-3.csv)" = 135/135/133 \
    -a "$(tail -q -n +2 sh/manifest-*-of-3.csv | cut -d, -f2 | sort -u | wc -l)" -eq 400 ]
(head -n 1 sh/manifest-0-of-3.csv; tail -q -n +2 sh/manifest-*-of-3.csv | LC_ALL=C sort -u) >merged.csv
assert "merged shard manifests (sort -u, as documented) = the manifest of one run" cmp -s merged.csv ref/manifest.csv

# ---- jobs ----
check "--jobs 2" 0 '' '2 jobs' -- "$D" augment in -o j2 $A --jobs 2
assert "--jobs 2 = --jobs 1: the same files and manifest" same_as_ref j2

# ---- a strength range ----
mkdir -p few/kick
cp in/tone/tone_000[0-4].wav few/kick/
check "--strength 0.2:0.6 (a folder that is not a class)" 0 '' 'strength 0.2..0.6' -- \
    "$D" augment few -o range -m m.dmm -k 4 --steps 4 --strength 0.2:0.6 $T
assert "each output draws its strength in the range, with at most 4 decimals" \
    [ -z "$(tail -n +2 range/manifest.csv | cut -d, -f4 | grep -vE '^0\.[0-9]{1,4}$')" -a \
    "$(awk -F, 'NR > 1 && $4 >= 0.2 && $4 <= 0.6 { s[$4] = 1; n++ } END { print n "/" (length(s) > 10) }' range/manifest.csv)" = 20/1 ]
l=$(grep -F ',kick/tone_0003-v04.wav,' range/manifest.csv)
assert "the file's recipe has the manifest's strength ($(echo "$l" | cut -d, -f4))" \
    awk -v a="$(json range/kick/tone_0003-v04.wav strength)" -v b="$(echo "$l" | cut -d, -f4)" 'BEGIN { exit !(a == b) }'

cp range/manifest.csv range.csv
check "--force makes every output again" 0 '' 'wrote 20 outputs \(0 were already there\)' -- \
    "$D" augment few -o range -m m.dmm -k 4 --steps 4 --strength 0.2:0.6 $T --force
assert "... the same ones, the same manifest" cmp -s range/manifest.csv range.csv

# ---- bad input ----
check "no -o: usage error" 2 '' 'no output folder given' -- "$D" augment in
check "no input folder: usage error" 2 '' 'no input folder given' -- "$D" augment -o z
check "--strength 0: usage error" 2 '' '--strength: must be above 0' -- "$D" augment in -o z --strength 0
check "--strength 0.6:0.2: usage error" 2 '' 'from low to high' -- "$D" augment in -o z --strength 0.6:0.2
check "--strength 1.5: usage error" 2 '' "--strength: '1.5' is not a number in 0..1" -- "$D" augment in -o z --strength 1.5
check "--shard 3/3: usage error" 2 '' '--shard 3/3: I must be in 0..2' -- "$D" augment in -o z --shard 3/3
check "--shard 1: usage error" 2 '' "--shard: '1' is not I/N" -- "$D" augment in -o z --shard 1
check "unknown option: usage error" 2 '' "unknown option '--bogus'" -- "$D" augment in -o z --bogus
check "output inside the input: usage error" 2 '' 'is inside the input folder' -- "$D" augment in -o in/out $A
assert "... and nothing created there" [ ! -e in/out ]
check "missing input folder" 1 '' 'nodir: No such file or directory' -- "$D" augment nodir -o z $A
mkdir empty
check "no audio file in the input" 1 '' 'empty: no audio file' -- "$D" augment empty -o z $A
check "a corrupt model" 1 '' 'garbage.dmm' -- sh -c 'echo junk >garbage.dmm; "$1" augment in -o z -m garbage.dmm' sh "$D"
mkdir -p clash/tone && cp in/tone/tone_0000.wav clash/tone/a.wav && cp in/tone/tone_0001.wav clash/tone/a.flac 2>/dev/null
check "two sources with one name" 1 '' 'clash/tone/a.flac and clash/tone/a.wav would both write' -- \
    "$D" augment clash -o z $A
mkdir -p bad/tone
cp in/tone/tone_000[0-2].wav bad/tone/
head -c 100 in/tone/tone_0003.wav >bad/tone/cut.wav
echo "not a sound" >bad/tone/text.wav
check "corrupt sources: exit 1 naming each, the others are made" 1 '' 'bad/tone/cut.wav.*\(skipped\)' -- \
    "$D" augment bad -o badout $A
assert "... the message names the other one too" grep -q 'bad/tone/text.wav' "$err"
assert "... 6 outputs for the 3 good sources, 6 manifest lines" \
    [ "$(wavs badout)" -eq 6 -a "$(lines badout/manifest.csv)" -eq 7 -a ! -e badout/tone/cut-v01.wav ]
mkdir -p foreign/kick
cp in/tone/tone_0000.wav foreign/kick/tone_0000-v01.wav
check "an output that augment did not write is not overwritten" 1 '' \
    'foreign/kick/tone_0000-v01.wav exists and was not written by dmaudio augment' -- \
    "$D" augment few -o foreign $A
assert "... it is untouched" cmp -s foreign/kick/tone_0000-v01.wav in/tone/tone_0000.wav
echo "name,path" >notmanifest.csv
mkdir -p nm && cp notmanifest.csv nm/manifest.csv
check "a manifest.csv that is not ours is left alone" 1 '' 'nm/manifest.csv is not a dmaudio augment manifest' -- \
    "$D" augment few -o nm $A
assert "... untouched" cmp -s nm/manifest.csv notmanifest.csv
# a full disk: a tiny tmpfs, in a private mount namespace (needs user namespaces)
if unshare -rm true 2>/dev/null; then
    mkdir full
    unshare -rm sh -c 'mount -t tmpfs -o size=48k tmpfs full || exit 99
        "$@" 2>full.err; echo "status $?" >full.status
        find full -name ".*" >full.temps
        tail -n +2 full/manifest.csv | cut -d, -f2 | while read -r o; do [ -f "full/$o" ] || echo "$o"; done >full.missing
        find full -name "*.wav" | wc -l >full.count' sh "$D" augment in -o full $A -q
    assert "full disk: exit 1 and a message ($(head -c 150 full.err))" [ "$(cat full.status)" = "status 1" -a -s full.err ]
    assert "full disk: no temporary file, every manifest line has its output" \
        [ ! -s full.temps -a ! -s full.missing -a "$(cat full.count)" -gt 0 ]
else
    n=$((n + 1)); echo "ok $n # SKIP no user namespaces for a tmpfs"
    n=$((n + 1)); echo "ok $n # SKIP no user namespaces for a tmpfs"
fi
check "augment --help shows the defaults" 0 '--per-file K +variations of each sound \[4\]' '' -- "$D" augment --help

cli_done
