/* The reverse process, independent of the network: the samplers' loops over a
 * denoiser callback that returns an estimate of x0. The model-facing API
 * (dm_sampler_*) wraps it with the U-Net, classifier-free guidance and the
 * editing modes; tests drive it with an analytic denoiser to check every
 * update against the published formulas. */
#ifndef DM_SAMPLER_H
#define DM_SAMPLER_H

#include "dmaudio.h"

/* x0 = D(x_vp): x_vp = alpha x0 + sigma eps is the noisy batch in the
 * variance-preserving convention; u is the continuous time. n floats. */
typedef void (*dm_denoise_fn)(void *ctx, const float *x_vp, double u, double alpha, double sigma,
                              float *x0, size_t n);
/* Fresh standard normal noise for step `step` (ancestral samplers, in-painting). */
typedef void (*dm_noise_fn)(void *ctx, int step, float *z, size_t n);

typedef struct dm_loop_params {
    dm_sampler_kind sampler;
    int steps;                 /* > 0 */
    double eta;                /* DDIM */
    double rho;                /* Karras spacing */
    double sigma_max;          /* Karras: highest noise level, 0 = DM_KARRAS_SIGMA_MAX
                                  (or the schedule's own maximum when lower) */
    double strength;           /* 1: from noise; < 1: SDEdit from init */
    const float *init;         /* n floats or NULL */
    const float *mask;         /* n floats, 1 = keep init (in-painting), or NULL */
    dm_progress_fn progress;
    void *progress_user_data;
} dm_loop_params;

/* The time grid a sampler visits (for tests and progress): discrete samplers
 * fill ts[0..n-1] (descending, then 0 at ts[n]); Karras samplers fill
 * sigmas[0..n] (descending, sigmas[n] = 0). Returns n. */
int dm_loop_timesteps(const dm_schedule *s, const dm_loop_params *p, int *ts);
int dm_loop_sigmas(const dm_schedule *s, const dm_loop_params *p, double *sigmas);

/* x holds standard normal noise on entry and the sample on return. work has
 * 4 n floats. Returns DM_ERR_CANCELLED if progress asked to stop. */
dm_status dm_sample_loop(const dm_schedule *s, const dm_loop_params *p, float *x, size_t n,
                         dm_denoise_fn denoise, void *dctx, dm_noise_fn noise, void *nctx,
                         float *work, dm_error *err);

#endif
