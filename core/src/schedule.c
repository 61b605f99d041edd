/* Noise schedules (DDPM linear, improved-DDPM cosine), their continuous
 * (alpha, sigma) view, Karras sigma spacing, the forward process and the
 * prediction targets. See dmaudio.h for the definitions. */
#include "internal.h"

#include <math.h>
#include <string.h>

static const char *const schedule_names[DM_SCHEDULE_COUNT] = {"linear", "cosine"};
static const char *const prediction_names[DM_PREDICTION_COUNT] = {"eps", "v", "x0"};

const char *dm_schedule_name(dm_schedule_kind kind)
{
    return (unsigned)kind < DM_SCHEDULE_COUNT ? schedule_names[kind] : "unknown";
}

int dm_schedule_from_name(const char *name, dm_schedule_kind *out)
{
    for (int i = 0; name && i < DM_SCHEDULE_COUNT; i++)
        if (strcmp(name, schedule_names[i]) == 0) {
            *out = (dm_schedule_kind)i;
            return 0;
        }
    return -1;
}

const char *dm_prediction_name(dm_prediction p)
{
    return (unsigned)p < DM_PREDICTION_COUNT ? prediction_names[p] : "unknown";
}

int dm_prediction_from_name(const char *name, dm_prediction *out)
{
    for (int i = 0; name && i < DM_PREDICTION_COUNT; i++)
        if (strcmp(name, prediction_names[i]) == 0) {
            *out = (dm_prediction)i;
            return 0;
        }
    return -1;
}

/* improved DDPM's f(u) = cos^2((u + s) / (1 + s) * pi / 2) */
static double cosine_f(double u, double s)
{
    double c = cos((u + s) / (1.0 + s) * M_PI / 2.0);
    return c * c;
}

dm_status dm_schedule_init(dm_schedule *s, dm_schedule_kind kind, int steps, dm_error *err)
{
    if ((unsigned)kind >= DM_SCHEDULE_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "schedule: unknown kind %d", (int)kind);
    if (steps < 2 || steps > DM_MAX_TIMESTEPS)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "schedule: %d steps is not in 2..%d", steps,
                       DM_MAX_TIMESTEPS);
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->steps = steps;
    s->beta_start = 1e-4;
    s->beta_end = 0.02;
    s->cosine_s = 0.008;
    /* scale the DDPM betas so that T != 1000 keeps the same total noise */
    double scale = 1000.0 / steps;
    s->abar[0] = 1.0;
    double abar = 1.0;
    for (int t = 1; t <= steps; t++) {
        double beta;
        if (kind == DM_SCHEDULE_LINEAR) {
            beta = scale * (s->beta_start +
                            (s->beta_end - s->beta_start) * (double)(t - 1) / (double)(steps - 1));
        } else {
            double ratio = cosine_f((double)t / steps, s->cosine_s) /
                           cosine_f((double)(t - 1) / steps, s->cosine_s);
            beta = 1.0 - ratio;
        }
        if (beta > 0.999)
            beta = 0.999;
        abar *= 1.0 - beta;
        s->abar[t] = abar;
    }
    return DM_OK;
}

dm_status dm_schedule_shift(dm_schedule *s, double shift, dm_error *err)
{
    if (!(shift >= 1.0 / 64 && shift <= 64.0))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "schedule: shift %g is not in 1/64..64",
                       shift);
    const double k = shift * shift;
    for (int t = 1; t <= s->steps; t++)
        s->abar[t] = s->abar[t] / (s->abar[t] + k * (1.0 - s->abar[t]));
    return DM_OK;
}

double dm_schedule_alpha_bar(const dm_schedule *s, int t)
{
    if (t <= 0)
        return 1.0;
    if (t > s->steps)
        t = s->steps;
    return s->abar[t];
}

double dm_schedule_beta(const dm_schedule *s, int t)
{
    if (t < 1)
        t = 1;
    if (t > s->steps)
        t = s->steps;
    return 1.0 - s->abar[t] / s->abar[t - 1];
}

/* log(abar) at continuous u, linear between grid points */
static double log_abar(const dm_schedule *s, double u)
{
    if (!(u > 0.0))
        return 0.0;
    if (u >= 1.0)
        return log(s->abar[s->steps]);
    double pos = u * s->steps;
    int t0 = (int)floor(pos);
    if (t0 >= s->steps)
        t0 = s->steps - 1;
    double frac = pos - t0;
    return (1.0 - frac) * log(s->abar[t0]) + frac * log(s->abar[t0 + 1]);
}

