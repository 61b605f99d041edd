/* Every layer, forward and backward, against the PyTorch reference
 * (tests/fixtures/layers.dmfx, written by tests/gen_fixtures.py in float64),
 * and against central finite differences of loss = sum(out * dout).
 *
 * Tolerances: reference match, max|ours - ref| / max|ref| <= 1e-4 per tensor
 * (float32 arithmetic against a float64 reference). Finite differences: step
 * h = 1e-2 on the float32 forward; |fd - analytic| <= 2e-2 * max(|analytic|,
 * 0.1 * max|grad|) — the float32 rounding of the loss divided by 2h bounds how
 * close a float32 forward can get. */
#include "check.h"
#include "dmaudio.h"
#include "internal.h"
#include "layers.h"

#define REF_TOL 1e-4
#define FD_STEP 1e-2f
#define FD_TOL 2e-2
#define MAX_IN 4

typedef struct lcase lcase;
struct lcase {
    const fx_file *f;
    const char *name;
    const int32_t *cfg;
    int n_in;
    const char *in_name[MAX_IN];   /* fixture names of the differentiable inputs */
    const char *grad_name[MAX_IN]; /* fixture names of their expected gradients  */
    float *in[MAX_IN];
    size_t in_n[MAX_IN];
    float *grad[MAX_IN];
    float *out, *dout;
    size_t out_n;
    float *aux, *scratch;
    const int32_t *ints;           /* class indices for the class embedding     */
    void (*forward)(lcase *);
    void (*backward)(lcase *);     /* adds into grad[]                          */
};

static void lcase_init(lcase *c, const fx_file *f, const char *name, int n_in, const char **ins,
                       const char **grads)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->name = name;
    char key[128];
    snprintf(key, sizeof key, "%s.cfg", name);
    size_t n;
    c->cfg = fx_i32(f, key, &n);
    if (!c->cfg)
        fail_msg("fixture has no %s", key);
    c->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        c->in_name[i] = ins[i];
        c->grad_name[i] = grads[i];
        snprintf(key, sizeof key, "%s.%s", name, ins[i]);
        const float *p = fx_f32(f, key, &c->in_n[i]);
        if (!p)
            fail_msg("fixture has no %s", key);
        c->in[i] = copy_f32(p, c->in_n[i]);
        c->grad[i] = zeros(c->in_n[i]);
    }
    snprintf(key, sizeof key, "%s.out", name);
    if (!fx_f32(f, key, &c->out_n))
        fail_msg("fixture has no %s", key);
    c->out = zeros(c->out_n);
    snprintf(key, sizeof key, "%s.dout", name);
    size_t nd = 0;
    const float *d = fx_f32(f, key, &nd);
    c->dout = d ? copy_f32(d, nd) : NULL;
}

static void lcase_free(lcase *c)
{
    for (int i = 0; i < c->n_in; i++) {
        free(c->in[i]);
        free(c->grad[i]);
    }
    free(c->out);
    free(c->dout);
    free(c->aux);
    free(c->scratch);
}

static double loss(lcase *c)
{
    c->forward(c);
    double s = 0.0;
    for (size_t i = 0; i < c->out_n; i++)
        s += (double)c->out[i] * c->dout[i];
    return s;
}

/* Forward and gradients against the reference, then finite differences on up
 * to 12 entries of every input. */
static void run_case(lcase *c)
{
    c->forward(c);
    assert_close(c->name, c->out, need_f32(c->f, "%s.out", c->name), c->out_n, REF_TOL);
    double worst = rel_err(c->out, need_f32(c->f, "%s.out", c->name), c->out_n);
    if (!c->backward) {
        print_message("# %-7s forward %.2g\n", c->name, worst);
        return;
    }
    c->backward(c);
    for (int i = 0; i < c->n_in; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s.%s", c->name, c->grad_name[i]);
        assert_close(what, c->grad[i], need_f32(c->f, "%s.%s", c->name, c->grad_name[i]),
                     c->in_n[i], REF_TOL);
        double e = rel_err(c->grad[i], need_f32(c->f, "%s.%s", c->name, c->grad_name[i]), c->in_n[i]);
        worst = e > worst ? e : worst;
    }
    print_message("# %-7s worst relative error vs PyTorch (output and gradients) %.2g\n", c->name,
                  worst);
    for (int i = 0; i < c->n_in; i++) {
        double gmax = 0.0;
        for (size_t j = 0; j < c->in_n[i]; j++)
            gmax = fmax(gmax, fabs(c->grad[i][j]));
        size_t stride = c->in_n[i] / 12 + 1;
        for (size_t j = 0; j < c->in_n[i]; j += stride) {
            float v = c->in[i][j];
            c->in[i][j] = v + FD_STEP;
            double lp = loss(c);
            c->in[i][j] = v - FD_STEP;
            double lm = loss(c);
            c->in[i][j] = v;
            double fd = (lp - lm) / (2.0 * FD_STEP), an = c->grad[i][j];
            double tol = FD_TOL * fmax(fabs(an), 0.1 * gmax);
            if (!(fabs(fd - an) <= tol))
                fail_msg("%s: d/d%s[%zu]: finite difference %.6g, backward %.6g", c->name,
                         c->in_name[i], j, fd, an);
        }
    }
}

