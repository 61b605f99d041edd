/* The FFTW spectral engine: STFT / inverse STFT, mel filterbank, log-mel, MFCC, spectral
 * shape features and fast Griffin-Lim. Definitions in core/include/dmaudio_spectral.h (they
 * are librosa's); tests/gen_spectral_fixtures.py is the numpy reference.
 *
 * Sections: FFTW planning lock, STFT object, forward, inverse, magnitudes and dB, mel
 * filterbank and MFCC, shape features, Griffin-Lim. */
#include "internal.h"
#include "dmaudio_spectral.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include <fftw3.h>

#define DM_PI 3.14159265358979323846

/* ------------------------------------------------------------------------------------------ */
/* FFTW's planner (and plan destruction) is not thread-safe: every call into it, in the whole
 * process, goes through this lock. Execution (fftwf_execute_dft_*) needs no lock. */

static pthread_mutex_t fftw_planner_lock = PTHREAD_MUTEX_INITIALIZER;

void dm_fftw_lock(void);
void dm_fftw_unlock(void);

void dm_fftw_lock(void)
{
    pthread_mutex_lock(&fftw_planner_lock);
}

void dm_fftw_unlock(void)
{
    pthread_mutex_unlock(&fftw_planner_lock);
}

/* ------------------------------------------------------------------------------------------ */
/* The STFT object */

/* Frames transformed per batch: their spectra sit side by side in `spec`, so that writing
 * the (bins, frames) planes touches DM_STFT_BLOCK contiguous floats per bin. */
#define DM_STFT_BLOCK 16

struct dm_stft {
    int n_fft, hop, bins, pad;
    dm_stft_pad pad_mode;
    size_t cstride;          /* complex values between two spectra in spec (64-byte multiple) */
    float *window;           /* n_fft, periodic Hann                                       */
    float *frame;            /* n_fft real samples (fftwf_malloc)                           */
    fftwf_complex *spec;     /* DM_STFT_BLOCK * cstride (fftwf_malloc)                      */
    fftwf_plan forward;      /* frame -> spec                                               */
    fftwf_plan inverse;      /* spec -> frame (destroys its input)                          */
    float wsq_period[];      /* hop values: sum over j = r (mod hop) of window[j]^2         */
};

static const char *const pad_names[DM_STFT_PAD_COUNT] = {
    [DM_STFT_PAD_REFLECT] = "reflect",
    [DM_STFT_PAD_CONSTANT] = "constant",
};

const char *dm_stft_pad_name(dm_stft_pad pad)
{
    if ((unsigned)pad >= DM_STFT_PAD_COUNT)
        return "unknown";
    return pad_names[pad];
}

int dm_stft_pad_from_name(const char *name, dm_stft_pad *out)
{
    for (int i = 0; name && i < DM_STFT_PAD_COUNT; i++) {
        if (strcmp(name, pad_names[i]) == 0) {
            *out = (dm_stft_pad)i;
            return 0;
        }
    }
    return -1;
}

void dm_stft_free(dm_stft *st)
{
    if (!st)
        return;
    dm_fftw_lock();
    if (st->forward)
        fftwf_destroy_plan(st->forward);
    if (st->inverse)
        fftwf_destroy_plan(st->inverse);
    fftwf_free(st->frame);
    fftwf_free(st->spec);
    dm_fftw_unlock();
    dm_free(st->window);
    dm_free(st);
}

