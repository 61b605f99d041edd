/* Generation: the sampler loops of sampler.c driven by a model's U-Net, with
 * classifier-free guidance (the conditional and unconditional passes share
 * one batched forward) and the editing modes (variation, in-painting,
 * interpolation through explicit noise).
 *
 * Noise: item b of a call with seed S uses seed S + b; its initial noise is
 * stream 0 and the fresh noise of step k is stream 1 + k, so an item's audio
 * does not depend on the batch it was generated in. */
#include "internal.h"
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dm_generator {
    const dm_model *m;
    dm_model_info info;
    int max_batch;
    size_t item;                 /* floats per item in network layout */
    dm_unet_state *st;           /* 2 * max_batch items (guidance)     */
    dm_codec *codec;             /* audio <-> network layout           */
    float *x, *work, *in, *out, *mask, *t, *init;
    int *cls;
    /* the call in progress */
    const dm_sample_params *p;
    int batch, guided;
};

dm_sample_params dm_sample_default_params(void)
{
    dm_sample_params p;
    memset(&p, 0, sizeof p);
    p.sampler = DM_SAMPLER_DPMPP_2M;
    p.rho = 7.0;
    p.guidance = 2.0;
    p.cls = -1;
    p.strength = 1.0;
    return p;
}

dm_status dm_generator_create(const dm_model *m, int max_batch, int n_threads,
                              dm_generator **out, dm_error *err)
{
    if (!out || !m)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_generator_create: missing argument");
    *out = NULL;
    if (max_batch < 1 || max_batch > 1024)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "generator: batch %d is not in 1..1024",
                       max_batch);
    dm_generator *g = calloc(1, sizeof *g);
    if (!g)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "generator: out of memory");
    g->m = m;
    g->info = dm_model_get_info(m);
    g->max_batch = max_batch;
    g->item = (size_t)g->info.net_channels * g->info.net_length;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = 2 * max_batch;
    sp.length = g->info.net_length;
    sp.n_threads = n_threads;
    dm_status st = dm_unet_state_create(dm_model_unet_const(m), &sp, &g->st, err);
    if (st == DM_OK)
        st = dm_codec_create(m, &g->codec, err);
    if (st != DM_OK) {
        dm_generator_free(g);
        return st;
    }
    size_t n = g->item * (size_t)max_batch;
    g->x = dm_alloc(n, sizeof(float));
    g->work = dm_alloc(4 * n, sizeof(float));
    g->in = dm_alloc(2 * n, sizeof(float));
    g->out = dm_alloc(2 * n, sizeof(float));
    g->mask = dm_alloc(n, sizeof(float));
    g->init = dm_alloc(n, sizeof(float));
    g->t = dm_alloc(2 * (size_t)max_batch, sizeof(float));
    g->cls = dm_alloc(2 * (size_t)max_batch, sizeof(int));
    if (!g->x || !g->work || !g->in || !g->out || !g->mask || !g->init || !g->t || !g->cls) {
        dm_generator_free(g);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "generator: out of memory");
    }
    *out = g;
    return DM_OK;
}

void dm_generator_free(dm_generator *g)
{
    if (!g)
        return;
    dm_unet_state_free(g->st);
    dm_codec_free(g->codec);
    dm_free(g->x);
    dm_free(g->work);
    dm_free(g->in);
    dm_free(g->out);
    dm_free(g->mask);
    dm_free(g->init);
    dm_free(g->t);
    dm_free(g->cls);
    free(g);
}

