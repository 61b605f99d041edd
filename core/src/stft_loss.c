/* The multi-resolution STFT loss of Parallel WaveGAN (Yamamoto, Song and Kim 2020): spectral
 * convergence plus L1 distance of log magnitudes, averaged over resolutions, with its exact
 * gradient through dm_stft_backward. Definitions in core/include/dmaudio_spectral.h;
 * tests/gen_stft_loss_fixtures.py is the numpy (loss) and torch autograd (gradient)
 * reference. */
#include "internal.h"
#include "dmaudio_spectral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dm_mrstft {
    int n_res;
    size_t n;                                /* samples per signal                       */
    dm_stft *st[DM_MRSTFT_MAX_RES];
    int frames[DM_MRSTFT_MAX_RES];
    /* (bins, frames) planes sized for the largest resolution: y's and x's spectra */
    float *yre, *yim, *xre, *xim;
};

static int nearest_pow2(double v)
{
    int e = (int)lround(log2(v > 1.0 ? v : 1.0));
    return e > 30 ? 1 << 30 : 1 << e;
}

int dm_mrstft_default_resolutions(int sample_rate, size_t n_samples, int *n_fft, int *hop)
{
    static const int base[3] = {128, 256, 512};
    int cap = 16;
    while ((size_t)cap * 2 <= n_samples && cap < (1 << 16))
        cap *= 2;
    int r = 0;
    for (int i = 0; i < 3; i++) {
        int n = nearest_pow2(base[i] * (double)sample_rate / 16000.0);
        n = n < 16 ? 16 : n > cap ? cap : n;
        if (r > 0 && n_fft[r - 1] == n)
            continue;
        n_fft[r] = n;
        hop[r] = n / 4;
        r++;
    }
    return r;
}

void dm_mrstft_free(dm_mrstft *l)
{
    if (!l)
        return;
    for (int r = 0; r < l->n_res; r++)
        dm_stft_free(l->st[r]);
    dm_free(l->yre);
    free(l);
}

dm_status dm_mrstft_create(int n_res, const int *n_fft, const int *hop, size_t n_samples,
                           dm_mrstft **out, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!out || !n_fft || !hop)
        return dm_fail(err, bad, "STFT loss: missing argument");
    *out = NULL;
    if (n_res < 1 || n_res > DM_MRSTFT_MAX_RES)
        return dm_fail(err, bad, "STFT loss: %d resolutions is not in 1..%d", n_res,
                       DM_MRSTFT_MAX_RES);
    if (n_samples < 1 || n_samples > (size_t)INT32_MAX / 2)
        return dm_fail(err, bad, "STFT loss: %zu samples is not in 1..%d", n_samples,
                       INT32_MAX / 2);
    for (int r = 0; r < n_res; r++)
        if (n_fft[r] > 65536)
            return dm_fail(err, bad, "STFT loss: n_fft %d is larger than 65536", n_fft[r]);
    dm_mrstft *l = calloc(1, sizeof *l);
    if (!l)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "STFT loss: out of memory");
    l->n = n_samples;
    size_t plane = 0;
    for (int r = 0; r < n_res; r++) {
        dm_status st = dm_stft_create(n_fft[r], hop[r], &l->st[r], err);
        if (st != DM_OK) {
            dm_mrstft_free(l);
            return st;
        }
        l->n_res = r + 1;
        l->frames[r] = dm_stft_frames(l->st[r], n_samples);
        size_t p = (size_t)dm_stft_bins(l->st[r]) * l->frames[r];
        plane = p > plane ? p : plane;
    }
    /* one allocation, four planes */
    l->yre = dm_alloc(4 * plane, sizeof(float));
    if (!l->yre) {
        dm_mrstft_free(l);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "STFT loss: out of memory");
    }
    l->yim = l->yre + plane, l->xre = l->yre + 2 * plane, l->xim = l->yre + 3 * plane;
    *out = l;
    return DM_OK;
}

int dm_mrstft_n_res(const dm_mrstft *l) { return l->n_res; }

double dm_mrstft_loss(dm_mrstft *l, const float *y, const float *x, float *grad, double *parts)
{
    const double eps = DM_MRSTFT_EPS, inv_r = 1.0 / l->n_res;
    if (grad)
        memset(grad, 0, l->n * sizeof *grad);
    double total = 0.0;
    for (int r = 0; r < l->n_res; r++) {
        dm_stft *st = l->st[r];
        const int frames = l->frames[r];
        const size_t count = (size_t)dm_stft_bins(st) * frames;
        /* sizes were checked at creation: these cannot fail */
        dm_stft_forward(st, y, l->n, l->yre, l->yim, NULL);
        dm_stft_forward(st, x, l->n, l->xre, l->xim, NULL);
        double diff2 = 0.0, ref2 = 0.0, l1 = 0.0;
        for (size_t i = 0; i < count; i++) {
            double yr = l->yre[i], yi = l->yim[i], xr = l->xre[i], xi = l->xim[i];
            double my = sqrt(yr * yr + yi * yi + eps), mx = sqrt(xr * xr + xi * xi + eps);
            diff2 += (my - mx) * (my - mx);
            ref2 += mx * mx;
            l1 += fabs(log(my) - log(mx));
        }
        const double diff = sqrt(diff2), ref = sqrt(ref2); /* ref >= sqrt(count eps) > 0 */
        const double sc = diff / ref, lm = l1 / (double)count;
        if (parts)
            parts[2 * r] = sc, parts[2 * r + 1] = lm;
        total += sc + lm;
        if (!grad)
            continue;
        /* d/d|S(y)|, then through |S| = sqrt(re^2 + im^2 + eps) to re and im (in place) */
        const double csc = diff > 0.0 ? inv_r / (diff * ref) : 0.0, clm = inv_r / (double)count;
        for (size_t i = 0; i < count; i++) {
            double yr = l->yre[i], yi = l->yim[i], xr = l->xre[i], xi = l->xim[i];
            double my = sqrt(yr * yr + yi * yi + eps), mx = sqrt(xr * xr + xi * xi + eps);
            double d = log(my) - log(mx);
            double g = csc * (my - mx) + clm * (d > 0.0 ? 1.0 : d < 0.0 ? -1.0 : 0.0) / my;
            l->yre[i] = (float)(g * yr / my);
            l->yim[i] = (float)(g * yi / my);
        }
        dm_stft_backward(st, l->yre, l->yim, frames, grad, l->n, NULL);
    }
    return total * inv_r;
}
