/* It learns: a small class-conditional model trained for a fixed budget on the
 * synthetic dataset (tones, noise bursts, clicks; core/src/synth.c) must
 * generate sounds whose Fréchet distance (FFTW features, dmaudio_spectral.h)
 * to held-out clips is at least 5x below that of white noise, and that have
 * the class they were asked for: dm_synth_classify (pitch below 1 kHz: tone;
 * else 90% of the energy within 11 ms: click; else noise; it labels held-out
 * clips 100% right) must recognise at least half of each class (chance: 33%)
 * and 80% overall. (Clicks are the hard class: about 65% at this budget; the
 * per-class floor leaves room for the small differences between OpenBLAS
 * kernels on other CPUs.)
 *
 * The run is deterministic for its seeds and does not depend on the thread
 * count. DM_LEARN_STEPS (600), DM_LEARN_LEN (512 samples at 8 kHz),
 * DM_LEARN_PER_CLASS (24 generated clips per class) and DM_LEARN_GUIDANCE10
 * (20, i.e. 2.0) scale it up for `make learn-demo`; the figures are printed
 * as TAP comments. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_audio.h"
#include "dmaudio_spectral.h"

#include <time.h>
#include <unistd.h>

#define RATE 8000
static int LEN = 512;
#define NC 3

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Embeddings of count clips of LEN samples laid out back to back. */
static float *embed(const float *clips, int count)
{
    const float **ptr = malloc((size_t)count * sizeof *ptr);
    size_t *len = malloc((size_t)count * sizeof *len);
    float *emb = zeros((size_t)count * DM_EMBED_DIM);
    for (int i = 0; i < count; i++)
        ptr[i] = clips + (size_t)i * LEN, len[i] = LEN;
    dm_error err;
    if (dm_embed_clips(ptr, len, count, RATE, 0, emb, &err) != DM_OK)
        fail_msg("%s", err.message);
    free(ptr);
    free(len);
    return emb;
}

static double fd(const float *a, int na, const float *b, int nb)
{
    double d;
    dm_error err;
    if (dm_frechet_distance(a, na, b, nb, DM_EMBED_DIM, 0, &d, &err) != DM_OK)
        fail_msg("%s", err.message);
    return d;
}

