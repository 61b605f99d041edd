#!/usr/bin/python3
"""Reference trajectories for the samplers (tests/fixtures/samplers.dmfx).

Independent of the C code: the schedules follow DDPM (linear betas) and
improved DDPM (cosine alpha-bar, betas clipped at 0.999) as diffusers builds
them; the updates follow diffusers' DDPMScheduler.step (fixed_small variance)
and DDIMScheduler.step, and k-diffusion's get_sigmas_karras, sample_euler,
sample_heun and sample_dpmpp_2m, all in float64.

The "network" is an analytic denoiser so that every step is reproducible:
    x0_hat(x_vp, alpha, sigma) = 0.9 alpha x_vp + 0.5 sigma s + 0.1 tanh(x_vp)
with s a fixed signal. Discrete samplers pass it x_t, sqrt(abar), sqrt(1-abar);
Karras samplers pass x / sqrt(1 + sigma^2), 1 / sqrt(1 + sigma^2),
sigma / sqrt(1 + sigma^2).

Time grids (documented in core/src/sampler.c): discrete timesteps
round(start - k (start - 1) / (n - 1)), k = 0..n-1, then 0, with start = T or
round(strength T); Karras sigmas from sigma(t=1) to min(sigma_max, 80) (or the
sigma at u = strength), rho = 7, n = round(steps * strength) steps.
"""
import math
import os
import struct

import numpy as np

T = 1000
N = 48  # values per trajectory


def linear_abar():
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def cosine_abar(s=0.008):
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = np.array([min(1 - f(i / T) / f((i - 1) / T), 0.999) for i in range(1, T + 1)])
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def rnd(x):  # round half away from zero, like C's lround
    return int(math.floor(x + 0.5))


def denoiser(signal):
    def d(x_vp, alpha, sigma):
        return 0.9 * alpha * x_vp + 0.5 * sigma * signal + 0.1 * np.tanh(x_vp)
    return d


def timesteps(steps, strength):
    start = T if strength >= 1 else max(1, rnd(strength * T))
    n = steps if strength >= 1 else max(1, rnd(steps * strength))
    n = min(n, start)
    ts = [rnd(start - k * (start - 1) / (n - 1)) if n > 1 else start for k in range(n)]
    return ts + [0]


def ddpm_ddim(abar, kind, steps, eta, x, noises, D, init=None, strength=1.0):
    ts = timesteps(steps, strength)
    traj = []
    if init is not None:
        a = abar[ts[0]]
        x = math.sqrt(a) * init + math.sqrt(1 - a) * x
    for k in range(len(ts) - 1):
        t, tp = ts[k], ts[k + 1]
        a_t, a_p = abar[t], abar[tp]
        x0 = D(x, math.sqrt(a_t), math.sqrt(1 - a_t))
        if kind == "ddpm":  # diffusers DDPMScheduler.step, variance_type fixed_small
            cur_alpha = a_t / a_p
            cur_beta = 1 - cur_alpha
            mean = (math.sqrt(a_p) * cur_beta / (1 - a_t)) * x0 + \
                   (math.sqrt(cur_alpha) * (1 - a_p) / (1 - a_t)) * x
            var = (1 - a_p) / (1 - a_t) * cur_beta
            x = mean + (math.sqrt(var) * noises[k] if tp > 0 else 0)
        else:  # diffusers DDIMScheduler.step
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
            std = eta * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p))
            x = math.sqrt(a_p) * x0 + math.sqrt(1 - a_p - std ** 2) * eps + std * noises[k]
        traj.append(x.copy())
    return np.array(traj)


