/* Pieces shared by the subcommands: finding and opening models, progress
 * bars. (The recipe text is in cli/recipe.c.) */
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
