/* The variational bound (core/src/elbo.c):
 *  - its pieces against an independent arbitrary-precision reference (tests/gen_elbo_reference.py,
 *    mpmath + scipy): the KL of two Gaussians, the discretised Gaussian's log mass in every kind
 *    of bin (far tails included), the cosine schedule;
 *  - the whole loop with analytic denoisers: a perfect model of a point mass (every diffusion
 *    term 0, the bound = prior + decoder, known exactly) and the optimal denoiser of Gaussian
 *    data (the expected bound is a closed-form sum), all T and Monte Carlo;
 *  - with a U-Net: the Monte Carlo estimate averages to the bound with all T; results are
 *    deterministic and independent of the thread count; bad arguments are refused;
 *  - a small U-Net trained a few hundred steps on the synthetic dataset has a lower bound on
 *    held-out clips than the same network untrained. */
#include "check.h"
#include "dmaudio.h"
#include "elbo.h"

#include <time.h>

/* ---- reference numbers, printed by tests/gen_elbo_reference.py ---- */

static const double kl_ref[][5] = {
    /* m1, v1, m2, v2, KL */
    {0.0, 1.0, 0.0, 1.0, 0.0},
    {0.3, 0.5, -0.2, 2.0, 0.38064718055994531},
    {1.5, 0.0001, 1.49, 0.0001, 0.50000000000000086},
    {0.0, 1e-06, 3.0, 1.0, 10.907755778982137},
    {-2.0, 4.0, 1.0, 0.25, 24.113705638880109},
};

static const double mass_ref[][5] = {
    /* lo, hi, mean, std, log mass */
    {-1.5259021896696422e-05, 1.5259021896696422e-05, 0.0, 0.005, -6.0178151684010346},
    {0.2999847409781033, 0.3000152590218967, 0.31, 0.005, -8.0178089594098157},
    {0.2999847409781033, 0.3000152590218967, 0.2, 0.005, -206.01719434559235},
    {0.2999847409781033, 0.3000152590218967, 0.1, 0.005, -806.01533280131257},
    {0.2999847409781033, 0.3000152590218967, 5.3, 0.005, -500004.77712931328},
    {-INFINITY, -0.9999847409781033, -0.9, 0.01, -53.21587760112674},
    {0.9999847409781033, INFINITY, 0.2, 0.01, -3205.1790312779021},
    {0.9999847409781033, INFINITY, 1.0, 0.01, -0.69193042777796541},
    {-INFINITY, 0.0, 0.3, 0.2, -2.7059444008238895},
    {0.24999994039535522, 0.2500000596046448, 0.25, 0.3, -15.657350881757485},
};

/* cosine, T = 1000: abar_1, abar_500, abar_T, sqrt(beta~_2) */
static const double cosine_ref[4] = {0.99995871577517822, 0.49384359044063772,
                                     2.428766907034502e-9, 0.0046679220372304892};
/* every clip the constant 0.3 (16 bits, data_scale 5), a perfect denoiser */
static const double point_mass_bits = 6.2608583743293474;
/* x ~ N(0, 0.1^2) (16 bits, data_scale 5), the optimal denoiser: prior, diffusion, decoder, total */
static const double gauss_bits[4] = {4.3799624865931934e-10, 6.8624133654171643,
                                     7.6274084453762661, 14.489821811231427};

static double rel(double a, double b)
{
    return fabs(a - b) / fmax(fabs(b), 1e-300);
}

static void test_gaussian_kl(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kl_ref / sizeof kl_ref[0]; i++) {
        const double *r = kl_ref[i];
        double v = dm_gaussian_kl(r[0], r[1], r[2], r[3]);
        if (!(fabs(v - r[4]) <= 1e-13 * fmax(1.0, fabs(r[4]))))
            fail_msg("KL case %zu: %.17g, reference %.17g", i, v, r[4]);
    }
}

static void test_normal_log_mass(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mass_ref / sizeof mass_ref[0]; i++) {
        const double *r = mass_ref[i];
        double v = dm_normal_log_mass(r[0], r[1], r[2], r[3]);
        if (!(rel(v, r[4]) <= 1e-9))
            fail_msg("log mass case %zu: %.17g, reference %.17g (relative error %.2g)", i, v, r[4],
                     rel(v, r[4]));
    }
    /* an empty interval has no mass */
    assert_true(isinf(dm_normal_log_mass(0.5, 0.5, 0.0, 1.0)));
}

