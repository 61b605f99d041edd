/* dmaudio — diffusion models for audio, in C.
 *
 * The public API of libdmaudio. Conventions:
 *  - every name starts with dm_ / DM_; handles are opaque;
 *  - functions that can fail return a dm_status (DM_OK == 0) and, when the caller
 *    passes a dm_error, fill it with a one-line message (the caller owns it);
 *  - whoever creates an object destroys it (dm_*_create / dm_*_free); pointer
 *    arguments are borrowed for the duration of the call;
 *  - nothing here is global: two models, or two states of one model, can be used
 *    from different threads at the same time.
 *
 * Copyright (c) 2026 The dmaudio authors. MIT licence (see LICENSE).
 */
#ifndef DMAUDIO_H
#define DMAUDIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DM_VERSION_MAJOR 0
#define DM_VERSION_MINOR 1
#define DM_VERSION_PATCH 0

/* "0.1.0" — the version of the library actually linked. */
const char *dm_version(void);

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dm_status {
    DM_OK = 0,
    DM_ERR_INVALID_ARGUMENT, /* a parameter is out of range or inconsistent */
    DM_ERR_OUT_OF_MEMORY,    /* an allocation failed                        */
    DM_ERR_IO,               /* reading or writing a file failed            */
    DM_ERR_FORMAT,           /* a file is corrupt, truncated or hostile     */
    DM_ERR_UNSUPPORTED,      /* valid, but not supported by this build      */
    DM_ERR_CANCELLED,        /* an abort callback asked to stop             */
    DM_STATUS_COUNT
} dm_status;

/* Short stable name, e.g. "invalid-argument"; "unknown" for a bad value. */
const char *dm_status_name(dm_status status);
/* Parses a name given by dm_status_name; returns -1 if unknown, 0 otherwise. */
int dm_status_from_name(const char *name, dm_status *out);
/* A sentence describing the status, e.g. "invalid argument". */
const char *dm_status_message(dm_status status);

/* Filled by a failing call when the caller passes one (it may pass NULL). */
typedef struct dm_error {
    dm_status status;
    char message[256];
} dm_error;

/* ------------------------------------------------------------------------ */
/* Counter-based random numbers (Philox4x32-10)                              */
/* ------------------------------------------------------------------------ */
/* Number i of the stream (seed, stream) depends only on (seed, stream, i): the
 * same seed gives the same noise whatever the number of threads, and any slice
 * of a stream can be drawn without drawing what comes before it. */

/* The raw Philox4x32-10 block function: ctr[4], key[2] -> out[4]. */
void dm_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* out[j] = standard normal number (offset + j) of stream (seed, stream). */
void dm_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);
/* out[j] = uniform number in [0, 1) (24-bit resolution), same indexing. */
void dm_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* ------------------------------------------------------------------------ */
/* The 1-D U-Net                                                             */
/* ------------------------------------------------------------------------ */
/* Defined normatively in docs/architecture.md. Tensors are float32 (B, C, L). */

#define DM_MAX_LEVELS 8

typedef struct dm_unet_config {
    int in_channels;                /* audio channels (wave) or features (spec)   */
    int out_channels;
    int n_levels;                   /* 1..DM_MAX_LEVELS                           */
    int channels[DM_MAX_LEVELS];    /* width of each level                        */
    int factors[DM_MAX_LEVELS];     /* factors[l]: length ratio level l -> l+1;   */
                                    /* even; n_levels - 1 of them are used        */
    int blocks;                     /* residual blocks per level                  */
    int attention[DM_MAX_LEVELS];   /* 1: self-attention after each block         */
    int heads;                      /* attention heads (divides the widths)       */
    int groups;                     /* GroupNorm groups (divides the widths)      */
    int kernel;                     /* convolution kernel, odd                    */
    int n_classes;                  /* 0: unconditional; else + a null class      */
    int positions;                  /* 0, or P even: P sinusoids of the frame     */
                                    /* index join the input channels (the network */
                                    /* then knows where in the clip it is)        */
} dm_unet_config;

/* A small mono waveform network: widths 32/64/128, factors 4/4, attention at
 * the coarsest level, 4 groups, 4 heads, kernel 5, unconditional. */
