/* dmaudio augment: K variations (SDEdit) of every sound under a folder, in the
 * same folder structure, for growing a labelled dataset.
 *
 * Everything an output is made of is a pure function of the options and of the
 * source's path relative to IN_DIR, never of the order of the work:
 *   h        = 64-bit FNV-1a of the relative path's bytes ("kick/a.wav")
 *   seed(v)  = mix(mix(seed XOR h) + v)            v = 1..K, mix = splitmix64's finaliser
 *   strength = LO + (HI - LO) u, u = top 53 bits of mix(seed(v) XOR "STRENGTH") / 2^53,
 *              rounded to 4 decimals and kept in [LO, HI] (a fixed S is used as given)
 * so --jobs, --shard and restarts change which process makes a file and when,
 * never its bytes.
 *
 * Resuming: every output is written atomically (dm_audio_write: temporary file,
 * fsync, rename), and only then is its manifest line appended and fsync'd. A run
 * stopped anywhere leaves complete outputs, possibly one without its line, and
 * possibly a hidden temporary file (after SIGKILL). A rerun removes this shard's
 * stale temporary files, skips the outputs that exist (after checking that their
 * recipe is the one it would write), appends the lines that are missing, and at
 * the end of a complete run rewrites the manifest sorted (bytewise, as
 * `LC_ALL=C sort`), atomically: any sequence of interrupted runs followed by a
 * complete one ends with the same files and the same manifest as one
 * uninterrupted run.
 *
 * --jobs J runs J worker threads, each with its own dm_generator (the model's
 * weights are shared, read-only); they take the files in turn from one counter.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char dm_augment_usage[] =
    "usage: dmaudio augment IN_DIR -o OUT_DIR [OPTIONS]\n"
    "\n"
    "Writes K variations of every sound under IN_DIR (wav, flac, ogg, aif, aiff; hidden\n"
    "files skipped) to OUT_DIR/<same folder>/<name>-vNN.wav (NN = 01..K): the sound is\n"
    "read at the model's rate and channels, cut or zero-padded to the model's clip\n"
    "length, noised to the strength and denoised (SDEdit). A file in a first-level\n"
    "folder named like one of the model's classes is varied as that class; any other\n"
    "file without class. Each output carries its recipe (mode=variation) in its\n"
    "metadata, and gets a line in OUT_DIR/manifest.csv (source,output,seed,strength,\n"
    "model; paths relative to IN_DIR and OUT_DIR) once it is complete. An output is\n"
    "'dmaudio variation SOURCE --seed SEED --strength S' with its manifest line's seed\n"
    "and strength (and the same class, --steps, --sampler and --guidance).\n"
    "\n"
    "Stop it at any time and run the same command again: finished outputs are kept\n"
    "and the run goes on where it stopped; the result does not depend on --jobs,\n"
    "--shard or on how often it was interrupted.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -o, --output OUT_DIR  where the variations go (created if missing; required)\n"
    "  -k, --per-file K      variations of each sound [4]\n"
    "  -S, --strength S      how far from the source, 0 < S <= 1 (1: a new sound);\n"
    "      --strength LO:HI  or a range: each output draws its own strength [0.3]\n"
    "  -m, --model FILE      the model [$DMAUDIO_MODEL, else the bundled model]\n"
    "  -s, --seed S          seed of the whole run; each output's seed is derived from\n"
    "                        it and the source's relative path [1]\n"
    "      --steps N         sampler steps for a full denoise (a variation runs about\n"
    "                        N x strength of them) [the sampler's default]\n"
    "      --sampler NAME    ddpm, ddim, dpmpp-2m, euler or heun [dpmpp-2m]\n"
    "  -g, --guidance G      classifier-free guidance for files with a class [2]\n"
    "  -j, --jobs J          worker threads, each generating its own outputs [1]\n"
    "      --shard I/N       only the files whose index in the sorted list is I mod N\n"
    "                        (0 <= I < N); N shards make exactly the files of one run.\n"
    "                        Each writes OUT_DIR/manifest-I-of-N.csv; merge them with\n"
    "                        (head -n1 manifest-0-of-N.csv; tail -q -n+2 manifest-*-of-N.csv\n"
    "                        | LC_ALL=C sort -u) > manifest.csv\n"
    "  -t, --threads N       threads in all, shared by the jobs; 0 = all cores [0]\n"
    "  -f, --force           make every output again, replacing existing files\n"
    "  -q, --quiet           no progress bar, no message\n"
    "      --json            one JSON object per output (written or found) on stdout\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 every output exists, 1 an error (an unreadable source is\n"
    "reported and skipped, the others are still made), 2 usage error, 130 after\n"
    "Ctrl-C and 143 after SIGTERM (finished outputs are kept; rerun to go on).";

#define MANIFEST_HEADER "source,output,seed,strength,model"
#define LINE_MAX_BYTES (4 * PATH_MAX + 256)
#define MAX_DEPTH 64

enum { OPT_STEPS = 256, OPT_SAMPLER, OPT_SHARD, OPT_JSON };

/* ---- signals: a flag the workers and the sampler's progress callback read ---- */

/* Atomic rather than volatile sig_atomic_t: the worker threads read it too. */
static atomic_int stop_signal = 0;

static void on_signal(int sig) { atomic_store(&stop_signal, sig); }

/* A signal ignored on entry stays ignored; a second Ctrl-C stops at once (the
 * outputs are atomic, so that is safe too). */
static void install_handlers(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
}

/* ---- the plan ---- */

typedef struct aug_file {
    char *rel;          /* path under IN_DIR: "kick/a.wav"                      */
    char *stem;         /* "kick/a": its outputs are stem + "-vNN.wav"           */
    int cls;            /* the model's class of the first-level folder, or -1    */
    uint64_t hash;      /* FNV-1a of rel                                          */
} aug_file;

typedef struct aug_output_ref { /* for finding an output by its relative path */
    const char *stem;
    int v;
    int id;
} aug_output_ref;

