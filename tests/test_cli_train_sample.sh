#!/usr/bin/env bash
# End to end: `dmaudio synth` a tiny labelled dataset, `dmaudio train` a tiny
# model on it, `dmaudio sample` from it and `dmaudio info` on what was written.
# Asserts on the audio files themselves (rate, channels, length, level, a CRC
# of the decoded samples, recipe metadata), on reproducibility (same seed ->
# same bytes, --recipe -> same bytes, resume -> same weights), and on bad
# input: exit status, message, and no file written or overwritten.
# Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_train_sample.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cli_tmpdir cli-ts
bg=

nonsilent() { # peak above -40 dBFS
    awk -v p="$(json "$1" peak)" 'BEGIN { exit !(p > 0.01) }'
}
no_temp_left() { # dm_audio_write's temporary files are .NAME.XXXXXX
    [ -z "$(find "$1" -name '.*.wav.*' -o -name '.*.ckpt.*' -o -name '.*.dmm.*' | head -1)" ]
}

# ---- synth ----
check "synth writes a labelled dataset" 0 '' 'wrote 24 clips' -- \
    "$D" synth data --per-class 8 --rate 8000 --length 512
assert "synth: 8 files in each of tone, noise, click" \
    [ "$(ls data/tone/*.wav data/noise/*.wav data/click/*.wav 2>/dev/null | wc -l)" -eq 24 ]
assert "synth: files at 8000 Hz, 512 frames" \
    [ "$(json data/tone/tone_0003.wav rate)/$(json data/tone/tone_0003.wav frames)" = 8000/512 ]
check "synth refuses a folder that is not empty" 1 '' 'data is not empty \(use --force' -- \
    "$D" synth data --per-class 1 --rate 8000 --length 512
check "synth --force writes into it" 0 '' '' -- \
    "$D" synth data --per-class 8 --rate 8000 --length 512 --force -q
check "synth: bad --rate is a usage error" 2 '' "--rate: '100' is not an integer in 8000" -- \
    "$D" synth x --rate 100

# ---- train ----
check "train --preset tiny, 30 steps" 0 '' 'done, step 30/30' -- \
    "$D" train data -o m.dmm --preset tiny --steps 30 --batch 4 $T
assert "train wrote the model and its checkpoint" [ -s m.dmm -a -s m.dmm.ckpt ]
assert "train printed progress lines with loss, speed and ETA" \
    grep -qE '^dmaudio train: step [0-9]+/30  loss [0-9.]+  [0-9.]+ samples/s  ETA [0-9]+:[0-9]{2}$' "$err"
assert "train printed the automatic data scale" grep -qE 'data scale [0-9.]+ \(0.5 / RMS' "$err"
check "info on the model" 0 '^classes +3: click, noise, tone$' '' -- "$D" info m.dmm
assert "info: the rate" grep -qE '^sample rate +8000 Hz$' "$out"
assert "info: the clip length" grep -qE '^clip length +512 samples \(0.064 s\)$' "$out"
assert "info: the network" grep -qE '^architecture +widths 16 32 64\+attn, factors 4,4, ' "$out"
check "info --json on the model" 0 '"classes": \["click", "noise", "tone"\].*"crc": "[0-9a-f]{8}"' '' -- \
    "$D" info --json m.dmm
crc=$(json m.dmm crc)
"$D" train data -o m2.dmm --name m --preset tiny --steps 30 --batch 4 $T -q
assert "train: same seed and options -> byte-identical model and checkpoint" \
    eval 'cmp -s m.dmm m2.dmm && cmp -s m.dmm.ckpt m2.dmm.ckpt'
"$D" train data -o m3.dmm --name m --preset tiny --steps 30 --batch 4 --seed 2 $T -q
assert "train: another seed -> other weights" [ "$(json m3.dmm crc)" != "$crc" ]
"$D" synth data2 --per-class 8 --rate 8000 --length 512 -q
assert "synth: the same seed writes the same files" diff -r data data2
rm -r data2 m2.dmm m2.dmm.ckpt m3.dmm m3.dmm.ckpt
check "train refuses to overwrite a run without --resume or --force" 1 '' \
    'm.dmm.ckpt exists: pass --resume' -- "$D" train data -o m.dmm --preset tiny --steps 30 $T