dm_unet_config dm_unet_default_config(void);
/* DM_OK if the configuration is usable, else a message naming the field. */
dm_status dm_unet_config_check(const dm_unet_config *cfg, dm_error *err);
/* Product of the used factors: input lengths must be a multiple of it. */
int dm_unet_length_multiple(const dm_unet_config *cfg);

typedef struct dm_unet dm_unet;              /* configuration + weights (read-only when running) */
typedef struct dm_unet_state dm_unet_state;  /* buffers for one pass at a fixed length           */

/* Creates a network with freshly initialised weights (deterministic for seed). */
dm_status dm_unet_create(const dm_unet_config *cfg, uint64_t seed, dm_unet **out, dm_error *err);
void dm_unet_free(dm_unet *net);

const dm_unet_config *dm_unet_get_config(const dm_unet *net);

/* All weights are one contiguous float array of dm_unet_n_params() values, laid
 * out as the named tensors below, in order. The pointer lives as long as net. */
size_t dm_unet_n_params(const dm_unet *net);
float *dm_unet_params(dm_unet *net);
const float *dm_unet_params_const(const dm_unet *net);

typedef struct dm_tensor_info {
    const char *name;               /* e.g. "down0.res1.conv1.w" (owned by net)   */
    int ndim;
    int dims[3];
    size_t offset;                  /* in floats, into dm_unet_params()           */
    size_t size;                    /* number of floats                           */
} dm_tensor_info;

int dm_unet_n_tensors(const dm_unet *net);
/* Fills info for tensor i (0 <= i < n_tensors); DM_ERR_INVALID_ARGUMENT otherwise. */
dm_status dm_unet_tensor(const dm_unet *net, int i, dm_tensor_info *info);
/* Index of the tensor with this name, or -1. */
int dm_unet_find_tensor(const dm_unet *net, const char *name);

/* Floating-point operations of one forward pass (multiply-add = 2). */
double dm_unet_forward_flops(const dm_unet *net, int batch, int length);

typedef struct dm_unet_state_params {
    int max_batch;                  /* largest batch passed to forward (default 1) */
    int length;                     /* samples/frames per item; a multiple of      */
                                    /* dm_unet_length_multiple() (no default)      */
    int train;                      /* 1: keep what backward needs + a gradient    */
                                    /* buffer; 0 (default): inference only, the    */
                                    /* activations share memory as the pass goes   */
                                    /* (same outputs, bit for bit)                 */
    int n_threads;                  /* 0: all cores (default)                      */
} dm_unet_state_params;

dm_unet_state_params dm_unet_state_default_params(void);

/* Allocates every buffer a pass needs: forward and backward never allocate. */
dm_status dm_unet_state_create(const dm_unet *net, const dm_unet_state_params *params,
                               dm_unet_state **out, dm_error *err);
void dm_unet_state_free(dm_unet_state *st);

/* y = net(x, t, cls).  x: (batch, in_channels, length), t: (batch) noise levels
 * in [0, 1], cls: (batch) class indices, n_classes meaning "no class" (may be
 * NULL: all null); y: (batch, out_channels, length). batch <= max_batch. */
dm_status dm_unet_forward(const dm_unet *net, dm_unet_state *st, int batch,
                          const float *x, const float *t, const int *cls,
                          float *y, dm_error *err);

/* After a forward pass on a train state: adds d(loss)/d(params) into the
 * state's gradient buffer and, when dx is not NULL, writes d(loss)/dx.
 * dy is d(loss)/dy, shaped like y. */
dm_status dm_unet_backward(const dm_unet *net, dm_unet_state *st,
                           const float *dy, float *dx, dm_error *err);

/* The gradient buffer (dm_unet_n_params() floats, same layout as the weights),
 * NULL for a state created without train. Gradients accumulate: zero them
 * explicitly. */
float *dm_unet_state_grads(dm_unet_state *st);
void dm_unet_state_zero_grads(dm_unet_state *st);
int dm_unet_state_length(const dm_unet_state *st);
/* Bytes held by the state's buffers. */
size_t dm_unet_state_bytes(const dm_unet_state *st);