typedef struct aug {
    /* options */
    const char *in_dir, *out_dir, *model_path;
    int per_file, steps, jobs, threads, shard_i, shard_n, force, quiet, json, sharded;
    double lo, hi, guidance;
    uint64_t seed;
    dm_sampler_kind sampler;
    /* the model */
    dm_model *m;
    dm_model_info info;
    char model_col[2 * DM_NAME_MAX + 4]; /* the model column, CSV-quoted if needed */
    /* the files of this shard, and all of them */
    aug_file *files;
    int n_files, n_all;
    /* the manifest */
    char manifest_name[64];
    char manifest_path[PATH_MAX];
    int mfd;
    unsigned char *has_line;    /* per output id: its line is in the manifest      */
    char **extra;               /* old lines of outputs outside this run's plan    */
    int n_extra;
    /* the run, shared by the workers (under lock) */
    pthread_mutex_t lock;
    int next_file;
    long total, written, existing, failed_inputs;
    int fatal;
    dm_cli_progress bar;
} aug;

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t output_seed(const aug *a, const aug_file *f, int v)
{
    return mix64(mix64(a->seed ^ f->hash) + (uint64_t)v);
}

static double output_strength(const aug *a, uint64_t seed)
{
    if (a->lo == a->hi)
        return a->lo;
    double u = (double)(mix64(seed ^ 0x535452454e475448ULL) >> 11) * 0x1p-53;
    double s = round((a->lo + (a->hi - a->lo) * u) * 1e4) / 1e4;
    return s < a->lo ? a->lo : s > a->hi ? a->hi : s;
}

/* Output v of file f, relative to OUT_DIR. */
static void output_rel(const aug_file *f, int v, char *buf, size_t n)
{
    snprintf(buf, n, "%s-v%02d.wav", f->stem, v);
}

/* The shortest decimal that reads back as x (strengths the user typed stay as typed). */
static void format_double(double x, char *buf, size_t n)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* Appends s to out as a CSV field: quoted (quotes doubled) when it holds a comma,
 * a quote or a line break. Returns the new length. */
static size_t csv_field(char *out, size_t len, size_t n, const char *s)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (len < n && quote)
        out[len++] = '"';
    for (; *s && len + 2 < n; s++) {
        if (*s == '"' && quote)
            out[len++] = '"';
        out[len++] = *s;
    }
    if (len < n && quote)
        out[len++] = '"';
    out[len < n ? len : n - 1] = '\0';
    return len;
}

/* The manifest line of output id (with its '\n'). */
static void manifest_line(const aug *a, int id, char *buf, size_t n)
{
    const aug_file *f = &a->files[id / a->per_file];
    int v = id % a->per_file + 1;
    uint64_t seed = output_seed(a, f, v);
    char rel[PATH_MAX + 16], num[40];
    output_rel(f, v, rel, sizeof rel);
    size_t len = csv_field(buf, 0, n, f->rel);
    len += (size_t)snprintf(buf + len, n - len, ",");
    len = csv_field(buf, len, n, rel);
    format_double(output_strength(a, seed), num, sizeof num);
    len += (size_t)snprintf(buf + len, n - len, ",%" PRIu64 ",%s,%s\n", seed, num, a->model_col);
}

/* ---- finding the sources ---- */

