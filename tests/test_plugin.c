/* The LV2 plugin in a lilv host (tests/lv2host.h): the bundle is found in the build tree;
 * at 44.1 and 48 kHz with blocks of 1, 64 and 1024 frames a note sounds from its exact frame
 * (silence before), the same in every block size and instance for a fixed seed, a new sound
 * per note in fresh mode, velocity scales it by (v/127)^2, note-off releases or is ignored,
 * the oldest voice is stolen, pitch tracking and length shape a note, variations stay near
 * the fixed sound; run() never calls malloc, calloc, realloc, free or
 * pthread_mutex_lock/trylock (interposed below); a missing or corrupt model file gives silence
 * and a logged error; state save -> new instance -> restore plays the same samples (with and
 * without the clip files); the presets load and change the controls.
 *
 * The model is a tiny random class-conditional wave model made here (8 kHz, 512 samples,
 * classes kick, snare, closed_hat): its clips are noise-like, which is all these checks need. */
#include "check.h"
#include "dmaudio.h"
#include "lv2host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define DM_HAVE_VALGRIND_H 1
#endif
#endif
#include <sys/stat.h>
#include <unistd.h>

/* ---- malloc/free/realloc/calloc and pthread mutex interposition ---- */
/* The executable's definitions take precedence over libc's for every shared object, the
 * plugin included. While in_run is set (this thread, inside run()), each call is counted.
 * Under AddressSanitizer (make check), which owns malloc, its allocator hooks count instead. */

static _Thread_local int in_run;
static atomic_int rt_violations;
static char rt_what[64];

static void rt_violation(const char *what)
{
    if (atomic_fetch_add(&rt_violations, 1) == 0)
        snprintf(rt_what, sizeof rt_what, "%s", what); /* no allocation: a fixed buffer */
}

#if defined(__SANITIZE_ADDRESS__)
/* from <sanitizer/allocator_interface.h> (not installed with every compiler) */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void malloc_hook(const volatile void *p, size_t n)
{
    (void)p, (void)n;
    if (in_run)
        rt_violation("malloc (or calloc/realloc)");
}
static void free_hook(const volatile void *p)
{
    if (in_run && p)
        rt_violation("free");
}
__attribute__((constructor)) static void install_hooks(void)
{
    __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    if (in_run)
        rt_violation("malloc");
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    if (in_run)
        rt_violation("calloc");
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    if (in_run)
        rt_violation("realloc");
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (in_run && p)
        rt_violation("free");
    __libc_free(p);
}
#endif

/* libc's mutex functions, found once before main (NULL only while dlsym looks for them:
 * single-threaded, nothing to lock yet) */
static int (*real_mutex_lock)(pthread_mutex_t *);
static int (*real_mutex_trylock)(pthread_mutex_t *);

__attribute__((constructor)) static void find_real_mutex(void)
{
    *(void **)&real_mutex_lock = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    *(void **)&real_mutex_trylock = dlsym(RTLD_NEXT, "pthread_mutex_trylock");
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (in_run)
        rt_violation("pthread_mutex_lock");
    return real_mutex_lock ? real_mutex_lock(m) : 0;
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
    if (in_run)
        rt_violation("pthread_mutex_trylock");
    return real_mutex_trylock ? real_mutex_trylock(m) : 0;
}

static void guard(int on) { in_run = on; }

#define assert_rt_clean()                                                                       \
    do {                                                                                        \
        int v_ = atomic_load(&rt_violations);                                                   \
        if (v_)                                                                                 \
            fail_msg("run() made %d forbidden calls (first: %s)", v_, rt_what);                 \
    } while (0)

/* ---- fixtures ---- */

static char tmpdir[256];
static char model_path[512], model2_path[512];
static host_world world;

