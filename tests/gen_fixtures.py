#!/usr/bin/python3
"""Generate the reference fixtures (tests/fixtures/*.dmfx) for the dmaudio C tests.

This is an independent PyTorch reference written from docs/architecture.md (not from the C
sources).  Every random input is drawn as float32 (fixed seed), upcast to float64 for the
computation; outputs and gradients are computed in float64 with autograd, with
loss = sum(out * dout), and everything is stored as float32 (int32 for integer tensors).

Usage: /usr/bin/python3 tests/gen_fixtures.py      (works from any directory)
"""

import math
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "fixtures")
GN_EPS = 1e-5


# --------------------------------------------------------------------------------------------
# .dmfx writer
# --------------------------------------------------------------------------------------------

class Fixture:
    """An ordered list of named tensors, written as a .dmfx file."""

    def __init__(self):
        self.items = OrderedDict()

    def add(self, name, value, dtype=None):
        if name in self.items:
            raise ValueError("duplicate tensor name %r" % name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if dtype is None:
            dtype = "i32" if np.issubdtype(arr.dtype, np.integer) else "f32"
        if dtype == "i32":
            arr = arr.astype("<i4")
        else:
            arr = arr.astype("<f4")
        self.items[name] = arr

    def write(self, path):
        out = bytearray()
        out += b"DMFX"
        out += struct.pack("<II", 1, len(self.items))
        for name, arr in self.items.items():
            nb = name.encode("ascii")
            out += struct.pack("<I", len(nb))
            out += nb
            out += struct.pack("<I", arr.ndim)
            for d in arr.shape:
                out += struct.pack("<I", d)
            out += struct.pack("<I", 1 if arr.dtype == np.dtype("<i4") else 0)
            out += np.ascontiguousarray(arr).tobytes()
        with open(path, "wb") as fh:
            fh.write(bytes(out))
        return len(out)


# --------------------------------------------------------------------------------------------
# random helpers: always float32 draws (then upcast where needed)
# --------------------------------------------------------------------------------------------

def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def uniform(shape, bound):
    return (torch.rand(*shape, dtype=torch.float32) * 2.0 - 1.0) * bound


def f64(x):
    return x.to(torch.float64)


# --------------------------------------------------------------------------------------------
# layers (from the table in docs/architecture.md)
# --------------------------------------------------------------------------------------------

def conv1d(x, w, b, stride=1, pad=0, dil=1):
    return F.conv1d(x, w, b, stride=stride, padding=pad, dilation=dil)


def groupnorm(x, groups, g, b):
    return F.group_norm(x, groups, g, b, eps=GN_EPS)


def silu(x):
    return F.silu(x)


def linear(x, w, b):
    return F.linear(x, w, b)


def film(x, e):
    c = x.shape[1]
    return x * (1.0 + e[:, :c, None]) + e[:, c:, None]


def upsample(x, f):
    # nearest: out[b,c,l] = x[b,c,floor(l/f)]
    idx = torch.arange(x.shape[2] * f) // f
    return x[:, :, idx]


def concat(a, b):
    return torch.cat([a, b], dim=1)


def attention(qkv, heads):
    bsz, c3, length = qkv.shape
    c = c3 // 3
    assert c3 == 3 * c and c % heads == 0
    d = c // heads
    q = qkv[:, 0:c].reshape(bsz, heads, d, length)
    k = qkv[:, c:2 * c].reshape(bsz, heads, d, length)
    v = qkv[:, 2 * c:3 * c].reshape(bsz, heads, d, length)
    # scores[b,h,i,j] = sum_d q[d,i] k[d,j] / sqrt(D)
    s = torch.einsum("bhdi,bhdj->bhij", q, k) / math.sqrt(d)
    s = s - s.max(dim=-1, keepdim=True).values.detach()
    p = torch.exp(s)
    p = p / p.sum(dim=-1, keepdim=True)
    # out[h*D+d, i] = sum_j P[i,j] v[d,j]
    out = torch.einsum("bhij,bhdj->bhdi", p, v)
    return out.reshape(bsz, c, length)


def time_embedding(t, dim, dtype=torch.float64):
    half = dim // 2
    k = torch.arange(half, dtype=dtype)
    freqs = torch.exp(-math.log(10000.0) * k / half)
    a = 1000.0 * t.to(dtype)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


def position_embedding(bsz, channels, length, dtype=torch.float64):
    """(B, P, L): cos(l f_k) for k < P/2, then sin(l f_k), f_k = 10000^(-k/(P/2))."""
    half = channels // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = torch.arange(length, dtype=torch.float64)[None, :] * freqs[:, None]
    pos = torch.cat([torch.cos(a), torch.sin(a)], dim=0).to(dtype)
    return pos[None].expand(bsz, channels, length)


def class_embedding(x, table, cls):
    return x + table[cls.long()]


# --------------------------------------------------------------------------------------------
# layer fixtures
# --------------------------------------------------------------------------------------------

def grads_of(out, dout, inputs):
    loss = (out * dout).sum()
    return torch.autograd.grad(loss, inputs)


def make_layers():
    fx = Fixture()

    # ---- conv1d
    conv_cases = OrderedDict([
        ("conv_a", [2, 3, 17, 4, 3, 1, 1, 1]),
        ("conv_b", [2, 4, 16, 5, 4, 2, 1, 1]),
        ("conv_c", [2, 3, 20, 2, 3, 1, 2, 2]),
        ("conv_d", [1, 6, 9, 3, 1, 1, 0, 1]),
        ("conv_e", [2, 2, 11, 3, 5, 3, 2, 1]),
    ])
    for name, cfg in conv_cases.items():
        b_, cin, length, cout, k, s, p, d = cfg
        lout = (length + 2 * p - d * (k - 1) - 1) // s + 1
        x32 = randn(b_, cin, length)
        w32 = randn(cout, cin, k) / math.sqrt(cin * k)
        bb32 = randn(cout)
        dout32 = randn(b_, cout, lout)
        x, w, bb = [f64(v).requires_grad_() for v in (x32, w32, bb32)]
        out = conv1d(x, w, bb, s, p, d)
        assert out.shape == (b_, cout, lout)
        dx, dw, db = grads_of(out, f64(dout32), (x, w, bb))
        fx.add(name + ".cfg", np.array(cfg, dtype=np.int32))
        for tn, tv in (("x", x32), ("w", w32), ("b", bb32), ("dout", dout32), ("out", out),
                       ("dx", dx), ("dw", dw), ("db", db)):
            fx.add(name + "." + tn, tv)

    # ---- groupnorm
    gn_cases = OrderedDict([
        ("gn_a", [2, 8, 13, 4]),
        ("gn_b", [3, 6, 5, 1]),
        ("gn_c", [2, 6, 7, 6]),
    ])
    for name, cfg in gn_cases.items():
        b_, c, length, g = cfg
        x32 = 3.0 * randn(b_, c, length) + 2.0
        g32 = 1.0 + 0.2 * randn(c)
        bb32 = 0.5 * randn(c)
        dout32 = randn(b_, c, length)
        x, gg, bb = [f64(v).requires_grad_() for v in (x32, g32, bb32)]
        out = groupnorm(x, g, gg, bb)
        dx, dg, db = grads_of(out, f64(dout32), (x, gg, bb))
        fx.add(name + ".cfg", np.array(cfg, dtype=np.int32))
        for tn, tv in (("x", x32), ("g", g32), ("b", bb32), ("dout", dout32), ("out", out),
                       ("dx", dx), ("dg", dg), ("db", db)):
            fx.add(name + "." + tn, tv)

    # ---- silu
    cfg = [2, 5, 10]
    x32 = 4.0 * randn(*cfg)
    dout32 = randn(*cfg)
    x = f64(x32).requires_grad_()
    out = silu(x)
    (dx,) = grads_of(out, f64(dout32), (x,))
    fx.add("silu.cfg", np.array(cfg, dtype=np.int32))
    for tn, tv in (("x", x32), ("dout", dout32), ("out", out), ("dx", dx)):
        fx.add("silu." + tn, tv)

    # ---- linear
    cfg = [3, 7, 5]
    b_, nin, nout = cfg
    x32 = randn(b_, nin)
    w32 = randn(nout, nin) / math.sqrt(nin)
    bb32 = randn(nout)
    dout32 = randn(b_, nout)
    x, w, bb = [f64(v).requires_grad_() for v in (x32, w32, bb32)]
    out = linear(x, w, bb)
    dx, dw, db = grads_of(out, f64(dout32), (x, w, bb))
    fx.add("linear.cfg", np.array(cfg, dtype=np.int32))
    for tn, tv in (("x", x32), ("w", w32), ("b", bb32), ("dout", dout32), ("out", out),
                   ("dx", dx), ("dw", dw), ("db", db)):
        fx.add("linear." + tn, tv)

    # ---- film
    cfg = [2, 4, 9]
    b_, c, length = cfg
    x32 = randn(b_, c, length)
    e32 = 0.5 * randn(b_, 2 * c)
    dout32 = randn(b_, c, length)
    x, e = [f64(v).requires_grad_() for v in (x32, e32)]
    out = film(x, e)
    dx, de = grads_of(out, f64(dout32), (x, e))
    fx.add("film.cfg", np.array(cfg, dtype=np.int32))
    for tn, tv in (("x", x32), ("e", e32), ("dout", dout32), ("out", out), ("dx", dx),
                   ("de", de)):
        fx.add("film." + tn, tv)

    # ---- upsample
    for name, cfg in (("up_a", [2, 3, 5, 2]), ("up_b", [1, 2, 4, 4])):
        b_, c, length, f = cfg
        x32 = randn(b_, c, length)
        dout32 = randn(b_, c, f * length)
        x = f64(x32).requires_grad_()
        out = upsample(x, f)
        (dx,) = grads_of(out, f64(dout32), (x,))
        fx.add(name + ".cfg", np.array(cfg, dtype=np.int32))
        for tn, tv in (("x", x32), ("dout", dout32), ("out", out), ("dx", dx)):
            fx.add(name + "." + tn, tv)

    # ---- concat
    cfg = [2, 3, 4, 7]
    b_, ca, cb, length = cfg
    a32 = randn(b_, ca, length)
    b32 = randn(b_, cb, length)
    dout32 = randn(b_, ca + cb, length)
    a, bb = [f64(v).requires_grad_() for v in (a32, b32)]
    out = concat(a, bb)
    da, db = grads_of(out, f64(dout32), (a, bb))
    fx.add("cat.cfg", np.array(cfg, dtype=np.int32))
    for tn, tv in (("a", a32), ("b", b32), ("dout", dout32), ("out", out), ("da", da),
                   ("db", db)):
        fx.add("cat." + tn, tv)

    # ---- attention core
    for name, cfg in (("attn_a", [2, 8, 10, 2]), ("attn_b", [1, 4, 7, 1]),
                      ("attn_c", [2, 12, 16, 3])):
        b_, c, length, h = cfg
        qkv32 = randn(b_, 3 * c, length)
        dout32 = randn(b_, c, length)
        qkv = f64(qkv32).requires_grad_()
        out = attention(qkv, h)
        (dqkv,) = grads_of(out, f64(dout32), (qkv,))
        fx.add(name + ".cfg", np.array(cfg, dtype=np.int32))
        for tn, tv in (("qkv", qkv32), ("dout", dout32), ("out", out), ("dqkv", dqkv)):
            fx.add(name + "." + tn, tv)

    # ---- time embedding (forward only)
    cfg = [6, 16]
    r = torch.rand(2, dtype=torch.float32)
    t32 = torch.tensor([0.0, 0.25, 0.5, 1.0, float(r[0]), float(r[1])], dtype=torch.float32)
    out = time_embedding(f64(t32), cfg[1])
    fx.add("temb.cfg", np.array(cfg, dtype=np.int32))
    fx.add("temb.t", t32)
    fx.add("temb.out", out)

    # ---- class embedding
    cfg = [5, 3, 6]
    b_, nc, e_ = cfg
    x32 = randn(b_, e_)
    table32 = randn(nc + 1, e_)
    cls = torch.tensor([3, 0, 2, 3, 0], dtype=torch.int32)  # duplicates + null class 3
    dout32 = randn(b_, e_)
    x, table = [f64(v).requires_grad_() for v in (x32, table32)]
    out = class_embedding(x, table, cls)
    dx, dtable = grads_of(out, f64(dout32), (x, table))
    fx.add("cemb.cfg", np.array(cfg, dtype=np.int32))
    for tn, tv in (("x", x32), ("table", table32), ("cls", cls), ("dout", dout32),
                   ("out", out), ("dx", dx), ("dtable", dtable)):
        fx.add("cemb." + tn, tv)

    return fx


# --------------------------------------------------------------------------------------------
# U-Net
# --------------------------------------------------------------------------------------------

class UNetConfig:
    def __init__(self, in_ch, out_ch, channels, factors, blocks, attention, heads, groups,
                 kernel, n_classes, positions=0):
        self.in_ch = in_ch
        self.positions = positions
        self.out_ch = out_ch
        self.n = len(channels)
        self.ch = list(channels)
        self.fac = list(factors)
        self.blocks = blocks
        self.attn = list(attention)
        self.heads = heads
        self.groups = groups
        self.k = kernel
        self.n_classes = n_classes
        assert len(self.fac) == self.n - 1 and len(self.attn) == self.n
        assert kernel % 2 == 1 and all(f % 2 == 0 for f in self.fac)
        assert self.ch[0] % 2 == 0
        self.e = 4 * self.ch[0]

    def cfg_ints(self, b_, length):
        return ([self.in_ch, self.out_ch, self.n] + self.ch + self.fac + [self.blocks] +
                self.attn + [self.heads, self.groups, self.k, self.n_classes, b_, length])


def param_spec(c):
    """Ordered list of (name, shape, kind, fan_in). kind: w (weight/bias uniform),
    gn_g, gn_b, table."""
    spec = []

    def lin(prefix, nin, nout):
        spec.append((prefix + ".w", (nout, nin), "w", nin))
        spec.append((prefix + ".b", (nout,), "w", nin))

    def conv(prefix, cin, cout, k):
        spec.append((prefix + ".w", (cout, cin, k), "w", cin * k))
        spec.append((prefix + ".b", (cout,), "w", cin * k))

    def gn(prefix, ch):
        spec.append((prefix + ".g", (ch,), "gn_g", 0))
        spec.append((prefix + ".b", (ch,), "gn_b", 0))

    def res(prefix, cin, cout):
        gn(prefix + ".gn1", cin)
        conv(prefix + ".conv1", cin, cout, c.k)
        lin(prefix + ".emb", c.e, 2 * cout)
        gn(prefix + ".gn2", cout)
        conv(prefix + ".conv2", cout, cout, c.k)
        if cin != cout:
            conv(prefix + ".skip", cin, cout, 1)

    def attn(prefix, ch):
        gn(prefix + ".gn", ch)
        conv(prefix + ".qkv", ch, 3 * ch, 1)
        conv(prefix + ".proj", ch, ch, 1)

    lin("time.l1", c.ch[0], c.e)
    lin("time.l2", c.e, c.e)
    if c.n_classes > 0:
        spec.append(("class.emb", (c.n_classes + 1, c.e), "table", 0))
    conv("in", c.in_ch + c.positions, c.ch[0], c.k)
    for l in range(c.n):
        for i in range(c.blocks):
            res("down%d.res%d" % (l, i), c.ch[l], c.ch[l])
            if c.attn[l]:
                attn("down%d.attn%d" % (l, i), c.ch[l])
        if l < c.n - 1:
            conv("down%d.down" % l, c.ch[l], c.ch[l + 1], 2 * c.fac[l])
    top = c.ch[c.n - 1]
    res("mid.res0", top, top)
    if c.attn[c.n - 1]:
        attn("mid.attn", top)
    res("mid.res1", top, top)
    for l in range(c.n - 1, -1, -1):
        for i in range(c.blocks):
            res("up%d.res%d" % (l, i), 2 * c.ch[l] if i == 0 else c.ch[l], c.ch[l])
            if c.attn[l]:
                attn("up%d.attn%d" % (l, i), c.ch[l])
        if l > 0:
            conv("up%d.up" % l, c.ch[l], c.ch[l - 1], c.k)
    gn("out.gn", c.ch[0])
    conv("out", c.ch[0], c.out_ch, c.k)
    names = [s[0] for s in spec]
    assert len(names) == len(set(names)), "duplicate parameter names"
    return spec


def init_params(spec):
    """Fixture parameters (NOT the doc's zero init): float32 draws in spec order."""
    params = OrderedDict()
    for name, shape, kind, fan_in in spec:
        if kind == "w":
            params[name] = uniform(shape, 1.0 / math.sqrt(fan_in))
        elif kind == "gn_g":
            params[name] = 1.0 + 0.1 * randn(*shape)
        elif kind == "gn_b":
            params[name] = 0.1 * randn(*shape)
        elif kind == "table":
            params[name] = randn(*shape)
        else:
            raise ValueError(kind)
    return params


def unet_forward(c, p, x, t, cls, temb_dtype=torch.float64):
    k2 = c.k // 2
    g = c.groups

    def resblock(prefix, h, s):
        cin = h.shape[1]
        y = silu(groupnorm(h, g, p[prefix + ".gn1.g"], p[prefix + ".gn1.b"]))
        y = conv1d(y, p[prefix + ".conv1.w"], p[prefix + ".conv1.b"], 1, k2, 1)
        m = linear(s, p[prefix + ".emb.w"], p[prefix + ".emb.b"])
        y = film(groupnorm(y, g, p[prefix + ".gn2.g"], p[prefix + ".gn2.b"]), m)
        y = conv1d(silu(y), p[prefix + ".conv2.w"], p[prefix + ".conv2.b"], 1, k2, 1)
        cout = y.shape[1]
        if cin != cout:
            skip = conv1d(h, p[prefix + ".skip.w"], p[prefix + ".skip.b"])
        else:
            skip = h
        return skip + y

    def attnblock(prefix, h):
        y = groupnorm(h, g, p[prefix + ".gn.g"], p[prefix + ".gn.b"])
        y = conv1d(y, p[prefix + ".qkv.w"], p[prefix + ".qkv.b"])
        y = attention(y, c.heads)
        y = conv1d(y, p[prefix + ".proj.w"], p[prefix + ".proj.b"])
        return h + y

    # conditioning
    e0 = time_embedding(t, c.ch[0], temb_dtype).to(x.dtype)
    e = linear(e0, p["time.l1.w"], p["time.l1.b"])
    e = silu(e)
    e = linear(e, p["time.l2.w"], p["time.l2.b"])
    if c.n_classes > 0:
        e = class_embedding(e, p["class.emb"], cls)
    s = silu(e)

    # input, with the position channels after the audio channels
    if c.positions:
        x = torch.cat([x, position_embedding(x.shape[0], c.positions, x.shape[2], x.dtype)], 1)
    h = conv1d(x, p["in.w"], p["in.b"], 1, k2, 1)

    # down path
    skips = []
    for l in range(c.n):
        for i in range(c.blocks):
            h = resblock("down%d.res%d" % (l, i), h, s)
            if c.attn[l]:
                h = attnblock("down%d.attn%d" % (l, i), h)
        skips.append(h)
        if l < c.n - 1:
            f = c.fac[l]
            h = conv1d(h, p["down%d.down.w" % l], p["down%d.down.b" % l], f, f // 2, 1)

    # middle
    h = resblock("mid.res0", h, s)
    if c.attn[c.n - 1]:
        h = attnblock("mid.attn", h)
    h = resblock("mid.res1", h, s)

    # up path
    for l in range(c.n - 1, -1, -1):
        h = concat(h, skips[l])
        for i in range(c.blocks):
            h = resblock("up%d.res%d" % (l, i), h, s)
            if c.attn[l]:
                h = attnblock("up%d.attn%d" % (l, i), h)
        if l > 0:
            h = upsample(h, c.fac[l - 1])
            h = conv1d(h, p["up%d.up.w" % l], p["up%d.up.b" % l], 1, k2, 1)

    # output
    h = silu(groupnorm(h, g, p["out.gn.g"], p["out.gn.b"]))
    return conv1d(h, p["out.w"], p["out.b"], 1, k2, 1)


def run_unet(c, params32, x32, t32, cls, dout32, dtype, temb_dtype=torch.float64):
    p = OrderedDict((k, v.to(dtype).requires_grad_()) for k, v in params32.items())
    x = x32.to(dtype).requires_grad_()
    # The time embedding is evaluated in temb_dtype and then cast to dtype.  1000*t*f_k
    # reaches 1000 rad, so in float32 its argument alone carries ~3e-5 absolute error.
    out = unet_forward(c, p, x, t32, cls, temb_dtype)
    grads = grads_of(out, dout32.to(dtype), [x] + list(p.values()))
    return out.detach(), grads[0], OrderedDict(zip(p.keys(), grads[1:]))


def rel(a, b):
    a = a.to(torch.float64)
    b = b.to(torch.float64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def make_unet(name, c, b_, length, t_list, cls_list):
    spec = param_spec(c)
    params32 = init_params(spec)
    x32 = randn(b_, c.in_ch, length)
    t32 = torch.tensor(t_list, dtype=torch.float32)
    cls = torch.tensor(cls_list, dtype=torch.int32)
    dout32 = randn(b_, c.out_ch, length)

    out, dx, grads = run_unet(c, params32, x32, t32, cls, dout32, torch.float64)
    assert out.shape == (b_, c.out_ch, length)

    fx = Fixture()
    fx.add("cfg", np.array(c.cfg_ints(b_, length), dtype=np.int32))
    if c.positions:
        fx.add("positions", np.array([c.positions], dtype=np.int32))
    fx.add("x", x32)
    fx.add("t", t32)
    fx.add("cls", cls)
    fx.add("dout", dout32)
    fx.add("out", out)
    fx.add("dx", dx)
    for k, v in params32.items():
        fx.add("param." + k, v)
    for k, v in grads.items():
        fx.add("grad." + k, v)

    nparams = sum(v.numel() for v in params32.values())
    print("%s: %d parameters in %d tensors" % (name, nparams, len(params32)))

    # self-check: the same network in float32
    out32, dx32, grads32 = run_unet(c, params32, x32, t32, cls, dout32, torch.float32)
    worst_g = max(grads, key=lambda k: rel(grads32[k], grads[k]))
    print("%s: float32 vs float64 max rel diff: out %.3g, dx %.3g, worst param grad %.3g (%s)"
          % (name, rel(out32, out), rel(dx32, dx), rel(grads32[worst_g], grads[worst_g]),
             worst_g))
    out32, dx32, grads32 = run_unet(c, params32, x32, t32, cls, dout32, torch.float32,
                                    torch.float32)
    worst_g = max(grads, key=lambda k: rel(grads32[k], grads[k]))
    print("%s: same, time embedding also in float32: out %.3g, dx %.3g, worst param grad "
          "%.3g (%s)" % (name, rel(out32, out), rel(dx32, dx),
                         rel(grads32[worst_g], grads[worst_g]), worst_g))
    return fx


def main():
    torch.manual_seed(1234)
    os.makedirs(OUTDIR, exist_ok=True)

    fx = make_layers()
    path = os.path.join(OUTDIR, "layers.dmfx")
    print("layers.dmfx: %d tensors, %d bytes" % (len(fx.items), fx.write(path)))

    ca = UNetConfig(in_ch=1, out_ch=1, channels=[8, 16], factors=[2], blocks=1,
                    attention=[0, 1], heads=2, groups=4, kernel=3, n_classes=3)
    fx = make_unet("unet_a", ca, 2, 16, [0.3, 0.7], [1, 3])
    path = os.path.join(OUTDIR, "unet_a.dmfx")
    print("unet_a.dmfx: %d tensors, %d bytes" % (len(fx.items), fx.write(path)))

    cb = UNetConfig(in_ch=2, out_ch=2, channels=[8, 8, 16], factors=[4, 2], blocks=2,
                    attention=[0, 0, 1], heads=4, groups=2, kernel=5, n_classes=0)
    fx = make_unet("unet_b", cb, 2, 32, [0.05, 0.95], [0, 0])
    path = os.path.join(OUTDIR, "unet_b.dmfx")
    print("unet_b.dmfx: %d tensors, %d bytes" % (len(fx.items), fx.write(path)))

    cc = UNetConfig(in_ch=6, out_ch=6, channels=[8, 16], factors=[4], blocks=1,
                    attention=[0, 1], heads=2, groups=4, kernel=3, n_classes=2, positions=6)
    fx = make_unet("unet_c", cc, 2, 24, [0.2, 0.6], [0, 2])
    path = os.path.join(OUTDIR, "unet_c.dmfx")
    print("unet_c.dmfx: %d tensors, %d bytes" % (len(fx.items), fx.write(path)))


if __name__ == "__main__":
    main()
