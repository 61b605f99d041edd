#!/usr/bin/env bash
# The plugin in jalv, under a JACK server on the dummy driver (synchronous mode, 48 kHz,
# 256-frame periods). jack_midiseq plays note 60 twice a second; jack_rec records the
# plugin's outputs. Checks: silent with no MIDI, sound with it, and in fixed mode every note
# is the same clip, sample for sample (16-bit recording). The model is a tiny one trained
# here for 5 steps (its clips are noise-like).
#
# Usage: DMAUDIO=build/dmaudio DMAUDIO_BUILD_DIR=build bash tests/hosts/test_jalv.sh
# Prints TAP; skips when jackd, jalv or the JACK example clients (jackd2) are not installed.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
need_plain_plugin
need jackd jalv jack_wait jack_lsp jack_connect jack_midiseq jack_rec od
cd "$tmp" || exit 1

make_model "$tmp/tiny.dmm"
ok $? "a tiny model to play"

# One fixed server name: JACK keeps at most 8 servers in its shared registry and frees the
# entry of a dead server only when a server of the same name starts (a jackd killed under
# load leaves its entry behind; with a name per run, eight such runs blocked every later one).
export JACK_DEFAULT_SERVER=dmaudio-test
export JACK_NO_AUDIO_RESERVATION=1
jackd --no-realtime -S -d dummy -r 48000 -p 256 >jackd.log 2>&1 &
started $!
jack_wait -w -t 10 >/dev/null 2>&1
ok $? "jackd (dummy driver, synchronous) is up"

# jalv names the ports CLIENT:SYMBOL
export DMAUDIO_MODEL=$tmp/tiny.dmm
jalv -i -x -n dmplug -c mode=0 -c class=1 -c seed=5 https://dmaudio.dev/plugins/dmaudio \
    >jalv.log 2>&1 </dev/null &
started $!
up=1
for _ in $(seq 100); do
    if jack_lsp 2>/dev/null | grep -q '^dmplug:out_r$' && grep -q 'dmaudio: loaded' jalv.log; then
        up=0
        break
    fi
    sleep 0.1
done
ok $up "jalv loads the plugin and its model (ports dmplug:control, out_l, out_r)"
[ $up = 0 ] || sed 's/^/#   jalv: /' jalv.log
sleep 1 # the worker fills the clip pool

jack_rec -f silent.wav -d 1 -b 16 dmplug:out_l dmplug:out_r >/dev/null 2>&1
peak=$(peak silent.wav)
[ "$peak" = "0" ] || [ "$peak" = "0.000000" ]
ok $? "no MIDI: silence (peak ${peak:-?})"

# note 60 at frames 0 and 24000 of a 48000-frame loop, 2000 frames long
jack_midiseq seq 48000 0 60 2000 24000 60 2000 >/dev/null 2>&1 &
started $!
for _ in $(seq 50); do jack_lsp 2>/dev/null | grep -q '^seq:out$' && break; sleep 0.1; done
jack_connect seq:out dmplug:control
jack_rec -f notes.wav -d 3 -b 16 dmplug:out_l dmplug:out_r >/dev/null 2>&1
peak=$(peak notes.wav)
awk -v p="${peak:-0}" 'BEGIN { exit !(p > 0.001) }'
ok $? "MIDI notes: sound (peak ${peak:-?})"

# onsets (a non-zero sample after 1000 silent ones) of the left channel, and the 2000
# samples after each: in fixed mode every note plays the same clip
od -An -v -j 44 -t d2 notes.wav | tr -s ' ' '\n' | awk 'NF' |
    awk 'NR % 2 == 1 { print }' >left.txt
awk -v want=2000 '
    { x[NR] = $1 }
    END {
        zeros = 0; k = 0
        for (i = 1; i <= NR; i++) {
            if (x[i] != 0 && zeros >= 1000 && i + want <= NR) onset[++k] = i
            zeros = x[i] == 0 ? zeros + 1 : 0
        }
        if (k < 2) { print "# onsets found: " k; exit 1 }
        for (j = 2; j <= k; j++)
            for (s = 0; s < want; s++)
                if (x[onset[j] + s] != x[onset[1] + s]) {
                    print "# note " j " differs from note 1 at sample " s; exit 1
                }
        print "# " k " notes, identical"
    }' left.txt
ok $? "fixed mode: every note is the same clip, sample for sample"

finish