static void make_model(const char *path, uint64_t seed)
{
    static const char *const names[] = {"kick", "snare", "closed_hat"};
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = 2;
    p.unet.channels[0] = 8, p.unet.channels[1] = 16;
    p.unet.factors[0] = 4;
    p.unet.attention[0] = 0, p.unet.attention[1] = 0;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 5;
    p.sample_rate = 8000;
    p.length = 512;
    p.n_classes = 3;
    p.class_names = names;
    p.name = "plugin-test";
    dm_model *m;
    dm_error err;
    if (dm_model_create(&p, seed, &m, &err) != DM_OK)
        fail_msg("%s", err.message);
    float *w = dm_unet_params(dm_model_unet(m)); /* random weights: a non-trivial output */
    size_t n = dm_model_get_info(m).n_params;
    dm_rng_normal(seed + 100, 0, 0, w, n);
    for (size_t i = 0; i < n; i++)
        w[i] *= 0.1f;
    dm_model_update_checksum(m);
    if (dm_model_save(m, path, 0, &err) != DM_OK)
        fail_msg("%s", err.message);
    dm_model_free(m);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dmaudio-test-plugin.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/tiny.dmm", tmpdir);
    snprintf(model2_path, sizeof model2_path, "%s/tiny2.dmm", tmpdir);
    make_model(model_path, 1);
    make_model(model2_path, 2);
    unsetenv("DMAUDIO_MODEL"); /* the tests choose the model with patch:Set */
    const char *build = getenv("DMAUDIO_BUILD_DIR") ? getenv("DMAUDIO_BUILD_DIR") : "build";
    char msg[512];
    if (host_open(&world, build, msg, sizeof msg) != 0) {
        fprintf(stderr, "%s\n", msg);
        return -1;
    }
    host_run_guard = guard;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    host_close(&world);
    host_urids_free();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return getenv("KEEP_TMP") ? 0 : (system(cmd) == 0 ? 0 : -1);
}

/* A ready instance: the tiny model loaded, controls set, clips made. */
static host_inst *ready(double rate, uint32_t block, const char *cls, int mode, int seed)
{
    host_inst *in = host_new(&world, rate, block);
    assert_non_null(in);
    static const char *const classes[] = {"gm", "clap", "closed_hat", "cymbal",
                                          "kick", "open_hat", "snare", "tom"};
    int c = 0;
    for (int i = 0; i < 8; i++)
        if (!strcmp(classes[i], cls))
            c = i;
    assert_int_equal(host_set(in, "class", (float)c), 0);
    assert_int_equal(host_set(in, "mode", (float)mode), 0);
    assert_int_equal(host_set(in, "seed", (float)seed), 0);
    assert_int_equal(host_set(in, "steps", 4), 0);
    host_set_model(in, 0, model_path);
    if (host_idle(in) < 0)
        fail_msg("the plugin never stopped asking for work");
    assert_int_equal(in->log_errors, 0);
    return in;
}

typedef struct {
    uint32_t frame;
    uint8_t status, d1, d2;
} note_event;

/* Renders total frames in blocks of in->max_block with the events (absolute frames, in
 * order), running the worker between blocks; returns the left and right channels. */
static void render(host_inst *in, uint32_t total, const note_event *ev, int n_ev, float *l,
                   float *r)
{
    int e = 0;
    for (uint32_t t = 0; t < total;) {
        uint32_t n = total - t < in->max_block ? total - t : in->max_block;
        for (; e < n_ev && ev[e].frame < t + n; e++)
            host_midi(in, ev[e].frame - t, ev[e].status, ev[e].d1, ev[e].d2);
        host_run_block(in, n);
        memcpy(l + t, in->out[0], n * sizeof(float));
        memcpy(r + t, in->out[1], n * sizeof(float));
        host_work(in);
        t += n;
    }
}

static double energy(const float *x, uint32_t from, uint32_t to)
{
    double e = 0.0;
    for (uint32_t i = from; i < to; i++)
        e += (double)x[i] * x[i];
    return e;
}

static float peak(const float *x, uint32_t n)
{
    float p = 0.0f;
    for (uint32_t i = 0; i < n; i++)
        p = fabsf(x[i]) > p ? fabsf(x[i]) : p;
    return p;
}

