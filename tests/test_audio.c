/* Audio files: round trips (PCM 24/16, float, FLAC), metadata, resampling,
 * channel conversion, every kind of bad input, and atomic writes (unwritable
 * folder, full disk: nothing half-written, nothing existing damaged). */
#include "check.h"
#include "dmaudio_audio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <sndfile.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-audio.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(tmpdir);
    return 0;
}

/* buf must hold PATH_LEN bytes */
#define PATH_LEN 512
static const char *tpath(char *buf, const char *name)
{
    snprintf(buf, PATH_LEN, "%s/%s", tmpdir, name);
    return buf;
}

/* A test signal: channel c is a sine of frequency f * (c + 1) with amplitude
 * amp, plus a ramp so that every sample differs. */
static dm_audio make_signal(int channels, int64_t frames, int rate, double f, double amp)
{
    dm_audio a;
    dm_error err;
    assert_int_equal(dm_audio_alloc(&a, channels, frames, rate, &err), DM_OK);
    for (int c = 0; c < channels; c++)
        for (int64_t i = 0; i < frames; i++)
            a.data[c * frames + i] =
                (float)(amp * sin(2 * M_PI * f * (c + 1) * (double)i / rate) +
                        0.01 * ((double)i / frames - 0.5));
    return a;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Names in dir starting with "." other than "." and ".." (our temporaries). */
static int count_hidden(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

#define assert_contains(msg, what)                                                              \
    do {                                                                                        \
        if (!strstr((msg), (what)))                                                             \
            fail_msg("message \"%s\" does not contain \"%s\"", (msg), (what));                  \
    } while (0)

/* ------------------------------------------------------------------------ */
/* round trips                                                               */
/* ------------------------------------------------------------------------ */

static void roundtrip(const char *name, dm_sample_format fmt, double tol)
{
    char path[PATH_LEN];
    dm_error err;
    dm_audio a = make_signal(2, 10007, 44100, 441.0, 0.9);
    a.data[0] = 1.0f, a.data[1] = -1.0f, a.data[2] = 0.0f; /* the ends of the range */
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.format = fmt;
    int64_t clipped = -1;
    wp.clipped = &clipped;
    assert_int_equal(dm_audio_write(tpath(path, name), &a, &wp, &err), DM_OK);
    assert_int_equal(clipped, 0);
    dm_audio b;
    if (dm_audio_read(path, NULL, &b, &err) != DM_OK)
        fail_msg("%s", err.message);
    assert_int_equal(b.channels, 2);
    assert_int_equal(b.frames, 10007);
    assert_int_equal(b.rate, 44100);
    double e = max_abs_diff(a.data, b.data, 2 * 10007);
    print_message("# %s (%s): max error %.3g (tolerance %.3g)\n", name, dm_sample_format_name(fmt),
                  e, tol);
    if (tol == 0)
        assert_memory_equal(a.data, b.data, 2 * 10007 * sizeof(float));
    else
        assert_true(e <= tol);
    assert_int_equal(count_hidden(tmpdir), 0);
    dm_audio_free(&a);
    dm_audio_free(&b);
}

static void test_roundtrip_wav_pcm24(void **state)
{
    (void)state;
    roundtrip("rt24.wav", DM_SAMPLE_PCM_24, 1.0 / (1 << 23));
}

static void test_roundtrip_wav_pcm16(void **state)
{
    (void)state;
    roundtrip("rt16.wav", DM_SAMPLE_PCM_16, 1.0 / (1 << 15));
}

static void test_roundtrip_wav_float(void **state)
{
    (void)state;
    roundtrip("rtf.wav", DM_SAMPLE_FLOAT, 0);
}

static void test_roundtrip_flac(void **state)
{
    (void)state;
    roundtrip("rt24.FLAC", DM_SAMPLE_PCM_24, 1.0 / (1 << 23));
    roundtrip("rt16.flac", DM_SAMPLE_PCM_16, 1.0 / (1 << 15));
    char path[PATH_LEN];
    dm_error err;
    dm_audio_file_info info;
    assert_int_equal(dm_audio_probe(tpath(path, "rt24.FLAC"), &info, &err), DM_OK);
    assert_contains(info.format, "FLAC");
    assert_int_equal(info.frames, 10007);
    /* FLAC stores integers */
    dm_audio a = make_signal(1, 100, 8000, 100, 0.5);
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.format = DM_SAMPLE_FLOAT;
    assert_int_equal(dm_audio_write(tpath(path, "f.flac"), &a, &wp, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_contains(err.message, path);
    assert_int_equal(access(path, F_OK), -1);
    dm_audio_free(&a);
}

/* Out-of-range samples are clipped and counted. */
static void test_clipping(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    dm_audio a = make_signal(1, 1000, 8000, 100, 0.5);
    a.data[10] = 1.5f, a.data[20] = -3.0f, a.data[30] = 1.0f;
    for (int f = 0; f < DM_SAMPLE_FORMAT_COUNT; f++) {
        dm_audio_write_params wp = dm_audio_write_default_params();
        wp.format = (dm_sample_format)f;
        int64_t clipped = -1;
        wp.clipped = &clipped;
        assert_int_equal(dm_audio_write(tpath(path, "clip.wav"), &a, &wp, &err), DM_OK);
        assert_int_equal(clipped, 2);
        dm_audio b;
        assert_int_equal(dm_audio_read(path, NULL, &b, &err), DM_OK);
        assert_true(b.data[10] <= 1.0f && b.data[10] > 0.9999f);
        assert_true(b.data[20] == -1.0f);
        dm_audio_free(&b);
    }
    dm_audio_free(&a);
}

/* Title, software and a long comment (a recipe) come back as written. */
static void test_metadata(void **state)
{
    (void)state;
    char path[PATH_LEN], buf[4096];
    dm_error err;
    char comment[2001];
    for (int i = 0; i < 2000; i++)
        comment[i] = "seed=42 sampler=dpmpp-2m steps=30;"[i % 34];
    comment[2000] = 0;
    const char *names[] = {"meta.wav", "meta.flac"};
    for (int k = 0; k < 2; k++) {
        dm_audio a = make_signal(1, 4000, 16000, 300, 0.5);
        dm_audio_write_params wp = dm_audio_write_default_params();
        wp.title = "kick 0001";
        wp.comment = comment;
        assert_int_equal(dm_audio_write(tpath(path, names[k]), &a, &wp, &err), DM_OK);
        assert_int_equal(dm_audio_read_metadata(path, buf, sizeof buf, &err), DM_OK);
        assert_string_equal(buf, comment);
        assert_int_equal(dm_audio_read_string(path, DM_AUDIO_TITLE, buf, sizeof buf, &err), DM_OK);
        assert_string_equal(buf, "kick 0001");
        assert_int_equal(dm_audio_read_string(path, DM_AUDIO_SOFTWARE, buf, sizeof buf, &err),
                         DM_OK);
        /* libsndfile appends its own version to a WAV's software string */
        char expect[64];
        snprintf(expect, sizeof expect, "dmaudio %s", dm_version());
        if (strncmp(buf, expect, strlen(expect)) != 0)
            fail_msg("software \"%s\" does not start with \"%s\"", buf, expect);
        /* too small a buffer: an error, not a truncated recipe */
        assert_int_equal(dm_audio_read_metadata(path, buf, 100, &err), DM_ERR_INVALID_ARGUMENT);
        assert_contains(err.message, path);
        /* absent strings read as "" */
        wp = dm_audio_write_default_params();
        wp.software = NULL;
        assert_int_equal(dm_audio_write(path, &a, &wp, &err), DM_OK);
        assert_int_equal(dm_audio_read_metadata(path, buf, sizeof buf, &err), DM_OK);
        assert_string_equal(buf, "");
        assert_int_equal(dm_audio_read_string(path, DM_AUDIO_SOFTWARE, buf, sizeof buf, &err),
                         DM_OK);
        assert_string_equal(buf, "");
        dm_audio_free(&a);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int i = 0; i < DM_RESAMPLE_QUALITY_COUNT; i++) {
        dm_resample_quality q;
        assert_int_equal(dm_resample_quality_from_name(dm_resample_quality_name(i), &q), 0);
        assert_int_equal(q, i);
    }
    for (int i = 0; i < DM_SAMPLE_FORMAT_COUNT; i++) {
        dm_sample_format f;
        assert_int_equal(dm_sample_format_from_name(dm_sample_format_name(i), &f), 0);
        assert_int_equal(f, i);
    }
    for (int i = 0; i < DM_AUDIO_STRING_COUNT; i++) {
        dm_audio_string s;
        assert_int_equal(dm_audio_string_from_name(dm_audio_string_name(i), &s), 0);
        assert_int_equal(s, i);
    }
    dm_sample_format f;
    assert_int_equal(dm_sample_format_from_name("mp3", &f), -1);
    assert_string_equal(dm_sample_format_name(99), "unknown");
}

/* ------------------------------------------------------------------------ */
/* resampling and channels                                                   */
/* ------------------------------------------------------------------------ */

/* Frequency of x from its zero crossings (upward, linearly interpolated)
 * between 10 % and 90 % of its length. */
static double zc_frequency(const float *x, int64_t n, int rate)
{
    double first = -1, last = -1;
    int count = 0;
    for (int64_t i = n / 10; i < n * 9 / 10; i++) {
        if (x[i - 1] < 0 && x[i] >= 0) {
            double t = (i - 1) + x[i - 1] / (x[i - 1] - x[i]);
            if (first < 0)
                first = t;
            last = t;
            count++;
        }
    }
    assert_true(count > 10);
    return (count - 1) / ((last - first) / rate);
}

static void test_resample_48k_to_44k1(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    const double f = 997.0;
    dm_audio a;
    assert_int_equal(dm_audio_alloc(&a, 1, 48000, 48000, &err), DM_OK);
    for (int i = 0; i < 48000; i++)
        a.data[i] = (float)(0.5 * sin(2 * M_PI * f * i / 48000.0));
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.format = DM_SAMPLE_FLOAT;
    assert_int_equal(dm_audio_write(tpath(path, "sine48k.wav"), &a, &wp, &err), DM_OK);

    for (int q = 0; q < DM_RESAMPLE_QUALITY_COUNT; q++) {
        dm_audio_read_params rp = dm_audio_read_default_params();
        rp.rate = 44100;
        rp.quality = (dm_resample_quality)q;
        dm_audio b, c;
        assert_int_equal(dm_audio_read(path, &rp, &b, &err), DM_OK);
        assert_int_equal(b.rate, 44100);
        assert_int_equal(b.frames, 44100); /* 48000 * 44100 / 48000 */
        double fb = zc_frequency(b.data, b.frames, 44100);
        /* amplitude and phase: compare with the ideal sine in the middle */
        double e = 0;
        for (int i = 4410; i < 44100 - 4410; i++)
            e = fmax(e, fabs(b.data[i] - 0.5 * sin(2 * M_PI * f * i / 44100.0)));
        print_message("# 48000 -> 44100 (%s): %lld frames, %.4f Hz (expected %.1f), max "
                      "deviation from the ideal sine %.2g\n",
                      dm_resample_quality_name(q), (long long)b.frames, fb, f, e);
        assert_true(fabs(fb - f) < 0.01);
        assert_true(e < 1e-3);
        /* deterministic */
        assert_int_equal(dm_audio_read(path, &rp, &c, &err), DM_OK);
        assert_memory_equal(b.data, c.data, sizeof(float) * 44100);
        dm_audio_free(&b);
        dm_audio_free(&c);
    }

    /* the same through dm_audio_resample, both ways, odd lengths */
    dm_audio up, down;
    a.frames = 47999;
    assert_int_equal(dm_audio_resample(&a, 44100, DM_RESAMPLE_MEDIUM, &down, &err), DM_OK);
    assert_int_equal(down.frames, llround(47999 * 44100.0 / 48000));
    assert_int_equal(dm_audio_resample(&down, 48000, DM_RESAMPLE_MEDIUM, &up, &err), DM_OK);
    assert_int_equal(up.frames, llround(down.frames * 48000.0 / 44100));
    assert_true(fabs(zc_frequency(up.data, up.frames, 48000) - f) < 0.01);
    double e = 0;
    for (int i = 4800; i < 43200; i++)
        e = fmax(e, fabs(up.data[i] - a.data[i]));
    print_message("# 48000 -> 44100 -> 48000: max deviation %.2g\n", e);
    assert_true(e < 1e-3);
    dm_audio_free(&up);
    assert_int_equal(dm_audio_resample(&a, 48000 * 300, DM_RESAMPLE_MEDIUM, &up, &err),
                     DM_ERR_INVALID_ARGUMENT);
    a.frames = 48000;
    dm_audio_free(&down);
    dm_audio_free(&a);
}

static void test_channels(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    dm_audio st = make_signal(2, 5000, 22050, 220, 0.4);
    assert_int_equal(dm_audio_write(tpath(path, "stereo.wav"), &st, NULL, &err), DM_OK);
    /* mix-down: the mean of the channels */
    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.channels = 1;
    dm_audio m;
    assert_int_equal(dm_audio_read(path, &rp, &m, &err), DM_OK);
    assert_int_equal(m.channels, 1);
    assert_int_equal(m.frames, 5000);
    double e = 0;
    for (int i = 0; i < 5000; i++)
        e = fmax(e, fabs(m.data[i] - 0.5 * (st.data[i] + st.data[5000 + i])));
    assert_true(e <= 1.0 / (1 << 23));
    /* mono read as stereo: copied */
    dm_audio_write(tpath(path, "mono.wav"), &m, NULL, &err);
    rp.channels = 2;
    dm_audio s2;
    assert_int_equal(dm_audio_read(path, &rp, &s2, &err), DM_OK);
    assert_int_equal(s2.channels, 2);
    assert_memory_equal(s2.data, s2.data + 5000, 5000 * sizeof(float));
    dm_audio_free(&s2);
    /* three channels where at most two are allowed */
    dm_audio three = make_signal(3, 100, 8000, 100, 0.5);
    assert_int_equal(dm_audio_write(tpath(path, "x.wav"), &three, NULL, &err), DM_OK);
    rp = dm_audio_read_default_params();
    rp.max_channels = 2;
    assert_int_equal(dm_audio_read(path, &rp, &s2, &err), DM_ERR_FORMAT);
    print_message("# %s\n", err.message);
    assert_contains(err.message, "x.wav: 3 channels, expected at most 2");
    rp.channels = 2;
    assert_int_equal(dm_audio_read(path, &rp, &s2, &err), DM_ERR_FORMAT);
    assert_contains(err.message, "3 channels, expected 1 or 2");
    assert_null(s2.data);
    dm_audio_free(&three);
    dm_audio_free(&st);
    dm_audio_free(&m);
}

/* ------------------------------------------------------------------------ */
/* bad input                                                                 */
/* ------------------------------------------------------------------------ */

static void expect_read_error(const char *path, dm_status status, const char *what)
{
    dm_error err;
    dm_audio a;
    a.data = (float *)&a; /* must be reset */
    dm_status st = dm_audio_read(path, NULL, &a, &err);
    if (st != status)
        fail_msg("%s: status %s, expected %s (%s)", path, dm_status_name(st),
                 dm_status_name(status), st ? err.message : "no error");
    print_message("# %s\n", err.message);
    assert_contains(err.message, path);
    assert_contains(err.message, what);
    assert_null(a.data);
    assert_int_equal(a.frames, 0);
}

static void test_bad_input(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    write_bytes(tpath(path, "text.wav"), "hello, this is not audio\n", 25);
    expect_read_error(path, DM_ERR_FORMAT, "not a sound file");
    write_bytes(tpath(path, "zero.wav"), "", 0);
    expect_read_error(path, DM_ERR_FORMAT, "empty");
    expect_read_error(tpath(path, "missing.wav"), DM_ERR_IO, "No such file");
    expect_read_error(tmpdir, DM_ERR_IO, "directory");
    mkdir(tpath(path, "dir.wav"), 0777);
    expect_read_error(path, DM_ERR_IO, "directory");

    /* a WAV with no frames at all */
    {
        SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
        SNDFILE *sf = sf_open(tpath(path, "noframes.wav"), SFM_WRITE, &info);
        assert_non_null(sf);
        sf_close(sf);
        expect_read_error(path, DM_ERR_FORMAT, "empty");
    }

    /* NaN in a float WAV written by someone else */
    {
        float x[100] = {0};
        x[37] = NAN;
        SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
        SNDFILE *sf = sf_open(tpath(path, "nan.wav"), SFM_WRITE, &info);
        assert_non_null(sf);
        sf_writef_float(sf, x, 100);
        sf_close(sf);
        expect_read_error(path, DM_ERR_FORMAT, "sample 37 of channel 0 is not a number");
    }

    /* a LIST sub-chunk longer than its LIST chunk: libsndfile 1.2 spins for ever in sf_open
     * on this one (found by tests/fuzz/fuzz_audio.c); refused before it gets there */
    expect_read_error("tests/fuzz/corpus/audio/regression-list-hang.wav", DM_ERR_FORMAT,
                      "LIST sub-chunk runs past its chunk");

    /* writing: NaN, unknown extension, empty audio, nothing created */
    dm_audio a = make_signal(1, 1000, 8000, 100, 0.5);
    a.data[500] = NAN;
    assert_int_equal(dm_audio_write(tpath(path, "out_nan.wav"), &a, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    print_message("# %s\n", err.message);
    assert_contains(err.message, path);
    assert_contains(err.message, "not a number");
    assert_int_equal(access(path, F_OK), -1);
    a.data[500] = INFINITY;
    assert_int_equal(dm_audio_write(path, &a, NULL, &err), DM_ERR_INVALID_ARGUMENT);
    a.data[500] = 0;
    assert_int_equal(dm_audio_write(tpath(path, "out.mp3"), &a, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    assert_contains(err.message, "out.mp3: unknown extension");
    assert_int_equal(dm_audio_write(tpath(path, "noext"), &a, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    a.frames = 0;
    assert_int_equal(dm_audio_write(tpath(path, "empty.wav"), &a, NULL, &err),
                     DM_ERR_INVALID_ARGUMENT);
    a.frames = 1000;
    assert_int_equal(count_hidden(tmpdir), 0);
    dm_audio_free(&a);
}

/* A WAV cut short: an error by default; with allow_truncated, exactly the
 * frames present (equal to the original's first frames). A FLAC cut short and
 * an Ogg cut short: errors. */
static void test_truncated(void **state)
{
    (void)state;
    char path[PATH_LEN], cut[2 * PATH_LEN];
    dm_error err;
    const char *names[] = {"long.wav", "long.flac", "long.aiff"};
    for (int k = 0; k < 3; k++) {
        dm_audio a = make_signal(2, 20000, 16000, 440, 0.5);
        if (k < 2) {
            assert_int_equal(dm_audio_write(tpath(path, names[k]), &a, NULL, &err), DM_OK);
        } else {
            SF_INFO info = {.samplerate = 16000, .channels = 2,
                            .format = SF_FORMAT_AIFF | SF_FORMAT_PCM_24};
            SNDFILE *sf = sf_open(tpath(path, names[k]), SFM_WRITE, &info);
            assert_non_null(sf);
            float *inter = malloc(sizeof(float) * 40000);
            for (int i = 0; i < 20000; i++)
                inter[2 * i] = a.data[i], inter[2 * i + 1] = a.data[20000 + i];
            assert_int_equal(sf_writef_float(sf, inter, 20000), 20000);
            sf_close(sf);
            free(inter);
        }
        size_t n;
        unsigned char *bytes = read_bytes(path, &n);
        snprintf(cut, sizeof cut, "%s/cut_%s", tmpdir, names[k]);
        write_bytes(cut, bytes, n / 2);
        free(bytes);
        expect_read_error(cut, DM_ERR_FORMAT, "truncated");
        if (k != 1) {
            dm_audio_read_params rp = dm_audio_read_default_params();
            rp.allow_truncated = 1;
            dm_audio b;
            assert_int_equal(dm_audio_read(cut, &rp, &b, &err), DM_OK);
            print_message("# %s with allow_truncated: %lld of 20000 frames\n", cut,
                          (long long)b.frames);
            assert_true(b.frames > 9000 && b.frames < 10100);
            for (int c = 0; c < 2; c++)
                assert_true(max_abs_diff(b.data + c * b.frames, a.data + c * 20000,
                                         (size_t)b.frames) <= 1.0 / (1 << 23));
            dm_audio_free(&b);
        }
        dm_audio_free(&a);
    }
    /* Ogg Vorbis (written by libsndfile): complete reads, cut fails. (Cut at
     * 90 %: libsndfile 1.2.0 opens it and decodes nothing. Cut much earlier,
     * sf_open fails -- also an error here -- but leaks 5.8 kB from
     * vorbis_info_init, which would trip LeakSanitizer in `make check`.) */
    {
        dm_audio a = make_signal(1, 48000, 48000, 440, 0.5);
        SF_INFO info = {.samplerate = 48000, .channels = 1,
                        .format = SF_FORMAT_OGG | SF_FORMAT_VORBIS};
        SNDFILE *sf = sf_open(tpath(path, "v.ogg"), SFM_WRITE, &info);
        assert_non_null(sf);
        sf_writef_float(sf, a.data, 48000);
        sf_close(sf);
        dm_audio b;
        assert_int_equal(dm_audio_read(path, NULL, &b, &err), DM_OK);
        assert_int_equal(b.frames, 48000);
        dm_audio_free(&b);
        size_t n;
        unsigned char *bytes = read_bytes(path, &n);
        write_bytes(tpath(cut, "cut_v.ogg"), bytes, n * 9 / 10);
        free(bytes);
        dm_audio_read_params rp = dm_audio_read_default_params();
        assert_int_not_equal(dm_audio_read(cut, &rp, &b, &err), DM_OK);
        print_message("# %s\n", err.message);
        assert_contains(err.message, cut);
        dm_audio_free(&a);
    }
    /* A WAV streamed by a writer that could not seek back (sox, ffmpeg to a
     * pipe) has 0xffffffff as its data size: complete, not truncated. */
    {
        size_t n;
        unsigned char *bytes = read_bytes(tpath(path, "long.wav"), &n);
        unsigned char *d = NULL;
        for (size_t i = 12; i + 8 <= n; i++)
            if (memcmp(bytes + i, "data", 4) == 0) {
                d = bytes + i;
                break;
            }
        assert_non_null(d);
        memset(d + 4, 0xff, 4);
        memset(bytes + 4, 0xff, 4); /* RIFF size */
        write_bytes(tpath(cut, "streamed.wav"), bytes, n);
        free(bytes);
        dm_audio b;
        if (dm_audio_read(cut, NULL, &b, &err) != DM_OK)
            fail_msg("%s", err.message);
        assert_int_equal(b.frames, 20000);
        dm_audio_free(&b);
    }
}

/* ------------------------------------------------------------------------ */
/* atomic writes                                                             */
/* ------------------------------------------------------------------------ */

static void test_write_replaces_atomically(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    dm_audio a = make_signal(1, 3000, 8000, 100, 0.5), b = make_signal(1, 5000, 8000, 200, 0.3);
    assert_int_equal(dm_audio_write(tpath(path, "replace.wav"), &a, NULL, &err), DM_OK);
    assert_int_equal(dm_audio_write(path, &b, NULL, &err), DM_OK);
    dm_audio c;
    assert_int_equal(dm_audio_read(path, NULL, &c, &err), DM_OK);
    assert_int_equal(c.frames, 5000);
    assert_int_equal(count_hidden(tmpdir), 0);
    /* a new file gets the usual permissions (0666 less the umask), not 0600 */
    mode_t mask = umask(0);
    umask(mask);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0666 & ~mask);
    dm_audio_free(&a);
    dm_audio_free(&b);
    dm_audio_free(&c);
}

static void test_write_unwritable(void **state)
{
    (void)state;
    char path[2 * PATH_LEN], dir[PATH_LEN];
    dm_error err;
    dm_audio a = make_signal(1, 3000, 8000, 100, 0.5);

    /* a folder that does not exist */
    snprintf(path, sizeof path, "%s/no/such/folder/x.wav", tmpdir);
    assert_int_equal(dm_audio_write(path, &a, NULL, &err), DM_ERR_IO);
    print_message("# %s\n", err.message);
    assert_contains(err.message, path);

    /* the target is a folder: rename fails, the folder and its content stay */
    tpath(dir, "adir.wav");
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/inside.txt", dir);
    write_bytes(path, "keep", 4);
    assert_int_equal(dm_audio_write(dir, &a, NULL, &err), DM_ERR_IO);
    print_message("# %s\n", err.message);
    assert_contains(err.message, dir);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(count_hidden(tmpdir), 0);

    /* a read-only folder holding an existing file */
    tpath(dir, "ro");
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/old.wav", dir);
    dm_audio old = make_signal(1, 100, 8000, 50, 0.1);
    assert_int_equal(dm_audio_write(path, &old, NULL, &err), DM_OK);
    size_t n0, n1;
    unsigned char *before = read_bytes(path, &n0);
    bool mounted = false;
    if (geteuid() == 0) {
        /* root ignores permissions: a read-only tmpfs over the folder instead
         * (the existing file is then hidden under it: write one there first) */
        if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
            print_message("# SKIP read-only folder: running as root and mount failed (%s)\n",
                          strerror(errno));
            free(before);
            dm_audio_free(&a);
            dm_audio_free(&old);
            skip();
        }
        mounted = true;
        assert_int_equal(dm_audio_write(path, &old, NULL, &err), DM_OK);
        free(before);
        before = read_bytes(path, &n0);
        assert_int_equal(mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=64k"), 0);
    } else {
        chmod(dir, 0555);
    }
    dm_status st = dm_audio_write(path, &a, NULL, &err);
    print_message("# %s\n", err.message);
    unsigned char *after = read_bytes(path, &n1);
    int hidden = count_hidden(dir);
    if (mounted)
        umount(dir);
    else
        chmod(dir, 0777);
    assert_int_equal(st, DM_ERR_IO);
    assert_contains(err.message, path);
    assert_int_equal(hidden, 0);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    dm_audio_free(&a);
    dm_audio_free(&old);
}

/* A 64 KiB tmpfs: the write fails with "No space left on device", the
 * temporary file is gone, the file that was there is byte for byte intact. */
static void test_disk_full(void **state)
{
    (void)state;
    char dir[PATH_LEN], path[2 * PATH_LEN];
    dm_error err;
    tpath(dir, "full");
    mkdir(dir, 0777);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
        print_message("# SKIP disk full: cannot mount a tmpfs (%s); run as root to test\n",
                      strerror(errno));
        skip();
    }
    snprintf(path, sizeof path, "%s/clip.wav", dir);
    dm_audio small = make_signal(1, 2000, 8000, 100, 0.5);
    dm_audio big = make_signal(2, 100000, 44100, 100, 0.5);
    dm_status st1 = dm_audio_write(path, &small, NULL, &err);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = st1 == DM_OK ? read_bytes(path, &n0) : NULL;
    dm_status st2 = dm_audio_write(path, &big, NULL, &err);
    char msg_wav[256];
    snprintf(msg_wav, sizeof msg_wav, "%s", err.message);
    char fpath[2 * PATH_LEN];
    snprintf(fpath, sizeof fpath, "%s/clip.flac", dir);
    dm_status st3 = dm_audio_write(fpath, &big, NULL, &err);
    print_message("# %s\n# %s\n", msg_wav, err.message);
    unsigned char *after = st1 == DM_OK ? read_bytes(path, &n1) : NULL;
    int hidden = count_hidden(dir);
    int flac_exists = access(fpath, F_OK) == 0;
    umount(dir);
    assert_int_equal(st1, DM_OK);
    assert_int_equal(st2, DM_ERR_IO);
    assert_contains(msg_wav, path);
    assert_contains(msg_wav, "No space left on device");
    assert_int_equal(st3, DM_ERR_IO);
    assert_contains(err.message, fpath);
    assert_int_equal(flac_exists, 0);
    assert_int_equal(hidden, 0);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    dm_audio_free(&small);
    dm_audio_free(&big);
}

/* "-": standard output (WAV) and standard input. */
static void test_stdio(void **state)
{
    (void)state;
    char path[PATH_LEN];
    dm_error err;
    dm_audio a = make_signal(1, 3000, 16000, 300, 0.5);
    tpath(path, "stdout.wav");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.comment = "to stdout";
    dm_status st = dm_audio_write("-", &a, &wp, &err);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    assert_int_equal(st, DM_OK);
    char buf[64];
    assert_int_equal(dm_audio_read_metadata(path, buf, sizeof buf, &err), DM_OK);
    assert_string_equal(buf, "to stdout");

    fd = open(path, O_RDONLY);
    saved = dup(STDIN_FILENO);
    dup2(fd, STDIN_FILENO);
    close(fd);
    dm_audio b;
    st = dm_audio_read("-", NULL, &b, &err);
    dup2(saved, STDIN_FILENO);
    close(saved);
    assert_int_equal(st, DM_OK);
    assert_int_equal(b.frames, 3000);
    assert_true(max_abs_diff(a.data, b.data, 3000) <= 1.0 / (1 << 23));
    dm_audio_free(&a);
    dm_audio_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_wav_pcm24),
        cmocka_unit_test(test_roundtrip_wav_pcm16),
        cmocka_unit_test(test_roundtrip_wav_float),
        cmocka_unit_test(test_roundtrip_flac),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_resample_48k_to_44k1),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_write_replaces_atomically),
        cmocka_unit_test(test_write_unwritable),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_stdio),
    };
    return cmocka_run_group_tests_name("audio", tests, setup, teardown);
}
