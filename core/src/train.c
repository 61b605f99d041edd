/* Training: the simplified ELBO (MSE on the eps or v target, optionally
 * min-SNR-gamma weighted, plus an optional multi-resolution STFT loss on the
 * implied x0 for wave models), AdamW with warm-up and cosine decay, global-norm
 * gradient clipping, an EMA copy of the weights, classifier-free guidance
 * training by dropping the class, and checkpoints that resume exactly.
 *
 * Every random choice of step s (which clips, where to crop, the gain, the
 * class drop, the noise level and the noise) is drawn from counter-based
 * streams keyed by (seed, s), so a checkpoint needs only the step number to
 * continue the same data order: N steps, save, load, M steps gives the same
 * weights as N + M steps in one run.
 *
 * A step may be cut into shards (consecutive parts of the batch) whose gradients are summed
 * along a fixed binary tree; a group of trainers in several processes can share the shards,
 * and a reduce callback sums their partial gradients (see dm_trainer_set_group). The random
 * numbers of item b are the same whichever shard or process draws them. */
#include "internal.h"
#include "model_internal.h"
#include "optim.h"

#include "dmaudio_audio.h"
#include "dmaudio_spectral.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Uniform numbers per item per step: clip, crop, gain, class drop, time. */
enum { U_CLIP, U_CROP, U_GAIN, U_DROP, U_TIME, U_COUNT };

struct dm_trainer {
    dm_train_params p;
    dm_model *model;             /* live weights                         */
    dm_model *ema;               /* exponential moving average           */
    dm_unet_state *st;
    dm_codec *codec;             /* cropped audio -> network layout      */
    dm_mrstft *mrstft;           /* the STFT loss (stft_loss_weight > 0) */
    size_t np, item;
    float *m, *v;                /* AdamW moments                        */
    unsigned char *decay;        /* 1 where weight decay applies         */
    float *x0, *eps, *xt, *target, *pred, *dpred, *t, *u;
    float *audio;                /* one cropped clip, (audio_channels, length)      */
    float *x0hat, *yhat, *yref, *ygrad; /* STFT loss: an item, then one channel */
    int *cls;
    int64_t step;
    /* shards and the group (dm_trainer_set_group) */
    int rank, size;
    dm_train_reduce_fn reduce;
    void *reduce_user_data;
    float *gsum;                 /* this trainer's gradient, when it has more than one shard */
    float **tree;                /* partial sums, one per level of the shard tree            */
    int levels;
};

dm_train_params dm_train_default_params(void)
{
    dm_train_params p;
    memset(&p, 0, sizeof p);
    p.batch = 16;
    p.lr = 3e-4;
    p.weight_decay = 0.01;
    p.beta1 = 0.9, p.beta2 = 0.999, p.adam_eps = 1e-8;
    p.warmup_steps = 100;
    p.total_steps = 10000;
    p.min_lr_ratio = 0.1;
    p.grad_clip = 1.0;
    p.ema_decay = 0.999;
    p.class_dropout = 0.1;
    p.min_snr_gamma = 0.0;
    p.gain_db = 6.0;
    p.seed = 1;
    p.shards = 1;
    return p;
}

static dm_status check_train_params(const dm_train_params *p, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
#define RANGE(field, lo, hi)                                                                    \
    if (!(p->field >= (lo) && p->field <= (hi)))                                                \
        return dm_fail(err, bad, "training: " #field " %g is not in %g..%g", (double)p->field,   \
                       (double)(lo), (double)(hi));
    RANGE(batch, 1, 1024);
    RANGE(lr, 1e-9, 1.0);
    RANGE(weight_decay, 0.0, 1.0);
    RANGE(beta1, 0.0, 0.99999);
    RANGE(beta2, 0.0, 0.999999);
    RANGE(adam_eps, 1e-12, 1.0);
    RANGE(warmup_steps, 0, 1e9);
    RANGE(total_steps, 1, 1e9);
    RANGE(min_lr_ratio, 0.0, 1.0);
    RANGE(grad_clip, 0.0, 1e6);
    RANGE(ema_decay, 0.0, 0.999999);
    RANGE(class_dropout, 0.0, 1.0);
    RANGE(min_snr_gamma, 0.0, 1e6);
    RANGE(stft_loss_weight, 0.0, 1e6);
    RANGE(gain_db, 0.0, 60.0);
    RANGE(n_threads, 0, 1024);
    RANGE(shards, 1, p->batch);
#undef RANGE
    if (p->batch % p->shards)
        return dm_fail(err, bad, "training: the batch (%d) does not split into %d equal shards",
                       p->batch, p->shards);
    return DM_OK;
}

