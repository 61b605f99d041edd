#!/usr/bin/python3
"""Generate tests/fixtures/optim.dmfx: the reference for the training step's optimiser
(core/src/optim.h), for tests/test_optim.c.

The reference is PyTorch's own optimiser code, in float64, from the float32 inputs the C code
gets: torch.nn.utils.clip_grad_norm_ (global L2 norm), then torch.optim.AdamW (decoupled
weight decay, Loshchilov & Hutter 2019) with two parameter groups (weight decay on and off),
then an exponential moving average e = d e + (1 - d) w with d = min(ema_decay,
(1 + k) / (10 + k)) at step k = 1, 2, ... (the EMA is not part of torch.optim: written out).

Four steps on 1003 weights (not a multiple of any vector width): the first gradient's norm is
below the clipping threshold, the next three are above it. clip_grad_norm_ divides by
(norm + 1e-6), not by the norm: a relative difference of 3e-7 here, far below the tests'
tolerances.

Tensors: w0 (n), decay (n, int32: 1 where weight decay applies), g (steps, n), hyper (lr,
beta1, beta2, eps, weight_decay, grad_clip, ema_decay), and per step s: w (steps, n), m, v
(AdamW's exp_avg and exp_avg_sq), e (steps, n), norm (steps: the unclipped global norm).

Usage: /usr/bin/python3 tests/gen_optim_fixtures.py   (python3-numpy, python3-torch)
"""

import os

import numpy as np
import torch

from gen_fixtures import Fixture

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "optim.dmfx")

N = 1003
NORMS = [0.4, 3.0, 7.5, 2.2]  # the gradients' global norms: the first one is not clipped
LR, BETA1, BETA2, EPS, WD, CLIP, EMA = 2e-3, 0.9, 0.99, 1e-8, 0.05, 1.0, 0.999


def main():
    rng = np.random.default_rng(20261127)
    w0 = rng.standard_normal(N).astype(np.float32)
    decay = (rng.random(N) < 0.7).astype(np.int32)
    grads = []
    for norm in NORMS:
        g = rng.standard_normal(N).astype(np.float64)
        grads.append((g * norm / np.linalg.norm(g)).astype(np.float32))

    # two parameter groups, gathered from and scattered back to the interleaved layout
    on, off = decay == 1, decay == 0
    p_on = torch.tensor(w0[on], dtype=torch.float64, requires_grad=True)
    p_off = torch.tensor(w0[off], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW([{"params": [p_on], "weight_decay": WD},
                             {"params": [p_off], "weight_decay": 0.0}],
                            lr=LR, betas=(BETA1, BETA2), eps=EPS, foreach=False)
    ema = w0.astype(np.float64)
    out = {"w": [], "m": [], "v": [], "e": [], "norm": []}
    for k, g in enumerate(grads, start=1):
        g64 = g.astype(np.float64)
        p_on.grad = torch.tensor(g64[on])
        p_off.grad = torch.tensor(g64[off])
        norm = torch.nn.utils.clip_grad_norm_([p_on, p_off], CLIP)
        opt.step()
        w = np.empty(N)
        w[on], w[off] = p_on.detach().numpy(), p_off.detach().numpy()
        m, v = np.empty(N), np.empty(N)
        for p, mask in ((p_on, on), (p_off, off)):
            m[mask] = opt.state[p]["exp_avg"].numpy()
            v[mask] = opt.state[p]["exp_avg_sq"].numpy()
        d = min(EMA, (1.0 + k) / (10.0 + k))
        ema = d * ema + (1.0 - d) * w
        for name, value in (("w", w), ("m", m), ("v", v), ("e", ema.copy())):
            out[name].append(value)
        out["norm"].append(float(norm))

    fx = Fixture()
    fx.add("w0", w0)
    fx.add("decay", decay)
    fx.add("g", np.stack(grads))
    fx.add("hyper", np.array([LR, BETA1, BETA2, EPS, WD, CLIP, EMA]))
    for name in ("w", "m", "v", "e"):
        fx.add(name, np.stack(out[name]))
    fx.add("norm", np.array(out["norm"]))
    print("optim.dmfx: %d tensors, %d bytes" % (len(fx.items), fx.write(OUT)))


if __name__ == "__main__":
    main()
