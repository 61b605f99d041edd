#!/usr/bin/python3
"""Generate tests/fixtures/spectral.dmfx: reference numbers for the spectral engine and the
evaluation metrics (tests/test_spectral.c, tests/test_eval.c).

An independent numpy/scipy implementation of librosa's definitions (librosa itself is not a
Debian package), written from librosa's documentation and source, not from the C code:
  - STFT, center=True, pad_mode "reflect" or "constant", periodic Hann window, np.fft.rfft;
  - hz_to_mel / mel_to_hz (Slaney and HTK), mel_frequencies, filters.mel with norm="slaney";
  - power_to_db (ref 1, amin 1e-10, top_db None); MFCC = scipy.fft.dct(type 2, norm="ortho");
  - spectral centroid, flatness (power 2, amin 1e-10), rolloff (roll_percent 0.85);
  - the clip embedding of core/include/dmaudio_spectral.h;
  - the Fréchet distance with scipy.linalg.sqrtm (as in the FID/FAD reference code), the
    unbiased MMD^2 with the cubic polynomial kernel on whole sets, nearest-neighbour distances.
Inputs are drawn as float32 (fixed seed); everything is computed in float64 and stored as
float32 (int32 for integer tensors). Inputs of the feature functions (magnitudes, powers,
log-mels) are stored as the float32 values the C code receives, and the references are
computed from those same float32 values.

Usage: /usr/bin/python3 tests/gen_spectral_fixtures.py    (needs python3-numpy, python3-scipy)
"""

import os
import struct
from collections import OrderedDict

import numpy as np
import scipy.fft
import scipy.linalg

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "spectral.dmfx")


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


# ----------------------------------------------------------------------------------------------
# librosa's definitions, in numpy (float64)
# ----------------------------------------------------------------------------------------------

def hann_periodic(n):
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def stft(x, n_fft, hop, pad_mode="reflect"):
    """librosa.stft(center=True): (1 + n_fft/2, 1 + len(x) // hop) complex."""
    x = np.asarray(x, dtype=np.float64)
    xp = np.pad(x, n_fft // 2, mode=pad_mode)
    frames = 1 + (len(xp) - n_fft) // hop
    w = hann_periodic(n_fft)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.fft.rfft(xp[idx] * w, axis=1).T


def hz_to_mel(f, htk):
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, mels)


def mel_to_hz(m, htk):
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr, n_fft, n_mels, fmin, fmax, htk):
    """librosa.filters.mel(norm="slaney")."""
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def power_to_db(s):
    return 10.0 * np.log10(np.maximum(1e-10, s))


def mfcc_from_logmel(logmel, n_mfcc):
    return scipy.fft.dct(logmel, axis=0, type=2, norm="ortho")[:n_mfcc]


def spectral_centroid(mag, sr, n_fft):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    norm = np.sum(np.abs(mag), axis=0, keepdims=True)
    norm[norm < np.finfo(np.float32).tiny] = 1.0
    return np.sum(freq[:, None] * (mag / norm), axis=0)


def spectral_flatness(mag):
    s = np.maximum(1e-10, mag ** 2)
    return np.exp(np.mean(np.log(s), axis=0)) / np.mean(s, axis=0)


def spectral_rolloff(mag, sr, n_fft, roll_percent=0.85):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    total = np.cumsum(mag, axis=0)
    threshold = roll_percent * total[-1]
    ind = np.where(total < threshold, np.nan, 1.0)
    return np.nanmin(ind * freq[:, None], axis=0)


def embed_n_fft(sr):
    n = 64
    while n < 0.02 * sr:
        n *= 2
    return n