void dm_trainer_free(dm_trainer *t)
{
    if (!t)
        return;
    dm_model_free(t->model);
    dm_model_free(t->ema);
    dm_unet_state_free(t->st);
    dm_codec_free(t->codec);
    dm_mrstft_free(t->mrstft);
    dm_free(t->audio);
    dm_free(t->x0hat);
    dm_free(t->yhat);
    dm_free(t->yref);
    dm_free(t->ygrad);
    dm_free(t->m);
    dm_free(t->v);
    dm_free(t->decay);
    dm_free(t->x0);
    dm_free(t->eps);
    dm_free(t->xt);
    dm_free(t->target);
    dm_free(t->pred);
    dm_free(t->dpred);
    dm_free(t->t);
    dm_free(t->u);
    dm_free(t->cls);
    for (int l = 0; l < t->levels; l++)
        dm_free(t->tree[l]);
    free(t->tree);
    dm_free(t->gsum);
    free(t);
}

/* A trainer around a copy of m (weights included), with zero moments. */
static dm_status trainer_new(const dm_model *m, const dm_train_params *p, dm_trainer **out,
                             dm_error *err)
{
    dm_status st = check_train_params(p, err);
    if (st != DM_OK)
        return st;
    dm_model_info info = dm_model_get_info(m);
    if (p->stft_loss_weight > 0.0 && info.repr != DM_REPR_WAVE)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "training: the STFT loss (stft_loss_weight "
                                                     "%g) needs a wave model, this one is %s",
                       p->stft_loss_weight, dm_repr_name(info.repr));
    dm_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "training: out of memory");
    t->p = *p;
    t->model = dm_model_clone(m);
    t->ema = dm_model_clone(m);
    t->np = info.n_params;
    t->item = (size_t)info.net_channels * info.net_length;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = p->batch / p->shards;
    sp.length = info.net_length;
    sp.train = 1;
    sp.n_threads = p->n_threads;
    if (!t->model || !t->ema) {
        dm_trainer_free(t);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "training: out of memory");
    }
    st = dm_unet_state_create(dm_model_unet_const(t->model), &sp, &t->st, err);
    if (st == DM_OK)
        st = dm_codec_create(m, &t->codec, err);
    if (st == DM_OK && p->stft_loss_weight > 0.0) {
        int n_fft[3], hop[3];
        int r = dm_mrstft_default_resolutions(info.sample_rate, (size_t)info.length, n_fft, hop);
        st = dm_mrstft_create(r, n_fft, hop, (size_t)info.length, &t->mrstft, err);
    }
    if (st != DM_OK) {
        dm_trainer_free(t);
        return st;
    }
    t->size = 1;
    const size_t n = t->item * (size_t)(p->batch / p->shards);
    t->m = dm_alloc(t->np, sizeof(float));
    t->v = dm_alloc(t->np, sizeof(float));
    t->decay = dm_alloc(t->np, 1);
    t->x0 = dm_alloc(n, sizeof(float));
    t->eps = dm_alloc(n, sizeof(float));
    t->xt = dm_alloc(n, sizeof(float));
    t->target = dm_alloc(n, sizeof(float));
    t->pred = dm_alloc(n, sizeof(float));
    t->dpred = dm_alloc(n, sizeof(float));
    t->t = dm_alloc((size_t)p->batch, sizeof(float));
    t->u = dm_alloc((size_t)p->batch * U_COUNT, sizeof(float));
    t->cls = dm_alloc((size_t)p->batch, sizeof(int));
    int tree_ok = 1;
    if (p->shards > 1) { /* the depth of the tree over all shards: the largest share */
        while ((1 << t->levels) < p->shards)
            t->levels++;
        t->gsum = dm_alloc(t->np, sizeof(float));
        t->tree = calloc((size_t)t->levels, sizeof *t->tree);
        tree_ok = t->gsum && t->tree;
        for (int l = 0; tree_ok && l < t->levels; l++)
            tree_ok = (t->tree[l] = dm_alloc(t->np, sizeof(float))) != NULL;
    }
    t->audio = dm_alloc((size_t)info.audio_channels * info.length, sizeof(float));
    int stft_ok = 1;
    if (t->mrstft) {
        t->x0hat = dm_alloc(t->item, sizeof(float));
        t->yhat = dm_alloc((size_t)info.length, sizeof(float));
        t->yref = dm_alloc((size_t)info.length, sizeof(float));
        t->ygrad = dm_alloc((size_t)info.length, sizeof(float));
        stft_ok = t->x0hat && t->yhat && t->yref && t->ygrad;
    }
    if (!t->m || !t->v || !t->decay || !t->x0 || !t->eps || !t->xt || !t->target || !t->pred ||
        !t->dpred || !t->t || !t->u || !t->cls || !t->audio || !stft_ok || !tree_ok) {
        dm_trainer_free(t);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "training: out of memory");
    }
    /* weight decay on weight matrices and kernels, not on biases and norms */
    const dm_unet *net = dm_model_unet_const(m);
    for (int i = 0; i < dm_unet_n_tensors(net); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(net, i, &ti);
        if (ti.ndim >= 2)
            memset(t->decay + ti.offset, 1, ti.size);
    }
    *out = t;
    return DM_OK;
}