/* ---- conv1d ---- */

static dm_conv1d_shape conv_shape(const lcase *c)
{
    const int32_t *g = c->cfg;
    dm_conv1d_shape s = {g[0], g[1], g[2], g[3], dm_conv1d_out_len(g[2], g[4], g[5], g[6], g[7]),
                         g[4], g[5], g[6], g[7]};
    return s;
}

static void conv_fwd(lcase *c)
{
    dm_conv1d_shape s = conv_shape(c);
    dm_scratch sc = {c->scratch, dm_conv1d_scratch(&s), 2};
    dm_conv1d_forward(c->out, c->in[0], c->in[1], c->in[2], &s, &sc);
}

static void conv_bwd(lcase *c)
{
    dm_conv1d_shape s = conv_shape(c);
    dm_scratch sc = {c->scratch, dm_conv1d_scratch(&s), 2};
    dm_conv1d_backward(c->grad[0], c->grad[1], c->grad[2], c->dout, c->in[0], c->in[1], &s, &sc);
}

static void test_conv1d(void **state)
{
    const fx_file *f = *state;
    const char *cases[] = {"conv_a", "conv_b", "conv_c", "conv_d", "conv_e"};
    const char *ins[] = {"x", "w", "b"}, *grads[] = {"dx", "dw", "db"};
    for (size_t k = 0; k < 5; k++) {
        lcase c;
        lcase_init(&c, f, cases[k], 3, ins, grads);
        dm_conv1d_shape s = conv_shape(&c);
        assert_int_equal((size_t)s.B * s.Cout * s.Lout, c.out_n);
        c.scratch = zeros(2 * dm_conv1d_scratch(&s) + 1); /* two copies: items in parallel */
        c.forward = conv_fwd, c.backward = conv_bwd;
        run_case(&c);
        lcase_free(&c);
    }
}

/* ---- groupnorm ---- */

static void gn_fwd(lcase *c)
{
    const int32_t *g = c->cfg;
    dm_groupnorm_forward(c->out, c->aux, c->in[0], c->in[1], c->in[2], g[0], g[1], g[2], g[3]);
}

static void gn_bwd(lcase *c)
{
    const int32_t *g = c->cfg;
    dm_groupnorm_backward(c->grad[0], c->grad[1], c->grad[2], c->dout, c->in[0], c->aux, c->in[1],
                          g[0], g[1], g[2], g[3]);
}

static void test_groupnorm(void **state)
{
    const fx_file *f = *state;
    const char *cases[] = {"gn_a", "gn_b", "gn_c"};
    const char *ins[] = {"x", "g", "b"}, *grads[] = {"dx", "dg", "db"};
    for (size_t k = 0; k < 3; k++) {
        lcase c;
        lcase_init(&c, f, cases[k], 3, ins, grads);
        c.aux = zeros(2 * (size_t)c.cfg[0] * c.cfg[3]);
        c.forward = gn_fwd, c.backward = gn_bwd;
        run_case(&c);
        lcase_free(&c);
    }
}

/* ---- silu, linear, film ---- */

static void silu_fwd(lcase *c) { dm_silu_forward(c->out, c->in[0], c->out_n); }
static void silu_bwd(lcase *c) { dm_silu_backward(c->grad[0], c->dout, c->in[0], c->out_n); }

static void test_silu(void **state)
{
    const char *ins[] = {"x"}, *grads[] = {"dx"};
    lcase c;
    lcase_init(&c, *state, "silu", 1, ins, grads);
    c.forward = silu_fwd, c.backward = silu_bwd;
    run_case(&c);
    lcase_free(&c);
}