dm_status dm_stft_create_padded(int n_fft, int hop, dm_stft_pad pad, dm_stft **out,
                                dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!out)
        return dm_fail(err, bad, "STFT: no output pointer");
    *out = NULL;
    if (n_fft < 4 || n_fft > (1 << 20) || n_fft % 2 != 0)
        return dm_fail(err, bad, "STFT: n_fft %d is not an even number in 4..%d", n_fft, 1 << 20);
    if (hop < 1 || hop > n_fft)
        return dm_fail(err, bad, "STFT: hop %d is not in 1..n_fft (%d)", hop, n_fft);
    if ((unsigned)pad >= DM_STFT_PAD_COUNT)
        return dm_fail(err, bad, "STFT: unknown padding mode %d", (int)pad);

    dm_stft *st = dm_alloc(1, sizeof *st + (size_t)hop * sizeof(float));
    if (!st)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "STFT: out of memory");
    st->n_fft = n_fft;
    st->hop = hop;
    st->bins = n_fft / 2 + 1;
    st->pad = n_fft / 2;
    st->pad_mode = pad;
    st->cstride = ((size_t)st->bins + 7) & ~(size_t)7;
    st->window = dm_alloc((size_t)n_fft, sizeof(float));
    if (!st->window) {
        dm_free(st);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "STFT: out of memory");
    }
    /* Periodic Hann (scipy.signal.get_window("hann", n_fft, fftbins=True)). */
    for (int j = 0; j < n_fft; j++)
        st->window[j] = (float)(0.5 - 0.5 * cos(2.0 * DM_PI * j / n_fft));
    for (int r = 0; r < hop; r++) {
        double s = 0.0;
        for (int j = r; j < n_fft; j += hop)
            s += (double)st->window[j] * st->window[j];
        st->wsq_period[r] = (float)s;
    }

    dm_fftw_lock();
    st->frame = fftwf_malloc((size_t)n_fft * sizeof(float));
    st->spec = fftwf_malloc(DM_STFT_BLOCK * st->cstride * sizeof(fftwf_complex));
    if (st->frame && st->spec) {
        st->forward = fftwf_plan_dft_r2c_1d(n_fft, st->frame, st->spec, FFTW_ESTIMATE);
        st->inverse = fftwf_plan_dft_c2r_1d(n_fft, st->spec, st->frame,
                                            FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    }
    dm_fftw_unlock();
    if (!st->frame || !st->spec || !st->forward || !st->inverse) {
        dm_stft_free(st);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "STFT: cannot allocate or plan an FFT of %d",
                       n_fft);
    }
    *out = st;
    return DM_OK;
}

dm_status dm_stft_create(int n_fft, int hop, dm_stft **out, dm_error *err)
{
    return dm_stft_create_padded(n_fft, hop, DM_STFT_PAD_REFLECT, out, err);
}

int dm_stft_n_fft(const dm_stft *st) { return st->n_fft; }
int dm_stft_hop(const dm_stft *st) { return st->hop; }
int dm_stft_bins(const dm_stft *st) { return st->bins; }
dm_stft_pad dm_stft_get_pad(const dm_stft *st) { return st->pad_mode; }
const float *dm_stft_window(const dm_stft *st) { return st->window; }

int dm_stft_frames(const dm_stft *st, size_t n_samples)
{
    size_t f = 1 + n_samples / (size_t)st->hop;
    return f > (size_t)INT32_MAX ? INT32_MAX : (int)f;
}

/* ------------------------------------------------------------------------------------------ */
/* Forward */

/* The original sample padded position i (original coordinates) copies, or -1 (zero pad). */
static long pad_source(long n, long i, dm_stft_pad pad)
{
    if (i >= 0 && i < n)
        return i;
    if (pad == DM_STFT_PAD_CONSTANT)
        return -1;
    if (n == 1)
        return 0;
    long period = 2 * (n - 1);
    long m = i % period;
    if (m < 0)
        m += period;
    return m < n ? m : period - m;
}

/* Sample i (any integer) of the padded signal, i in original coordinates. */
static float padded_sample(const float *x, long n, long i, dm_stft_pad pad)
{
    long src = pad_source(n, i, pad);
    return src < 0 ? 0.0f : x[src];
}