dm_status dm_trainer_create(const dm_model *m, const dm_train_params *p, dm_trainer **out,
                            dm_error *err)
{
    if (!m || !p || !out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_trainer_create: missing argument");
    *out = NULL;
    return trainer_new(m, p, out, err);
}

dm_status dm_trainer_set_group(dm_trainer *t, int rank, int size, dm_train_reduce_fn reduce,
                               void *user_data, dm_error *err)
{
    if (!t)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_trainer_set_group: missing trainer");
    if (size < 1 || rank < 0 || rank >= size)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "training: rank %d of %d processes", rank,
                       size);
    if (size > 1 && !reduce)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "training: %d processes need a reduce function", size);
    if (t->p.shards % size)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "training: %d processes cannot share the %d shard(s) of each step (the "
                       "number of processes must divide the shards)", size, t->p.shards);
    t->rank = rank, t->size = size;
    t->reduce = reduce;
    t->reduce_user_data = user_data;
    return DM_OK;
}

dm_train_params dm_trainer_params(const dm_trainer *t) { return t->p; }
int64_t dm_trainer_step_count(const dm_trainer *t) { return t->step; }
/* The EMA's checksum (a CRC of every weight) is brought up to date here, when the model is
 * asked for, rather than by every step, where it cost as much as the optimiser. */
const dm_model *dm_trainer_model(const dm_trainer *t)
{
    dm_model_update_checksum(t->ema);
    return t->ema;
}

static double lr_at(const dm_train_params *p, int64_t step)
{
    if (step < p->warmup_steps)
        return p->lr * (double)(step + 1) / (double)(p->warmup_steps + 1);
    double span = (double)p->total_steps - p->warmup_steps;
    double f = span > 0 ? ((double)step - p->warmup_steps) / span : 1.0;
    if (f > 1.0)
        f = 1.0;
    double lo = p->lr * p->min_lr_ratio;
    return lo + (p->lr - lo) * 0.5 * (1.0 + cos(M_PI * f));
}

double dm_trainer_lr(const dm_trainer *t) { return lr_at(&t->p, t->step); }
dm_train_params dm_trainer_get_params(const dm_trainer *t) { return t->p; }