/* ------------------------------------------------------------------------ */
/* Noise schedules and the forward process                                   */
/* ------------------------------------------------------------------------ */
/* Discrete time t = 0..T (t = 0 is clean audio) with alpha_t = 1 - beta_t and
 * abar_t = prod_{i<=t} alpha_i. The continuous view u in [0, 1] interpolates
 * log(abar) linearly between u = t/T grid points, giving (alpha, sigma) =
 * (sqrt(abar), sqrt(1 - abar)) for every u, and the Karras/VE noise level
 * sigma_ve = sigma / alpha. The network's time input is u. */

typedef enum dm_schedule_kind {
    DM_SCHEDULE_LINEAR,          /* DDPM: beta linear from beta_start to beta_end  */
    DM_SCHEDULE_COSINE,          /* improved DDPM: abar = f(t/T)/f(0), beta <= 0.999 */
    DM_SCHEDULE_COUNT
} dm_schedule_kind;

const char *dm_schedule_name(dm_schedule_kind kind);
int dm_schedule_from_name(const char *name, dm_schedule_kind *out);

#define DM_MAX_TIMESTEPS 4096

typedef struct dm_schedule {
    dm_schedule_kind kind;
    int steps;                   /* T (1000)                                       */
    double beta_start, beta_end; /* linear: 1e-4, 0.02                             */
    double cosine_s;             /* cosine offset s (0.008)                        */
    double abar[DM_MAX_TIMESTEPS + 1]; /* filled by dm_schedule_init, abar[0] = 1  */
} dm_schedule;

/* Fills abar[] for kind with the published defaults (T = 1000). */
dm_status dm_schedule_init(dm_schedule *s, dm_schedule_kind kind, int steps, dm_error *err);
/* Shifts the schedule towards noise (Hoogeboom et al. 2023, "simple diffusion"): the noise is
 * scaled by `shift` against the signal at every t, SNR_t -> SNR_t / shift^2, i.e.
 * abar_t -> abar_t / (abar_t + shift^2 (1 - abar_t)). Long clips keep their coarse shape
 * (a hit's envelope, seen through the average of thousands of values) until the noise is
 * far above the data; without a shift only the last few percent of t would decide it.
 * shift in [1/64, 64]; 1 changes nothing. */
dm_status dm_schedule_shift(dm_schedule *s, double shift, dm_error *err);
double dm_schedule_alpha_bar(const dm_schedule *s, int t);   /* t in 0..T        */
double dm_schedule_beta(const dm_schedule *s, int t);        /* t in 1..T        */
/* Continuous view: u in [0, 1] -> alpha, sigma with alpha^2 + sigma^2 = 1. */
void dm_schedule_alpha_sigma(const dm_schedule *s, double u, double *alpha, double *sigma);
/* Inverse of the continuous view: the u whose sigma/alpha equals sigma_ve. */
double dm_schedule_u_from_sigma(const dm_schedule *s, double sigma_ve);
double dm_schedule_sigma_min(const dm_schedule *s);          /* at t = 1         */
double dm_schedule_sigma_max(const dm_schedule *s);          /* at t = T         */
/* Karras samplers start at min(schedule's sigma_max, 80), as EDM does: with
 * data of about unit variance, noise levels above 80 are indistinguishable from
 * pure noise, and the cosine schedule's maximum (~2e4) would spend most steps
 * there. */
#define DM_KARRAS_SIGMA_MAX 80.0

/* Karras et al. (2022) spacing: n sigmas from sigma_max to sigma_min with
 * rho (7), then a final 0 (out has n + 1 values). */
void dm_karras_sigmas(double sigma_min, double sigma_max, double rho, int n, double *out);

/* Forward process. One step: x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps.
 * Closed form: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. n floats each. */
void dm_diffuse_step(const dm_schedule *s, int t, const float *x_prev, const float *eps,
                     float *x_t, size_t n);
void dm_diffuse(const dm_schedule *s, int t, const float *x0, const float *eps, float *x_t,
                size_t n);