static void test_quantise(void **state)
{
    (void)state;
    double level, lo, hi;
    const double d16 = 2.0 / 65535.0;
    dm_elbo_quantise(0.3, 16, &level, &lo, &hi);
    assert_true(fabs(level - 0.3) <= 0.5 * d16);
    assert_true(fabs((hi - lo) - d16) < 1e-15 && fabs(0.5 * (lo + hi) - level) < 1e-15);
    dm_elbo_quantise(-1.0, 16, &level, &lo, &hi); /* the end bins reach to infinity */
    assert_true(level == -1.0 && isinf(lo) && lo < 0 && fabs(hi - (-1.0 + 0.5 * d16)) < 1e-15);
    dm_elbo_quantise(7.0, 16, &level, &lo, &hi); /* beyond the range: the end level */
    assert_true(level == 1.0 && isinf(hi) && hi > 0);
    dm_elbo_quantise(0.2, 1, &level, &lo, &hi); /* 1 bit: levels -1 and 1, split at 0 */
    assert_true(level == 1.0 && lo == 0.0 && isinf(hi));
    dm_elbo_quantise(-0.2, 1, &level, &lo, &hi);
    assert_true(level == -1.0 && isinf(lo) && hi == 0.0);
}

static void test_cosine_schedule_matches_reference(void **state)
{
    (void)state;
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, DM_SCHEDULE_COSINE, 1000, NULL), DM_OK);
    assert_true(rel(dm_schedule_alpha_bar(&s, 1), cosine_ref[0]) < 1e-12);
    assert_true(rel(dm_schedule_alpha_bar(&s, 500), cosine_ref[1]) < 1e-12);
    assert_true(rel(dm_schedule_alpha_bar(&s, 1000), cosine_ref[2]) < 1e-9);
    double b2 = sqrt(dm_schedule_beta(&s, 2) * (1 - dm_schedule_alpha_bar(&s, 1)) /
                     (1 - dm_schedule_alpha_bar(&s, 2)));
    assert_true(rel(b2, cosine_ref[3]) < 1e-9);
}

/* ---- the loop with analytic denoisers ---- */

typedef struct analytic {
    const dm_schedule *s;
    size_t item;
    float point;        /* point mass: the value (scaled) every x0_hat is      */
    double var;         /* Gaussian: the data's variance (scaled); 0 for point  */
    int calls;
} analytic;

static dm_status analytic_denoise(void *ctx, int batch, const float *x_t, const int *t,
                                  const int *cls, float *x0, dm_error *err)
{
    (void)cls, (void)err;
    analytic *a = ctx;
    a->calls++;
    for (int b = 0; b < batch; b++) {
        double abar = dm_schedule_alpha_bar(a->s, t[b]);
        double k = sqrt(abar) * a->var / (abar * a->var + (1.0 - abar));
        for (size_t j = 0; j < a->item; j++) {
            size_t i = (size_t)b * a->item + j;
            x0[i] = a->var > 0 ? (float)(k * x_t[i]) : a->point;
        }
    }
    return DM_OK;
}

static void test_point_mass_perfect_model(void **state)
{
    (void)state;
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, DM_SCHEDULE_COSINE, 1000, NULL), DM_OK);
    enum { COUNT = 3, ITEM = 64 };
    float clips[COUNT * ITEM];
    for (int i = 0; i < COUNT * ITEM; i++)
        clips[i] = 0.3f;
    double level, lo, hi;
    dm_elbo_quantise(0.3, 16, &level, &lo, &hi);
    analytic a = {&s, ITEM, (float)(5.0 * level), 0.0, 0};
    for (int n_t = 0; n_t <= 10; n_t += 10) {
        dm_elbo_params p = dm_elbo_default_params();
        p.n_t = n_t;
        dm_elbo_parts parts;
        double per[COUNT];
        dm_error err;
        if (dm_elbo_run(&s, 5.0, ITEM, 4, analytic_denoise, &a, clips, COUNT, &p, &parts, per,
                        &err) != DM_OK)
            fail_msg("%s", err.message);
        print_message("# point mass, n_t %d: %.12f bits per sample (reference %.12f)\n", n_t,
                      parts.bits, point_mass_bits);
        assert_true(parts.diffusion == 0.0);
        assert_true(rel(parts.bits, point_mass_bits) < 1e-8);
        assert_true(rel(parts.prior + parts.decoder, parts.bits) < 1e-12);
        assert_true(parts.std_err == 0.0);
        assert_true(per[0] == per[2]);
    }
}

