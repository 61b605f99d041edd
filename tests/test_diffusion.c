/* Schedules, the forward process, prediction targets and the samplers'
 * update rules, against the published formulas.
 *
 * - alpha-bar of both schedules against tests/fixtures/samplers.dmfx (written
 *   in float64 by tests/gen_sampler_fixtures.py): relative error <= 1e-6.
 * - The per-step forward process iterated t times against the closed form:
 *   mean and variance over 2^18 draws within 5 standard errors.
 * - Every sampler's trajectory on an analytic denoiser against the reference
 *   implementations of diffusers' and k-diffusion's updates: at every step,
 *   max|ours - ref| / max|ref| <= 1e-5. */
#include "check.h"
#include "dmaudio.h"
#include "sampler.h"

static fx_file fx;

static void init_schedule(dm_schedule *s, int kind)
{
    dm_error err;
    if (dm_schedule_init(s, (dm_schedule_kind)kind, 1000, &err) != DM_OK)
        fail_msg("%s", err.message);
}

static void test_schedules_match_reference(void **state)
{
    (void)state;
    const char *names[] = {"abar.linear", "abar.cosine"};
    for (int k = 0; k < 2; k++) {
        dm_schedule s;
        init_schedule(&s, k);
        size_t n;
        const float *ref = fx_f32(&fx, names[k], &n);
        assert_non_null(ref);
        assert_int_equal(n, 1001);
        for (int t = 0; t <= 1000; t++) {
            double r = ref[t], v = dm_schedule_alpha_bar(&s, t);
            if (!(fabs(v - r) <= 1e-6 * fabs(r) + 1e-12))
                fail_msg("%s[%d]: %.9g, reference %.9g", names[k], t, v, r);
        }
        /* betas are positive, at most 0.999, abar decreasing */
        for (int t = 1; t <= 1000; t++) {
            double b = dm_schedule_beta(&s, t);
            assert_true(b > 0.0 && b <= 0.999 + 1e-12);
        }
    }
    dm_schedule s;
    init_schedule(&s, DM_SCHEDULE_LINEAR);
    assert_true(fabs(dm_schedule_beta(&s, 1) - 1e-4) < 1e-12);
    assert_true(fabs(dm_schedule_beta(&s, 1000) - 0.02) < 1e-12);
    dm_error err;
    assert_int_equal(dm_schedule_init(&s, DM_SCHEDULE_LINEAR, 1, &err), DM_ERR_INVALID_ARGUMENT);
    dm_schedule_kind k;
    assert_int_equal(dm_schedule_from_name("cosine", &k), 0);
    assert_int_equal(k, DM_SCHEDULE_COSINE);
    assert_string_equal(dm_schedule_name(DM_SCHEDULE_LINEAR), "linear");
    assert_true(dm_schedule_from_name("quadratic", &k) < 0);
}

/* The shifted schedule against its definition in log-SNR (Hoogeboom et al. 2023, eq. 6):
 * logSNR'(t) = logSNR(t) - 2 log(shift), i.e. sigma_ve' = shift sigma_ve, to 1e-9; shift 1
 * changes nothing; the continuous view of the shifted grid still inverts. */
static void test_schedule_shift(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        dm_schedule base, s;
        init_schedule(&base, k);
        for (double shift = 0.5; shift <= 16.0; shift *= 2) {
            init_schedule(&s, k);
            assert_int_equal(dm_schedule_shift(&s, shift, NULL), DM_OK);
            for (int t = 1; t <= 1000; t++) {
                double a0 = dm_schedule_alpha_bar(&base, t), a1 = dm_schedule_alpha_bar(&s, t);
                double want = log(a0 / (1.0 - a0)) - 2.0 * log(shift);
                double got = log(a1 / (1.0 - a1));
                if (!(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want))))
                    fail_msg("%s shift %g t %d: logSNR %.12g, want %.12g",
                             dm_schedule_name((dm_schedule_kind)k), shift, t, got, want);
            }
            assert_true(fabs(dm_schedule_sigma_max(&s) / dm_schedule_sigma_max(&base) - shift) <
                        1e-9 * shift);
            for (double u = 0.05; u < 1.0; u += 0.1) {
                double a, sg;
                dm_schedule_alpha_sigma(&s, u, &a, &sg);
                assert_true(fabs(dm_schedule_u_from_sigma(&s, sg / a) - u) < 1e-9);
            }
        }
        init_schedule(&s, k);
        assert_int_equal(dm_schedule_shift(&s, 1.0, NULL), DM_OK);
        assert_memory_equal(s.abar, base.abar, sizeof s.abar);
    }
    dm_schedule s;
    init_schedule(&s, DM_SCHEDULE_COSINE);
    dm_error err;
    assert_int_equal(dm_schedule_shift(&s, 0.0, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "shift"));
    assert_int_equal(dm_schedule_shift(&s, 100.0, &err), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_schedule_shift(&s, NAN, &err), DM_ERR_INVALID_ARGUMENT);
}