static void linear_fwd(lcase *c)
{
    dm_linear_forward(c->out, c->in[0], c->in[1], c->in[2], c->cfg[0], c->cfg[1], c->cfg[2]);
}

static void linear_bwd(lcase *c)
{
    dm_linear_backward(c->grad[0], c->grad[1], c->grad[2], c->dout, c->in[0], c->in[1], c->cfg[0],
                       c->cfg[1], c->cfg[2]);
}

static void test_linear(void **state)
{
    const char *ins[] = {"x", "w", "b"}, *grads[] = {"dx", "dw", "db"};
    lcase c;
    lcase_init(&c, *state, "linear", 3, ins, grads);
    c.forward = linear_fwd, c.backward = linear_bwd;
    run_case(&c);
    lcase_free(&c);
}

static void film_fwd(lcase *c)
{
    dm_film_forward(c->out, c->in[0], c->in[1], c->cfg[0], c->cfg[1], c->cfg[2]);
}

static void film_bwd(lcase *c)
{
    dm_film_backward(c->grad[0], c->grad[1], c->dout, c->in[0], c->in[1], c->cfg[0], c->cfg[1],
                     c->cfg[2]);
}

static void test_film(void **state)
{
    const char *ins[] = {"x", "e"}, *grads[] = {"dx", "de"};
    lcase c;
    lcase_init(&c, *state, "film", 2, ins, grads);
    c.forward = film_fwd, c.backward = film_bwd;
    run_case(&c);
    lcase_free(&c);
}

/* ---- upsample, concat ---- */

static void up_fwd(lcase *c)
{
    dm_upsample_forward(c->out, c->in[0], c->cfg[0], c->cfg[1], c->cfg[2], c->cfg[3]);
}

static void up_bwd(lcase *c)
{
    dm_upsample_backward(c->grad[0], c->dout, c->cfg[0], c->cfg[1], c->cfg[2], c->cfg[3]);
}

static void test_upsample(void **state)
{
    const char *cases[] = {"up_a", "up_b"};
    const char *ins[] = {"x"}, *grads[] = {"dx"};
    for (size_t k = 0; k < 2; k++) {
        lcase c;
        lcase_init(&c, *state, cases[k], 1, ins, grads);
        c.forward = up_fwd, c.backward = up_bwd;
        run_case(&c);
        lcase_free(&c);
    }
}

static void cat_fwd(lcase *c)
{
    dm_concat_forward(c->out, c->in[0], c->in[1], c->cfg[0], c->cfg[1], c->cfg[2], c->cfg[3]);
}

static void cat_bwd(lcase *c)
{
    dm_concat_backward(c->grad[0], c->grad[1], c->dout, c->cfg[0], c->cfg[1], c->cfg[2],
                       c->cfg[3]);
}

static void test_concat(void **state)
{
    const char *ins[] = {"a", "b"}, *grads[] = {"da", "db"};
    lcase c;
    lcase_init(&c, *state, "cat", 2, ins, grads);
    c.forward = cat_fwd, c.backward = cat_bwd;
    run_case(&c);
    lcase_free(&c);
}

/* ---- attention ---- */

static void attn_fwd(lcase *c)
{
    const int32_t *g = c->cfg;
    dm_attention_forward(c->out, c->aux, c->in[0], g[0], g[1], g[2], g[3]);
}

static void attn_bwd(lcase *c)
{
    const int32_t *g = c->cfg;
    dm_attention_backward(c->grad[0], c->dout, c->in[0], c->aux, g[0], g[1], g[2], g[3],
                          c->scratch);
}

static void test_attention(void **state)
{
    const char *cases[] = {"attn_a", "attn_b", "attn_c"};
    const char *ins[] = {"qkv"}, *grads[] = {"dqkv"};
    for (size_t k = 0; k < 3; k++) {
        lcase c;
        lcase_init(&c, *state, cases[k], 1, ins, grads);
        const int32_t *g = c.cfg;
        c.aux = zeros((size_t)g[0] * g[3] * g[2] * g[2]);
        c.scratch = zeros((size_t)g[2] * g[2]);
        c.forward = attn_fwd, c.backward = attn_bwd;
        run_case(&c);
        lcase_free(&c);
    }
}

/* ---- embeddings ---- */

static void temb_fwd(lcase *c) { dm_time_embedding_forward(c->out, c->in[0], c->cfg[0], c->cfg[1]); }