/* x (n) -> planes; frames = dm_stft_frames(st, n). re / im rows have stride `frames`. */
static void stft_forward(dm_stft *st, const float *x, size_t n, float *re, float *im)
{
    const int n_fft = st->n_fft, bins = st->bins;
    const int frames = dm_stft_frames(st, n);
    const float *w = st->window;
    for (int t0 = 0; t0 < frames; t0 += DM_STFT_BLOCK) {
        int nb = frames - t0 < DM_STFT_BLOCK ? frames - t0 : DM_STFT_BLOCK;
        for (int b = 0; b < nb; b++) {
            long start = (long)(t0 + b) * st->hop - st->pad; /* original coordinates */
            float *f = st->frame;
            if (start >= 0 && start + n_fft <= (long)n) {
                const float *xs = x + start;
                for (int j = 0; j < n_fft; j++)
                    f[j] = w[j] * xs[j];
            } else {
                for (int j = 0; j < n_fft; j++)
                    f[j] = w[j] * padded_sample(x, (long)n, start + j, st->pad_mode);
            }
            fftwf_execute_dft_r2c(st->forward, f, st->spec + (size_t)b * st->cstride);
        }
        for (int k = 0; k < bins; k++) {
            float *r = re + (size_t)k * frames + t0;
            for (int b = 0; b < nb; b++)
                r[b] = st->spec[(size_t)b * st->cstride + k][0];
            if (im) {
                float *m = im + (size_t)k * frames + t0;
                for (int b = 0; b < nb; b++)
                    m[b] = st->spec[(size_t)b * st->cstride + k][1];
            }
        }
    }
}

dm_status dm_stft_forward(dm_stft *st, const float *x, size_t n_samples, float *re, float *im,
                          dm_error *err)
{
    if (!st || !x || !re)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "STFT: NULL argument");
    if (n_samples < 1 || n_samples > (size_t)INT32_MAX / 2)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "STFT: %zu samples is not in 1..%d",
                       n_samples, INT32_MAX / 2);
    stft_forward(st, x, n_samples, re, im);
    return DM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Inverse */

/* Sum over the frames 0..frames-1 that cover padded position p of window[p - t hop]^2. */
static float window_sum(const dm_stft *st, long p, int frames)
{
    const long hop = st->hop, n_fft = st->n_fft;
    long lo = p >= n_fft ? (p - n_fft) / hop + 1 : 0; /* first t with p - t hop < n_fft */
    long hi = p / hop;                                /* last t with t hop <= p         */
    if (p - n_fft + 1 >= 0 && hi <= frames - 1)      /* every frame present: periodic  */
        return st->wsq_period[p % hop];
    if (hi > frames - 1)
        hi = frames - 1;
    float s = 0.0f;
    for (long t = lo; t <= hi; t++) {
        float v = st->window[p - t * hop];
        s += v * v;
    }
    return s;
}

static void stft_inverse(dm_stft *st, const float *re, const float *im, int frames, float *y,
                         size_t n)
{
    const int n_fft = st->n_fft, bins = st->bins;
    const float scale = 1.0f / (float)n_fft;
    const float *w = st->window;
    memset(y, 0, n * sizeof *y);
    for (int t0 = 0; t0 < frames; t0 += DM_STFT_BLOCK) {
        int nb = frames - t0 < DM_STFT_BLOCK ? frames - t0 : DM_STFT_BLOCK;
        for (int k = 0; k < bins; k++) {
            const float *r = re + (size_t)k * frames + t0;
            const float *m = im + (size_t)k * frames + t0;
            for (int b = 0; b < nb; b++) {
                st->spec[(size_t)b * st->cstride + k][0] = r[b];
                st->spec[(size_t)b * st->cstride + k][1] = m[b];
            }
        }
        for (int b = 0; b < nb; b++) {
            fftwf_complex *c = st->spec + (size_t)b * st->cstride;
            c[0][1] = 0.0f; /* a real signal's DC and Nyquist bins are real */
            c[bins - 1][1] = 0.0f;
            fftwf_execute_dft_c2r(st->inverse, c, st->frame);
            long start = (long)(t0 + b) * st->hop - st->pad;
            int j0 = start < 0 ? (int)-start : 0;
            long j1 = (long)n - start < n_fft ? (long)n - start : n_fft;
            for (long j = j0; j < j1; j++)
                y[start + j] += st->frame[j] * (w[j] * scale);
        }
    }
    for (size_t i = 0; i < n; i++) {
        float s = window_sum(st, (long)i + st->pad, frames);
        if (s > FLT_MIN)
            y[i] /= s;
    }
}

