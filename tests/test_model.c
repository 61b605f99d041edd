/* Models, generation and training end to end on tiny networks:
 * model files round trip (bitwise for float32, 1e-3 for float16) and the
 * loader rejects inconsistent files; generation is deterministic, batch
 * invariant and identical after save/load; training lowers the loss on the
 * synthetic dataset and a checkpoint resumes exactly (N + M steps equal N,
 * save, load, M steps, bitwise); a group of trainers sharing the shards of each
 * step (threads standing in for MPI ranks) trains bitwise the weights of one
 * trainer, and resumes with another group size. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_audio.h"
#include "dmfile.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in_tmp(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static dm_model_params tiny_params(int n_classes)
{
    static const char *const names[] = {"click", "noise", "tone"};
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = 2;
    p.unet.channels[0] = 8, p.unet.channels[1] = 16;
    p.unet.factors[0] = 4;
    p.unet.attention[0] = 0, p.unet.attention[1] = 1;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 5;
    p.sample_rate = 8000;
    p.length = 512;
    p.n_classes = n_classes;
    p.class_names = n_classes ? names : NULL;
    p.name = "tiny";
    return p;
}

static dm_model *tiny_model(int n_classes, uint64_t seed)
{
    dm_model_params p = tiny_params(n_classes);
    dm_model *m;
    dm_error err;
    if (dm_model_create(&p, seed, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    /* random weights everywhere (the zero-initialised blocks would hide bugs) */
    float *w = dm_unet_params(dm_model_unet(m));
    size_t n = dm_model_get_info(m).n_params;
    dm_rng_normal(seed + 100, 0, 0, w, n);
    for (size_t i = 0; i < n; i++)
        w[i] *= 0.1f;
    dm_model_update_checksum(m);
    return m;
}