/* The dataset must deliver what the model generates. */
static dm_status check_dataset(const dm_trainer *t, const dm_dataset *ds, dm_error *err)
{
    const dm_model_info in = dm_model_get_info(t->model);
    if (dm_dataset_count(ds) < 1)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "training: the dataset is empty");
    if (dm_dataset_rate(ds) != in.sample_rate || dm_dataset_channels(ds) != in.audio_channels)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "training: the dataset is %d Hz, %d channel(s); the model %d Hz, %d",
                       dm_dataset_rate(ds), dm_dataset_channels(ds), in.sample_rate,
                       in.audio_channels);
    if (dm_dataset_n_classes(ds) != in.n_classes)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "training: the dataset has %d classes, the model %d",
                       dm_dataset_n_classes(ds), in.n_classes);
    for (int c = 0; c < in.n_classes; c++)
        if (strcmp(dm_dataset_class_name(ds, c), dm_model_class_name(t->model, c)) != 0)
            return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                           "training: dataset class %d is '%s', the model's '%s'", c,
                           dm_dataset_class_name(ds, c), dm_model_class_name(t->model, c));
    return DM_OK;
}

/* min-SNR-gamma weight (Hang et al. 2023) for the prediction target. */
static double loss_weight(const dm_train_params *p, dm_prediction pred, double alpha, double sigma)
{
    if (p->min_snr_gamma <= 0.0)
        return 1.0;
    double snr = (alpha * alpha) / fmax(sigma * sigma, 1e-20);
    double w = fmin(snr, p->min_snr_gamma);
    /* the paper's weight is min(SNR, gamma) on the x0 error, which is (SNR + 1) times
     * smaller than the v error and SNR times smaller than the eps error */
    return pred == DM_PREDICT_X0 ? w : pred == DM_PREDICT_V ? w / (snr + 1.0) : w / snr;
}

/* The multi-resolution STFT term (wave models), over the nb items of a shard of a batch of B:
 * for item b and audio channel c, L_bc =
 * dm_mrstft_loss(x0hat / data_scale, x0 / data_scale), where x0hat is the x0 the network's
 * output implies. Returns w mean_bc L_bc and adds its gradient into dpred: x0hat is linear in
 * the output with slope k (dm_prediction_to_x0_eps at x_t = 0, output = 1: -sigma for v,
 * -sigma / alpha for eps), so d/d(pred) = w / (B C) * k / data_scale * dL_bc/dy. */
static double stft_loss(dm_trainer *t, int nb, int B, const double *alpha, const double *sigma)
{
    const dm_model_info in = dm_model_get_info(t->model);
    const int C = in.audio_channels, L = in.length;
    const double w = t->p.stft_loss_weight, inv_scale = 1.0 / in.data_scale;
    double sum = 0.0;
    for (int b = 0; b < nb; b++) {
        const size_t off = (size_t)b * t->item;
        const float zero = 0.0f, one = 1.0f;
        float k;
        dm_prediction_to_x0_eps(in.prediction, alpha[b], sigma[b], &zero, &one, &k, NULL, 1);
        dm_prediction_to_x0_eps(in.prediction, alpha[b], sigma[b], t->xt + off, t->pred + off,
                                t->x0hat, NULL, t->item);
        const double chain = w / ((double)B * C) * k * inv_scale;
        for (int c = 0; c < C; c++) {
            const float *xh = t->x0hat + (size_t)c * L, *x0 = t->x0 + off + (size_t)c * L;
            for (int j = 0; j < L; j++) {
                t->yhat[j] = (float)(xh[j] * inv_scale);
                t->yref[j] = (float)(x0[j] * inv_scale);
            }
            sum += dm_mrstft_loss(t->mrstft, t->yhat, t->yref, t->ygrad, NULL);
            float *d = t->dpred + off + (size_t)c * L;
            for (int j = 0; j < L; j++)
                d[j] += (float)(chain * t->ygrad[j]);
        }
    }
    return w * sum / ((double)B * C);
}

/* Shard k of the step: items k nb .. (k + 1) nb - 1 of the batch (nb = batch / shards).
 * Leaves the gradient of the shard's share of the loss in the state's gradient buffer and
 * that share (its items' terms of the batch mean) in *loss. */