def karras_sigmas(abar, steps, strength, rho=7.0, cap=80.0):
    """Karras spacing from min(sigma_max, 80) (EDM's sigma_max) down to sigma(t=1)."""
    smin = math.sqrt((1 - abar[1]) / abar[1])
    smax = min(math.sqrt((1 - abar[T]) / abar[T]), cap)
    n = steps
    if strength < 1:  # the sigma at continuous time u = strength (log-linear in abar)
        pos = strength * T
        t0 = min(int(math.floor(pos)), T - 1)
        fr = pos - t0
        la = (1 - fr) * math.log(abar[t0]) + fr * math.log(abar[t0 + 1])
        smax = min(math.sqrt(-math.expm1(la)) / math.exp(0.5 * la), cap)
        n = max(1, rnd(steps * strength))
    ramp = np.linspace(0, 1, n)
    sig = (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    return np.concatenate([sig, [0.0]])


def karras(abar, kind, steps, x, D, init=None, strength=1.0):
    sig = karras_sigmas(abar, steps, strength)

    def model(x, s):  # VE -> VP wrapper
        c = 1 / math.sqrt(1 + s * s)
        return D(x * c, c, s * c)

    x = (init if init is not None else 0) + sig[0] * x
    traj, old = [], None
    for i in range(len(sig) - 1):
        s, sn = sig[i], sig[i + 1]
        den = model(x, s)
        if kind == "euler":  # k-diffusion sample_euler, no churn
            x = x + (x - den) / s * (sn - s)
        elif kind == "heun":  # k-diffusion sample_heun, no churn
            d = (x - den) / s
            dt = sn - s
            if sn == 0:
                x = x + d * dt
            else:
                x2 = x + d * dt
                d2 = (x2 - model(x2, sn)) / sn
                x = x + (d + d2) / 2 * dt
        else:  # k-diffusion sample_dpmpp_2m
            t, tn = -math.log(s), (-math.log(sn) if sn > 0 else math.inf)
            h = tn - t
            if old is None or sn == 0:
                x = (sn / s) * x - math.expm1(-h) * den
            else:
                h_last = t - (-math.log(sig[i - 1]))
                r = h_last / h
                dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
                x = (sn / s) * x - math.expm1(-h) * dd
            old = den
        traj.append(x.copy())
    return np.array(traj), sig


def write_dmfx(path, tensors):
    with open(path, "wb") as f:
        f.write(b"DMFX" + struct.pack("<II", 1, len(tensors)))
        for name, arr in tensors:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", arr.ndim))
            f.write(struct.pack("<%dI" % arr.ndim, *arr.shape))
            if arr.dtype.kind == "i":
                f.write(struct.pack("<I", 1) + arr.astype("<i4").tobytes())
            else:
                f.write(struct.pack("<I", 0) + arr.astype("<f4").tobytes())


def main():
    rng = np.random.default_rng(2024)
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)
    signal = f32(np.sin(np.arange(N) * 0.3) * 0.7)
    init = f32(rng.standard_normal(N) * 0.5)
    D = denoiser(signal)
    out = [("signal", signal), ("init", init)]
    lin, cos = linear_abar(), cosine_abar()
    out += [("abar.linear", lin), ("abar.cosine", cos)]
    # kind, schedule, steps, eta, strength
    cases = [("ddpm", "linear", 6, 0.0, 1.0), ("ddim", "linear", 6, 0.0, 1.0),
             ("ddim", "cosine", 5, 0.5, 1.0), ("ddpm", "cosine", 4, 0.0, 1.0),
             ("euler", "linear", 6, 0.0, 1.0), ("heun", "linear", 5, 0.0, 1.0),
             ("dpmpp-2m", "linear", 6, 0.0, 1.0), ("dpmpp-2m", "cosine", 7, 0.0, 1.0),
             ("euler", "linear", 8, 0.0, 0.5), ("ddim", "linear", 8, 0.0, 0.5)]
    kinds = {"ddpm": 0, "ddim": 1, "dpmpp-2m": 2, "euler": 3, "heun": 4}
    for ci, (kind, sched, steps, eta, strength) in enumerate(cases):
        abar = lin if sched == "linear" else cos
        x = f32(rng.standard_normal(N))
        noises = f32(rng.standard_normal((steps, N)))
        use_init = init if strength < 1 else None
        if kind in ("ddpm", "ddim"):
            traj = ddpm_ddim(abar, kind, steps, eta, x, noises, D, use_init, strength)
            grid = np.array(timesteps(steps, strength), dtype=np.float64)
        else:
            traj, grid = karras(abar, kind, steps, x, D, use_init, strength)
        p = "case%d" % ci
        out += [(p + ".cfg", np.array([kinds[kind], 0 if sched == "linear" else 1, steps],
                                      dtype=np.int32)),
                (p + ".eta", np.array([eta])), (p + ".strength", np.array([strength])),
                (p + ".x", x), (p + ".noise", noises), (p + ".traj", traj), (p + ".grid", grid)]
        print("%s: %-9s %-6s steps %d eta %.1f strength %.1f -> |x_final| max %.4f" %
              (p, kind, sched, steps, eta, strength, np.abs(traj[-1]).max()))
    here = os.path.dirname(os.path.abspath(__file__))
    write_dmfx(os.path.join(here, "fixtures", "samplers.dmfx"), out)


if __name__ == "__main__":
    main()