def embed(x, sr):
    """The clip embedding of core/include/dmaudio_spectral.h (190 values)."""
    n_fft = embed_n_fft(sr)
    X = stft(x, n_fft, n_fft // 4) / (n_fft / 2)
    P = np.abs(X) ** 2
    M = np.abs(X)
    T = P.shape[1]
    L = np.log10(np.maximum(mel_filters(sr, n_fft, 40, 0.0, sr / 2, False) @ P, 1e-10)) + 5.0
    C = mfcc_from_logmel(L, 20)
    cent = spectral_centroid(M, sr, n_fft) / (sr / 2)
    flat = np.log10(spectral_flatness(M))
    roll = spectral_rolloff(M, sr, n_fft) / (sr / 2)
    e = [L.mean(1), L.std(1), C.mean(1), C.std(1)]
    e.append(np.array([cent.mean(), cent.std(), flat.mean(), flat.std(), roll.mean(), roll.std()]))
    env = np.zeros((8, 8))
    for s in range(8):
        t0, t1 = s * T // 8, (s + 1) * T // 8
        if t1 <= t0:
            t1 = t0 + 1
        for b in range(8):
            env[s, b] = L[5 * b:5 * b + 5, t0:t1].mean()
    e.append(env.ravel())
    out = np.concatenate(e)
    assert out.shape == (190,)
    return out


def frechet_distance(a, b):
    """As in the FID / FAD reference implementations (scipy.linalg.sqrtm)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(sa @ sb, disp=False)
    covmean = covmean.real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb) - 2.0 * np.trace(covmean))


def frechet_distance_eig(a, b):
    """The same quantity through symmetric square roots (a cross-check of the reference)."""
    def psd_sqrt(s):
        w, v = np.linalg.eigh(s)
        return (v * np.sqrt(np.maximum(w, 0))) @ v.T
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    h = psd_sqrt(sa)
    w = np.linalg.eigvalsh(h @ sb @ h)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb)
                 - 2.0 * np.sum(np.sqrt(np.maximum(w, 0))))


def mmd2_unbiased(a, b):
    d = a.shape[1]
    kxx = (a @ a.T / d + 1) ** 3
    kyy = (b @ b.T / d + 1) ** 3
    kxy = (a @ b.T / d + 1) ** 3
    m = a.shape[0]
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


# ----------------------------------------------------------------------------------------------

def f32(x):
    return np.asarray(x, dtype=np.float32)


def main():
    rng = np.random.default_rng(20260401)
    fx = Fixture()

    # STFT: (name, n_fft, hop, pad, n). stft_c is shorter than the padding (repeated reflection).
    for name, n_fft, hop, pad, n in (("stft_a", 512, 128, "reflect", 2000),
                                     ("stft_b", 400, 100, "constant", 1500),
                                     ("stft_c", 64, 16, "reflect", 20)):
        x = f32(rng.standard_normal(n))
        X = stft(x, n_fft, hop, pad)
        fx.add(name + ".cfg", [n_fft, hop, 0 if pad == "reflect" else 1, n], "i32")
        fx.add(name + ".x", x)
        fx.add(name + ".re", X.real)
        fx.add(name + ".im", X.imag)

    # Mel filterbanks: Slaney scale and HTK scale, both area normalised.
    for name, sr, n_fft, n_mels, fmin, fmax, htk in (("mel_slaney", 16000, 512, 40, 0.0, 8000.0, 0),
                                                     ("mel_htk", 22050, 400, 32, 50.0, 10000.0, 1)):
        fx.add(name + ".cfg", [n_fft, n_mels, htk], "i32")
        fx.add(name + ".fcfg", [sr, fmin, fmax])
        fx.add(name + ".filters", mel_filters(sr, n_fft, n_mels, fmin, fmax, htk))

    # Features of a signal with tones, a sweep and noise (16 kHz, n_fft 512, hop 128).
    sr, n_fft, hop, n = 16000, 512, 128, 4000
    t = np.arange(n) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * (300 * t + 2000 * t * t))
         + 0.05 * rng.standard_normal(n) * np.exp(-3 * t))
    x[:300] = 0.0  # a silent start: silent-frame conventions
    x = f32(x)
    X = stft(x, n_fft, hop)
    mag32 = f32(np.abs(X))
    pow32 = f32(mag32.astype(np.float64) ** 2)  # = mag * mag in float32 (correctly rounded)
    fb = mel_filters(sr, n_fft, 40, 0.0, sr / 2, False)
    mel = fb @ pow32.astype(np.float64)
    logmel32 = f32(power_to_db(mel))
    fx.add("feat.cfg", [sr, n_fft, hop, 40, 20], "i32")
    fx.add("feat.x", x)
    fx.add("feat.mag", mag32)
    fx.add("feat.mel", mel)
    fx.add("feat.logmel", logmel32)
    fx.add("feat.mfcc", mfcc_from_logmel(logmel32.astype(np.float64), 20))
    m64 = mag32.astype(np.float64)
    fx.add("feat.centroid", spectral_centroid(m64, sr, n_fft))
    fx.add("feat.flatness", spectral_flatness(m64))
    fx.add("feat.rolloff", spectral_rolloff(m64, sr, n_fft))

    # Fréchet distance: a well-conditioned pair (n > d) and a rank-deficient one (n < d).
    d = 12
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    a = f32(rng.standard_normal((60, d)) @ mix + 0.3)
    b = f32(rng.standard_normal((50, d)) @ (mix + 0.2 * rng.standard_normal((d, d))) - 0.1)
    fx.add("fd.a", a)
    fx.add("fd.b", b)
    fd = frechet_distance(a.astype(np.float64), b.astype(np.float64))
    fd_eig = frechet_distance_eig(a.astype(np.float64), b.astype(np.float64))
    fx.add("fd.value", [fd])
    d2 = 24
    a2 = f32(rng.standard_normal((20, d2)) * np.linspace(0.5, 2.0, d2))
    b2 = f32(rng.standard_normal((16, d2)) * np.linspace(2.0, 0.5, d2) + 0.5)
    fx.add("fd2.a", a2)
    fx.add("fd2.b", b2)
    fd2 = frechet_distance(a2.astype(np.float64), b2.astype(np.float64))
    fd2_eig = frechet_distance_eig(a2.astype(np.float64), b2.astype(np.float64))
    fx.add("fd2.value", [fd2])

    # KID on whole sets (subset_size = n: every subset is the whole set).
    ka = f32(rng.standard_normal((40, d)))
    kb = f32(rng.standard_normal((40, d)) * 1.3 + 0.2)
    fx.add("kid.a", ka)
    fx.add("kid.b", kb)
    fx.add("kid.value", [mmd2_unbiased(ka.astype(np.float64), kb.astype(np.float64))])

    # Nearest neighbours after standardising by the training set's std (ddof 1, floored at 1%
    # of the rms std: the last dimension is almost constant).
    spread = np.linspace(0.1, 3.0, d)
    spread[-1] = 1e-3
    tr = f32(rng.standard_normal((30, d)) * spread)
    ge = f32(rng.standard_normal((10, d)) * spread)
    ge[3] = tr[7] + 1e-3 * spread  # a near copy
    sd = tr.astype(np.float64).std(0, ddof=1)
    sd = np.maximum(sd, 0.01 * np.sqrt(np.mean(sd ** 2)))
    trs, ges = tr / sd, ge / sd
    dg = np.sqrt(((ges[:, None, :] - trs[None, :, :]) ** 2).sum(-1))
    dt = np.sqrt(((trs[:, None, :] - trs[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dt, np.inf)
    fx.add("nn.gen", ge)
    fx.add("nn.train", tr)
    fx.add("nn.gen_dist", dg.min(1))
    fx.add("nn.gen_index", dg.argmin(1).astype(np.int32), "i32")
    fx.add("nn.train_dist", dt.min(1))

    # Embeddings of two clips: a decaying tone with a noisy attack at 16 kHz, and a noise burst
    # with a resonance at 44.1 kHz.
    for name, sr, n in (("emb16", 16000, 4000), ("emb44", 44100, 6000)):
        t = np.arange(n) / sr
        if sr == 16000:
            y = np.sin(2 * np.pi * 523.25 * t) * np.exp(-8 * t) + 0.3 * rng.standard_normal(n) * np.exp(-60 * t)
        else:
            y = rng.standard_normal(n) * np.exp(-20 * t) * 0.5 + 0.2 * np.sin(2 * np.pi * 2500 * t) * np.exp(-5 * t)
        y = f32(y)
        fx.add(name + ".sr", [sr], "i32")
        fx.add(name + ".x", y)
        fx.add(name + ".value", embed(y, sr))

    size = fx.write(OUT)
    print("wrote %s (%d bytes, %d tensors)" % (OUT, size, len(fx.items)))
    print("FD (sqrtm) %.10g, FD (eigh) %.10g; rank-deficient FD (sqrtm) %.10g, (eigh) %.10g"
          % (fd, fd_eig, fd2, fd2_eig))


if __name__ == "__main__":
    main()