/* Frames of one clip at rate (the model: 512 samples at 8 kHz), within a few frames. */
static uint32_t clip_frames(double rate) { return (uint32_t)(512.0 * rate / 8000.0); }

/* ---- tests ---- */

static void test_bundle_is_found_in_the_build_tree(void **state)
{
    (void)state;
    const LilvPlugin *p = world.plugin;
    LilvNode *instrument = lilv_new_uri(world.world, LV2_CORE__InstrumentPlugin);
    const LilvPluginClass *cls = lilv_plugin_get_class(p);
    assert_true(lilv_node_equals(lilv_plugin_class_get_uri(cls), instrument));
    lilv_node_free(instrument);
    assert_int_equal(lilv_plugin_get_num_ports(p), 18);
    const char *symbols[] = {"control", "notify", "out_l", "out_r", "class", "mode", "seed",
                             "steps", "sampler", "guidance", "variation", "pitch", "root",
                             "gain", "length", "note_off", "release", "polyphony"};
    for (int i = 0; i < 18; i++) {
        const LilvPort *port = lilv_plugin_get_port_by_index(p, (uint32_t)i);
        assert_string_equal(lilv_node_as_string(lilv_port_get_symbol(p, port)), symbols[i]);
    }
    /* the class port lists the GM drum map and the classes */
    const LilvPort *port = lilv_plugin_get_port_by_index(p, 4);
    LilvScalePoints *points = lilv_port_get_scale_points(p, port);
    assert_int_equal(lilv_scale_points_size(points), 8);
    lilv_scale_points_free(points);
    /* the model is a patch:writable parameter */
    LilvNode *writable = lilv_new_uri(world.world, LV2_PATCH__writable);
    LilvNodes *params = lilv_plugin_get_value(p, writable);
    assert_non_null(params);
    assert_string_equal(lilv_node_as_uri(lilv_nodes_get_first(params)), HOST_PLUGIN_URI "#model");
    lilv_nodes_free(params);
    lilv_node_free(writable);
}

/* The interposition works: a malloc flagged as in run() is counted. Not under valgrind, whose
 * allocator replaces ours there (`make valgrind` checks memory errors instead). */
static void test_interposer_catches_allocation(void **state)
{
    (void)state;
#if DM_HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND) {
        print_message("# valgrind owns malloc: the run() allocation check is not active\n");
        skip();
    }
#endif
    void *(*volatile m)(size_t) = malloc;
    in_run = 1;
    void *p = m(16);
    in_run = 0;
    free(p);
    assert_int_equal(atomic_load(&rt_violations), 1);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    in_run = 1;
    pthread_mutex_lock(&mu);
    in_run = 0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(atomic_load(&rt_violations), 2);
    atomic_store(&rt_violations, 0);
}

/* Silence before the note, sound from its frame on, silence after the clip; the same samples
 * whatever the block size (and instance) for a fixed seed. */
static void test_notes_at_every_rate_and_block_size(void **state)
{
    (void)state;
    const double rates[] = {44100.0, 48000.0};
    const uint32_t blocks[] = {64, 1, 1024};
    for (int ri = 0; ri < 2; ri++) {
        uint32_t f0 = 3000 + 37, clip = clip_frames(rates[ri]), total = f0 + clip + 3000;
        float *ref = calloc(total, sizeof(float));
        float *l = calloc(total, sizeof(float)), *r = calloc(total, sizeof(float));
        for (int bi = 0; bi < 3; bi++) {
            host_inst *in = ready(rates[ri], blocks[bi], "kick", 0, 7);
            assert_true(in->notified_model > 0);
            assert_string_equal(in->notified_path, model_path);
            note_event ev[] = {{f0, 0x90, 36, 127}};
            render(in, total, ev, 1, l, r);
            assert_rt_clean();
            for (uint32_t i = 0; i < f0; i++)
                if (l[i] != 0.0f || r[i] != 0.0f)
                    fail_msg("%g Hz, block %u: sound at frame %u before the note", rates[ri],
                             blocks[bi], i);
            assert_true(l[f0] != 0.0f || l[f0 + 1] != 0.0f);
            assert_true(energy(l, f0, f0 + 64) > 0.0);
            assert_true(energy(l, f0 + clip / 2, f0 + clip) > 0.0);
            assert_true(peak(l + f0 + clip + 2, total - f0 - clip - 2) == 0.0f);
            assert_memory_equal(l, r, total * sizeof(float)); /* a mono model */
            if (bi == 0)
                memcpy(ref, l, total * sizeof(float));
            else if (memcmp(ref, l, total * sizeof(float)) != 0)
                fail_msg("%g Hz: block %u differs from block 64", rates[ri], blocks[bi]);
            host_free(in);
        }
        free(ref), free(l), free(r);
    }
}