dm_status dm_stft_inverse(dm_stft *st, const float *re, const float *im, int frames, float *y,
                          size_t n_samples, dm_error *err)
{
    if (!st || !re || !im || !y)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "inverse STFT: NULL argument");
    if (frames < 1)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "inverse STFT: %d frames", frames);
    if (n_samples < 1 || n_samples > (size_t)INT32_MAX / 2)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "inverse STFT: %zu samples is not in 1..%d",
                       n_samples, INT32_MAX / 2);
    stft_inverse(st, re, im, frames, y, n_samples);
    return DM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Adjoint of the forward transform (back-propagation through the STFT)
 *
 * Forward, frame t: f[j] = w[j] xpad[t hop + j], re[k] = sum_j f[j] cos(2 pi k j / N),
 * im[k] = -sum_j f[j] sin(2 pi k j / N), k = 0..N/2. So
 *   dL/df[j] = sum_k dre[k] cos(2 pi k j / N) - dim[k] sin(2 pi k j / N).
 * FFTW's c2r of Y (Hermitian, unnormalised) gives Re Y[0] + Re Y[N/2] (-1)^j
 *   + 2 sum_{0<k<N/2} (Re Y[k] cos - Im Y[k] sin): with Y[k] = (dre + i dim)[k], halved for
 * 0 < k < N/2, it is exactly dL/df (the sin terms of DC and Nyquist vanish, matching c2r
 * ignoring their imaginary parts). Then dL/dxpad[t hop + j] += w[j] dL/df[j], and the padding's
 * transpose sends padded position p (original coordinate p - N/2) to the sample it copied. */

static void stft_backward(dm_stft *st, const float *dre, const float *dim, int frames, float *dx,
                          size_t n)
{
    const int n_fft = st->n_fft, bins = st->bins;
    const float *w = st->window;
    for (int t0 = 0; t0 < frames; t0 += DM_STFT_BLOCK) {
        int nb = frames - t0 < DM_STFT_BLOCK ? frames - t0 : DM_STFT_BLOCK;
        for (int k = 0; k < bins; k++) {
            const float *r = dre + (size_t)k * frames + t0;
            const float *m = dim + (size_t)k * frames + t0;
            const float h = (k == 0 || k == bins - 1) ? 1.0f : 0.5f;
            for (int b = 0; b < nb; b++) {
                st->spec[(size_t)b * st->cstride + k][0] = h * r[b];
                st->spec[(size_t)b * st->cstride + k][1] = h * m[b];
            }
        }
        for (int b = 0; b < nb; b++) {
            fftwf_complex *c = st->spec + (size_t)b * st->cstride;
            c[0][1] = 0.0f;
            c[bins - 1][1] = 0.0f;
            fftwf_execute_dft_c2r(st->inverse, c, st->frame);
            long start = (long)(t0 + b) * st->hop - st->pad;
            if (start >= 0 && start + n_fft <= (long)n) {
                float *d = dx + start;
                for (int j = 0; j < n_fft; j++)
                    d[j] += w[j] * st->frame[j];
            } else {
                for (int j = 0; j < n_fft; j++) {
                    long src = pad_source((long)n, start + j, st->pad_mode);
                    if (src >= 0)
                        dx[src] += w[j] * st->frame[j];
                }
            }
        }
    }
}

dm_status dm_stft_backward(dm_stft *st, const float *dre, const float *dim, int frames,
                           float *dx, size_t n_samples, dm_error *err)
{
    if (!st || !dre || !dim || !dx)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "STFT backward: NULL argument");
    if (n_samples < 1 || n_samples > (size_t)INT32_MAX / 2)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "STFT backward: %zu samples is not in 1..%d",
                       n_samples, INT32_MAX / 2);
    if (frames != dm_stft_frames(st, n_samples))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "STFT backward: %d frames, a signal of %zu samples has %d", frames,
                       n_samples, dm_stft_frames(st, n_samples));
    stft_backward(st, dre, dim, frames, dx, n_samples);
    return DM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Magnitudes and dB */