/* Prediction targets and their conversions, at a noise level (alpha, sigma):
 * x_t = alpha x0 + sigma eps, v = alpha eps - sigma x0. With eps and v the network must copy
 * its input's noise to its output wherever the clip is silent; with x0 it outputs 0 there. */
typedef enum dm_prediction {
    DM_PREDICT_EPS, DM_PREDICT_V, DM_PREDICT_X0, DM_PREDICTION_COUNT
} dm_prediction;
const char *dm_prediction_name(dm_prediction p);
int dm_prediction_from_name(const char *name, dm_prediction *out);
/* From the network's output and x_t, the implied x0 and eps (either may be NULL). */
void dm_prediction_to_x0_eps(dm_prediction p, double alpha, double sigma, const float *x_t,
                             const float *out, float *x0, float *eps, size_t n);
/* The training target for a given x0 and eps. */
void dm_prediction_target(dm_prediction p, double alpha, double sigma, const float *x0,
                          const float *eps, float *target, size_t n);

/* ------------------------------------------------------------------------ */
/* Samplers (the reverse process)                                            */
/* ------------------------------------------------------------------------ */

typedef enum dm_sampler_kind {
    DM_SAMPLER_DDPM,             /* ancestral, posterior variance (Ho et al. 2020)   */
    DM_SAMPLER_DDIM,             /* Song et al. 2021, eta = 0 deterministic          */
    DM_SAMPLER_DPMPP_2M,         /* DPM-Solver++(2M), Lu et al. 2022, Karras sigmas  */
    DM_SAMPLER_EULER,            /* Karras et al. 2022, Euler                        */
    DM_SAMPLER_HEUN,             /* Karras et al. 2022, Heun (2 evaluations a step)  */
    DM_SAMPLER_COUNT
} dm_sampler_kind;

const char *dm_sampler_name(dm_sampler_kind kind);   /* "ddpm" "ddim" "dpmpp-2m" "euler" "heun" */
int dm_sampler_from_name(const char *name, dm_sampler_kind *out);
int dm_sampler_default_steps(dm_sampler_kind kind);

/* Called once per network evaluation; return non-zero to cancel. */
typedef int (*dm_progress_fn)(void *user_data, int step, int n_steps);

/* Spherical interpolation of two noise tensors (for seed interpolation). */
void dm_slerp(const float *a, const float *b, double f, float *out, size_t n);

/* ------------------------------------------------------------------------ */
/* Models: network + diffusion settings + audio format                       */
/* ------------------------------------------------------------------------ */

typedef enum dm_repr {
    DM_REPR_WAVE,                /* channels = audio channels, length = samples    */
    DM_REPR_SPEC,                /* channels = STFT bins (re, im), length = frames */
    DM_REPR_COUNT
} dm_repr;

const char *dm_repr_name(dm_repr r);
int dm_repr_from_name(const char *name, dm_repr *out);

/* The spec representation: a magnitude-compressed complex STFT, so that synthesis is an
 * exact inverse STFT (no phase retrieval). Per audio channel x:
 *   X = STFT(x) with the model's n_fft and hop (periodic Hann window, centered frames with
 *       reflect padding, not normalised: dm_stft_forward in dmaudio_spectral.h);
 *   Y = data_scale * |X|^a * X / |X| for every bin, a = DM_SPEC_COMPRESSION (0 stays 0);
 * the network's channels are [Re Y of bins 0..B-1, Im Y of bins 0..B-1] per audio channel,
 * B = n_fft / 2 + 1 (net_channels = 2 B audio_channels; the imaginary rows of bins 0 and
 * B - 1 are always 0 for real audio and ignored when decoding), its length the frames.
 * Decoding inverts exactly: X = |Y / data_scale|^(1/a - 1) * Y / data_scale, then the
 * inverse STFT. Compression (a < 1) evens out the dynamic range between loud and quiet
 * bins, as in compressed-STFT speech enhancement and vocoder-free spectrogram diffusion.
 * n_fft is a power of two in 16..8192, hop in 1..n_fft/2 and divides n_fft (so the window
 * overlap-adds to a constant and the inverse is exact). The frames F must be a multiple of
 * dm_unet_length_multiple(): dm_model_create takes F as the smallest such multiple >=
 * length / hop + 1 (integer division) and sets the clip length to (F - 1) * hop samples,
 * whose STFT has exactly F frames; dm_model_get_info reports that length. data_scale
 * multiplies the compressed values, so the audio's rms is no guide to it: encode the data
 * with data_scale 1 and take about 1 / (the rms of the result). */