check "train without -o is a usage error" 2 '' 'no model file given' -- "$D" train data
check "train: unknown preset" 2 '' "unknown preset 'huge'" -- "$D" train data -o z.dmm --preset huge
check "train: missing data folder" 1 '' 'nodata' -- "$D" train nodata -o z.dmm -q
assert "train: nothing written after errors" [ ! -e z.dmm -a ! -e z.dmm.ckpt ]

# ---- sample: what is written ----
check "sample writes a WAV" 0 '' 'wrote a.wav \(seed 7' -- "$D" sample -m m.dmm -o a.wav --seed 7 $T
assert "sample: 8000 Hz, 1 channel, 512 frames, 24-bit WAV" \
    [ "$(json a.wav rate)/$(json a.wav channels)/$(json a.wav frames)" = 8000/1/512 -a \
    "$(json a.wav format)" = "WAV (Microsoft), Signed 24 bit PCM" ]
assert "sample: the audio is not silent" nonsilent a.wav
assert "sample: recipe metadata (seed, model crc, sampler, mode)" \
    [ "$(json a.wav seed)/$(json a.wav crc)/$(json a.wav sampler)/$(json a.wav mode)" = "7/$crc/dpmpp-2m/sample" ]
assert "sample: title metadata" [ "$(json a.wav title)" = "dmaudio sample" ]
check "info on a generated file shows its recipe" 0 '^  seed +7$' '' -- "$D" info a.wav
assert "info: the recipe's model in text" grep -qE "^  model +m \(crc $crc\)$" "$out"
assert "info: the recipe's sampler in text" grep -qE '^  sampler +dpmpp-2m, 25 steps$' "$out"
check "same seed and options" 0 '' '' -- "$D" sample -m m.dmm -o b.wav --seed 7 $T -q
assert "same seed and options -> byte-identical files" cmp -s a.wav b.wav
"$D" sample -m m.dmm -o c.wav --seed 8 $T -q
assert "different seeds -> different audio" \
    [ -n "$(json c.wav audio_crc)" -a "$(json a.wav audio_crc)" != "$(json c.wav audio_crc)" ]
"$D" sample -m m.dmm -o - --seed 7 $T -q >stdout.wav
assert "-o - writes the same WAV on stdout" cmp -s a.wav stdout.wav
check "sample -n 3 --json" 0 '"path": "n-003.wav", "seed": 12, "class": "tone"' '' -- \
    "$D" sample -m m.dmm -o n.wav -n 3 --seed 10 -c tone --json $T
assert "-n 3 writes 3 numbered files, one JSON line each" \
    [ -s n-001.wav -a -s n-002.wav -a -s n-003.wav -a ! -e n.wav -a "$(wc -l <"$out")" -eq 3 ]
assert "-n 3: file i has seed S+i" [ "$(json n-001.wav seed)$(json n-002.wav seed)$(json n-003.wav seed)" = 101112 ]
"$D" sample -m m.dmm -o single.wav --seed 11 -c tone $T -q
assert "a clip does not depend on its batch (n-002 = seed 11 alone)" cmp -s n-002.wav single.wav
check "sample FLAC, resampled and shortened" 0 '' '' -- \
    "$D" sample -m m.dmm -o r.flac --seed 3 --rate 16000 --length 0.03 --format pcm16 $T -q
assert "FLAC: 16000 Hz, 480 frames, 16 bit, recipe" \
    [ "$(json r.flac rate)/$(json r.flac frames)/$(json r.flac seed)" = 16000/480/3 -a \
    "$(json r.flac format)" = "FLAC (Free Lossless Audio Codec), Signed 16 bit PCM" ]
"$D" sample -m m.dmm -o r8.wav --seed 3 $T -q
"$D" sample -m m.dmm -o r16.wav --seed 3 --rate 16000 $T -q
assert "--rate 16000: twice the frames, the same level (RMS $(json r8.wav rms) -> $(json r16.wav rms))" \
    awk -v a="$(json r8.wav rms)" -v b="$(json r16.wav rms)" -v f="$(json r16.wav frames)" \
    'BEGIN { exit !(f == 1024 && a > 0.01 && b > 0.9 * a && b < 1.1 * a) }'
