/* The FFTW spectral engine: STFT / inverse STFT round trips and properties (impulse,
 * linearity, time shift), and the STFT, mel filterbanks, log-mel, MFCC and spectral shape
 * features against the numpy reference of librosa's definitions (tests/fixtures/spectral.dmfx,
 * written by tests/gen_spectral_fixtures.py in float64); fast Griffin-Lim convergence.
 *
 * Tolerances (max|ours - ref| / max|ref|, per tensor):
 *   STFT -> inverse STFT round trip, float32 random signals   1e-5
 *   STFT and features against the float64 reference           1e-4
 *   properties (linearity, impulse: float32 FFT rounding)     1e-5; time shift: exact
 * Griffin-Lim (chirp + harmonics, 16 kHz, n_fft 512, hop 128, 100 iterations, momentum 0.99,
 * zero initial phase): the spectral convergence must fall over every block of 20 iterations,
 * end below GL_FINAL_SC (0.08; measured 0.069) and below a quarter of its first value, and
 * below what classic Griffin-Lim (momentum 0, measured 0.096) reaches. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_spectral.h"

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define RT_TOL 1e-5
#define REF_TOL 1e-4
#define PROP_TOL 1e-5
#define GL_ITERS 100
#define GL_FINAL_SC 0.08

static const fx_file *fixture(void **state)
{
    return *state;
}

static float *random_signal(size_t n, uint64_t seed)
{
    float *x = zeros(n);
    dm_rng_normal(seed, 0, 0, x, n);
    return x;
}

static dm_stft *make_stft(int n_fft, int hop, dm_stft_pad pad)
{
    dm_stft *st = NULL;
    dm_error err = {0};
    if (dm_stft_create_padded(n_fft, hop, pad, &st, &err) != DM_OK)
        fail_msg("dm_stft_create_padded(%d, %d): %s", n_fft, hop, err.message);
    return st;
}

/* ---- round trip ---- */

static void test_round_trip(void **state)
{
    (void)state;
    static const struct {
        int n_fft, hop;
        dm_stft_pad pad;
        size_t n;
    } cases[] = {
        {512, 128, DM_STFT_PAD_REFLECT, 16000},  {512, 256, DM_STFT_PAD_CONSTANT, 7777},
        {400, 100, DM_STFT_PAD_REFLECT, 4001},   {1024, 160, DM_STFT_PAD_CONSTANT, 9000},
        {64, 32, DM_STFT_PAD_REFLECT, 1000},     {256, 1, DM_STFT_PAD_REFLECT, 600},
        {30, 7, DM_STFT_PAD_CONSTANT, 513},      {2048, 512, DM_STFT_PAD_REFLECT, 1500},
        {128, 64, DM_STFT_PAD_REFLECT, 50},      {16, 8, DM_STFT_PAD_CONSTANT, 3},
    };
    double worst = 0.0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dm_stft *st = make_stft(cases[c].n_fft, cases[c].hop, cases[c].pad);
        size_t n = cases[c].n;
        int frames = dm_stft_frames(st, n);
        assert_int_equal(frames, 1 + (int)(n / (size_t)cases[c].hop));
        size_t nb = (size_t)dm_stft_bins(st) * frames;
        float *x = random_signal(n, 100 + c), *y = zeros(n);
        float *re = zeros(nb), *im = zeros(nb);
        dm_error err = {0};
        assert_int_equal(dm_stft_forward(st, x, n, re, im, &err), DM_OK);
        assert_int_equal(dm_stft_inverse(st, re, im, frames, y, n, &err), DM_OK);
        double e = rel_err(y, x, n);
        if (e > worst)
            worst = e;
        if (!(e <= RT_TOL))
            fail_msg("round trip n_fft %d hop %d n %zu: relative error %.3g", cases[c].n_fft,
                     cases[c].hop, n, e);
        free(x), free(y), free(re), free(im);
        dm_stft_free(st);
    }
    print_message("# STFT -> iSTFT round trip: worst relative error %.3g over %zu cases\n", worst,
                  sizeof cases / sizeof cases[0]);
}

/* ---- against numpy ---- */

