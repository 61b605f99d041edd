#!/usr/bin/python3
"""Generate tests/fixtures/stft_loss.dmfx: reference values of the multi-resolution STFT loss
(Yamamoto et al. 2020, Parallel WaveGAN) and of its gradient, for tests/test_stft_loss.c.

Definitions (core/include/dmaudio_spectral.h): STFT as librosa's (center=True, reflect
padding, periodic Hann, not normalised), |S| = sqrt(re^2 + im^2 + 1e-7),
  SC_r = || |S_r(y)| - |S_r(x)| ||_F / || |S_r(x)| ||_F,
  LM_r = mean | log |S_r(y)| - log |S_r(x)| |,
  L    = mean_r (SC_r + LM_r).
Two independent references, both in float64 from the same float32 inputs the C code gets:
  - the loss and its parts with numpy (the STFT written out: np.pad reflect, frames, rfft);
  - the gradient dL/dy with torch autograd (torch.stft, center=True, pad_mode="reflect").
The script checks that the two agree on the loss (1e-12) and that the autograd gradient
matches central finite differences of the numpy loss on 24 coordinates per case (step 1e-7,
relative 1e-5 of the largest component), so each reference vouches for the other.

Tensors per case k: case{k}.y, case{k}.x (n), case{k}.n_fft, case{k}.hop (R, int32),
case{k}.loss (1), case{k}.parts (2R: SC_r, LM_r), case{k}.grad (n).

Usage: /usr/bin/python3 tests/gen_stft_loss_fixtures.py   (python3-numpy, python3-torch)
"""

import os
import struct
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "stft_loss.dmfx")
EPS = 1e-7


class Fixture:
    """An ordered list of named tensors, written as a .dmfx file (docs/architecture.md)."""

    def __init__(self):
        self.items = OrderedDict()

    def add(self, name, value, dtype=None):
        if name in self.items:
            raise ValueError("duplicate tensor name %r" % name)
        arr = np.asarray(value)
        if dtype is None:
            dtype = "i32" if np.issubdtype(arr.dtype, np.integer) else "f32"
        self.items[name] = arr.astype("<i4" if dtype == "i32" else "<f4")

    def write(self, path):
        out = bytearray(b"DMFX")
        out += struct.pack("<II", 1, len(self.items))
        for name, arr in self.items.items():
            nb = name.encode("ascii")
            out += struct.pack("<I", len(nb)) + nb
            out += struct.pack("<I", arr.ndim)
            for d in arr.shape:
                out += struct.pack("<I", d)
            out += struct.pack("<I", 1 if arr.dtype == np.dtype("<i4") else 0)
            out += np.ascontiguousarray(arr).tobytes()
        with open(path, "wb") as fh:
            fh.write(bytes(out))
        return len(out)


# ---- numpy: the loss ----

def stft_np(x, n_fft, hop):
    """librosa.stft(center=True, pad_mode="reflect"), periodic Hann: (bins, frames)."""
    xp = np.pad(np.asarray(x, np.float64), n_fft // 2, mode="reflect")
    frames = 1 + (len(xp) - n_fft) // hop
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.fft.rfft(xp[idx] * w, axis=1).T


def loss_np(y, x, res):
    parts = []
    for n_fft, hop in res:
        sy, sx = stft_np(y, n_fft, hop), stft_np(x, n_fft, hop)
        my = np.sqrt(sy.real ** 2 + sy.imag ** 2 + EPS)
        mx = np.sqrt(sx.real ** 2 + sx.imag ** 2 + EPS)
        parts.append(np.linalg.norm(my - mx) / np.linalg.norm(mx))
        parts.append(np.mean(np.abs(np.log(my) - np.log(mx))))
    return sum(parts) / len(res), np.array(parts)


# ---- torch: the gradient ----

def loss_torch(y, x, res):
    total = 0.0
    for n_fft, hop in res:
        w = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        sy = torch.stft(y, n_fft, hop_length=hop, window=w, center=True, pad_mode="reflect",
                        return_complex=True)
        sx = torch.stft(x, n_fft, hop_length=hop, window=w, center=True, pad_mode="reflect",
                        return_complex=True)
        my = torch.sqrt(sy.real ** 2 + sy.imag ** 2 + EPS)
        mx = torch.sqrt(sx.real ** 2 + sx.imag ** 2 + EPS)
        total = total + torch.linalg.norm(my - mx) / torch.linalg.norm(mx)
        total = total + torch.mean(torch.abs(torch.log(my) - torch.log(mx)))
    return total / len(res)


def grad_torch(y, x, res):
    yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float64)
    loss = loss_torch(yt, xt, res)
    loss.backward()
    return float(loss), yt.grad.numpy().copy()


def main():
    rng = np.random.default_rng(20260111)
    f = Fixture()
    cases = []
    # 0: the training resolutions at 8 kHz (n = 512): a decaying tone and a noisy, quieter copy
    n = 512
    t = np.arange(n) / 8000.0
    x = np.exp(-t / 0.03) * (0.6 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 880 * t))
    y = 0.8 * x + 0.05 * rng.standard_normal(n)
    cases.append((y, x, [(64, 16), (128, 32), (256, 64)]))
    # 1: independent noises, n not a multiple of the hops, hops of n/4 and n/2
    n = 333
    cases.append((rng.standard_normal(n) * 0.3, rng.standard_normal(n) * 0.5,
                  [(32, 8), (64, 16), (128, 64)]))
    # 2: a click in silence (the eps floor) against a perturbed, slightly shifted copy
    n = 256
    x = np.zeros(n)
    x[40:48] = [0.0, 0.9, -0.7, 0.5, -0.3, 0.2, -0.1, 0.05]
    y = 0.9 * np.roll(x, 2) + 1e-3 * rng.standard_normal(n)
    cases.append((y, x, [(16, 4), (64, 16)]))
    # 3: one resolution, a short signal (reflections of the padding reach far in)
    n = 40
    cases.append((rng.standard_normal(n), rng.standard_normal(n), [(64, 16)]))

    for k, (y, x, res) in enumerate(cases):
        y32, x32 = y.astype(np.float32), x.astype(np.float32)
        y64, x64 = y32.astype(np.float64), x32.astype(np.float64)
        loss, parts = loss_np(y64, x64, res)
        tloss, grad = grad_torch(y64, x64, res)
        assert abs(loss - tloss) <= 1e-12 * abs(loss), (k, loss, tloss)
        # the reference gradient against central differences of the numpy loss
        idx = rng.choice(len(y64), size=min(24, len(y64)), replace=False)
        h = 1e-7
        for i in idx:
            e = np.zeros_like(y64)
            e[i] = h
            fd = (loss_np(y64 + e, x64, res)[0] - loss_np(y64 - e, x64, res)[0]) / (2 * h)
            assert abs(fd - grad[i]) <= 1e-5 * np.max(np.abs(grad)) + 1e-9, (k, i, fd, grad[i])
        f.add("case%d.y" % k, y32)
        f.add("case%d.x" % k, x32)
        f.add("case%d.n_fft" % k, np.array([r[0] for r in res], np.int32))
        f.add("case%d.hop" % k, np.array([r[1] for r in res], np.int32))
        f.add("case%d.loss" % k, np.array([loss]))
        f.add("case%d.parts" % k, parts)
        f.add("case%d.grad" % k, grad)
        print("case %d: n %d, resolutions %s, loss %.6f, |grad|max %.3g" %
              (k, len(y), res, loss, np.max(np.abs(grad))))
    size = f.write(OUT)
    print("wrote %s (%d bytes)" % (OUT, size))


if __name__ == "__main__":
    main()
