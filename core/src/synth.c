/* The synthetic dataset: three classes of one-shots with a known distribution
 * (tones, band-pass noise bursts, clicks), drawn from the counter-based RNG so
 * that clip (cls, seed, index) is the same on every machine and thread count;
 * two statistics that tell them apart; and a writer for a labelled folder. */
#include "dmaudio_audio.h"
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const double PI = 3.14159265358979323846;

static const char *const class_names[DM_SYNTH_N_CLASSES] = {"tone", "noise", "click"};

const char *dm_synth_class_name(int cls)
{
    return cls >= 0 && cls < DM_SYNTH_N_CLASSES ? class_names[cls] : "unknown";
}

int dm_synth_class_from_name(const char *name, int *out)
{
    for (int i = 0; name && i < DM_SYNTH_N_CLASSES; i++) {
        if (strcmp(name, class_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

/* lo * (hi / lo)^u: log-uniform in [lo, hi) for u uniform in [0, 1). */
static double log_uniform(double lo, double hi, float u)
{
    return lo * pow(hi / lo, (double)u);
}

static double lin_uniform(double lo, double hi, float u)
{
    return lo + (hi - lo) * (double)u;
}

/* Number of uniform draws one clip's parameters use (stream 8 index + 2 cls). */
#define N_DRAWS 16

static void tone(const float *u, int rate, int length, float *out)
{
    double f = fmin(log_uniform(200.0, 800.0, u[0]), 0.45 * rate);
    double tau = lin_uniform(0.05, 0.3, u[1]);
    double h = lin_uniform(0.05, 0.2, u[2]);
    double f2 = fmin(2.0 * f, 0.45 * rate);
    for (int n = 0; n < length; n++) {
        double t = (double)n / rate;
        out[n] = (float)(exp(-t / tau) * (sin(2.0 * PI * f * t) + h * sin(2.0 * PI * f2 * t)));
    }
}

/* White noise (stream 8 index + 2 cls + 1) through the RBJ band-pass biquad
 * (constant 0 dB peak gain), times exp(-t/tau). */
static void noise(const float *u, uint64_t seed, uint64_t stream, int rate, int length, float *out)
{
    double fc = fmin(log_uniform(1000.0, 4000.0, u[0]), 0.45 * rate);
    double q = lin_uniform(0.7, 2.0, u[1]);
    double tau = lin_uniform(0.02, 0.15, u[2]);
    double w0 = 2.0 * PI * fc / rate, alpha = sin(w0) / (2.0 * q);
    double a0 = 1.0 + alpha;
    double b0 = alpha / a0, b2 = -alpha / a0, a1 = -2.0 * cos(w0) / a0, a2 = (1.0 - alpha) / a0;
    dm_rng_normal(seed, stream + 1, 0, out, (size_t)length);
    double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (int n = 0; n < length; n++) {
        double x = out[n];
        double y = b0 * x + b2 * x2 - a1 * y1 - a2 * y2;
        x2 = x1, x1 = x, y2 = y1, y1 = y;
        out[n] = (float)(y * exp(-(double)n / rate / tau));
    }
}

/* 1..3 signed impulses 1..3 ms apart through a 2-pole resonator
 * y[n] = e[n] + 2 r cos(w) y[n-1] - r^2 y[n-2], r = exp(-1 / (tau rate)),
 * scaled by sin(w) (unit amplitude ringing), plus 0.3 e[n] (the raw clicks). */
static void click(const float *u, int rate, int length, float *out)
{
    int count = 1 + (int)(3.0f * u[0]);
    if (count > 3)
        count = 3;
    double fr = fmin(log_uniform(5000.0, 10000.0, u[1]), 0.45 * rate);
    double tau = lin_uniform(0.0002, 0.001, u[2]);
    double w = 2.0 * PI * fr / rate, r = exp(-1.0 / (tau * rate));
    double c1 = 2.0 * r * cos(w), c2 = -r * r, norm = sin(w);
    memset(out, 0, (size_t)length * sizeof *out);
    double t = 0.0;
    for (int k = 0; k < count; k++) {
        if (k > 0)
            t += lin_uniform(0.001, 0.003, u[2 + k]);
        double gain = k == 0 ? 1.0 : lin_uniform(0.3, 1.0, u[4 + k]);
        double sign = u[7 + k] < 0.5f ? -1.0 : 1.0;
        long pos = lround(t * rate);
        if (pos < length)
            out[pos] += (float)(sign * gain);
    }
    double y1 = 0, y2 = 0;
    for (int n = 0; n < length; n++) {
        double e = out[n];
        double y = e + c1 * y1 + c2 * y2;
        y2 = y1, y1 = y;
        out[n] = (float)(norm * y + 0.3 * e);
    }
}

dm_status dm_synth_clip(int cls, uint64_t seed, uint64_t index, int rate, int length, float *out)
{
    if (cls < 0 || cls >= DM_SYNTH_N_CLASSES || rate < 8000 || rate > DM_AUDIO_MAX_RATE ||
        length < 1 || !out)
        return DM_ERR_INVALID_ARGUMENT;
    const uint64_t stream = 8 * index + 2 * (uint64_t)cls;
    float u[N_DRAWS];
    dm_rng_uniform(seed, stream, 0, u, N_DRAWS);
    double amplitude = lin_uniform(0.3, 0.8, u[15]);
    switch (cls) {
    case DM_SYNTH_TONE:
        tone(u, rate, length, out);
        break;
    case DM_SYNTH_NOISE:
        noise(u, seed, stream, rate, length, out);
        break;
    default:
        click(u, rate, length, out);
        break;
    }
    double peak = 0.0;
    for (int n = 0; n < length; n++)
        peak = fmax(peak, fabs((double)out[n]));
    if (peak > 0.0) {
        double g = amplitude / peak;
        for (int n = 0; n < length; n++)
            out[n] = (float)(out[n] * g);
    }
    return DM_OK;
}

void dm_synth_stats_compute(const float *x, int rate, int length, dm_synth_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!x || length < 1 || rate < 1)
        return;
    double e = 0.0, d = 0.0, peak = 0.0;
    for (int n = 0; n < length; n++) {
        e += (double)x[n] * x[n];
        if (n > 0)
            d += ((double)x[n] - x[n - 1]) * ((double)x[n] - x[n - 1]);
        peak = fmax(peak, fabs((double)x[n]));
    }
    st->peak = peak;
    st->rms = sqrt(e / length);
    if (e <= 0.0)
        return;
    st->freq_hz = rate / PI * asin(fmin(1.0, sqrt(d / e) / 2.0));
    double acc = 0.0;
    int n90 = length - 1;
    for (int n = 0; n < length; n++) {
        acc += (double)x[n] * x[n];
        if (acc >= 0.9 * e) {
            n90 = n;
            break;
        }
    }
    st->t90_s = (double)n90 / rate;
}

int dm_synth_classify(const float *x, int rate, int length)
{
    dm_synth_stats st;
    dm_synth_stats_compute(x, rate, length, &st);
    if (st.rms <= 0.0)
        return -1;
    if (st.freq_hz < 1000.0)
        return DM_SYNTH_TONE;
    return st.t90_s < 0.011 ? DM_SYNTH_CLICK : DM_SYNTH_NOISE;
}

/* mkdir -p */
static dm_status make_dirs(const char *dir, dm_error *err)
{
    char buf[PATH_MAX];
    int len = snprintf(buf, sizeof buf, "%s", dir);
    if (len < 0 || (size_t)len >= sizeof buf)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return dm_fail(err, DM_ERR_IO, "%s: cannot create the folder: %s", buf,
                               strerror(errno));
            struct stat sb;
            if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
                return dm_fail(err, DM_ERR_IO, "%s: not a folder", buf);
            *p = c;
            if (c == 0)
                break;
        }
    }
    return DM_OK;
}

dm_status dm_synth_write_dataset(const char *dir, int per_class, uint64_t seed, int rate,
                                 int length, dm_error *err)
{
    if (!dir || !*dir)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "no folder given");
    if (per_class < 1 || rate < 8000 || rate > DM_AUDIO_MAX_RATE || length < 1 ||
        length > DM_AUDIO_MAX_FRAMES)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: bad synthetic dataset (per_class %d, rate %d, length %d)", dir,
                       per_class, rate, length);
    dm_audio a = {.data = dm_alloc((size_t)length, sizeof(float)),
                  .channels = 1,
                  .frames = length,
                  .rate = rate};
    if (!a.data)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    dm_status st = make_dirs(dir, err);
    for (int cls = 0; cls < DM_SYNTH_N_CLASSES && !st; cls++) {
        char path[PATH_MAX];
        const char *name = class_names[cls];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        st = make_dirs(path, err);
        for (int k = 0; k < per_class && !st; k++) {
            int len = snprintf(path, sizeof path, "%s/%s/%s_%04d.wav", dir, name, name, k);
            if (len < 0 || (size_t)len >= sizeof path) {
                st = dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
                break;
            }
            dm_synth_clip(cls, seed, (uint64_t)k, rate, length, a.data);
            char title[64], comment[256];
            snprintf(title, sizeof title, "%s %04d", name, k);
            snprintf(comment, sizeof comment,
                     "dmaudio synth: class=%s seed=%llu index=%d rate=%d length=%d", name,
                     (unsigned long long)seed, k, rate, length);
            dm_audio_write_params wp = dm_audio_write_default_params();
            wp.title = title;
            wp.comment = comment;
            st = dm_audio_write(path, &a, &wp, err);
        }
    }
    dm_free(a.data);
    return st;
}