static void test_stft_reference(void **state)
{
    const fx_file *f = fixture(state);
    const char *cases[] = {"stft_a", "stft_b", "stft_c"};
    for (int c = 0; c < 3; c++) {
        size_t ncfg;
        char key[64];
        snprintf(key, sizeof key, "%s.cfg", cases[c]);
        const int32_t *cfg = fx_i32(f, key, &ncfg);
        assert_non_null(cfg);
        dm_stft *st = make_stft(cfg[0], cfg[1], cfg[2] ? DM_STFT_PAD_CONSTANT : DM_STFT_PAD_REFLECT);
        size_t n = (size_t)cfg[3];
        const float *x = need_f32(f, "%s.x", cases[c]);
        const float *rr = need_f32(f, "%s.re", cases[c]), *ri = need_f32(f, "%s.im", cases[c]);
        int frames = dm_stft_frames(st, n);
        size_t nb = (size_t)dm_stft_bins(st) * frames;
        snprintf(key, sizeof key, "%s.re", cases[c]);
        const fx_tensor *t = fx_get(f, key);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->dims[0], dm_stft_bins(st));
        assert_int_equal(t->dims[1], frames);
        float *re = zeros(nb), *im = zeros(nb);
        assert_int_equal(dm_stft_forward(st, x, n, re, im, NULL), DM_OK);
        /* relative to the largest magnitude of the spectrum */
        float *both = zeros(2 * nb), *rboth = zeros(2 * nb);
        memcpy(both, re, nb * sizeof *re), memcpy(both + nb, im, nb * sizeof *im);
        memcpy(rboth, rr, nb * sizeof *rr), memcpy(rboth + nb, ri, nb * sizeof *ri);
        print_message("# %s: STFT relative error %.3g\n", cases[c], rel_err(both, rboth, 2 * nb));
        assert_close(cases[c], both, rboth, 2 * nb, REF_TOL);
        free(re), free(im), free(both), free(rboth);
        dm_stft_free(st);
    }
}

/* ---- properties ---- */

/* A unit impulse at sample p: X[k, t] = w[j] exp(-2 pi i k j / n_fft), j = p + n_fft/2 - t hop,
 * for the frames that cover it, 0 elsewhere (constant padding). */
static void test_impulse(void **state)
{
    (void)state;
    const int n_fft = 256, hop = 64;
    const size_t n = 2000, p = 777;
    dm_stft *st = make_stft(n_fft, hop, DM_STFT_PAD_CONSTANT);
    const int frames = dm_stft_frames(st, n), bins = dm_stft_bins(st);
    const size_t nb = (size_t)bins * frames;
    float *x = zeros(n), *re = zeros(nb), *im = zeros(nb), *er = zeros(nb), *ei = zeros(nb);
    x[p] = 1.0f;
    assert_int_equal(dm_stft_forward(st, x, n, re, im, NULL), DM_OK);
    const float *w = dm_stft_window(st);
    for (int t = 0; t < frames; t++) {
        long j = (long)p + n_fft / 2 - (long)t * hop;
        if (j < 0 || j >= n_fft)
            continue;
        for (int k = 0; k < bins; k++) {
            double a = -2.0 * M_PI * (double)k * (double)j / n_fft;
            er[(size_t)k * frames + t] = (float)(w[j] * cos(a));
            ei[(size_t)k * frames + t] = (float)(w[j] * sin(a));
        }
    }
    assert_close("impulse re", re, er, nb, PROP_TOL);
    assert_close("impulse im", im, ei, nb, PROP_TOL);
    free(x), free(re), free(im), free(er), free(ei);
    dm_stft_free(st);
}

static void test_linearity(void **state)
{
    (void)state;
    const size_t n = 5000;
    dm_stft *st = make_stft(512, 128, DM_STFT_PAD_REFLECT);
    const int frames = dm_stft_frames(st, n);
    const size_t nb = (size_t)dm_stft_bins(st) * frames;
    float *x = random_signal(n, 1), *y = random_signal(n, 2), *z = zeros(n);
    const float a = 0.75f, b = -2.5f;
    for (size_t i = 0; i < n; i++)
        z[i] = a * x[i] + b * y[i];
    float *xr = zeros(nb), *xi = zeros(nb), *yr = zeros(nb), *yi = zeros(nb);
    float *zr = zeros(nb), *zi = zeros(nb), *cr = zeros(nb), *ci = zeros(nb);
    dm_stft_forward(st, x, n, xr, xi, NULL);
    dm_stft_forward(st, y, n, yr, yi, NULL);
    dm_stft_forward(st, z, n, zr, zi, NULL);
    for (size_t i = 0; i < nb; i++) {
        cr[i] = a * xr[i] + b * yr[i];
        ci[i] = a * xi[i] + b * yi[i];
    }
    assert_close("linearity re", zr, cr, nb, PROP_TOL);
    assert_close("linearity im", zi, ci, nb, PROP_TOL);
    /* the inverse is linear too */
    float *ix = zeros(n), *iy = zeros(n), *iz = zeros(n), *ic = zeros(n);
    dm_stft_inverse(st, xr, xi, frames, ix, n, NULL);
    dm_stft_inverse(st, yr, yi, frames, iy, n, NULL);
    dm_stft_inverse(st, zr, zi, frames, iz, n, NULL);
    for (size_t i = 0; i < n; i++)
        ic[i] = a * ix[i] + b * iy[i];
    assert_close("inverse linearity", iz, ic, n, PROP_TOL);
    free(x), free(y), free(z), free(xr), free(xi), free(yr), free(yi), free(zr), free(zi);
    free(cr), free(ci), free(ix), free(iy), free(iz), free(ic);
    dm_stft_free(st);
}