static dm_status shard_step(dm_trainer *t, const dm_dataset *ds, int k, double *loss,
                            dm_error *err)
{
    const dm_model_info in = dm_model_get_info(t->model);
    const int B = t->p.batch, nb = B / t->p.shards, L = in.length; /* crops: L audio samples */
    const size_t item = t->item, n = item * (size_t)nb, b0 = (size_t)k * nb;
    const size_t audio_item = (size_t)in.audio_channels * L;
    const uint64_t seed = t->p.seed, s = (uint64_t)t->step;
    const dm_schedule *sch = dm_model_schedule(t->model);
    dm_status st;

    /* the shard's items: numbers b0 .. b0 + nb - 1 of the step's streams */
    dm_rng_uniform(seed, 4 * s, b0 * U_COUNT, t->u, (size_t)nb * U_COUNT);
    dm_rng_normal(seed, 4 * s + 1, b0 * item, t->eps, n);
    const int count = dm_dataset_count(ds);
    double alpha[1024], sigma[1024], weight[1024];
    for (int b = 0; b < nb; b++) {
        const float *u = t->u + (size_t)b * U_COUNT;
        int i = (int)(u[U_CLIP] * count);
        i = i < count ? i : count - 1;
        int64_t frames;
        int cls;
        dm_dataset_item(ds, i, NULL, &frames, &cls);
        int64_t span = frames > L ? frames - L + 1 : 1;
        int64_t offset = (int64_t)(u[U_CROP] * (double)span);
        st = dm_dataset_crop(ds, i, offset < span ? offset : span - 1, L, t->audio);
        if (st != DM_OK)
            return dm_fail(err, st, "training: cannot read clip %d of the dataset", i);
        float gain = (float)pow(10.0, -t->p.gain_db * u[U_GAIN] / 20.0);
        for (size_t j = 0; j < audio_item; j++)
            t->audio[j] *= gain;
        dm_codec_encode(t->codec, t->audio, t->x0 + (size_t)b * item); /* x data_scale */
        int null = in.n_classes;
        t->cls[b] = (in.n_classes == 0 || cls < 0 || u[U_DROP] < t->p.class_dropout) ? null : cls;
        double time = fmax(u[U_TIME], 1e-3);
        t->t[b] = (float)time;
        dm_schedule_alpha_sigma(sch, time, &alpha[b], &sigma[b]);
        weight[b] = loss_weight(&t->p, in.prediction, alpha[b], sigma[b]);
        const float *x0 = t->x0 + (size_t)b * item, *e = t->eps + (size_t)b * item;
        float *xt = t->xt + (size_t)b * item;
        for (size_t j = 0; j < item; j++)
            xt[j] = (float)(alpha[b] * x0[j] + sigma[b] * e[j]);
        dm_prediction_target(in.prediction, alpha[b], sigma[b], x0, e,
                             t->target + (size_t)b * item, item);
    }

    /* forward, weighted MSE over the whole batch's B items, backward */
    dm_unet *net = dm_model_unet(t->model);
    st = dm_unet_forward(net, t->st, nb, t->xt, t->t, t->cls, t->pred, err);
    if (st != DM_OK)
        return st;
    double total = 0.0;
    for (int b = 0; b < nb; b++) {
        double se = 0.0, scale = 2.0 * weight[b] / ((double)B * item);
        for (size_t j = 0; j < item; j++) {
            size_t k = (size_t)b * item + j;
            double d = (double)t->pred[k] - t->target[k];
            se += d * d;
            t->dpred[k] = (float)(scale * d);
        }
        total += weight[b] * se / item;
    }
    total /= B;
    if (t->mrstft)
        total += stft_loss(t, nb, B, alpha, sigma);
    *loss = total;
    dm_unet_state_zero_grads(t->st);
    return dm_unet_backward(net, t->st, t->dpred, NULL, err);
}

/* The gradient of shards lo .. hi - 1 into acc (np floats) and their loss into *loss, along
 * the fixed tree: sum(lo, mid) + sum(mid, hi), the left half first. depth indexes the
 * partial-sum buffers. acc may be the state's gradient buffer when hi - lo is 1. */
