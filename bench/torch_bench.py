#!/usr/bin/env python3
"""The PyTorch side of `make bench`: the same U-Net with the same weights, run by PyTorch.

Loads a dmaudio model file (.dmm, docs/model-format.md) into a PyTorch implementation of the
network of docs/architecture.md, checks that it computes what dmaudio computes (the forward
pass and a guided DPM-Solver++(2M) run that bench/bench.c wrote to --dir), then times, at the
same thread count: the forward pass and forward+backward at batch 1 and 8, the sampling runs
of the default sampler, and a training step (forward, backward, AdamW, EMA). Writes
DIR/torch.txt: one "row name<TAB>value" line per row of bench.c's table (same units), and
"check ..." lines with the measured errors.

Wave and spec models alike: everything runs in network space, x of shape (B, C, L) with the
network's channels and length (spec: compressed-STFT bins x frames). The sampling check's
noise levels and times are the C side's (the model's schedule, its shift included); our run
is dm_generate's audio, so this side decodes its own result as dmaudio.h defines the
representation (wave: / data_scale; spec: the compression inverted, then torch.istft) and
compares audio. The timed sampling rows stop at the network-space result (no decoding), the
training row starts from network-space tensors (no STFT encoding) and draws its noise levels
from the plain cosine schedule: timing, not the model's exact training.

Inference uses torch.inference_mode() and the faster of eager mode and a frozen TorchScript
graph (torch.jit.freeze + optimize_for_inference: oneDNN convolutions); channels-last does not
apply to 1-D convolutions. The training step uses the multi-tensor (foreach) AdamW and EMA,
faster than a loop over the parameters. Every time is a median. Needs Debian's python3-torch.
"""
import argparse
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

GN_EPS = 1e-5
FWD_TOL = 1e-4      # max |ours - torch| / max |torch|, forward pass (as tests/test_unet.c)
SAMPLE_TOL = 1e-3   # the same over a whole sampling run (rounding grows over the steps)


# ---- the container format (docs/model-format.md) ----

def read_dmm(path):
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != b"DMAU" or buf[-4:] != b"DMAE":
        raise SystemExit("%s: not a dmaudio container" % path)
    version, flags, n_kv, n_t = struct.unpack_from("<IIQQ", buf, 4)
    if version != 1:
        raise SystemExit("%s: unsupported version %d" % (path, version))
    pos = 28

    def u32():
        nonlocal pos
        v = struct.unpack_from("<I", buf, pos)[0]
        pos += 4
        return v

    def u64():
        nonlocal pos
        v = struct.unpack_from("<Q", buf, pos)[0]
        pos += 8
        return v

    def string():
        nonlocal pos
        n = u32()
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    kv = {}
    for _ in range(n_kv):
        key = string()
        typ = u32()
        if typ == 0:
            kv[key] = struct.unpack_from("<q", buf, pos)[0]
            pos += 8
        elif typ == 1:
            kv[key] = struct.unpack_from("<d", buf, pos)[0]
            pos += 8
        elif typ == 2:
            kv[key] = string()
        elif typ in (3, 4):
            n = u64()
            kv[key] = list(struct.unpack_from("<%d%s" % (n, "q" if typ == 3 else "d"), buf, pos))
            pos += 8 * n
        elif typ == 5:
            n = u64()
            kv[key] = [string() for _ in range(n)]
        else:
            raise SystemExit("%s: unknown type %d" % (path, typ))
    table = []
    for _ in range(n_t):
        name = string()
        ndim = u32()
        dims = [u64() for _ in range(ndim)]
        dtype = u32()
        off = u64()
        table.append((name, dims, dtype, off))
    data_start = (pos + 63) // 64 * 64
    tensors = {}
    for name, dims, dtype, off in table:
        count = int(np.prod(dims))
        np_type = np.float32 if dtype == 0 else np.float16
        a = np.frombuffer(buf, dtype=np_type, count=count, offset=data_start + off)
        tensors[name] = torch.from_numpy(a.astype(np.float32).reshape(dims))
    return kv, tensors


