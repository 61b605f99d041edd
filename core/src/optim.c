/* The optimiser of a training step (optim.h). Every loop works on chunks whose bounds are a
 * function of n only, so results do not depend on the thread count; the chunk kernels are
 * compiled for AVX-512, AVX2 and the baseline (DM_CLONES) and give the same bits on each. */
#include "optim.h"
#include "internal.h"

#include <math.h>

/* The sum of squares of n floats in double, as 8 interleaved partial sums (so that the loop
 * vectorises) added pairwise at the end. */
DM_CLONES static double sum_squares_chunk(const float *g, size_t n)
{
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += (double)g[i + j] * g[i + j];
    double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++)
        sum += (double)g[i] * g[i];
    return sum;
}

/* At most 256 chunks of at least 16384 floats, summed in parallel and then in order. */
double dm_optim_sum_squares(const float *g, size_t n)
{
    enum { MAX_CHUNKS = 256, MIN_CHUNK = 16384 };
    size_t chunks = (n + MIN_CHUNK - 1) / MIN_CHUNK;
    chunks = chunks < 1 ? 1 : chunks > MAX_CHUNKS ? MAX_CHUNKS : chunks;
    const size_t chunk = ((n + chunks - 1) / chunks + 7) / 8 * 8;
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (dm_par(2.0 * n))
    for (size_t c = 0; c < chunks; c++) {
        size_t j = c * chunk < n ? c * chunk : n;
        part[c] = sum_squares_chunk(g + j, n - j < chunk ? n - j : chunk);
    }
    double sum = 0.0;
    for (size_t c = 0; c < chunks; c++)
        sum += part[c];
    return sum;
}

/* One step's constants: the clipping factor, the learning rate, the moments' decays and bias
 * corrections, epsilon, the weight decay and this step's EMA decay. */
typedef struct adamw_step {
    double clip, lr, b1, b2, c1, c2, eps, wd, ed;
} adamw_step;

/* AdamW, then the EMA, on n weights, in double. Each lane of the vectorised loop does the
 * scalar loop's operations in its order (no contraction under -std=c11; division and square
 * root are correctly rounded), so every clone gives the same bits. */
DM_CLONES static void adamw_chunk(const adamw_step *a, size_t n, const float *g, float *m,
                                  float *v, const unsigned char *decay, float *w, float *e)
{
    const double clip = a->clip, lr = a->lr, b1 = a->b1, b2 = a->b2, c1 = a->c1, c2 = a->c2;
    const double eps = a->eps, wd = a->wd, ed = a->ed;
#pragma omp simd
    for (size_t j = 0; j < n; j++) {
        double gj = g[j] * clip;
        double mj = b1 * m[j] + (1.0 - b1) * gj;
        double vj = b2 * v[j] + (1.0 - b2) * gj * gj;
        m[j] = (float)mj;
        v[j] = (float)vj;
        double upd = (mj / c1) / (sqrt(vj / c2) + eps);
        double decayed = upd + wd * w[j];
        upd = decay[j] ? decayed : upd;
        double wj = (float)(w[j] - lr * upd);
        w[j] = (float)wj;
        e[j] = (float)(ed * e[j] + (1.0 - ed) * wj);
    }
}

void dm_optim_step(const dm_optim *o, size_t n, const float *g, float *m, float *v,
                   const unsigned char *decay, float *w, float *e)
{
    const double norm = sqrt(dm_optim_sum_squares(g, n));
    const double step1 = (double)(o->step + 1);
    adamw_step a;
    a.clip = o->grad_clip > 0.0 && norm > o->grad_clip ? o->grad_clip / norm : 1.0;
    a.lr = o->lr, a.b1 = o->beta1, a.b2 = o->beta2, a.eps = o->eps, a.wd = o->weight_decay;
    a.c1 = 1.0 - pow(o->beta1, step1), a.c2 = 1.0 - pow(o->beta2, step1);
    a.ed = fmin(o->ema_decay, (1.0 + step1) / (10.0 + step1));
    const size_t chunk = 16384, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (dm_par(16.0 * n))
    for (size_t c = 0; c < chunks; c++) {
        size_t j = c * chunk, k = n - j < chunk ? n - j : chunk;
        adamw_chunk(&a, k, g + j, m + j, v + j, decay + j, w + j, e + j);
    }
}
