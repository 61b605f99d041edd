/* The variational bound of a model on a set of clips, in bits per sample: Ho et al. (2020)
 * Eq. 5 as computed by improved DDPM (L_vlb). Definitions in dmaudio.h ("The variational
 * bound"); the loop, independent of the network, in dm_elbo_run (elbo.h).
 *
 * The diffusion terms. With the reverse mean equal to the posterior mean evaluated at the
 * network's x0_hat and the reverse variance equal to the posterior variance beta~_t, the two
 * Gaussians of KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) differ only in their means,
 * c0_t (x_0 - x0_hat) with c0_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t), so per dimension
 *   KL = c0_t^2 (x_0 - x0_hat)^2 / (2 beta~_t) = (SNR_{t-1} - SNR_t) (x_0 - x0_hat)^2 / 2,
 * SNR_t = abar_t / (1 - abar_t): computed from the difference x_0 - x0_hat, with no
 * cancellation between two nearly equal means.
 *
 * Sampling: the Monte Carlo estimate draws one t in each of n_t runs of 2..T whose ends are
 * spaced geometrically (see stratify) and weights it by its run's length: unbiased, and with a
 * far smaller variance than uniform draws (which would miss or over-weight the few small t
 * that carry much of the bound).
 *
 * Noise: x_t of clip i at timestep t uses dm_rng_normal stream i * 8192 + t of the seed, the
 * stratified draws of clip i stream i * 8192 + 8191 (T <= 4096), so nothing depends on the
 * batching or on the thread count. */
#include "elbo.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAMS_PER_CLIP 8192
#define ELBO_BATCH 8       /* network passes per forward call of dm_model_elbo */
#define ELBO_MAX_BATCH 128 /* of dm_elbo_run */

dm_elbo_params dm_elbo_default_params(void)
{
    dm_elbo_params p;
    memset(&p, 0, sizeof p);
    p.n_t = 50;
    p.bits = 16;
    return p;
}

/* ---- the terms ---- */

double dm_gaussian_kl(double mean1, double var1, double mean2, double var2)
{
    double d = mean1 - mean2;
    return 0.5 * (log(var2 / var1) + (var1 + d * d) / var2 - 1.0);
}

/* log Q(z) for z >= 0, Q the standard normal's upper tail. erfc is accurate to its underflow
 * (z ~ 38); beyond 30 the asymptotic series Q(z) = phi(z) / z (1 - z^-2 + 3 z^-4 - 15 z^-6 ...)
 * is used (relative error below 105 z^-8 < 2e-10). */
static double log_upper_tail(double z)
{
    if (z < 30.0)
        return log(0.5 * erfc(z / M_SQRT2));
    double r = 1.0 / (z * z);
    return -0.5 * z * z - log(z) - 0.5 * log(2.0 * M_PI) + log1p(r * (-1.0 + r * (3.0 - 15.0 * r)));
}

double dm_normal_log_mass(double lo, double hi, double mean, double std)
{
    double a = (lo - mean) / std, b = (hi - mean) / std;
    if (!(b > a))
        return -INFINITY;
    if (a < 0.0 && b > 0.0) /* straddles the mean: a sum of two positive parts */
        return log(0.5 * (erf(b / M_SQRT2) + erf(-a / M_SQRT2)));
    /* one side: by symmetry, the upper tail between z1 < z2 */
    double z1 = a >= 0.0 ? a : -b, z2 = a >= 0.0 ? b : -a;
    double l1 = log_upper_tail(z1);
    if (isinf(z2))
        return l1;
    return l1 + log(-expm1(log_upper_tail(z2) - l1));
}

void dm_elbo_quantise(double x, int bits, double *level, double *lo, double *hi)
{
    const double top = ldexp(1.0, bits) - 1.0; /* the highest level index */
    const double delta = 2.0 / top;
    double k = floor((x + 1.0) / delta + 0.5);
    k = k < 0.0 ? 0.0 : k > top ? top : k;
    double v = k == top ? 1.0 : -1.0 + k * delta;
    *level = v;
    *lo = k == 0.0 ? -INFINITY : v - 0.5 * delta;
    *hi = k == top ? INFINITY : v + 0.5 * delta;
}

/* ---- the loop ---- */

