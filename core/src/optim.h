/* The optimiser of a training step: gradient clipping by global norm, AdamW (decoupled weight
 * decay, Loshchilov & Hutter 2019) and an exponential moving average of the weights. */
#ifndef DM_OPTIM_H
#define DM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct dm_optim {
    double lr;           /* this step's learning rate                                  */
    double beta1, beta2; /* the moments' decays                                        */
    double eps;          /* added to the square root of the second moment              */
    double weight_decay; /* decoupled: w -= lr * weight_decay * w where decay[j] is 1  */
    double grad_clip;    /* the gradient is scaled to this global norm when above; 0: off */
    double ema_decay;    /* at most; min(ema_decay, (1 + k) / (10 + k)) at step k       */
    int64_t step;        /* steps taken before this one (0 for the first)              */
} dm_optim;

/* One step on n weights w with gradient g (read only: the clipping is applied on the fly),
 * moments m and v, and EMA copy e. The same bits for every thread count and CPU. */
void dm_optim_step(const dm_optim *o, size_t n, const float *g, float *m, float *v,
                   const unsigned char *decay, float *w, float *e);

/* The squared global norm of g, summed in double in an order fixed by n. */
double dm_optim_sum_squares(const float *g, size_t n);

#endif