void dm_schedule_alpha_sigma(const dm_schedule *s, double u, double *alpha, double *sigma)
{
    double la = log_abar(s, u);
    if (alpha)
        *alpha = exp(0.5 * la);
    if (sigma)
        *sigma = sqrt(-expm1(la));
}

double dm_schedule_u_from_sigma(const dm_schedule *s, double sigma_ve)
{
    if (!(sigma_ve > 0.0))
        return 0.0;
    double target = -log1p(sigma_ve * sigma_ve); /* log abar */
    if (target >= 0.0)
        return 0.0;
    if (target <= log(s->abar[s->steps]))
        return 1.0;
    /* log abar decreases with t: find t0 with L[t0] >= target > L[t0 + 1] */
    int lo = 0, hi = s->steps;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (log(s->abar[mid]) >= target)
            lo = mid;
        else
            hi = mid;
    }
    double l0 = log(s->abar[lo]), l1 = log(s->abar[lo + 1]);
    double frac = l0 > l1 ? (l0 - target) / (l0 - l1) : 0.0;
    return (lo + frac) / s->steps;
}

double dm_schedule_sigma_min(const dm_schedule *s)
{
    return sqrt((1.0 - s->abar[1]) / s->abar[1]);
}

double dm_schedule_sigma_max(const dm_schedule *s)
{
    return sqrt((1.0 - s->abar[s->steps]) / s->abar[s->steps]);
}

void dm_karras_sigmas(double sigma_min, double sigma_max, double rho, int n, double *out)
{
    double a = pow(sigma_max, 1.0 / rho), b = pow(sigma_min, 1.0 / rho);
    for (int i = 0; i < n; i++) {
        double f = n > 1 ? (double)i / (n - 1) : 0.0;
        out[i] = pow(a + f * (b - a), rho);
    }
    out[n] = 0.0;
}

void dm_diffuse_step(const dm_schedule *s, int t, const float *x_prev, const float *eps,
                     float *x_t, size_t n)
{
    double alpha = 1.0 - dm_schedule_beta(s, t);
    float a = (float)sqrt(alpha), b = (float)sqrt(1.0 - alpha);
    for (size_t i = 0; i < n; i++)
        x_t[i] = a * x_prev[i] + b * eps[i];
}

void dm_diffuse(const dm_schedule *s, int t, const float *x0, const float *eps, float *x_t,
                size_t n)
{
    double abar = dm_schedule_alpha_bar(s, t);
    float a = (float)sqrt(abar), b = (float)sqrt(1.0 - abar);
    for (size_t i = 0; i < n; i++)
        x_t[i] = a * x0[i] + b * eps[i];
}

void dm_prediction_to_x0_eps(dm_prediction p, double alpha, double sigma, const float *x_t,
                             const float *out, float *x0, float *eps, size_t n)
{
    if (p == DM_PREDICT_V) {
        float a = (float)alpha, s = (float)sigma;
        for (size_t i = 0; i < n; i++) {
            float xi = x_t[i], vi = out[i];
            if (x0)
                x0[i] = a * xi - s * vi;
            if (eps)
                eps[i] = s * xi + a * vi;
        }
    } else if (p == DM_PREDICT_X0) {
        float a = (float)alpha, inv_s = (float)(1.0 / (sigma > 1e-12 ? sigma : 1e-12));
        for (size_t i = 0; i < n; i++) {
            float xi = x_t[i], x0i = out[i];
            if (eps)
                eps[i] = (xi - a * x0i) * inv_s;
            if (x0)
                x0[i] = x0i;
        }
    } else {
        float inv_a = (float)(1.0 / (alpha > 1e-12 ? alpha : 1e-12)), s = (float)sigma;
        for (size_t i = 0; i < n; i++) {
            float xi = x_t[i], ei = out[i];
            if (x0)
                x0[i] = (xi - s * ei) * inv_a;
            if (eps)
                eps[i] = ei;
        }
    }
}

void dm_prediction_target(dm_prediction p, double alpha, double sigma, const float *x0,
                          const float *eps, float *target, size_t n)
{
    if (p == DM_PREDICT_V) {
        float a = (float)alpha, s = (float)sigma;
        for (size_t i = 0; i < n; i++)
            target[i] = a * eps[i] - s * x0[i];
    } else if (p == DM_PREDICT_X0) {
        memcpy(target, x0, n * sizeof *target);
    } else {
        memcpy(target, eps, n * sizeof *target);
    }
}