static void gaussian_clips(float *x, size_t n, uint64_t seed)
{
    dm_rng_normal(seed, 0, 0, x, n);
    for (size_t i = 0; i < n; i++)
        x[i] *= 0.1f;
}

/* The estimate is checked against the closed-form expectation within 4 standard errors (this
 * seed's noise happens to sit 2.7 of them high; over 4 x 2000 clips of other seeds the all-T
 * estimate came to 14.4906 +- 0.0019 bits, the expectation being 14.4898). */
static void test_gaussian_data_optimal_denoiser(void **state)
{
    (void)state;
    dm_schedule s;
    assert_int_equal(dm_schedule_init(&s, DM_SCHEDULE_COSINE, 1000, NULL), DM_OK);
    enum { COUNT = 64, ITEM = 256 };
    float *clips = zeros(COUNT * ITEM);
    gaussian_clips(clips, COUNT * ITEM, 3);
    analytic a = {&s, ITEM, 0.0f, 25.0 * 0.01, 0};
    const int n_ts[] = {0, 20};
    for (int k = 0; k < 2; k++) {
        dm_elbo_params p = dm_elbo_default_params();
        p.n_t = n_ts[k];
        p.seed = 7;
        dm_elbo_parts r;
        dm_error err;
        a.calls = 0;
        if (dm_elbo_run(&s, 5.0, ITEM, 16, analytic_denoise, &a, clips, COUNT, &p, &r, NULL,
                        &err) != DM_OK)
            fail_msg("%s", err.message);
        int per_clip = p.n_t ? p.n_t + 1 : 1000;
        assert_int_equal(a.calls, (COUNT * per_clip + 15) / 16);
        print_message("# Gaussian data, n_t %d: %.4f +- %.4f bits per sample (prior %.3g, "
                      "diffusion %.4f, decoder %.4f); expected %.4f (%.4f, %.4f)\n",
                      n_ts[k], r.bits, r.std_err, r.prior, r.diffusion, r.decoder, gauss_bits[3],
                      gauss_bits[1], gauss_bits[2]);
        assert_true(r.std_err > 0.0 && r.std_err < 0.01 * r.bits);
        if (!(fabs(r.bits - gauss_bits[3]) < 4.0 * r.std_err))
            fail_msg("n_t %d: %.5f is %.1f standard errors from the expected %.5f", n_ts[k], r.bits,
                     fabs(r.bits - gauss_bits[3]) / r.std_err, gauss_bits[3]);
        assert_true(fabs(r.decoder - gauss_bits[2]) < 0.02 * gauss_bits[2]);
        assert_true(fabs(r.diffusion - gauss_bits[1]) < 0.03 * gauss_bits[1]);
        assert_true(fabs(r.prior - gauss_bits[0]) < 1e-10);
    }
    free(clips);
}

/* ---- with a U-Net ---- */