dm_status dm_generator_noise(const dm_generator *g, uint64_t seed, float *out, dm_error *err)
{
    if (!g || !out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_generator_noise: missing argument");
    dm_rng_normal(seed, 0, 0, out, g->item);
    return DM_OK;
}

static int item_class(const dm_generator *g, int b)
{
    int c = g->p->classes ? g->p->classes[b] : g->p->cls;
    return c < 0 ? g->info.n_classes : c; /* -1: the null class */
}

/* The sampler's denoiser: one (or, with guidance, one double-size) forward pass. */
static void unet_denoise(void *ctx, const float *x, double u, double alpha, double sigma,
                         float *x0, size_t n)
{
    dm_generator *g = ctx;
    const int B = g->batch, passes = g->guided ? 2 : 1;
    for (int k = 0; k < passes; k++) {
        memcpy(g->in + (size_t)k * n, x, n * sizeof *x);
        for (int b = 0; b < B; b++) {
            g->t[k * B + b] = (float)u;
            g->cls[k * B + b] = k == 0 ? item_class(g, b) : g->info.n_classes;
        }
    }
    /* arguments were validated before the loop; a failure here cannot happen */
    if (dm_unet_forward(dm_model_unet_const(g->m), g->st, passes * B, g->in, g->t, g->cls, g->out,
                        NULL) != DM_OK)
        memset(g->out, 0, (size_t)passes * n * sizeof(float));
    if (g->guided) { /* out = uncond + w (cond - uncond) */
        float w = (float)g->p->guidance;
        const float *unc = g->out + n;
        for (size_t i = 0; i < n; i++)
            g->out[i] = unc[i] + w * (g->out[i] - unc[i]);
    }
    dm_prediction_to_x0_eps(g->info.prediction, alpha, sigma, x, g->out, x0, NULL, n);
}

static void step_noise(void *ctx, int step, float *z, size_t n)
{
    (void)n;
    const dm_generator *g = ctx;
    for (int b = 0; b < g->batch; b++)
        dm_rng_normal(g->p->seed + (uint64_t)b, 1 + (uint64_t)step, 0, z + (size_t)b * g->item,
                      g->item);
}

dm_status dm_generate(dm_generator *g, const dm_sample_params *p, int batch, float *out,
                      dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!g || !p || !out)
        return dm_fail(err, bad, "dm_generate: missing argument");
    if (batch < 1 || batch > g->max_batch)
        return dm_fail(err, bad, "generate: batch %d is not in 1..%d", batch, g->max_batch);
    if ((unsigned)p->sampler >= DM_SAMPLER_COUNT)
        return dm_fail(err, bad, "generate: unknown sampler %d", (int)p->sampler);
    const int nc = g->info.n_classes;
    for (int b = 0; b < batch; b++) {
        int c = p->classes ? p->classes[b] : p->cls;
        if (c < -1 || c >= nc)
            return dm_fail(err, bad, "generate: class %d is not in -1..%d", c, nc - 1);
    }
    if (!isfinite(p->guidance) || p->guidance < 0.0 || p->guidance > 100.0)
        return dm_fail(err, bad, "generate: guidance %g is not in 0..100", p->guidance);
    if (p->mask && !p->init)
        return dm_fail(err, bad, "generate: in-painting needs an input sound");
    g->p = p;
    g->batch = batch;
    /* guidance needs a class and a scale other than 1 (1 is the conditional model alone) */
    int any_class = 0;
    for (int b = 0; b < batch; b++)
        any_class |= item_class(g, b) != nc;
    g->guided = nc > 0 && any_class && p->guidance != 1.0;

    const size_t n = g->item * (size_t)batch;
    if (p->noise)
        memcpy(g->x, p->noise, n * sizeof(float));
    else
        for (int b = 0; b < batch; b++)
            dm_rng_normal(p->seed + (uint64_t)b, 0, 0, g->x + (size_t)b * g->item, g->item);

    dm_loop_params lp;
    memset(&lp, 0, sizeof lp);
    lp.sampler = p->sampler;
    lp.steps = p->steps > 0 ? p->steps : dm_sampler_default_steps(p->sampler);
    lp.eta = p->eta;
    lp.rho = p->rho > 0 ? p->rho : 7.0;
    lp.strength = p->init ? p->strength : 1.0;
    const size_t audio_item = (size_t)g->info.audio_channels * g->info.length;
    if (p->init) { /* the input sounds, in network layout */
        for (int b = 0; b < batch; b++)
            dm_codec_encode(g->codec, p->init + (size_t)b * audio_item, g->init + (size_t)b * g->item);
        lp.init = g->init;
    }
    if (p->mask) { /* per sample -> per network position, the same for every channel and item */
        const int C = g->info.net_channels, L = g->info.net_length;
        dm_codec_mask(g->codec, p->mask, g->mask);
        for (size_t r = 1; r < (size_t)batch * C; r++)
            memcpy(g->mask + r * L, g->mask, (size_t)L * sizeof(float));
        lp.mask = g->mask;
    }
    lp.progress = p->progress;
    lp.progress_user_data = p->progress_user_data;
    dm_status st = dm_sample_loop(dm_model_schedule(g->m), &lp, g->x, n, unet_denoise, g,
                                  step_noise, g, g->work, err);
    if (st != DM_OK)
        return st;
    for (int b = 0; b < batch; b++)
        dm_codec_decode(g->codec, g->x + (size_t)b * g->item, out + (size_t)b * audio_item);
    return DM_OK;
}