/* The runs of timesteps the diffusion terms are drawn from: edges[0] = 2 < edges[1] < ... <
 * edges[n] = T + 1, run k being [edges[k], edges[k + 1]). The terms fall off roughly like 1/t
 * (a well-trained network: (SNR_{t-1} - SNR_t) times an error ~ 1 / SNR_t) or faster (an
 * untrained one), so the ends are spaced geometrically: each run spans the same ratio of t,
 * the first ones are single timesteps (computed exactly), and n = T - 1 gives every t. */
static void stratify(int T, int n, int *edges)
{
    const double ratio = (T + 1) / 2.0;
    edges[0] = 2;
    for (int k = 1; k < n; k++) {
        int e = (int)lround(2.0 * pow(ratio, (double)k / n));
        int lo = edges[k - 1] + 1, hi = T + 1 - (n - k);
        edges[k] = e < lo ? lo : e > hi ? hi : e;
    }
    edges[n] = T + 1;
}

/* Timestep of diffusion term k of clip i, and its weight (the length of its run). */
static int diffusion_t(const dm_elbo_params *p, const int *edges, int i, int k, double *w)
{
    int lo = edges[k], len = edges[k + 1] - edges[k];
    *w = len;
    if (len == 1)
        return lo;
    float u;
    dm_rng_uniform(p->seed, (uint64_t)i * STREAMS_PER_CLIP + (STREAMS_PER_CLIP - 1), (uint64_t)k,
                   &u, 1);
    int t = lo + (int)(u * len);
    return t < lo + len ? t : lo + len - 1;
}

