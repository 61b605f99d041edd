/* Evaluation metrics: clip embeddings, Fréchet distance, KID and nearest-neighbour distances
 * against the numpy/scipy reference (tests/fixtures/spectral.dmfx, written by
 * tests/gen_spectral_fixtures.py in float64), their behaviour on synthetic sets of clips made
 * here, and their independence from the thread count.
 *
 * Tolerances: reference values, relative 1e-4 (FD, KID, NN distances, embeddings); FD of a set
 * against itself below 1e-6 times the set's total variance; results bit for bit identical
 * with 1 and 2 threads. Ordering on 64-clip sets of 0.25 s clips at 16 kHz (decaying sine
 * tones as the reference class): FD(identical) < FD(the same clips + white noise at 0.003 rms)
 * < FD(decaying noise bursts) < FD(stationary white noise), and the same order for KID. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_spectral.h"

#include <stdint.h>

#define REF_TOL 1e-4
#define SR 16000.0
#define CLIP 4000
#define SET 64
#define MILD_NOISE 0.003f

static const fx_file *fixture(void **state)
{
    return *state;
}

static const float *need_rows(const fx_file *f, const char *name, int *rows, int *cols)
{
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != FX_F32 || t->ndim != 2)
        fail_msg("fixture has no 2-D float tensor %s", name);
    *rows = t->dims[0], *cols = t->dims[1];
    return t->data;
}

static double rel(double a, double b)
{
    return fabs(a - b) / fabs(b);
}

/* ---- against the reference ---- */

static void test_frechet_reference(void **state)
{
    const fx_file *f = fixture(state);
    const char *cases[] = {"fd", "fd2"}; /* fd2: fewer items than dimensions */
    for (int c = 0; c < 2; c++) {
        char key[32];
        int na, nb, d, d2;
        snprintf(key, sizeof key, "%s.a", cases[c]);
        const float *a = need_rows(f, key, &na, &d);
        snprintf(key, sizeof key, "%s.b", cases[c]);
        const float *b = need_rows(f, key, &nb, &d2);
        assert_int_equal(d, d2);
        double ref = need_f32(f, "%s.value", cases[c])[0], fd = -1.0;
        dm_error err = {0};
        if (dm_frechet_distance(a, na, b, nb, d, 0, &fd, &err) != DM_OK)
            fail_msg("%s", err.message);
        print_message("# %s: FD %.8g, scipy sqrtm reference %.8g, relative error %.3g\n",
                      cases[c], fd, ref, rel(fd, ref));
        assert_true(rel(fd, ref) <= REF_TOL);
        /* symmetric in its arguments */
        double back = -1.0;
        assert_int_equal(dm_frechet_distance(b, nb, a, na, d, 0, &back, NULL), DM_OK);
        assert_true(rel(back, fd) <= 1e-9);
    }
}

static void test_frechet_self(void **state)
{
    const fx_file *f = fixture(state);
    int n, d;
    const float *a = need_rows(f, "fd.a", &n, &d);
    double fd = -1.0, var = 0.0;
    assert_int_equal(dm_frechet_distance(a, n, a, n, d, 0, &fd, NULL), DM_OK);
    for (int j = 0; j < d; j++) {
        double m = 0.0, q = 0.0;
        for (int i = 0; i < n; i++)
            m += a[i * d + j];
        m /= n;
        for (int i = 0; i < n; i++)
            q += (a[i * d + j] - m) * (a[i * d + j] - m);
        var += q / (n - 1);
    }
    print_message("# FD(set, itself) = %.3g (total variance %.3g)\n", fd, var);
    assert_true(fd >= 0.0 && fd < 1e-6 * var);
}

