/* Training datasets (classes from sub-folders, deterministic order, padding,
 * crops, errors) and the synthetic dataset (deterministic, in range,
 * non-silent, classes told apart by two stated statistics). */
#include "check.h"
#include "dmaudio_audio.h"

#include <errno.h>
#include <ftw.h>
#include <sndfile.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_LEN 1024

static char tmpdir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-dataset.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define assert_contains(msg, what)                                                              \
    do {                                                                                        \
        if (!strstr((msg), (what)))                                                             \
            fail_msg("message \"%s\" does not contain \"%s\"", (msg), (what));                  \
    } while (0)

/* tmpdir/rel; creates the parent folders. */
static const char *tpath(char *buf, const char *rel)
{
    snprintf(buf, PATH_LEN, "%s/%s", tmpdir, rel);
    for (char *p = buf + strlen(tmpdir) + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    }
    return buf;
}

/* A clip whose first sample encodes `tag` (tag / 1000), a constant 0.25 after:
 * float WAV, 24-bit FLAC, or (through libsndfile directly) a float AIFF. */
static void write_clip(const char *rel, int channels, int frames, int rate, int tag)
{
    char path[PATH_LEN];
    dm_audio a;
    dm_error err;
    assert_int_equal(dm_audio_alloc(&a, channels, frames, rate, &err), DM_OK);
    for (int c = 0; c < channels; c++) {
        for (int i = 0; i < frames; i++)
            a.data[c * frames + i] = 0.25f;
        a.data[c * frames] = tag / 1000.0f;
    }
    tpath(path, rel);
    if (strstr(rel, ".aiff")) {
        SF_INFO info = {.samplerate = rate, .channels = channels,
                        .format = SF_FORMAT_AIFF | SF_FORMAT_FLOAT};
        SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
        assert_non_null(sf);
        float *inter = malloc(sizeof(float) * (size_t)(channels * frames));
        for (int i = 0; i < frames; i++)
            for (int c = 0; c < channels; c++)
                inter[i * channels + c] = a.data[c * frames + i];
        assert_int_equal(sf_writef_float(sf, inter, frames), frames);
        sf_close(sf);
        free(inter);
    } else {
        dm_audio_write_params wp = dm_audio_write_default_params();
        wp.format = strstr(rel, ".flac") ? DM_SAMPLE_PCM_24 : DM_SAMPLE_FLOAT;
        if (dm_audio_write(path, &a, &wp, &err) != DM_OK)
            fail_msg("%s", err.message);
    }
    dm_audio_free(&a);
}