/* The continuous view agrees with the grid, keeps alpha^2 + sigma^2 = 1, and
 * u_from_sigma inverts it. */
static void test_continuous_view(void **state)
{
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        dm_schedule s;
        init_schedule(&s, kind);
        for (int t = 0; t <= 1000; t += 37) {
            double a, b;
            dm_schedule_alpha_sigma(&s, t / 1000.0, &a, &b);
            assert_true(fabs(a * a - dm_schedule_alpha_bar(&s, t)) < 1e-12);
            assert_true(fabs(a * a + b * b - 1.0) < 1e-12);
        }
        for (int i = 1; i < 200; i++) {
            double u = i / 200.0 - 0.0013, a, b;
            dm_schedule_alpha_sigma(&s, u, &a, &b);
            double back = dm_schedule_u_from_sigma(&s, b / a);
            if (!(fabs(back - u) < 1e-9))
                fail_msg("%s: u %.6f -> sigma %.6g -> u %.9f", dm_schedule_name(kind), u, b / a,
                         back);
        }
        assert_true(dm_schedule_sigma_min(&s) < 0.02 && dm_schedule_sigma_max(&s) > 100.0);
    }
}

static void test_karras_sigmas(void **state)
{
    (void)state;
    double sig[11];
    dm_karras_sigmas(0.01, 80.0, 7.0, 10, sig);
    assert_true(fabs(sig[0] - 80.0) < 1e-9 && fabs(sig[9] - 0.01) < 1e-12 && sig[10] == 0.0);
    for (int i = 0; i < 10; i++) {
        double r = pow(pow(80.0, 1 / 7.0) + i / 9.0 * (pow(0.01, 1 / 7.0) - pow(80.0, 1 / 7.0)), 7.0);
        assert_true(fabs(sig[i] - r) < 1e-12 * r);
        if (i)
            assert_true(sig[i] < sig[i - 1]);
    }
}

/* x_t reached by t single steps from x0 has mean sqrt(abar_t) x0 and variance
 * 1 - abar_t, like the closed form; compared over 2^18 independent draws. */
static void test_forward_process_steps_match_closed_form(void **state)
{
    (void)state;
    const size_t n = 1 << 18;
    float *x = zeros(n), *eps = zeros(n), *closed = zeros(n);
    const int checkpoints[] = {1, 10, 100, 400, 1000};
    for (int kind = 0; kind < 2; kind++) {
        dm_schedule s;
        init_schedule(&s, kind);
        for (size_t i = 0; i < n; i++)
            x[i] = 0.7f;
        int c = 0;
        for (int t = 1; t <= 1000; t++) {
            dm_rng_normal(99, (uint64_t)t, 0, eps, n);
            dm_diffuse_step(&s, t, x, eps, x, n);
            if (t != checkpoints[c])
                continue;
            c++;
            double ab = dm_schedule_alpha_bar(&s, t), mean = 0, var = 0;
            for (size_t i = 0; i < n; i++)
                mean += x[i];
            mean /= n;
            for (size_t i = 0; i < n; i++)
                var += (x[i] - mean) * (x[i] - mean);
            var /= n - 1;
            double want_m = sqrt(ab) * 0.7, want_v = 1.0 - ab;
            double se_m = sqrt(want_v / n), se_v = want_v * sqrt(2.0 / n);
            if (!(fabs(mean - want_m) <= 5 * se_m + 1e-6) || !(fabs(var - want_v) <= 5 * se_v + 1e-6))
                fail_msg("%s t=%d: mean %.6f (closed form %.6f), var %.6f (closed form %.6f)",
                         dm_schedule_name(kind), t, mean, want_m, var, want_v);
            /* and the closed form itself draws the same statistics */
            for (size_t i = 0; i < n; i++)
                x[i] = 0.7f; /* temporarily reuse as x0 */
            dm_rng_normal(7, (uint64_t)t, 0, eps, n);
            dm_diffuse(&s, t, x, eps, closed, n);
            double cm = 0;
            for (size_t i = 0; i < n; i++)
                cm += closed[i];
            cm /= n;
            assert_true(fabs(cm - want_m) <= 5 * se_m + 1e-6);
            /* restart the chain from t: rebuild x_t by the closed form of the same draws */
            memcpy(x, closed, n * sizeof *x);
        }
    }
    free(x);
    free(eps);
    free(closed);
}