static void test_kid_reference(void **state)
{
    const fx_file *f = fixture(state);
    int na, nb, d, d2;
    const float *a = need_rows(f, "kid.a", &na, &d), *b = need_rows(f, "kid.b", &nb, &d2);
    assert_int_equal(na, nb);
    double ref = need_f32(f, "kid.value")[0], mean = 0.0, se = -1.0;
    /* subsets of the whole set: every subset gives the same MMD^2 */
    assert_int_equal(dm_kid(a, na, b, nb, d, 5, na, 7, 0, &mean, &se, NULL), DM_OK);
    print_message("# KID on whole sets: %.8g (reference %.8g), standard error %.3g\n", mean, ref,
                  se);
    assert_true(rel(mean, ref) <= REF_TOL);
    assert_true(se >= 0.0 && se < 1e-9 * fabs(ref));
    /* one subset: kernel values computed on demand instead of from Gram matrices */
    double one = 0.0;
    assert_int_equal(dm_kid(a, na, b, nb, d, 1, na, 7, 0, &one, &se, NULL), DM_OK);
    assert_true(rel(one, mean) <= 1e-12 && se == 0.0);
    /* identical whole sets: the unbiased estimate is (2/m)(mean off-diagonal k - mean k(x, x)),
     * slightly negative (it is 0 in expectation for independent draws of one distribution) */
    assert_int_equal(dm_kid(a, na, a, na, d, 3, na, 7, 0, &mean, &se, NULL), DM_OK);
    double off = 0.0, diag = 0.0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < na; j++) {
            double dot = 0.0;
            for (int k = 0; k < d; k++)
                dot += (double)a[i * d + k] * a[j * d + k];
            double kv = pow(dot / d + 1.0, 3.0);
            if (i == j)
                diag += kv / na;
            else
                off += kv / ((double)na * (na - 1));
        }
    print_message("# KID(a, a) on whole sets: %.6g (closed form %.6g)\n", mean, 2.0 / na * (off - diag));
    assert_true(mean < 0.0 && rel(mean, 2.0 / na * (off - diag)) <= 1e-9);
}