"$D" sample -m m.dmm -o r2.flac --seed 3 --rate 16000 --length 0.03 --format pcm16 $T -q
assert "FLAC: same seed and options -> byte-identical files" cmp -s r.flac r2.flac
"$D" sample -m m.dmm -o f1.wav --seed 3 --format float $T -q
"$D" sample -m m.dmm -o f2.wav --seed 3 --format float $T -q
assert "float WAV: same seed and options -> byte-identical files" cmp -s f1.wav f2.wav
# libsndfile adds a PEAK chunk to float WAVs by default, with the time of
# writing in it: two runs a second apart would differ
assert "float WAV: no PEAK chunk (it holds a timestamp)" eval '! grep -qa PEAK f1.wav'
assert "float WAV: 32 bit float" [ "$(json f1.wav format)" = "WAV (Microsoft), 32 bit float" ]
check "a random seed is printed" 0 '"seed": [0-9]+' '^dmaudio sample: seed [0-9]+, ' -- \
    "$D" sample -m m.dmm -o rnd.wav --json $T
seed=$(json rnd.wav seed)
"$D" sample -m m.dmm -o rnd2.wav --seed "$seed" $T -q
assert "the printed seed reproduces the clip" cmp -s rnd.wav rnd2.wav

# Ctrl-C while sampling: the step under way ends, no clip is left half-written
mkdir int
stop_when INT 'wrote int/c-001.wav' "$D" sample -m m.dmm -o int/c.wav -n 500 --batch 1 --steps 50 --seed 1 $T
k=$(ls int | grep -c '^c-...\.wav$')
if [ $st -eq 130 ] && grep -qE "^dmaudio sample: stopped by Ctrl-C \(SIGINT\); $k of 500 clips written, each complete$" "$err"; then
    ok "Ctrl-C during sample -n 500: exit 130, '$k of 500 clips written'"
else
    not_ok "Ctrl-C during sample -n 500" "exit status $st, $k files"