static void test_time_embedding(void **state)
{
    const char *ins[] = {"t"}, *grads[] = {"-"};
    lcase c;
    lcase_init(&c, *state, "temb", 1, ins, grads);
    c.forward = temb_fwd; /* no parameters, no backward */
    run_case(&c);
    lcase_free(&c);
}

static void cemb_fwd(lcase *c)
{
    dm_class_embedding_forward(c->out, c->in[0], c->in[1], (const int *)c->ints, c->cfg[0],
                               c->cfg[2]);
}

static void cemb_bwd(lcase *c)
{
    dm_class_embedding_backward(c->grad[0], c->grad[1], c->dout, (const int *)c->ints, c->cfg[0],
                                c->cfg[2]);
}

static void test_class_embedding(void **state)
{
    const char *ins[] = {"x", "table"}, *grads[] = {"dx", "dtable"};
    lcase c;
    lcase_init(&c, *state, "cemb", 2, ins, grads);
    size_t n;
    c.ints = fx_i32(c.f, "cemb.cls", &n);
    assert_non_null(c.ints);
    assert_int_equal(n, (size_t)c.cfg[0]);
    assert_int_equal(sizeof(int), sizeof(int32_t));
    c.forward = cemb_fwd, c.backward = cemb_bwd;
    run_case(&c);
    lcase_free(&c);
}

/* A backward pass adds into its gradients (it never overwrites them). */
static void test_backward_accumulates(void **state)
{
    const char *ins[] = {"x", "w", "b"}, *grads[] = {"dx", "dw", "db"};
    lcase c;
    lcase_init(&c, *state, "conv_b", 3, ins, grads);
    dm_conv1d_shape s = conv_shape(&c);
    c.scratch = zeros(2 * dm_conv1d_scratch(&s) + 1);
    conv_fwd(&c);
    conv_bwd(&c);
    conv_bwd(&c);
    for (int i = 0; i < 3; i++) {
        float *twice = copy_f32(need_f32(c.f, "conv_b.%s", grads[i]), c.in_n[i]);
        for (size_t j = 0; j < c.in_n[i]; j++)
            twice[j] *= 2.0f;
        assert_close(grads[i], c.grad[i], twice, c.in_n[i], REF_TOL);
        free(twice);
    }
    lcase_free(&c);
}

/* The jobs a forward convolution is cut into (column tiles; row blocks when an item has few
 * columns; linear layers' row blocks) against the definition, summed in double: shapes like
 * the default model's, large enough to be cut (the fixtures' are not). Also the same bits on
 * 1 and 2 threads, and an item alone as within a batch of 3. */
static void direct_conv(double *y, const float *x, const float *w, const float *b,
                        const dm_conv1d_shape *s)
{
    for (int o = 0; o < s->Cout; o++)
        for (int i = 0; i < s->Lout; i++) {
            double v = b[o];
            for (int c = 0; c < s->Cin; c++)
                for (int k = 0; k < s->K; k++) {
                    int p = i * s->stride - s->pad + k * s->dil;
                    if (p >= 0 && p < s->Lin)
                        v += (double)w[((size_t)o * s->Cin + c) * s->K + k] *
                             x[(size_t)c * s->Lin + p];
                }
            y[(size_t)o * s->Lout + i] = v;
        }
}