static dm_status shard_sum(dm_trainer *t, const dm_dataset *ds, int lo, int hi, int depth,
                           float *acc, double *loss, dm_error *err)
{
    const float *g = dm_unet_state_grads(t->st);
    if (hi - lo == 1) {
        dm_status st = shard_step(t, ds, lo, loss, err);
        if (st == DM_OK && acc != g)
            memcpy(acc, g, t->np * sizeof(float));
        return st;
    }
    const int mid = lo + (hi - lo) / 2;
    float *right = t->tree[depth];
    double right_loss;
    dm_status st = shard_sum(t, ds, lo, mid, depth + 1, acc, loss, err);
    if (st == DM_OK)
        st = shard_sum(t, ds, mid, hi, depth + 1, right, &right_loss, err);
    if (st != DM_OK)
        return st;
#pragma omp parallel for schedule(static) if (dm_par((double)t->np))
    for (size_t j = 0; j < t->np; j++)
        acc[j] += right[j];
    *loss += right_loss;
    return DM_OK;
}

dm_status dm_trainer_step(dm_trainer *t, const dm_dataset *ds, double *loss, dm_error *err)
{
    if (!t || !ds)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_trainer_step: missing argument");
    dm_status st = check_dataset(t, ds, err);
    if (st != DM_OK)
        return st;

    /* this trainer's shards, then the group's sum */
    const int share = t->p.shards / t->size, first = t->rank * share;
    float *g = share == 1 ? dm_unet_state_grads(t->st) : t->gsum;
    double total;
    st = shard_sum(t, ds, first, first + share, 0, g, &total, err);
    if (st != DM_OK)
        return st;
    if (t->reduce) {
        st = t->reduce(g, t->np, &total, t->reduce_user_data);
        if (st != DM_OK)
            return dm_fail(err, st, "training: summing the gradients of %d processes failed at "
                                    "step %lld (%s)", t->size, (long long)t->step,
                           dm_status_message(st));
    }
    if (!isfinite(total))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "training: the loss is not finite at step %lld (lower --lr?)",
                       (long long)t->step);

    /* clip, AdamW, EMA */
    const dm_optim o = {.lr = lr_at(&t->p, t->step), .beta1 = t->p.beta1, .beta2 = t->p.beta2,
                        .eps = t->p.adam_eps, .weight_decay = t->p.weight_decay,
                        .grad_clip = t->p.grad_clip, .ema_decay = t->p.ema_decay,
                        .step = t->step};
    dm_optim_step(&o, t->np, g, t->m, t->v, t->decay, dm_unet_params(dm_model_unet(t->model)),
                  dm_unet_params(dm_model_unet(t->ema)));
    t->step++; /* the EMA's checksum: in dm_trainer_model */
    if (loss)
        *loss = total;
    return DM_OK;
}

/* ---- checkpoints ---- */

/* optional: may be absent from a checkpoint written before the setting existed (the default
 * then applies, which is what that version did). */
static const struct {
    const char *key;
    size_t offset;
    int is_int, optional;
} train_keys[] = {
#define F(name, is_int) {"dmaudio.train." #name, offsetof(dm_train_params, name), is_int, 0}
#define OPT(name, is_int) {"dmaudio.train." #name, offsetof(dm_train_params, name), is_int, 1}
    F(batch, 1), F(lr, 0), F(weight_decay, 0), F(beta1, 0), F(beta2, 0), F(adam_eps, 0),
    F(warmup_steps, 1), F(total_steps, 1), F(min_lr_ratio, 0), F(grad_clip, 0), F(ema_decay, 0),
    F(class_dropout, 0), F(min_snr_gamma, 0), F(gain_db, 0), OPT(stft_loss_weight, 0),
    OPT(shards, 1),
#undef OPT
#undef F
};

