/* Training datasets: a folder of audio files, labelled by first-level
 * sub-folder, walked in a deterministic order and held in memory at one rate
 * and channel count. */
#include "dmaudio_audio.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Sub-folder nesting beyond this is refused (it also stops symlink loops). */
#define MAX_DEPTH 32

typedef struct item {
    char *path;         /* dir + "/" + rel                                     */
    const char *rel;    /* points into path                                    */
    int cls;            /* -1: unconditional                                   */
    float *data;        /* (channels, frames), NULL when scan_only             */
    int64_t frames;
} item;

struct dm_dataset {
    int rate, channels;
    bool scan_only;
    int n_items;
    item *items;
    int n_classes;
    char **class_names;
};

/* ------------------------------------------------------------------------ */
/* A growable array of strings                                               */
/* ------------------------------------------------------------------------ */

typedef struct strvec {
    char **v;
    int n, cap;
} strvec;

static void strvec_free(strvec *s)
{
    for (int i = 0; i < s->n; i++)
        dm_free(s->v[i]);
    dm_free(s->v);
    memset(s, 0, sizeof *s);
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = dm_alloc(n, 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Takes ownership of s (frees it on failure). */
static bool strvec_push(strvec *s, char *str)
{
    if (!str)
        return false;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        if (cap > (1 << 28)) {
            dm_free(str);
            return false;
        }
        char **v = dm_alloc((size_t)cap, sizeof *v);
        if (!v) {
            dm_free(str);
            return false;
        }
        if (s->n)
            memcpy(v, s->v, (size_t)s->n * sizeof *v);
        dm_free(s->v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------------------ */
/* Walking the folder                                                        */
/* ------------------------------------------------------------------------ */

static bool is_audio_name(const char *name)
{
    static const char *const exts[] = {".wav", ".flac", ".ogg", ".aif", ".aiff"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot, exts[i]) == 0)
            return true;
    return false;
}

/* a + "/" + b into buf (a == "/" gives "/b"); false if it does not fit. */
static bool join(char *buf, size_t n, const char *a, const char *b)
{
    int len = strcmp(a, "/") == 0 ? snprintf(buf, n, "/%s", b) : snprintf(buf, n, "%s/%s", a, b);
    return len >= 0 && (size_t)len < n;
}

/* Appends to files the relative paths (rel/...) of the audio files under
 * root/rel, depth first, each folder's entries in bytewise order. */
static dm_status walk(const char *root, const char *rel, int depth, strvec *files, dm_error *err)
{
    char dirpath[4096];
    bool fits = rel[0] ? join(dirpath, sizeof dirpath, root, rel)
                       : (size_t)snprintf(dirpath, sizeof dirpath, "%s", root) < sizeof dirpath;
    if (!fits)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s/%s: path too long", root, rel);
    if (depth > MAX_DEPTH)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: folders nested more than %d deep (a symbolic link loop?)", dirpath,
                       MAX_DEPTH);
    DIR *d = opendir(dirpath);
    if (!d)
        return dm_fail(err, DM_ERR_IO, "%s: %s", dirpath, strerror(errno));
    strvec names = {0};
    dm_status st = DM_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                st = dm_fail(err, DM_ERR_IO, "%s: %s", dirpath, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') /* ".", "..", and hidden files and folders */
            continue;
        if (!strvec_push(&names, str_dup(e->d_name))) {
            st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dirpath);
            break;
        }
    }
    closedir(d);
    if (!st && names.n > 1)
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int i = 0; i < names.n && !st; i++) {
        char sub[4096], full[4096];
        int n1 = rel[0] ? snprintf(sub, sizeof sub, "%s/%s", rel, names.v[i])
                        : snprintf(sub, sizeof sub, "%s", names.v[i]);
        if (n1 < 0 || (size_t)n1 >= sizeof sub || !join(full, sizeof full, root, sub)) {
            st = dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s/%s: path too long", dirpath,
                         names.v[i]);
            break;
        }
        struct stat sb;
        if (stat(full, &sb) != 0) {
            /* A dangling symbolic link to an audio file is an error; to anything else, noise. */
            if (is_audio_name(names.v[i]))
                st = dm_fail(err, DM_ERR_IO, "%s: %s", full, strerror(errno));
            continue;
        }
        if (S_ISDIR(sb.st_mode))
            st = walk(root, sub, depth + 1, files, err);
        else if (is_audio_name(names.v[i]) && !strvec_push(files, str_dup(sub)))
            st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", full);
    }
    strvec_free(&names);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */
/* ------------------------------------------------------------------------ */

dm_dataset_params dm_dataset_default_params(void)
{
    dm_dataset_params p;
    memset(&p, 0, sizeof p);
    p.rate = 44100;
    p.channels = 1;
    p.length = 0;
    p.quality = DM_RESAMPLE_MEDIUM;
    p.max_frames = DM_AUDIO_MAX_FRAMES;
    p.max_total_frames = 0;
    return p;
}

void dm_dataset_free(dm_dataset *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->n_items; i++) {
        dm_free(ds->items[i].path);
        dm_free(ds->items[i].data);
    }
    dm_free(ds->items);
    for (int c = 0; c < ds->n_classes; c++)
        dm_free(ds->class_names[c]);
    dm_free(ds->class_names);
    dm_free(ds);
}

/* The first component of rel if rel has several, else NULL (in name, n bytes). */
static const char *class_of(const char *rel, char *name, size_t n)
{
    const char *slash = strchr(rel, '/');
    if (!slash)
        return NULL;
    snprintf(name, n, "%.*s", (int)(slash - rel), rel);
    return name;
}

static int find_name(char *const *names, int n, const char *name)
{
    char *const *hit = bsearch(&name, names, (size_t)n, sizeof *names, cmp_str);
    return hit ? (int)(hit - names) : -1;
}

/* Sorted distinct class names; error if labelled and unlabelled files mix. */
static dm_status make_classes(const char *dir, const strvec *files, dm_dataset *ds, dm_error *err)
{
    strvec classes = {0};
    int top = 0, labelled = 0;
    const char *a_top = NULL, *a_labelled = NULL;
    for (int i = 0; i < files->n; i++) {
        char name[4096];
        if (!class_of(files->v[i], name, sizeof name)) {
            top++;
            a_top = a_top ? a_top : files->v[i];
            continue;
        }
        labelled++;
        a_labelled = a_labelled ? a_labelled : files->v[i];
        if (classes.n == 0 || strcmp(classes.v[classes.n - 1], name) != 0) {
            if (!strvec_push(&classes, str_dup(name))) {
                strvec_free(&classes);
                return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
            }
        }
    }
    if (top && labelled) {
        strvec_free(&classes);
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: %d file%s at the top (e.g. %s) and %d in class folders (e.g. %s): "
                       "put every file in a class folder, or none",
                       dir, top, top == 1 ? "" : "s", a_top, labelled, a_labelled);
    }
    /* Files come grouped by first-level folder, so adjacent duplicates were
     * dropped above; sort (already sorted, but cheap) and drop any left. */
    if (classes.n > 1)
        qsort(classes.v, (size_t)classes.n, sizeof *classes.v, cmp_str);
    int k = 0;
    for (int i = 0; i < classes.n; i++) {
        if (k > 0 && strcmp(classes.v[k - 1], classes.v[i]) == 0)
            dm_free(classes.v[i]);
        else
            classes.v[k++] = classes.v[i];
    }
    classes.n = k;
    if (classes.n > DM_DATASET_MAX_CLASSES) {
        int n = classes.n;
        strvec_free(&classes);
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: %d classes (sub-folders), more than %d",
                       dir, n, DM_DATASET_MAX_CLASSES);
    }
    ds->class_names = classes.v;
    ds->n_classes = classes.n;
    return DM_OK;
}

