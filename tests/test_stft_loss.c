/* The multi-resolution STFT loss (dmaudio_spectral.h): the STFT's adjoint satisfies
 * <STFT x, G> = <x, STFT^T G> (both paddings, short signals, hops that do not divide); the loss,
 * its parts and its gradient match tests/fixtures/stft_loss.dmfx (numpy loss, torch autograd
 * gradient in float64, written by tests/gen_stft_loss_fixtures.py); the gradient also matches
 * central differences in double of the C loss along random directions; the default resolutions
 * scale with the sample rate; and training a wave model with the option on runs, lowers the
 * loss and resumes exactly from a checkpoint. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_audio.h"
#include "dmaudio_spectral.h"

#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void test_stft_backward_is_the_adjoint(void **state)
{
    (void)state;
    static const struct {
        int n_fft, hop;
        size_t n;
        dm_stft_pad pad;
    } cases[] = {
        {64, 16, 512, DM_STFT_PAD_REFLECT}, {64, 16, 500, DM_STFT_PAD_CONSTANT},
        {32, 12, 333, DM_STFT_PAD_REFLECT}, {128, 128, 1000, DM_STFT_PAD_REFLECT},
        {16, 4, 5, DM_STFT_PAD_REFLECT},    {64, 16, 40, DM_STFT_PAD_REFLECT},
        {16, 1, 1, DM_STFT_PAD_REFLECT},    {256, 64, 2048, DM_STFT_PAD_CONSTANT},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dm_stft *st;
        assert_int_equal(dm_stft_create_padded(cases[k].n_fft, cases[k].hop, cases[k].pad, &st,
                                               NULL), DM_OK);
        const size_t n = cases[k].n;
        const int frames = dm_stft_frames(st, n);
        const size_t plane = (size_t)dm_stft_bins(st) * frames;
        float *x = zeros(n), *dx = zeros(n), *re = zeros(plane), *im = zeros(plane);
        float *gre = zeros(plane), *gim = zeros(plane);
        dm_rng_normal(1 + k, 0, 0, x, n);
        dm_rng_normal(1 + k, 1, 0, gre, plane);
        dm_rng_normal(1 + k, 2, 0, gim, plane);
        assert_int_equal(dm_stft_forward(st, x, n, re, im, NULL), DM_OK);
        dx[0] = 0.0f;
        assert_int_equal(dm_stft_backward(st, gre, gim, frames, dx, n, NULL), DM_OK);
        double lhs = 0.0, rhs = 0.0, scale = 0.0;
        for (size_t i = 0; i < plane; i++) {
            lhs += (double)re[i] * gre[i] + (double)im[i] * gim[i];
            scale += fabs((double)re[i] * gre[i]) + fabs((double)im[i] * gim[i]);
        }
        for (size_t i = 0; i < n; i++)
            rhs += (double)x[i] * dx[i];
        double e = fabs(lhs - rhs) / scale;
        print_message("# adjoint n_fft %d hop %d n %zu %s: <Sx, G> %.6g, <x, S'G> %.6g, error "
                      "%.2g of sum |terms|\n", cases[k].n_fft, cases[k].hop, n,
                      dm_stft_pad_name(cases[k].pad), lhs, rhs, e);
        assert_true(e <= 1e-6);
        /* it adds into dx */
        float *dx2 = copy_f32(dx, n);
        assert_int_equal(dm_stft_backward(st, gre, gim, frames, dx2, n, NULL), DM_OK);
        for (size_t i = 0; i < n; i++)
            assert_true(fabsf(dx2[i] - 2.0f * dx[i]) <= 1e-5f * (1.0f + fabsf(dx[i])));
        assert_int_equal(dm_stft_backward(st, gre, gim, frames + 1, dx2, n, NULL),
                         DM_ERR_INVALID_ARGUMENT);
        free(x), free(dx), free(dx2), free(re), free(im), free(gre), free(gim);
        dm_stft_free(st);
    }
}

