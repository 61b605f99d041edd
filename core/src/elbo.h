/* The variational bound, independent of the network: the terms of Ho et al.'s Eq. 5 and the
 * loop over clips and timesteps around a denoiser callback. dm_model_elbo (elbo.c) wraps it
 * with a model's U-Net; tests drive it with analytic denoisers (tests/test_elbo.c). Not
 * installed. */
#ifndef DM_ELBO_H
#define DM_ELBO_H

#include "dmaudio.h"

/* KL(N(mean1, var1) || N(mean2, var2)) in nats, for one dimension. */
double dm_gaussian_kl(double mean1, double var1, double mean2, double var2);

/* log of the mass of N(mean, std^2) on [lo, hi] (lo may be -INFINITY, hi +INFINITY), accurate
 * in the far tails too (where the mass underflows a double, from the asymptotic series of the
 * normal tail). */
double dm_normal_log_mass(double lo, double hi, double mean, double std);

/* The bin of x among 2^bits levels spanning [-1, 1]: *level (the quantised value, a level
 * exactly) and its bin [*lo, *hi], with -INFINITY / +INFINITY for the end bins. */
void dm_elbo_quantise(double x, int bits, double *level, double *lo, double *hi);

/* x0[b] = the model's estimate of x_0 (in the diffusing, data_scale'd units) from x_t[b] at
 * timestep t[b] (1..T), class cls[b] (-1: the null class); items of `item` floats. */
typedef dm_status (*dm_elbo_denoise_fn)(void *ctx, int batch, const float *x_t, const int *t,
                                        const int *cls, float *x0, dm_error *err);

/* The bound and its three parts, in bits per sample, means over clips. */
typedef struct dm_elbo_parts {
    double bits, std_err;
    double prior, diffusion, decoder;
} dm_elbo_parts;

/* The loop of dm_model_elbo for any denoiser, called with at most max_batch (1..128) items at
 * a time: clips (count, item) in audio units. per_clip (count values in bits per sample) may
 * be NULL. p->n_threads is not used here. */
dm_status dm_elbo_run(const dm_schedule *s, double data_scale, size_t item, int max_batch,
                      dm_elbo_denoise_fn denoise, void *ctx, const float *clips, int count,
                      const dm_elbo_params *p, dm_elbo_parts *out, double *per_clip,
                      dm_error *err);

#endif