static void test_model_learns_the_synthetic_distribution(void **state)
{
    (void)state;
    const int steps = env_int("DM_LEARN_STEPS", 600), per = env_int("DM_LEARN_PER_CLASS", 24);
    LEN = env_int("DM_LEARN_LEN", 512);
    const double guidance = env_int("DM_LEARN_GUIDANCE10", 20) / 10.0;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/dmaudio-learn.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    dm_error err;
    if (dm_synth_write_dataset(dir, 64, 1, RATE, LEN, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = RATE, dp.length = LEN;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_dataset_n_classes(ds), NC);

    dm_model_params mp = dm_model_default_params();
    mp.unet.n_levels = 3;
    mp.unet.channels[0] = 16, mp.unet.channels[1] = 32, mp.unet.channels[2] = 64;
    mp.unet.factors[0] = 4, mp.unet.factors[1] = 4;
    mp.unet.attention[2] = 1;
    mp.unet.heads = 4, mp.unet.groups = 8, mp.unet.kernel = 5;
    mp.sample_rate = RATE, mp.length = LEN;
    const char *names[NC];
    for (int c = 0; c < NC; c++)
        names[c] = dm_dataset_class_name(ds, c);
    mp.n_classes = NC, mp.class_names = names;
    mp.name = "learn-test";
    mp.data_scale = 5.0; /* the synthetic clips have an rms of about 0.1-0.2 */
    dm_model *m;
    if (dm_model_create(&mp, 1, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_train_params tp = dm_train_default_params();
    tp.batch = 16, tp.lr = 2e-3, tp.warmup_steps = 20, tp.total_steps = steps;
    tp.ema_decay = 0.99, tp.seed = 3;
    dm_trainer *t;
    assert_int_equal(dm_trainer_create(m, &tp, &t, &err), DM_OK);
    double t0 = now(), loss = 0, avg = 0;
    for (int s = 0; s < steps; s++) {
        if (dm_trainer_step(t, ds, &loss, &err) != DM_OK)
            fail_msg("%s", err.message);
        avg = s ? 0.95 * avg + 0.05 * loss : loss;
    }
    double train_time = now() - t0;

    /* generate per class, and the references */
    const dm_model *em = dm_trainer_model(t);
    dm_generator *g;
    assert_int_equal(dm_generator_create(em, per, 0, &g, &err), DM_OK);
    float *gen = zeros((size_t)NC * per * LEN), *held = zeros((size_t)NC * per * LEN);
    float *noise = zeros((size_t)NC * per * LEN);
    t0 = now();
    for (int c = 0; c < NC; c++) {
        dm_sample_params sp = dm_sample_default_params();
        sp.cls = c, sp.seed = 1000 + (uint64_t)c * per, sp.steps = 20, sp.guidance = guidance;
        if (dm_generate(g, &sp, per, gen + (size_t)c * per * LEN, &err) != DM_OK)
            fail_msg("%s", err.message);
        int synth_cls;
        assert_int_equal(dm_synth_class_from_name(names[c], &synth_cls), 0);
        for (int i = 0; i < per; i++)
            dm_synth_clip(synth_cls, 777, (uint64_t)i, RATE, LEN, held + ((size_t)c * per + i) * LEN);
    }
    double gen_time = now() - t0;
    dm_rng_normal(5, 0, 0, noise, (size_t)NC * per * LEN);
    for (size_t i = 0; i < (size_t)NC * per * LEN; i++)
        noise[i] *= 0.1f;

    float *eg = embed(gen, NC * per), *eh = embed(held, NC * per), *en = embed(noise, NC * per);
    double fd_gen = fd(eg, NC * per, eh, NC * per), fd_noise = fd(en, NC * per, eh, NC * per);

    int physical[NC] = {0}, total = 0;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < per; i++)
            physical[c] += strcmp(dm_synth_class_name(dm_synth_classify(gen + ((size_t)c * per + i) * LEN, RATE, LEN)), names[c]) == 0;
    for (int c = 0; c < NC; c++) {
        int ok_held = 0;
        print_message("# %s:", names[c]);
        for (int i = 0; i < per; i++) {
            dm_synth_stats ss;
            dm_synth_stats_compute(gen + ((size_t)c * per + i) * LEN, RATE, LEN, &ss);
            if (i < 8)
                    print_message(" %.0fHz/%.1fms", ss.freq_hz, ss.t90_s * 1e3);
            ok_held += strcmp(dm_synth_class_name(dm_synth_classify(held + ((size_t)c * per + i) * LEN, RATE, LEN)), names[c]) == 0;
        }
        print_message(" | held-out classified right %d/%d\n", ok_held, per);
    }
    print_message("# learn: %d steps in %.1f s (loss %.4f), %d clips in %.1f s\n", steps,
                  train_time, avg, NC * per, gen_time);
    print_message("# learn: FD(generated, held-out) %.2f, FD(noise, held-out) %.2f, ratio %.1fx\n",
                  fd_gen, fd_noise, fd_noise / fd_gen);
    for (int c = 0; c < NC; c++)
        print_message("# learn: class %-6s recognised %d/%d\n", names[c], physical[c], per);
    assert_true(fd_gen * 5.0 <= fd_noise);
    for (int c = 0; c < NC; c++) {
        assert_true(physical[c] * 10 >= per * 5); /* at least half of each class */
        total += physical[c];
    }
    assert_true(total * 10 >= NC * per * 8); /* at least 80% overall */

    free(gen), free(held), free(noise), free(eg), free(eh), free(en);
    dm_generator_free(g);
    dm_trainer_free(t);
    dm_model_free(m);
    dm_dataset_free(ds);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_learns_the_synthetic_distribution),
    };
    return cmocka_run_group_tests_name("learn", tests, NULL, NULL);
}
