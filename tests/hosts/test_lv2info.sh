#!/usr/bin/env bash
# lilv's command-line tools see the bundle in the build tree: lv2ls lists the plugin, lv2info
# shows an instrument with its 18 ports (MIDI and patch messages in, notify out, stereo audio
# out, 14 controls), its features and the five presets.
#
# Usage: DMAUDIO_BUILD_DIR=build bash tests/hosts/test_lv2info.sh   (prints TAP)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
need lv2ls lv2info
uri=https://dmaudio.dev/plugins/dmaudio

LV2_PATH=$build/lv2 lv2ls | grep -qx "$uri"
ok $? "LV2_PATH=BUILD/lv2 lv2ls lists $uri"

lv2info "$uri" >"$tmp/info.txt" 2>&1
ok $? "lv2info $uri"
grep -q 'Class: *Instrument Plugin' "$tmp/info.txt"
ok $? "an instrument plugin"
ports=$(grep -c '^	Port [0-9]*:' "$tmp/info.txt")
ok $([ "$ports" = 18 ] && echo 0 || echo 1) "18 ports ($ports)"
for sym in control notify out_l out_r class mode seed steps sampler guidance variation pitch \
    root gain length note_off release polyphony; do
    grep -q "Symbol: *$sym\$" "$tmp/info.txt" || { echo "# no port $sym"; false; } || break
done
ok $? "every port symbol is listed"
grep -q 'http://lv2plug.in/ns/ext/worker#schedule' "$tmp/info.txt" &&
    grep -q 'http://lv2plug.in/ns/ext/state#interface' "$tmp/info.txt"
ok $? "worker and state extensions"
grep -q 'Scale Points:' "$tmp/info.txt" && grep -q '= "GM drum map"' "$tmp/info.txt"
ok $? "the class port's scale points (GM drum map, classes)"
for p in "Generative GM drum kit" "Fresh kicks" "Snare roulette" "Hat rain" "Locked kit"; do
    grep -q "^	  *$p\$" "$tmp/info.txt" || { echo "# no preset '$p'"; false; } || break
done
ok $? "the five presets are listed"
finish