static dm_model *small_model(int c0, int c1, int timesteps, int n_classes, int random_weights)
{
    static const char *const names[] = {"click", "noise", "tone"}; /* sorted, as datasets */
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = 2;
    p.unet.channels[0] = c0, p.unet.channels[1] = c1;
    p.unet.factors[0] = 4;
    p.unet.attention[0] = 0, p.unet.attention[1] = 1;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 5;
    p.sample_rate = 8000;
    p.length = 512;
    p.timesteps = timesteps;
    p.data_scale = 5.0;
    p.n_classes = n_classes;
    p.class_names = n_classes ? names : NULL;
    p.name = "elbo-test";
    dm_model *m;
    dm_error err;
    if (dm_model_create(&p, 1, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    if (random_weights) { /* no zero-initialised block: a network that predicts something */
        float *w = dm_unet_params(dm_model_unet(m));
        size_t n = dm_model_get_info(m).n_params;
        dm_rng_normal(77, 0, 0, w, n);
        for (size_t i = 0; i < n; i++)
            w[i] *= 0.05f;
        dm_model_update_checksum(m);
    }
    return m;
}

/* count synthetic clips of 512 samples at 8 kHz, classes in turn; classes[i] is the index of
 * the clip's class in a model trained on a dataset folder (names sorted: click, noise, tone) */
static int model_class_of_synth(int synth_class)
{
    return 2 - synth_class; /* tone 0 -> 2, noise 1 -> 1, click 2 -> 0 */
}

static float *synth_clips(int count, uint64_t seed, int *classes)
{
    float *x = zeros((size_t)count * 512);
    for (int i = 0; i < count; i++) {
        classes[i] = model_class_of_synth(i % 3);
        assert_int_equal(dm_synth_clip(i % 3, seed, (uint64_t)(i / 3), 8000, 512, x + (size_t)i * 512),
                         DM_OK);
    }
    return x;
}

static int cancel_at(void *user, int step, int n)
{
    (void)n;
    return step >= *(int *)user;
}

static void test_unet_monte_carlo_matches_all_timesteps(void **state)
{
    (void)state;
    dm_model *m = small_model(8, 16, 100, 0, 1);
    enum { COUNT = 3 };
    int cls[COUNT];
    float *clips = synth_clips(COUNT, 5, cls);
    dm_error err;

    /* all T (99 diffusion terms), three noise seeds */
    double full[3], se;
    for (int k = 0; k < 3; k++) {
        dm_elbo_params p = dm_elbo_default_params();
        p.n_t = 0, p.seed = (uint64_t)k, p.n_threads = 1;
        if (dm_model_elbo(m, clips, COUNT, &p, &full[k], &se, &err) != DM_OK)
            fail_msg("%s", err.message);
    }
    /* Monte Carlo with 8 stratified draws, many seeds */
    enum { RUNS = 40 };
    double mc[RUNS];
    for (int k = 0; k < RUNS; k++) {
        dm_elbo_params p = dm_elbo_default_params();
        p.n_t = 8, p.seed = 100 + (uint64_t)k, p.n_threads = 1;
        if (dm_model_elbo(m, clips, COUNT, &p, &mc[k], &se, &err) != DM_OK)
            fail_msg("%s", err.message);
    }
    double mf = 0, vf = 0, mm = 0, vm = 0;
    for (int k = 0; k < 3; k++)
        mf += full[k] / 3;
    for (int k = 0; k < 3; k++)
        vf += (full[k] - mf) * (full[k] - mf) / 2;
    for (int k = 0; k < RUNS; k++)
        mm += mc[k] / RUNS;
    for (int k = 0; k < RUNS; k++)
        vm += (mc[k] - mm) * (mc[k] - mm) / (RUNS - 1);
    double sd = sqrt(vf / 3 + vm / RUNS);
    print_message("# random U-Net, T = 100: all timesteps %.4f +- %.4f, Monte Carlo (8 of 99) "
                  "%.4f +- %.4f bits per sample\n", mf, sqrt(vf / 3), mm, sqrt(vm / RUNS));
    if (!(fabs(mf - mm) < 4 * sd + 1e-9 * fabs(mf)))
        fail_msg("all timesteps %.5f vs Monte Carlo %.5f: %.1f standard errors apart", mf, mm,
                 fabs(mf - mm) / sd);

    /* deterministic, and the same whatever the thread count */
    dm_elbo_params p = dm_elbo_default_params();
    p.n_t = 5, p.seed = 9, p.n_threads = 1;
    double a, b, c;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &a, NULL, NULL), DM_OK);
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &b, NULL, NULL), DM_OK);
    p.n_threads = 2;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &c, NULL, NULL), DM_OK);
    assert_true(a == b && a == c);
    /* the estimate of one clip does not depend on the others */
    double one, se1;
    assert_int_equal(dm_model_elbo(m, clips, 1, &p, &one, &se1, NULL), DM_OK);
    assert_true(se1 == 0.0);

    /* bad arguments */
    p.bits = 0;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &a, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "bits"));
    p.bits = 16;
    int bad_cls[COUNT] = {0, 0, 0}; /* an unconditional model has no class 0 */
    p.classes = bad_cls;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &a, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "class"));
    p.classes = NULL;
    clips[700] = NAN;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &a, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "clip 1"));
    clips[700] = 0.0f;
    assert_int_equal(dm_model_elbo(m, clips, 0, &p, &a, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    int stop = 1;
    p.progress = cancel_at, p.progress_user_data = &stop;
    assert_int_equal(dm_model_elbo(m, clips, COUNT, &p, &a, NULL, &err), DM_ERR_CANCELLED);
    free(clips);
    dm_model_free(m);
}

/* ---- training improves the bound ---- */

/* One thread throughout: on a busy machine OpenMP's spinning threads can make two threads ten
 * times slower than one (see the report on OMP_WAIT_POLICY); one thread keeps this test near
 * 30 s whatever else runs. The comparison is paired: the same clips, classes and noise. */
static void test_training_lowers_the_bound(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dmaudio-test-elbo.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    dm_error err;
    if (dm_synth_write_dataset(dir, 16, 11, 8000, 512, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = 8000, dp.length = 512;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);

    dm_model *m = small_model(16, 32, 1000, 3, 0);
    enum { HELD = 24, STEPS = 240 };
    int cls[HELD];
    float *held = synth_clips(HELD, 999, cls); /* another seed: clips never trained on */
    dm_elbo_params p = dm_elbo_default_params();
    p.classes = cls, p.n_t = 20, p.n_threads = 1;
    double before[HELD], after[HELD];
    if (dm_model_elbo_per_clip(m, held, HELD, &p, before, &err) != DM_OK)
        fail_msg("%s", err.message);

    dm_train_params tp = dm_train_default_params();
    tp.batch = 8, tp.lr = 2e-3, tp.warmup_steps = 20, tp.total_steps = STEPS, tp.seed = 3;
    tp.n_threads = 1;
    dm_trainer *t;
    if (dm_trainer_create(m, &tp, &t, &err) != DM_OK)
        fail_msg("%s", err.message);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int s = 0; s < STEPS; s++)
        if (dm_trainer_step(t, ds, NULL, &err) != DM_OK)
            fail_msg("%s", err.message);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (dm_model_elbo_per_clip(dm_trainer_model(t), held, HELD, &p, after, &err) != DM_OK)
        fail_msg("%s", err.message);
    double mb = 0, ma = 0, md = 0, vd = 0;
    for (int i = 0; i < HELD; i++)
        mb += before[i] / HELD, ma += after[i] / HELD, md += (before[i] - after[i]) / HELD;
    for (int i = 0; i < HELD; i++)
        vd += (before[i] - after[i] - md) * (before[i] - after[i] - md) / (HELD - 1);
    double se = sqrt(vd / HELD);
    print_message("# %d training steps in %.1f s; bound on %d held-out clips: untrained %.3f, "
                  "trained %.3f bits per sample, better by %.3f +- %.3f (paired)\n", STEPS,
                  (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec), HELD, mb, ma, md, se);
    for (int c = 0; c < 3; c++) {
        double b = 0, a = 0;
        for (int i = c; i < HELD; i += 3)
            b += before[i] / (HELD / 3), a += after[i] / (HELD / 3);
        print_message("#   %-5s untrained %.3f, trained %.3f\n", dm_synth_class_name(c), b, a);
    }
    assert_true(md > 4.0 * se && md > 0.5);
    dm_trainer_free(t);
    dm_model_free(m);
    free(held);
    dm_dataset_free(ds);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaussian_kl),
        cmocka_unit_test(test_normal_log_mass),
        cmocka_unit_test(test_quantise),
        cmocka_unit_test(test_cosine_schedule_matches_reference),
        cmocka_unit_test(test_point_mass_perfect_model),
        cmocka_unit_test(test_gaussian_data_optimal_denoiser),
        cmocka_unit_test(test_unet_monte_carlo_matches_all_timesteps),
        cmocka_unit_test(test_training_lowers_the_bound),
    };
    if (getenv("DM_TEST_FILTER")) /* e.g. DM_TEST_FILTER='*training*' */
        cmocka_set_test_filter(getenv("DM_TEST_FILTER"));
    return cmocka_run_group_tests_name("elbo", tests, NULL, NULL);
}
