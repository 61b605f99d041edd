/* The whole 1-D U-Net: forward, input gradient and every parameter gradient
 * against the PyTorch reference (tests/fixtures/unet_*.dmfx, float64), a
 * finite-difference check, bitwise equality across thread counts, the
 * parameter layout, and the errors of the API.
 *
 * Tolerances: reference match max|ours - ref| / max|ref| <= 1e-4 per tensor.
 * Finite differences (float32 forward, h = 1e-2): |fd - analytic| <=
 * 5e-2 * max(|analytic|, 0.05 * max|grad|), looser than for single layers
 * because the loss rounds over thousands of float32 operations. */
#include "check.h"
#include "dmaudio.h"

#define REF_TOL 1e-4

/* Builds the configuration a fixture describes (see gen_fixtures.py). */
static void fixture_config(const fx_file *f, dm_unet_config *c, int *B, int *L)
{
    size_t n;
    const int32_t *g = fx_i32(f, "cfg", &n);
    assert_non_null(g);
    memset(c, 0, sizeof *c);
    size_t k = 0;
    c->in_channels = g[k++];
    c->out_channels = g[k++];
    c->n_levels = g[k++];
    for (int l = 0; l < c->n_levels; l++)
        c->channels[l] = g[k++];
    for (int l = 0; l + 1 < c->n_levels; l++)
        c->factors[l] = g[k++];
    c->blocks = g[k++];
    for (int l = 0; l < c->n_levels; l++)
        c->attention[l] = g[k++];
    c->heads = g[k++];
    c->groups = g[k++];
    c->kernel = g[k++];
    c->n_classes = g[k++];
    *B = g[k++];
    *L = g[k++];
    assert_int_equal(k, n);
    const int32_t *p = fx_i32(f, "positions", &n); /* only in fixtures that have them */
    c->positions = p && n == 1 ? p[0] : 0;
}

typedef struct fixture_net {
    fx_file f;
    dm_unet *net;
    dm_unet_state *st;
    int B, L;
    size_t nx, ny;
} fixture_net;

/* Loads a fixture, builds its network with the fixture's weights and a train state. */
static void open_fixture_net(const char *file, fixture_net *fn)
{
    load_fixture(file, &fn->f);
    dm_unet_config cfg;
    fixture_config(&fn->f, &cfg, &fn->B, &fn->L);
    dm_error err;
    if (dm_unet_create(&cfg, 1, &fn->net, &err) != DM_OK)
        fail_msg("%s", err.message);
    /* every tensor of ours is in the fixture with the same size, and back */
    size_t total = 0;
    int in_fixture = 0;
    for (int i = 0; i < fn->f.n; i++)
        in_fixture += strncmp(fn->f.t[i].name, "param.", 6) == 0;
    assert_int_equal(dm_unet_n_tensors(fn->net), in_fixture);
    for (int i = 0; i < dm_unet_n_tensors(fn->net); i++) {
        dm_tensor_info ti;
        assert_int_equal(dm_unet_tensor(fn->net, i, &ti), DM_OK);
        char key[96];
        snprintf(key, sizeof key, "param.%s", ti.name);
        size_t n = 0;
        const float *p = fx_f32(&fn->f, key, &n);
        if (!p)
            fail_msg("fixture %s has no tensor %s", file, key);
        if (n != ti.size)
            fail_msg("%s: %zu values in the fixture, %zu in the network", key, n, ti.size);
        assert_int_equal(ti.offset, total); /* contiguous, in order */
        memcpy(dm_unet_params(fn->net) + ti.offset, p, n * sizeof(float));
        total += n;
    }
    assert_int_equal(total, dm_unet_n_params(fn->net));
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = fn->B;
    sp.length = fn->L;
    sp.train = 1;
    if (dm_unet_state_create(fn->net, &sp, &fn->st, &err) != DM_OK)
        fail_msg("%s", err.message);
    fn->nx = (size_t)fn->B * cfg.in_channels * fn->L;
    fn->ny = (size_t)fn->B * cfg.out_channels * fn->L;
}

static void close_fixture_net(fixture_net *fn)
{
    dm_unet_state_free(fn->st);
    dm_unet_free(fn->net);
    fx_free(&fn->f);
}

