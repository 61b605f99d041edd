#!/usr/bin/env python3
# Writes the seed corpus of tests/fuzz/fuzz_plugin_state.c (run once; the files are committed):
#   python3 tests/fuzz/make_plugin_state_corpus.py tests/fuzz/corpus/plugin_state
# seeds for fuzz_plugin_state: records [type][klen][key][vlen][value]; type 0 Path 1 Long 2 String 3 Int
import struct, sys, os
d = sys.argv[1]
def rec(t, k, v):
    k = k.encode(); return bytes([t, len(k)]) + k + bytes([len(v)]) + v
L = lambda x: struct.pack('<q', x)
P = lambda s: s.encode() + b'\0'
session = rec(0,'model',P('model.dmm')) + rec(1,'modelChecksum',L(0x0d4357c4)) + rec(1,'freshSeed',L(99)) + rec(1,'freshCounter',L(7))
for i,(name,f) in enumerate([('0-fixed','clip.wav'),('0-locked','rate.wav'),('1-pool0','stereo.wav'),('1-pool1','scale.wav'),('2-pool0','text.wav'),('32-pool3','missing.wav')]):
    session += rec(0,'clip-'+name,P(f)) + rec(1,'recipe-'+name,L(1000+i))
open(os.path.join(d,'session.bin'),'wb').write(session)
open(os.path.join(d,'preset-no-model.bin'),'wb').write(rec(1,'freshSeed',L(5)))
open(os.path.join(d,'broken-types.bin'),'wb').write(rec(0,'model',b'model.dmm') + rec(3,'modelChecksum',b'\1\2\3\4') + rec(2,'clip-0-fixed',P('clip.wav')) + rec(1,'recipe-0-fixed',b'\1') + rec(0,'clip-1-fixed',P('clip.wav')) + rec(0,'recipe-1-fixed',P('x')))
open(os.path.join(d,'broken-paths.bin'),'wb').write(rec(0,'model',P('../../etc/passwd')) + rec(0,'clip-0-fixed',P('/dev/stdin')) + rec(1,'recipe-0-fixed',L(1)) + rec(0,'clip-0-locked',b'\0') + rec(1,'recipe-0-locked',L(2)))
open(os.path.join(d,'empty.bin'),'wb').write(b'')
# a clip whose recipe is 1 byte, not an int64 (the plugin must check the size)
open(os.path.join(d,'broken-recipe-size.bin'),'wb').write(rec(0,'model',P('model.dmm')) + rec(0,'clip-0-fixed',P('clip.wav')) + rec(1,'recipe-0-fixed',b'\1'))