static void render_note(const char *cls, int mode, int seed, double rate, const note_event *ev,
                        int n_ev, uint32_t total, float *l, void (*tweak)(host_inst *))
{
    host_inst *in = ready(rate, 256, cls, mode, seed);
    if (tweak) {
        tweak(in);
        assert_true(host_idle(in) >= 0);
    }
    float *r = calloc(total, sizeof(float));
    render(in, total, ev, n_ev, l, r);
    free(r);
    assert_rt_clean();
    host_free(in);
}

static void test_fixed_seed_and_class_choose_the_sound(void **state)
{
    (void)state;
    uint32_t total = 6000;
    note_event ev[] = {{100, 0x90, 60, 127}};
    float *a = calloc(total, 4), *b = calloc(total, 4), *c = calloc(total, 4),
          *d = calloc(total, 4);
    render_note("kick", 0, 7, 44100, ev, 1, total, a, NULL);
    render_note("kick", 0, 7, 44100, ev, 1, total, b, NULL);
    render_note("kick", 0, 8, 44100, ev, 1, total, c, NULL);
    render_note("snare", 0, 7, 44100, ev, 1, total, d, NULL);
    assert_memory_equal(a, b, total * 4);
    assert_true(energy(a, 100, total) > 0.0);
    assert_memory_not_equal(a, c, total * 4);
    assert_memory_not_equal(a, d, total * 4);
    free(a), free(b), free(c), free(d);
}

/* In fresh mode, every note plays a new clip (and a note plays at once: the pool is ready). */
static void test_fresh_mode_differs_per_note(void **state)
{
    (void)state;
    host_inst *in = ready(48000, 64, "snare", 1, 1);
    uint32_t clip = clip_frames(48000), gap = clip + 500, total = 4 * gap + 200;
    note_event ev[4];
    for (int k = 0; k < 4; k++)
        ev[k] = (note_event){100 + (uint32_t)k * gap, 0x90, 60, 100};
    float *l = calloc(total, 4), *r = calloc(total, 4);
    render(in, total, ev, 4, l, r);
    assert_rt_clean();
    for (int k = 0; k < 4; k++) {
        assert_true(energy(l, ev[k].frame, ev[k].frame + 32) > 0.0);
        for (int j = 0; j < k; j++)
            if (!memcmp(l + ev[k].frame, l + ev[j].frame, clip * sizeof(float)))
                fail_msg("fresh mode: note %d sounds like note %d", k, j);
    }
    /* GM drum map: a pad with no class (note 30) is silent, a kick pad sounds */
    host_set(in, "class", 0);
    assert_true(host_idle(in) >= 0);
    note_event gm[] = {{10, 0x99, 30, 100}, {gap, 0x99, 36, 100}};
    render(in, 2 * gap, gm, 2, l, r);
    assert_true(peak(l, gap) == 0.0f);
    assert_true(energy(l, gap, gap + 64) > 0.0);
    assert_rt_clean();
    free(l), free(r);
    host_free(in);
}