/* Delaying a signal by s hops delays its interior frames by s frames (bit for bit: the
 * frames hold the same samples). */
static void test_time_shift(void **state)
{
    (void)state;
    const int n_fft = 512, hop = 128, s = 3;
    const size_t n = 6000, shift = (size_t)s * hop;
    dm_stft *st = make_stft(n_fft, hop, DM_STFT_PAD_REFLECT);
    float *x = random_signal(n, 3), *x2 = zeros(n + shift);
    memcpy(x2 + shift, x, n * sizeof *x);
    dm_rng_normal(4, 0, 0, x2, shift); /* arbitrary content before */
    const int f1 = dm_stft_frames(st, n), f2 = dm_stft_frames(st, n + shift);
    const int bins = dm_stft_bins(st);
    float *r1 = zeros((size_t)bins * f1), *i1 = zeros((size_t)bins * f1);
    float *r2 = zeros((size_t)bins * f2), *i2 = zeros((size_t)bins * f2);
    dm_stft_forward(st, x, n, r1, i1, NULL);
    dm_stft_forward(st, x2, n + shift, r2, i2, NULL);
    int compared = 0;
    for (int t = 0; t < f1; t++) {
        long start = (long)t * hop - n_fft / 2;
        if (start < 0 || start + n_fft > (long)n)
            continue; /* frames that see the padding differ */
        for (int k = 0; k < bins; k++) {
            assert_true(r1[(size_t)k * f1 + t] == r2[(size_t)k * f2 + t + s]);
            assert_true(i1[(size_t)k * f1 + t] == i2[(size_t)k * f2 + t + s]);
        }
        compared++;
    }
    assert_true(compared > 30);
    free(x), free(x2), free(r1), free(i1), free(r2), free(i2);
    dm_stft_free(st);
}

/* Separate objects in separate threads (created concurrently: the planner lock) give the same
 * numbers as one object in one thread. */
static void test_threads(void **state)
{
    (void)state;
    const size_t n = 4000;
    const int jobs = 8;
    float *x = random_signal(n, 9);
    dm_stft *ref = make_stft(400, 100, DM_STFT_PAD_REFLECT);
    const size_t nb = (size_t)dm_stft_bins(ref) * dm_stft_frames(ref, n);
    float *rr = zeros(nb), *ri = zeros(nb);
    dm_stft_forward(ref, x, n, rr, ri, NULL);
    float *out = zeros(2 * nb * jobs);
    int ok[8] = {0};
#pragma omp parallel for num_threads(4) schedule(static, 1)
    for (int j = 0; j < jobs; j++) {
        dm_stft *st = NULL;
        if (dm_stft_create(400, 100, &st, NULL) == DM_OK &&
            dm_stft_forward(st, x, n, out + 2 * nb * j, out + 2 * nb * j + nb, NULL) == DM_OK)
            ok[j] = 1;
        dm_stft_free(st);
    }
    for (int j = 0; j < jobs; j++) {
        assert_true(ok[j]);
        assert_memory_equal(out + 2 * nb * j, rr, nb * sizeof *rr);
        assert_memory_equal(out + 2 * nb * j + nb, ri, nb * sizeof *ri);
    }
    free(x), free(rr), free(ri), free(out);
    dm_stft_free(ref);
}

/* ---- mel, log-mel, MFCC, shape features against numpy ---- */