static void check_against_reference(const char *file)
{
    fixture_net fn;
    open_fixture_net(file, &fn);
    const float *x = need_f32(&fn.f, "x"), *t = need_f32(&fn.f, "t"), *dy = need_f32(&fn.f, "dout");
    size_t n;
    const int32_t *cls = fx_i32(&fn.f, "cls", &n);
    assert_non_null(cls);
    float *y = zeros(fn.ny), *dx = zeros(fn.nx);
    dm_error err;
    if (dm_unet_forward(fn.net, fn.st, fn.B, x, t, (const int *)cls, y, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_close("out", y, need_f32(&fn.f, "out"), fn.ny, REF_TOL);
    double e_out = rel_err(y, need_f32(&fn.f, "out"), fn.ny);
    dm_unet_state_zero_grads(fn.st);
    assert_int_equal(dm_unet_backward(fn.net, fn.st, dy, dx, &err), DM_OK);
    assert_close("dx", dx, need_f32(&fn.f, "dx"), fn.nx, REF_TOL);
    double e_dx = rel_err(dx, need_f32(&fn.f, "dx"), fn.nx), e_grad = 0.0;
    const char *worst = "";
    const float *g = dm_unet_state_grads(fn.st);
    for (int i = 0; i < dm_unet_n_tensors(fn.net); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(fn.net, i, &ti);
        char what[96];
        snprintf(what, sizeof what, "grad.%s", ti.name);
        assert_close(what, g + ti.offset, need_f32(&fn.f, "%s", what), ti.size, REF_TOL);
        double e = rel_err(g + ti.offset, need_f32(&fn.f, "%s", what), ti.size);
        if (e > e_grad)
            e_grad = e, worst = ti.name;
    }
    print_message("# %s: %zu parameters; relative error vs PyTorch: out %.2g, dx %.2g, worst "
                  "parameter gradient %.2g (%s)\n", file, dm_unet_n_params(fn.net), e_out, e_dx,
                  e_grad, worst);
    free(y);
    free(dx);
    close_fixture_net(&fn);
}

static void test_unet_a_matches_pytorch(void **state)
{
    (void)state;
    check_against_reference("unet_a.dmfx"); /* class-conditional, attention, 2 levels */
}

static void test_unet_b_matches_pytorch(void **state)
{
    (void)state;
    check_against_reference("unet_b.dmfx"); /* unconditional, 3 levels, 2 blocks, stereo */
}

static void test_unet_c_matches_pytorch(void **state)
{
    (void)state;
    check_against_reference("unet_c.dmfx"); /* 6 position channels joined to a spec-like input */
}

static double unet_loss(fixture_net *fn, const float *x, const float *t, const int *cls,
                        const float *dy, float *y)
{
    assert_int_equal(dm_unet_forward(fn->net, fn->st, fn->B, x, t, cls, y, NULL), DM_OK);
    double s = 0.0;
    for (size_t i = 0; i < fn->ny; i++)
        s += (double)y[i] * dy[i];
    return s;
}

/* Central differences on 40 parameters spread over the buffer and 8 inputs. */
static void test_unet_finite_differences(void **state)
{
    (void)state;
    fixture_net fn;
    open_fixture_net("unet_a.dmfx", &fn);
    float *x = copy_f32(need_f32(&fn.f, "x"), fn.nx);
    const float *t = need_f32(&fn.f, "t"), *dy = need_f32(&fn.f, "dout");
    size_t n;
    const int *cls = (const int *)fx_i32(&fn.f, "cls", &n);
    float *y = zeros(fn.ny), *dx = zeros(fn.nx);
    unet_loss(&fn, x, t, cls, dy, y);
    dm_unet_state_zero_grads(fn.st);
    assert_int_equal(dm_unet_backward(fn.net, fn.st, dy, dx, NULL), DM_OK);
    const float *g = dm_unet_state_grads(fn.st);
    float *p = dm_unet_params(fn.net);
    size_t np = dm_unet_n_params(fn.net);
    double gmax = 0.0, xmax = 0.0;
    for (size_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < fn.nx; i++)
        xmax = fmax(xmax, fabs(dx[i]));
    const float h = 1e-2f;
    for (int k = 0; k < 48; k++) {
        int is_param = k < 40;
        size_t j = is_param ? (size_t)k * (np / 40) + 7 : (size_t)(k - 40) * (fn.nx / 8) + 1;
        float *v = is_param ? &p[j] : &x[j];
        double an = is_param ? g[j] : dx[j], scale = is_param ? gmax : xmax;
        float old = *v;
        *v = old + h;
        double lp = unet_loss(&fn, x, t, cls, dy, y);
        *v = old - h;
        double lm = unet_loss(&fn, x, t, cls, dy, y);
        *v = old;
        double fd = (lp - lm) / (2.0 * h);
        if (!(fabs(fd - an) <= 5e-2 * fmax(fabs(an), 0.05 * scale)))
            fail_msg("%s[%zu]: finite difference %.6g, backward %.6g", is_param ? "param" : "x", j,
                     fd, an);
    }
    free(x);
    free(y);
    free(dx);
    close_fixture_net(&fn);
}

/* Forward output and all gradients are bitwise identical for 1 and 2 threads,
 * on a network large enough that the GEMM backend and the OpenMP loops do
 * split their work. */
static void run_threads(int threads, float *y, float *grads, size_t np)
{
    dm_unet_config c = dm_unet_default_config();
    c.n_classes = 3;
    dm_unet *net;
    assert_int_equal(dm_unet_create(&c, 77, &net, NULL), DM_OK);
    /* non-zero everywhere, so that every gradient path carries signal */
    float *p = dm_unet_params(net);
    dm_rng_normal(5, 0, 0, p, np);
    for (size_t i = 0; i < np; i++)
        p[i] *= 0.05f;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = 2, sp.length = 1024, sp.train = 1, sp.n_threads = threads;
    dm_unet_state *st;
    assert_int_equal(dm_unet_state_create(net, &sp, &st, NULL), DM_OK);
    size_t nx = 2 * 1024;
    float *x = zeros(nx);
    dm_rng_normal(6, 0, 0, x, nx);
    float t[2] = {0.25f, 0.9f};
    int cls[2] = {0, 3};
    assert_int_equal(dm_unet_forward(net, st, 2, x, t, cls, y, NULL), DM_OK);
    dm_unet_state_zero_grads(st);
    assert_int_equal(dm_unet_backward(net, st, x, NULL, NULL), DM_OK);
    memcpy(grads, dm_unet_state_grads(st), np * sizeof(float));
    free(x);
    dm_unet_state_free(st);
    dm_unet_free(net);
}

static void test_unet_bitwise_across_threads(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config();
    c.n_classes = 3;
    dm_unet *net;
    assert_int_equal(dm_unet_create(&c, 77, &net, NULL), DM_OK);
    size_t np = dm_unet_n_params(net);
    dm_unet_free(net);
    size_t ny = 2 * 1024;
    float *y1 = zeros(ny), *y2 = zeros(ny), *g1 = zeros(np), *g2 = zeros(np);
    run_threads(1, y1, g1, np);
    run_threads(2, y2, g2, np);
    assert_memory_equal(y1, y2, ny * sizeof(float));
    assert_memory_equal(g1, g2, np * sizeof(float));
    double s = 0.0;
    for (size_t i = 0; i < ny; i++)
        s += fabs(y1[i]);
    assert_true(s > 0.0); /* a real output, not zeros on both sides */
    free(y1), free(y2), free(g1), free(g2);
}

/* An inference state (train = 0) shares memory between activations whose
 * lives do not overlap and keeps no attention probabilities: its outputs are
 * bitwise those of a training state, for every batch size up to its maximum,
 * run after run (no stale buffer read), in far less memory. */
static void test_unet_inference_state_bitwise(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config();
    c.n_classes = 3;
    c.channels[0] = 16, c.channels[1] = 32, c.channels[2] = 64;
    c.blocks = 2;
    c.attention[1] = 1;
    c.positions = 8; /* their buffer is written by no input: it must survive the sharing */
    dm_unet *net;
    assert_int_equal(dm_unet_create(&c, 78, &net, NULL), DM_OK);
    size_t np = dm_unet_n_params(net);
    float *p = dm_unet_params(net);
    dm_rng_normal(9, 0, 0, p, np);
    for (size_t i = 0; i < np; i++)
        p[i] *= 0.05f;
    enum { B = 3, L = 512 }; /* several conv tiles per item at the first level */
    size_t nx = (size_t)B * L;
    float *x = zeros(nx), *ytrain = zeros(nx), *yinfer = zeros(nx);
    dm_rng_normal(10, 0, 0, x, nx);
    float t[B] = {0.1f, 0.5f, 0.95f};
    int cls[B] = {2, 3, 0};
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = B, sp.length = L, sp.train = 1, sp.n_threads = 2;
    dm_unet_state *train, *infer;
    assert_int_equal(dm_unet_state_create(net, &sp, &train, NULL), DM_OK);
    sp.train = 0;
    assert_int_equal(dm_unet_state_create(net, &sp, &infer, NULL), DM_OK);
    assert_true(dm_unet_state_bytes(infer) * 4 < dm_unet_state_bytes(train));
    for (int batch = B; batch >= 1; batch -= 2) {
        assert_int_equal(dm_unet_forward(net, train, batch, x, t, cls, ytrain, NULL), DM_OK);
        for (int run = 0; run < (batch == B ? 2 : 1); run++) {
            memset(yinfer, 0, nx * sizeof(float));
            assert_int_equal(dm_unet_forward(net, infer, batch, x, t, cls, yinfer, NULL), DM_OK);
            assert_memory_equal(ytrain, yinfer, (size_t)batch * L * sizeof(float));
        }
    }
    dm_unet_state_free(infer);
    double s = 0.0;
    for (size_t i = 0; i < nx; i++)
        s += fabs(ytrain[i]);
    assert_true(s > 0.0);
    dm_unet_state_free(train);
    free(x), free(ytrain), free(yinfer);
    dm_unet_free(net);
}

/* The documented initialisation: gammas 1, zero-initialised blocks, bounded
 * uniform weights; the same seed gives the same weights. */
static void test_unet_initialisation(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config();
    c.n_classes = 2;
    dm_unet *a, *b;
    assert_int_equal(dm_unet_create(&c, 9, &a, NULL), DM_OK);
    assert_int_equal(dm_unet_create(&c, 9, &b, NULL), DM_OK);
    size_t np = dm_unet_n_params(a);
    assert_memory_equal(dm_unet_params(a), dm_unet_params(b), np * sizeof(float));
    for (int i = 0; i < dm_unet_n_tensors(a); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(a, i, &ti);
        const float *w = dm_unet_params(a) + ti.offset;
        const char *n = ti.name;
        size_t len = strlen(n);
        int zero = strstr(n, ".conv2.") || strstr(n, ".proj.") || !strcmp(n, "out.w") ||
                   !strcmp(n, "out.b") || (len > 4 && strstr(n, ".gn") && n[len - 1] == 'b');
        int one = strstr(n, ".gn") && n[len - 1] == 'g';
        for (size_t j = 0; j < ti.size; j++) {
            if (zero)
                assert_true(w[j] == 0.0f);
            else if (one)
                assert_true(w[j] == 1.0f);
            else if (strcmp(n, "class.emb") != 0)
                assert_true(fabsf(w[j]) <= 1.0f && w[j] != 0.0f);
        }
    }
    assert_int_equal(dm_unet_find_tensor(a, "class.emb"), dm_unet_find_tensor(b, "class.emb"));
    assert_true(dm_unet_find_tensor(a, "no.such.tensor") < 0);
    dm_unet_free(a);
    dm_unet_free(b);
}

static void expect_config_error(dm_unet_config c, const char *needle)
{
    dm_error err = {0};
    dm_unet *net = NULL;
    assert_int_equal(dm_unet_create(&c, 1, &net, &err), DM_ERR_INVALID_ARGUMENT);
    assert_null(net);
    if (!strstr(err.message, needle))
        fail_msg("message '%s' does not name '%s'", err.message, needle);
}

static void test_unet_config_errors(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config(), d;
    assert_int_equal(dm_unet_config_check(&c, NULL), DM_OK);
    d = c, d.n_levels = 0, expect_config_error(d, "n_levels");
    d = c, d.n_levels = 99, expect_config_error(d, "n_levels");
    d = c, d.kernel = 4, expect_config_error(d, "kernel");
    d = c, d.factors[0] = 3, expect_config_error(d, "factors[0]");
    d = c, d.channels[1] = 66, expect_config_error(d, "channels[1]");
    d = c, d.heads = 5, expect_config_error(d, "heads");
    d = c, d.attention[0] = 2, expect_config_error(d, "attention[0]");
    d = c, d.n_classes = -1, expect_config_error(d, "n_classes");
    d = c, d.in_channels = 0, expect_config_error(d, "in_channels");
    d = c, d.blocks = 0, expect_config_error(d, "blocks");
    d = c, d.positions = 3, expect_config_error(d, "positions");
    d = c, d.positions = 258, expect_config_error(d, "positions");
}

static void test_unet_state_errors(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config();
    c.n_classes = 2;
    dm_unet *net;
    assert_int_equal(dm_unet_create(&c, 1, &net, NULL), DM_OK);
    assert_int_equal(dm_unet_length_multiple(&c), 16);
    dm_unet_state_params sp = dm_unet_state_default_params();
    dm_unet_state *st = NULL;
    dm_error err;
    sp.length = 100; /* not a multiple of 16 */
    assert_int_equal(dm_unet_state_create(net, &sp, &st, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "multiple of 16"));
    assert_null(st);
    sp.length = 64, sp.max_batch = 0;
    assert_int_equal(dm_unet_state_create(net, &sp, &st, &err), DM_ERR_INVALID_ARGUMENT);
    sp.max_batch = 2;
    assert_int_equal(dm_unet_state_create(net, &sp, &st, &err), DM_OK);
    float x[2 * 64] = {0}, y[2 * 64], t[2] = {0.5f, 0.5f};
    int bad_cls[2] = {0, 3};
    assert_int_equal(dm_unet_forward(net, st, 3, x, t, NULL, y, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_unet_forward(net, st, 2, x, t, bad_cls, y, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "class 3"));
    t[1] = NAN;
    assert_int_equal(dm_unet_forward(net, st, 2, x, t, NULL, y, &err), DM_ERR_INVALID_ARGUMENT);
    t[1] = 0.5f;
    assert_int_equal(dm_unet_forward(net, st, 2, x, t, NULL, y, &err), DM_OK);
    /* an inference state keeps no gradients and refuses backward */
    assert_null(dm_unet_state_grads(st));
    assert_int_equal(dm_unet_backward(net, st, y, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "train"));
    dm_unet_state_free(st);
    dm_unet_free(net);
}

/* The analytic FLOP count of a tiny network, by hand: one conv dominates. */
static void test_unet_flops_grow_with_length(void **state)
{
    (void)state;
    dm_unet_config c = dm_unet_default_config();
    dm_unet *net;
    assert_int_equal(dm_unet_create(&c, 1, &net, NULL), DM_OK);
    double f1 = dm_unet_forward_flops(net, 1, 1024), f2 = dm_unet_forward_flops(net, 2, 1024);
    double f4 = dm_unet_forward_flops(net, 1, 4096);
    assert_true(f1 > 1e6);
    assert_true(fabs(f2 - 2 * f1) < 1e-6 * f1);
    /* attention at the coarsest level is quadratic, everything else linear */
    assert_true(f4 >= 4 * f1 * 0.999 && f4 < 16 * f1);
    dm_unet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unet_a_matches_pytorch),
        cmocka_unit_test(test_unet_b_matches_pytorch),
        cmocka_unit_test(test_unet_c_matches_pytorch),
        cmocka_unit_test(test_unet_finite_differences),
        cmocka_unit_test(test_unet_bitwise_across_threads),
        cmocka_unit_test(test_unet_inference_state_bitwise),
        cmocka_unit_test(test_unet_initialisation),
        cmocka_unit_test(test_unet_config_errors),
        cmocka_unit_test(test_unet_state_errors),
        cmocka_unit_test(test_unet_flops_grow_with_length),
    };
    return cmocka_run_group_tests_name("unet", tests, NULL, NULL);
}