static void test_velocity_scales_the_gain(void **state)
{
    (void)state;
    uint32_t total = 5000;
    note_event loud[] = {{10, 0x90, 60, 127}}, soft[] = {{10, 0x90, 60, 64}};
    float *a = calloc(total, 4), *b = calloc(total, 4);
    render_note("kick", 0, 3, 44100, loud, 1, total, a, NULL);
    render_note("kick", 0, 3, 44100, soft, 1, total, b, NULL);
    float g = (64.0f / 127.0f) * (64.0f / 127.0f), pa = peak(a, total);
    assert_true(pa > 0.0f);
    for (uint32_t i = 0; i < total; i++)
        if (fabsf(b[i] - g * a[i]) > 1e-6f * pa)
            fail_msg("frame %u: %g, expected %g", i, b[i], g * a[i]);
    free(a), free(b);
}

static void release_mode(host_inst *in)
{
    host_set(in, "note_off", 1);
    host_set(in, "release", 0.005f);
}

static void test_note_off_releases_or_is_ignored(void **state)
{
    (void)state;
    uint32_t total = 5000, on = 10, off = 1010, rel = (uint32_t)(0.005 * 44100) + 2;
    note_event ev[] = {{on, 0x90, 60, 127}, {off, 0x80, 60, 0}};
    float *full = calloc(total, 4), *oneshot = calloc(total, 4), *released = calloc(total, 4);
    render_note("kick", 0, 5, 44100, ev, 1, total, full, NULL);
    render_note("kick", 0, 5, 44100, ev, 2, total, oneshot, NULL);
    render_note("kick", 0, 5, 44100, ev, 2, total, released, release_mode);
    assert_memory_equal(full, oneshot, total * 4);               /* one-shot ignores it */
    assert_memory_equal(full, released, off * 4);                /* same until the note-off */
    assert_true(energy(full, off + rel, clip_frames(44100)) > 0.0);
    assert_true(peak(released + off + rel, total - off - rel) == 0.0f); /* released */
    assert_true(energy(released, off, off + rel) < energy(full, off, off + rel));
    free(full), free(oneshot), free(released);
}

static void two_voices(host_inst *in) { host_set(in, "polyphony", 2); }

/* With 2 voices, a third note steals the oldest: the output is then notes 2 + 3 only. */
static void test_polyphony_steals_the_oldest_voice(void **state)
{
    (void)state;
    uint32_t total = 5000;
    note_event one[] = {{100, 0x90, 60, 127}};
    note_event three[] = {{100, 0x90, 60, 127}, {140, 0x90, 61, 127}, {180, 0x90, 62, 127}};
    float *s = calloc(total, 4), *m = calloc(total, 4);
    render_note("kick", 0, 9, 44100, one, 1, total, s, NULL);
    render_note("kick", 0, 9, 44100, three, 3, total, m, two_voices);
    for (uint32_t t = 180; t < total; t++) {
        float want = (t >= 140 ? s[t - 40] : 0.0f) + s[t - 80];
        if (fabsf(m[t] - want) > 1e-6f)
            fail_msg("frame %u: %g, expected notes 2 and 3 only (%g)", t, m[t], want);
    }
    free(s), free(m);
}

static void pitch_on(host_inst *in) { host_set(in, "pitch", 1); }
static void short_notes(host_inst *in) { host_set(in, "length", 0.01f); }

/* Pitch tracking: an octave above the root plays the clip twice as fast (every other sample,
 * exactly); the length control cuts a note (with a fade) after its time. */
