#!/usr/bin/env bash
# `dmaudio play` and `dmaudio devices`, for real, through PortAudio's ALSA
# back-end: CI has no sound card, so a test ALSA configuration defines devices
# that write what they are sent to a file ("type file" over the "null" PCM):
#   dmtest    float samples as the stream sends them (the default device);
#   dmtest16  the same through a "plug" that converts to 16-bit integers.
# The samples that arrive are compared with the file played.
# Prints TAP. Usage: DMAUDIO=build/dmaudio tests/test_cli_play.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
alsa_conf=/usr/share/alsa/alsa.conf
if [ ! -f $alsa_conf ]; then
    echo "1..0 # SKIP no $alsa_conf (Debian: libasound2-data)"
    exit 0
fi
cli_tmpdir play

# CRC-32 of a file's bytes (gzip's trailer), as `dmaudio info` prints audio_crc
crc32() { gzip -c | tail -c 8 | head -c 4 | od -An -tx4 | tr -d ' \n'; }
size() { if [ -f "$1" ]; then wc -c <"$1"; else echo 0; fi; }

cat >test.conf <<EOF
pcm.dmtest {
    type file
    slave.pcm "null"
    file "$tmp/played.raw"
    format "raw"
}
pcm.dmtest16file {
    type file
    slave.pcm "null"
    file "$tmp/played16.raw"
    format "raw"
}
pcm.dmtest16 {
    type plug
    slave {
        pcm "dmtest16file"
        format S16_LE
    }
}
pcm.!default "dmtest"
EOF
export ALSA_CONFIG_PATH=$alsa_conf:$tmp/test.conf
unset DMAUDIO_DEVICE DMAUDIO_AUDIO_DEBUG

# two mono 24-bit WAVs, 8000 Hz: a tone of 4000 frames and a click of 3000
"$D" synth s --per-class 1 --rate 8000 --length 4000 -q
"$D" synth c --per-class 1 --rate 8000 --length 3000 -q
a=s/tone/tone_0000.wav b=c/click/click_0000.wav

# ---- devices ----
check "devices lists the test devices" 0 '^ +[0-9]+  dmtest +ALSA +[0-9]+  [0-9]+ Hz$' '' -- "$D" devices
assert "devices marks the default output with '*'" grep -qE '^\* +[0-9]+  default +ALSA ' "$out"
assert "devices: a header line" grep -qE '^ +index  name +host API +channels  default rate$' "$out"
assert "devices: no ALSA or JACK chatter on stderr" [ ! -s "$err" ]
check "devices --json" 0 '^\{"index": [0-9]+, "name": "dmtest16", "host_api": "ALSA", "channels": [0-9]+, "default_rate": [0-9]+, "default": false\}$' '' -- \
    "$D" devices --json
assert "devices --json: the default is marked" grep -qE '"name": "default", .*"default": true\}$' "$out"
idx=$(grep -F '"name": "dmtest16"' "$out" | grep -oE '"index": [0-9]+' | grep -oE '[0-9]+')
check "devices: unexpected argument" 2 '' "unexpected argument 'x'" -- "$D" devices x

# ---- play: the samples arrive ----
rm -f played.raw
check "play a file on the default device" 0 '' "^dmaudio play: $a \(0.500 s, 8000 Hz, 1 channel\) on default$" -- \
    "$D" play $a
assert "no ALSA or JACK chatter on stderr" [ "$(grep -cvE '^dmaudio play: ' "$err")" -eq 0 ]
assert "the device received 4000 float samples (16000 bytes, got $(size played.raw))" \
    [ "$(size played.raw)" -eq 16000 ]
crc=$(json $a audio_crc)
assert "... exactly the file's samples (CRC-32 $crc)" [ -n "$crc" -a "$(crc32 <played.raw)" = "$crc" ]
check "play two files" 0 '' '' -- "$D" play -q $a $b
assert "... back to back on one stream (7000 samples)" [ "$(size played.raw)" -eq 28000 ]
assert "... in order, unchanged" \
    [ "$(head -c 16000 played.raw | crc32)" = "$crc" -a "$(tail -c 12000 played.raw | crc32)" = "$(json $b audio_crc)" ]
check "play --device dmtest16 (by name)" 0 '' '' -- "$D" play -q --device dmtest16 $a
assert "a 16-bit device gets 2 bytes a sample (8000 bytes, got $(size played16.raw))" \
    [ "$(size played16.raw)" -eq 8000 ]