static dm_status check_params(const dm_dataset_params *p, dm_error *err)
{
    if (p->rate < 1 || p->rate > DM_AUDIO_MAX_RATE)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dataset rate %d, expected 1..%d", p->rate,
                       DM_AUDIO_MAX_RATE);
    if (p->channels != 1 && p->channels != 2)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dataset channels %d, expected 1 or 2",
                       p->channels);
    if (p->length < 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dataset length %d, expected >= 0",
                       p->length);
    if (p->max_frames < 1 || p->max_frames > DM_AUDIO_MAX_FRAMES || p->length > p->max_frames)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dataset max_frames %lld, expected %d..%lld",
                       (long long)p->max_frames, p->length > 1 ? p->length : 1,
                       (long long)DM_AUDIO_MAX_FRAMES);
    if (p->max_total_frames < 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dataset max_total_frames %lld, expected >= 0",
                       (long long)p->max_total_frames);
    if ((unsigned)p->quality >= DM_RESAMPLE_QUALITY_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "bad resampling quality %d", (int)p->quality);
    return DM_OK;
}

/* Reads item it's file into it->data, padded to at least p->length frames. */
static dm_status load_item(item *it, const dm_dataset_params *p, dm_error *err)
{
    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.channels = p->channels;
    rp.rate = p->rate;
    rp.quality = p->quality;
    rp.max_frames = p->max_frames;
    dm_audio a;
    dm_status st = dm_audio_read(it->path, &rp, &a, err);
    if (st)
        return st;
    if (a.frames >= p->length) {
        it->data = a.data; /* dm_audio_read allocates with dm_alloc */
        it->frames = a.frames;
        return DM_OK;
    }
    float *d = dm_alloc((size_t)p->channels * (size_t)p->length, sizeof(float));
    if (!d) {
        dm_audio_free(&a);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", it->path);
    }
    for (int c = 0; c < p->channels; c++)
        memcpy(d + (size_t)c * (size_t)p->length, a.data + (size_t)c * (size_t)a.frames,
               (size_t)a.frames * sizeof *d);
    dm_audio_free(&a);
    it->data = d;
    it->frames = p->length;
    return DM_OK;
}

dm_status dm_dataset_load(const char *dir, const dm_dataset_params *params, dm_dataset **out,
                          dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_dataset_load: no output");
    *out = NULL;
    if (!dir || !*dir)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "no dataset folder given");
    dm_dataset_params p = params ? *params : dm_dataset_default_params();
    dm_status st = check_params(&p, err);
    if (st)
        return st;

    /* "data/" and "data" name the same folder; keep "/" as it is. */
    char root[4096];
    int len = snprintf(root, sizeof root, "%s", dir);
    if (len < 0 || (size_t)len >= sizeof root)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: path too long", dir);
    while (len > 1 && root[len - 1] == '/')
        root[--len] = 0;
    struct stat sb;
    if (stat(root, &sb) != 0)
        return dm_fail(err, DM_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return dm_fail(err, DM_ERR_IO, "%s: not a folder", dir);

    strvec files = {0};
    st = walk(root, "", 0, &files, err);
    if (!st && files.n == 0)
        st = dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                     "%s: no audio files (.wav, .flac, .ogg, .aif, .aiff) in it or below", dir);
    dm_dataset *ds = NULL;
    if (!st) {
        ds = dm_alloc(1, sizeof *ds);
        if (!ds)
            st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    }
    if (!st) {
        ds->rate = p.rate;
        ds->channels = p.channels;
        ds->scan_only = p.scan_only != 0;
        st = make_classes(dir, &files, ds, err);
    }
    if (!st) {
        ds->items = dm_alloc((size_t)files.n, sizeof *ds->items);
        if (!ds->items)
            st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    }
    for (int i = 0; i < files.n && !st; i++) {
        item *it = &ds->items[ds->n_items];
        size_t n = strlen(root) + 1 + strlen(files.v[i]) + 1;
        it->path = dm_alloc(n, 1);
        if (!it->path) {
            st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
            break;
        }
        join(it->path, n, root, files.v[i]);
        it->rel = it->path + strlen(it->path) - strlen(files.v[i]);
        ds->n_items++;
        char name[4096];
        it->cls = class_of(it->rel, name, sizeof name)
                      ? find_name(ds->class_names, ds->n_classes, name)
                      : -1;
    }
    strvec_free(&files);

    int64_t total = 0;
    for (int i = 0; ds && i < ds->n_items && !st; i++) {
        item *it = &ds->items[i];
        if (!ds->scan_only) {
            st = load_item(it, &p, err);
            if (st)
                break;
            total += it->frames;
            if (p.max_total_frames && total > p.max_total_frames) {
                st = dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                             "%s: more than %lld frames in total (at %s)", dir,
                             (long long)p.max_total_frames, it->path);
                break;
            }
        }
        if (p.progress && p.progress(i + 1, ds->n_items, it->path, p.user_data) != 0)
            st = dm_fail(err, DM_ERR_CANCELLED, "%s: loading cancelled after %d of %d files", dir,
                         i + 1, ds->n_items);
    }
    if (st) {
        dm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return DM_OK;
}