#define DM_SPEC_COMPRESSION 0.5

#define DM_MAX_CLASSES 1024
#define DM_NAME_MAX 64               /* bytes of a model or class name, with the NUL */

typedef struct dm_model dm_model;

typedef struct dm_model_params {
    dm_unet_config unet;         /* in/out channels are set from the representation */
    dm_repr repr;                /* wave                                           */
    int sample_rate;             /* 44100                                          */
    int audio_channels;          /* 1                                              */
    int length;                  /* clip length in samples (16384)                 */
    int n_fft, hop;              /* spec only: 512, 128                            */
    dm_schedule_kind schedule;   /* cosine                                         */
    double schedule_shift;       /* noise shift, 1 = none (dm_schedule_shift) (1)  */
    int timesteps;               /* 1000                                           */
    dm_prediction prediction;    /* v                                              */
    double data_scale;           /* audio x data_scale is what diffuses, so that   */
                                 /* the data has about unit variance (1)           */
    int n_classes;               /* 0: unconditional                               */
    const char *const *class_names; /* n_classes names (borrowed)                  */
    const char *name;            /* "dmaudio"                                      */
} dm_model_params;

dm_model_params dm_model_default_params(void);

/* What a model is, by value (see dm_model_get_info). */
typedef struct dm_model_info {
    dm_repr repr;
    int sample_rate, audio_channels, length;   /* the audio of one clip           */
    int net_channels, net_length;              /* the network's (C, L)            */
    int n_fft, hop;
    dm_schedule_kind schedule;
    double schedule_shift;
    int timesteps;
    dm_prediction prediction;
    double data_scale;
    int n_classes;
    size_t n_params;
    uint32_t checksum;                         /* CRC-32 of the float32 weights   */
    char name[DM_NAME_MAX];
} dm_model_info;

dm_status dm_model_create(const dm_model_params *p, uint64_t seed, dm_model **out, dm_error *err);
/* Loads a model file, or the model held by a training checkpoint (its EMA
 * weights). Every field and size is checked; errors name the file. */
dm_status dm_model_load(const char *path, dm_model **out, dm_error *err);
/* Writes atomically; float16 != 0 stores the weights as float16. */
dm_status dm_model_save(const dm_model *m, const char *path, int float16, dm_error *err);
void dm_model_free(dm_model *m);

dm_model_info dm_model_get_info(const dm_model *m);
dm_unet *dm_model_unet(dm_model *m);
const dm_unet *dm_model_unet_const(const dm_model *m);
const dm_schedule *dm_model_schedule(const dm_model *m);
const char *dm_model_class_name(const dm_model *m, int cls);  /* NULL if out of range */
int dm_model_find_class(const dm_model *m, const char *name); /* -1 if unknown        */
/* Recomputes the checksum after the weights were changed in place. */
void dm_model_update_checksum(dm_model *m);

/* The codec between one clip's audio, (audio_channels, length) planar, and the network's
 * tensor, (net_channels, net_length): for wave, net = audio * data_scale; for spec, the
 * compressed STFT above (data_scale included). Training encodes every batch item through it,
 * generation decodes the sampler's result: both representations go through the same code.
 * A codec holds its FFT plans and scratch (made once, in dm_codec_create): encode and decode
 * never allocate; one codec is used by one thread at a time. It borrows nothing from m after
 * creation. */
typedef struct dm_codec dm_codec;