static void test_pitch_tracking_and_length(void **state)
{
    (void)state;
    uint32_t total = 4000, f0 = 100, clip = clip_frames(44100);
    note_event root[] = {{f0, 0x90, 60, 127}}, octave[] = {{f0, 0x90, 72, 127}};
    float *a = calloc(total, 4), *b = calloc(total, 4), *c = calloc(total, 4);
    render_note("kick", 0, 11, 44100, root, 1, total, a, pitch_on);
    render_note("kick", 0, 11, 44100, octave, 1, total, b, pitch_on);
    render_note("kick", 0, 11, 44100, root, 1, total, c, short_notes);
    for (uint32_t i = 0; 2 * i < clip; i++)
        if (b[f0 + i] != a[f0 + 2 * i])
            fail_msg("octave up, frame %u: %g, expected %g", i, b[f0 + i], a[f0 + 2 * i]);
    assert_true(peak(b + f0 + clip / 2 + 1, total - f0 - clip / 2 - 1) == 0.0f);
    uint32_t cut = (uint32_t)(0.01 * 44100);
    assert_memory_equal(c, a, (f0 + cut - 300) * 4); /* before the 5 ms fade */
    assert_true(energy(a, f0 + cut, f0 + clip) > 0.0);
    assert_true(peak(c + f0 + cut + 1, total - f0 - cut - 1) == 0.0f);
    free(a), free(b), free(c);
}

static void variations(host_inst *in) { host_set(in, "variation", 0.5f); }

/* Fresh mode with variation < 1: every note is a different variation of the seed's sound. */
static void test_variations_of_the_fixed_sound(void **state)
{
    (void)state;
    uint32_t clip = clip_frames(44100), gap = clip + 200, total = 3 * gap;
    note_event ev[] = {{10, 0x90, 60, 127}, {10 + gap, 0x90, 60, 127}, {10 + 2 * gap, 0x90, 60, 127}};
    float *fixed = calloc(total, 4), *var = calloc(total, 4), *noise = calloc(total, 4);
    render_note("snare", 0, 4, 44100, ev, 1, total, fixed, NULL);
    render_note("snare", 1, 4, 44100, ev, 3, total, var, variations);
    render_note("snare", 1, 4, 44100, ev, 3, total, noise, NULL);
    /* each variation differs from the others and from the fixed sound, and is closer to it
     * than a fresh sound (variation 1) is */
    double d_var = 0.0, d_new = 0.0;
    for (int k = 0; k < 3; k++) {
        const float *v = var + 10 + k * gap, *n = noise + 10 + k * gap, *f = fixed + 10;
        assert_memory_not_equal(v, f, clip * 4);
        if (k > 0)
            assert_memory_not_equal(v, var + 10, clip * 4);
        for (uint32_t i = 0; i < clip; i++) {
            d_var += (double)(v[i] - f[i]) * (v[i] - f[i]);
            d_new += (double)(n[i] - f[i]) * (n[i] - f[i]);
        }
    }
    assert_true(energy(var, 10, 10 + clip) > 0.0);
    assert_true(d_var < d_new);
    free(fixed), free(var), free(noise);
}

/* A missing or corrupt model: silence and a logged error naming the file; then a good one. */
static void test_bad_model_file_is_silent_and_logged(void **state)
{
    (void)state;
    char missing[600], corrupt[600];
    snprintf(missing, sizeof missing, "%s/no-such-model.dmm", tmpdir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.dmm", tmpdir);
    FILE *f = fopen(corrupt, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 255, f);
    fclose(f);
    const char *paths[] = {missing, corrupt};
    for (int k = 0; k < 2; k++) {
        host_inst *in = ready(44100, 64, "kick", 1, 1);
        host_set_model(in, 0, paths[k]);
        assert_true(host_idle(in) >= 0);
        assert_int_equal(in->log_errors, 1);
        assert_non_null(strstr(in->log_last, paths[k]));
        uint32_t total = 4000;
        float *l = calloc(total, 4), *r = calloc(total, 4);
        note_event ev[] = {{10, 0x90, 60, 127}};
        render(in, total, ev, 1, l, r);
        assert_true(peak(l, total) == 0.0f);
        host_set_model(in, 0, model2_path); /* a good model brings the sound back */
        assert_true(host_idle(in) >= 0);
        render(in, total, ev, 1, l, r);
        assert_true(energy(l, 10, 100) > 0.0);
        assert_rt_clean();
        free(l), free(r);
        host_free(in);
    }
}

/* ---- state ---- */

static const void *get_port_value(const char *symbol, void *user_data, uint32_t *size,
                                  uint32_t *type)
{
    host_inst *in = user_data;
    int i = host_port(in, symbol);
    *size = sizeof(float);
    *type = host_urid(LV2_ATOM__Float);
    return &in->controls[i];
}

static void set_port_value(const char *symbol, void *user_data, const void *value, uint32_t size,
                           uint32_t type)
{
    host_inst *in = user_data;
    int i = host_port(in, symbol);
    if (i >= 0 && size == sizeof(float) && type == host_urid(LV2_ATOM__Float))
        memcpy(&in->controls[i], value, sizeof(float));
}

static int remove_clip_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strncmp(e->d_name, "clip-", 5)) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            n += unlink(p) == 0;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* Saves in (controls, model, clips) to dir/state.ttl, linking external files (the model) from
 * dir as jalv does (lilv 0.24 deletes an external file when there is no link directory). */
