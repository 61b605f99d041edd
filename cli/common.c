/* Pieces shared by the subcommands: finding and opening models, progress
 * bars, and the recipe text stored in every generated file. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double dm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- models ---- */

/* Directory of the running binary, from /proc/self/exe. */
static int exe_dir(char *buf, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len <= 0)
        return -1;
    buf[len] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

#ifndef DM_DATADIR
#define DM_DATADIR "/usr/local/share/dmaudio"
#endif

const char *dm_cli_default_model_path(char *buf, size_t n)
{
    char dir[PATH_MAX];
    char candidates[3][PATH_MAX + 64];
    int count = 0;
    if (exe_dir(dir, sizeof dir) == 0) {
        /* build tree: build/dmaudio -> models/default.dmm */
        snprintf(candidates[count++], sizeof candidates[0], "%s/../models/default.dmm", dir);
        /* installed: PREFIX/bin/dmaudio -> PREFIX/share/dmaudio/models/default.dmm */
        snprintf(candidates[count++], sizeof candidates[0], "%s/../share/dmaudio/models/default.dmm",
                 dir);
    }
    snprintf(candidates[count++], sizeof candidates[0], "%s/models/default.dmm", DM_DATADIR);
    for (int i = 0; i < count; i++) {
        if (access(candidates[i], R_OK) == 0) {
            char *real = realpath(candidates[i], NULL);
            snprintf(buf, n, "%s", real ? real : candidates[i]);
            free(real);
            return buf;
        }
    }
    snprintf(buf, n, "%s", candidates[0]);
    return buf;
}

const char *dm_cli_model_path(const char *path, char *buf, size_t n)
{
    if (path && *path)
        return path;
    const char *env = getenv("DMAUDIO_MODEL");
    if (env && *env)
        return env;
    return dm_cli_default_model_path(buf, n);
}

dm_model *dm_cli_open_model(const char *cmd, const char *path)
{
    char buf[PATH_MAX + 64];
    int bundled = 0;
    if (!path || !*path)
        path = getenv("DMAUDIO_MODEL");
    if (!path || !*path) {
        path = dm_cli_default_model_path(buf, sizeof buf);
        bundled = 1;
        if (access(path, R_OK) != 0) {
            fprintf(stderr, "dmaudio %s: no bundled model at %s (pass -m MODEL or set DMAUDIO_MODEL)\n",
                    cmd, path);
            return NULL;
        }
    }
    dm_model *m;
    dm_error err;
    if (dm_model_load(path, &m, &err) != DM_OK) {
        fprintf(stderr, "dmaudio %s: %s%s\n", cmd, err.message,
                bundled ? " (the bundled model)" : "");
        return NULL;
    }
    return m;
}

/* ---- signals ---- */

/* Set by the handler, read by the work loops: the only thing the handler does. */
static volatile sig_atomic_t caught_signal = 0;

static void on_stop_signal(int sig) { caught_signal = sig; }

void dm_cli_catch_signals(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C stops at once */
    const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
}

int dm_cli_signal(void) { return caught_signal; }

int dm_cli_stopped(const char *cmd, const char *what)
{
    const int sig = caught_signal ? caught_signal : SIGINT;
    fprintf(stderr, "dmaudio %s: stopped by %s; %s\n", cmd,
            sig == SIGTERM ? "SIGTERM" : "Ctrl-C (SIGINT)", what);
    return 128 + sig;
}

/* ---- progress ---- */

void dm_cli_progress_begin(dm_cli_progress *p, const char *label, int quiet)
{
    p->label = label;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->start = dm_cli_now();
}