dm_status dm_codec_create(const dm_model *m, dm_codec **out, dm_error *err);
void dm_codec_free(dm_codec *c);
/* audio: audio_channels * length floats -> net: net_channels * net_length floats. */
void dm_codec_encode(dm_codec *c, const float *audio, float *net);
/* net -> audio; decode(encode(x)) == x up to float rounding (<= 1e-5 relative). */
void dm_codec_decode(dm_codec *c, const float *net, float *audio);
/* An in-painting mask over samples, (length) with 1 = keep, as the network sees it:
 * (net_length) values of 0 or 1. wave: the same mask (values > 0.5 keep). spec: frame t is
 * kept when every one of the n_fft samples its window reads (reflections at the ends
 * included) is kept, so kept frames hold only known audio; samples covered by kept frames
 * only come back exactly, and the generated part blends in over up to n_fft samples at each
 * boundary. */
void dm_codec_mask(const dm_codec *c, const float *mask, float *out);

/* ------------------------------------------------------------------------ */
/* Generation                                                                */
/* ------------------------------------------------------------------------ */

typedef struct dm_sample_params {
    dm_sampler_kind sampler;     /* DM_SAMPLER_DPMPP_2M                             */
    int steps;                   /* 0: the sampler's default                        */
    double eta;                  /* DDIM noise (0)                                  */
    double rho;                  /* Karras spacing (7)                              */
    double guidance;             /* classifier-free guidance scale (2; 1 = none)    */
    int cls;                     /* class for every item, -1 = unconditional (-1)   */
    const int *classes;          /* or one class per item (NULL)                    */
    uint64_t seed;               /* item b uses seed + b (0)                        */
    /* editing, all optional, in the model's audio layout (batch, channels, length) */
    const float *init;           /* the input sound of a variation / in-painting    */
    double strength;             /* SDEdit strength in (0, 1] (1: from noise)       */
    const float *mask;           /* (length): 1 keeps init, 0 is generated (spec:   */
                                 /* turned into frames by dm_codec_mask)            */
    const float *noise;          /* explicit initial noise (interpolation), network */
                                 /* layout (batch, net_channels, net_length)        */
    dm_progress_fn progress;     /* called after each step; non-zero cancels        */
    void *progress_user_data;
} dm_sample_params;

dm_sample_params dm_sample_default_params(void);

typedef struct dm_generator dm_generator;  /* buffers for generating up to max_batch */

dm_status dm_generator_create(const dm_model *m, int max_batch, int n_threads,
                              dm_generator **out, dm_error *err);
void dm_generator_free(dm_generator *g);
/* out: (batch, audio_channels, length) audio. Deterministic for a seed. */
dm_status dm_generate(dm_generator *g, const dm_sample_params *p, int batch, float *out,
                      dm_error *err);
/* The initial noise item b of a seed would get, in network layout. */
dm_status dm_generator_noise(const dm_generator *g, uint64_t seed, float *out, dm_error *err);

/* ------------------------------------------------------------------------ */
/* Training                                                                  */
/* ------------------------------------------------------------------------ */

struct dm_dataset;                         /* see dmaudio_audio.h */
typedef struct dm_trainer dm_trainer;

typedef struct dm_train_params {
    int batch;                   /* 16                                              */
    double lr;                   /* peak learning rate (3e-4)                       */
    double weight_decay;         /* AdamW, on weights of 2+ dimensions (0.01)       */
    double beta1, beta2, adam_eps; /* 0.9, 0.999, 1e-8                              */
    int warmup_steps;            /* linear warm-up (100)                            */
    int total_steps;             /* cosine decay to min_lr_ratio * lr (10000)       */
    double min_lr_ratio;         /* 0.1                                             */
    double grad_clip;            /* global norm, 0 = off (1.0)                      */
    double ema_decay;            /* 0.999                                           */
    double class_dropout;        /* probability of the null class (0.1)             */
    double min_snr_gamma;        /* min-SNR-gamma weighting, 0 = plain MSE (0)      */
    double stft_loss_weight;     /* multi-resolution STFT loss on the x0 estimate,  */
                                 /* wave models only; 0 = off (0). See below.       */
    double gain_db;              /* random gain in [-gain_db, 0] dB (6)             */
    uint64_t seed;               /* data order, noise, times (1)                    */
    int shards;                  /* equal parts of the batch, 1..batch, a divisor   */
                                 /* of batch (1); see "Sharded steps" below         */
    int n_threads;               /* 0: all cores                                    */
} dm_train_params;

