/* Samplers: the reverse process as loops over a denoiser (see sampler.h).
 *
 * Discrete samplers (DDPM, DDIM) walk timesteps t_0 > t_1 > ... > 0 in the
 * variance-preserving convention x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
 * Karras samplers (Euler, Heun, DPM-Solver++(2M)) walk noise levels
 * sigma_0 > ... > sigma_n = 0 in the variance-exploding convention
 * x = x0 + sigma eps, where sigma = sqrt((1 - abar) / abar); the network sees
 * x / sqrt(1 + sigma^2) at the time u whose schedule has that sigma. */
#include "sampler.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static const char *const sampler_names[DM_SAMPLER_COUNT] = {"ddpm", "ddim", "dpmpp-2m", "euler",
                                                            "heun"};
static const int sampler_steps[DM_SAMPLER_COUNT] = {100, 50, 25, 50, 25};

const char *dm_sampler_name(dm_sampler_kind kind)
{
    return (unsigned)kind < DM_SAMPLER_COUNT ? sampler_names[kind] : "unknown";
}

int dm_sampler_from_name(const char *name, dm_sampler_kind *out)
{
    for (int i = 0; name && i < DM_SAMPLER_COUNT; i++)
        if (strcmp(name, sampler_names[i]) == 0) {
            *out = (dm_sampler_kind)i;
            return 0;
        }
    return -1;
}

int dm_sampler_default_steps(dm_sampler_kind kind)
{
    return (unsigned)kind < DM_SAMPLER_COUNT ? sampler_steps[kind] : 0;
}

static int is_karras(dm_sampler_kind k)
{
    return k == DM_SAMPLER_DPMPP_2M || k == DM_SAMPLER_EULER || k == DM_SAMPLER_HEUN;
}

/* Steps actually taken: all of them from pure noise, a share for SDEdit. */
static int effective_steps(const dm_loop_params *p)
{
    if (p->strength >= 1.0)
        return p->steps;
    int n = (int)lround(p->steps * p->strength);
    return n < 1 ? 1 : n;
}

int dm_loop_timesteps(const dm_schedule *s, const dm_loop_params *p, int *ts)
{
    const int T = s->steps;
    int start = p->strength >= 1.0 ? T : (int)lround(p->strength * T);
    if (start < 1)
        start = 1;
    int n = effective_steps(p);
    if (n > start)
        n = start;
    for (int k = 0; k < n; k++)
        ts[k] = n > 1 ? (int)lround(start - (double)k * (start - 1) / (n - 1)) : start;
    ts[n] = 0;
    return n;
}

int dm_loop_sigmas(const dm_schedule *s, const dm_loop_params *p, double *sigmas)
{
    double cap = p->sigma_max > 0.0 ? p->sigma_max : DM_KARRAS_SIGMA_MAX;
    double smax = fmin(dm_schedule_sigma_max(s), cap);
    if (p->strength < 1.0) {
        double a, b;
        dm_schedule_alpha_sigma(s, p->strength, &a, &b);
        smax = fmin(b / a, cap);
    }
    double smin = dm_schedule_sigma_min(s);
    if (smax < smin)
        smax = smin;
    int n = effective_steps(p);
    dm_karras_sigmas(smin, smax, p->rho > 0 ? p->rho : 7.0, n, sigmas);
    return n;
}

/* x0 estimate at VE noise level sigma: the network sees the VP-scaled input. */
static void denoise_ve(const dm_schedule *s, dm_denoise_fn D, void *ctx, const float *x,
                       double sigma, float *scratch, float *x0, size_t n)
{
    double c = 1.0 / sqrt(1.0 + sigma * sigma);
    for (size_t i = 0; i < n; i++)
        scratch[i] = (float)(x[i] * c);
    D(ctx, scratch, dm_schedule_u_from_sigma(s, sigma), c, sigma * c, x0, n);
}

/* In-painting: the kept region is the known audio noised to the next level. */
static void paste_known(const dm_loop_params *p, float *x, const float *z, double a, double b,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p->mask[i] > 0.5f)
            x[i] = (float)(a * p->init[i] + b * z[i]);
}

static dm_status discrete_loop(const dm_schedule *s, const dm_loop_params *p, float *x, size_t n,
                               dm_denoise_fn D, void *dctx, dm_noise_fn noise, void *nctx,
                               float *work, dm_error *err)
{
    int ts[DM_MAX_TIMESTEPS + 1];
    int steps = dm_loop_timesteps(s, p, ts);
    float *x0 = work, *z = work + n;
    double abar0 = dm_schedule_alpha_bar(s, ts[0]);
    if (p->init) { /* SDEdit / in-painting start: the init noised to t_0 */
        double a = sqrt(abar0), b = sqrt(1.0 - abar0);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(a * p->init[i] + b * x[i]);
    }
    for (int k = 0; k < steps; k++) {
        int t = ts[k], tp = ts[k + 1];
        double ab = dm_schedule_alpha_bar(s, t), abp = dm_schedule_alpha_bar(s, tp);
        D(dctx, x, (double)t / s->steps, sqrt(ab), sqrt(1.0 - ab), x0, n);
        double sd = 0.0; /* standard deviation of the fresh noise */
        if (p->sampler == DM_SAMPLER_DDPM) {
            /* posterior q(x_{t'} | x_t, x0) of the respaced chain */
            double beta = 1.0 - ab / abp;
            double c0 = sqrt(abp) * beta / (1.0 - ab);
            double ct = sqrt(1.0 - beta) * (1.0 - abp) / (1.0 - ab);
            sd = tp > 0 ? sqrt(beta * (1.0 - abp) / (1.0 - ab)) : 0.0;
            for (size_t i = 0; i < n; i++)
                x[i] = (float)(c0 * x0[i] + ct * x[i]);
        } else {
            /* DDIM: x' = sqrt(abar') x0 + sqrt(1 - abar' - s^2) eps + s z */
            sd = p->eta * sqrt((1.0 - abp) / (1.0 - ab)) * sqrt(1.0 - ab / abp);
            double dir = sqrt(fmax(1.0 - abp - sd * sd, 0.0));
            double ra = sqrt(ab), rb = sqrt(1.0 - ab);
            for (size_t i = 0; i < n; i++) {
                double eps = (x[i] - ra * x0[i]) / rb;
                x[i] = (float)(sqrt(abp) * x0[i] + dir * eps);
            }
        }
        if (sd > 0.0) {
            noise(nctx, k, z, n);
            for (size_t i = 0; i < n; i++)
                x[i] += (float)(sd * z[i]);
        }
        if (p->mask) {
            if (tp > 0)
                noise(nctx, steps + k, z, n);
            paste_known(p, x, z, sqrt(abp), tp > 0 ? sqrt(1.0 - abp) : 0.0, n);
        }
        if (p->progress && p->progress(p->progress_user_data, k + 1, steps))
            return dm_fail(err, DM_ERR_CANCELLED, "sampling cancelled");
    }
    return DM_OK;
}