static int has_audio_extension(const char *name)
{
    static const char *const exts[] = {"wav", "flac", "ogg", "aif", "aiff"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

typedef struct str_list {
    char **v;
    int n, cap;
} str_list;

static int str_list_add(str_list *l, char *s)
{
    if (!s)
        return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(s);
            return -1;
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static void str_list_free(str_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Adds every audio file under root/rel (rel "" for root) to out, as relative
 * paths. Prints the error and returns -1 on failure. */
static int scan(const char *root, const char *rel, int depth, str_list *out)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >= (int)sizeof dir) {
        fprintf(stderr, "dmaudio augment: %s/%s: path too long\n", root, rel);
        return -1;
    }
    if (depth > MAX_DEPTH) {
        fprintf(stderr, "dmaudio augment: %s: folders nested more than %d deep (a link loop?)\n",
                dir, MAX_DEPTH);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "dmaudio augment: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    str_list names = {0};
    errno = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue; /* hidden, and . and .. */
        if (str_list_add(&names, strdup(e->d_name)) != 0) {
            closedir(d);
            str_list_free(&names);
            fprintf(stderr, "dmaudio augment: out of memory\n");
            return -1;
        }
    }
    closedir(d);
    if (names.n > 1)
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    int status = 0;
    for (int i = 0; i < names.n && status == 0; i++) {
        char sub[PATH_MAX], full[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names.v[i]) >=
                (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full) {
            fprintf(stderr, "dmaudio augment: %s/%s: path too long\n", dir, names.v[i]);
            status = -1;
            break;
        }
        struct stat sb;
        if (stat(full, &sb) != 0) {
            if (errno == ENOENT) /* a dangling link, or removed meanwhile */
                continue;
            fprintf(stderr, "dmaudio augment: %s: %s\n", full, strerror(errno));
            status = -1;
        } else if (S_ISDIR(sb.st_mode)) {
            status = scan(root, sub, depth + 1, out);
        } else if (S_ISREG(sb.st_mode) && has_audio_extension(names.v[i])) {
            if (strpbrk(sub, "\r\n")) {
                fprintf(stderr, "dmaudio augment: skipping a file whose name holds a line "
                                "break, in %s\n", dir);
                continue;
            }
            if (str_list_add(out, strdup(sub)) != 0) {
                fprintf(stderr, "dmaudio augment: out of memory\n");
                status = -1;
            }
        }
    }
    str_list_free(&names);
    return status;
}

/* mkdir -p path (relative components are created under it as needed). */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat sb;
    if (stat(buf, &sb) != 0)
        return -1;
    if (!S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- the manifest ---- */

static int cmp_ref(const void *x, const void *y)
{
    const aug_output_ref *a = x, *b = y;
    int c = strcmp(a->stem, b->stem);
    return c ? c : a->v - b->v;
}

/* The id of the output at relative path rel in this run's plan, or -1. refs
 * is sorted by (stem, v). */
static int find_output(const aug_output_ref *refs, int n, const char *rel)
{
    size_t len = strlen(rel);
    /* rel = stem "-v" digits ".wav" */
    if (len < 8 || strcmp(rel + len - 4, ".wav") != 0)
        return -1;
    size_t d = len - 4;
    while (d > 0 && rel[d - 1] >= '0' && rel[d - 1] <= '9')
        d--;
    if (d < 2 || d == len - 4 || len - 4 - d > 9 || rel[d - 1] != 'v' || rel[d - 2] != '-')
        return -1;
    char stem[PATH_MAX];
    if (d - 2 >= sizeof stem)
        return -1;
    memcpy(stem, rel, d - 2);
    stem[d - 2] = '\0';
    aug_output_ref key = {.stem = stem, .v = atoi(rel + d)};
    const aug_output_ref *r = bsearch(&key, refs, (size_t)n, sizeof *refs, cmp_ref);
    if (!r)
        return -1;
    char check[PATH_MAX + 16]; /* "v1" and "v01" are not the same file */
    snprintf(check, sizeof check, "%s-v%02d.wav", r->stem, r->v);
    return strcmp(check, rel) == 0 ? r->id : -1;
}

/* The second CSV field of line into out; -1 if the line has not 5 fields. */
static int csv_output_field(const char *line, char *out, size_t n)
{
    int field = 0;
    size_t len = 0;
    const char *p = line;
    while (1) {
        int quoted = *p == '"';
        if (quoted)
            p++;
        while (*p) {
            if (quoted && *p == '"') {
                if (p[1] == '"') {
                    p++;
                } else {
                    p++;
                    break;
                }
            } else if (!quoted && *p == ',') {
                break;
            }
            if (field == 1) {
                if (len + 1 >= n)
                    return -1;
                out[len++] = *p;
            }
            p++;
        }
        if (*p != ',' && *p != '\0')
            return -1; /* text after a closing quote */
        field++;
        if (*p == '\0')
            break;
        p++;
    }
    out[len] = '\0';
    return field == 5 && len > 0 ? 0 : -1;
}

/* Writes header + lines to path atomically (temporary file, fsync, rename). */
static int write_manifest_atomic(const aug *a, char **lines, int n)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", a->out_dir, a->manifest_name) >=
        (int)sizeof tmp) {
        fprintf(stderr, "dmaudio augment: %s: path too long\n", a->manifest_path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "dmaudio augment: %s: cannot create a file in %s: %s\n",
                a->manifest_path, a->out_dir, strerror(errno));
        return -1;
    }
    mode_t mask = umask(0); /* single-threaded here: before and after the workers */
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        fprintf(stderr, "dmaudio augment: %s: %s\n", a->manifest_path, strerror(errno));
        return -1;
    }
    fputs(MANIFEST_HEADER "\n", f);
    for (int i = 0; i < n; i++)
        fputs(lines[i], f);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (!bad && rename(tmp, a->manifest_path) != 0)
        bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        fprintf(stderr, "dmaudio augment: %s: cannot write the manifest: %s\n",
                a->manifest_path, strerror(e ? e : errno));
        return -1;
    }
    int dfd = open(a->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Reads the manifest of a previous run, if any: marks the outputs of the plan
 * that have their line, keeps the lines of other outputs that still exist, and
 * rewrites the file when it held anything else (a line cut by a crash, a line
 * whose output is gone, a duplicate). Then opens it for appending. */
static int open_manifest(aug *a, const aug_output_ref *refs, int n_refs)
{
    FILE *f = fopen(a->manifest_path, "r");
    int dirty = 0;
    str_list kept = {0}, extra = {0};
    if (!f && errno != ENOENT) {
        fprintf(stderr, "dmaudio augment: %s: %s\n", a->manifest_path, strerror(errno));
        return -1;
    }
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int first = 1, status = 0;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (first) {
                first = 0;
                if (strcmp(line, MANIFEST_HEADER "\n") != 0) {
                    fprintf(stderr, "dmaudio augment: %s is not a dmaudio augment manifest (its "
                                    "first line is not '%s'); move it away\n",
                            a->manifest_path, MANIFEST_HEADER);
                    status = -1;
                    break;
                }
                continue;
            }
            char rel[PATH_MAX], path[2 * PATH_MAX];
            struct stat sb;
            int id;
            if (line[len - 1] != '\n' || csv_output_field(line, rel, sizeof rel) != 0 ||
                (snprintf(path, sizeof path, "%s/%s", a->out_dir, rel), stat(path, &sb) != 0)) {
                dirty = 1; /* cut by a crash, malformed, or its output is gone */
                continue;
            }
            if ((id = find_output(refs, n_refs, rel)) >= 0) {
                if (a->has_line[id] || a->force) { /* a duplicate; or --force remakes it */
                    dirty = 1;
                    continue;
                }
                a->has_line[id] = 1;
            } else if (str_list_add(&extra, strdup(line)) != 0) {
                status = -1;
            }
            if (status == 0 && str_list_add(&kept, strdup(line)) != 0)
                status = -1;
            if (status != 0) {
                fprintf(stderr, "dmaudio augment: out of memory\n");
                break;
            }
        }
        if (status == 0 && ferror(f)) {
            fprintf(stderr, "dmaudio augment: %s: %s\n", a->manifest_path, strerror(errno));
            status = -1;
        }
        if (status == 0 && first)
            dirty = 1; /* empty */
        free(line);
        fclose(f);
        if (status == 0 && extra.n > 1) { /* duplicates among the others */
            qsort(extra.v, (size_t)extra.n, sizeof *extra.v, cmp_str);
            int w = 0;
            for (int i = 0; i < extra.n; i++) {
                if (w > 0 && strcmp(extra.v[w - 1], extra.v[i]) == 0) {
                    free(extra.v[i]);
                    continue;
                }
                extra.v[w++] = extra.v[i];
            }
            extra.n = w;
        }
        if (status != 0) {
            str_list_free(&kept);
            str_list_free(&extra);
            return -1;
        }
    }
    if ((!f || dirty) && write_manifest_atomic(a, kept.v, kept.n) != 0) {
        str_list_free(&kept);
        str_list_free(&extra);
        return -1;
    }
    str_list_free(&kept);
    a->extra = extra.v, a->n_extra = extra.n;
    a->mfd = open(a->manifest_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (a->mfd < 0) {
        fprintf(stderr, "dmaudio augment: %s: %s\n", a->manifest_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Removes the temporary files a killed run of this shard left beside its
 * outputs (".NAME.XXXXXX", see dm_audio_write) and beside the manifest. */
static void remove_stale_temps(const aug *a, const aug_output_ref *refs, int n_refs)
{
    str_list dirs = {0};
    for (int i = 0; i < a->n_files; i++) {
        const char *slash = strrchr(a->files[i].rel, '/');
        int len = slash ? (int)(slash - a->files[i].rel) : 0;
        if (dirs.n && (int)strlen(dirs.v[dirs.n - 1]) == len &&
            strncmp(dirs.v[dirs.n - 1], a->files[i].rel, (size_t)len) == 0)
            continue;
        if (str_list_add(&dirs, strndup(a->files[i].rel, (size_t)len)) != 0) {
            str_list_free(&dirs);
            return; /* out of memory: the files are harmless, leave them */
        }
    }
    if (dirs.n > 1)
        qsort(dirs.v, (size_t)dirs.n, sizeof *dirs.v, cmp_str);
    if (dirs.n == 0 || dirs.v[0][0] != '\0')
        str_list_add(&dirs, strdup("")); /* OUT_DIR itself, for the manifest's */
    for (int i = 0; i < dirs.n; i++) {
        if (i > 0 && strcmp(dirs.v[i], dirs.v[i - 1]) == 0)
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s%s%s", a->out_dir, *dirs.v[i] ? "/" : "", dirs.v[i]);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        for (struct dirent *e; (e = readdir(d));) {
            const char *name = e->d_name;
            size_t len = strlen(name);
            if (name[0] != '.' || len < 9 || name[len - 7] != '.')
                continue;
            int suffix_ok = 1;
            for (size_t k = len - 6; k < len; k++)
                suffix_ok &= (name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
                             (name[k] >= '0' && name[k] <= '9');
            if (!suffix_ok)
                continue;
            char base[NAME_MAX + 1], rel[PATH_MAX + NAME_MAX + 2];
            snprintf(base, sizeof base, "%.*s", (int)(len - 8), name + 1);
            int ours = *dirs.v[i] == '\0' && strcmp(base, a->manifest_name) == 0;
            if (!ours) {
                snprintf(rel, sizeof rel, "%s%s%s", dirs.v[i], *dirs.v[i] ? "/" : "", base);
                ours = find_output(refs, n_refs, rel) >= 0;
            }
            if (ours) {
                char path[2 * PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", dir, name);
                unlink(path);
            }
        }
        closedir(d);
    }
    str_list_free(&dirs);
}

/* ---- reporting, from any worker ---- */

static void print_json(const aug *a, int id, const char *status)
{
    const aug_file *f = &a->files[id / a->per_file];
    int v = id % a->per_file + 1;
    uint64_t seed = output_seed(a, f, v);
    char rel[PATH_MAX + 16], path[2 * PATH_MAX + 16], src[2 * PATH_MAX], num[40];
    output_rel(f, v, rel, sizeof rel);
    snprintf(path, sizeof path, "%s/%s", a->out_dir, rel);
    snprintf(src, sizeof src, "%s/%s", a->in_dir, f->rel);
    format_double(output_strength(a, seed), num, sizeof num);
    printf("{\"source\": ");
    dm_cli_json_string(stdout, src);
    printf(", \"output\": ");
    dm_cli_json_string(stdout, path);
    printf(", \"seed\": %" PRIu64 ", \"strength\": %s, \"class\": ", seed, num);
    if (f->cls >= 0)
        dm_cli_json_string(stdout, dm_model_class_name(a->m, f->cls));
    else
        printf("null");
    printf(", \"status\": \"%s\"}\n", status);
    fflush(stdout);
}

/* Output id is complete (written now, or found): its manifest line, if missing.
 * Called with the lock held; -1 after a message when the manifest cannot be written. */
static int output_done(aug *a, int id, int written)
{
    if (!a->has_line[id] && !a->fatal) { /* after a failed append, the next run adds it */
        char line[LINE_MAX_BYTES];
        manifest_line(a, id, line, sizeof line);
        size_t len = strlen(line);
        ssize_t w = write(a->mfd, line, len);
        if (w != (ssize_t)len || fdatasync(a->mfd) != 0) {
            dm_cli_progress_end(&a->bar);
            fprintf(stderr, "dmaudio augment: %s: cannot append to the manifest: %s\n",
                    a->manifest_path, w < 0 || w == (ssize_t)len ? strerror(errno) : "short write");
            a->fatal = 1;
            return -1;
        }
        a->has_line[id] = 1;
    }
    if (written)
        a->written++;
    else
        a->existing++;
    if (a->json)
        print_json(a, id, written ? "written" : "exists");
    dm_cli_progress_update(&a->bar, (double)(a->written + a->existing), (double)a->total);
    return 0;
}

static void report_locked(aug *a, int fatal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report_locked(aug *a, int fatal, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dm_cli_progress_end(&a->bar);
    fprintf(stderr, "dmaudio augment: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (fatal)
        a->fatal = 1;
}

#define REPORT(a, fatal, ...)                                                                     \
    do {                                                                                          \
        pthread_mutex_lock(&(a)->lock);                                                           \
        report_locked((a), (fatal), __VA_ARGS__);                                                 \
        pthread_mutex_unlock(&(a)->lock);                                                         \
    } while (0)

/* ---- the work ---- */

typedef struct worker {
    aug *a;
    dm_generator *gen;
    float *input, *output;      /* (channels, length) each */
    char comment[512];
} worker;

static int should_stop(aug *a)
{
    pthread_mutex_lock(&a->lock);
    int stop = a->fatal || stop_signal;
    pthread_mutex_unlock(&a->lock);
    return stop;
}

static int on_step(void *user_data, int step, int n_steps)
{
    (void)step, (void)n_steps;
    return should_stop(user_data);
}

/* The source, at the model's rate and channels, cut or zero-padded to its length. */
static dm_status read_source(const aug *a, const char *path, float *dst, dm_error *err)
{
    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.channels = a->info.audio_channels;
    rp.rate = a->info.sample_rate;
    dm_audio au;
    dm_status st = dm_audio_read(path, &rp, &au, err);
    if (st != DM_OK)
        return st;
    const int64_t L = a->info.length, keep = au.frames < L ? au.frames : L;
    for (int c = 0; c < au.channels; c++) {
        float *y = dst + (size_t)c * (size_t)L;
        memcpy(y, au.data + (size_t)c * (size_t)au.frames, (size_t)keep * sizeof *y);
        memset(y + keep, 0, (size_t)(L - keep) * sizeof *y);
    }
    dm_audio_free(&au);
    return DM_OK;
}

static void fill_recipe(const aug *a, const aug_file *f, uint64_t seed, double strength,
                        dm_recipe *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", a->info.name);
    r->crc = a->info.checksum;
    r->seed = seed;
    snprintf(r->sampler, sizeof r->sampler, "%s", dm_sampler_name(a->sampler));
    r->steps = a->steps;
    snprintf(r->cls, sizeof r->cls, "%s", f->cls >= 0 ? dm_model_class_name(a->m, f->cls) : "-");
    r->guidance = a->guidance;
    r->strength = strength;
    r->eta = 0;
    snprintf(r->mode, sizeof r->mode, "variation");
    snprintf(r->version, sizeof r->version, "%s", DM_CLI_VERSION);
    r->rate = a->info.sample_rate;
    r->frames = a->info.length;
    snprintf(r->format, sizeof r->format, "%s",
             dm_sample_format_name(dm_audio_write_default_params().format));
}

/* An output that exists: 0 if its recipe is the one this run would write, else
 * -1 after a message. */
static int check_existing(aug *a, const aug_file *f, int v, const char *path)
{
    char comment[4096], why[160];
    dm_error err;
    struct stat sb;
    if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        REPORT(a, 1, "%s exists and is not a file", path);
        return -1;
    }
    if (dm_audio_read_metadata(path, comment, sizeof comment, &err) != DM_OK) {
        REPORT(a, 1, "%s exists but cannot be read (%s); remove it or use --force", path,
               err.message);
        return -1;
    }
    dm_recipe have, want;
    uint64_t seed = output_seed(a, f, v);
    fill_recipe(a, f, seed, output_strength(a, seed), &want);
    if (dm_recipe_parse(comment, &have, why, sizeof why) != 0) {
        REPORT(a, 1, "%s exists and was not written by dmaudio augment (%s); remove it or use "
                     "--force", path, why);
        return -1;
    }
    const char *diff = have.crc != want.crc                   ? "model"
                       : have.seed != want.seed               ? "seed"
                       : have.strength != want.strength       ? "strength"
                       : strcmp(have.sampler, want.sampler)   ? "sampler"
                       : have.steps != want.steps             ? "steps"
                       : strcmp(have.cls, want.cls)           ? "class"
                       : have.guidance != want.guidance       ? "guidance"
                       : strcmp(have.mode, want.mode)         ? "mode"
                                                              : NULL;
    if (diff) {
        REPORT(a, 1, "%s exists but was made with another %s (model '%s', seed %" PRIu64
                     ", strength %g); run with the options that made it, or --force to make it "
                     "again", path, diff, have.model, have.seed, have.strength);
        return -1;
    }
    return 0;
}

static void process_file(worker *w, int i)
{
    aug *a = w->a;
    const aug_file *f = &a->files[i];
    const int K = a->per_file;
    int pending[K > 0 ? K : 1], n_pending = 0;
    char path[2 * PATH_MAX + 16], rel[PATH_MAX + 16];
    for (int v = 1; v <= K; v++) {
        output_rel(f, v, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", a->out_dir, rel);
        struct stat sb;
        if (!a->force && lstat(path, &sb) == 0) {
            if (check_existing(a, f, v, path) != 0)
                return;
            pthread_mutex_lock(&a->lock);
            output_done(a, i * K + v - 1, 0);
            pthread_mutex_unlock(&a->lock);
        } else {
            pending[n_pending++] = v;
        }
    }
    if (n_pending == 0 || should_stop(a))
        return;

    char src[2 * PATH_MAX];
    snprintf(src, sizeof src, "%s/%s", a->in_dir, f->rel);
    dm_error err;
    if (read_source(a, src, w->input, &err) != DM_OK) {
        pthread_mutex_lock(&a->lock);
        report_locked(a, 0, "%s (skipped)", err.message);
        a->failed_inputs++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    for (int k = 0; k < n_pending && !should_stop(a); k++) {
        const int v = pending[k];
        const uint64_t seed = output_seed(a, f, v);
        const double strength = output_strength(a, seed);
        dm_sample_params p = dm_sample_default_params();
        p.sampler = a->sampler;
        p.steps = a->steps;
        p.guidance = a->guidance;
        p.cls = f->cls;
        p.seed = seed;
        p.init = w->input;
        p.strength = strength;
        p.progress = on_step;
        p.progress_user_data = a;
        dm_status st = dm_generate(w->gen, &p, 1, w->output, &err);
        if (st == DM_ERR_CANCELLED) /* stopped half-way: nothing to write */
            return;
        if (st != DM_OK) {
            REPORT(a, 1, "%s: %s", src, err.message);
            return;
        }
        dm_recipe r;
        fill_recipe(a, f, seed, strength, &r);
        dm_recipe_format(&r, w->comment, sizeof w->comment);
        dm_audio_write_params wp = dm_audio_write_default_params();
        wp.title = "dmaudio augment";
        wp.comment = w->comment;
        dm_audio clip = {.data = w->output, .channels = a->info.audio_channels,
                         .frames = a->info.length, .rate = a->info.sample_rate};
        output_rel(f, v, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", a->out_dir, rel);
        if (dm_audio_write(path, &clip, &wp, &err) != DM_OK) {
            REPORT(a, 1, "%s", err.message);
            return;
        }
        pthread_mutex_lock(&a->lock);
        output_done(a, i * K + v - 1, 1);
        pthread_mutex_unlock(&a->lock);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    aug *a = w->a;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        int i = a->fatal || stop_signal ? a->n_files : a->next_file++;
        pthread_mutex_unlock(&a->lock);
        if (i >= a->n_files)
            break;
        process_file(w, i);
    }
    return NULL;
}

/* ---- options ---- */

static int parse_strength(const char *text, double *lo, double *hi)
{
    const char *colon = strchr(text, ':');
    char a[64], b[64];
    if (strlen(text) >= sizeof a) {
        fprintf(stderr, "dmaudio augment: --strength: '%s' is too long\n", text);
        return -1;
    }
    if (colon) {
        snprintf(a, sizeof a, "%.*s", (int)(colon - text), text);
        snprintf(b, sizeof b, "%s", colon + 1);
    } else {
        snprintf(a, sizeof a, "%s", text);
        snprintf(b, sizeof b, "%s", text);
    }
    if (dm_cli_double("--strength", a, 0, 1, lo) != 0 || dm_cli_double("--strength", b, 0, 1, hi) != 0)
        return -1;
    if (*lo <= 0) {
        fprintf(stderr, "dmaudio augment: --strength: must be above 0 (0 would copy the sound)\n");
        return -1;
    }
    if (*lo > *hi) {
        fprintf(stderr, "dmaudio augment: --strength %s: the range must go from low to high\n",
                text);
        return -1;
    }
    return 0;
}

static int parse_shard(const char *text, int *i, int *n)
{
    char *slash = strchr(text, '/'), buf[32];
    if (!slash || (size_t)(slash - text) >= sizeof buf) {
        fprintf(stderr, "dmaudio augment: --shard: '%s' is not I/N (e.g. 0/4)\n", text);
        return -1;
    }
    snprintf(buf, sizeof buf, "%.*s", (int)(slash - text), text);
    if (dm_cli_int("--shard (N)", slash + 1, 1, 1000000, n) != 0 ||
        dm_cli_int("--shard (I)", buf, 0, 1000000, i) != 0)
        return -1;
    if (*i >= *n) {
        fprintf(stderr, "dmaudio augment: --shard %s: I must be in 0..%d\n", text, *n - 1);
        return -1;
    }
    return 0;
}

static int parse_options(int argc, char **argv, aug *a)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},    {"per-file", required_argument, 0, 'k'},
        {"strength", required_argument, 0, 'S'},  {"model", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},      {"steps", required_argument, 0, OPT_STEPS},
        {"sampler", required_argument, 0, OPT_SAMPLER},
        {"guidance", required_argument, 0, 'g'},  {"jobs", required_argument, 0, 'j'},
        {"shard", required_argument, 0, OPT_SHARD},
        {"threads", required_argument, 0, 't'},   {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},           {"json", no_argument, 0, OPT_JSON},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":o:k:S:m:s:g:j:t:fqh", longopts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 'o': a->out_dir = optarg; break;
        case 'k': r = dm_cli_int("--per-file", optarg, 1, 10000, &a->per_file); break;
        case 'S': r = parse_strength(optarg, &a->lo, &a->hi); break;
        case 'm': a->model_path = optarg; break;
        case 's': r = dm_cli_u64("--seed", optarg, &a->seed); break;
        case OPT_STEPS: r = dm_cli_int("--steps", optarg, 1, DM_MAX_TIMESTEPS, &a->steps); break;
        case OPT_SAMPLER:
            if (dm_sampler_from_name(optarg, &a->sampler) != 0) {
                fprintf(stderr, "dmaudio augment: --sampler: unknown sampler '%s' (ddpm, ddim, "
                                "dpmpp-2m, euler, heun)\n", optarg);
                r = -1;
            }
            break;
        case 'g': r = dm_cli_double("--guidance", optarg, 0, 100, &a->guidance); break;
        case 'j': r = dm_cli_int("--jobs", optarg, 1, 256, &a->jobs); break;
        case OPT_SHARD:
            r = parse_shard(optarg, &a->shard_i, &a->shard_n);
            a->sharded = 1;
            break;
        case 't': r = dm_cli_int("--threads", optarg, 0, 1024, &a->threads); break;
        case 'f': a->force = 1; break;
        case 'q': a->quiet = 1; break;
        case OPT_JSON: a->json = 1; break;
        case 'h': puts(dm_augment_usage); return 1;
        case ':':
            fprintf(stderr, "dmaudio augment: option '%s' needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "dmaudio augment: unknown option '%s' (see 'dmaudio augment --help')\n",
                    argv[optind - 1]);
            return -1;
        }
        if (r < 0)
            return -1;
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio augment: no input folder given (usage: dmaudio augment IN_DIR "
                        "-o OUT_DIR)\n");
        return -1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio augment: unexpected argument '%s'\n", argv[optind + 1]);
        return -1;
    }
    a->in_dir = argv[optind];
    if (!a->out_dir || !*a->out_dir) {
        fprintf(stderr, "dmaudio augment: no output folder given (-o OUT_DIR)\n");
        return -1;
    }
    return 0;
}

/* ---- the command ---- */

/* Trailing slashes off (but "/" stays). */
static void trim_slashes(char *s)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
}

typedef struct stem_ref {
    const char *stem;
    int index;
} stem_ref;

static int cmp_stem_ref(const void *x, const void *y)
{
    const stem_ref *a = x, *b = y;
    int c = strcmp(a->stem, b->stem);
    return c ? c : a->index - b->index;
}

static int plan_files(aug *a, str_list *all)
{
    char **stems = calloc((size_t)all->n, sizeof *stems);
    stem_ref *sorted = malloc((size_t)all->n * sizeof *sorted);
    int status = stems && sorted ? 0 : -1;
    for (int i = 0; i < all->n && status == 0; i++) {
        const char *dot = strrchr(all->v[i], '.');
        if (!(stems[i] = strndup(all->v[i], (size_t)(dot - all->v[i]))))
            status = -1;
        else
            sorted[i] = (stem_ref){.stem = stems[i], .index = i};
    }
    if (status != 0)
        fprintf(stderr, "dmaudio augment: out of memory\n");
    /* two sources with one stem ("a.wav", "a.flac") would write the same outputs */
    if (status == 0) {
        qsort(sorted, (size_t)all->n, sizeof *sorted, cmp_stem_ref);
        for (int i = 0; i + 1 < all->n; i++) {
            if (strcmp(sorted[i].stem, sorted[i + 1].stem) == 0) {
                fprintf(stderr, "dmaudio augment: %s/%s and %s/%s would both write %s/%s-v01.wav "
                                "(rename one)\n", a->in_dir, all->v[sorted[i].index], a->in_dir,
                        all->v[sorted[i + 1].index], a->out_dir, sorted[i].stem);
                status = -1;
                break;
            }
        }
    }
    free(sorted);
    if (!stems)
        return -1;
    a->n_all = all->n;
    int n = 0;
    for (int i = 0; i < all->n; i++)
        n += i % a->shard_n == a->shard_i;
    a->files = calloc(n > 0 ? (size_t)n : 1, sizeof *a->files);
    if (!a->files && status == 0) {
        fprintf(stderr, "dmaudio augment: out of memory\n");
        status = -1;
    }
    for (int i = 0; i < all->n; i++) {
        if (status != 0 || i % a->shard_n != a->shard_i) {
            free(stems[i]);
            continue;
        }
        aug_file *f = &a->files[a->n_files++];
        f->rel = all->v[i], all->v[i] = NULL;
        f->stem = stems[i];
        f->hash = fnv1a64(f->rel);
        f->cls = -1;
        const char *slash = strchr(f->rel, '/');
        if (slash && a->info.n_classes > 0) {
            char folder[NAME_MAX + 1];
            snprintf(folder, sizeof folder, "%.*s", (int)(slash - f->rel), f->rel);
            f->cls = dm_model_find_class(a->m, folder);
        }
    }
    free(stems);
    return status;
}

/* Does the folder `inner` lie in (or is it) `outer`? Both must exist. */
static int folder_within(const char *inner, const char *outer)
{
    char *ri = realpath(inner, NULL), *ro = realpath(outer, NULL);
    int within = 0;
    if (ri && ro) {
        size_t n = strlen(ro);
        within = strncmp(ri, ro, n) == 0 && (ri[n] == '\0' || ri[n] == '/' || n == 1);
    }
    free(ri);
    free(ro);
    return within;
}

static void free_plan(aug *a)
{
    for (int i = 0; i < a->n_files; i++) {
        free(a->files[i].rel);
        free(a->files[i].stem);
    }
    free(a->files);
    for (int i = 0; i < a->n_extra; i++)
        free(a->extra[i]);
    free(a->extra);
    free(a->has_line);
}

/* At the end of a complete run: the manifest, sorted, with one line per output. */
static int finish_manifest(aug *a)
{
    long n = a->total + a->n_extra;
    char **own = calloc(a->total > 0 ? (size_t)a->total : 1, sizeof *own); /* the plan's */
    char **lines = calloc(n > 0 ? (size_t)n : 1, sizeof *lines);
    int status = own && lines ? 0 : -1;
    for (long id = 0; id < a->total && status == 0; id++) {
        char buf[LINE_MAX_BYTES];
        manifest_line(a, (int)id, buf, sizeof buf);
        if (!(lines[id] = own[id] = strdup(buf)))
            status = -1;
    }
    for (int i = 0; i < a->n_extra && status == 0; i++)
        lines[a->total + i] = a->extra[i];
    if (status != 0) {
        fprintf(stderr, "dmaudio augment: out of memory\n");
    } else {
        qsort(lines, (size_t)n, sizeof *lines, cmp_str);
        status = write_manifest_atomic(a, lines, (int)n);
    }
    if (own)
        for (long id = 0; id < a->total; id++)
            free(own[id]);
    free(own);
    free(lines);
    return status;
}

int cmd_augment(int argc, char **argv)
{
    aug a;
    memset(&a, 0, sizeof a);
    dm_sample_params defaults = dm_sample_default_params();
    a.per_file = 4, a.lo = a.hi = 0.3, a.seed = 1, a.jobs = 1, a.shard_n = 1;
    a.sampler = defaults.sampler, a.guidance = defaults.guidance;
    a.mfd = -1;
    int r = parse_options(argc, argv, &a);
    if (r != 0)
        return r > 0 ? DM_EXIT_OK : DM_EXIT_USAGE;
    if (a.steps == 0)
        a.steps = dm_sampler_default_steps(a.sampler);

    char in_dir[PATH_MAX], out_dir[PATH_MAX];
    snprintf(in_dir, sizeof in_dir, "%s", a.in_dir);
    snprintf(out_dir, sizeof out_dir, "%s", a.out_dir);
    trim_slashes(in_dir);
    trim_slashes(out_dir);
    a.in_dir = in_dir, a.out_dir = out_dir;

    struct stat sb;
    if (stat(in_dir, &sb) != 0) {
        fprintf(stderr, "dmaudio augment: %s: %s\n", in_dir, strerror(errno));
        return DM_EXIT_FAILURE;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dmaudio augment: %s is not a folder\n", in_dir);
        return DM_EXIT_FAILURE;
    }
    const int out_existed = stat(out_dir, &sb) == 0;
    if (out_existed && folder_within(out_dir, in_dir)) {
        fprintf(stderr, "dmaudio augment: the output folder %s is inside the input folder %s "
                        "(its outputs would become inputs); choose another\n", out_dir, in_dir);
        return DM_EXIT_USAGE;
    }

    int status = DM_EXIT_FAILURE;
    worker *workers = NULL;
    pthread_t *threads = NULL;
    aug_output_ref *refs = NULL;
    str_list all = {0};
    int lock_ready = 0;

    if (!(a.m = dm_cli_open_model("augment", a.model_path)))
        goto done;
    a.info = dm_model_get_info(a.m);
    {
        char clean[DM_NAME_MAX];
        snprintf(clean, sizeof clean, "%s", a.info.name);
        for (char *p = clean; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        csv_field(a.model_col, 0, sizeof a.model_col, clean);
    }

    if (scan(in_dir, "", 0, &all) != 0)
        goto done;
    if (all.n == 0) {
        fprintf(stderr, "dmaudio augment: %s: no audio file (wav, flac, ogg, aif, aiff)\n", in_dir);
        goto done;
    }
    qsort(all.v, (size_t)all.n, sizeof *all.v, cmp_str);
    if (plan_files(&a, &all) != 0)
        goto done;
    if ((long)a.n_files * a.per_file > INT_MAX) {
        fprintf(stderr, "dmaudio augment: %d files x %d variations is too many for one run "
                        "(use --shard)\n", a.n_files, a.per_file);
        goto done;
    }
    a.total = (long)a.n_files * a.per_file;

    /* the output folders */
    if (make_dirs(out_dir) != 0) {
        fprintf(stderr, "dmaudio augment: cannot create the output folder %s: %s\n", out_dir,
                strerror(errno));
        goto done;
    }
    if (folder_within(out_dir, in_dir)) {
        fprintf(stderr, "dmaudio augment: the output folder %s is inside the input folder %s "
                        "(its outputs would become inputs); choose another\n", out_dir, in_dir);
        rmdir(out_dir); /* made just now, and empty */
        status = DM_EXIT_USAGE;
        goto done;
    }
    for (int i = 0; i < a.n_files; i++) {
        const char *rel = a.files[i].rel, *slash = strrchr(rel, '/');
        if (!slash)
            continue;
        const size_t len = (size_t)(slash - rel);
        if (i > 0) { /* same folder as the previous file? */
            const char *prev = a.files[i - 1].rel, *ps = strrchr(prev, '/');
            if (ps && (size_t)(ps - prev) == len && strncmp(prev, rel, len) == 0)
                continue;
        }
        char dir[2 * PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%.*s", out_dir, (int)len, rel);
        if (make_dirs(dir) != 0) {
            fprintf(stderr, "dmaudio augment: cannot create the folder %s: %s\n", dir,
                    strerror(errno));
            goto done;
        }
    }

    /* where each output is in the plan, by its relative path */
    refs = malloc((a.total > 0 ? (size_t)a.total : 1) * sizeof *refs);
    a.has_line = calloc(a.total > 0 ? (size_t)a.total : 1, 1);
    if (!refs || !a.has_line) {
        fprintf(stderr, "dmaudio augment: out of memory\n");
        goto done;
    }
    for (int id = 0; id < a.total; id++)
        refs[id] = (aug_output_ref){.stem = a.files[id / a.per_file].stem,
                                    .v = id % a.per_file + 1, .id = id};
    qsort(refs, (size_t)a.total, sizeof *refs, cmp_ref);

    if (a.sharded)
        snprintf(a.manifest_name, sizeof a.manifest_name, "manifest-%d-of-%d.csv", a.shard_i,
                 a.shard_n);
    else
        snprintf(a.manifest_name, sizeof a.manifest_name, "manifest.csv");
    snprintf(a.manifest_path, sizeof a.manifest_path, "%s/%s", out_dir, a.manifest_name);
    remove_stale_temps(&a, refs, (int)a.total);
    if (open_manifest(&a, refs, (int)a.total) != 0)
        goto done;

    /* the workers */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int total_threads = a.threads > 0 ? a.threads : (int)(cpus > 0 ? cpus : 1);
    if (a.jobs > a.n_files)
        a.jobs = a.n_files > 0 ? a.n_files : 1;
    int per_job = total_threads / a.jobs > 0 ? total_threads / a.jobs : 1;
    workers = calloc((size_t)a.jobs, sizeof *workers);
    threads = calloc((size_t)a.jobs, sizeof *threads);
    if (!workers || !threads) {
        fprintf(stderr, "dmaudio augment: out of memory\n");
        goto done;
    }
    const size_t item = (size_t)a.info.audio_channels * (size_t)a.info.length;
    for (int j = 0; j < a.jobs; j++) {
        dm_error err;
        workers[j].a = &a;
        workers[j].input = malloc(item * sizeof(float));
        workers[j].output = malloc(item * sizeof(float));
        if (!workers[j].input || !workers[j].output) {
            fprintf(stderr, "dmaudio augment: out of memory\n");
            goto done;
        }
        if (dm_generator_create(a.m, 1, per_job, &workers[j].gen, &err) != DM_OK) {
            fprintf(stderr, "dmaudio augment: %s\n", err.message);
            goto done;
        }
    }
    pthread_mutex_init(&a.lock, NULL);
    lock_ready = 1;

    if (!a.quiet) {
        char s[128], lo[40], hi[40];
        format_double(a.lo, lo, sizeof lo);
        format_double(a.hi, hi, sizeof hi);
        if (a.lo == a.hi)
            snprintf(s, sizeof s, "strength %s", lo);
        else
            snprintf(s, sizeof s, "strength %s..%s", lo, hi);
        char shard[64] = "";
        if (a.sharded)
            snprintf(shard, sizeof shard, " (shard %d/%d of %d files)", a.shard_i, a.shard_n,
                     a.n_all);
        fprintf(stderr, "dmaudio augment: %d files%s x %d variations, %s, %s %d steps, model "
                        "'%s', %d job%s\n", a.n_files, shard, a.per_file, s,
                dm_sampler_name(a.sampler), a.steps, a.info.name, a.jobs, a.jobs > 1 ? "s" : "");
    }
    install_handlers();
    dm_cli_progress_begin(&a.bar, "augmenting", a.quiet);
    dm_cli_progress_update(&a.bar, 0, (double)a.total);
    int started = 0;
    if (a.jobs == 1) {
        worker_main(&workers[0]);
    } else {
        for (; started < a.jobs; started++) {
            if (pthread_create(&threads[started], NULL, worker_main, &workers[started]) != 0) {
                pthread_mutex_lock(&a.lock);
                report_locked(&a, 1, "cannot start a worker thread: %s", strerror(errno));
                pthread_mutex_unlock(&a.lock);
                break;
            }
        }
        for (int j = 0; j < started; j++)
            pthread_join(threads[j], NULL);
    }
    dm_cli_progress_end(&a.bar);

    const long done_count = a.written + a.existing;
    if (a.fatal) {
        status = DM_EXIT_FAILURE;
    } else if (stop_signal && done_count < a.total) {
        if (!a.quiet)
            fprintf(stderr, "dmaudio augment: stopped by %s: %ld of %ld outputs done (%ld written "
                            "now); run the same command again to go on\n",
                    stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C (SIGINT)", done_count, a.total,
                    a.written);
        status = stop_signal == SIGTERM ? 143 : 130;
    } else if (a.failed_inputs > 0) {
        fprintf(stderr, "dmaudio augment: %ld source file%s could not be read (see above); %ld of "
                        "%ld outputs done, %s not sorted until a complete run\n",
                a.failed_inputs, a.failed_inputs > 1 ? "s" : "", done_count, a.total,
                a.manifest_path);
        status = DM_EXIT_FAILURE;
    } else if (finish_manifest(&a) == 0) {
        if (!a.quiet)
            fprintf(stderr, "dmaudio augment: wrote %ld outputs (%ld were already there) to %s; "
                            "manifest %s\n", a.written, a.existing, out_dir, a.manifest_path);
        status = DM_EXIT_OK;
    }
done:
    if (workers)
        for (int j = 0; j < a.jobs; j++) {
            dm_generator_free(workers[j].gen);
            free(workers[j].input);
            free(workers[j].output);
        }
    free(workers);
    free(threads);
    free(refs);
    if (a.mfd >= 0)
        close(a.mfd);
    if (lock_ready)
        pthread_mutex_destroy(&a.lock);
    str_list_free(&all);
    free_plan(&a);
    dm_model_free(a.m);
    return status;
}