static void test_mel_filters(void **state)
{
    const fx_file *f = fixture(state);
    const char *cases[] = {"mel_slaney", "mel_htk"};
    for (int c = 0; c < 2; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s.cfg", cases[c]);
        const int32_t *cfg = fx_i32(f, key, NULL);
        assert_non_null(cfg);
        const float *fc = need_f32(f, "%s.fcfg", cases[c]);
        const float *ref = need_f32(f, "%s.filters", cases[c]);
        dm_mel *mel = NULL;
        dm_error err = {0};
        if (dm_mel_create(fc[0], cfg[0], cfg[1], fc[1], fc[2], cfg[2], &mel, &err) != DM_OK)
            fail_msg("%s: %s", cases[c], err.message);
        assert_int_equal(dm_mel_n_mels(mel), cfg[1]);
        size_t nw = (size_t)cfg[1] * dm_mel_bins(mel);
        float *w = zeros(nw);
        dm_mel_filters(mel, w);
        print_message("# %s filters: relative error %.3g\n", cases[c], rel_err(w, ref, nw));
        assert_close(cases[c], w, ref, nw, REF_TOL);
        free(w);
        dm_mel_free(mel);
    }
}

static void test_features(void **state)
{
    const fx_file *f = fixture(state);
    const int32_t *cfg = fx_i32(f, "feat.cfg", NULL);
    assert_non_null(cfg);
    const int sr = cfg[0], n_fft = cfg[1], hop = cfg[2], n_mels = cfg[3], n_mfcc = cfg[4];
    size_t n;
    const float *x = fx_f32(f, "feat.x", &n);
    assert_non_null(x);
    const float *mag = need_f32(f, "feat.mag");
    dm_stft *st = make_stft(n_fft, hop, DM_STFT_PAD_REFLECT);
    const int T = dm_stft_frames(st, n), bins = dm_stft_bins(st);
    const size_t nb = (size_t)bins * T;
    assert_int_equal(fx_get(f, "feat.mag")->dims[1], T);

    /* end to end: our STFT's magnitudes */
    float *re = zeros(nb), *im = zeros(nb), *m = zeros(nb), *pw = zeros(nb);
    dm_stft_forward(st, x, n, re, im, NULL);
    dm_spec_magnitude(re, im, nb, m);
    print_message("# magnitude: relative error %.3g\n", rel_err(m, mag, nb));
    assert_close("magnitude", m, mag, nb, REF_TOL);

    /* each feature from the reference's float32 input */
    for (size_t i = 0; i < nb; i++)
        pw[i] = mag[i] * mag[i];
    dm_mel *mel = NULL;
    assert_int_equal(dm_mel_create(sr, n_fft, n_mels, 0.0, 0.0, 0, &mel, NULL), DM_OK);
    float *mp = zeros((size_t)n_mels * T), *lm = zeros((size_t)n_mels * T);
    float *mf = zeros((size_t)n_mfcc * T), *v = zeros((size_t)T);
    assert_int_equal(dm_mel_apply(mel, pw, T, mp, NULL), DM_OK);
    double e;
    print_message("# mel power: relative error %.3g\n",
                  e = rel_err(mp, need_f32(f, "feat.mel"), (size_t)n_mels * T));
    assert_close("mel power", mp, need_f32(f, "feat.mel"), (size_t)n_mels * T, REF_TOL);
    dm_power_to_db(mp, (size_t)n_mels * T, lm);
    print_message("# log-mel: relative error %.3g\n",
                  rel_err(lm, need_f32(f, "feat.logmel"), (size_t)n_mels * T));
    assert_close("log-mel", lm, need_f32(f, "feat.logmel"), (size_t)n_mels * T, REF_TOL);
    assert_int_equal(dm_mel_mfcc(mel, need_f32(f, "feat.logmel"), T, n_mfcc, mf, NULL), DM_OK);
    print_message("# MFCC: relative error %.3g\n",
                  rel_err(mf, need_f32(f, "feat.mfcc"), (size_t)n_mfcc * T));
    assert_close("MFCC", mf, need_f32(f, "feat.mfcc"), (size_t)n_mfcc * T, REF_TOL);

    assert_int_equal(dm_spectral_centroid(mag, n_fft, T, sr, v, NULL), DM_OK);
    print_message("# centroid: relative error %.3g\n", rel_err(v, need_f32(f, "feat.centroid"), T));
    assert_close("centroid", v, need_f32(f, "feat.centroid"), (size_t)T, REF_TOL);
    assert_int_equal(dm_spectral_flatness(mag, n_fft, T, v, NULL), DM_OK);
    print_message("# flatness: relative error %.3g\n", rel_err(v, need_f32(f, "feat.flatness"), T));
    assert_close("flatness", v, need_f32(f, "feat.flatness"), (size_t)T, REF_TOL);
    assert_int_equal(dm_spectral_rolloff(mag, n_fft, T, sr, 0.85, v, NULL), DM_OK);
    print_message("# rolloff: relative error %.3g\n", rel_err(v, need_f32(f, "feat.rolloff"), T));
    assert_close("rolloff", v, need_f32(f, "feat.rolloff"), (size_t)T, REF_TOL);

    free(re), free(im), free(m), free(pw), free(mp), free(lm), free(mf), free(v);
    dm_mel_free(mel);
    dm_stft_free(st);
}

