#!/usr/bin/env bash
# The plugin in Ardour 7, headless: ardour7-lua builds a session on the dummy backend (a MIDI
# track with the plugin, a MIDI region of four GM drum notes from 0.5 s), then
# ardour7-export renders it (free-wheeling: Ardour runs the LV2 worker synchronously) to a
# WAV, twice. Checks: silence before the first note, sound after it, the model saved in the
# plugin's state, and the same samples from both renders (fixed mode).
#
# Usage: DMAUDIO=build/dmaudio DMAUDIO_BUILD_DIR=build bash tests/hosts/test_ardour.sh
# Prints TAP; skips when Ardour 7 (Debian package ardour) is not installed.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
need_plain_plugin
need ardour7-lua ardour7-export od

make_model "$tmp/tiny.dmm"
ok $? "a tiny model to play"

DMAUDIO_MODEL=$tmp/tiny.dmm timeout 300 ardour7-lua "$here/ardour_session.lua" "$tmp/sess" sess \
    >"$tmp/lua.log" 2>&1
status=$?
grep -q 'session saved' "$tmp/lua.log"
ok $((status + $?)) "ardour7-lua: a session with a MIDI track, the plugin and a MIDI region"
[ $status = 0 ] || sed 's/^/#   ardour7-lua: /' "$tmp/lua.log" | tail -20

# the session range, 0 to 4 s (superclock ticks: 282240000 a second in Ardour 7)
sed -i 's|<Locations/>|<Locations><Location id="999999" name="session" start="a0" end="a1128960000" flags="IsSessionRange" locked="0" timestamp="0" cue="0"/></Locations>|' \
    "$tmp/sess/sess.ardour"
grep -qs 'dmaudio#model' "$tmp"/sess/plugins/*/state*/state.ttl
ok $? "the plugin's state in the session holds the model file"

# rendered without DMAUDIO_MODEL: the model comes from the session
for k in 1 2; do
    timeout 300 ardour7-export -o "$tmp/render$k.wav" "$tmp/sess" sess >"$tmp/export$k.log" 2>&1
    ok $? "ardour7-export renders the session (run $k)"
done
p=$(peak "$tmp/render1.wav")
awk -v p="${p:-0}" 'BEGIN { exit !(p > 0.001) }'
ok $? "the render is not silent (peak ${p:-?})"

# 16-bit stereo after a 44-byte header: the first 0.45 s (21600 frames) are silent
first=$(od -An -v -j 44 -N $((21600 * 4)) -t d2 "$tmp/render1.wav" | tr -s ' ' '\n' |
    awk 'NF && $1 != 0 { c++ } END { print c + 0 }')
ok $([ "$first" = 0 ] && echo 0 || echo 1) "silent before the first note ($first non-zero samples)"
after=$(od -An -v -j $((44 + 24000 * 4)) -N $((4800 * 4)) -t d2 "$tmp/render1.wav" |
    tr -s ' ' '\n' | awk 'NF && $1 != 0 { c++ } END { print c + 0 }')
ok $([ "$after" -gt 1000 ] && echo 0 || echo 1) "sound from the first note on ($after non-zero samples in 0.1 s)"

c1=$("$D" info "$tmp/render1.wav" | awk '$1 == "audio" { print $3 }')
c2=$("$D" info "$tmp/render2.wav" | awk '$1 == "audio" { print $3 }')
ok $([ -n "$c1" ] && [ "$c1" = "$c2" ] && echo 0 || echo 1) "both renders have the same samples (crc $c1, $c2)"

finish