/* With stft_loss_weight w > 0, each step's loss is the (weighted) MSE plus w times the mean
 * over batch items and audio channels of dm_mrstft_loss (dmaudio_spectral.h) between the x0
 * the network's output implies (dm_prediction_to_x0_eps) and the clean crop, both divided by
 * data_scale (audio units), at the resolutions dm_mrstft_default_resolutions gives for the
 * model's sample rate and length; its gradient goes back through the STFT's adjoint and the
 * linear map from the output to x0 (-sigma for v, -sigma / alpha for eps prediction: with
 * eps, noisy steps weigh heavily, and gradient clipping bounds them). The loss reported by
 * dm_trainer_step includes the term. */
dm_train_params dm_train_default_params(void);

/* The trainer owns a copy of the model's weights, the optimiser state and an
 * EMA copy. The dataset must match the model (rate, channels, classes). */
dm_status dm_trainer_create(const dm_model *m, const dm_train_params *p, dm_trainer **out,
                            dm_error *err);
void dm_trainer_free(dm_trainer *t);
/* One optimisation step on a batch drawn from ds (a pure function of the seed
 * and the step number). loss may be NULL. */
dm_status dm_trainer_step(dm_trainer *t, const struct dm_dataset *ds, double *loss,
                          dm_error *err);
int64_t dm_trainer_step_count(const dm_trainer *t);
double dm_trainer_lr(const dm_trainer *t);   /* learning rate of the next step */
/* The training settings in use: those given to dm_trainer_create, or the
 * checkpoint's after dm_trainer_load (n_threads: the one given to it). */
dm_train_params dm_trainer_get_params(const dm_trainer *t);
/* The model with the EMA weights (what sampling uses); owned by t, updated by
 * every step. */
const dm_model *dm_trainer_model(const dm_trainer *t);
/* Checkpoint: weights, AdamW moments, EMA, step and every training setting,
 * written atomically. Loading continues exactly where the checkpoint left. */
dm_status dm_trainer_save(const dm_trainer *t, const char *path, dm_error *err);
/* n_threads: 0 for all cores (the only setting a resume may change). */
dm_status dm_trainer_load(const char *path, int n_threads, dm_trainer **out, dm_error *err);

/* Sharded steps and data parallelism. With shards S > 1, a step cuts its batch into S equal
 * shards of consecutive items, runs forward and backward on each shard in turn (activation
 * memory is that of batch / S items) and sums the shards' gradients along a fixed binary tree:
 * sum(lo, hi) = sum(lo, mid) + sum(mid, hi), mid = lo + (hi - lo) / 2, each leaf one shard.
 * The result equals the S = 1 gradient up to float rounding; S is a training setting, kept in
 * checkpoints.
 *
 * A group of `size` trainers (processes, usually MPI ranks) can share the shards of every step:
 * trainer `rank` computes shards [rank S / size, (rank + 1) S / size) (size must divide S),
 * sums them along the same tree, then calls reduce, which must replace grads (n floats) and
 * *loss by their sums over the group, identically in every trainer, and return DM_OK (anything
 * else ends the step with that status, weights untouched). Every trainer then takes the same
 * AdamW step: their weights stay identical. When size is a power of two and reduce adds halves
 * of the group the same way (recursive doubling: at distance d = 1, 2, 4..., rank r adds the
 * partial sum of rank r ^ d), the group's weights are bitwise those of one trainer with the
 * same S. The trainers must be created from the same model and settings (or load the same
 * checkpoint) and step on the same dataset. reduce may be NULL only with size 1 (the default:
 * rank 0 of 1). A checkpoint does not record the group: it can resume with another size that
 * divides S. */
typedef dm_status (*dm_train_reduce_fn)(float *grads, size_t n, double *loss, void *user_data);

dm_status dm_trainer_set_group(dm_trainer *t, int rank, int size, dm_train_reduce_fn reduce,
                               void *user_data, dm_error *err);
/* The training settings (as created, or as the checkpoint recorded them). */
dm_train_params dm_trainer_params(const dm_trainer *t);