void dm_cli_progress_update(dm_cli_progress *p, double done, double total)
{
    if (!p->enabled || total <= 0)
        return;
    double f = done / total;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    int width = 30, filled = (int)(f * width + 0.5);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : ' ';
    bar[width] = '\0';
    double elapsed = dm_cli_now() - p->start;
    double eta = f > 0 ? elapsed * (1 - f) / f : 0;
    fprintf(stderr, "\r%s  [%s]  %.0f/%.0f  ETA %d:%02d ", p->label, bar, done, total,
            (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

void dm_cli_progress_end(dm_cli_progress *p)
{
    if (p->enabled)
        fprintf(stderr, "\r\033[K");
}

/* ---- recipes ---- */

void dm_recipe_format(const dm_recipe *r, char *out, size_t n)
{
    snprintf(out, n,
             "dmaudio-recipe/1 model=%s crc=%08" PRIx32 " seed=%" PRIu64 " sampler=%s steps=%d "
             "class=%s guidance=%.17g strength=%.17g eta=%.17g mode=%s version=%s",
             r->model, r->crc, r->seed, r->sampler, r->steps, r->cls[0] ? r->cls : "-",
             r->guidance, r->strength, r->eta, r->mode, r->version);
    size_t len = strlen(out);
    if (r->rate > 0 && len < n)
        len += (size_t)snprintf(out + len, n - len, " rate=%d", r->rate);
    if (r->frames > 0 && len < n)
        len += (size_t)snprintf(out + len, n - len, " frames=%" PRId64, r->frames);
    if (r->format[0] && len < n)
        snprintf(out + len, n - len, " format=%s", r->format);
}

static int copy_token(char *dst, size_t n, const char *v, size_t len)
{
    if (len == 0 || len >= n)
        return -1;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

int dm_recipe_parse(const char *text, dm_recipe *r, char *why, size_t why_n)
{
    memset(r, 0, sizeof *r);
    snprintf(r->cls, sizeof r->cls, "-");
    snprintf(r->mode, sizeof r->mode, "sample");
    r->guidance = 1.0, r->strength = 1.0;
    const char *magic = "dmaudio-recipe/1";
    if (!text || strncmp(text, magic, strlen(magic)) != 0) {
        snprintf(why, why_n, "not a dmaudio recipe");
        return -1;
    }
    int have_model = 0, have_seed = 0, have_sampler = 0, have_steps = 0;
    const char *p = text + strlen(magic);
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq) {
            snprintf(why, why_n, "malformed field '%.*s'", (int)(end - p > 40 ? 40 : end - p), p);
            return -1;
        }
        size_t klen = (size_t)(eq - p), vlen = (size_t)(end - eq - 1);
        const char *v = eq + 1;
        char val[128];
        if (vlen >= sizeof val) {
            snprintf(why, why_n, "field '%.*s' is too long", (int)(klen > 40 ? 40 : klen), p);
            return -1;
        }
        memcpy(val, v, vlen);
        val[vlen] = '\0';
        char *e = NULL;
        int bad = 0;
#define KEY(name) (klen == strlen(name) && strncmp(p, name, klen) == 0)
        errno = 0;
        if (KEY("model")) {
            bad = copy_token(r->model, sizeof r->model, v, vlen), have_model = !bad;
        } else if (KEY("crc")) {
            unsigned long c = strtoul(val, &e, 16);
            bad = vlen != 8 || *e || c > 0xffffffffUL;
            r->crc = (uint32_t)c;
        } else if (KEY("seed")) {
            unsigned long long s = strtoull(val, &e, 10);
            bad = !vlen || *e || errno || val[0] == '-';
            r->seed = s, have_seed = !bad;
        } else if (KEY("sampler")) {
            bad = copy_token(r->sampler, sizeof r->sampler, v, vlen), have_sampler = !bad;
        } else if (KEY("steps")) {
            long s = strtol(val, &e, 10);
            bad = !vlen || *e || errno || s < 1 || s > DM_MAX_TIMESTEPS;
            r->steps = (int)s, have_steps = !bad;
        } else if (KEY("class")) {
            bad = copy_token(r->cls, sizeof r->cls, v, vlen);
        } else if (KEY("guidance") || KEY("strength") || KEY("eta")) {
            double d = strtod(val, &e);
            bad = !vlen || *e || errno || !(d >= 0.0 && d <= 100.0);
            if (KEY("guidance"))
                r->guidance = d;
            else if (KEY("strength"))
                r->strength = d;
            else
                r->eta = d;
        } else if (KEY("mode")) {
            bad = copy_token(r->mode, sizeof r->mode, v, vlen);
        } else if (KEY("version")) {
            bad = copy_token(r->version, sizeof r->version, v, vlen);
        } else if (KEY("rate")) {
            long h = strtol(val, &e, 10);
            bad = !vlen || *e || errno || h < 1 || h > DM_AUDIO_MAX_RATE;
            r->rate = (int)h;
        } else if (KEY("frames")) {
            long long f = strtoll(val, &e, 10);
            bad = !vlen || *e || errno || f < 1 || f > DM_AUDIO_MAX_FRAMES;
            r->frames = f;
        } else if (KEY("format")) {
            bad = copy_token(r->format, sizeof r->format, v, vlen);
        } /* unknown keys: ignored (newer writers) */
#undef KEY
        if (bad) {
            snprintf(why, why_n, "bad value in '%.*s'", (int)(end - p > 60 ? 60 : end - p), p);
            return -1;
        }
        p = end;
    }
    if (!have_model || !have_seed || !have_sampler || !have_steps) {
        snprintf(why, why_n, "incomplete recipe (model, seed, sampler and steps are required)");
        return -1;
    }
    return 0;
}