void dm_spec_magnitude(const float *re, const float *im, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = sqrtf(re[i] * re[i] + im[i] * im[i]);
}

void dm_spec_power(const float *re, const float *im, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = re[i] * re[i] + im[i] * im[i];
}

void dm_power_to_db(const float *x, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = 10.0f * log10f(x[i] > 1e-10f ? x[i] : 1e-10f);
}

/* ------------------------------------------------------------------------------------------ */
/* Mel filterbank and MFCC */

struct dm_mel {
    int n_mels, n_fft, bins;
    int *first;          /* n_mels: first bin with a nonzero weight         */
    int *count;          /* n_mels: bins from first on (0 for an empty band) */
    size_t *offset;      /* n_mels: start of the band's weights in weights  */
    float *weights;
    float *dct;          /* n_mels x n_mels, row k = DCT-II coefficient k    */
};

static double hz_to_mel(double f, int htk)
{
    if (htk)
        return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}

static double mel_to_hz(double m, int htk)
{
    if (htk)
        return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
}

void dm_mel_free(dm_mel *mel)
{
    if (!mel)
        return;
    dm_free(mel->first);
    dm_free(mel->count);
    dm_free(mel->offset);
    dm_free(mel->weights);
    dm_free(mel->dct);
    dm_free(mel);
}

dm_status dm_mel_create(double sample_rate, int n_fft, int n_mels, double fmin, double fmax,
                        int htk, dm_mel **out, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!out)
        return dm_fail(err, bad, "mel filterbank: no output pointer");
    *out = NULL;
    if (!(sample_rate >= 1.0 && sample_rate <= 1e7))
        return dm_fail(err, bad, "mel filterbank: sample rate %g is not in 1..1e7", sample_rate);
    if (n_fft < 4 || n_fft > (1 << 20) || n_fft % 2 != 0)
        return dm_fail(err, bad, "mel filterbank: n_fft %d is not an even number in 4..%d", n_fft,
                       1 << 20);
    if (n_mels < 1 || n_mels > 4096)
        return dm_fail(err, bad, "mel filterbank: n_mels %d is not in 1..4096", n_mels);
    if (fmax <= 0.0)
        fmax = sample_rate / 2.0;
    if (!(fmin >= 0.0 && fmin < fmax && fmax <= sample_rate / 2.0))
        return dm_fail(err, bad, "mel filterbank: need 0 <= fmin (%g) < fmax (%g) <= %g", fmin,
                       fmax, sample_rate / 2.0);

    const int bins = n_fft / 2 + 1, n_edges = n_mels + 2;
    dm_mel *mel = dm_alloc(1, sizeof *mel);
    double *edges = dm_alloc((size_t)n_edges, sizeof(double));
    double *dense = dm_alloc((size_t)n_mels * bins, sizeof(double));
    if (mel) {
        mel->n_mels = n_mels, mel->n_fft = n_fft, mel->bins = bins;
        mel->first = dm_alloc((size_t)n_mels, sizeof(int));
        mel->count = dm_alloc((size_t)n_mels, sizeof(int));
        mel->offset = dm_alloc((size_t)n_mels, sizeof(size_t));
        mel->dct = dm_alloc((size_t)n_mels * n_mels, sizeof(float));
    }
    if (!mel || !edges || !dense || !mel->first || !mel->count || !mel->offset || !mel->dct) {
        dm_free(edges);
        dm_free(dense);
        dm_mel_free(mel);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "mel filterbank: out of memory");
    }

    /* librosa.mel_frequencies: n_mels + 2 points evenly spaced in mel (np.linspace). */
    double m0 = hz_to_mel(fmin, htk), m1 = hz_to_mel(fmax, htk);
    double step = (m1 - m0) / (n_edges - 1);
    for (int i = 0; i < n_edges; i++)
        edges[i] = mel_to_hz(i == n_edges - 1 ? m1 : m0 + i * step, htk);

    /* librosa.filters.mel: triangles, then norm="slaney" (2 / width in Hz). */
    size_t total = 0;
    for (int m = 0; m < n_mels; m++) {
        double lo_w = edges[m + 1] - edges[m], hi_w = edges[m + 2] - edges[m + 1];
        double enorm = 2.0 / (edges[m + 2] - edges[m]);
        int first = -1, last = -2;
        for (int k = 0; k < bins; k++) {
            double f = (double)k * sample_rate / n_fft;
            double lower = (f - edges[m]) / lo_w, upper = (edges[m + 2] - f) / hi_w;
            double v = lower < upper ? lower : upper;
            v = v > 0.0 ? v * enorm : 0.0;
            dense[(size_t)m * bins + k] = v;
            if (v > 0.0) {
                if (first < 0)
                    first = k;
                last = k;
            }
        }
        mel->first[m] = first < 0 ? 0 : first;
        mel->count[m] = last - first + 1 > 0 ? last - first + 1 : 0;
        mel->offset[m] = total;
        total += (size_t)mel->count[m];
    }
    mel->weights = dm_alloc(total, sizeof(float));
    if (!mel->weights) {
        dm_free(edges);
        dm_free(dense);
        dm_mel_free(mel);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "mel filterbank: out of memory");
    }
    for (int m = 0; m < n_mels; m++)
        for (int c = 0; c < mel->count[m]; c++)
            mel->weights[mel->offset[m] + c] = (float)dense[(size_t)m * bins + mel->first[m] + c];

    /* Orthonormal DCT-II (scipy.fft.dct(type=2, norm="ortho")). */
    for (int k = 0; k < n_mels; k++) {
        double f = sqrt((k == 0 ? 1.0 : 2.0) / n_mels);
        for (int i = 0; i < n_mels; i++)
            mel->dct[(size_t)k * n_mels + i] = (float)(f * cos(DM_PI * k * (2 * i + 1) / (2.0 * n_mels)));
    }
    dm_free(edges);
    dm_free(dense);
    *out = mel;
    return DM_OK;
}