static void test_model_file_round_trip(void **state)
{
    (void)state;
    dm_model *m = tiny_model(3, 1);
    char path[512], path16[512];
    path_in_tmp(path, sizeof path, "m.dmm");
    path_in_tmp(path16, sizeof path16, "m16.dmm");
    dm_error err;
    assert_int_equal(dm_model_save(m, path, 0, &err), DM_OK);
    assert_int_equal(dm_model_save(m, path16, 1, &err), DM_OK);
    dm_model *a, *b;
    if (dm_model_load(path, &a, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_model_load(path16, &b, &err), DM_OK);
    dm_model_info im = dm_model_get_info(m), ia = dm_model_get_info(a);
    assert_int_equal(ia.n_params, im.n_params);
    assert_int_equal(ia.checksum, im.checksum);
    assert_int_equal(ia.sample_rate, 8000);
    assert_int_equal(ia.length, 512);
    assert_int_equal(ia.n_classes, 3);
    assert_int_equal(ia.prediction, DM_PREDICT_V);
    assert_int_equal(ia.schedule, DM_SCHEDULE_COSINE);
    assert_string_equal(ia.name, "tiny");
    assert_string_equal(dm_model_class_name(a, 2), "tone");
    assert_int_equal(dm_model_find_class(a, "noise"), 1);
    assert_int_equal(dm_model_find_class(a, "snare"), -1);
    assert_memory_equal(dm_unet_params(dm_model_unet(a)), dm_unet_params(dm_model_unet(m)),
                        im.n_params * sizeof(float));
    assert_close("float16 weights", dm_unet_params(dm_model_unet(b)),
                 dm_unet_params(dm_model_unet(m)), im.n_params, 1e-3);
    struct stat s32, s16;
    stat(path, &s32), stat(path16, &s16);
    assert_true(s16.st_size < s32.st_size * 6 / 10); /* float16 halves the weights */
    dm_model_free(a);
    dm_model_free(b);
    dm_model_free(m);
}

/* Position channels are stored (dmaudio.unet.positions) and restored; files without the key
 * (all files before it existed) have none. */
static void test_model_positions_round_trip(void **state)
{
    (void)state;
    dm_model_params p = tiny_params(0);
    p.unet.positions = 4;
    dm_model *m, *a;
    dm_error err;
    if (dm_model_create(&p, 5, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    char path[512];
    path_in_tmp(path, sizeof path, "pos.dmm");
    assert_int_equal(dm_model_save(m, path, 0, &err), DM_OK);
    if (dm_model_load(path, &a, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_unet_get_config(dm_model_unet_const(a))->positions, 4);
    assert_int_equal(dm_model_get_info(a).checksum, dm_model_get_info(m).checksum);
    dm_model_free(a);
    dm_model_free(m);
    m = tiny_model(0, 5);
    assert_int_equal(dm_model_save(m, path, 0, &err), DM_OK);
    dm_file *f;
    assert_int_equal(dm_file_read(path, &f, NULL), DM_OK);
    assert_false(dm_file_has(f, "dmaudio.unet.positions"));
    dm_file_free(f);
    assert_int_equal(dm_model_load(path, &a, &err), DM_OK);
    assert_int_equal(dm_unet_get_config(dm_model_unet_const(a))->positions, 0);
    assert_true(dm_model_get_info(a).schedule_shift == 1.0); /* no dmaudio.schedule_shift */
    dm_model_free(a);
    dm_model_free(m);
}

/* A shifted schedule is stored (dmaudio.schedule_shift) and the loaded model's schedule is
 * the shifted one. */
static void test_model_schedule_shift_round_trip(void **state)
{
    (void)state;
    dm_model_params p = tiny_params(0);
    p.schedule_shift = 4.0;
    dm_model *m, *a;
    dm_error err;
    if (dm_model_create(&p, 6, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    char path[512];
    path_in_tmp(path, sizeof path, "shift.dmm");
    assert_int_equal(dm_model_save(m, path, 0, &err), DM_OK);
    if (dm_model_load(path, &a, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_true(dm_model_get_info(a).schedule_shift == 4.0);
    dm_schedule plain;
    assert_int_equal(dm_schedule_init(&plain, DM_SCHEDULE_COSINE, 1000, NULL), DM_OK);
    double r = dm_schedule_sigma_max(dm_model_schedule(a)) / dm_schedule_sigma_max(&plain);
    assert_true(fabs(r - 4.0) < 1e-9);
    dm_model_free(a);
    p.schedule_shift = 1000.0;
    assert_int_equal(dm_model_create(&p, 6, &a, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "shift"));
    dm_model_free(m);
}

/* A file written with one key changed, to check the loader's validation. */
static void write_variant(const dm_model *m, const char *path, const char *key, int64_t value,
                          int extra_tensor)
{
    dm_file_writer *w;
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    /* the model's keys, then an override written first-wins is not allowed:
     * so write every key by hand from a saved file */
    char tmp[512];
    path_in_tmp(tmp, sizeof tmp, "base.dmm");
    assert_int_equal(dm_model_save(m, tmp, 0, NULL), DM_OK);
    dm_file *f;
    assert_int_equal(dm_file_read(tmp, &f, NULL), DM_OK);
    int found = 0;
    for (int i = 0; i < dm_file_n_keys(f); i++) {
        const char *name;
        int type;
        dm_file_key(f, i, &name, &type);
        if (strcmp(name, key) == 0) {
            dm_file_writer_int(w, key, value);
            found = 1;
            continue;
        }
        int64_t iv;
        double fv;
        const char *sv;
        const int64_t *ia;
        const char *const *sa;
        size_t n;
        if (dm_file_get_int(f, name, &iv, NULL) == DM_OK)
            dm_file_writer_int(w, name, iv);
        else if (dm_file_get_float(f, name, &fv, NULL) == DM_OK)
            dm_file_writer_float(w, name, fv);
        else if (dm_file_get_string(f, name, &sv, NULL) == DM_OK)
            dm_file_writer_string(w, name, sv);
        else if (dm_file_get_ints(f, name, &ia, &n, NULL) == DM_OK)
            dm_file_writer_ints(w, name, ia, n);
        else if (dm_file_get_strings(f, name, &sa, &n, NULL) == DM_OK)
            dm_file_writer_strings(w, name, sa, n);
    }
    if (!found) /* a key the model does not write: added */
        dm_file_writer_int(w, key, value);
    const dm_unet *net = dm_model_unet_const(m);
    for (int i = 0; i < dm_unet_n_tensors(net); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(net, i, &ti);
        int64_t dims[3] = {ti.dims[0], ti.dims[1], ti.dims[2]};
        dm_file_writer_tensor(w, ti.name, ti.ndim, dims, 0, dm_unet_params_const(net) + ti.offset);
    }
    if (extra_tensor) {
        int64_t d = 4;
        float v[4] = {0};
        dm_file_writer_tensor(w, "stray.w", 1, &d, 0, v);
    }
    assert_int_equal(dm_file_writer_save(w, path, NULL), DM_OK);
    dm_file_writer_free(w);
    dm_file_free(f);
}

static void expect_load_error(const char *path, dm_status want, const char *needle)
{
    dm_model *m = NULL;
    dm_error err = {0};
    dm_status st = dm_model_load(path, &m, &err);
    if (st != want)
        fail_msg("%s (%s): status %s, expected %s (%s)", path, needle, dm_status_name(st),
                 dm_status_name(want), err.message);
    assert_null(m);
    if (!strstr(err.message, needle) || !strstr(err.message, path))
        fail_msg("message '%s' lacks '%s' or the path", err.message, needle);
}

static void test_model_loader_rejects_bad_files(void **state)
{
    (void)state;
    dm_model *m = tiny_model(3, 2);
    char path[512];
    path_in_tmp(path, sizeof path, "bad.dmm");
    expect_load_error("/nonexistent/dir/model.dmm", DM_ERR_IO, "model.dmm");
    write_variant(m, path, "dmaudio.sample_rate", 12, 0);
    expect_load_error(path, DM_ERR_FORMAT, "dmaudio.sample_rate = 12");
    write_variant(m, path, "dmaudio.unet.kernel", 4, 0);
    expect_load_error(path, DM_ERR_FORMAT, "kernel 4");
    write_variant(m, path, "dmaudio.unet.groups", 3, 0);
    expect_load_error(path, DM_ERR_FORMAT, "groups 3");
    write_variant(m, path, "dmaudio.length", 510, 0);
    expect_load_error(path, DM_ERR_FORMAT, "multiple of 4");
    /* a bigger network than the file holds values for: refused before it is allocated (a
     * few bytes of keys could ask for gigabytes; tests/fuzz/corpus/model/regression-huge-*) */
    write_variant(m, path, "dmaudio.unet.blocks", 2, 0);
    expect_load_error(path, DM_ERR_FORMAT, "the file's tensors hold");
    write_variant(m, path, "dmaudio.unet.kernel", 3, 0); /* shapes no longer match the tensors */
    expect_load_error(path, DM_ERR_FORMAT, "wrong shape");
    write_variant(m, path, "dmaudio.unet.positions", 7, 0); /* odd (the key is new here) */
    expect_load_error(path, DM_ERR_FORMAT, "positions");
    write_variant(m, path, "dmaudio.schedule_shift", 2, 0); /* an int, not a float */
    expect_load_error(path, DM_ERR_FORMAT, "dmaudio.schedule_shift");
    write_variant(m, path, "dmaudio.repr", 3, 0); /* wrong type */
    expect_load_error(path, DM_ERR_FORMAT, "dmaudio.repr");
    write_variant(m, path, "dmaudio.nothing", 0, 1);
    expect_load_error(path, DM_ERR_FORMAT, "tensors");
    /* every truncation of a valid file is refused with a clear error */
    char good[512];
    path_in_tmp(good, sizeof good, "good.dmm");
    assert_int_equal(dm_model_save(m, good, 1, NULL), DM_OK);
    FILE *f = fopen(good, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    for (long cut = 0; cut < size; cut += 1 + cut / 16) {
        FILE *o = fopen(path, "wb");
        fwrite(buf, 1, (size_t)cut, o);
        fclose(o);
        dm_model *x = NULL;
        dm_error err;
        if (dm_model_load(path, &x, &err) == DM_OK)
            fail_msg("a file cut to %ld of %ld bytes loaded", cut, size);
        assert_non_null(strstr(err.message, path));
    }
    /* one flipped byte in the weights breaks the checksum */
    buf[size - 100] ^= 0x40;
    FILE *o = fopen(path, "wb");
    fwrite(buf, 1, (size_t)size, o);
    fclose(o);
    expect_load_error(path, DM_ERR_FORMAT, "checksum");
    free(buf);
    dm_model_free(m);
}

static dm_sample_params quick_params(dm_sampler_kind k, uint64_t seed)
{
    dm_sample_params p = dm_sample_default_params();
    p.sampler = k;
    p.steps = 4;
    p.seed = seed;
    return p;
}

static void test_generation_is_deterministic(void **state)
{
    (void)state;
    dm_model *m = tiny_model(3, 3);
    dm_model_info in = dm_model_get_info(m);
    size_t n = (size_t)in.audio_channels * in.length;
    dm_generator *g;
    dm_error err;
    assert_int_equal(dm_generator_create(m, 3, 0, &g, &err), DM_OK);
    float *a = zeros(3 * n), *b = zeros(3 * n), *c = zeros(n);
    for (int k = 0; k < DM_SAMPLER_COUNT; k++) {
        dm_sample_params p = quick_params((dm_sampler_kind)k, 42);
        p.cls = 1;
        assert_int_equal(dm_generate(g, &p, 3, a, &err), DM_OK);
        assert_int_equal(dm_generate(g, &p, 3, b, &err), DM_OK);
        assert_memory_equal(a, b, 3 * n * sizeof(float));
        for (size_t i = 0; i < 3 * n; i++)
            assert_true(isfinite(a[i]));
        /* item 2 of the batch is the single item of seed 44 */
        p.seed = 44;
        assert_int_equal(dm_generate(g, &p, 1, c, &err), DM_OK);
        assert_memory_equal(c, a + 2 * n, n * sizeof(float));
        /* different seeds, different sounds */
        assert_memory_not_equal(a, a + n, n * sizeof(float));
    }
    /* guidance and class change the result */
    dm_sample_params p = quick_params(DM_SAMPLER_DDIM, 7);
    p.cls = 0, p.guidance = 1.0;
    assert_int_equal(dm_generate(g, &p, 1, a, &err), DM_OK);
    p.guidance = 3.0;
    assert_int_equal(dm_generate(g, &p, 1, b, &err), DM_OK);
    assert_memory_not_equal(a, b, n * sizeof(float));
    p.cls = 2;
    assert_int_equal(dm_generate(g, &p, 1, c, &err), DM_OK);
    assert_memory_not_equal(b, c, n * sizeof(float));
    /* bad requests */
    p.cls = 3;
    assert_int_equal(dm_generate(g, &p, 1, a, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "class 3"));
    p.cls = 0;
    assert_int_equal(dm_generate(g, &p, 4, a, &err), DM_ERR_INVALID_ARGUMENT);
    free(a), free(b), free(c);
    dm_generator_free(g);
    dm_model_free(m);
}

/* A model saved and loaded generates bitwise the same audio; float16 storage
 * too once the weights are loaded (they are expanded to float32 once). */
static void test_saved_model_generates_the_same(void **state)
{
    (void)state;
    dm_model *m = tiny_model(0, 4), *l;
    char path[512];
    path_in_tmp(path, sizeof path, "same.dmm");
    assert_int_equal(dm_model_save(m, path, 0, NULL), DM_OK);
    assert_int_equal(dm_model_load(path, &l, NULL), DM_OK);
    size_t n = (size_t)dm_model_get_info(m).length;
    float *a = zeros(n), *b = zeros(n);
    dm_generator *ga, *gb;
    assert_int_equal(dm_generator_create(m, 1, 0, &ga, NULL), DM_OK);
    assert_int_equal(dm_generator_create(l, 1, 0, &gb, NULL), DM_OK);
    dm_sample_params p = quick_params(DM_SAMPLER_HEUN, 9);
    assert_int_equal(dm_generate(ga, &p, 1, a, NULL), DM_OK);
    assert_int_equal(dm_generate(gb, &p, 1, b, NULL), DM_OK);
    assert_memory_equal(a, b, n * sizeof(float));
    free(a), free(b);
    dm_generator_free(ga), dm_generator_free(gb);
    dm_model_free(m), dm_model_free(l);
}

static int cancel_after(void *user, int step, int steps)
{
    (void)steps;
    return step >= *(int *)user;
}

static void test_generation_variation_inpaint_cancel(void **state)
{
    (void)state;
    dm_model *m = tiny_model(0, 5);
    size_t n = (size_t)dm_model_get_info(m).length;
    float *init = zeros(n), *out = zeros(n), *mask = zeros(n);
    for (size_t i = 0; i < n; i++)
        init[i] = 0.5f * sinf(0.05f * i), mask[i] = i < n / 2;
    dm_generator *g;
    assert_int_equal(dm_generator_create(m, 1, 0, &g, NULL), DM_OK);
    /* a tiny strength stays close to the input */
    dm_sample_params p = quick_params(DM_SAMPLER_EULER, 1);
    p.steps = 20, p.init = init, p.strength = 0.02;
    assert_int_equal(dm_generate(g, &p, 1, out, NULL), DM_OK);
    double d = 0, e = 0;
    for (size_t i = 0; i < n; i++)
        d += fabs(out[i] - init[i]), e += fabs(init[i]);
    assert_true(d < 0.3 * e);
    /* in-painting keeps the first half exactly */
    p.strength = 1.0, p.mask = mask;
    assert_int_equal(dm_generate(g, &p, 1, out, NULL), DM_OK);
    for (size_t i = 0; i < n / 2; i++)
        assert_true(fabsf(out[i] - init[i]) < 1e-5f);
    /* cancel */
    int stop = 2;
    p.mask = NULL, p.progress = cancel_after, p.progress_user_data = &stop;
    dm_error err;
    assert_int_equal(dm_generate(g, &p, 1, out, &err), DM_ERR_CANCELLED);
    free(init), free(out), free(mask);
    dm_generator_free(g);
    dm_model_free(m);
}

/* ---- training ---- */

static dm_dataset *synth_dataset(int per_class)
{
    char dir[512];
    path_in_tmp(dir, sizeof dir, "synth");
    dm_error err;
    struct stat sb;
    if (stat(dir, &sb) != 0 && dm_synth_write_dataset(dir, per_class, 11, 8000, 512, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = 8000;
    dp.length = 512;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    return ds;
}

static dm_train_params tiny_train(void)
{
    dm_train_params tp = dm_train_default_params();
    tp.batch = 4;
    tp.lr = 2e-3;
    tp.warmup_steps = 2;
    tp.total_steps = 50;
    tp.seed = 5;
    return tp;
}

static void test_training_lowers_the_loss(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6);
    const dm_prediction targets[] = {DM_PREDICT_V, DM_PREDICT_X0};
    for (int k = 0; k < 2; k++) {
        dm_model_params mp = tiny_params(3);
        mp.prediction = targets[k];
        dm_model *m;
        assert_int_equal(dm_model_create(&mp, 1, &m, NULL), DM_OK);
        dm_trainer *t;
        dm_train_params tp = tiny_train();
        tp.batch = 8;
        dm_error err;
        if (dm_trainer_create(m, &tp, &t, &err) != DM_OK)
            fail_msg("%s", err.message);
        double first = 0, last = 0, loss;
        for (int s = 0; s < 60; s++) {
            if (dm_trainer_step(t, ds, &loss, &err) != DM_OK)
                fail_msg("%s", err.message);
            if (s < 10)
                first += loss / 10;
            if (s >= 50)
                last += loss / 10;
        }
        print_message("# training loss (%s prediction): first 10 steps %.4f, last 10 steps %.4f\n",
                      dm_prediction_name(targets[k]), first, last);
        assert_true(last < 0.8 * first);
        assert_int_equal(dm_trainer_step_count(t), 60);
        dm_trainer_free(t);
        dm_model_free(m);
    }
    dm_dataset_free(ds);
}

static void test_checkpoint_resume_is_exact(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6);
    dm_model_params mp = tiny_params(3);
    dm_model *m;
    assert_int_equal(dm_model_create(&mp, 2, &m, NULL), DM_OK);
    dm_train_params tp = tiny_train();
    dm_trainer *whole, *first, *resumed;
    dm_error err;
    assert_int_equal(dm_trainer_create(m, &tp, &whole, NULL), DM_OK);
    for (int s = 0; s < 5; s++)
        assert_int_equal(dm_trainer_step(whole, ds, NULL, NULL), DM_OK);
    tp.n_threads = 1; /* a different thread count must not matter */
    assert_int_equal(dm_trainer_create(m, &tp, &first, NULL), DM_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(dm_trainer_step(first, ds, NULL, NULL), DM_OK);
    char path[512];
    path_in_tmp(path, sizeof path, "ckpt.dmc");
    if (dm_trainer_save(first, path, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_trainer_free(first);
    if (dm_trainer_load(path, 2, &resumed, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_trainer_step_count(resumed), 3);
    for (int s = 0; s < 2; s++)
        assert_int_equal(dm_trainer_step(resumed, ds, NULL, NULL), DM_OK);
    const dm_model *a = dm_trainer_model(whole), *b = dm_trainer_model(resumed);
    size_t np = dm_model_get_info(a).n_params;
    assert_memory_equal(dm_unet_params_const(dm_model_unet_const(a)),
                        dm_unet_params_const(dm_model_unet_const(b)), np * sizeof(float));
    assert_int_equal(dm_model_get_info(a).checksum, dm_model_get_info(b).checksum);
    /* a checkpoint also loads as a model (its EMA weights) */
    dm_model *cm;
    if (dm_model_load(path, &cm, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_model_get_info(cm).n_classes, 3);
    dm_model_free(cm);
    /* a model file is not a checkpoint */
    char mpath[512];
    path_in_tmp(mpath, sizeof mpath, "plain.dmm");
    assert_int_equal(dm_model_save(m, mpath, 0, NULL), DM_OK);
    assert_int_equal(dm_trainer_load(mpath, 0, &first, &err), DM_ERR_FORMAT);
    assert_non_null(strstr(err.message, "checkpoint"));
    dm_trainer_free(whole);
    dm_trainer_free(resumed);
    dm_model_free(m);
    dm_dataset_free(ds);
}

static void test_trainer_rejects_mismatched_data(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6);
    dm_model_params mp = tiny_params(0); /* unconditional model, labelled data */
    dm_model *m;
    assert_int_equal(dm_model_create(&mp, 2, &m, NULL), DM_OK);
    dm_train_params tp = tiny_train();
    dm_trainer *t;
    assert_int_equal(dm_trainer_create(m, &tp, &t, NULL), DM_OK);
    dm_error err;
    assert_int_equal(dm_trainer_step(t, ds, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "classes"));
    dm_trainer_free(t);
    tp.lr = -1;
    assert_int_equal(dm_trainer_create(m, &tp, &t, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "lr"));
    dm_model_free(m);
    dm_dataset_free(ds);
}

/* ---- groups of trainers (data parallelism without MPI) ---- */

/* A group of threads standing in for processes: reduce sums by recursive doubling, as the
 * MPI code of the dmaudio command does (at distance d, rank r adds the partial sum of r ^ d). */
enum { MAX_GROUP = 4 };
typedef struct group {
    int size;
    pthread_barrier_t barrier;
    float *slot[MAX_GROUP];
    double loss[MAX_GROUP];
    size_t n;
} group;

typedef struct member {
    group *g;
    int rank, steps;
    dm_trainer *t;
    const dm_dataset *ds;
    dm_status status;
} member;

static dm_status group_reduce(float *grads, size_t n, double *loss, void *user_data)
{
    member *me = user_data;
    group *g = me->g;
    for (int d = 1; d < g->size; d *= 2) {
        memcpy(g->slot[me->rank], grads, n * sizeof(float));
        g->loss[me->rank] = *loss;
        pthread_barrier_wait(&g->barrier);
        const float *other = g->slot[me->rank ^ d];
        for (size_t j = 0; j < n; j++)
            grads[j] += other[j];
        *loss += g->loss[me->rank ^ d];
        pthread_barrier_wait(&g->barrier);
    }
    return DM_OK;
}

static void *member_run(void *arg)
{
    member *me = arg;
    me->status = DM_OK;
    for (int s = 0; s < me->steps && me->status == DM_OK; s++)
        me->status = dm_trainer_step(me->t, me->ds, NULL, NULL);
    return NULL;
}

/* Runs `steps` steps of trainers[0..size-1] as a group, one thread each. */
static void run_group(dm_trainer **trainers, int size, const dm_dataset *ds, int steps)
{
    group g = {.size = size, .n = dm_model_get_info(dm_trainer_model(trainers[0])).n_params};
    member mem[MAX_GROUP];
    pthread_t th[MAX_GROUP];
    assert_int_equal(pthread_barrier_init(&g.barrier, NULL, (unsigned)size), 0);
    for (int r = 0; r < size; r++) {
        g.slot[r] = malloc(g.n * sizeof(float));
        assert_non_null(g.slot[r]);
        mem[r] = (member){.g = &g, .rank = r, .steps = steps, .t = trainers[r], .ds = ds};
        dm_error err;
        if (dm_trainer_set_group(trainers[r], r, size, group_reduce, &mem[r], &err) != DM_OK)
            fail_msg("%s", err.message);
    }
    for (int r = 0; r < size; r++)
        assert_int_equal(pthread_create(&th[r], NULL, member_run, &mem[r]), 0);
    for (int r = 0; r < size; r++) {
        pthread_join(th[r], NULL);
        assert_int_equal(mem[r].status, DM_OK);
        free(g.slot[r]);
    }
    pthread_barrier_destroy(&g.barrier);
}

static void assert_same_weights(const dm_trainer *a, const dm_trainer *b)
{
    const dm_model *ma = dm_trainer_model(a), *mb = dm_trainer_model(b);
    size_t np = dm_model_get_info(ma).n_params;
    assert_memory_equal(dm_unet_params_const(dm_model_unet_const(ma)),
                        dm_unet_params_const(dm_model_unet_const(mb)), np * sizeof(float));
}

static void test_group_of_trainers_matches_one(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6);
    dm_model *m = tiny_model(3, 4);
    dm_train_params tp = tiny_train();
    tp.batch = 8;
    tp.shards = 4;
    tp.n_threads = 1;
    dm_error err;
    /* one trainer, 4 steps */
    dm_trainer *one;
    assert_int_equal(dm_trainer_create(m, &tp, &one, NULL), DM_OK);
    for (int s = 0; s < 4; s++)
        assert_int_equal(dm_trainer_step(one, ds, NULL, NULL), DM_OK);
    /* 4 trainers for 2 steps, a checkpoint, 2 trainers for 1 step, a checkpoint, then 1 */
    dm_trainer *g[MAX_GROUP];
    for (int r = 0; r < 4; r++)
        assert_int_equal(dm_trainer_create(m, &tp, &g[r], NULL), DM_OK);
    run_group(g, 4, ds, 2);
    for (int r = 1; r < 4; r++)
        assert_same_weights(g[0], g[r]);
    char path[512];
    path_in_tmp(path, sizeof path, "group.dmc");
    assert_int_equal(dm_trainer_save(g[0], path, NULL), DM_OK);
    for (int r = 0; r < 4; r++)
        dm_trainer_free(g[r]);
    for (int r = 0; r < 2; r++)
        if (dm_trainer_load(path, 1, &g[r], &err) != DM_OK)
            fail_msg("%s", err.message);
    assert_int_equal(dm_trainer_params(g[0]).shards, 4);
    run_group(g, 2, ds, 1);
    assert_same_weights(g[0], g[1]);
    assert_int_equal(dm_trainer_save(g[1], path, NULL), DM_OK);
    dm_trainer_free(g[0]);
    dm_trainer_free(g[1]);
    dm_trainer *last;
    assert_int_equal(dm_trainer_load(path, 1, &last, NULL), DM_OK);
    assert_int_equal(dm_trainer_step_count(last), 3);
    assert_int_equal(dm_trainer_step(last, ds, NULL, NULL), DM_OK);
    assert_same_weights(one, last);
    dm_trainer_free(last);

    /* 3 processes cannot share 4 shards; shards must divide the batch */
    assert_int_equal(dm_trainer_set_group(one, 0, 3, group_reduce, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "3 processes"));
    assert_int_equal(dm_trainer_set_group(one, 0, 2, NULL, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    dm_trainer_free(one);
    tp.shards = 3;
    assert_int_equal(dm_trainer_create(m, &tp, &one, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "3 equal shards"));
    dm_model_free(m);
    dm_dataset_free(ds);
}

/* Shards change only the order of the gradient's sums: the losses of a sharded run follow
 * the unsharded one's to float rounding. */
static void test_shards_only_reorder_the_sums(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6);
    dm_model *m = tiny_model(3, 4);
    dm_train_params tp = tiny_train();
    tp.batch = 8;
    dm_trainer *whole, *sharded;
    assert_int_equal(dm_trainer_create(m, &tp, &whole, NULL), DM_OK);
    tp.shards = 8;
    assert_int_equal(dm_trainer_create(m, &tp, &sharded, NULL), DM_OK);
    for (int s = 0; s < 3; s++) {
        double a, b;
        assert_int_equal(dm_trainer_step(whole, ds, &a, NULL), DM_OK);
        assert_int_equal(dm_trainer_step(sharded, ds, &b, NULL), DM_OK);
        print_message("# step %d: loss %.9f unsharded, %.9f in 8 shards\n", s, a, b);
        assert_true(fabs(a - b) <= 1e-4 * a);
    }
    dm_trainer_free(whole);
    dm_trainer_free(sharded);
    dm_model_free(m);
    dm_dataset_free(ds);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-model.XXXXXX",
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
        cmocka_unit_test(test_model_file_round_trip),
        cmocka_unit_test(test_model_positions_round_trip),
        cmocka_unit_test(test_model_schedule_shift_round_trip),
        cmocka_unit_test(test_model_loader_rejects_bad_files),
        cmocka_unit_test(test_generation_is_deterministic),
        cmocka_unit_test(test_saved_model_generates_the_same),
        cmocka_unit_test(test_generation_variation_inpaint_cancel),
        cmocka_unit_test(test_training_lowers_the_loss),
        cmocka_unit_test(test_checkpoint_resume_is_exact),
        cmocka_unit_test(test_trainer_rejects_mismatched_data),
        cmocka_unit_test(test_group_of_trainers_matches_one),
        cmocka_unit_test(test_shards_only_reorder_the_sums),
    };
    return cmocka_run_group_tests_name("model", tests, setup, teardown);
}