/* ------------------------------------------------------------------------ */
/* The variational bound (the true "ELBO loss")                              */
/* ------------------------------------------------------------------------ */
/* The discrete-time variational bound of Ho et al. (2020), Eq. 5, as improved DDPM computes
 * it (L_vlb, Nichol and Dhariwal 2021), in bits per audio sample:
 *   L = L_T + sum_{t=2..T} L_{t-1} + L_0, where
 *   L_T     = KL(q(x_T | x_0) || N(0, I))                        the prior term,
 *   L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))      the diffusion terms,
 *   L_0     = -log p(x_0 | x_1)                                  the decoder term.
 * x_0 is the audio, quantised to 2^bits levels spanning [-1, 1] (values outside go to the end
 * levels), times the model's data_scale; x_t is drawn from q(x_t | x_0). The reverse step
 * p(x_{t-1} | x_t) is the posterior q(x_{t-1} | x_t, x0_hat) with the network's estimate x0_hat
 * (its prediction at u = t / T, converted by dm_prediction_to_x0_eps) and the posterior variance
 * beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t): the "fixed small" variance the DDPM sampler
 * uses. p(x_0 | x_1) is the Gaussian of mean x0_hat(x_1, 1) and variance beta~_2 (improved
 * DDPM's clipped value; beta~_1 = 0) integrated over each level's bin, the end bins reaching to
 * infinity, so L is a bound on -log2 P(quantised clip) divided by its number of samples.
 * L_T and L_0 are computed for every clip. Of the T - 1 diffusion terms, all are computed when
 * n_t is 0 or >= T - 1; otherwise n_t, by stratified sampling: 2..T is cut into n_t runs whose
 * ends are spaced geometrically (the terms fall off roughly like 1/t; the first runs are single
 * timesteps), one t is drawn uniformly in each and weighted by its run's length: an unbiased
 * Monte Carlo estimate. The noise and the draws depend only on (seed, clip index, t):
 * two models evaluated with one seed see the same noise, and no result depends on the thread
 * count. *bits_per_sample is the mean over clips; *std_err the standard error of that mean
 * (sample standard deviation over clips / sqrt(count); 0 for one clip), which covers both the
 * Monte Carlo noise and the spread of the data. */
typedef struct dm_elbo_params {
    int n_t;                     /* diffusion terms per clip (50); 0 = all T - 1          */
    int bits;                    /* quantisation of the audio, 1..24 bits (16)            */
    uint64_t seed;               /* noise and timestep draws (0)                          */
    const int *classes;          /* class of each clip, -1 = the null class; NULL: all    */
                                 /* null (the unconditional model)                        */
    int n_threads;               /* 0: all cores (default)                                */
    dm_progress_fn progress;     /* after each batch of network passes; non-zero cancels  */
    void *progress_user_data;
} dm_elbo_params;

dm_elbo_params dm_elbo_default_params(void);

/* clips: (count, audio_channels, length) audio in the model's format (wave models; a spec
 * model gives DM_ERR_UNSUPPORTED). Lower is better. std_err may be NULL. Errors:
 * DM_ERR_INVALID_ARGUMENT (count < 1, a NaN or infinite sample, bits or a class out of range),
 * DM_ERR_OUT_OF_MEMORY, DM_ERR_CANCELLED. */
dm_status dm_model_elbo(const dm_model *m, const float *clips, int count, const dm_elbo_params *p,
                        double *bits_per_sample, double *std_err, dm_error *err);
/* The same, clip by clip: per_clip[i] (count values) = the bound of clip i, in bits per sample;
 * their mean is dm_model_elbo's result for the same arguments. For paired comparisons (two
 * models on the same clips and seed see the same noise) and per-class figures. */
dm_status dm_model_elbo_per_clip(const dm_model *m, const float *clips, int count,
                                 const dm_elbo_params *p, double *per_clip, dm_error *err);

#ifdef __cplusplus
}
#endif

/* Audio files, datasets and the synthetic set; the spectral engine and evaluation. */
#include "dmaudio_audio.h"
#include "dmaudio_spectral.h"

#endif /* DMAUDIO_H */