/* ------------------------------------------------------------------------ */
/* Access                                                                    */
/* ------------------------------------------------------------------------ */

int dm_dataset_count(const dm_dataset *ds)
{
    return ds ? ds->n_items : 0;
}

int dm_dataset_n_classes(const dm_dataset *ds)
{
    return ds ? ds->n_classes : 0;
}

int dm_dataset_channels(const dm_dataset *ds)
{
    return ds ? ds->channels : 0;
}

int dm_dataset_rate(const dm_dataset *ds)
{
    return ds ? ds->rate : 0;
}

const char *dm_dataset_class_name(const dm_dataset *ds, int cls)
{
    return ds && cls >= 0 && cls < ds->n_classes ? ds->class_names[cls] : NULL;
}

int dm_dataset_find_class(const dm_dataset *ds, const char *name)
{
    return ds && name ? find_name(ds->class_names, ds->n_classes, name) : -1;
}

static const item *get_item(const dm_dataset *ds, int i)
{
    return ds && i >= 0 && i < ds->n_items ? &ds->items[i] : NULL;
}

dm_status dm_dataset_item(const dm_dataset *ds, int i, const float **data, int64_t *frames,
                          int *cls)
{
    const item *it = get_item(ds, i);
    if (!it || ds->scan_only)
        return DM_ERR_INVALID_ARGUMENT;
    if (data)
        *data = it->data;
    if (frames)
        *frames = it->frames;
    if (cls)
        *cls = it->cls;
    return DM_OK;
}

const char *dm_dataset_path(const dm_dataset *ds, int i)
{
    const item *it = get_item(ds, i);
    return it ? it->path : NULL;
}

const char *dm_dataset_relpath(const dm_dataset *ds, int i)
{
    const item *it = get_item(ds, i);
    return it ? it->rel : NULL;
}

dm_status dm_dataset_crop(const dm_dataset *ds, int i, int64_t offset, int length, float *dst)
{
    const item *it = get_item(ds, i);
    if (!it || ds->scan_only || length < 0 || (!dst && length > 0))
        return DM_ERR_INVALID_ARGUMENT;
    /* Overlap of [offset, offset + length) with [0, frames), in dst's frames:
     * [lo, hi), empty (lo == hi) when the ranges do not meet. */
    int64_t lo = 0, hi = 0;
    if (offset < it->frames && offset > -(int64_t)length) {
        lo = offset < 0 ? -offset : 0;
        hi = it->frames - offset < length ? it->frames - offset : length;
    }
    for (int c = 0; c < ds->channels; c++) {
        float *d = dst + (size_t)c * (size_t)length;
        const float *s = it->data + (size_t)c * (size_t)it->frames;
        memset(d, 0, (size_t)lo * sizeof *d);
        if (hi > lo)
            memcpy(d + lo, s + (offset + lo), (size_t)(hi - lo) * sizeof *d);
        memset(d + hi, 0, (size_t)(length - hi) * sizeof *d);
    }
    return DM_OK;
}