/* n uniform numbers in [-scale/2, scale/2) from the next stream of the library's generator. */
static float *random_floats(size_t n, unsigned *stream, float scale)
{
    float *p = malloc(n * sizeof *p);
    dm_rng_uniform(7, (*stream)++, 0, p, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (p[i] - 0.5f) * scale;
    return p;
}

static void test_conv_jobs(void **state)
{
    (void)state;
    const int shapes[][5] = {/* Cin, Cout, L, K, stride */
                             {224, 224, 32, 3, 1}, {224, 672, 32, 1, 1}, {192, 224, 128, 8, 4},
                             {160, 160, 256, 3, 1}, {130, 128, 512, 3, 1}, {64, 200, 40, 3, 1}};
    unsigned r = 0; /* the next stream */
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int *q = shapes[t], B = 3;
        dm_conv1d_shape s = {.B = B, .Cin = q[0], .Cout = q[1], .Lin = q[2], .K = q[3],
                             .stride = q[4], .pad = q[3] == 8 ? 2 : (q[3] - 1) / 2, .dil = 1};
        s.Lout = dm_conv1d_out_len(s.Lin, s.K, s.stride, s.pad, s.dil);
        const size_t xs = (size_t)s.Cin * s.Lin, ys = (size_t)s.Cout * s.Lout;
        float *x = random_floats(B * xs, &r, 2.0f);
        float *w = random_floats((size_t)s.Cout * s.Cin * s.K, &r, 0.1f);
        float *b = random_floats(s.Cout, &r, 1.0f);
        size_t need = dm_conv1d_forward_scratch(&s) + 1;
        float *scr = zeros(2 * need), *y[3], *one = zeros(ys);
        double *ref = malloc(ys * sizeof *ref);
        for (int th = 1; th <= 2; th++) {
            int prev = dm_threads_begin(th);
            dm_scratch sc = {scr, need, 2};
            y[th] = zeros(B * ys);
            dm_conv1d_forward(y[th], x, w, b, &s, &sc);
            dm_threads_end(prev);
        }
        dm_conv1d_shape s1 = s;
        s1.B = 1;
        dm_scratch sc1 = {scr, need, 1};
        dm_conv1d_forward(one, x + xs, w, b, &s1, &sc1);
        char what[96];
        snprintf(what, sizeof what, "conv %dx%dx%d k%d s%d: 1 vs 2 threads", s.Cin, s.Cout,
                 s.Lin, s.K, s.stride);
        if (memcmp(y[1], y[2], B * ys * sizeof(float)) != 0)
            fail_msg("%s: not the same bits", what);
        if (memcmp(one, y[1] + ys, ys * sizeof(float)) != 0)
            fail_msg("%s: item 1 alone differs from item 1 in the batch", what);
        for (int i = 0; i < B; i++) {
            direct_conv(ref, x + i * xs, w, b, &s);
            float *reff = malloc(ys * sizeof *reff);
            for (size_t j = 0; j < ys; j++)
                reff[j] = (float)ref[j];
            snprintf(what, sizeof what, "conv %dx%dx%d k%d s%d item %d", s.Cin, s.Cout, s.Lin,
                     s.K, s.stride, i);
            assert_close(what, y[1] + i * ys, reff, ys, 1e-5);
            free(reff);
        }
        free(x), free(w), free(b), free(scr), free(one), free(ref), free(y[1]), free(y[2]);
    }
}

/* Linear layers are cut into row blocks too. */
static void test_linear_blocks(void **state)
{
    (void)state;
    const int IN = 512, OUT = 448, B = 2;
    unsigned r = 100;
    float *x = random_floats((size_t)B * IN, &r, 2.0f), *w = random_floats((size_t)OUT * IN, &r, 0.1f);
    float *b = random_floats(OUT, &r, 1.0f), *y1 = zeros((size_t)B * OUT), *y2 = zeros((size_t)B * OUT);
    float *ref = zeros((size_t)B * OUT);
    int prev = dm_threads_begin(1);
    dm_linear_forward(y1, x, w, b, B, IN, OUT);
    dm_threads_begin(2);
    dm_linear_forward(y2, x, w, b, B, IN, OUT);
    dm_threads_end(prev);
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OUT; o++) {
            double v = b[o];
            for (int k = 0; k < IN; k++)
                v += (double)w[(size_t)o * IN + k] * x[(size_t)i * IN + k];
            ref[(size_t)i * OUT + o] = (float)v;
        }
    if (memcmp(y1, y2, (size_t)B * OUT * sizeof(float)) != 0)
        fail_msg("linear: 1 and 2 threads give different bits");
    assert_close("linear 512 -> 448", y1, ref, (size_t)B * OUT, 1e-5);
    free(x), free(w), free(b), free(y1), free(y2), free(ref);
}

static int setup(void **state)
{
    static fx_file f;
    char err[256];
    if (fx_load("tests/fixtures/layers.dmfx", &f, err, sizeof err) != 0) {
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
        cmocka_unit_test(test_conv1d),         cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_silu),           cmocka_unit_test(test_linear),
        cmocka_unit_test(test_film),           cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_concat),         cmocka_unit_test(test_attention),
        cmocka_unit_test(test_time_embedding), cmocka_unit_test(test_class_embedding),
        cmocka_unit_test(test_backward_accumulates), cmocka_unit_test(test_conv_jobs),
        cmocka_unit_test(test_linear_blocks),
    };
    return cmocka_run_group_tests_name("layers", tests, setup, teardown);
}