/* ---- Griffin-Lim ---- */

/* One second at 16 kHz: a chirp 200 -> 2000 Hz with three harmonics, plus a decaying 660 Hz
 * tone. */
static float *chirp_signal(size_t n, double sr)
{
    float *x = zeros(n);
    const double f0 = 200.0, f1 = 2000.0, dur = n / sr;
    for (size_t i = 0; i < n; i++) {
        double t = i / sr, ph = 2.0 * M_PI * (f0 * t + 0.5 * (f1 - f0) / dur * t * t), v = 0.0;
        for (int h = 1; h <= 4; h++)
            v += sin(h * ph) / (h * 2.0);
        v += 0.3 * sin(2.0 * M_PI * 660.0 * t) * exp(-3.0 * t);
        x[i] = (float)v;
    }
    return x;
}

static void test_griffin_lim(void **state)
{
    (void)state;
    const double sr = 16000.0;
    const size_t n = 16000;
    dm_stft *st = make_stft(512, 128, DM_STFT_PAD_REFLECT);
    const int T = dm_stft_frames(st, n);
    const size_t nb = (size_t)dm_stft_bins(st) * T;
    float *x = chirp_signal(n, sr), *re = zeros(nb), *im = zeros(nb), *mag = zeros(nb);
    dm_stft_forward(st, x, n, re, im, NULL);
    dm_spec_magnitude(re, im, nb, mag);

    float *y = zeros(n), *sc = zeros(GL_ITERS + 1), *sc0 = zeros(GL_ITERS + 1);
    float *scratch = zeros(dm_griffin_lim_scratch(st, T));
    dm_griffin_lim_params p = dm_griffin_lim_default_params();
    assert_true(p.momentum == 0.99f);
    p.n_iter = GL_ITERS;
    dm_error err = {0};
    if (dm_griffin_lim(st, mag, T, y, n, &p, sc, scratch, &err) != DM_OK)
        fail_msg("Griffin-Lim: %s", err.message);
    p.momentum = 0.0f;
    float *y0 = zeros(n);
    assert_int_equal(dm_griffin_lim(st, mag, T, y0, n, &p, sc0, NULL, &err), DM_OK);

    /* decreasing overall (momentum makes it non-monotone): every block of 20 iterations ends
     * below where it started */
    int rises = 0;
    for (int i = 1; i <= GL_ITERS; i++)
        rises += sc[i] > sc[i - 1];
    for (int i = 20; i <= GL_ITERS; i += 20)
        if (!(sc[i] < sc[i - 20]))
            fail_msg("spectral convergence did not fall from iteration %d (%.4g) to %d (%.4g)",
                     i - 20, (double)sc[i - 20], i, (double)sc[i]);
    print_message("# fast Griffin-Lim (momentum 0.99): spectral convergence %.4f -> %.4f "
                  "(after 10: %.4f, 50: %.4f), %d rises; classic (momentum 0): %.4f -> %.4f\n",
                  (double)sc[0], (double)sc[GL_ITERS], (double)sc[10], (double)sc[50], rises,
                  (double)sc0[0], (double)sc0[GL_ITERS]);
    assert_true(sc[GL_ITERS] < GL_FINAL_SC);
    assert_true(sc[GL_ITERS] < 0.25f * sc[0]);
    assert_true(sc[GL_ITERS] < sc0[GL_ITERS]);
    /* classic Griffin-Lim never increases the inconsistency (Griffin & Lim 1984) */
    for (int i = 1; i <= GL_ITERS; i++)
        assert_true(sc0[i] <= sc0[i - 1] * (1.0f + 1e-4f));

    /* deterministic, and the scratch / no-scratch paths agree */
    float *y2 = zeros(n);
    p.momentum = 0.99f;
    assert_int_equal(dm_griffin_lim(st, mag, T, y2, n, &p, NULL, NULL, &err), DM_OK);
    assert_memory_equal(y, y2, n * sizeof *y);
    /* random initial phase converges too */
    p.random_init = 1, p.seed = 5;
    assert_int_equal(dm_griffin_lim(st, mag, T, y2, n, &p, sc0, NULL, &err), DM_OK);
    print_message("# random initial phase: %.4f -> %.4f\n", (double)sc0[0],
                  (double)sc0[GL_ITERS]);
    assert_true(sc0[GL_ITERS] < 0.25f * sc0[0]);

    free(x), free(re), free(im), free(mag), free(y), free(y0), free(y2), free(sc), free(sc0);
    free(scratch);
    dm_stft_free(st);
}