static void save_state(host_inst *in, const char *dir)
{
    LilvState *st = lilv_state_new_from_instance(world.plugin, in->li, &host_map_feature, NULL,
                                                 dir, dir, dir, get_port_value, in,
                                                 LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE,
                                                 in->features);
    assert_non_null(st);
    assert_int_equal(lilv_state_save(world.world, &host_map_feature, &host_unmap_feature, st,
                                     NULL, dir, "state.ttl"),
                     0);
    lilv_state_free(st);
}

/* A new instance restored from dir/state.ttl, its clips ready. */
static host_inst *restored(const char *dir, double rate)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/state.ttl", dir);
    LilvState *st = lilv_state_new_from_file(world.world, &host_map_feature, NULL, path);
    assert_non_null(st);
    host_inst *in = host_new(&world, rate, 64);
    assert_non_null(in);
    lilv_state_restore(st, in->li, set_port_value, in, 0, in->features);
    lilv_state_free(st);
    assert_true(host_idle(in) >= 0);
    assert_int_equal(in->log_errors, 0);
    return in;
}

static void test_state_restores_the_same_sounds(void **state)
{
    (void)state;
    char dir[600], dir2[600];
    snprintf(dir, sizeof dir, "%s/state-fresh", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/state-fixed", tmpdir);
    uint32_t total = 3 * clip_frames(44100) + 600;
    note_event ev[] = {{10, 0x90, 60, 127}, {clip_frames(44100) + 300, 0x90, 62, 90}};
    float *a = calloc(total, 4), *b = calloc(total, 4), *c = calloc(total, 4),
          *r = calloc(total, 4);

    /* fresh mode: the restored pool plays the notes the original would have played */
    host_inst *in = ready(44100, 64, "closed_hat", 1, 1);
    host_set(in, "gain", -3.0f);
    render(in, total, ev, 1, a, r); /* uses one fresh clip (the worker makes another) */
    save_state(in, dir);
    render(in, total, ev, 2, a, r);
    host_inst *back = restored(dir, 44100);
    assert_float_equal(host_get(back, "gain"), -3.0f, 0.0f);
    assert_float_equal(host_get(back, "mode"), 1.0f, 0.0f);
    render(back, total, ev, 2, b, r);
    assert_true(energy(a, 10, 100) > 0.0);
    assert_memory_equal(a, b, total * 4);
    host_free(back);

    /* without the clip files: the fresh sounds are new, but they play */
    assert_true(remove_clip_files(dir) > 0);
    back = restored(dir, 44100);
    render(back, total, ev, 2, b, r);
    assert_true(energy(b, 10, 100) > 0.0);
    assert_memory_not_equal(a, b, total * 4);
    host_free(back);
    assert_rt_clean();

    /* fixed mode, no clip files: the seed makes the same sound again */
    host_set(in, "mode", 0);
    host_set(in, "seed", 42);
    assert_true(host_idle(in) >= 0);
    render(in, total, ev, 2, a, r);
    save_state(in, dir2);
    assert_true(remove_clip_files(dir2) > 0);
    back = restored(dir2, 44100);
    render(back, total, ev, 2, c, r);
    assert_memory_equal(a, c, total * 4);
    host_free(back);
    host_free(in);
    assert_rt_clean();
    free(a), free(b), free(c), free(r);
}

static void test_presets_load_and_change_the_controls(void **state)
{
    (void)state;
    LilvNode *preset_class = lilv_new_uri(world.world, "http://lv2plug.in/ns/ext/presets#Preset");
    LilvNode *label = lilv_new_uri(world.world, "http://www.w3.org/2000/01/rdf-schema#label");
    LilvNodes *presets = lilv_plugin_get_related(world.plugin, preset_class);
    assert_true(lilv_nodes_size(presets) >= 5);
    const char *want[] = {"Generative GM drum kit", "Fresh kicks", "Snare roulette", "Hat rain",
                          "Locked kit"};
    int found[5] = {0};
    LILV_FOREACH (nodes, i, presets) {
        const LilvNode *preset = lilv_nodes_get(presets, i);
        lilv_world_load_resource(world.world, preset);
        LilvNodes *labels = lilv_world_find_nodes(world.world, preset, label, NULL);
        assert_non_null(labels);
        const char *name = lilv_node_as_string(lilv_nodes_get_first(labels));
        LilvState *st = lilv_state_new_from_world(world.world, &host_map_feature, preset);
        assert_non_null(st);
        host_inst *in = host_new(&world, 48000, 64);
        float before[HOST_MAX_PORTS];
        memcpy(before, in->controls, sizeof before);
        lilv_state_restore(st, in->li, set_port_value, in, 0, in->features);
        int changed = 0;
        for (int p = 0; p < in->n_ports; p++)
            changed += in->controls[p] != before[p];
        if (changed == 0)
            fail_msg("preset '%s' changes no control", name);
        for (int k = 0; k < 5; k++) {
            if (strcmp(name, want[k]))
                continue;
            found[k] = 1;
            float cls = host_get(in, "class"), mode = host_get(in, "mode");
            if (k == 1) /* fresh kicks */
                assert_true(cls == 4.0f && mode == 1.0f && host_get(in, "pitch") == 1.0f);
            if (k == 2) /* snare roulette */
                assert_true(cls == 6.0f && mode == 1.0f && host_get(in, "variation") < 1.0f);
            if (k == 3) /* hat rain */
                assert_true(cls == 2.0f && host_get(in, "length") < 1.0f);
            if (k == 4) /* locked kit */
                assert_true(cls == 0.0f && mode == 0.0f && host_get(in, "seed") == 12345.0f);
        }
        host_free(in);
        lilv_state_free(st);
        lilv_nodes_free(labels);
    }
    for (int k = 0; k < 5; k++)
        if (!found[k])
            fail_msg("no preset '%s'", want[k]);
    lilv_nodes_free(presets);
    lilv_node_free(label);
    lilv_node_free(preset_class);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle_is_found_in_the_build_tree),
        cmocka_unit_test(test_interposer_catches_allocation),
        cmocka_unit_test(test_notes_at_every_rate_and_block_size),
        cmocka_unit_test(test_fixed_seed_and_class_choose_the_sound),
        cmocka_unit_test(test_fresh_mode_differs_per_note),
        cmocka_unit_test(test_velocity_scales_the_gain),
        cmocka_unit_test(test_note_off_releases_or_is_ignored),
        cmocka_unit_test(test_polyphony_steals_the_oldest_voice),
        cmocka_unit_test(test_pitch_tracking_and_length),
        cmocka_unit_test(test_variations_of_the_fixed_sound),
        cmocka_unit_test(test_bad_model_file_is_silent_and_logged),
        cmocka_unit_test(test_state_restores_the_same_sounds),
        cmocka_unit_test(test_presets_load_and_change_the_controls),
    };
    return cmocka_run_group_tests_name("plugin", tests, setup, teardown);
}