static void test_loss_matches_reference(void **state)
{
    (void)state;
    fx_file f;
    load_fixture("stft_loss.dmfx", &f);
    for (int k = 0;; k++) {
        char name[64];
        snprintf(name, sizeof name, "case%d.y", k);
        size_t n;
        const float *y = fx_f32(&f, name, &n);
        if (!y) {
            assert_true(k >= 4);
            break;
        }
        const float *x = need_f32(&f, "case%d.x", k);
        snprintf(name, sizeof name, "case%d.n_fft", k);
        size_t r;
        const int32_t *n_fft = fx_i32(&f, name, &r);
        snprintf(name, sizeof name, "case%d.hop", k);
        const int32_t *hop = fx_i32(&f, name, NULL);
        assert_non_null(n_fft), assert_non_null(hop);
        int nf[DM_MRSTFT_MAX_RES], hp[DM_MRSTFT_MAX_RES];
        for (size_t i = 0; i < r; i++)
            nf[i] = n_fft[i], hp[i] = hop[i];
        dm_mrstft *l;
        dm_error err;
        if (dm_mrstft_create((int)r, nf, hp, n, &l, &err) != DM_OK)
            fail_msg("%s", err.message);
        float *grad = zeros(n);
        double parts[2 * DM_MRSTFT_MAX_RES];
        double loss = dm_mrstft_loss(l, y, x, grad, parts);
        const float want = need_f32(&f, "case%d.loss", k)[0];
        const float *want_parts = need_f32(&f, "case%d.parts", k);
        const float *want_grad = need_f32(&f, "case%d.grad", k);
        float got_loss = (float)loss, got_parts[2 * DM_MRSTFT_MAX_RES];
        for (size_t i = 0; i < 2 * r; i++)
            got_parts[i] = (float)parts[i];
        double e_loss = rel_err(&got_loss, &want, 1), e_parts = rel_err(got_parts, want_parts, 2 * r);
        double e_grad = rel_err(grad, want_grad, n);
        print_message("# case %d (n %zu, %zu resolutions): loss %.6f (reference %.6f), error %.2g; "
                      "parts %.2g; gradient %.2g of its largest value\n", k, n, r, loss, want,
                      e_loss, e_parts, e_grad);
        assert_true(e_loss <= 1e-5);
        assert_true(e_parts <= 1e-5);
        assert_true(e_grad <= 1e-4);
        /* without a gradient: the same loss */
        assert_true(dm_mrstft_loss(l, y, x, NULL, NULL) == loss);
        free(grad);
        dm_mrstft_free(l);
    }
    fx_free(&f);
}

/* The C gradient along random directions against central differences of the C loss: a coarse
 * check, independent of Python, that catches sign and factor errors (a wrong conjugate-symmetry
 * weight is a factor of 2 on most bins). The loss is evaluated in float, so the step cannot be
 * small (1e-4 of the signal), and the loss is far from linear at that scale wherever a
 * magnitude comes near sqrt(eps), as the DC and Nyquist bins of a real signal (real numbers that
 * cross 0) easily do: both signals get a DC offset and a Nyquist component that keep those bins
 * large, and the tolerance is 5%. The tight check is the fixture test: torch autograd in
 * float64, itself checked against finite differences with a 1e-7 step. */