static void test_prediction_conversions(void **state)
{
    (void)state;
    enum { n = 100 };
    float x0[n], eps[n], xt[n], tgt[n], r0[n], re[n];
    dm_rng_normal(1, 0, 0, x0, n);
    dm_rng_normal(1, 1, 0, eps, n);
    const double levels[][2] = {{0.999, 0.0447}, {0.6, 0.8}, {0.05, 0.99875}};
    for (int p = 0; p < DM_PREDICTION_COUNT; p++) {
        for (int l = 0; l < 3; l++) {
            double a = levels[l][0], s = sqrt(1 - a * a);
            for (int i = 0; i < n; i++)
                xt[i] = (float)(a * x0[i] + s * eps[i]);
            dm_prediction_target((dm_prediction)p, a, s, x0, eps, tgt, n);
            if (p == DM_PREDICT_V)
                for (int i = 0; i < n; i++)
                    assert_true(fabs(tgt[i] - (a * eps[i] - s * x0[i])) < 1e-6);
            if (p == DM_PREDICT_X0)
                assert_memory_equal(tgt, x0, sizeof tgt);
            dm_prediction_to_x0_eps((dm_prediction)p, a, s, xt, tgt, r0, re, n);
            double tol = p == DM_PREDICT_EPS ? 1e-5 / a : 1e-5;
            assert_close("x0 round trip", r0, x0, n, tol);
            assert_close("eps round trip", re, eps, n, p == DM_PREDICT_X0 ? 1e-5 / s : 1e-5);
        }
    }
    dm_prediction k;
    assert_int_equal(dm_prediction_from_name("v", &k), 0);
    assert_int_equal(k, DM_PREDICT_V);
    assert_int_equal(dm_prediction_from_name("x0", &k), 0);
    assert_int_equal(k, DM_PREDICT_X0);
    assert_string_equal(dm_prediction_name(DM_PREDICT_X0), "x0");
}

/* ---- sampler trajectories ---- */

typedef struct traj_ctx {
    const float *signal, *noise, *traj;
    float *x;
    size_t n;
    int step, steps;
    double worst;
    const char *name;
} traj_ctx;

static void analytic_denoiser(void *ctx, const float *x, double u, double alpha, double sigma,
                              float *x0, size_t n)
{
    (void)u;
    const traj_ctx *c = ctx;
    for (size_t i = 0; i < n; i++)
        x0[i] = (float)(0.9 * alpha * x[i] + 0.5 * sigma * c->signal[i] + 0.1 * tanh(x[i]));
}

static void fixture_noise(void *ctx, int step, float *z, size_t n)
{
    const traj_ctx *c = ctx;
    assert_true(step >= 0 && step < c->steps);
    memcpy(z, c->noise + (size_t)step * n, n * sizeof *z);
}

/* Called after every step: compare x with the reference trajectory. */
static int compare_step(void *user, int step, int steps)
{
    traj_ctx *c = user;
    assert_int_equal(step, c->step + 1);
    const float *ref = c->traj + (size_t)c->step * c->n;
    double e = rel_err(c->x, ref, c->n);
    if (e > c->worst)
        c->worst = e;
    if (!(e <= 1e-5))
        fail_msg("%s step %d/%d: relative error %.3g > 1e-5", c->name, step, steps, e);
    c->step = step;
    return 0;
}