"$D" play -q $a
stats=$(paste <(od -An -v -tf4 -w4 played.raw) <(od -An -v -td2 -w2 played16.raw) |
    awk '{ d = $1 * 32768 - $2; if (d < 0) d = -d; if (d > m) m = d; sx += $1 * $1; sy += $2 * $2; sxy += $1 * $2 }
         END { printf "%.3f %.6f", m, sxy / sqrt(sx * sy) }')
assert "... the same samples within 1 LSB, correlation 1 (max diff, correlation: $stats)" \
    awk -v s="$stats" 'BEGIN { split(s, v, " "); exit !(v[1] <= 1.0001 && v[2] > 0.9999) }'
rm -f played16.raw
check "play --device N (the index devices lists)" 0 '' '' -- "$D" play -q -d "$idx" $a
assert "... plays on that device" [ "$(size played16.raw)" -eq 8000 ]
rm -f played16.raw
check "DMAUDIO_DEVICE chooses the device" 0 '' '' -- env DMAUDIO_DEVICE=dmtest16 "$D" play -q $a
assert "... plays on that device" [ "$(size played16.raw)" -eq 8000 ]
check "a unique part of a name is enough (any case)" 0 '' 'on dmtest16file$' -- "$D" play -d 16FILE $a

# ---- sample --play: the generated clip arrives ----
"$D" synth k --per-class 4 --rate 8000 --length 512 -q
check "a tiny model to sample from" 0 '' '' -- \
    "$D" train k -o m.dmm --preset tiny --steps 2 --batch 2 --threads 1 -q
S="-m m.dmm --steps 4 --threads 1"
rm -f played.raw
check "sample --play -o FILE: writes, then plays" 0 '' '^dmaudio sample: playing seed 3 \(0.064 s\)$' -- \
    "$D" sample $S --seed 3 --format float -o p.wav --play
assert "... the file is written (512 frames)" [ "$(json p.wav frames)" = 512 ]
crc=$(json p.wav audio_crc)
assert "... the device received its 512 float samples (2048 bytes, got $(size played.raw))" \
    [ "$(size played.raw)" -eq 2048 ]
assert "... exactly the clip written (CRC-32 $crc)" [ -n "$crc" -a "$(crc32 <played.raw)" = "$crc" ]
rm -f played.raw
ls -A >files.before
check "sample --play without -o: plays, writes no file" 0 '' '' -- \
    "$D" sample $S --seed 3 --play -q
assert "... no clip.wav, no other file" [ ! -e clip.wav -a "$(ls -A | grep -v played.raw)" = "$(grep -v played.raw files.before)" ]
assert "... the same audio as with -o (seed 3)" [ "$(crc32 <played.raw)" = "$crc" ]
rm -f played.raw
check "sample -n 2 --play --json: each clip plays, JSON without a path" 0 \
    '^\{"path": null, "seed": 4, ' '' -- "$D" sample $S --seed 3 -n 2 --play --json -q
assert "... two clips back to back (4096 bytes, got $(size played.raw))" [ "$(size played.raw)" -eq 4096 ]
assert "... the first is seed 3's" [ "$(head -c 2048 played.raw | crc32)" = "$crc" ]
rm -f played16.raw
check "sample --play --device dmtest16" 0 '' '' -- "$D" sample $S --seed 3 --play -d dmtest16 -q
assert "... plays on that device (1024 bytes)" [ "$(size played16.raw)" -eq 1024 ]
check "sample --play with no such device: exit 1, before writing" 1 '' \
    "^dmaudio sample: --play: no output device 'nosuch' \(see 'dmaudio devices'\)$" -- \
    "$D" sample $S --seed 3 --play --device nosuch -o q.wav
assert "... no file written" [ ! -e q.wav ]
check "sample --device without --play: usage error" 2 '' '--device chooses where --play plays' -- \
    "$D" sample $S --device dmtest16 -o q.wav
check "sample --help shows --play" 0 '-p, --play ' '' -- "$D" sample --help

# ---- play: errors ----
cp played.raw before.raw
check "no such device: exit 1, a hint" 1 '' "^dmaudio play: no output device 'nosuch' \(see 'dmaudio devices'\)$" -- \
    "$D" play -d nosuch $a
check "no such device number" 1 '' "no output device number 99 " -- "$D" play -d 99 $a
check "an ambiguous name" 1 '' "'dmtest1' matches 2 output devices" -- "$D" play -d dmtest1 $a
check "a missing file: exit 1 naming it" 1 '' '^dmaudio play: nofile.wav: No such file or directory$' -- \
    "$D" play $a nofile.wav
echo "not a sound" >bad.wav
check "a file that is not audio: exit 1 naming it" 1 '' '^dmaudio play: bad.wav: not a sound file' -- "$D" play bad.wav
head -c 100 $a >cut.wav
check "a truncated file" 1 '' '^dmaudio play: cut.wav: ' -- "$D" play cut.wav
head -c 5000 $a >cut2.wav # the header and part of the samples
check "a file cut in its samples, after a good one: exit 1 before playing anything" 1 '' \
    '^dmaudio play: cut2.wav: truncated \(the file is shorter than its header says\)$' -- "$D" play $a cut2.wav
assert "nothing was played by the failed commands" cmp -s played.raw before.raw
check "play without a file: usage error" 2 '' 'no file given' -- "$D" play
check "play: unknown option" 2 '' "unknown option '--loud'" -- "$D" play --loud $a
check "play --help" 0 '--device DEV' '' -- "$D" play --help
check "help devices" 0 '^usage: dmaudio devices' '' -- "$D" help devices

cli_done