fi
complete() { for f in int/*.wav; do [ "$(json "$f" frames)" = 512 ] || return 1; done; }
assert "... every file there is complete, no temporary file" eval 'complete && [ $(ls -A int | wc -l) -eq $k ] && [ $k -ge 1 -a $k -lt 500 ]'

# ---- --recipe ----
"$D" sample -m m.dmm -o x.wav --seed 99 -c noise --guidance 3 --sampler ddim --steps 12 \
    --eta 0.5 --rate 11025 --length 0.05 --format pcm16 $T -q
check "--recipe regenerates a clip" 0 '' '' -- "$D" sample -m m.dmm --recipe x.wav -o y.wav $T -q
assert "--recipe: byte for byte (class, guidance, ddim+eta, rate, length, pcm16)" cmp -s x.wav y.wav
assert "the recipe holds the rate, frames and format written" \
    grep -q ' rate=11025 frames=551 format=pcm16$' <("$D" info x.wav | grep '^recipe ')
check "info shows them" 0 '^  output +11025 Hz, 551 frames, pcm16$' '' -- "$D" info x.wav
check "info --json shows them in the recipe" 0 '"recipe": \{.*"rate": 11025, "frames": 551, "format": "pcm16"\}\}$' '' -- \
    "$D" info --json x.wav
"$D" sample -m m.dmm --recipe x.wav -o y.flac $T -q
check "--recipe into a FLAC, then from that FLAC back to a WAV" 0 '' '' -- \
    "$D" sample -m m.dmm --recipe y.flac -o y2.wav $T -q
assert "... byte for byte the first WAV" cmp -s x.wav y2.wav
# the recipe, not the file, decides: a copy whose header says 8000 Hz (bytes
# 24-31: rate and byte rate) still regenerates the 11025 Hz original
cp x.wav hdr.wav
printf '\x40\x1f\x00\x00\x80\x3e\x00\x00' | dd of=hdr.wav bs=1 seek=24 conv=notrunc 2>/dev/null
assert "(the copy's header says 8000 Hz)" [ "$(json hdr.wav rate)" = 8000 ]
check "--recipe of a file whose rate changed since" 0 '' '' -- "$D" sample -m m.dmm --recipe hdr.wav -o y3.wav $T -q
assert "... regenerates the original, byte for byte" cmp -s x.wav y3.wav
# a recipe written before rate, frames and format were in it: the same length
# of spaces instead; the file's own rate, length and format complete it
cp x.wav old.wav
perl -pi -e 's/ rate=11025 frames=551 format=pcm16/" " x length($&)/e' old.wav
assert "(an old-style recipe: no rate, frames, format)" \
    eval '"$D" info old.wav | grep -q "^recipe .*version=0.1.0 *$" && ! "$D" info old.wav | grep -q "^  output"'
check "--recipe of an old-style recipe" 0 '' '' -- "$D" sample -m m.dmm --recipe old.wav -o y4.wav $T -q
assert "... regenerates the clip byte for byte (with the full recipe)" cmp -s x.wav y4.wav
"$D" sample -m m.dmm -o xf.wav --seed 98 --sampler heun --steps 5 --format float $T -q
"$D" sample -m m.dmm --recipe xf.wav -o yf.wav $T -q
assert "--recipe: float WAV byte for byte (heun)" cmp -s xf.wav yf.wav
check "--recipe with other settings is a usage error" 2 '' '--seed cannot be combined with --recipe' -- \
    "$D" sample -m m.dmm --recipe x.wav -o z.wav --seed 1
check "--recipe on a file without one" 1 '' 'data/tone/tone_0000.wav: bad recipe' -- \
    "$D" sample -m m.dmm --recipe data/tone/tone_0000.wav -o z.wav

# ---- sample: bad input ----
check "unknown class: usage error listing the classes" 2 '' \
    "unknown class 'kick' \(the model's classes: click, noise, tone\)" -- "$D" sample -m m.dmm -c kick -o z.wav
check "--length beyond the model's clips" 2 '' '--length 1 is longer than the model.s clips \(at most 0.064 s\)' -- \
    "$D" sample -m m.dmm --length 1 -o z.wav
check "unknown sampler" 2 '' "unknown sampler 'fast'" -- "$D" sample -m m.dmm --sampler fast -o z.wav
check "unknown extension" 2 '' 'z.mp3: the output must end in .wav or .flac' -- "$D" sample -m m.dmm -o z.mp3
cp a.wav keep.wav
check "overwrite refused without --force" 1 '' 'keep.wav exists \(use --force' -- \
    "$D" sample -m m.dmm -o keep.wav --seed 1 $T
assert "the refused file is untouched" cmp -s a.wav keep.wav
rm n-001.wav n-003.wav
check "-n checks every output before generating" 1 '' 'n-002.wav exists' -- \
    "$D" sample -m m.dmm -o n.wav -n 3 --seed 1 $T
assert "... and writes none of them" [ ! -e n-001.wav -a ! -e n-003.wav ]
check "--force overwrites" 0 '' '' -- "$D" sample -m m.dmm -o keep.wav --seed 8 --force $T -q
assert "... with the new clip" cmp -s keep.wav c.wav
head -c 3000 m.dmm >truncated.dmm
check "truncated model: runtime error naming the file" 1 '' '^dmaudio sample: truncated.dmm: truncated' -- \
    "$D" sample -m truncated.dmm -o z.wav
echo "not a model" >garbage.dmm
check "non-model file: runtime error naming the file" 1 '' '^dmaudio sample: garbage.dmm: bad magic' -- \
    "$D" sample -m garbage.dmm -o z.wav
check "missing output folder" 1 '' 'nodir/z.wav: cannot write in the folder nodir' -- \
    "$D" sample -m m.dmm -o nodir/z.wav
mkdir ro
chmod 555 ro
ro_run=()
if [ "$(id -u)" = 0 ]; then # root writes anywhere: run as nobody instead
    chmod 755 "$tmp"
    chmod 644 m.dmm
    command -v setpriv >/dev/null && ro_run=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
if [ "$(id -u)" != 0 ] || [ ${#ro_run[@]} -gt 0 ]; then
    check "unwritable output folder: runtime error" 1 '' 'ro/z.wav: cannot write in the folder ro' -- \
        "${ro_run[@]}" "$D" sample -m m.dmm -o ro/z.wav $T
    assert "... and no file left in it" [ -z "$(ls -A ro)" ]
else
    n=$((n + 1)); echo "ok $n # SKIP root without setpriv: cannot make a folder unwritable"
fi
chmod 755 ro
# a full disk: a tiny tmpfs, in a private mount namespace (needs user namespaces)
mkdir full
if unshare -rm true 2>/dev/null; then
    cp a.wav full.keep
    unshare -rm sh -c 'mount -t tmpfs -o size=32k tmpfs full || exit 99
        cp a.wav full/keep.wav && head -c 1000000 /dev/zero >full/fill 2>/dev/null
        "$1" sample -m m.dmm -o full/keep.wav --seed 9 --force --threads 1 -q 2>full.err
        echo "status $?" >full.status; ls -A full >full.ls; cmp -s a.wav full/keep.wav && echo kept >>full.status' \
        sh "$D"
    assert "full disk: exit 1 and a message" [ "$(head -1 full.status)" = "status 1" -a -s full.err ]
    assert "full disk: the old file is kept, no temporary left" \
        [ "$(tail -1 full.status)" = kept -a "$(tr '\n' ' ' <full.ls)" = "fill keep.wav " ]
else
    n=$((n + 1)); echo "ok $n # SKIP no user namespaces for a tmpfs"
    n=$((n + 1)); echo "ok $n # SKIP no user namespaces for a tmpfs"
fi
assert "no temporary file left anywhere" no_temp_left .

# ---- unconditional models ----
mkdir flat
cp data/tone/tone_000[0-3].wav flat/
check "train an unconditional model" 0 '' 'done' -- "$D" train flat -o u.dmm --preset tiny --steps 2 --batch 2 $T
check "info: no classes" 0 '^classes +none \(unconditional\)$' '' -- "$D" info u.dmm
check "--class on an unconditional model" 2 '' "the model 'u' is unconditional" -- \
    "$D" sample -m u.dmm -c tone -o z.wav
check "--recipe with another model: error naming both" 1 '' \
    "a.wav was made with model 'm' \(crc $crc\), but the model given is 'u' \(crc [0-9a-f]{8}\)" -- \
    "$D" sample -m u.dmm --recipe a.wav -o z.wav

# ---- the spec representation ----
check "train --repr spec" 0 '' 'new spec model' -- \
    "$D" train data -o sp.dmm --repr spec --n-fft 64 --hop 16 --preset tiny --steps 2 --batch 2 $T
check "sample from a spec model" 0 '' '' -- "$D" sample -m sp.dmm -o sp.wav --seed 1 $T -q
assert "spec: the clip has the model's length and rate" \
    [ "$(json sp.wav frames)/$(json sp.wav rate)" = "$(json sp.dmm length)/8000" -a "$(json sp.dmm representation)" = spec ]
assert "spec: the audio is not silent" nonsilent sp.wav

# ---- stop and resume ----
check "--max-time stops early, exit 0" 0 '' 'time limit \(--max-time 1 s\) reached at step [0-9]+/100000; saved' -- \
    "$D" train data -o t.dmm --preset tiny --steps 100000 --batch 4 --max-time 1 $T
assert "--max-time: model and checkpoint exist" [ -s t.dmm -a -s t.dmm.ckpt ]
s1=$(grep -oE 'reached at step [0-9]+' "$err" | grep -oE '[0-9]+$')
s1=${s1:-0} # a loaded machine may not finish a step within the second
check "--resume continues from the checkpoint's step" 0 '' "resuming 't' from t.dmm.ckpt at step $s1\$" -- \
    "$D" train data -o t.dmm --steps $((s1 + 3)) --resume $T
assert "--resume: the step count grows ($s1 -> $((s1 + 3)))" \
    grep -qE "done, step $((s1 + 3))/$((s1 + 3)) in" "$err"
# stopped after its first step whatever the machine's speed (Ctrl-C once the
# first progress line is out), then resumed: the weights of the 30-step run
stop_when INT 'step 1/' "$D" train data -o e.dmm --preset tiny --steps 30 --batch 4 $T
echo "# stopped $(grep -oE 'at step [0-9]+/30' "$err" || echo 'at the end (too late)'), resumed to 30"
check "--resume without --steps: the checkpoint's settings, reported" 0 '' \
    "^dmaudio train: the checkpoint's settings: 30 steps, batch 4, lr 0.0003 \(warm-up 3\), ema 0.999, class dropout 0.1, min-snr 0, seed 1$" -- \
    "$D" train data -o e.dmm --resume $T
assert "... runs to the checkpoint's 30 steps (not the default 10000)" grep -qE 'done, step 30/30 in' "$err"
if grep -q 'step [0-9]*/30  loss' "$err"; then # when the stop came before step 30
    assert "... progress in samples/s (the checkpoint's batch)" \
        grep -qE '^dmaudio train: step [0-9]+/30  loss [0-9.]+  [0-9.]+ samples/s  ETA' "$err"
fi
assert "stopped + resumed gives the weights of one run" [ "$(json e.dmm crc)" = "$crc" ]
check "--resume with other settings: they are named and ignored" 0 '' \
    'ignoring --lr, --batch: a resumed run keeps the checkpoint' -- \
    "$D" train data -o e.dmm --resume --lr 0.01 --batch 2 $T
assert "... nothing to do at step 30/30: the model is written again, unchanged" \
    [ "$(json e.dmm crc)" = "$crc" ]
check "--resume --steps past the schedule: said, and done" 0 '' \
    "--steps 32 goes past the checkpoint's learning-rate schedule \(30 steps\): the steps after it use its final rate 3e-05" -- \
    "$D" train data -o e.dmm --resume --steps 32 $T
assert "... to step 32" grep -qE 'done, step 32/32 in' "$err"
check "train --json: one object at the end" 0 \
    '^\{"model": "js.dmm", "checkpoint": "js.dmm.ckpt", "step": 3, "steps": 3, "loss": [0-9.e-]+, "seconds": [0-9.]+, "stopped": null\}$' '' -- \
    "$D" train data -o js.dmm --preset tiny --steps 3 --batch 2 --json -q $T
assert "train --json: nothing else on stdout" [ "$(wc -l <"$out")" -eq 1 ]
check "train --json --max-time: stopped says so" 0 '"stopped": "max-time"\}$' '' -- \
    "$D" train data -o js.dmm --steps 1000000 --max-time 0.5 --resume --json -q $T
cp -r data data2
rm -r data2/click
check "--resume on data with other classes: the trainer's message" 1 '' \
    'data2 does not fit the checkpoint t.dmm.ckpt: training: the dataset has 2 classes, the model 3' -- \
    "$D" train data2 -o t.dmm --steps 100000 --resume $T
check "periodic checkpoints (--checkpoint-every 3, --checkpoint FILE)" 0 '' \
    '^dmaudio train: checkpoint at step 3 in pc.ckpt$' -- \
    "$D" train data -o pc.dmm --checkpoint pc.ckpt --checkpoint-every 3 --preset tiny --steps 7 --batch 2 $T
assert "... at steps 3 and 6, then the final save" \
    [ "$(grep -cE '^dmaudio train: checkpoint at step [0-9]+ in pc.ckpt$' "$err")" -eq 2 -a -s pc.ckpt -a ! -e pc.dmm.ckpt ]
check "... --resume finds it with --checkpoint" 0 '' 'resuming .pc. from pc.ckpt at step 7$' -- \
    "$D" train data -o pc.dmm --checkpoint pc.ckpt --resume $T
check "--resume without a checkpoint" 1 '' 'no checkpoint nock.dmm.ckpt' -- \
    "$D" train data -o nock.dmm --resume

# signals: finish the step, save, exit 128 + signal. A background job of a
# script starts with SIGINT ignored, which dmaudio respects: env resets it.
for sig in INT TERM; do
    want=$((128 + $(kill -l $sig)))
    stop_when $sig 'step 1/' "$D" train data -o s$sig.dmm --preset tiny --steps 100000 --batch 4 $T
    if [ $st -eq $want ] && grep -qE "stopped by .*SIG$sig.* at step [0-9]+/100000; saved s$sig.dmm.ckpt and s$sig.dmm" "$err"; then
        ok "SIG$sig during training: exit $want, message"
    else
        not_ok "SIG$sig during training" "exit status $st, expected $want"
    fi
    assert "SIG$sig: checkpoint and model saved and loadable" \
        [ -s s$sig.dmm.ckpt -a "$(json s$sig.dmm name)" = "s$sig" ]
done

# ---- info on other files ----
check "info on a non-audio file" 1 '' 'garbage.txt is neither a dmaudio model nor an audio file' -- \
    sh -c 'echo hello >garbage.txt; "$1" info garbage.txt' sh "$D"
check "info on a missing file" 1 '' 'nofile.wav: No such file or directory' -- "$D" info nofile.wav
check "info on a plain WAV: no recipe" 0 '^recipe +none' '' -- "$D" info data/click/click_0001.wav
check "help sample lists the options with defaults" 0 '--steps N .*\[the sampler.s default' '' -- "$D" help sample
check "train --help" 0 '--preset NAME' '' -- "$D" train --help

cli_done
