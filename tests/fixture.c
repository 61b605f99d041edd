/* Loader for .dmfx test fixtures; see fixture.h. Every length is checked against the bytes
 * actually present, so a truncated or corrupt file gives an error, never an out-of-bounds read. */
#include "fixture.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor record is at least: name length, ndim and dtype (3 x u32). */
#define FX_MIN_RECORD 12u

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

typedef struct {
    const unsigned char *p;
    size_t left;
} cursor;

static int rd_u32(cursor *c, uint32_t *v)
{
    if (c->left < 4)
        return -1;
    *v = (uint32_t)c->p[0] | ((uint32_t)c->p[1] << 8) | ((uint32_t)c->p[2] << 16) |
         ((uint32_t)c->p[3] << 24);
    c->p += 4;
    c->left -= 4;
    return 0;
}

/* Reads a whole file into a malloc'ed buffer. */
static int read_all(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;

    *buf = NULL;
    *len = 0;
    if (!fp) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            unsigned char *nb;
            if (ncap < cap) {
                set_err(err, errlen, "%s: file too large", path);
                goto fail;
            }
            nb = realloc(b, ncap);
            if (!nb) {
                set_err(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            b = nb;
            cap = ncap;
        }
        got = fread(b + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp)) {
                set_err(err, errlen, "%s: read error", path);
                goto fail;
            }
            break;
        }
    }
    fclose(fp);
    *buf = b;
    *len = n;
    return 0;
fail:
    free(b);
    fclose(fp);
    return -1;
}

void fx_free(fx_file *f)
{
    int i;
    if (!f)
        return;
    if (f->t) {
        for (i = 0; i < f->n; i++) {
            free(f->t[i].name);
            free(f->t[i].data);
        }
        free(f->t);
    }
    f->t = NULL;
    f->n = 0;
}