int dm_mel_n_mels(const dm_mel *mel) { return mel->n_mels; }
int dm_mel_bins(const dm_mel *mel) { return mel->bins; }

void dm_mel_filters(const dm_mel *mel, float *out)
{
    memset(out, 0, (size_t)mel->n_mels * mel->bins * sizeof *out);
    for (int m = 0; m < mel->n_mels; m++)
        for (int c = 0; c < mel->count[m]; c++)
            out[(size_t)m * mel->bins + mel->first[m] + c] = mel->weights[mel->offset[m] + c];
}

dm_status dm_mel_apply(const dm_mel *mel, const float *power, int frames, float *out,
                       dm_error *err)
{
    if (!mel || !power || !out || frames < 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "mel filterbank: bad argument");
    const size_t T = (size_t)frames;
    for (int m = 0; m < mel->n_mels; m++) {
        float *o = out + (size_t)m * T;
        memset(o, 0, T * sizeof *o);
        const float *wm = mel->weights + mel->offset[m];
        for (int c = 0; c < mel->count[m]; c++) {
            const float wv = wm[c];
            const float *p = power + (size_t)(mel->first[m] + c) * T;
            for (size_t t = 0; t < T; t++)
                o[t] += wv * p[t];
        }
    }
    return DM_OK;
}

