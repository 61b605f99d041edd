/* The representations end to end: the codec between audio and the network's tensor (wave and
 * spec) round-trips to 1e-5 relative on random signals and synthetic clips; a spec model has
 * the documented shape (channels = 2 (n_fft/2 + 1) per audio channel, frames a multiple of the
 * U-Net's factors, clip length (frames - 1) hop), rejects bad n_fft / hop, encodes what
 * dmaudio.h says (compressed STFT times data_scale), saves and loads (generating bitwise the
 * same), keeps the known frames when in-painting, and trains; and the "it learns" test of
 * tests/test_learn.c, for the spec representation.
 *
 * The learning test has the same data, sampling and criterion as tests/test_learn.c (Fréchet
 * distance to held-out clips at least 5x below white noise's; dm_synth_classify recognises at
 * least half of each class and 80% overall). Its model: n_fft 32 (4 ms), hop 16 at 8 kHz, so
 * 34 channels x 32 frames = 496 samples, U-Net widths 48/64/96 (factors 2, 2; attention at the
 * coarsest level), data_scale 2 (the compressed values of this set have an rms of about 0.35).
 * The spec model needs 4x the wave model's steps (2400; at 600 it has not learnt where in time
 * a click sits, FD ratio about 2x): about 60 s on 2 cores against the wave test's 25 s.
 * DM_LEARN_SPEC_STEPS (2400), DM_LEARN_SPEC_PER_CLASS (24) and DM_LEARN_SPEC_GUIDANCE10 (20)
 * change it; the figures are printed as TAP comments. */
#include "check.h"
#include "dmaudio.h"
#include "dmaudio_audio.h"
#include "dmaudio_spectral.h"
#include "dmfile.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

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

/* CPU seconds of this process (all threads): a figure the machine's load does not inflate. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* A small network for shape and file tests: factors 2 and 2 (frames a multiple of 4). */
static dm_model_params spec_params(int n_fft, int hop, int channels, int length)
{
    dm_model_params p = dm_model_default_params();
    p.repr = DM_REPR_SPEC;
    p.n_fft = n_fft, p.hop = hop;
    p.unet.n_levels = 3;
    p.unet.channels[0] = 16, p.unet.channels[1] = 16, p.unet.channels[2] = 32;
    p.unet.factors[0] = 2, p.unet.factors[1] = 2;
    p.unet.attention[0] = 0, p.unet.attention[1] = 0, p.unet.attention[2] = 1;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 3;
    p.sample_rate = 8000;
    p.audio_channels = channels;
    p.length = length;
    p.data_scale = 2.0;
    p.name = "spec-tiny";
    return p;
}

