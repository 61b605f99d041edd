#!/usr/bin/env bash
# End to end: the editing subcommands (variation, interpolate, inpaint), eval (sets and
# --elbo) and spectrogram, on a tiny synthetic dataset and a tiny model made with
# `dmaudio synth` and `dmaudio train`. Asserts on what is written: lengths and rates, the
# samples themselves (decoded from the WAV data chunk with od, no other tool needed),
# recipes, JSON, PNG headers; and on bad input: exit status, a message naming the file, no
# file left behind or overwritten.
# Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_edit_eval.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cli_tmpdir cli-ee
bg=

# info FILE KEY: a number or string value of `dmaudio info --json FILE`
info() {
    "$D" info --json "$1" 2>/dev/null | grep -oE "\"$2\": (\"[^\"]*\"|[-0-9.e+]+|null)" | head -1 |
        sed -E "s/^\"$2\": \"?//; s/\"$//"
}
# samples FILE: the samples of a mono 24-bit WAV as integers, one a line. The data chunk is
# the last one (libsndfile writes its metadata before it): its samples are the file's last
# 3 * frames bytes, right after the 8 bytes "data" + size (checked).
samples() {
    local f=$1 frames size off
    frames=$(info "$f" frames)
    size=$(wc -c <"$f")
    off=$((size - 3 * frames))
    [ "$(dd if="$f" bs=1 skip=$((off - 8)) count=4 2>/dev/null)" = data ] || {
        echo "samples: $f: no data chunk where expected" >&2
        return 1
    }
    od -An -v -t u1 -j "$off" "$f" | awk '{ for (i = 1; i <= NF; i++) b[k++] = $i }
        END { for (i = 0; i + 2 < k; i += 3) { v = b[i] + 256 * b[i+1] + 65536 * b[i+2];
              if (v >= 8388608) v -= 16777216; print v } }'
}
# corr A B: correlation of two equally long sample lists (files of integers)
corr() {
    paste "$1" "$2" | awk '{ x += $1; y += $2; xx += $1*$1; yy += $2*$2; xy += $1*$2; m++ }
        END { c = (xy - x*y/m) / sqrt((xx - x*x/m) * (yy - y*y/m) + 1e-30); printf "%.6f\n", c }'
}
differ() { ! cmp -s "$1" "$2"; }
absent() { for f in "$@"; do [ ! -e "$f" ] || return 1; done; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# valid_json FILE: parsed by python3's json module when there is one, else the shape checked
valid_json() {
    if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null; then
        python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$1"
    else
        grep -qE '^\{".*\}$' "$1" && ! grep -qvE '^\{".*\}$' "$1"
    fi
}
no_temp_left() { [ -z "$(find "$1" -name '.*.wav.*' -o -name '.*.png.*' | head -1)" ]; }

# A mono 16-bit WAV of full-scale white noise: NAME FRAMES (random bytes from /dev/urandom).
white_wav() {
    local bytes=$(($2 * 2))
    le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
    {
        printf 'RIFF'; le32 $((36 + bytes)); printf 'WAVEfmt '; le32 16
        printf '\x01\x00\x01\x00'; le32 8000; le32 16000; printf '\x02\x00\x10\x00'
        printf 'data'; le32 "$bytes"
        head -c "$bytes" /dev/urandom
    } >"$1"
}

# ---- a dataset and a model ----
check "synth: training set" 0 '' '' -- "$D" synth data --per-class 8 --rate 8000 --length 512 -q
check "synth: held-out set" 0 '' '' -- "$D" synth ref --per-class 6 --rate 8000 --length 512 --seed 2 -q
check "train --preset tiny --steps 20" 0 '' '' -- \
    "$D" train data -o m.dmm --preset tiny --steps 20 --batch 4 -q $T
rate=$(info m.dmm sample_rate)
len=$(info m.dmm length)
assert "the model: 8000 Hz, 512 samples" [ "$rate/$len" = 8000/512 ]
in=data/tone/tone_0002.wav
S="-m m.dmm --steps 8 $T"

# ---- variation ----
check "variation -n 3 writes three files" 0 '' 'wrote var-003.wav' -- \
    "$D" variation "$in" -o var.wav -n 3 --seed 5 $S
assert "variation: model's rate and length" \
    [ "$(info var-002.wav rate)/$(info var-002.wav frames)/$(info var-002.wav channels)" = 8000/512/1 ]
assert "variation: the recipe says mode=variation strength=0.5 seed=6" \
    grep -q 'mode=variation' <("$D" info var-002.wav)
assert "variation: recipe seed and strength" \
    [ "$(info var-002.wav strength)/$(info var-002.wav seed)" = 0.5/6 ]
assert "variation: different seeds, different audio" \
    [ "$(info var-001.wav audio_crc)" != "$(info var-002.wav audio_crc)" ]
check "variation again with the same seed" 0 '' '' -- \
    "$D" variation "$in" -o again.wav --seed 6 $S -q
assert "variation: the same seed gives the same audio" \
    [ "$(info again.wav audio_crc)" = "$(info var-002.wav audio_crc)" ]
assert "variation: ... and byte-identical files" cmp -s again.wav var-002.wav
samples "$in" >in.txt
check "variation --strength 0.05" 0 '' '' -- \
    "$D" variation "$in" -o near.wav --strength 0.05 --seed 1 $S -q
samples near.wav >near.txt
c_near=$(corr in.txt near.txt)
echo "# correlation with the input: strength 0.05 $c_near"
assert "variation: strength 0.05 stays close to the input (correlation > 0.9)" gt "$c_near" 0.9
check "variation --strength 1" 0 '' '' -- \
    "$D" variation "$in" -o far.wav --strength 1 --seed 1 $S -q
samples far.wav >far.txt
c_far=$(corr in.txt far.txt)
echo "# correlation with the input: strength 1 $c_far"
assert "variation: strength 1 is further from the input than 0.05" lt "$c_far" "$c_near"
check "synth: a longer input at another rate" 0 '' '' -- \
    "$D" synth other --per-class 1 --rate 16000 --length 3000 -q
check "variation of a 16 kHz, 3000-sample input" 0 '' 'cut to the model' -- \
    "$D" variation other/noise/noise_0000.wav -o resampled.wav --seed 2 $S
assert "variation: resampled and cut to the model's rate and length" \
    [ "$(info resampled.wav rate)/$(info resampled.wav frames)" = 8000/512 ]
check "variation --json" 0 '^\{"path": "j.wav", "mode": "variation"' '' -- \
    "$D" variation "$in" -o j.wav --seed 1 --json -q $S
assert "variation: the JSON parses" valid_json "$out"

# SIGTERM (or Ctrl-C) during variation -n 300: stops at a step, the files written are complete
mkdir int
stop_when TERM 'wrote int/v-001.wav' "$D" variation "$in" -o int/v.wav -n 300 --batch 1 --seed 1 $S
if [ $st -eq 143 ] && grep -q '^dmaudio variation: stopped by SIGTERM; the files written so far are complete$' "$err"; then
    ok "SIGTERM during variation: exit 143, a message"
else
    not_ok "SIGTERM during variation" "exit status $st, expected 143"
fi
int_ok() {
    local k=$(ls -A int | wc -l)
    [ "$k" -ge 1 ] && [ "$k" -lt 300 ] && [ "$(ls int | grep -c '^v-...\.wav$')" -eq "$k" ] || return 1
    for f in int/*.wav; do [ "$(info "$f" frames)" = 512 ] || return 1; done
}
assert "... every file there is complete, no temporary file" int_ok

# ---- inpaint ----
check "inpaint 0.02..0.04 s" 0 '' 'wrote inp.wav' -- \
    "$D" inpaint "$in" --from 0.02 --to 0.04 -o inp.wav --seed 3 $S
samples inp.wav >inp.txt
assert "inpaint: as long as the input" [ "$(wc -l <inp.txt)" -eq "$(wc -l <in.txt)" ]
# samples [0, 160) and [320, 512) are the input's, bit for bit; [160, 320) is new
assert "inpaint: the samples before --from are the input's exactly" \
    cmp -s <(sed -n '1,160p' in.txt) <(sed -n '1,160p' inp.txt)
assert "inpaint: the samples after --to are the input's exactly" \
    cmp -s <(sed -n '321,512p' in.txt) <(sed -n '321,512p' inp.txt)
assert "inpaint: the region itself is regenerated" \
    differ <(sed -n '161,320p' in.txt) <(sed -n '161,320p' inp.txt)
assert "inpaint: the recipe says mode=inpaint" grep -q 'mode=inpaint' <("$D" info inp.wav)
"$D" inpaint "$in" --from 0.02 --to 0.04 -o inp2.wav --seed 3 $S -q
assert "inpaint: the same seed gives a byte-identical file" cmp -s inp.wav inp2.wav
"$D" inpaint "$in" --from 0.02 --to 0.04 -o inp3.wav --seed 4 $S -q
assert "inpaint: another seed gives other audio" [ "$(info inp3.wav audio_crc)" != "$(info inp.wav audio_crc)" ]
check "inpaint past the end continues the sound" 0 '' 'continuing past the end' -- \
    "$D" inpaint "$in" --from 0.05 --to 0.1 -o cont.wav --seed 3 $S
assert "inpaint: a continuation lasts until --to (800 samples)" [ "$(info cont.wav frames)" = 800 ]
assert "inpaint: the recipe holds what was written (8000 Hz, 800 frames, pcm24)" \
    grep -q 'mode=inpaint .* rate=8000 frames=800 format=pcm24$' <("$D" info cont.wav)
samples cont.wav >cont.txt
assert "inpaint: a continuation keeps the input's first 0.05 s exactly" \
    cmp -s <(sed -n '1,400p' in.txt) <(sed -n '1,400p' cont.txt)

# ---- interpolate ----
check "interpolate 4 frames between seeds 11 and 12" 0 '' 'wrote itp-004.wav' -- \
    "$D" interpolate --seed 11 --seed 12 --frames 4 -o itp.wav $S
crcs=$(for k in 1 2 3 4; do info itp-00$k.wav audio_crc; done | sort -u | wc -l)
assert "interpolate: the 4 frames differ" [ "$crcs" -eq 4 ]
check "sample --seed 11 (same sampler and steps)" 0 '' '' -- "$D" sample -o a.wav --seed 11 $S -q
check "sample --seed 12" 0 '' '' -- "$D" sample -o b.wav --seed 12 $S -q
assert "interpolate: the first frame is sample --seed A" \
    [ "$(info itp-001.wav audio_crc)" = "$(info a.wav audio_crc)" ]
assert "interpolate: the last frame is sample --seed B" \
    [ "$(info itp-004.wav audio_crc)" = "$(info b.wav audio_crc)" ]
check "interpolate again, same options" 0 '' '' -- "$D" interpolate --seed 11 --seed 12 --frames 4 -o itq.wav $S -q
same_frames() { for k in 1 2 3 4; do cmp -s itp-00$k.wav itq-00$k.wav || return 1; done; }
assert "interpolate: byte-identical frames" same_frames
assert "interpolate: a middle frame is neither" \
    [ "$(info itp-002.wav audio_crc)" != "$(info a.wav audio_crc)" ]

# ---- eval ----
white_dir() {
    mkdir -p white
    for k in 1 2 3 4 5 6 7 8 9 10 11 12; do white_wav white/w$k.wav 512; done
}
white_dir
check "eval of a folder against itself" 0 '^frechet_distance' '' -- "$D" eval ref ref $T
fd_same=$(awk '$1 == "frechet_distance" { print $2 }' "$out")
check "eval against white noise" 0 '^frechet_distance' '' -- "$D" eval white ref $T
fd_white=$(awk '$1 == "frechet_distance" { print $2 }' "$out")
check "eval of the training set against the held-out set" 0 '^frechet_distance' '' -- \
    "$D" eval data ref $T
fd_data=$(awk '$1 == "frechet_distance" { print $2 }' "$out")
echo "# Frechet distance: same set $fd_same, training vs held-out $fd_data, white noise $fd_white"
assert "eval: a set against itself is ~0" lt "$fd_same" 1e-6
assert "eval: white noise is far (FD > 10 x training vs held-out)" \
    gt "$fd_white" "$(awk -v d="$fd_data" 'BEGIN { print 10 * d }')"
assert "eval: per-class figures for the shared classes" grep -qE '^  tone +fd' "$out"
check "eval --json" 0 '^\{"gen": "data", "ref": "ref", "rate": 8000' '' -- \
    "$D" eval data ref --json $T
assert "eval: the JSON parses" valid_json "$out"
assert "eval: the JSON has KID and the memorisation check" \
    grep -q '"kid": {"mean": .*"memorisation": {"gen_median_nn"' "$out"
assert "eval: the JSON has per-class figures" grep -q '"classes": {"click": {' "$out"
check "eval --elbo" 0 '^elbo +[0-9.]+ \+- [0-9.]+ bits per sample' '' -- \
    "$D" eval --elbo m.dmm ref --timesteps 10 $T
check "eval --elbo --json" 0 '"bits_per_sample": [0-9.]+, "std_err": [0-9.]' '' -- \
    "$D" eval --elbo m.dmm ref --timesteps 10 --json $T
assert "eval --elbo: the JSON parses" valid_json "$out"
bps=$(grep -oE '"bits_per_sample": [0-9.e+-]+' "$out" | head -1 | sed 's/.*: //')
check "eval --elbo -m MODEL DATA_DIR" 0 '"model": "m.dmm", .*"bits_per_sample": [0-9.]+' '' -- \
    "$D" eval --elbo -m m.dmm ref --timesteps 10 --json $T
bps_m=$(grep -oE '"bits_per_sample": [0-9.e+-]+' "$out" | head -1 | sed 's/.*: //')
assert "eval --elbo: -m gives the same bound as the MODEL argument ($bps_m)" [ "$bps_m" = "$bps" ]
check "eval --elbo DATA_DIR uses \$DMAUDIO_MODEL" 0 '"model": "m.dmm", ' '' -- \
    env DMAUDIO_MODEL=m.dmm "$D" eval --elbo ref --timesteps 10 --json $T
check "info -m MODEL" 0 '^model +m$' '' -- "$D" info -m m.dmm
assert "eval --elbo: a plausible bound (0 < bits < 40)" \
    awk -v b="$bps" 'BEGIN { exit !(b > 0 && b < 40) }'

# ---- spectrogram ----
check "spectrogram" 0 '' 'wrote spec.png' -- "$D" spectrogram "$in" -o spec.png -W 320 -H 160
assert "spectrogram: the PNG signature" \
    [ "$(od -An -t x1 -N 8 spec.png | tr -d ' \n')" = 89504e470d0a1a0a ]
assert "spectrogram: IHDR says 320 x 160" \
    [ "$(od -An -t x1 -j 12 -N 12 spec.png | tr -d ' \n')" = 4948445200000140000000a0 ]
"$D" spectrogram "$in" -o spec2.png -W 320 -H 160 -q
assert "spectrogram: the same input and options -> a byte-identical PNG" cmp -s spec.png spec2.png
check "spectrogram of a long white noise, default size" 0 '' '' -- \
    "$D" spectrogram white/w1.wav -o w.png -q
assert "spectrogram: default 800 x 400" \
    [ "$(od -An -t x1 -j 16 -N 8 w.png | tr -d ' \n')" = 0000032000000190 ]

# ---- bad input ----
echo "not audio" >text.wav
check "variation: a missing input" 1 '' 'nothing\.wav' -- "$D" variation nothing.wav -o x.wav $S
check "variation: a file that is not audio" 1 '' 'text\.wav: not a sound file' -- \
    "$D" variation text.wav -o x.wav $S
check "variation: an output folder that does not exist" 1 '' 'nowhere/x\.wav: cannot write' -- \
    "$D" variation "$in" -o nowhere/x.wav $S
check "inpaint: a missing input" 1 '' 'nothing\.wav' -- \
    "$D" inpaint nothing.wav --from 0 --to 0.01 -o x.wav $S
check "inpaint: a file that is not audio" 1 '' 'text\.wav: not a sound file' -- \
    "$D" inpaint text.wav --from 0 --to 0.01 -o x.wav $S
check "spectrogram: a missing input" 1 '' 'nothing\.wav' -- "$D" spectrogram nothing.wav -o x.png
check "spectrogram: a file that is not audio" 1 '' 'text\.wav: not a sound file' -- \
    "$D" spectrogram text.wav -o x.png
check "spectrogram: an output folder that does not exist" 1 '' 'nowhere/x\.png' -- \
    "$D" spectrogram "$in" -o nowhere/x.png
check "spectrogram: an output under a file" 1 '' 'text\.wav/x\.png' -- \
    "$D" spectrogram "$in" -o text.wav/x.png
assert "no output was left behind by the failures" absent x.wav x.png nowhere
cp spec.png keep.png
check "spectrogram: an existing output needs --force" 1 '' 'spec\.png exists' -- \
    "$D" spectrogram "$in" -o spec.png -W 400
assert "spectrogram: the existing picture is untouched" cmp -s spec.png keep.png
cp var-001.wav keep.wav
check "variation: an existing output needs --force" 1 '' 'var-001\.wav exists' -- \
    "$D" variation "$in" -o var.wav -n 2 $S
assert "variation: the existing file is untouched" cmp -s var-001.wav keep.wav
check "eval: a missing folder" 1 '' 'nothing' -- "$D" eval nothing ref
check "eval --elbo: a corrupt model" 1 '' 'text\.wav' -- "$D" eval --elbo text.wav ref
assert "no temporary file anywhere" no_temp_left .

# ---- usage errors ----
check "variation: no -o" 2 '' 'an output file is needed' -- "$D" variation "$in" $S
check "variation: strength 0" 2 '' "--strength: '0' is not a number" -- \
    "$D" variation "$in" -o x.wav --strength 0 $S
check "variation: an unknown class" 2 '' "unknown class 'kick'" -- \
    "$D" variation "$in" -o x.wav --class kick $S
check "inpaint: --to before --from" 2 '' 'must come after --from' -- \
    "$D" inpaint "$in" --from 0.04 --to 0.02 -o x.wav $S
check "inpaint: a region longer than the model's clips" 2 '' 'longer than the model' -- \
    "$D" inpaint "$in" --from 0 --to 0.5 -o x.wav $S
check "interpolate: one seed" 2 '' 'two seeds are needed' -- \
    "$D" interpolate --seed 1 --frames 3 -o x.wav $S
check "interpolate: a third seed" 2 '' 'more than twice' -- \
    "$D" interpolate --seed 1 --seed 2 --seed 3 --frames 3 -o x.wav $S
check "eval: one folder" 2 '' 'two arguments are needed' -- "$D" eval ref
check "eval: --timesteps without --elbo" 2 '' 'need --elbo' -- "$D" eval ref ref --timesteps 4
check "eval: -m without --elbo" 2 '' '-m, --timesteps and --bits need --elbo' -- "$D" eval -m m.dmm ref ref
check "eval --elbo: the model twice" 2 '' 'the model is given twice \(-m m.dmm and .m.dmm.\)' -- \
    "$D" eval --elbo -m m.dmm m.dmm ref
check "eval --elbo -m without DATA_DIR" 2 '' 'no DATA_DIR given' -- "$D" eval --elbo -m m.dmm
check "info: -m and a file" 2 '' 'one file at a time' -- "$D" info -m m.dmm "$in"
check "info -m on a file that is not a model: exit 1 naming it" 1 '' "^dmaudio info: $in: bad magic" -- \
    "$D" info -m "$in"
check "spectrogram: not a .png" 2 '' 'must end in \.png' -- "$D" spectrogram "$in" -o x.jpg
check "spectrogram: --width too small" 2 '' "--width: '10' is not an integer" -- \
    "$D" spectrogram "$in" -o x.png --width 10
check "help variation" 0 'usage: dmaudio variation IN -o OUT' '' -- "$D" help variation
check "help eval" 0 'dmaudio eval --elbo MODEL DATA_DIR' '' -- "$D" help eval

cli_done
