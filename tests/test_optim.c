/* The training step's optimiser (core/src/optim.h) against PyTorch's: clip_grad_norm_, then
 * AdamW with weight decay on and off, then the EMA, four steps in float64
 * (tests/fixtures/optim.dmfx, written by tests/gen_optim_fixtures.py).
 *
 * Tolerances: the moments within 1e-5 of the reference's largest value; each weight and EMA
 * weight within 2 float32 ulps of the reference (both are stored as float32: the rounding of
 * weights near 3 is a tenth of a 2e-3 update) plus 1e-3 of the largest change since the start
 * (a wrong bias correction or decay is off by a good part of the update); the norm within
 * 1e-6 relative (float32 inputs summed in double, against the float64 reference). Also: the
 * same bits for 1 and 2 threads, and the norm of a long vector against a long double sum. */
#include "check.h"
#include "internal.h"
#include "optim.h"

#define N_STEPS 4

typedef struct optim_fx {
    fx_file f;
    size_t n;
    const float *w0, *g, *hyper, *w, *m, *v, *e, *norm;
    const int32_t *decay;
} optim_fx;

static dm_optim settings(const optim_fx *x, int step)
{
    const float *h = x->hyper;
    dm_optim o = {.lr = h[0], .beta1 = h[1], .beta2 = h[2], .eps = h[3], .weight_decay = h[4],
                  .grad_clip = h[5], .ema_decay = h[6], .step = step};
    return o;
}