static void test_gradient_matches_finite_differences(void **state)
{
    (void)state;
    const size_t n = 400;
    const int nf[2] = {32, 128}, hp[2] = {8, 32};
    dm_mrstft *l;
    assert_int_equal(dm_mrstft_create(2, nf, hp, n, &l, NULL), DM_OK);
    float *x = zeros(n), *y = zeros(n), *d = zeros(n), *g = zeros(n), *yp = zeros(n);
    dm_rng_normal(11, 0, 0, x, n);
    dm_rng_normal(11, 1, 0, y, n);
    for (size_t i = 0; i < n; i++) {
        float offset = 2.0f + ((i & 1) ? 1.5f : -1.5f);
        y[i] = 0.7f * x[i] + 0.5f * y[i] + offset;
        x[i] += offset;
    }
    dm_mrstft_loss(l, y, x, g, NULL);
    double worst = 0.0;
    for (int dir = 0; dir < 6; dir++) {
        dm_rng_normal(12, (uint64_t)dir, 0, d, n);
        double gd = 0.0;
        for (size_t i = 0; i < n; i++)
            gd += (double)g[i] * d[i];
        const double h = 1e-4;
        for (size_t i = 0; i < n; i++)
            yp[i] = (float)(y[i] + h * d[i]);
        double lp = dm_mrstft_loss(l, yp, x, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            yp[i] = (float)(y[i] - h * d[i]);
        double lm = dm_mrstft_loss(l, yp, x, NULL, NULL);
        double fd = (lp - lm) / (2.0 * h), e = fabs(fd - gd) / fabs(gd);
        worst = e > worst ? e : worst;
    }
    print_message("# directional derivatives vs central differences: worst relative error %.2g\n",
                  worst);
    assert_true(worst <= 0.05);
    free(x), free(y), free(d), free(g), free(yp);
    dm_mrstft_free(l);
}

static void test_default_resolutions(void **state)
{
    (void)state;
    int nf[3], hp[3];
    assert_int_equal(dm_mrstft_default_resolutions(16000, 16384, nf, hp), 3);
    assert_int_equal(nf[0], 128), assert_int_equal(nf[1], 256), assert_int_equal(nf[2], 512);
    assert_int_equal(hp[0], 32), assert_int_equal(hp[1], 64), assert_int_equal(hp[2], 128);
    assert_int_equal(dm_mrstft_default_resolutions(8000, 512, nf, hp), 3);
    assert_int_equal(nf[0], 64), assert_int_equal(nf[2], 256);
    assert_int_equal(dm_mrstft_default_resolutions(44100, 16384, nf, hp), 3);
    assert_int_equal(nf[0], 256), assert_int_equal(nf[1], 512), assert_int_equal(nf[2], 1024);
    /* capped by the signal: 100 samples -> 64 at most, the three collapse to one */
    assert_int_equal(dm_mrstft_default_resolutions(16000, 100, nf, hp), 1);
    assert_int_equal(nf[0], 64), assert_int_equal(hp[0], 16);
    dm_mrstft *l;
    dm_error err;
    assert_int_equal(dm_mrstft_create(0, nf, hp, 100, &l, &err), DM_ERR_INVALID_ARGUMENT);
    nf[0] = 30, hp[0] = 40;
    assert_int_equal(dm_mrstft_create(1, nf, hp, 100, &l, &err), DM_ERR_INVALID_ARGUMENT);
}

/* ---- training with the option ---- */

static dm_model_params tiny_wave(void)
{
    static const char *const names[] = {"click", "noise", "tone"};
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = 2;
    p.unet.channels[0] = 8, p.unet.channels[1] = 16;
    p.unet.factors[0] = 4;
    p.unet.attention[0] = 0, p.unet.attention[1] = 1;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 5;
    p.sample_rate = 8000, p.length = 512, p.data_scale = 5.0;
    p.n_classes = 3, p.class_names = names;
    p.name = "tiny-stft";
    return p;
}

static void test_training_with_stft_loss(void **state)
{
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/synth", tmpdir);
    dm_error err;
    if (dm_synth_write_dataset(dir, 6, 11, 8000, 512, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = 8000, dp.length = 512;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_model_params mp = tiny_wave();
    dm_model *m;
    assert_int_equal(dm_model_create(&mp, 1, &m, NULL), DM_OK);
    dm_train_params tp = dm_train_default_params();
    tp.batch = 8, tp.lr = 2e-3, tp.warmup_steps = 2, tp.total_steps = 60, tp.seed = 5;
    /* the same first step without and with the term: the reported loss adds w * L_stft */
    dm_trainer *plain, *t;
    assert_int_equal(dm_trainer_create(m, &tp, &plain, NULL), DM_OK);
    tp.stft_loss_weight = 0.5;
    if (dm_trainer_create(m, &tp, &t, &err) != DM_OK)
        fail_msg("%s", err.message);
    double l0, l1;
    assert_int_equal(dm_trainer_step(plain, ds, &l0, NULL), DM_OK);
    assert_int_equal(dm_trainer_step(t, ds, &l1, NULL), DM_OK);
    print_message("# first step: MSE %.4f, with 0.5 x STFT loss %.4f\n", l0, l1);
    assert_true(l1 > l0 + 0.1);
    double first = l1 / 10, last = 0, loss;
    for (int s = 1; s < 60; s++) {
        if (dm_trainer_step(t, ds, &loss, &err) != DM_OK)
            fail_msg("%s", err.message);
        if (s < 10)
            first += loss / 10;
        if (s >= 50)
            last += loss / 10;
    }
    print_message("# training loss with the STFT term: first 10 steps %.4f, last 10 steps %.4f\n",
                  first, last);
    assert_true(last < 0.9 * first);
    /* the setting is part of the checkpoint: resuming continues exactly */
    char path[512];
    snprintf(path, sizeof path, "%s/stft.ckpt", tmpdir);
    assert_int_equal(dm_trainer_save(t, path, &err), DM_OK);
    dm_trainer *r;
    if (dm_trainer_load(path, 1, &r, &err) != DM_OK)
        fail_msg("%s", err.message);
    double la, lb;
    assert_int_equal(dm_trainer_step(t, ds, &la, NULL), DM_OK);
    assert_int_equal(dm_trainer_step(r, ds, &lb, NULL), DM_OK);
    assert_true(la == lb);
    const dm_model *a = dm_trainer_model(t), *b = dm_trainer_model(r);
    assert_memory_equal(dm_unet_params_const(dm_model_unet_const(a)),
                        dm_unet_params_const(dm_model_unet_const(b)),
                        dm_model_get_info(a).n_params * sizeof(float));
    /* a bad weight */
    dm_trainer *bad;
    tp.stft_loss_weight = -1;
    assert_int_equal(dm_trainer_create(m, &tp, &bad, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "stft_loss_weight"));
    dm_trainer_free(plain), dm_trainer_free(t), dm_trainer_free(r);
    dm_model_free(m);
    dm_dataset_free(ds);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-stft-loss.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stft_backward_is_the_adjoint),
        cmocka_unit_test(test_loss_matches_reference),
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_default_resolutions),
        cmocka_unit_test(test_training_with_stft_loss),
    };
    return cmocka_run_group_tests_name("stft_loss", tests, setup, teardown);
}