dm_status dm_elbo_run(const dm_schedule *s, double data_scale, size_t item, int max_batch,
                      dm_elbo_denoise_fn denoise, void *ctx, const float *clips, int count,
                      const dm_elbo_params *p, dm_elbo_parts *out, double *per_clip,
                      dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!s || !denoise || !clips || !p || !out || item == 0)
        return dm_fail(err, bad, "elbo: missing argument");
    if (max_batch < 1 || max_batch > ELBO_MAX_BATCH)
        return dm_fail(err, bad, "elbo: batch %d is not in 1..%d", max_batch, ELBO_MAX_BATCH);
    if (count < 1)
        return dm_fail(err, bad, "elbo: no clip to evaluate");
    if (p->bits < 1 || p->bits > 24)
        return dm_fail(err, bad, "elbo: %d bits is not in 1..24", p->bits);
    if (p->n_t < 0)
        return dm_fail(err, bad, "elbo: %d timesteps is negative", p->n_t);
    if (!(data_scale > 0.0) || !isfinite(data_scale))
        return dm_fail(err, bad, "elbo: data scale %g is not positive", data_scale);
    const size_t total = item * (size_t)count;
    for (size_t j = 0; j < total; j++)
        if (!isfinite(clips[j]))
            return dm_fail(err, bad, "elbo: clip %zu has a NaN or infinite sample", j / item);

    const int T = s->steps;
    const int n_diff = p->n_t == 0 || p->n_t >= T - 1 ? T - 1 : p->n_t;
    const int64_t jobs_per_clip = 1 + (int64_t)n_diff; /* the decoder, then diffusion terms */
    const int64_t n_jobs = jobs_per_clip * count;
    const int64_t n_batches = (n_jobs + max_batch - 1) / max_batch;

    const size_t nb = item * (size_t)max_batch;
    float *y0 = dm_alloc(nb, sizeof(float)), *xt = dm_alloc(nb, sizeof(float));
    float *x0h = dm_alloc(nb, sizeof(float));
    double *acc = calloc(3 * (size_t)count, sizeof(double)); /* prior, diffusion, decoder */
    int *edges = malloc(((size_t)n_diff + 1) * sizeof(int));
    int jt[ELBO_MAX_BATCH], jclip[ELBO_MAX_BATCH], jcls[ELBO_MAX_BATCH];
    double jw[ELBO_MAX_BATCH];
    if (!y0 || !xt || !x0h || !acc || !edges) {
        dm_free(y0), dm_free(xt), dm_free(x0h), free(acc), free(edges);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "elbo: out of memory");
    }
    stratify(T, n_diff, edges);
    double *a_prior = acc, *a_diff = acc + count, *a_dec = acc + 2 * (size_t)count;

    /* the prior term, exactly: KL(N(sqrt(abar_T) y, 1 - abar_T) || N(0, 1)) per dimension */
    const double abar_T = dm_schedule_alpha_bar(s, T);
    for (int i = 0; i < count; i++) {
        double sum = 0.0, level, lo, hi;
        for (size_t j = 0; j < item; j++) {
            dm_elbo_quantise(clips[(size_t)i * item + j], p->bits, &level, &lo, &hi);
            double y = level * data_scale;
            sum += 0.5 * (abar_T * y * y - abar_T - log1p(-abar_T));
        }
        a_prior[i] = sum;
    }
    /* the decoder's standard deviation: sqrt(beta~_2) */
    const double abar1 = dm_schedule_alpha_bar(s, 1), abar2 = dm_schedule_alpha_bar(s, 2);
    const double dec_std = sqrt(dm_schedule_beta(s, 2) * (1.0 - abar1) / (1.0 - abar2));

    dm_status st = DM_OK;
    for (int64_t batch = 0, job = 0; batch < n_batches && st == DM_OK; batch++) {
        int n = (int)(n_jobs - job < max_batch ? n_jobs - job : max_batch);
        for (int b = 0; b < n; b++, job++) {
            int i = (int)(job / jobs_per_clip), k = (int)(job % jobs_per_clip);
            jclip[b] = i;
            jcls[b] = p->classes ? p->classes[i] : -1;
            jt[b] = k == 0 ? 1 : diffusion_t(p, edges, i, k - 1, &jw[b]);
            if (k == 0)
                jw[b] = 1.0;
            const double abar = dm_schedule_alpha_bar(s, jt[b]);
            const float ra = (float)sqrt(abar), rs = (float)sqrt(1.0 - abar);
            float *y = y0 + (size_t)b * item, *x = xt + (size_t)b * item;
            for (size_t j = 0; j < item; j++) {
                double level, lo, hi;
                dm_elbo_quantise(clips[(size_t)i * item + j], p->bits, &level, &lo, &hi);
                y[j] = (float)(level * data_scale);
            }
            dm_rng_normal(p->seed, (uint64_t)i * STREAMS_PER_CLIP + (uint64_t)jt[b], 0, x, item);
            for (size_t j = 0; j < item; j++)
                x[j] = ra * y[j] + rs * x[j];
        }
        st = denoise(ctx, n, xt, jt, jcls, x0h, err);
        if (st != DM_OK)
            break;
        for (int b = 0; b < n; b++) {
            const int i = jclip[b], t = jt[b];
            const float *y = y0 + (size_t)b * item, *e = x0h + (size_t)b * item;
            const float *c = clips + (size_t)i * item;
            double sum = 0.0;
            if (t == 1) { /* -log p(x_0 | x_1): mean x0_hat (c0_1 = 1, the x_1 coefficient 0) */
                for (size_t j = 0; j < item; j++) {
                    double level, lo, hi;
                    dm_elbo_quantise(c[j], p->bits, &level, &lo, &hi);
                    sum -= dm_normal_log_mass(lo * data_scale, hi * data_scale, e[j], dec_std);
                }
                a_dec[i] += sum;
            } else {
                const double ab = dm_schedule_alpha_bar(s, t), abp = dm_schedule_alpha_bar(s, t - 1);
                const double coef = 0.5 * (abp / (1.0 - abp) - ab / (1.0 - ab));
                for (size_t j = 0; j < item; j++) {
                    double d = (double)y[j] - e[j];
                    sum += d * d;
                }
                a_diff[i] += jw[b] * coef * sum;
            }
        }
        if (p->progress && p->progress(p->progress_user_data, (int)(batch + 1), (int)n_batches))
            st = dm_fail(err, DM_ERR_CANCELLED, "elbo: cancelled");
    }
    if (st == DM_OK) {
        const double to_bits = 1.0 / ((double)item * M_LN2);
        double mean = 0.0, m2 = 0.0;
        memset(out, 0, sizeof *out);
        for (int i = 0; i < count; i++) {
            double v = (a_prior[i] + a_diff[i] + a_dec[i]) * to_bits;
            if (per_clip)
                per_clip[i] = v;
            out->prior += a_prior[i] * to_bits / count;
            out->diffusion += a_diff[i] * to_bits / count;
            out->decoder += a_dec[i] * to_bits / count;
            double d = v - mean; /* Welford */
            mean += d / (i + 1);
            m2 += d * (v - mean);
        }
        out->bits = mean;
        out->std_err = count > 1 ? sqrt(m2 / (count - 1) / count) : 0.0;
        if (!isfinite(out->bits))
            st = dm_fail(err, bad, "elbo: the bound is not finite");
    }
    dm_free(y0), dm_free(xt), dm_free(x0h), free(acc), free(edges);
    return st;
}