/* |ours - ref| <= 2 ulps of ref + 1e-3 max|ref - start| for every element. */
static void assert_update(const char *what, int step, const float *ours, const float *ref,
                          const float *start, size_t n)
{
    double span = 0.0;
    for (size_t i = 0; i < n; i++)
        span = fmax(span, fabs((double)ref[i] - start[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        double tol = 2.0 * (nextafterf(fabsf(ref[i]), INFINITY) - fabsf(ref[i])) + 1e-3 * span;
        if (!(d <= tol))
            fail_msg("step %d: %s[%zu] = %.9g, PyTorch %.9g (off by %.3g, tolerance %.3g)",
                     step, what, i, ours[i], ref[i], d, tol);
    }
}

static void test_matches_pytorch(void **state)
{
    const optim_fx *x = *state;
    const size_t n = x->n;
    float *w = malloc(n * sizeof *w), *e = malloc(n * sizeof *e);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    unsigned char *decay = malloc(n);
    memcpy(w, x->w0, n * sizeof *w);
    memcpy(e, x->w0, n * sizeof *e);
    for (size_t j = 0; j < n; j++)
        decay[j] = (unsigned char)x->decay[j];
    for (int s = 0; s < N_STEPS; s++) {
        const float *g = x->g + s * n;
        double norm = sqrt(dm_optim_sum_squares(g, n));
        if (!(fabs(norm - x->norm[s]) <= 1e-6 * x->norm[s]))
            fail_msg("step %d: gradient norm %.9g, PyTorch %.9g", s, norm, x->norm[s]);
        dm_optim o = settings(x, s);
        dm_optim_step(&o, n, g, m, v, decay, w, e);
        char what[64];
        snprintf(what, sizeof what, "step %d: first moment", s);
        assert_close(what, m, x->m + s * n, n, 1e-5);
        snprintf(what, sizeof what, "step %d: second moment", s);
        assert_close(what, v, x->v + s * n, n, 1e-5);
        assert_update("weight", s, w, x->w + s * n, x->w0, n);
        assert_update("EMA weight", s, e, x->e + s * n, x->w0, n);
    }
    free(w), free(e), free(m), free(v), free(decay);
}

/* With grad_clip 0 the gradient is used as it is: the first moment after one step is
 * (1 - beta1) g, whatever g's norm. */
static void test_no_clipping(void **state)
{
    const optim_fx *x = *state;
    const size_t n = x->n;
    const float *g = x->g + 2 * n; /* norm 7.5: clipped when clipping is on */
    float *w = malloc(n * sizeof *w), *e = malloc(n * sizeof *e), *want = malloc(n * sizeof *w);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    unsigned char *decay = calloc(n, 1);
    memcpy(w, x->w0, n * sizeof *w);
    memcpy(e, x->w0, n * sizeof *e);
    dm_optim o = settings(x, 0);
    o.grad_clip = 0.0;
    dm_optim_step(&o, n, g, m, v, decay, w, e);
    for (size_t j = 0; j < n; j++)
        want[j] = (float)((1.0 - o.beta1) * g[j]);
    assert_close("first moment without clipping", m, want, n, 1e-6);
    free(w), free(e), free(want), free(m), free(v), free(decay);
}

/* A vector long enough to be cut into chunks summed by several threads. */
static void test_threads_and_long_norm(void **state)
{
    (void)state;
    const size_t n = 1000003;
    float *g = malloc(n * sizeof *g), *w[2], *e[2], *m[2], *v[2];
    unsigned char *decay = malloc(n);
    dm_rng_uniform(12345, 0, 0, g, n);
    long double ref = 0.0L;
    for (size_t j = 0; j < n; j++) {
        g[j] = (g[j] - 0.5f) * 1e-3f;
        decay[j] = (unsigned char)(j % 3 != 0);
        ref += (long double)g[j] * g[j];
    }
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < 2; k++) {
        int prev = dm_threads_begin(k + 1);
        w[k] = malloc(n * sizeof(float)), e[k] = malloc(n * sizeof(float));
        m[k] = calloc(n, sizeof(float)), v[k] = calloc(n, sizeof(float));
        for (size_t j = 0; j < n; j++)
            w[k][j] = e[k][j] = (float)j / (float)n - 0.5f;
        dm_optim o = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .weight_decay = 0.01, .grad_clip = 0.1, .ema_decay = 0.999, .step = 3};
        dm_optim_step(&o, n, g, m[k], v[k], decay, w[k], e[k]);
        *(k ? &s2 : &s1) = dm_optim_sum_squares(g, n);
        dm_threads_end(prev);
    }
    if (s1 != s2)
        fail_msg("the norm depends on the thread count: %.17g vs %.17g", s1, s2);
    if (!(fabsl((long double)s1 - ref) <= 1e-12L * ref))
        fail_msg("sum of squares %.17g, long double %.17Lg", s1, ref);
    assert_memory_equal(w[0], w[1], n * sizeof(float));
    assert_memory_equal(e[0], e[1], n * sizeof(float));
    assert_memory_equal(m[0], m[1], n * sizeof(float));
    assert_memory_equal(v[0], v[1], n * sizeof(float));
    for (int k = 0; k < 2; k++)
        free(w[k]), free(e[k]), free(m[k]), free(v[k]);
    free(g), free(decay);
}

static int setup(void **state)
{
    static optim_fx x;
    load_fixture("optim.dmfx", &x.f);
    size_t n = 0, k = 0;
    x.w0 = fx_f32(&x.f, "w0", &n);
    x.decay = fx_i32(&x.f, "decay", &k);
    x.n = n;
    x.g = need_f32(&x.f, "g"), x.hyper = need_f32(&x.f, "hyper");
    x.w = need_f32(&x.f, "w"), x.m = need_f32(&x.f, "m"), x.v = need_f32(&x.f, "v");
    x.e = need_f32(&x.f, "e"), x.norm = need_f32(&x.f, "norm");
    if (!x.w0 || !x.decay || k != n)
        fail_msg("optim.dmfx: no w0 or decay, or not of the same length");
    *state = &x;
    return 0;
}

static int teardown(void **state)
{
    optim_fx *x = *state;
    fx_free(&x->f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_no_clipping),
        cmocka_unit_test(test_threads_and_long_norm),
    };
    return cmocka_run_group_tests_name("optim", tests, setup, teardown);
}