dm_status dm_trainer_save(const dm_trainer *t, const char *path, dm_error *err)
{
    if (!t || !path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_trainer_save: missing argument");
    dm_file_writer *w;
    dm_status st = dm_file_writer_create(&w, err);
    if (st != DM_OK)
        return st;
    st = dm_model_write_keys(t->model, w, "checkpoint");
    if (st == DM_OK)
        st = dm_file_writer_int(w, "dmaudio.train.step", t->step);
    if (st == DM_OK)
        st = dm_file_writer_int(w, "dmaudio.train.seed", (int64_t)t->p.seed);
    for (size_t k = 0; st == DM_OK && k < sizeof train_keys / sizeof train_keys[0]; k++) {
        const char *field = (const char *)&t->p + train_keys[k].offset;
        st = train_keys[k].is_int ? dm_file_writer_int(w, train_keys[k].key, *(const int *)field)
                                  : dm_file_writer_float(w, train_keys[k].key,
                                                         *(const double *)field);
    }
    if (st == DM_OK)
        st = dm_model_write_tensors(t->model, w, "", dm_unet_params_const(dm_model_unet_const(t->model)), 0);
    if (st == DM_OK)
        st = dm_model_write_tensors(t->model, w, "ema.", dm_unet_params_const(dm_model_unet_const(t->ema)), 0);
    if (st == DM_OK)
        st = dm_model_write_tensors(t->model, w, "adam_m.", t->m, 0);
    if (st == DM_OK)
        st = dm_model_write_tensors(t->model, w, "adam_v.", t->v, 0);
    if (st != DM_OK)
        dm_fail(err, st, "%s: cannot build the checkpoint (%s)", path, dm_status_message(st));
    else
        st = dm_file_writer_save(w, path, err);
    dm_file_writer_free(w);
    return st;
}

dm_status dm_trainer_load(const char *path, int n_threads, dm_trainer **out, dm_error *err)
{
    if (!path || !out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_trainer_load: missing argument");
    *out = NULL;
    dm_file *f;
    dm_status st = dm_file_read(path, &f, err);
    if (st != DM_OK)
        return st;
    const char *kind = "";
    dm_error e;
    if (dm_file_get_string(f, "dmaudio.kind", &kind, &e) != DM_OK || strcmp(kind, "checkpoint")) {
        dm_file_free(f);
        return dm_fail(err, DM_ERR_FORMAT, "%s: not a dmaudio training checkpoint", path);
    }
    dm_train_params p = dm_train_default_params();
    int64_t step = 0, seed = 0;
    if (dm_file_get_int(f, "dmaudio.train.step", &step, &e) != DM_OK || step < 0 ||
        dm_file_get_int(f, "dmaudio.train.seed", &seed, &e) != DM_OK) {
        dm_file_free(f);
        return dm_fail(err, DM_ERR_FORMAT, "%s: bad or missing step and seed", path);
    }
    p.seed = (uint64_t)seed;
    for (size_t k = 0; k < sizeof train_keys / sizeof train_keys[0]; k++) {
        char *field = (char *)&p + train_keys[k].offset;
        if (train_keys[k].optional && !dm_file_has(f, train_keys[k].key))
            continue;
        if (train_keys[k].is_int) {
            int64_t v;
            if (dm_file_get_int(f, train_keys[k].key, &v, &e) != DM_OK || v < 0 || v > (1 << 30)) {
                dm_file_free(f);
                return dm_fail(err, DM_ERR_FORMAT, "%s: bad or missing %s", path, train_keys[k].key);
            }
            *(int *)field = (int)v;
        } else if (dm_file_get_float(f, train_keys[k].key, (double *)field, &e) != DM_OK) {
            dm_file_free(f);
            return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
        }
    }
    p.n_threads = n_threads;
    dm_model *m;
    st = dm_model_from_keys(f, path, &m, err);
    if (st != DM_OK) {
        dm_file_free(f);
        return st;
    }
    dm_trainer *t = NULL;
    st = trainer_new(m, &p, &t, &e);
    dm_model_free(m);
    if (st != DM_OK) {
        dm_file_free(f);
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    }
    st = dm_model_read_tensors(t->model, f, path, "", dm_unet_params(dm_model_unet(t->model)), err);
    if (st == DM_OK)
        st = dm_model_read_tensors(t->model, f, path, "ema.", dm_unet_params(dm_model_unet(t->ema)), err);
    if (st == DM_OK)
        st = dm_model_read_tensors(t->model, f, path, "adam_m.", t->m, err);
    if (st == DM_OK)
        st = dm_model_read_tensors(t->model, f, path, "adam_v.", t->v, err);
    dm_file_free(f);
    if (st != DM_OK) {
        dm_trainer_free(t);
        return st;
    }
    t->step = step;
    dm_model_update_checksum(t->model);
    dm_model_update_checksum(t->ema);
    *out = t;
    return DM_OK;
}