dm_status dm_mel_mfcc(const dm_mel *mel, const float *logmel, int frames, int n_mfcc, float *out,
                      dm_error *err)
{
    if (!mel || !logmel || !out || frames < 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "MFCC: bad argument");
    if (n_mfcc < 1 || n_mfcc > mel->n_mels)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "MFCC: n_mfcc %d is not in 1..n_mels (%d)",
                       n_mfcc, mel->n_mels);
    const size_t T = (size_t)frames;
    const int N = mel->n_mels;
    for (int k = 0; k < n_mfcc; k++) {
        float *o = out + (size_t)k * T;
        memset(o, 0, T * sizeof *o);
        const float *d = mel->dct + (size_t)k * N;
        for (int i = 0; i < N; i++) {
            const float dv = d[i];
            const float *l = logmel + (size_t)i * T;
            for (size_t t = 0; t < T; t++)
                o[t] += dv * l[t];
        }
    }
    return DM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Spectral shape features. Sums in double, over bins in increasing order (as numpy's). */

static dm_status feature_args(const char *what, const float *mag, int n_fft, int frames,
                              const float *out, dm_error *err)
{
    if (!mag || !out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: NULL argument", what);
    if (n_fft < 2 || n_fft % 2 != 0 || frames < 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: n_fft %d / frames %d", what, n_fft,
                       frames);
    return DM_OK;
}

dm_status dm_spectral_centroid(const float *mag, int n_fft, int frames, double sample_rate,
                               float *out, dm_error *err)
{
    dm_status s = feature_args("spectral centroid", mag, n_fft, frames, out, err);
    if (s != DM_OK)
        return s;
    const int bins = n_fft / 2 + 1;
    const double df = sample_rate / n_fft;
    for (int t = 0; t < frames; t++) {
        double num = 0.0, den = 0.0;
        for (int k = 0; k < bins; k++) {
            double v = mag[(size_t)k * frames + t];
            num += k * df * v;
            den += fabs(v);
        }
        /* librosa normalises each frame by its L1 norm unless that is below tiny(float32). */
        out[t] = (float)(den >= FLT_MIN ? num / den : num);
    }
    return DM_OK;
}

dm_status dm_spectral_flatness(const float *mag, int n_fft, int frames, float *out,
                               dm_error *err)
{
    dm_status s = feature_args("spectral flatness", mag, n_fft, frames, out, err);
    if (s != DM_OK)
        return s;
    const int bins = n_fft / 2 + 1;
    for (int t = 0; t < frames; t++) {
        double logsum = 0.0, sum = 0.0;
        for (int k = 0; k < bins; k++) {
            double v = mag[(size_t)k * frames + t];
            v = v * v;
            if (v < 1e-10)
                v = 1e-10;
            logsum += log(v);
            sum += v;
        }
        out[t] = (float)(exp(logsum / bins) / (sum / bins));
    }
    return DM_OK;
}

dm_status dm_spectral_rolloff(const float *mag, int n_fft, int frames, double sample_rate,
                              double roll_percent, float *out, dm_error *err)
{
    dm_status s = feature_args("spectral rolloff", mag, n_fft, frames, out, err);
    if (s != DM_OK)
        return s;
    if (!(roll_percent > 0.0 && roll_percent < 1.0))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "spectral rolloff: roll_percent %g is not in (0, 1)", roll_percent);
    const int bins = n_fft / 2 + 1;
    const double df = sample_rate / n_fft;
    for (int t = 0; t < frames; t++) {
        double total = 0.0;
        for (int k = 0; k < bins; k++)
            total += mag[(size_t)k * frames + t];
        double threshold = roll_percent * total, cum = 0.0;
        int k = 0;
        for (; k < bins; k++) {
            cum += mag[(size_t)k * frames + t];
            if (cum >= threshold)
                break;
        }
        out[t] = (float)((k < bins ? k : bins - 1) * df);
    }
    return DM_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Fast Griffin-Lim */

dm_griffin_lim_params dm_griffin_lim_default_params(void)
{
    dm_griffin_lim_params p = {.n_iter = 64, .momentum = 0.99f, .random_init = 0, .seed = 0};
    return p;
}

size_t dm_griffin_lim_scratch(const dm_stft *st, int frames)
{
    return 6 * (size_t)st->bins * (size_t)(frames > 0 ? frames : 0);
}

/* || |re + i im| - mag ||_F / ||mag||_F, summed in double in index order. */
static float spectral_convergence(const float *re, const float *im, const float *mag, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = sqrt((double)re[i] * re[i] + (double)im[i] * im[i]) - mag[i];
        num += a * a;
        den += (double)mag[i] * mag[i];
    }
    return den > 0.0 ? (float)sqrt(num / den) : 0.0f;
}

dm_status dm_griffin_lim(dm_stft *st, const float *mag, int frames, float *y, size_t n_samples,
                         const dm_griffin_lim_params *params, float *sc, float *scratch,
                         dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!st || !mag || !y)
        return dm_fail(err, bad, "Griffin-Lim: NULL argument");
    dm_griffin_lim_params p = params ? *params : dm_griffin_lim_default_params();
    if (n_samples < 1 || n_samples > (size_t)INT32_MAX / 2)
        return dm_fail(err, bad, "Griffin-Lim: %zu samples is not in 1..%d", n_samples,
                       INT32_MAX / 2);
    if (frames != dm_stft_frames(st, n_samples))
        return dm_fail(err, bad, "Griffin-Lim: %d frames, but %zu samples make %d", frames,
                       n_samples, dm_stft_frames(st, n_samples));
    if (p.n_iter < 0 || p.n_iter > 100000)
        return dm_fail(err, bad, "Griffin-Lim: n_iter %d is not in 0..100000", p.n_iter);
    if (!(p.momentum >= 0.0f && p.momentum <= 1.5f))
        return dm_fail(err, bad, "Griffin-Lim: momentum %g is not in 0..1.5", (double)p.momentum);

    const size_t n = (size_t)st->bins * (size_t)frames;
    float *owned = NULL;
    if (!scratch) {
        owned = dm_alloc(dm_griffin_lim_scratch(st, frames), sizeof(float));
        if (!owned)
            return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "Griffin-Lim: out of memory");
        scratch = owned;
    }
    float *x_re = scratch, *x_im = scratch + n;          /* S e^{i phase}: the estimate  */
    float *t_re = scratch + 2 * n, *t_im = scratch + 3 * n; /* t_n = STFT(iSTFT(x))       */
    float *q_re = scratch + 4 * n, *q_im = scratch + 5 * n; /* t_{n-1}                    */

    if (p.random_init) {
        dm_rng_uniform(p.seed, 0, 0, x_im, n);
        for (size_t i = 0; i < n; i++) {
            double a = 2.0 * DM_PI * x_im[i];
            x_re[i] = mag[i] * (float)cos(a);
            x_im[i] = mag[i] * (float)sin(a);
        }
    } else {
        memcpy(x_re, mag, n * sizeof *x_re);
        memset(x_im, 0, n * sizeof *x_im);
    }
    memset(q_re, 0, n * sizeof *q_re);
    memset(q_im, 0, n * sizeof *q_im);

    /* c_n = t_n + a (t_n - t_{n-1}) has the phase of t_n - a / (1 + a) t_{n-1} (librosa). */
    const float beta = p.momentum / (1.0f + p.momentum);
    for (int it = 0; it < p.n_iter; it++) {
        stft_inverse(st, x_re, x_im, frames, y, n_samples);
        stft_forward(st, y, n_samples, t_re, t_im);
        if (sc)
            sc[it] = spectral_convergence(t_re, t_im, mag, n);
        for (size_t i = 0; i < n; i++) {
            float cr = t_re[i] - beta * q_re[i], ci = t_im[i] - beta * q_im[i];
            float g = mag[i] / (sqrtf(cr * cr + ci * ci) + FLT_MIN);
            x_re[i] = cr * g;
            x_im[i] = ci * g;
        }
        float *s = q_re;
        q_re = t_re, t_re = s;
        s = q_im;
        q_im = t_im, t_im = s;
    }
    stft_inverse(st, x_re, x_im, frames, y, n_samples);
    if (sc) {
        stft_forward(st, y, n_samples, t_re, t_im);
        sc[p.n_iter] = spectral_convergence(t_re, t_im, mag, n);
    }
    dm_free(owned);
    return DM_OK;
}
