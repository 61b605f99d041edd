#!/usr/bin/env bash
# tools/drumkits (the recipe of the default model's data set, `make dataset`) on three small
# made-up Hydrogen kits: one in the newer drumkit.xml format (layers in instrumentComponent),
# one in the old one (a <filename> per instrument), one excluded by the kit table. Checks the
# classes given to instrument names, the split by kit, the balanced and augmented training
# set, the manifest, that the same seed writes the same bytes, --noise, and bad input.
# Prints TAP. Usage: DMAUDIO_BUILD_DIR=build tests/test_drumkits.sh
set -u
B=${DMAUDIO_BUILD_DIR:-build}
case $B in /*) ;; *) B=$PWD/$B ;; esac
D=$B/dmaudio
K=$B/tools/drumkits
n=0
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dmaudio-drumkits.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
out=$tmp/.out err=$tmp/.err

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1))
    echo "not ok $n - $1: $2"
    [ -s "$err" ] && sed 's/^/#   stderr: /' "$err" | head -5
    fails=$((fails + 1))
}
# check NAME EXPECTED_STATUS STDERR_PATTERN -- COMMAND...
check() {
    local name=$1 want=$2 perr=$3
    shift 4
    "$@" >"$out" 2>"$err"
    local got=$? why=
    [ "$got" -eq "$want" ] || why="exit status $got, expected $want"
    [ -z "$why" ] && [ -n "$perr" ] && ! grep -qE -- "$perr" "$err" && why="stderr lacks /$perr/"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why"; fi
}
assert() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}
count() { find "$1" -name '*.wav' 2>/dev/null | wc -l; }

# ---- the kits: sounds from `dmaudio synth` (48 kHz stereo would also do; mono 22.05 kHz here)
"$D" synth snd --per-class 4 --rate 22050 --length 4000 --seed 3 --quiet || exit 1
mkdir -p src/NewKit src/OldKit src/Banned
for i in 0 1 2 3; do
    cp snd/click/click_000$i.wav src/NewKit/kick$i.wav
    cp snd/noise/noise_000$i.wav src/NewKit/hat$i.wav
    cp snd/tone/tone_000$i.wav src/OldKit/t$i.wav
done
cp snd/noise/noise_0000.wav src/Banned/x.wav
layer() { echo "<layer><filename>$1</filename><min>0</min></layer>"; }
cat > src/NewKit/drumkit.xml <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<drumkit_info><name>NewKit</name><license>GPL</license><instrumentList>
 <instrument><id>0</id><name>Kick Hard</name><instrumentComponent>
  $(layer kick0.wav)$(layer kick1.wav)$(layer kick1.wav)</instrumentComponent></instrument>
 <instrument><id>1</id><name>Closed HH</name>$(layer hat0.wav)$(layer hat1.wav)</instrument>
 <instrument><id>2</id><name>Open HH</name>$(layer hat2.wav)</instrument>
 <instrument><id>3</id><name>Ride (Custom 22")</name>$(layer hat3.wav)</instrument>
 <instrument><id>4</id><name>Side Stick</name>$(layer kick2.wav)</instrument>
 <instrument><id>5</id><name>Cowbell</name>$(layer kick3.wav)</instrument>
</instrumentList></drumkit_info>
EOF
cat > src/OldKit/drumkit.xml <<EOF
<?xml version="1.0"?>
<drumkit_info><name>OldKit</name><instrumentList>
 <instrument><id>0</id><name>Kick</name><filename>t0.wav</filename></instrument>
 <instrument><id>1</id><name>Snare Rock</name><filename>t1.wav</filename></instrument>
 <instrument><id>2</id><name>tomhi2</name><filename>t2.wav</filename></instrument>
 <instrument><id>3</id><name>Hand Clap</name><filename>t3.wav</filename></instrument>
</instrumentList></drumkit_info>
EOF
cp src/NewKit/drumkit.xml src/Banned/drumkit.xml
printf '# kit\tsplit\tlicence\nNewKit\t\ttrain\tCC0-1.0\nOldKit\tvalid\tGPL-2+\nBanned\texclude\tCC-BY-SA-3.0\n' > kits.tsv
KARGS="--src src --kits kits.tsv --rate 8000 --length 1024 --per-class 5 --seed 7 --quiet"

# ---- a set
check "drumkits writes a set from two kits" 0 "" -- "$K" $KARGS -o set
assert "training classes are those of the training kit's classified instruments" \
    test "$(ls set/train | tr '\n' ' ')" = "clap closed_hat cymbal kick open_hat snare tom "
assert "each training class with instruments has --per-class clips" \
    test "$(count set/train/kick) $(count set/train/closed_hat) $(count set/train/open_hat) $(count set/train/cymbal)" = "5 5 5 5"
assert "classes with no training instrument are empty" \
    test "$(count set/train/snare) $(count set/train/tom) $(count set/train/clap)" = "0 0 0"
assert "'Ride (Custom 22\")' is a cymbal, not a tom" grep -q '"NewKit","Ride (Custom 22"")"' set/manifest.csv
assert "stick and cowbell are left out" sh -c "! grep -qiE 'stick|cowbell' set/manifest.csv"
assert "the validation kit's layers appear once each, in their classes" \
    test "$(count set/valid/kick) $(count set/valid/snare) $(count set/valid/tom) $(count set/valid/clap) $(count set/valid)" = "1 1 1 1 4"
assert "no file of the excluded kit is used" sh -c "! grep -q Banned set/manifest.csv"
assert "the manifest has a line per file written" \
    test "$(($(wc -l < set/manifest.csv) - 1))" -eq "$(count set)"
assert "a duplicated layer is read once (kick: layers 0 and 1 in turn)" \
    test "$(grep -c '^train,kick,.*kick0.wav' set/manifest.csv) $(grep -c '^train,kick,.*kick1.wav' set/manifest.csv)" = "3 2"
assert "each layer's first use is unaltered, later copies are augmented" \
    sh -c "grep '^train,kick,.*-0-00.wav' set/manifest.csv | grep -q ',0.00,0.000,0.00\$' &&
           grep '^train,kick,.*-1-01.wav' set/manifest.csv | grep -q ',0.00,0.000,0.00\$' &&
           grep '^train,kick,.*-0-02.wav' set/manifest.csv | grep -vq ',0.00,0.000,0.00\$'"
info=$("$D" info set/train/kick/newkit-kick-hard-0-02.wav 2>&1)
assert "clips are mono, at the set's rate and length" \
    sh -c "echo '$info' | grep -q '8000 Hz' && echo '$info' | grep -qE '1024 (samples|frames)' && echo '$info' | grep -qiE 'channels +1|mono'"
assert "SUMMARY.txt counts instruments and files, and lists the licences" \
    sh -c "grep -qE '^kick +1/5 +1/1' set/SUMMARY.txt && grep -q 'Banned.*exclude.*CC-BY-SA-3.0' set/SUMMARY.txt"
check "the set trains (dmaudio train, 2 steps)" 0 "" -- \
    "$D" train set/train -o m.dmm --preset tiny --steps 2 --batch 2 --threads 1 --quiet

# ---- reproducible
"$K" $KARGS -o again 2>/dev/null
assert "the same options write the same bytes" diff -r set again

# ---- the noise ceiling
check "--noise writes white noise per class" 0 "" -- "$K" --noise 3 --rate 8000 --length 1024 -o noise
assert "--noise: 3 clips in each of the 7 classes" test "$(count noise)" -eq 21

# ---- bad input
check "an existing, non-empty output folder is refused" 1 "set: not empty" -- "$K" $KARGS -o set
printf 'NewKit\ttrain\tGPL\nNoSuchKit\ttrain\tGPL\n' > missing.tsv
check "a missing kit names its drumkit.xml" 1 "NoSuchKit/drumkit.xml: missing" -- \
    "$K" --src src --kits missing.tsv -o m1
printf 'NewKit\tmaybe\tGPL\n' > badsplit.tsv
check "a bad split names the table's line" 1 "badsplit.tsv:1: split 'maybe'" -- \
    "$K" --src src --kits badsplit.tsv -o m2
check "a missing kit table is named" 1 "nope.tsv: No such file" -- "$K" --kits nope.tsv -o m3
printf 'not xml' > src/OldKit/drumkit.xml
check "a corrupt drumkit.xml is named" 1 "OldKit/drumkit.xml: missing or not XML" -- \
    "$K" $KARGS -o m4
check "no -o is a usage error" 2 "-o OUT_DIR is required" -- "$K" --rate 8000
check "a bad number is a usage error" 2 "--rate: 'fast'" -- "$K" --rate fast -o m5

echo "1..$n"
[ "$fails" -eq 0 ]
