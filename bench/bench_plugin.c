/* bench_plugin — times the LV2 plugin's run() per block through lilv (tests/lv2host.h).
 *
 *   bench_plugin [-m MODEL] [-r RATE] [-s SECONDS]
 *
 * For blocks of 64, 256 and 1024 frames at RATE (48000): the time of one run() call with no
 * voice sounding ("idle": events walked, controls read, nothing mixed) and with 8 voices
 * sounding (fixed mode, polyphony 8: the 8 notes are struck again whenever they would end, a
 * note stealing the oldest voice). Generation happens in the worker, between the timed calls,
 * and is not part of these figures (one line reports the worker's time for the model load and
 * the first clip). MODEL: the bundled default model when it exists, else a
 * tiny random model made here (1.5 s clips: what is timed is mixing, not the model).
 * Prints one line per case: median, mean and 99th percentile in microseconds, and the share
 * of the block's real-time budget the 99th percentile uses. */
#include "dmaudio.h"
#include "lv2host.h"

#include <getopt.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int tiny_model(const char *path)
{
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = 2;
    p.unet.channels[0] = 8, p.unet.channels[1] = 16;
    p.unet.factors[0] = 4;
    p.unet.attention[0] = 0, p.unet.attention[1] = 0;
    p.unet.heads = 2, p.unet.groups = 4, p.unet.kernel = 5;
    p.sample_rate = 44100;
    p.length = 65536;
    p.name = "bench-plugin";
    dm_model *m;
    dm_error err;
    if (dm_model_create(&p, 1, &m, &err) != DM_OK) {
        fprintf(stderr, "bench_plugin: %s\n", err.message);
        return -1;
    }
    float *w = dm_unet_params(dm_model_unet(m)); /* random weights: clips of noise, not zeros */
    size_t n = dm_model_get_info(m).n_params;
    dm_rng_normal(2, 0, 0, w, n);
    for (size_t i = 0; i < n; i++)
        w[i] *= 0.1f;
    dm_model_update_checksum(m);
    dm_status st = dm_model_save(m, path, 0, &err);
    dm_model_free(m);
    if (st != DM_OK)
        fprintf(stderr, "bench_plugin: %s\n", err.message);
    return st == DM_OK ? 0 : -1;
}

/* Times `seconds` of audio in blocks of `block`; voices: 0 or 8. Returns 0 or -1. */
static int bench(host_world *w, const char *model, double rate, uint32_t block, int voices,
                 double seconds)
{
    host_inst *in = host_new(w, rate, block);
    if (!in) {
        fprintf(stderr, "bench_plugin: instantiation failed\n");
        return -1;
    }
    host_set(in, "mode", 0);
    host_set(in, "class", 4);
    host_set(in, "polyphony", 8);
    host_set(in, "steps", 8);
    host_set_model(in, 0, model);
    double w0 = now_us();
    int jobs = host_idle(in);
    double w1 = now_us();
    if (jobs < 0 || in->log_errors) {
        fprintf(stderr, "bench_plugin: the plugin did not get ready (%s)", in->log_last);
        host_free(in);
        return -1;
    }
    /* how long a note lasts: strike one and wait for silence */
    uint32_t note_blocks = 0;
    host_midi(in, 0, 0x90, 60, 127);
    for (int silent = 0; silent < 4 && note_blocks < 100000; note_blocks++) {
        host_run_block(in, block);
        host_work(in);
        silent = in->out[0][block - 1] == 0.0f && in->out[0][0] == 0.0f ? silent + 1 : 0;
    }
    uint32_t restrike = note_blocks > 8 ? note_blocks - 6 : 2;
    if (block == 64 && voices == 0) /* the worker, once: loading the model, then one clip */
        printf("plugin worker: model load + %d job(s) in %.3f s (one thread, 8 steps of "
               "DPM-Solver++(2M))\n", jobs - 1, (w1 - w0) * 1e-6);

    int n = (int)(seconds * rate / block);
    double *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) {
        if (voices && i % (int)restrike == 0)
            for (int v = 0; v < voices; v++)
                host_midi(in, (uint32_t)v % block, 0x90, (uint8_t)(60 + v), 100);
        double t0 = now_us();
        host_run_block(in, block);
        t[i] = now_us() - t0;
        host_work(in);
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double mean = 0.0;
    for (int i = 0; i < n; i++)
        mean += t[i];
    mean /= n;
    double budget = block / rate * 1e6;
    printf("plugin run(): %4u frames at %.0f Hz, %s: median %7.2f us, mean %7.2f us, p99 %7.2f "
           "us = %6.3f%% of the block's %.0f us (%d blocks, note %u blocks)\n",
           block, rate, voices ? "8 voices" : "idle    ", t[n / 2], mean, t[n * 99 / 100],
           100.0 * t[n * 99 / 100] / budget, budget, n, note_blocks);
    free(t);
    host_free(in);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    double rate = 48000.0, seconds = 10.0;
    int c;
    while ((c = getopt(argc, argv, "m:r:s:h")) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 's': seconds = atof(optarg); break;
        default:
            fprintf(stderr, "usage: bench_plugin [-m MODEL] [-r RATE (48000)] [-s SECONDS (10)]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!(rate >= 8000.0 && rate <= 384000.0) || !(seconds > 0.0)) {
        fprintf(stderr, "bench_plugin: bad -r or -s\n");
        return 2;
    }
    char tmp[] = "/tmp/dmaudio-bench-plugin.XXXXXX", path[64];
    int made = 0;
    if (!model && access("models/default.dmm", R_OK) == 0)
        model = "models/default.dmm";
    if (!model) {
        if (!mkdtemp(tmp))
            return 1;
        snprintf(path, sizeof path, "%s/tiny.dmm", tmp);
        if (tiny_model(path) != 0)
            return 1;
        model = path;
        made = 1;
    }
    char abs[PATH_MAX];
    if (!realpath(model, abs)) {
        fprintf(stderr, "bench_plugin: %s: no such file\n", model);
        return 1;
    }
    const char *build = getenv("DMAUDIO_BUILD_DIR") ? getenv("DMAUDIO_BUILD_DIR") : "build";
    host_world w;
    char msg[512];
    if (host_open(&w, build, msg, sizeof msg) != 0) {
        fprintf(stderr, "bench_plugin: %s\n", msg);
        return 1;
    }
    printf("plugin run(): model %s\n", made ? "tiny (made by the benchmark)" : abs);
    int status = 0;
    const uint32_t blocks[] = {64, 256, 1024};
    for (int b = 0; b < 3 && status == 0; b++)
        for (int v = 0; v <= 8 && status == 0; v += 8)
            status = bench(&w, abs, rate, blocks[b], v, seconds);
    host_close(&w);
    host_urids_free();
    if (made) {
        unlink(path);
        rmdir(tmp);
    }
    return status ? 1 : 0;
}