static void write_text(const char *rel, const char *text)
{
    char path[PATH_LEN];
    FILE *f = fopen(tpath(path, rel), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

typedef struct progress_log {
    int calls, last_done, total, stop_at;
} progress_log;

static int on_progress(int done, int total, const char *path, void *user_data)
{
    progress_log *log = user_data;
    assert_non_null(path);
    assert_int_equal(done, log->last_done + 1);
    log->calls++;
    log->last_done = done;
    log->total = total;
    return log->stop_at && done >= log->stop_at;
}

/* The labelled folder of the tests: three classes made in an order that is
 * not the sorted one, hidden and non-audio files, a nested folder, a stereo
 * file, a file at another rate, a file shorter than the dataset length. */
static void make_labelled(const char *root, bool reverse)
{
    static const struct {
        const char *rel;
        int channels, frames, rate, tag;
    } files[] = {
        {"snare/s2.wav", 1, 1500, 16000, 21},   {"snare/s1.WAV", 1, 1200, 16000, 20},
        {"kick/k1.wav", 2, 1600, 16000, 10},    {"kick/deep/k3.flac", 1, 3000, 48000, 12},
        {"kick/k2.wav", 1, 400, 16000, 11},     {"hat/h1.aiff", 1, 1000, 16000, 30},
        {"hat/.hidden.wav", 1, 1000, 16000, 99}, {".cache/c.wav", 1, 1000, 16000, 98},
    };
    const int n = (int)(sizeof files / sizeof files[0]);
    for (int k = 0; k < n; k++) {
        int j = reverse ? n - 1 - k : k;
        char rel[PATH_LEN];
        snprintf(rel, sizeof rel, "%s/%s", root, files[j].rel);
        write_clip(rel, files[j].channels, files[j].frames, files[j].rate, files[j].tag);
    }
    char rel[PATH_LEN];
    snprintf(rel, sizeof rel, "%s/hat/readme.txt", root);
    write_text(rel, "not audio, skipped\n");
    snprintf(rel, sizeof rel, "%s/manifest.csv", root);
    write_text(rel, "a,b\n");
}

static void test_labelled_folder(void **state)
{
    (void)state;
    make_labelled("lab", false);
    make_labelled("lab_rev", true);
    char dir[PATH_LEN], dir2[PATH_LEN];
    snprintf(dir, sizeof dir, "%s/lab", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/lab_rev/", tmpdir); /* a trailing slash is fine */
    dm_dataset_params p = dm_dataset_default_params();
    p.rate = 16000;
    p.length = 1000;
    progress_log log = {0};
    p.progress = on_progress;
    p.user_data = &log;
    dm_dataset *ds = NULL, *ds2 = NULL;
    dm_error err;
    if (dm_dataset_load(dir, &p, &ds, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(log.calls, 6);
    assert_int_equal(log.total, 6);
    p.progress = NULL;
    assert_int_equal(dm_dataset_load(dir2, &p, &ds2, &err), DM_OK);

    assert_int_equal(dm_dataset_count(ds), 6);
    assert_int_equal(dm_dataset_n_classes(ds), 3);
    assert_string_equal(dm_dataset_class_name(ds, 0), "hat");
    assert_string_equal(dm_dataset_class_name(ds, 1), "kick");
    assert_string_equal(dm_dataset_class_name(ds, 2), "snare");
    assert_null(dm_dataset_class_name(ds, 3));
    assert_int_equal(dm_dataset_find_class(ds, "snare"), 2);
    assert_int_equal(dm_dataset_find_class(ds, "tom"), -1);
    assert_int_equal(dm_dataset_channels(ds), 1);
    assert_int_equal(dm_dataset_rate(ds), 16000);

    /* depth-first, bytewise-sorted names, whatever the creation order */
    static const struct {
        const char *rel;
        int cls, tag;
        int64_t frames;
    } expect[] = {
        {"hat/h1.aiff", 0, 30, 1000},     {"kick/deep/k3.flac", 1, 12, 1000},
        {"kick/k1.wav", 1, 10, 1600},     {"kick/k2.wav", 1, 11, 1000},
        {"snare/s1.WAV", 2, 20, 1200},    {"snare/s2.wav", 2, 21, 1500},
    };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(dm_dataset_relpath(ds, i), expect[i].rel);
        assert_string_equal(dm_dataset_relpath(ds2, i), expect[i].rel);
        char full[2 * PATH_LEN];
        snprintf(full, sizeof full, "%s/%s", dir, expect[i].rel);
        assert_string_equal(dm_dataset_path(ds, i), full);
        const float *data;
        int64_t frames;
        int cls;
        assert_int_equal(dm_dataset_item(ds, i, &data, &frames, &cls), DM_OK);
        assert_int_equal(cls, expect[i].cls);
        /* the 48 kHz file: 3000 frames -> 1000 at 16 kHz (resampled, so the tag
         * is smeared; the others are exact) */
        assert_int_equal(frames, expect[i].frames);
        if (expect[i].tag != 12) {
            assert_true(fabsf(data[0] - expect[i].tag / 1000.0f) < 1e-6f);
            assert_true(fabsf(data[1] - 0.25f) < 1e-6f);
        }
    }
    /* k2 (400 frames) is zero-padded to the length 1000 */
    const float *k2;
    int64_t n;
    dm_dataset_item(ds, 3, &k2, &n, NULL);
    assert_true(k2[399] == 0.25f && k2[400] == 0.0f && k2[999] == 0.0f);
    /* the stereo file k1 was mixed down: (tag + tag) / 2 = tag */

    /* crops, with padding on both sides */
    float buf[2000];
    assert_int_equal(dm_dataset_crop(ds, 4, -10, 30, buf), DM_OK); /* s1, 1200 frames */
    for (int i = 0; i < 10; i++)
        assert_true(buf[i] == 0.0f);
    assert_true(fabsf(buf[10] - 0.020f) < 1e-6f && buf[11] == 0.25f && buf[29] == 0.25f);
    assert_int_equal(dm_dataset_crop(ds, 4, 1190, 20, buf), DM_OK);
    for (int i = 0; i < 10; i++)
        assert_true(buf[i] == 0.25f);
    for (int i = 10; i < 20; i++)
        assert_true(buf[i] == 0.0f);
    assert_int_equal(dm_dataset_crop(ds, 4, 5000, 20, buf), DM_OK);
    for (int i = 0; i < 20; i++)
        assert_true(buf[i] == 0.0f);
    assert_int_equal(dm_dataset_crop(ds, 4, -5000, 20, buf), DM_OK);
    assert_int_equal(dm_dataset_crop(ds, 0, -500, 2000, buf), DM_OK); /* wider than the item */
    assert_true(buf[499] == 0.0f && buf[501] == 0.25f && buf[1499] == 0.25f && buf[1500] == 0.0f);
    assert_int_equal(dm_dataset_crop(ds, 6, 0, 10, buf), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_dataset_item(ds, -1, NULL, NULL, NULL), DM_ERR_INVALID_ARGUMENT);
    dm_dataset_free(ds);
    dm_dataset_free(ds2);

    /* stereo: mono files copied to both channels, the stereo file kept */
    p.channels = 2;
    assert_int_equal(dm_dataset_load(dir, &p, &ds, &err), DM_OK);
    const float *d;
    assert_int_equal(dm_dataset_item(ds, 3, &d, &n, NULL), DM_OK);
    assert_memory_equal(d, d + n, (size_t)n * sizeof *d);
    assert_int_equal(dm_dataset_crop(ds, 2, 0, 4, buf), DM_OK);
    assert_true(fabsf(buf[0] - 0.010f) < 1e-6f && fabsf(buf[4] - 0.010f) < 1e-6f);
    dm_dataset_free(ds);

    /* scan only: files and classes, no audio */
    p = dm_dataset_default_params();
    p.scan_only = 1;
    assert_int_equal(dm_dataset_load(dir, &p, &ds, &err), DM_OK);
    assert_int_equal(dm_dataset_count(ds), 6);
    assert_int_equal(dm_dataset_n_classes(ds), 3);
    assert_int_equal(dm_dataset_item(ds, 0, NULL, NULL, NULL), DM_ERR_INVALID_ARGUMENT);
    dm_dataset_free(ds);

    /* cancelled by the progress callback */
    p = dm_dataset_default_params();
    p.rate = 16000;
    log = (progress_log){.stop_at = 2};
    p.progress = on_progress;
    p.user_data = &log;
    ds = (dm_dataset *)&log;
    assert_int_equal(dm_dataset_load(dir, &p, &ds, &err), DM_ERR_CANCELLED);
    assert_null(ds);
    assert_int_equal(log.calls, 2);
}

static void test_unconditional(void **state)
{
    (void)state;
    write_clip("flat/a.wav", 1, 100, 16000, 1);
    write_clip("flat/b.flac", 1, 100, 16000, 2);
    char dir[PATH_LEN];
    snprintf(dir, sizeof dir, "%s/flat", tmpdir);
    dm_dataset_params p = dm_dataset_default_params();
    p.rate = 16000;
    dm_dataset *ds;
    dm_error err;
    assert_int_equal(dm_dataset_load(dir, &p, &ds, &err), DM_OK);
    assert_int_equal(dm_dataset_count(ds), 2);
    assert_int_equal(dm_dataset_n_classes(ds), 0);
    int cls = 5;
    assert_int_equal(dm_dataset_item(ds, 1, NULL, NULL, &cls), DM_OK);
    assert_int_equal(cls, -1);
    assert_string_equal(dm_dataset_relpath(ds, 1), "b.flac");
    dm_dataset_free(ds);
}

static void expect_load_error(const char *rel, dm_status status, const char *what,
                              const char *named)
{
    char dir[PATH_LEN];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, rel);
    dm_dataset_params p = dm_dataset_default_params();
    p.rate = 16000;
    dm_dataset *ds = (dm_dataset *)dir;
    dm_error err;
    dm_status st = dm_dataset_load(dir, &p, &ds, &err);
    if (st != status)
        fail_msg("%s: status %s, expected %s (%s)", dir, dm_status_name(st),
                 dm_status_name(status), st ? err.message : "no error");
    print_message("# %s\n", err.message);
    assert_null(ds);
    assert_contains(err.message, what);
    assert_contains(err.message, named ? named : dir);
}

static void test_errors(void **state)
{
    (void)state;
    char path[PATH_LEN];
    /* labelled and unlabelled files mixed */
    write_clip("mixed/top.wav", 1, 100, 16000, 1);
    write_clip("mixed/kick/k.wav", 1, 100, 16000, 1);
    expect_load_error("mixed", DM_ERR_INVALID_ARGUMENT, "class folder", NULL);
    /* empty, and only non-audio or hidden files */
    mkdir(tpath(path, "empty"), 0777);
    expect_load_error("empty", DM_ERR_INVALID_ARGUMENT, "no audio files", NULL);
    write_text("junk/notes.txt", "x");
    write_clip("junk/.hidden.wav", 1, 100, 16000, 1);
    expect_load_error("junk", DM_ERR_INVALID_ARGUMENT, "no audio files", NULL);
    /* missing, or a file */
    expect_load_error("nothere", DM_ERR_IO, "No such file", NULL);
    expect_load_error("mixed/top.wav", DM_ERR_IO, "not a folder", NULL);
    /* an unreadable file is named */
    write_clip("bad/kick/good.wav", 1, 100, 16000, 1);
    write_text("bad/kick/bad.wav", "this is text\n");
    snprintf(path, sizeof path, "%s/bad/kick/bad.wav", tmpdir);
    expect_load_error("bad", DM_ERR_FORMAT, "not a sound file", path);
    /* too many classes (the files need not even be read) */
    for (int c = 0; c <= DM_DATASET_MAX_CLASSES; c++) {
        char rel[64];
        snprintf(rel, sizeof rel, "many/c%04d/x.wav", c);
        write_text(rel, "");
    }
    expect_load_error("many", DM_ERR_INVALID_ARGUMENT, "1025 classes", NULL);
    /* bad parameters */
    dm_dataset_params p = dm_dataset_default_params();
    p.channels = 3;
    dm_dataset *ds;
    dm_error err;
    assert_int_equal(dm_dataset_load(tmpdir, &p, &ds, &err), DM_ERR_INVALID_ARGUMENT);
    p = dm_dataset_default_params();
    p.max_total_frames = 150;
    p.rate = 16000;
    snprintf(path, sizeof path, "%s/flat2", tmpdir);
    write_clip("flat2/a.wav", 1, 100, 16000, 1);
    write_clip("flat2/b.wav", 1, 100, 16000, 1);
    assert_int_equal(dm_dataset_load(path, &p, &ds, &err), DM_ERR_INVALID_ARGUMENT);
    assert_contains(err.message, "in total");
}

/* ------------------------------------------------------------------------ */
/* the synthetic dataset                                                     */
/* ------------------------------------------------------------------------ */

static void test_synth_deterministic(void **state)
{
    (void)state;
    const int rate = 16000, len = 8000;
    float *a = zeros(len), *b = zeros(len);
    for (int cls = 0; cls < DM_SYNTH_N_CLASSES; cls++) {
        assert_int_equal(dm_synth_clip(cls, 42, 7, rate, len, a), DM_OK);
        assert_int_equal(dm_synth_clip(cls, 42, 7, rate, len, b), DM_OK);
        assert_memory_equal(a, b, len * sizeof *a);
        dm_synth_clip(cls, 42, 8, rate, len, b);
        assert_memory_not_equal(a, b, len * sizeof *a);
        dm_synth_clip(cls, 43, 7, rate, len, b);
        assert_memory_not_equal(a, b, len * sizeof *a);
        /* a prefix of a longer clip (the parameters do not depend on length) */
        dm_synth_clip(cls, 42, 7, rate, len / 2, b);
        assert_memory_equal(a, b, len / 2 * sizeof *a);
        int k;
        assert_int_equal(dm_synth_class_from_name(dm_synth_class_name(cls), &k), 0);
        assert_int_equal(k, cls);
    }
    assert_int_equal(dm_synth_clip(3, 1, 1, rate, len, a), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_synth_clip(0, 1, 1, 4000, len, a), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_synth_clip(0, 1, 1, rate, 0, a), DM_ERR_INVALID_ARGUMENT);
    assert_string_equal(dm_synth_class_name(0), "tone");
    assert_string_equal(dm_synth_class_name(1), "noise");
    assert_string_equal(dm_synth_class_name(2), "click");
    free(a);
    free(b);
}

/* The statistics (see dmaudio_audio.h): freq_hz, a spectral centroid computed
 * from the energy of the first difference, and t90_s, the time by which 90 %
 * of the energy has arrived. Tones sit below 1 kHz, noise and clicks above;
 * clicks deliver their energy within a few ms, noise bursts over tens of ms.
 * 300 clips per class at 16 and 44.1 kHz: every one in [-1, 1], peak >= 0.3,
 * and classified right by dm_synth_classify. */
static void test_synth_classes(void **state)
{
    (void)state;
    static const int rates[] = {16000, 44100};
    for (int r = 0; r < 2; r++) {
        const int rate = rates[r], len = rate / 2;
        float *x = zeros(len);
        for (int cls = 0; cls < DM_SYNTH_N_CLASSES; cls++) {
            double fmin = 1e9, fmax = 0, tmin = 1e9, tmax = 0;
            int right = 0;
            for (int i = 0; i < 300; i++) {
                assert_int_equal(dm_synth_clip(cls, 1234, (uint64_t)i, rate, len, x), DM_OK);
                dm_synth_stats st;
                dm_synth_stats_compute(x, rate, len, &st);
                assert_true(st.peak >= 0.3 - 1e-6 && st.peak <= 0.8 + 1e-6);
                for (int k = 0; k < len; k++)
                    assert_true(x[k] >= -1.0f && x[k] <= 1.0f);
                fmin = fmin < st.freq_hz ? fmin : st.freq_hz;
                fmax = fmax > st.freq_hz ? fmax : st.freq_hz;
                tmin = tmin < st.t90_s ? tmin : st.t90_s;
                tmax = tmax > st.t90_s ? tmax : st.t90_s;
                right += dm_synth_classify(x, rate, len) == cls;
            }
            print_message("# %5d Hz %-5s: freq %5.0f..%5.0f Hz, t90 %6.1f..%6.1f ms, %d/300 "
                          "classified right\n",
                          rate, dm_synth_class_name(cls), fmin, fmax, 1e3 * tmin, 1e3 * tmax,
                          right);
            assert_int_equal(right, 300);
            if (cls == DM_SYNTH_TONE)
                assert_true(fmin >= 200 * 0.99 && fmax < 1000);
            else
                assert_true(fmin > 1000);
        }
        free(x);
    }
    /* silence is no class; white noise is "noise" */
    float z[1000] = {0};
    assert_int_equal(dm_synth_classify(z, 16000, 1000), -1);
}

/* The written dataset loads back as three classes with the clips' samples. */
static void test_synth_write_dataset(void **state)
{
    (void)state;
    char dir[PATH_LEN], path[PATH_LEN + 64];
    dm_error err;
    snprintf(dir, sizeof dir, "%s/synth/data", tmpdir);
    assert_int_equal(dm_synth_write_dataset(dir, 4, 99, 16000, 4000, &err), DM_OK);
    snprintf(path, sizeof path, "%s/noise/noise_0003.wav", dir);
    assert_int_equal(access(path, F_OK), 0);
    char comment[256];
    assert_int_equal(dm_audio_read_metadata(path, comment, sizeof comment, &err), DM_OK);
    assert_contains(comment, "class=noise seed=99 index=3");

    dm_dataset_params p = dm_dataset_default_params();
    p.rate = 16000;
    p.length = 4000;
    dm_dataset *ds;
    assert_int_equal(dm_dataset_load(dir, &p, &ds, &err), DM_OK);
    assert_int_equal(dm_dataset_count(ds), 12);
    assert_int_equal(dm_dataset_n_classes(ds), 3);
    /* folders sort alphabetically: click, noise, tone (not the enum order) */
    assert_string_equal(dm_dataset_class_name(ds, 0), "click");
    assert_string_equal(dm_dataset_class_name(ds, 2), "tone");
    float x[4000];
    for (int i = 0; i < 12; i++) {
        const float *d;
        int64_t n;
        int cls, synth_cls;
        assert_int_equal(dm_dataset_item(ds, i, &d, &n, &cls), DM_OK);
        assert_int_equal(n, 4000);
        assert_int_equal(dm_synth_class_from_name(dm_dataset_class_name(ds, cls), &synth_cls), 0);
        dm_synth_clip(synth_cls, 99, (uint64_t)(i % 4), 16000, 4000, x);
        for (int k = 0; k < 4000; k++)
            assert_true(fabsf(d[k] - x[k]) <= 1.0f / (1 << 23));
    }
    dm_dataset_free(ds);
    assert_int_equal(dm_synth_write_dataset(dir, 0, 1, 16000, 100, &err), DM_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labelled_folder),
        cmocka_unit_test(test_unconditional),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_synth_deterministic),
        cmocka_unit_test(test_synth_classes),
        cmocka_unit_test(test_synth_write_dataset),
    };
    return cmocka_run_group_tests_name("dataset", tests, setup, teardown);
}