static int parse(const unsigned char *buf, size_t len, fx_file *f, const char *path, char *err,
                 size_t errlen)
{
    cursor c = {buf, len};
    uint32_t version, count, i;

    if (len < 4 || memcmp(buf, "DMFX", 4) != 0) {
        set_err(err, errlen, "%s: not a DMFX file (bad magic)", path);
        return -1;
    }
    c.p += 4;
    c.left -= 4;
    if (rd_u32(&c, &version) || rd_u32(&c, &count)) {
        set_err(err, errlen, "%s: truncated header", path);
        return -1;
    }
    if (version != 1) {
        set_err(err, errlen, "%s: unsupported version %u", path, (unsigned)version);
        return -1;
    }
    if (count > (uint32_t)INT_MAX || count > c.left / FX_MIN_RECORD) {
        set_err(err, errlen, "%s: tensor count %u inconsistent with file size", path,
                (unsigned)count);
        return -1;
    }
    if (count > 0) {
        f->t = calloc(count, sizeof *f->t);
        if (!f->t) {
            set_err(err, errlen, "%s: out of memory", path);
            return -1;
        }
    }

    for (i = 0; i < count; i++) {
        fx_tensor *t = &f->t[i];
        uint32_t namelen, ndim, dtype, d, j;
        size_t n = 1, bytes;
        const unsigned char *src;
        size_t k;

        if (rd_u32(&c, &namelen)) {
            set_err(err, errlen, "%s: tensor %u: truncated", path, (unsigned)i);
            return -1;
        }
        if (namelen > c.left) {
            set_err(err, errlen, "%s: tensor %u: name length %u exceeds file", path,
                    (unsigned)i, (unsigned)namelen);
            return -1;
        }
        if (memchr(c.p, '\0', namelen)) {
            set_err(err, errlen, "%s: tensor %u: NUL byte in name", path, (unsigned)i);
            return -1;
        }
        t->name = malloc((size_t)namelen + 1);
        if (!t->name) {
            set_err(err, errlen, "%s: out of memory", path);
            return -1;
        }
        f->n = (int)i + 1; /* so that fx_free releases this record */
        memcpy(t->name, c.p, namelen);
        t->name[namelen] = '\0';
        c.p += namelen;
        c.left -= namelen;

        if (rd_u32(&c, &ndim)) {
            set_err(err, errlen, "%s: tensor '%s': truncated", path, t->name);
            return -1;
        }
        if (ndim > FX_MAX_DIMS) {
            set_err(err, errlen, "%s: tensor '%s': ndim %u > %d", path, t->name,
                    (unsigned)ndim, FX_MAX_DIMS);
            return -1;
        }
        t->ndim = (int)ndim;
        for (j = 0; j < ndim; j++) {
            if (rd_u32(&c, &d)) {
                set_err(err, errlen, "%s: tensor '%s': truncated dims", path, t->name);
                return -1;
            }
            if (d > (uint32_t)INT_MAX) {
                set_err(err, errlen, "%s: tensor '%s': dim %u too large", path, t->name,
                        (unsigned)d);
                return -1;
            }
            t->dims[j] = (int)d;
            if (d != 0 && n > SIZE_MAX / d) {
                set_err(err, errlen, "%s: tensor '%s': size overflow", path, t->name);
                return -1;
            }
            n *= d;
        }
        if (rd_u32(&c, &dtype)) {
            set_err(err, errlen, "%s: tensor '%s': truncated", path, t->name);
            return -1;
        }
        if (dtype != FX_F32 && dtype != FX_I32) {
            set_err(err, errlen, "%s: tensor '%s': unknown dtype %u", path, t->name,
                    (unsigned)dtype);
            return -1;
        }
        t->dtype = (int)dtype;
        if (n > SIZE_MAX / 4) {
            set_err(err, errlen, "%s: tensor '%s': size overflow", path, t->name);
            return -1;
        }
        bytes = n * 4;
        if (bytes > c.left) {
            set_err(err, errlen, "%s: tensor '%s': data (%zu bytes) exceeds file (%zu left)",
                    path, t->name, bytes, c.left);
            return -1;
        }
        t->n = n;
        t->data = malloc(bytes ? bytes : 1);
        if (!t->data) {
            set_err(err, errlen, "%s: out of memory", path);
            return -1;
        }
        /* Decode little-endian 32-bit words whatever the host byte order. */
        src = c.p;
        for (k = 0; k < n; k++) {
            uint32_t w = (uint32_t)src[4 * k] | ((uint32_t)src[4 * k + 1] << 8) |
                         ((uint32_t)src[4 * k + 2] << 16) | ((uint32_t)src[4 * k + 3] << 24);
            memcpy((unsigned char *)t->data + 4 * k, &w, 4);
        }
        c.p += bytes;
        c.left -= bytes;

        for (j = 0; j < i; j++) {
            if (strcmp(f->t[j].name, t->name) == 0) {
                set_err(err, errlen, "%s: duplicate tensor name '%s'", path, t->name);
                return -1;
            }
        }
    }
    if (c.left != 0) {
        set_err(err, errlen, "%s: %zu trailing bytes after the last tensor", path, c.left);
        return -1;
    }
    return 0;
}

int fx_load(const char *path, fx_file *f, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (!f) {
        set_err(err, errlen, "fx_load: NULL output");
        return -1;
    }
    f->n = 0;
    f->t = NULL;
    if (!path) {
        set_err(err, errlen, "fx_load: NULL path");
        return -1;
    }
    if (read_all(path, &buf, &len, err, errlen))
        return -1;
    rc = parse(buf, len, f, path, err, errlen);
    free(buf);
    if (rc) {
        fx_free(f);
        return -1;
    }
    return 0;
}

const fx_tensor *fx_get(const fx_file *f, const char *name)
{
    int i;
    if (!f || !name)
        return NULL;
    for (i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

const float *fx_f32(const fx_file *f, const char *name, size_t *n)
{
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != FX_F32)
        return NULL;
    if (n)
        *n = t->n;
    return (const float *)t->data;
}

const int32_t *fx_i32(const fx_file *f, const char *name, size_t *n)
{
    const fx_tensor *t = fx_get(f, name);
    if (!t || t->dtype != FX_I32)
        return NULL;
    if (n)
        *n = t->n;
    return (const int32_t *)t->data;
}