/* ---- bad arguments ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    dm_stft *st = NULL;
    dm_error err = {0};
    assert_int_equal(dm_stft_create(511, 128, &st, &err), DM_ERR_INVALID_ARGUMENT);
    assert_null(st);
    assert_true(strstr(err.message, "n_fft") != NULL);
    assert_int_equal(dm_stft_create(512, 0, &st, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_stft_create(512, 513, &st, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_stft_create_padded(512, 128, DM_STFT_PAD_COUNT, &st, &err),
                     DM_ERR_INVALID_ARGUMENT);

    dm_stft_pad pad;
    assert_int_equal(dm_stft_pad_from_name("constant", &pad), 0);
    assert_int_equal(pad, DM_STFT_PAD_CONSTANT);
    assert_string_equal(dm_stft_pad_name(DM_STFT_PAD_REFLECT), "reflect");
    assert_int_equal(dm_stft_pad_from_name("wrap", &pad), -1);
    assert_string_equal(dm_stft_pad_name((dm_stft_pad)99), "unknown");

    assert_int_equal(dm_stft_create(64, 16, &st, &err), DM_OK);
    float x[100] = {0}, re[33 * 8], im[33 * 8], y[100];
    assert_int_equal(dm_stft_forward(st, x, 0, re, im, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_stft_inverse(st, re, im, 0, y, 100, &err), DM_ERR_INVALID_ARGUMENT);
    float mag[33 * 8] = {0};
    /* 100 samples make 7 frames, not 8 */
    assert_int_equal(dm_griffin_lim(st, mag, 8, y, 100, NULL, NULL, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    dm_griffin_lim_params p = dm_griffin_lim_default_params();
    p.momentum = -1.0f;
    assert_int_equal(dm_griffin_lim(st, mag, 7, y, 100, &p, NULL, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    /* an all-zero magnitude is a valid (silent) input */
    assert_int_equal(dm_griffin_lim(st, mag, 7, y, 100, NULL, NULL, NULL, &err), DM_OK);
    dm_stft_free(st);

    dm_mel *mel = NULL;
    assert_int_equal(dm_mel_create(16000, 512, 40, 5000, 4000, 0, &mel, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_mel_create(16000, 512, 40, 0, 9000, 0, &mel, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_mel_create(0, 512, 40, 0, 0, 0, &mel, &err), DM_ERR_INVALID_ARGUMENT);
    assert_null(mel);
    assert_int_equal(dm_mel_create(16000, 512, 20, 0, 0, 1, &mel, &err), DM_OK);
    float lm[20], mf[21];
    assert_int_equal(dm_mel_mfcc(mel, lm, 1, 21, mf, &err), DM_ERR_INVALID_ARGUMENT);
    dm_mel_free(mel);
    float v[1];
    assert_int_equal(dm_spectral_rolloff(mag, 64, 1, 16000, 1.5, v, &err),
                     DM_ERR_INVALID_ARGUMENT);
    dm_stft_free(NULL);
    dm_mel_free(NULL);
}

static int setup(void **state)
{
    static fx_file f;
    char err[256];
    if (fx_load("tests/fixtures/spectral.dmfx", &f, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_stft_reference),
        cmocka_unit_test(test_impulse),        cmocka_unit_test(test_linearity),
        cmocka_unit_test(test_time_shift),     cmocka_unit_test(test_threads),
        cmocka_unit_test(test_mel_filters),    cmocka_unit_test(test_features),
        cmocka_unit_test(test_griffin_lim),    cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("spectral", tests, setup, teardown);
}