static void test_sampler_trajectories(void **state)
{
    (void)state;
    size_t n;
    const float *signal = fx_f32(&fx, "signal", &n), *init = fx_f32(&fx, "init", &n);
    assert_non_null(signal);
    for (int ci = 0;; ci++) {
        char key[64];
        snprintf(key, sizeof key, "case%d.cfg", ci);
        size_t m;
        const int32_t *cfg = fx_i32(&fx, key, &m);
        if (!cfg)
            break;
        dm_schedule s;
        init_schedule(&s, cfg[1]);
        dm_loop_params p;
        memset(&p, 0, sizeof p);
        p.sampler = (dm_sampler_kind)cfg[0];
        p.steps = cfg[2];
        p.eta = need_f32(&fx, "case%d.eta", ci)[0];
        p.strength = need_f32(&fx, "case%d.strength", ci)[0];
        p.rho = 7.0;
        if (p.strength < 1.0)
            p.init = init;
        traj_ctx c = {signal, need_f32(&fx, "case%d.noise", ci), need_f32(&fx, "case%d.traj", ci),
                      NULL, n, 0, cfg[2], 0.0, dm_sampler_name(p.sampler)};
        size_t tn;
        fx_f32(&fx, key, &tn);
        float *x = copy_f32(need_f32(&fx, "case%d.x", ci), n), *work = zeros(4 * n);
        c.x = x;
        p.progress = compare_step;
        p.progress_user_data = &c;
        /* the time grid is the documented one */
        size_t gn;
        snprintf(key, sizeof key, "case%d.grid", ci);
        const float *grid = fx_f32(&fx, key, &gn);
        if (p.sampler == DM_SAMPLER_DDPM || p.sampler == DM_SAMPLER_DDIM) {
            int ts[DM_MAX_TIMESTEPS + 1];
            int steps = dm_loop_timesteps(&s, &p, ts);
            assert_int_equal((size_t)steps + 1, gn);
            for (int k = 0; k <= steps; k++)
                assert_int_equal(ts[k], (int)grid[k]);
        } else {
            double sig[DM_MAX_TIMESTEPS + 1];
            int steps = dm_loop_sigmas(&s, &p, sig);
            assert_int_equal((size_t)steps + 1, gn);
            for (int k = 0; k <= steps; k++)
                assert_true(fabs(sig[k] - grid[k]) <= 1e-6 * grid[k]);
        }
        dm_error err;
        if (dm_sample_loop(&s, &p, x, n, analytic_denoiser, &c, fixture_noise, &c, work, &err))
            fail_msg("case %d: %s", ci, err.message);
        assert_true(c.step > 0);
        print_message("# case%d %-8s %s, %d steps: worst step error %.2g\n", ci, c.name,
                      dm_schedule_name(cfg[1]), c.step, c.worst);
        free(x);
        free(work);
    }
}

static int cancel_at_two(void *user, int step, int steps)
{
    (void)user, (void)steps;
    return step == 2;
}

static void test_sampler_argument_errors(void **state)
{
    (void)state;
    dm_schedule s;
    init_schedule(&s, DM_SCHEDULE_LINEAR);
    float x[8] = {0}, work[32], init[8] = {0};
    dm_loop_params p;
    memset(&p, 0, sizeof p);
    p.sampler = DM_SAMPLER_EULER, p.steps = 5, p.strength = 1.0;
    dm_error err;
    traj_ctx c = {x, x, x, x, 8, 0, 5, 0, "x"};
    p.steps = 0;
    assert_int_equal(dm_sample_loop(&s, &p, x, 8, analytic_denoiser, &c, fixture_noise, &c, work, &err),
                     DM_ERR_INVALID_ARGUMENT);
    p.steps = 5, p.strength = 0.5; /* SDEdit without an input */
    assert_int_equal(dm_sample_loop(&s, &p, x, 8, analytic_denoiser, &c, fixture_noise, &c, work, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "input sound"));
    p.init = init, p.strength = 1.5;
    assert_int_equal(dm_sample_loop(&s, &p, x, 8, analytic_denoiser, &c, fixture_noise, &c, work, &err),
                     DM_ERR_INVALID_ARGUMENT);
    p.strength = 1.0, p.progress = cancel_at_two;
    assert_int_equal(dm_sample_loop(&s, &p, x, 8, analytic_denoiser, &c, fixture_noise, &c, work, &err),
                     DM_ERR_CANCELLED);
    dm_sampler_kind k;
    for (int i = 0; i < DM_SAMPLER_COUNT; i++) {
        assert_int_equal(dm_sampler_from_name(dm_sampler_name((dm_sampler_kind)i), &k), 0);
        assert_int_equal(k, i);
        assert_true(dm_sampler_default_steps((dm_sampler_kind)i) > 0);
    }
    assert_true(dm_sampler_from_name("plms", &k) < 0);
}