static void test_nearest_reference(void **state)
{
    const fx_file *f = fixture(state);
    int ng, nt, d, d2;
    const float *g = need_rows(f, "nn.gen", &ng, &d), *t = need_rows(f, "nn.train", &nt, &d2);
    assert_int_equal(d, d2);
    float *gd = zeros((size_t)ng), *td = zeros((size_t)nt);
    int *gi = calloc((size_t)ng, sizeof *gi);
    dm_error err = {0};
    if (dm_nearest_neighbour_distances(g, ng, t, nt, d, 0, gd, gi, td, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_close("gen distances", gd, need_f32(f, "nn.gen_dist"), (size_t)ng, REF_TOL);
    assert_close("train distances", td, need_f32(f, "nn.train_dist"), (size_t)nt, REF_TOL);
    const int32_t *ri = fx_i32(f, "nn.gen_index", NULL);
    assert_non_null(ri);
    for (int i = 0; i < ng; i++)
        assert_int_equal(gi[i], ri[i]);
    assert_int_equal(gi[3], 7); /* the planted near copy */
    assert_true(gd[3] < 0.05f && gd[3] < 0.1f * td[7]);
    free(gd), free(td), free(gi);
}

static void test_embedding_reference(void **state)
{
    const fx_file *f = fixture(state);
    const char *cases[] = {"emb16", "emb44"};
    assert_int_equal(dm_embed_dim(), DM_EMBED_DIM);
    assert_int_equal(dm_embed_n_fft(16000), 512);
    assert_int_equal(dm_embed_n_fft(44100), 1024);
    for (int c = 0; c < 2; c++) {
        char key[32];
        snprintf(key, sizeof key, "%s.sr", cases[c]);
        const int32_t *sr = fx_i32(f, key, NULL);
        assert_non_null(sr);
        snprintf(key, sizeof key, "%s.x", cases[c]);
        size_t n;
        const float *x = fx_f32(f, key, &n);
        assert_non_null(x);
        float emb[DM_EMBED_DIM], emb2[DM_EMBED_DIM];
        dm_error err = {0};
        if (dm_embed_clip(x, n, sr[0], emb, &err) != DM_OK)
            fail_msg("%s", err.message);
        const float *ref = need_f32(f, "%s.value", cases[c]);
        print_message("# %s: embedding relative error %.3g\n", cases[c],
                      rel_err(emb, ref, DM_EMBED_DIM));
        assert_close(cases[c], emb, ref, DM_EMBED_DIM, REF_TOL);
        /* the batch entry point gives the same numbers */
        const float *clips[1] = {x};
        assert_int_equal(dm_embed_clips(clips, &n, 1, sr[0], 2, emb2, NULL), DM_OK);
        assert_memory_equal(emb, emb2, sizeof emb);
    }
}

/* ---- synthetic sets ---- */

enum kind { TONES, TONES_NOISY, BURSTS, WHITE };

/* count clips of CLIP samples: clip i of a set depends on (seed, i) only. TONES_NOISY are the
 * TONES of the same seed plus white noise of rms MILD_NOISE. */
static float *make_set(enum kind kind, uint64_t seed, int count)
{
    float *x = zeros((size_t)count * CLIP);
    float *noise = zeros(CLIP);
    for (int i = 0; i < count; i++) {
        float u[4], *c = x + (size_t)i * CLIP;
        dm_rng_uniform(seed, (uint64_t)i, 0, u, 4);
        double freq = 200.0 * pow(5.0, u[0]), decay = 5.0 + 15.0 * u[1], amp = 0.5 + 0.5 * u[2];
        double phase = 2.0 * M_PI * u[3];
        dm_rng_normal(seed, 1000 + (uint64_t)i, 0, noise, CLIP);
        for (int j = 0; j < CLIP; j++) {
            double t = j / SR, v;
            switch (kind) {
            case TONES:
            case TONES_NOISY:
                v = amp * sin(2.0 * M_PI * freq * t + phase) * exp(-decay * t);
                if (kind == TONES_NOISY)
                    v += MILD_NOISE * noise[j];
                break;
            case BURSTS:
                v = 0.3 * amp * noise[j] * exp(-decay * t);
                break;
            default:
                v = 0.3 * noise[j];
                break;
            }
            c[j] = (float)v;
        }
    }
    free(noise);
    return x;
}

static float *embed_set(const float *x, int count, int n_threads)
{
    const float **clips = calloc((size_t)count, sizeof *clips);
    size_t *len = calloc((size_t)count, sizeof *len);
    float *emb = zeros((size_t)count * DM_EMBED_DIM);
    for (int i = 0; i < count; i++)
        clips[i] = x + (size_t)i * CLIP, len[i] = CLIP;
    dm_error err = {0};
    if (dm_embed_clips(clips, len, count, SR, n_threads, emb, &err) != DM_OK)
        fail_msg("embedding: %s", err.message);
    free(clips), free(len);
    return emb;
}

static void test_ordering(void **state)
{
    (void)state;
    const int d = DM_EMBED_DIM;
    float *ref_clips = make_set(TONES, 1, SET);
    float *ref = embed_set(ref_clips, SET, 0);
    free(ref_clips);
    const char *names[] = {"identical", "same class, other draw", "mild degradation",
                           "other class (noise bursts)", "white noise"};
    float *x[5];
    float *sets[5];
    x[0] = make_set(TONES, 1, SET);
    x[1] = make_set(TONES, 2, SET);
    x[2] = make_set(TONES_NOISY, 1, SET);
    x[3] = make_set(BURSTS, 3, SET);
    x[4] = make_set(WHITE, 4, SET);
    double fd[5], kid[5], se[5];
    for (int s = 0; s < 5; s++) {
        sets[s] = embed_set(x[s], SET, 0);
        assert_int_equal(dm_frechet_distance(ref, SET, sets[s], SET, d, 0, &fd[s], NULL), DM_OK);
        assert_int_equal(dm_kid(ref, SET, sets[s], SET, d, 50, 32, 11, 0, &kid[s], &se[s], NULL),
                         DM_OK);
        print_message("# %-28s FD %10.4f   KID %10.5f +- %.5f\n", names[s], fd[s], kid[s], se[s]);
    }
    assert_true(fd[0] < 1e-6 * fd[2]);
    assert_true(fd[0] < fd[2] && fd[2] < fd[3] && fd[3] < fd[4]);
    assert_true(fd[1] < fd[3]);
    /* KID: about 0 for identical sets and for another draw of the same class (exactly 0 only
     * in expectation), clearly positive otherwise, same order */
    assert_true(fabs(kid[0]) < 0.05 * kid[2] && fabs(kid[1]) < 0.05 * kid[2]);
    assert_true(kid[2] > 3.0 * se[2]);
    assert_true(kid[2] < kid[3] && kid[3] < kid[4]);

    /* memorisation check: the training set itself is "memorised" (distance 0), a fresh draw
     * sits at about the training set's own nearest-neighbour distances */
    float *gd = zeros(SET), *td = zeros(SET);
    assert_int_equal(dm_nearest_neighbour_distances(sets[0], SET, ref, SET, d, 0, gd, NULL, td,
                                                    NULL),
                     DM_OK);
    for (int i = 0; i < SET; i++)
        assert_true(gd[i] == 0.0f);
    assert_int_equal(dm_nearest_neighbour_distances(sets[1], SET, ref, SET, d, 0, gd, NULL, NULL,
                                                    NULL),
                     DM_OK);
    double mg = 0.0, mt = 0.0;
    for (int i = 0; i < SET; i++)
        mg += gd[i] / SET, mt += td[i] / SET;
    print_message("# nearest training clip: fresh draw %.3f on average, training set's own %.3f\n",
                  mg, mt);
    assert_true(mg > 0.5 * mt && mg < 2.0 * mt);

    for (int s = 0; s < 5; s++)
        free(x[s]), free(sets[s]);
    free(ref), free(gd), free(td);
}

/* ---- thread count ---- */

static void test_thread_independence(void **state)
{
    (void)state;
    const int d = DM_EMBED_DIM, n = 48;
    float *xa = make_set(TONES, 5, n), *xb = make_set(BURSTS, 6, n);
    float *a1 = embed_set(xa, n, 1), *a2 = embed_set(xa, n, 2);
    float *b1 = embed_set(xb, n, 1), *b2 = embed_set(xb, n, 2);
    assert_memory_equal(a1, a2, (size_t)n * d * sizeof *a1);
    assert_memory_equal(b1, b2, (size_t)n * d * sizeof *b1);
    /* FD with more items than dimensions, too: the LAPACK path at full rank */
    double fd1, fd2, k1, k2, s1, s2;
    assert_int_equal(dm_frechet_distance(a1, n, b1, n, d, 1, &fd1, NULL), DM_OK);
    assert_int_equal(dm_frechet_distance(a1, n, b1, n, d, 2, &fd2, NULL), DM_OK);
    assert_memory_equal(&fd1, &fd2, sizeof fd1);
    assert_int_equal(dm_kid(a1, n, b1, n, d, 20, 24, 3, 1, &k1, &s1, NULL), DM_OK);
    assert_int_equal(dm_kid(a1, n, b1, n, d, 20, 24, 3, 2, &k2, &s2, NULL), DM_OK);
    assert_memory_equal(&k1, &k2, sizeof k1);
    assert_memory_equal(&s1, &s2, sizeof s1);
    /* two subsets: the on-demand kernel path */
    assert_int_equal(dm_kid(a1, n, b1, n, d, 2, 24, 3, 1, &k1, &s1, NULL), DM_OK);
    assert_int_equal(dm_kid(a1, n, b1, n, d, 2, 24, 3, 2, &k2, &s2, NULL), DM_OK);
    assert_memory_equal(&k1, &k2, sizeof k1);
    assert_memory_equal(&s1, &s2, sizeof s1);
    float g1[48], g2[48], t1[48], t2[48];
    int i1[48], i2[48];
    assert_int_equal(dm_nearest_neighbour_distances(b1, n, a1, n, d, 1, g1, i1, t1, NULL), DM_OK);
    assert_int_equal(dm_nearest_neighbour_distances(b1, n, a1, n, d, 2, g2, i2, t2, NULL), DM_OK);
    assert_memory_equal(g1, g2, sizeof g1);
    assert_memory_equal(i1, i2, sizeof i1);
    assert_memory_equal(t1, t2, sizeof t1);

    const int dl = 24, nl = 400; /* many items, few dimensions: full-rank covariances */
    float *la = zeros((size_t)nl * dl), *lb = zeros((size_t)nl * dl);
    dm_rng_normal(8, 0, 0, la, (size_t)nl * dl);
    dm_rng_normal(8, 1, 0, lb, (size_t)nl * dl);
    for (int i = 0; i < nl * dl; i++)
        lb[i] = 1.2f * lb[i] + 0.1f * la[i];
    assert_int_equal(dm_frechet_distance(la, nl, lb, nl, dl, 1, &fd1, NULL), DM_OK);
    assert_int_equal(dm_frechet_distance(la, nl, lb, nl, dl, 2, &fd2, NULL), DM_OK);
    assert_memory_equal(&fd1, &fd2, sizeof fd1);
    print_message("# 1 vs 2 threads: identical embeddings, FD %.6g, KID %.6g\n", fd1, k1);
    free(xa), free(xb), free(a1), free(a2), free(b1), free(b2), free(la), free(lb);
}

/* ---- bad arguments ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    float a[4 * 3] = {0}, b[4 * 3] = {0}, emb[DM_EMBED_DIM];
    double v, se;
    dm_error err = {0};
    assert_int_equal(dm_frechet_distance(a, 1, b, 4, 3, 0, &v, &err), DM_ERR_INVALID_ARGUMENT);
    assert_true(strstr(err.message, "at least 2") != NULL);
    a[5] = NAN;
    assert_int_equal(dm_frechet_distance(a, 4, b, 4, 3, 0, &v, &err), DM_ERR_INVALID_ARGUMENT);
    assert_true(strstr(err.message, "item 1") != NULL);
    a[5] = 0.0f;
    assert_int_equal(dm_kid(a, 4, b, 4, 3, 10, 5, 0, 0, &v, &se, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_kid(a, 4, b, 4, 3, 0, 2, 0, 0, &v, &se, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_frechet_distance(a, 4, b, 4, 3, -1, &v, &err), DM_ERR_INVALID_ARGUMENT);
    float gd[4];
    assert_int_equal(dm_nearest_neighbour_distances(a, 4, b, 1, 3, 0, gd, NULL, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_embed_clip(a, 0, SR, emb, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_embed_clip(a, 12, 100.0, emb, &err), DM_ERR_INVALID_ARGUMENT);
    a[2] = INFINITY;
    assert_int_equal(dm_embed_clip(a, 12, SR, emb, &err), DM_ERR_INVALID_ARGUMENT);
    assert_true(strstr(err.message, "sample 2") != NULL);
    /* a very short clip and digital silence are valid */
    a[2] = 0.5f;
    assert_int_equal(dm_embed_clip(a, 1, SR, emb, &err), DM_OK);
    for (int i = 0; i < DM_EMBED_DIM; i++)
        assert_true(isfinite(emb[i]));
    memset(a, 0, sizeof a);
    assert_int_equal(dm_embed_clip(a, 12, SR, emb, &err), DM_OK);
    for (int i = 0; i < DM_EMBED_DIM; i++)
        assert_true(isfinite(emb[i]));
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
        cmocka_unit_test(test_frechet_reference),  cmocka_unit_test(test_frechet_self),
        cmocka_unit_test(test_kid_reference),      cmocka_unit_test(test_nearest_reference),
        cmocka_unit_test(test_embedding_reference), cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_thread_independence), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("eval", tests, setup, teardown);
}