static dm_status karras_loop(const dm_schedule *s, const dm_loop_params *p, float *x, size_t n,
                             dm_denoise_fn D, void *dctx, dm_noise_fn noise, void *nctx,
                             float *work, dm_error *err)
{
    double sig[DM_MAX_TIMESTEPS + 1];
    int steps = dm_loop_sigmas(s, p, sig);
    float *den = work, *old = work + n, *tmp = work + 2 * n, *x2 = work + 3 * n;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((p->init ? p->init[i] : 0.0) + sig[0] * x[i]);
    for (int k = 0; k < steps; k++) {
        double sc = sig[k], sn = sig[k + 1];
        denoise_ve(s, D, dctx, x, sc, tmp, den, n);
        if (p->sampler == DM_SAMPLER_EULER) {
            double dt = sn - sc;
            for (size_t i = 0; i < n; i++)
                x[i] += (float)((x[i] - den[i]) / sc * dt);
        } else if (p->sampler == DM_SAMPLER_HEUN) {
            double dt = sn - sc;
            for (size_t i = 0; i < n; i++)
                x2[i] = (float)(x[i] + (x[i] - den[i]) / sc * dt);
            if (sn > 0.0) {
                /* second evaluation at the Euler point; average the slopes */
                denoise_ve(s, D, dctx, x2, sn, tmp, old, n);
                for (size_t i = 0; i < n; i++) {
                    double d1 = (x[i] - den[i]) / sc, d2 = (x2[i] - old[i]) / sn;
                    x[i] = (float)(x[i] + 0.5 * (d1 + d2) * dt);
                }
            } else {
                memcpy(x, x2, n * sizeof *x);
            }
        } else { /* DPM-Solver++(2M) in lambda = -log(sigma) */
            double h = sn > 0.0 ? log(sc / sn) : 0.0;
            double ratio = sn / sc, em = -expm1(-h);
            if (k == 0 || sn == 0.0) {
                for (size_t i = 0; i < n; i++)
                    x[i] = (float)(ratio * x[i] + (sn > 0.0 ? em : 1.0) * den[i]);
            } else {
                double h_last = log(sig[k - 1] / sc), r = h_last / h;
                double a = 1.0 + 1.0 / (2.0 * r), b = 1.0 / (2.0 * r);
                for (size_t i = 0; i < n; i++)
                    x[i] = (float)(ratio * x[i] + em * (a * den[i] - b * old[i]));
            }
            memcpy(old, den, n * sizeof *old);
        }
        if (p->mask) {
            if (sn > 0.0)
                noise(nctx, steps + k, tmp, n);
            paste_known(p, x, tmp, 1.0, sn, n);
        }
        if (p->progress && p->progress(p->progress_user_data, k + 1, steps))
            return dm_fail(err, DM_ERR_CANCELLED, "sampling cancelled");
    }
    return DM_OK;
}

dm_status dm_sample_loop(const dm_schedule *s, const dm_loop_params *p, float *x, size_t n,
                         dm_denoise_fn denoise, void *dctx, dm_noise_fn noise, void *nctx,
                         float *work, dm_error *err)
{
    if ((unsigned)p->sampler >= DM_SAMPLER_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: unknown kind %d", (int)p->sampler);
    if (p->steps < 1 || p->steps > DM_MAX_TIMESTEPS)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: %d steps is not in 1..%d", p->steps,
                       DM_MAX_TIMESTEPS);
    if (!(p->strength > 0.0 && p->strength <= 1.0))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: strength %g is not in (0, 1]",
                       p->strength);
    if (p->strength < 1.0 && !p->init)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: strength < 1 needs an input sound");
    if (p->mask && !p->init)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: a mask needs an input sound");
    if (!(p->eta >= 0.0 && p->eta <= 1.0))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "sampler: eta %g is not in [0, 1]", p->eta);
    if (is_karras(p->sampler))
        return karras_loop(s, p, x, n, denoise, dctx, noise, nctx, work, err);
    return discrete_loop(s, p, x, n, denoise, dctx, noise, nctx, work, err);
}

void dm_slerp(const float *a, const float *b, double f, float *out, size_t n)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    double c = (aa > 0 && bb > 0) ? ab / sqrt(aa * bb) : 1.0;
    c = fmax(-1.0, fmin(1.0, c));
    double theta = acos(c);
    double wa = 1.0 - f, wb = f;
    if (theta > 1e-6) {
        wa = sin((1.0 - f) * theta) / sin(theta);
        wb = sin(f * theta) / sin(theta);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(wa * a[i] + wb * b[i]);
}