/* ---- with a model's U-Net ---- */

typedef struct unet_ctx {
    const dm_model *m;
    const dm_schedule *s;
    dm_model_info info;
    dm_unet_state *st;
    float *u, *out;
    int *cls;
    size_t item;
} unet_ctx;

static dm_status unet_denoise(void *ctx, int batch, const float *x_t, const int *t, const int *cls,
                              float *x0, dm_error *err)
{
    unet_ctx *c = ctx;
    for (int b = 0; b < batch; b++) {
        c->u[b] = (float)((double)t[b] / c->s->steps);
        c->cls[b] = cls[b] < 0 ? c->info.n_classes : cls[b];
    }
    dm_status st = dm_unet_forward(dm_model_unet_const(c->m), c->st, batch, x_t, c->u, c->cls,
                                   c->out, err);
    if (st != DM_OK)
        return st;
    for (int b = 0; b < batch; b++) {
        double abar = dm_schedule_alpha_bar(c->s, t[b]);
        size_t off = (size_t)b * c->item;
        dm_prediction_to_x0_eps(c->info.prediction, sqrt(abar), sqrt(1.0 - abar), x_t + off,
                                c->out + off, x0 + off, NULL, c->item);
    }
    return DM_OK;
}

static dm_status model_elbo(const dm_model *m, const float *clips, int count,
                            const dm_elbo_params *p, dm_elbo_parts *parts, double *per_clip,
                            dm_error *err)
{
    unet_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.s = dm_model_schedule(m);
    c.info = dm_model_get_info(m);
    if (c.info.repr != DM_REPR_WAVE)
        return dm_fail(err, DM_ERR_UNSUPPORTED, "elbo: only waveform models have a bound here");
    if (p->n_threads < 0 || p->n_threads > 1024)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "elbo: %d threads is not in 0..1024",
                       p->n_threads);
    for (int i = 0; p->classes && i < count; i++)
        if (p->classes[i] < -1 || p->classes[i] >= c.info.n_classes)
            return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "elbo: class %d of clip %d is not in -1..%d",
                           p->classes[i], i, c.info.n_classes - 1);
    c.item = (size_t)c.info.audio_channels * c.info.length;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = ELBO_BATCH;
    sp.length = c.info.net_length;
    sp.n_threads = p->n_threads;
    dm_status st = dm_unet_state_create(dm_model_unet_const(m), &sp, &c.st, err);
    if (st != DM_OK)
        return st;
    c.u = dm_alloc(ELBO_BATCH, sizeof(float));
    c.cls = dm_alloc(ELBO_BATCH, sizeof(int));
    c.out = dm_alloc(c.item * ELBO_BATCH, sizeof(float));
    if (!c.u || !c.cls || !c.out)
        st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "elbo: out of memory");
    else
        st = dm_elbo_run(c.s, c.info.data_scale, c.item, ELBO_BATCH, unet_denoise, &c, clips, count,
                         p, parts, per_clip, err);
    dm_free(c.u), dm_free(c.cls), dm_free(c.out);
    dm_unet_state_free(c.st);
    return st;
}

dm_status dm_model_elbo(const dm_model *m, const float *clips, int count, const dm_elbo_params *p,
                        double *bits_per_sample, double *std_err, dm_error *err)
{
    if (!m || !clips || !p || !bits_per_sample)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_model_elbo: missing argument");
    dm_elbo_parts parts;
    dm_status st = model_elbo(m, clips, count, p, &parts, NULL, err);
    if (st == DM_OK) {
        *bits_per_sample = parts.bits;
        if (std_err)
            *std_err = parts.std_err;
    }
    return st;
}

dm_status dm_model_elbo_per_clip(const dm_model *m, const float *clips, int count,
                                 const dm_elbo_params *p, double *per_clip, dm_error *err)
{
    if (!m || !clips || !p || !per_clip)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_model_elbo_per_clip: missing argument");
    dm_elbo_parts parts;
    return model_elbo(m, clips, count, p, &parts, per_clip, err);
}