class Config:
    def __init__(self, kv):
        self.ch = list(kv["dmaudio.unet.channels"])
        self.n = len(self.ch)
        self.fac = list(kv.get("dmaudio.unet.factors", []))
        self.attn = list(kv["dmaudio.unet.attention"])
        self.blocks = kv["dmaudio.unet.blocks"]
        self.heads = kv["dmaudio.unet.heads"]
        self.groups = kv["dmaudio.unet.groups"]
        self.k = kv["dmaudio.unet.kernel"]
        self.positions = kv.get("dmaudio.unet.positions", 0)
        self.classes = kv.get("dmaudio.classes", [])
        self.n_classes = len(self.classes)
        self.prediction = kv["dmaudio.prediction"]


# ---- the network (docs/architecture.md) ----

class UNet(torch.nn.Module):
    def __init__(self, c, tensors):
        super().__init__()
        self.c = c
        self.names = list(tensors.keys())
        self.p = torch.nn.ParameterList([torch.nn.Parameter(tensors[n].clone()) for n in self.names])
        self.index = {n: i for i, n in enumerate(self.names)}
        half = c.ch[0] // 2
        k = torch.arange(half, dtype=torch.float64)
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * k / half))

    def w(self, name):
        return self.p[self.index[name]]

    def resblock(self, P, h, s):
        c, g, k2 = self.c, self.c.groups, self.c.k // 2
        y = F.silu(F.group_norm(h, g, self.w(P + ".gn1.g"), self.w(P + ".gn1.b"), GN_EPS))
        y = F.conv1d(y, self.w(P + ".conv1.w"), self.w(P + ".conv1.b"), padding=k2)
        m = F.linear(s, self.w(P + ".emb.w"), self.w(P + ".emb.b"))
        y = F.group_norm(y, g, self.w(P + ".gn2.g"), self.w(P + ".gn2.b"), GN_EPS)
        cout = y.shape[1]
        y = y * (1.0 + m[:, :cout, None]) + m[:, cout:, None]
        y = F.conv1d(F.silu(y), self.w(P + ".conv2.w"), self.w(P + ".conv2.b"), padding=k2)
        skip = F.conv1d(h, self.w(P + ".skip.w"), self.w(P + ".skip.b")) \
            if (P + ".skip.w") in self.index else h
        return skip + y

    def attnblock(self, P, h):
        c = self.c
        y = F.group_norm(h, c.groups, self.w(P + ".gn.g"), self.w(P + ".gn.b"), GN_EPS)
        qkv = F.conv1d(y, self.w(P + ".qkv.w"), self.w(P + ".qkv.b"))
        b, c3, length = qkv.shape
        C = c3 // 3
        d = C // c.heads
        q, k, v = qkv.reshape(b, 3, c.heads, d, length).unbind(1)
        att = torch.softmax(torch.matmul(q.transpose(-1, -2), k) * (1.0 / math.sqrt(d)), dim=-1)
        y = torch.matmul(v, att.transpose(-1, -2)).reshape(b, C, length)
        return h + F.conv1d(y, self.w(P + ".proj.w"), self.w(P + ".proj.b"))

    def forward(self, x, t, cls):
        c, k2 = self.c, self.c.k // 2
        a = 1000.0 * t.to(torch.float64)[:, None] * self.freqs[None, :]
        e = torch.cat([torch.cos(a), torch.sin(a)], dim=1).to(x.dtype)
        e = F.linear(e, self.w("time.l1.w"), self.w("time.l1.b"))
        e = F.linear(F.silu(e), self.w("time.l2.w"), self.w("time.l2.b"))
        if c.n_classes > 0:
            e = e + self.w("class.emb")[cls]
        s = F.silu(e)
        if c.positions:  # the frame index as sinusoids, after the input channels
            half = c.positions // 2
            f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
            a = torch.arange(x.shape[2], dtype=torch.float64)[None, :] * f[:, None]
            pos = torch.cat([torch.cos(a), torch.sin(a)], dim=0).to(x.dtype)
            x = torch.cat([x, pos[None].expand(x.shape[0], -1, -1)], dim=1)
        h = F.conv1d(x, self.w("in.w"), self.w("in.b"), padding=k2)
        skips = []
        for l in range(c.n):
            for i in range(c.blocks):
                h = self.resblock("down%d.res%d" % (l, i), h, s)
                if c.attn[l]:
                    h = self.attnblock("down%d.attn%d" % (l, i), h)
            skips.append(h)
            if l < c.n - 1:
                f = c.fac[l]
                h = F.conv1d(h, self.w("down%d.down.w" % l), self.w("down%d.down.b" % l),
                             stride=f, padding=f // 2)
        h = self.resblock("mid.res0", h, s)
        if c.attn[c.n - 1]:
            h = self.attnblock("mid.attn", h)
        h = self.resblock("mid.res1", h, s)
        for l in range(c.n - 1, -1, -1):
            h = torch.cat([h, skips[l]], dim=1)
            for i in range(c.blocks):
                h = self.resblock("up%d.res%d" % (l, i), h, s)
                if c.attn[l]:
                    h = self.attnblock("up%d.attn%d" % (l, i), h)
            if l > 0:
                h = F.interpolate(h, scale_factor=c.fac[l - 1], mode="nearest")
                h = F.conv1d(h, self.w("up%d.up.w" % l), self.w("up%d.up.b" % l), padding=k2)
        h = F.silu(F.group_norm(h, c.groups, self.w("out.gn.g"), self.w("out.gn.b"), GN_EPS))
        return F.conv1d(h, self.w("out.w"), self.w("out.b"), padding=k2)


# ---- sampling: DPM-Solver++(2M) as core/src/sampler.c, guidance as core/src/generate.c ----

def sample_dpmpp(net, noise, sigmas, us, cls, guidance, n_classes, prediction):
    bsz = noise.shape[0]
    guided = n_classes > 0 and cls != n_classes and guidance != 1.0
    cls_in = torch.tensor([cls] * bsz + ([n_classes] * bsz if guided else []))
    x = sigmas[0] * noise
    old = None
    steps = len(sigmas) - 1
    for k in range(steps):
        sc, sn = sigmas[k], sigmas[k + 1]
        c = 1.0 / math.sqrt(1.0 + sc * sc)
        xin = x * c
        inp = torch.cat([xin, xin]) if guided else xin
        t = torch.full((inp.shape[0],), us[k], dtype=torch.float32)
        out = net(inp, t, cls_in)
        if guided:
            out = out[bsz:] + guidance * (out[:bsz] - out[bsz:])
        if prediction == "v":
            den = c * xin - (sc * c) * out
        elif prediction == "x0":
            den = out
        else:
            den = (xin - (sc * c) * out) / c
        h = math.log(sc / sn) if sn > 0 else 0.0
        ratio, em = sn / sc, -math.expm1(-h)
        if k == 0 or sn == 0:
            x = ratio * x + (em if sn > 0 else 1.0) * den
        else:
            r = math.log(sigmas[k - 1] / sc) / h
            x = ratio * x + em * ((1.0 + 1.0 / (2.0 * r)) * den - (1.0 / (2.0 * r)) * old)
        old = den
    return x


# ---- helpers ----

def timed(fn, min_runs, max_runs, budget):
    ts = []
    start = time.perf_counter()
    while len(ts) < max_runs and (len(ts) < min_runs or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), len(ts)


def read_reference(d):
    ref = {}
    with open(d + "/reference.txt") as f:
        for line in f:
            parts = line.split()
            if parts:
                ref[parts[0]] = parts[1:]
    return ref


def decode(x, ref):
    """The network's (1, C, L) tensor -> (audio_channels, length) audio, as dm_codec_decode."""
    ds = float(ref["data_scale"][0])
    ch, n = int(ref["audio_channels"][0]), int(ref["audio_length"][0])
    y = x[0].to(torch.float64) / ds
    if ref["repr"][0] == "wave":
        return y.reshape(ch, n)
    if ref["repr"][0] != "spec":
        raise SystemExit("torch_bench: unknown representation %s" % ref["repr"][0])
    n_fft, hop = int(ref["n_fft"][0]), int(ref["hop"][0])
    a = float(ref["compression"][0])
    bins = n_fft // 2 + 1
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    out = []
    for c in range(ch):
        re, im = y[2 * bins * c:2 * bins * c + bins], y[2 * bins * c + bins:2 * bins * (c + 1)]
        mag = torch.sqrt(re * re + im * im)
        f = torch.where(mag > 0, mag.clamp_min(1e-300) ** (1.0 / a - 1.0), torch.zeros_like(mag))
        X = torch.complex(re * f, im * f)
        X[0].imag.zero_()  # a real signal's DC and Nyquist bins are real
        X[bins - 1].imag.zero_()
        out.append(torch.istft(X, n_fft, hop_length=hop, win_length=n_fft, window=window,
                               center=True, normalized=False, onesided=True, length=n))
    return torch.stack(out)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    ref = read_reference(a.dir)
    kv, tensors = read_dmm(ref["model"][0])
    cfg = Config(kv)
    if kv.get("dmaudio.repr", "wave") != ref["repr"][0]:
        raise SystemExit("torch_bench: the model file says %s, bench.c %s"
                         % (kv.get("dmaudio.repr"), ref["repr"][0]))
    C, L = int(ref["channels"][0]), int(ref["length"][0])
    flops1 = float(ref["flops_b1"][0])
    net = UNet(cfg, tensors)
    net.eval()
    lines = []

    def out(name, value, note=""):
        lines.append("%s\t%.6g%s" % (name, value, "\t" + note if note else ""))
        print("torch_bench: %-44s %.6g %s" % (name, value, note), file=sys.stderr)

    # ---- check: the forward pass ----
    x = torch.from_numpy(np.fromfile(a.dir + "/fwd_x.f32", dtype=np.float32)).reshape(2, C, L)
    y_ours = torch.from_numpy(np.fromfile(a.dir + "/fwd_y.f32", dtype=np.float32)).reshape(2, C, L)
    t = torch.tensor([float(v) for v in ref["fwd_t"]], dtype=torch.float32)
    cls = torch.tensor([int(v) for v in ref["fwd_cls"]])
    with torch.inference_mode():
        y_eager = net(x, t, cls)
    e_fwd = rel_err(y_ours, y_eager)
    out("check forward max rel err", e_fwd, "tolerance %g: %s" % (FWD_TOL, "ok" if e_fwd <= FWD_TOL else "FAILED"))

    # the faster of eager and a frozen TorchScript graph, checked like eager
    runner, mode = net, "eager"
    try:
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(net, (x, t, cls), check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        with torch.inference_mode():
            for _ in range(2):
                y_jit = frozen(x, t, cls)
        e_jit = rel_err(y_ours, y_jit)
        xb = torch.randn(8, C, L)
        tb = torch.rand(8)
        cb = torch.full((8,), cfg.n_classes, dtype=torch.long)
        with torch.inference_mode():
            te, _ = timed(lambda: net(xb, tb, cb), 2, 3, 1e9)
            tj, _ = timed(lambda: frozen(xb, tb, cb), 2, 3, 1e9)
        print("torch_bench: batch 8 forward: eager %.3f s, frozen TorchScript %.3f s (rel err %.2g)"
              % (te, tj, e_jit), file=sys.stderr)
        if tj < te and e_jit <= FWD_TOL:
            runner, mode = frozen, "torchscript-frozen"
    except Exception as ex:  # an old or odd build: eager only
        print("torch_bench: TorchScript unavailable (%s); eager only" % ex, file=sys.stderr)
    out("info inference mode", 1 if mode == "eager" else 2, mode)

    # ---- check: a guided DPM-Solver++(2M) run ----
    sigmas = [float(v) for v in ref["sigmas"]]
    us = [float(v) for v in ref["us"]]
    scls = int(ref["smp_cls"][0])
    scls = cfg.n_classes if scls < 0 else scls
    guidance = float(ref["smp_guidance"][0])
    noise = torch.from_numpy(np.fromfile(a.dir + "/smp_noise.f32", dtype=np.float32)).reshape(1, C, L)
    s_ours = torch.from_numpy(np.fromfile(a.dir + "/smp_out.f32", dtype=np.float32)).reshape(
        int(ref["audio_channels"][0]), int(ref["audio_length"][0])).to(torch.float64)
    with torch.inference_mode():
        s_torch = decode(sample_dpmpp(runner, noise, sigmas, us, scls, guidance, cfg.n_classes,
                                      cfg.prediction), ref)
    e_smp = rel_err(s_ours, s_torch)
    out("check sampling max rel err", e_smp,
        "tolerance %g: %s" % (SAMPLE_TOL, "ok" if e_smp <= SAMPLE_TOL else "FAILED"))

    # ---- forward and forward+backward ----
    q = a.quick
    for bsz in (1, 8):
        xb = torch.randn(bsz, C, L)
        tb = torch.linspace(0.1, 0.9, bsz)
        cb = torch.full((bsz,), cfg.n_classes, dtype=torch.long)
        with torch.inference_mode():
            runner(xb, tb, cb)
            tf, _ = timed(lambda: runner(xb, tb, cb), 2 if q else 3, 2 if q else 9, 1 if q else 15)
        out("U-Net forward, batch %d" % bsz, flops1 * bsz / tf * 1e-9)

        def fwd_bwd():
            net.zero_grad(set_to_none=False)
            yb = net(xb, tb, cb)
            yb.backward(yb.detach())
        fwd_bwd()
        tb_, _ = timed(fwd_bwd, 2 if q else 3, 2 if q else 9, 1 if q else 15)
        out("U-Net fwd+bwd, batch %d" % bsz, 3.0 * flops1 * bsz / tb_ * 1e-9)

    # ---- sampling with the default sampler ----
    steps = len(sigmas) - 1
    for bsz in (1, 8):
        for guided in (0, 1):
            if guided and cfg.n_classes == 0:
                continue
            nz = torch.randn(bsz, C, L)
            c_ = 0 if guided else cfg.n_classes
            with torch.inference_mode():
                ts, _ = timed(lambda: sample_dpmpp(runner, nz, sigmas, us, c_, guidance,
                                                   cfg.n_classes, cfg.prediction),
                              1 if q else 3, 1 if q else 7, 0 if q else 15)
            out("dpmpp-2m %d steps, batch %d%s" % (steps, bsz, ", guided" if guided else ""),
                bsz / ts)

    # ---- training step: v-prediction MSE, AdamW, EMA (as core/src/train.c and optim.c) ----
    # For timing only: x0 is random network-space data (ours encodes audio, spec: the STFT
    # included), and the noise levels follow the plain cosine abar (no schedule shift).
    abar = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    for bsz in (1, 8):
        opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=0.01, foreach=True)
        ema = [p.detach().clone() for p in net.parameters()]
        x0 = torch.randn(bsz, C, L) * 0.5

        def step():
            u = torch.rand(bsz)
            al = torch.tensor([math.sqrt(abar(float(v))) for v in u])[:, None, None]
            sg = (1 - al ** 2).sqrt()
            eps = torch.randn_like(x0)
            xt = al * x0 + sg * eps
            target = al * eps - sg * x0
            cb = torch.where(torch.rand(bsz) < 0.1, torch.tensor(cfg.n_classes),
                             torch.randint(0, max(cfg.n_classes, 1), (bsz,)))
            opt.zero_grad(set_to_none=False)
            loss = F.mse_loss(net(xt, u, cb), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                torch._foreach_mul_(ema, 0.999)
                torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)
        step()
        tt, _ = timed(step, 1 if q else 3, 2 if q else 7, 0 if q else 20)
        out("training step, batch %d" % bsz, bsz / tt)

    with open(a.dir + "/torch.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    if e_fwd > FWD_TOL or e_smp > SAMPLE_TOL:
        print("torch_bench: outputs do not match (see the check lines)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