/* In-painting keeps the known region exactly at the end (sigma = 0). */
static void test_inpainting_keeps_known_region(void **state)
{
    (void)state;
    size_t n;
    const float *signal = fx_f32(&fx, "signal", &n), *init = fx_f32(&fx, "init", &n);
    float *mask = zeros(n), *z = zeros(20 * n);
    for (size_t i = 0; i < n / 2; i++)
        mask[i] = 1.0f;
    dm_rng_normal(3, 0, 0, z, 20 * n);
    for (int kind = 0; kind < DM_SAMPLER_COUNT; kind++) {
        dm_schedule s;
        init_schedule(&s, DM_SCHEDULE_LINEAR);
        dm_loop_params p;
        memset(&p, 0, sizeof p);
        p.sampler = (dm_sampler_kind)kind, p.steps = 8, p.strength = 1.0, p.rho = 7;
        p.init = init, p.mask = mask;
        traj_ctx c = {signal, z, z, NULL, n, 0, 16, 0, "inpaint"};
        float *x = copy_f32(z, n), *work = zeros(4 * n);
        assert_int_equal(dm_sample_loop(&s, &p, x, n, analytic_denoiser, &c, fixture_noise, &c, work, NULL),
                         DM_OK);
        for (size_t i = 0; i < n / 2; i++)
            assert_true(fabsf(x[i] - init[i]) < 1e-6f);
        double diff = 0;
        for (size_t i = n / 2; i < n; i++)
            diff += fabs(x[i] - init[i]);
        assert_true(diff > 1e-3); /* the rest is generated */
        free(x);
        free(work);
    }
    free(mask);
    free(z);
}

static void test_slerp(void **state)
{
    (void)state;
    enum { n = 1000 };
    float a[n], b[n], o[n];
    dm_rng_normal(1, 0, 0, a, n);
    dm_rng_normal(2, 0, 0, b, n);
    dm_slerp(a, b, 0.0, o, n);
    assert_close("slerp(0)", o, a, n, 1e-6);
    dm_slerp(a, b, 1.0, o, n);
    assert_close("slerp(1)", o, b, n, 1e-6);
    /* halfway between two near-orthogonal unit-variance vectors keeps the norm */
    dm_slerp(a, b, 0.5, o, n);
    double na = 0, no = 0;
    for (int i = 0; i < n; i++)
        na += (double)a[i] * a[i], no += (double)o[i] * o[i];
    assert_true(fabs(sqrt(no / na) - 1.0) < 0.05);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (fx_load("tests/fixtures/samplers.dmfx", &fx, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_free(&fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedules_match_reference),
        cmocka_unit_test(test_schedule_shift),
        cmocka_unit_test(test_continuous_view),
        cmocka_unit_test(test_karras_sigmas),
        cmocka_unit_test(test_forward_process_steps_match_closed_form),
        cmocka_unit_test(test_prediction_conversions),
        cmocka_unit_test(test_sampler_trajectories),
        cmocka_unit_test(test_sampler_argument_errors),
        cmocka_unit_test(test_inpainting_keeps_known_region),
        cmocka_unit_test(test_slerp),
    };
    return cmocka_run_group_tests_name("diffusion", tests, setup, teardown);
}