static dm_model *make_model(const dm_model_params *p, uint64_t seed, int random_weights)
{
    dm_model *m;
    dm_error err;
    if (dm_model_create(p, seed, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    if (random_weights) { /* the zero-initialised blocks would hide bugs */
        float *w = dm_unet_params(dm_model_unet(m));
        size_t n = dm_model_get_info(m).n_params;
        dm_rng_normal(seed + 100, 0, 0, w, n);
        for (size_t i = 0; i < n; i++)
            w[i] *= 0.1f;
        dm_model_update_checksum(m);
    }
    return m;
}

/* encode then decode n_items signals; returns the worst relative error (max |err| / max |x|). */
static double round_trip(const dm_model *m, const float *audio, int n_items)
{
    dm_model_info in = dm_model_get_info(m);
    size_t na = (size_t)in.audio_channels * in.length, nn = (size_t)in.net_channels * in.net_length;
    float *net = zeros(nn), *back = zeros(na);
    dm_codec *c;
    dm_error err;
    if (dm_codec_create(m, &c, &err) != DM_OK)
        fail_msg("%s", err.message);
    double worst = 0.0;
    for (int i = 0; i < n_items; i++) {
        dm_codec_encode(c, audio + i * na, net);
        for (size_t j = 0; j < nn; j++)
            assert_true(isfinite(net[j]));
        dm_codec_decode(c, net, back);
        double e = rel_err(back, audio + i * na, na);
        worst = e > worst ? e : worst;
    }
    dm_codec_free(c);
    free(net), free(back);
    return worst;
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    static const struct {
        dm_repr repr;
        int n_fft, hop, channels, length;
    } cases[] = {
        {DM_REPR_WAVE, 512, 128, 1, 512}, {DM_REPR_WAVE, 512, 128, 2, 1024},
        {DM_REPR_SPEC, 64, 16, 1, 512},   {DM_REPR_SPEC, 64, 32, 2, 700},
        {DM_REPR_SPEC, 16, 8, 1, 64},     {DM_REPR_SPEC, 256, 64, 1, 2048},
        {DM_REPR_SPEC, 512, 128, 2, 4096}, {DM_REPR_SPEC, 128, 1, 1, 300},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dm_model_params p = spec_params(cases[k].n_fft, cases[k].hop, cases[k].channels,
                                        cases[k].length);
        p.repr = cases[k].repr;
        if (p.repr == DM_REPR_WAVE)
            p.unet.factors[0] = p.unet.factors[1] = 2;
        dm_model *m = make_model(&p, 1, 0);
        dm_model_info in = dm_model_get_info(m);
        const int items = 4;
        size_t na = (size_t)in.audio_channels * in.length;
        float *a = zeros(items * na);
        /* white noise, a loud-quiet mix (the compression's range), and synthetic clips */
        dm_rng_normal(7 + k, 0, 0, a, 2 * na);
        for (size_t j = na; j < 2 * na; j++)
            a[j] *= (j % 97 < 50) ? 1e-3f : 1.0f;
        for (int ch = 0; ch < in.audio_channels; ch++) {
            dm_synth_clip(DM_SYNTH_TONE, 3, (uint64_t)ch, 8000, in.length, a + 2 * na + (size_t)ch * in.length);
            dm_synth_clip(DM_SYNTH_CLICK, 3, (uint64_t)ch, 8000, in.length, a + 3 * na + (size_t)ch * in.length);
        }
        double e = round_trip(m, a, items);
        print_message("# %s n_fft %d hop %d, %d ch, %d samples -> net (%d, %d): round trip %.2g\n",
                      dm_repr_name(in.repr), in.n_fft, in.hop, in.audio_channels, in.length,
                      in.net_channels, in.net_length, e);
        assert_true(e <= 1e-5);
        free(a);
        dm_model_free(m);
    }
}

static void test_spec_shape_and_encoding(void **state)
{
    (void)state;
    /* 512 samples, hop 16: 33 frames -> 36 (a multiple of 4) -> 35 * 16 = 560 samples */
    dm_model_params p = spec_params(64, 16, 1, 512);
    dm_model *m = make_model(&p, 1, 0);
    dm_model_info in = dm_model_get_info(m);
    assert_int_equal(in.repr, DM_REPR_SPEC);
    assert_int_equal(in.net_channels, 2 * 33);
    assert_int_equal(in.net_length, 36);
    assert_int_equal(in.length, 35 * 16);
    assert_int_equal(dm_unet_get_config(dm_model_unet_const(m))->in_channels, 66);
    assert_int_equal(dm_unet_get_config(dm_model_unet_const(m))->out_channels, 66);
    /* a length that already gives a multiple of 4 frames is kept */
    p.length = 496; /* 32 frames */
    dm_model *k = make_model(&p, 1, 0);
    assert_int_equal(dm_model_get_info(k).length, 496);
    assert_int_equal(dm_model_get_info(k).net_length, 32);
    dm_model_free(k);
    /* stereo: channels [re, im] of the left channel, then the right */
    p.audio_channels = 2;
    k = make_model(&p, 1, 0);
    assert_int_equal(dm_model_get_info(k).net_channels, 4 * 33);
    dm_model_free(k);

    /* the encoding is data_scale * |X|^0.5 * X / |X|, [re rows, im rows] */
    float *x = zeros((size_t)in.length), *net = zeros((size_t)in.net_channels * in.net_length);
    dm_rng_normal(3, 0, 0, x, (size_t)in.length);
    dm_codec *c;
    assert_int_equal(dm_codec_create(m, &c, NULL), DM_OK);
    dm_codec_encode(c, x, net);
    dm_stft *st;
    assert_int_equal(dm_stft_create(64, 16, &st, NULL), DM_OK);
    const int B = 33, F = in.net_length;
    float *re = zeros((size_t)B * F), *im = zeros((size_t)B * F);
    assert_int_equal(dm_stft_forward(st, x, (size_t)in.length, re, im, NULL), DM_OK);
    float *want = zeros((size_t)2 * B * F);
    for (int i = 0; i < B * F; i++) {
        double mag = hypot(re[i], im[i]), f = mag > 0 ? 2.0 / sqrt(mag) : 0.0;
        want[i] = (float)(re[i] * f);
        want[B * F + i] = (float)(im[i] * f);
    }
    assert_close("spec encoding", net, want, (size_t)2 * B * F, 1e-6);
    /* silence encodes to 0 and decodes to silence */
    memset(x, 0, (size_t)in.length * sizeof *x);
    dm_codec_encode(c, x, net);
    for (int i = 0; i < 2 * B * F; i++)
        assert_true(net[i] == 0.0f);
    dm_codec_decode(c, net, x);
    for (int i = 0; i < in.length; i++)
        assert_true(x[i] == 0.0f);
    /* the in-painting mask: a frame is kept when its whole window is */
    float *mask = zeros((size_t)in.length), *fm = zeros((size_t)F);
    for (int i = 0; i < 200; i++)
        mask[i] = 1.0f;
    dm_codec_mask(c, mask, fm);
    for (int t = 0; t < F; t++) /* frame t reads samples t*16 - 32 .. t*16 + 31, reflected */
        assert_true(fm[t] == (t * 16 + 31 < 200 ? 1.0f : 0.0f));
    free(x), free(net), free(re), free(im), free(want), free(mask), free(fm);
    dm_stft_free(st);
    dm_codec_free(c);
    dm_model_free(m);

    /* bad n_fft / hop */
    static const int bad[][2] = {{48, 12}, {8, 4}, {16384, 4096}, {64, 48}, {64, 33}, {64, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dm_model_params q = spec_params(bad[i][0], bad[i][1], 1, 512);
        dm_error err;
        dm_model *b = NULL;
        assert_int_equal(dm_model_create(&q, 1, &b, &err), DM_ERR_INVALID_ARGUMENT);
        assert_null(b);
        assert_non_null(strstr(err.message, "spec"));
    }
    /* too many network channels for the U-Net */
    dm_model_params q = spec_params(4096, 1024, 2, 8192);
    dm_error err;
    dm_model *b = NULL;
    assert_int_equal(dm_model_create(&q, 1, &b, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "4096"));
}

/* A copy of model file src with one key (a float or an int) set to v. */
static void copy_with_key(const char *src, const char *dst, const char *key, double v)
{
    dm_file *f;
    dm_file_writer *w;
    assert_int_equal(dm_file_read(src, &f, NULL), DM_OK);
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    for (int i = 0; i < dm_file_n_keys(f); i++) {
        const char *name;
        int type;
        dm_file_key(f, i, &name, &type);
        int64_t iv;
        double fv;
        const char *sv;
        const int64_t *ia;
        const char *const *sa;
        size_t n;
        if (strcmp(name, key) == 0 && dm_file_get_int(f, name, &iv, NULL) == DM_OK)
            dm_file_writer_int(w, name, (int64_t)v);
        else if (strcmp(name, key) == 0)
            dm_file_writer_float(w, name, v);
        else if (dm_file_get_int(f, name, &iv, NULL) == DM_OK)
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
    for (int i = 0; i < dm_file_n_tensors(f); i++) {
        const char *name;
        int ndim, dtype;
        int64_t dims[4];
        dm_file_tensor_info(f, i, &name, &ndim, dims, &dtype);
        size_t n = 1;
        for (int d = 0; d < ndim; d++)
            n *= (size_t)dims[d];
        float *v = zeros(n);
        assert_int_equal(dm_file_read_tensor(f, name, v, n, NULL), DM_OK);
        assert_int_equal(dm_file_writer_tensor(w, name, ndim, dims, 0, v), DM_OK);
        free(v);
    }
    assert_int_equal(dm_file_writer_save(w, dst, NULL), DM_OK);
    dm_file_writer_free(w);
    dm_file_free(f);
}

static void test_spec_model_file_and_generation(void **state)
{
    (void)state;
    static const char *const names[] = {"click", "noise", "tone"};
    dm_model_params p = spec_params(64, 16, 1, 496);
    p.n_classes = 3, p.class_names = names;
    dm_model *m = make_model(&p, 4, 1), *l = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/spec.dmm", tmpdir);
    dm_error err;
    assert_int_equal(dm_model_save(m, path, 0, &err), DM_OK);
    if (dm_model_load(path, &l, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_model_info a = dm_model_get_info(m), b = dm_model_get_info(l);
    assert_int_equal(b.repr, DM_REPR_SPEC);
    assert_int_equal(b.n_fft, 64);
    assert_int_equal(b.hop, 16);
    assert_int_equal(b.length, a.length);
    assert_int_equal(b.net_channels, a.net_channels);
    assert_int_equal(b.net_length, a.net_length);
    assert_int_equal(b.checksum, a.checksum);
    size_t n = (size_t)a.length;
    float *x = zeros(2 * n), *y = zeros(2 * n);
    dm_generator *ga, *gb;
    assert_int_equal(dm_generator_create(m, 2, 0, &ga, NULL), DM_OK);
    assert_int_equal(dm_generator_create(l, 2, 0, &gb, NULL), DM_OK);
    for (int k = 0; k < DM_SAMPLER_COUNT; k++) {
        dm_sample_params sp = dm_sample_default_params();
        sp.sampler = (dm_sampler_kind)k, sp.steps = 4, sp.seed = 9, sp.cls = 2;
        assert_int_equal(dm_generate(ga, &sp, 2, x, NULL), DM_OK);
        assert_int_equal(dm_generate(gb, &sp, 2, y, NULL), DM_OK);
        assert_memory_equal(x, y, 2 * n * sizeof(float));
        for (size_t i = 0; i < 2 * n; i++)
            assert_true(isfinite(x[i]));
        assert_memory_not_equal(x, x + n, n * sizeof(float));
    }
    /* in-painting: samples covered by kept frames only come back (nearly) exactly */
    float *init = zeros(n), *mask = zeros(n);
    dm_synth_clip(DM_SYNTH_TONE, 1, 0, 8000, (int)n, init);
    for (size_t i = 0; i < n / 2; i++)
        mask[i] = 1.0f;
    dm_sample_params sp = dm_sample_default_params();
    sp.sampler = DM_SAMPLER_EULER, sp.steps = 10, sp.seed = 1, sp.init = init, sp.mask = mask;
    assert_int_equal(dm_generate(gb, &sp, 1, x, NULL), DM_OK);
    /* kept frames: t * 16 + 31 < n / 2; a sample i is covered by frames t with
     * t * 16 - 32 <= i <= t * 16 + 31 */
    int last_kept = -1;
    for (int t = 0; t < b.net_length; t++)
        if (t * 16 + 31 < (int)n / 2)
            last_kept = t;
    int exact_end = (last_kept + 1) * 16 - 32; /* first sample frame last_kept + 1 covers */
    assert_true(exact_end > 150);
    double worst = 0, peak = 0;
    for (int i = 0; i < exact_end; i++) {
        worst = fmax(worst, fabs((double)x[i] - init[i]));
        peak = fmax(peak, fabs((double)init[i]));
    }
    print_message("# spec in-painting: samples 0..%d kept, worst error %.2g (peak %.2f)\n",
                  exact_end - 1, worst, peak);
    assert_true(worst <= 1e-5 * peak);
    /* a file whose compression exponent is not ours is refused */
    char other[512];
    snprintf(other, sizeof other, "%s/spec-a03.dmm", tmpdir);
    copy_with_key(path, other, "dmaudio.spec.compression", 0.3);
    dm_model *o = NULL;
    assert_int_equal(dm_model_load(other, &o, &err), DM_ERR_UNSUPPORTED);
    assert_null(o);
    assert_non_null(strstr(err.message, "dmaudio.spec.compression"));
    /* and so is a clip length that is not (frames - 1) x hop with whole frames */
    copy_with_key(path, other, "dmaudio.length", 500);
    assert_int_equal(dm_model_load(other, &o, &err), DM_ERR_FORMAT);
    assert_null(o);
    assert_non_null(strstr(err.message, "dmaudio.length = 500"));
    copy_with_key(path, other, "dmaudio.length", 512); /* 33 frames, not a multiple of 4 */
    assert_int_equal(dm_model_load(other, &o, &err), DM_ERR_FORMAT);
    copy_with_key(path, other, "dmaudio.spec.hop", 24);
    assert_int_equal(dm_model_load(other, &o, &err), DM_ERR_FORMAT);
    assert_non_null(strstr(err.message, "hop 24"));
    free(x), free(y), free(init), free(mask);
    dm_generator_free(ga), dm_generator_free(gb);
    dm_model_free(m), dm_model_free(l);
}

static dm_dataset *synth_dataset(int per_class, int length, const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    dm_error err;
    struct stat sb;
    if (stat(dir, &sb) != 0 && dm_synth_write_dataset(dir, per_class, 1, 8000, length, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = 8000, dp.length = length;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    return ds;
}

static void test_spec_training_runs_and_resumes(void **state)
{
    (void)state;
    dm_dataset *ds = synth_dataset(6, 496, "synth496");
    static const char *const names[] = {"click", "noise", "tone"};
    dm_model_params p = spec_params(64, 16, 1, 496);
    p.n_classes = 3, p.class_names = names;
    dm_model *m = make_model(&p, 2, 0);
    dm_train_params tp = dm_train_default_params();
    tp.batch = 8, tp.lr = 2e-3, tp.warmup_steps = 2, tp.total_steps = 20, tp.seed = 5;
    dm_trainer *t;
    dm_error err;
    if (dm_trainer_create(m, &tp, &t, &err) != DM_OK)
        fail_msg("%s", err.message);
    /* (learning is the last test's business: 20 steps of a network this small show nothing) */
    double first = 0, last = 0, loss;
    for (int s = 0; s < 20; s++) {
        if (dm_trainer_step(t, ds, &loss, &err) != DM_OK)
            fail_msg("%s", err.message);
        assert_true(isfinite(loss) && loss > 0);
        if (s < 5)
            first += loss / 5;
        if (s >= 15)
            last += loss / 5;
    }
    print_message("# spec training loss: first 5 steps %.4f, last 5 steps %.4f\n", first, last);
    /* a checkpoint of a spec model resumes exactly */
    char path[512];
    snprintf(path, sizeof path, "%s/spec.ckpt", tmpdir);
    dm_trainer *r;
    assert_int_equal(dm_trainer_save(t, path, &err), DM_OK);
    if (dm_trainer_load(path, 1, &r, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_trainer_step(t, ds, NULL, NULL), DM_OK);
    assert_int_equal(dm_trainer_step(r, ds, NULL, NULL), DM_OK);
    const dm_model *a = dm_trainer_model(t), *b = dm_trainer_model(r);
    assert_memory_equal(dm_unet_params_const(dm_model_unet_const(a)),
                        dm_unet_params_const(dm_model_unet_const(b)),
                        dm_model_get_info(a).n_params * sizeof(float));
    /* the STFT loss is for wave models */
    dm_trainer_free(r);
    tp.stft_loss_weight = 1.0;
    assert_int_equal(dm_trainer_create(m, &tp, &r, &err), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "wave"));
    dm_trainer_free(t);
    dm_model_free(m);
    dm_dataset_free(ds);
}

/* ---- it learns, in the spec representation ---- */

#define RATE 8000
#define NC 3

static float *embed(const float *clips, int count, int len)
{
    const float **ptr = malloc((size_t)count * sizeof *ptr);
    size_t *lens = malloc((size_t)count * sizeof *lens);
    float *emb = zeros((size_t)count * DM_EMBED_DIM);
    for (int i = 0; i < count; i++)
        ptr[i] = clips + (size_t)i * len, lens[i] = (size_t)len;
    dm_error err;
    if (dm_embed_clips(ptr, lens, count, RATE, 0, emb, &err) != DM_OK)
        fail_msg("%s", err.message);
    free(ptr);
    free(lens);
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

static void test_spec_model_learns_the_synthetic_distribution(void **state)
{
    (void)state;
    const int steps = env_int("DM_LEARN_SPEC_STEPS", 2400);
    const int per = env_int("DM_LEARN_SPEC_PER_CLASS", 24);
    const double guidance = env_int("DM_LEARN_SPEC_GUIDANCE10", 20) / 10.0;

    /* n_fft 32 (4 ms), hop 16 at 8 kHz: 34 channels x 32 frames = 496 samples */
    dm_model_params mp = dm_model_default_params();
    mp.repr = DM_REPR_SPEC;
    mp.n_fft = 32, mp.hop = 16;
    mp.unet.n_levels = 3;
    mp.unet.channels[0] = 48, mp.unet.channels[1] = 64, mp.unet.channels[2] = 96;
    mp.unet.factors[0] = 2, mp.unet.factors[1] = 2;
    mp.unet.attention[0] = 0, mp.unet.attention[1] = 0, mp.unet.attention[2] = 1;
    mp.unet.heads = 4, mp.unet.groups = 8, mp.unet.kernel = 5;
    mp.sample_rate = RATE, mp.length = 496;
    mp.data_scale = 2.0;
    mp.name = "learn-spec";
    /* the dataset, at the model's clip length */
    const char *names[NC] = {"click", "noise", "tone"}; /* sorted sub-folder names */
    mp.n_classes = NC, mp.class_names = names;
    dm_model *m;
    dm_error err;
    if (dm_model_create(&mp, 1, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    const int LEN = dm_model_get_info(m).length;
    assert_int_equal(LEN, 496);
    assert_int_equal(dm_model_get_info(m).net_channels, 34);
    assert_int_equal(dm_model_get_info(m).net_length, 32);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/learn", tmpdir);
    if (dm_synth_write_dataset(dir, 64, 1, RATE, LEN, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = RATE, dp.length = LEN;
    dm_dataset *ds;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(dm_dataset_n_classes(ds), NC);
    for (int c = 0; c < NC; c++)
        assert_string_equal(dm_dataset_class_name(ds, c), names[c]);

    dm_train_params tp = dm_train_default_params();
    tp.batch = 16, tp.lr = 2e-3, tp.warmup_steps = 20, tp.total_steps = steps;
    tp.ema_decay = 0.99, tp.seed = 3;
    dm_trainer *t;
    assert_int_equal(dm_trainer_create(m, &tp, &t, &err), DM_OK);
    double t0 = now(), c0 = cpu_now(), loss = 0, avg = 0;
    for (int s = 0; s < steps; s++) {
        if (dm_trainer_step(t, ds, &loss, &err) != DM_OK)
            fail_msg("%s", err.message);
        avg = s ? 0.95 * avg + 0.05 * loss : loss;
    }
    double train_time = now() - t0, train_cpu = cpu_now() - c0;

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

    float *eg = embed(gen, NC * per, LEN), *eh = embed(held, NC * per, LEN);
    float *en = embed(noise, NC * per, LEN);
    double fd_gen = fd(eg, NC * per, eh, NC * per), fd_noise = fd(en, NC * per, eh, NC * per);

    int physical[NC] = {0}, total = 0;
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < per; i++)
            physical[c] += strcmp(dm_synth_class_name(dm_synth_classify(gen + ((size_t)c * per + i) * LEN, RATE, LEN)), names[c]) == 0;
    for (int c = 0; c < NC; c++) {
        print_message("# %s:", names[c]);
        for (int i = 0; i < per && i < 8; i++) {
            dm_synth_stats ss;
            dm_synth_stats_compute(gen + ((size_t)c * per + i) * LEN, RATE, LEN, &ss);
            print_message(" %.0fHz/%.1fms", ss.freq_hz, ss.t90_s * 1e3);
        }
        print_message("\n");
    }
    print_message("# learn-spec: %d params, %d steps in %.1f s (%.1f s CPU; loss %.4f), %d clips "
                  "in %.1f s\n", (int)dm_model_get_info(m).n_params, steps, train_time, train_cpu,
                  avg, NC * per, gen_time);
    print_message("# learn-spec: FD(generated, held-out) %.2f, FD(noise, held-out) %.2f, ratio "
                  "%.1fx\n", fd_gen, fd_noise, fd_noise / fd_gen);
    for (int c = 0; c < NC; c++)
        print_message("# learn-spec: class %-6s recognised %d/%d\n", names[c], physical[c], per);
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
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-repr.XXXXXX",
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
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_spec_shape_and_encoding),
        cmocka_unit_test(test_spec_model_file_and_generation),
        cmocka_unit_test(test_spec_training_runs_and_resumes),
        cmocka_unit_test(test_spec_model_learns_the_synthetic_distribution),
    };
    return cmocka_run_group_tests_name("repr", tests, setup, teardown);
}
