/* The dmaudio container format (docs/model-format.md): reader, validator, writer.
 *
 * Sections: byte helpers, float16, names and UTF-8, reader (parse, getters,
 * tensors), writer (add, layout, emit, atomic save).
 *
 * The reader holds the whole file in one buffer and checks every count, length
 * and offset against the bytes that remain before using it; sizes are computed
 * in uint64_t with the limits of dmfile.h applied before any multiplication, so
 * nothing can overflow. Parsed keys and names live in a small arena. */
#include "dmfile.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#define HEADER_SIZE 28  /* magic, version, flags, n_kv, n_tensors */
#define TRAILER_SIZE 8  /* crc32, "DMAE"                          */
#define MIN_KV_SIZE 13  /* u32 len, 1 byte of name, u32 type, u32 (empty string) */
#define MIN_TENSOR_SIZE 29 /* u32 len, 1 byte, u32 ndim, one u64 dim, u32 dtype, u64 offset */

static const uint8_t zeros64[DM_FILE_ALIGN];

/* ------------------------------------------------------------------------ */
/* Byte helpers                                                              */
/* ------------------------------------------------------------------------ */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

/* Two's complement without implementation-defined conversions. */
static int64_t u64_to_i64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static uint64_t align_up(uint64_t x)
{
    return (x + (DM_FILE_ALIGN - 1)) & ~(uint64_t)(DM_FILE_ALIGN - 1);
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* zlib's crc32() takes a 32-bit length: feed it in chunks. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

const char *dm_file_type_name(int type)
{
    static const char *const names[DM_FILE_TYPE_COUNT] = {
        "int", "float", "string", "int array", "float array", "string array",
    };
    return type >= 0 && type < DM_FILE_TYPE_COUNT ? names[type] : "unknown";
}

const char *dm_file_dtype_name(int dtype)
{
    return dtype == DM_FILE_F32 ? "f32" : dtype == DM_FILE_F16 ? "f16" : "unknown";
}

/* ------------------------------------------------------------------------ */
/* float16 (IEEE 754 binary16)                                               */
/* ------------------------------------------------------------------------ */

uint16_t dm_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffff;

    if (a > 0x7f800000) /* NaN: quiet, keep the payload's top bits */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000) /* >= 65520 (halfway past 65504, ties to even: up) or inf */
        return (uint16_t)(sign | 0x7c00);
    if (a >= 0x38800000) { /* >= 2^-14: normal; rebias 127 -> 15 and round 13 bits */
        uint32_t h = (a - 0x38000000) >> 13;
        uint32_t rem = a & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
            h++; /* a carry into the exponent is right */
        return (uint16_t)(sign | h);
    }
    /* Subnormal or zero: the result is round(x / 2^-24). x = m * 2^(e-150) with the
     * implicit bit in m, so x / 2^-24 = m >> (126 - e). */
    uint32_t e = a >> 23;
    uint32_t shift = 126 - e; /* >= 14 here */
    if (shift > 24)           /* x < 2^-25: rounds to zero (x = 2^-25 would tie to 0) */
        return sign;
    uint32_t m = (a & 0x7fffff) | 0x800000;
    uint32_t h = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
        h++; /* 0x400 is the smallest normal: also right */
    return (uint16_t)(sign | h);
}

float dm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff;
    uint32_t u;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* exact */
        memcpy(&u, &v, sizeof u);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000 | (m << 13);
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------ */
/* Names and UTF-8                                                           */
/* ------------------------------------------------------------------------ */

/* 1 if s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF) without NUL bytes; with `names`, control characters
 * (U+0000..U+001F, U+007F) are refused as well. */
static int utf8_ok(const uint8_t *s, size_t n, int names)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == 0 || (names && (c < 0x20 || c == 0x7f)))
                return 0;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (len > n - i)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* NULL if s[0..n) is a valid key or tensor name, else what is wrong with it. */
static const char *name_problem(const uint8_t *s, size_t n)
{
    if (n == 0)
        return "is empty";
    if (n > DM_FILE_MAX_NAME)
        return "is longer than 255 bytes";
    if (!utf8_ok(s, n, 1))
        return "is not valid UTF-8 or contains a control character";
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

/* Parsed names, strings and arrays: blocks freed together with the file. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t mem[];
} arena_block;

static void *arena_alloc(arena_block **arena, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = *arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = *arena;
        b->used = 0;
        b->cap = cap;
        *arena = b;
    }
    void *p = (char *)b->mem + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena_block *b)
{
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

typedef struct kv_entry {
    const char *name;
    int type;
    size_t n; /* arrays: element count */
    union {
        int64_t i;
        double f;
        const char *s;
        const int64_t *ints;
        const double *floats;
        const char *const *strs;
    } v;
} kv_entry;

typedef struct tensor_entry {
    const char *name;
    int ndim;
    int64_t dims[DM_FILE_MAX_DIMS];
    int dtype;
    uint64_t offset; /* from the start of the data section */
    uint64_t count;  /* elements */
    uint64_t bytes;
} tensor_entry;

struct dm_file {
    uint8_t *buf; /* the whole file, malloc'ed to its exact size (so that ASan sees
                   * any read past its end) */
    size_t size;
    size_t data_start;
    int n_kv;
    kv_entry *kv;
    kv_entry **kv_sorted; /* by name, for lookups */
    int n_tensors;
    tensor_entry *t;
    tensor_entry **t_sorted;
    arena_block *arena;
};

/* A read position in the body (the file minus its trailer). `what` names the
 * thing being read, for messages. */
typedef struct cursor {
    const uint8_t *buf;
    size_t pos, end, size;
    char what[300];
    dm_error *err;
} cursor;

static dm_status truncated(dm_error *err, const char *what, uint64_t n, uint64_t at, size_t size)
{
    /* The region may fit the file but run into the trailer. */
    const char *note = (at <= size && n <= size - at) ? " (its last 8 bytes are the trailer)" : "";
    return dm_fail(err, DM_ERR_FORMAT, "truncated: %s needs %" PRIu64 " bytes at offset %" PRIu64
                   ", file has %zu%s", what, n, at, size, note);
}

static dm_status need(cursor *c, uint64_t n)
{
    if (n <= c->end - c->pos)
        return DM_OK;
    return truncated(c->err, c->what, n, c->pos, c->size);
}

static dm_status take32(cursor *c, uint32_t *v)
{
    dm_status s = need(c, 4);
    if (s == DM_OK) {
        *v = rd32(c->buf + c->pos);
        c->pos += 4;
    }
    return s;
}

static dm_status take64(cursor *c, uint64_t *v)
{
    dm_status s = need(c, 8);
    if (s == DM_OK) {
        *v = rd64(c->buf + c->pos);
        c->pos += 8;
    }
    return s;
}

/* A key or tensor name: u32 length + bytes, checked, copied to the arena. */
static dm_status take_name(cursor *c, arena_block **arena, const char **out)
{
    uint32_t len;
    dm_status s = take32(c, &len);
    if (s != DM_OK)
        return s;
    if (len == 0 || len > DM_FILE_MAX_NAME)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: name length %" PRIu32 " (must be 1..%d)",
                       c->what, len, DM_FILE_MAX_NAME);
    if ((s = need(c, len)) != DM_OK)
        return s;
    const char *why = name_problem(c->buf + c->pos, len);
    if (why)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: name %s", c->what, why);
    char *p = arena_alloc(arena, (size_t)len + 1);
    if (!p)
        return dm_fail(c->err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(p, c->buf + c->pos, len);
    p[len] = '\0';
    c->pos += len;
    *out = p;
    return DM_OK;
}

/* A string value: u32 length (<= 1 MiB) + UTF-8 bytes without NUL. */
static dm_status take_string(cursor *c, arena_block **arena, const char **out)
{
    uint32_t len;
    dm_status s = take32(c, &len);
    if (s != DM_OK)
        return s;
    if (len > DM_FILE_MAX_STRING)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: string of %" PRIu32 " bytes (limit %u)",
                       c->what, len, DM_FILE_MAX_STRING);
    if ((s = need(c, len)) != DM_OK)
        return s;
    if (!utf8_ok(c->buf + c->pos, len, 0))
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: string is not valid UTF-8 or contains NUL",
                       c->what);
    char *p = arena_alloc(arena, (size_t)len + 1);
    if (!p)
        return dm_fail(c->err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(p, c->buf + c->pos, len);
    p[len] = '\0';
    c->pos += len;
    *out = p;
    return DM_OK;
}

static dm_status take_count(cursor *c, uint64_t elem_min, size_t *n)
{
    uint64_t count;
    dm_status s = take64(c, &count);
    if (s != DM_OK)
        return s;
    if (count > DM_FILE_MAX_ARRAY)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: array of %" PRIu64 " elements (limit %u)",
                       c->what, count, DM_FILE_MAX_ARRAY);
    if ((s = need(c, count * elem_min)) != DM_OK) /* <= 2^27: no overflow */
        return s;
    *n = (size_t)count;
    return DM_OK;
}

static dm_status parse_kv(cursor *c, dm_file *f, kv_entry *e, int index)
{
    snprintf(c->what, sizeof c->what, "key #%d", index);
    dm_status s = take_name(c, &f->arena, &e->name);
    if (s != DM_OK)
        return s;
    snprintf(c->what, sizeof c->what, "key '%s'", e->name);
    uint32_t type;
    if ((s = take32(c, &type)) != DM_OK)
        return s;
    if (type >= DM_FILE_TYPE_COUNT)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: unknown type %" PRIu32, c->what, type);
    e->type = (int)type;
    e->n = 0;
    uint64_t u;
    switch (type) {
    case DM_FILE_INT:
        if ((s = take64(c, &u)) == DM_OK)
            e->v.i = u64_to_i64(u);
        return s;
    case DM_FILE_FLOAT:
        if ((s = take64(c, &u)) == DM_OK)
            memcpy(&e->v.f, &u, sizeof u);
        return s;
    case DM_FILE_STRING:
        return take_string(c, &f->arena, &e->v.s);
    case DM_FILE_INTS:
    case DM_FILE_FLOATS: {
        if ((s = take_count(c, 8, &e->n)) != DM_OK)
            return s;
        uint64_t *p = arena_alloc(&f->arena, e->n * 8 + 8);
        if (!p)
            return dm_fail(c->err, DM_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t k = 0; k < e->n; k++, c->pos += 8) {
            u = rd64(c->buf + c->pos);
            if (type == DM_FILE_INTS)
                ((int64_t *)p)[k] = u64_to_i64(u);
            else
                memcpy((double *)p + k, &u, sizeof u);
        }
        if (type == DM_FILE_INTS)
            e->v.ints = (const int64_t *)p;
        else
            e->v.floats = (const double *)p;
        return DM_OK;
    }
    case DM_FILE_STRINGS: {
        if ((s = take_count(c, 4, &e->n)) != DM_OK)
            return s;
        const char **p = arena_alloc(&f->arena, (e->n + 1) * sizeof *p);
        if (!p)
            return dm_fail(c->err, DM_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t k = 0; k < e->n; k++) {
            snprintf(c->what, sizeof c->what, "key '%s' string %zu", e->name, k);
            if ((s = take_string(c, &f->arena, &p[k])) != DM_OK)
                return s;
        }
        p[e->n] = NULL;
        e->v.strs = p;
        return DM_OK;
    }
    }
    return DM_ERR_FORMAT; /* not reached */
}

/* "3 x 4 x 5" */
static void dims_text(char *buf, size_t cap, const uint64_t *dims, int ndim)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && used < cap; d++) {
        int k = snprintf(buf + used, cap - used, "%s%" PRIu64, d ? " x " : "", dims[d]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

static dm_status parse_tensor(cursor *c, dm_file *f, tensor_entry *t, int index)
{
    snprintf(c->what, sizeof c->what, "tensor #%d", index);
    dm_status s = take_name(c, &f->arena, &t->name);
    if (s != DM_OK)
        return s;
    snprintf(c->what, sizeof c->what, "tensor '%s'", t->name);
    uint32_t ndim;
    if ((s = take32(c, &ndim)) != DM_OK)
        return s;
    if (ndim < 1 || ndim > DM_FILE_MAX_DIMS)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: ndim %" PRIu32 " (must be 1..%d)", c->what,
                       ndim, DM_FILE_MAX_DIMS);
    uint64_t dims[DM_FILE_MAX_DIMS];
    for (uint32_t d = 0; d < ndim; d++)
        if ((s = take64(c, &dims[d])) != DM_OK)
            return s;
    uint64_t count = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        if (dims[d] == 0)
            return dm_fail(c->err, DM_ERR_FORMAT, "%s: dimension %" PRIu32 " is 0 (must be >= 1)",
                           c->what, d);
        if (dims[d] > DM_FILE_MAX_ELEMENTS || count > DM_FILE_MAX_ELEMENTS / dims[d]) {
            char text[128];
            dims_text(text, sizeof text, dims, (int)ndim);
            return dm_fail(c->err, DM_ERR_FORMAT, "%s: dims %s exceed the limit of 2^32 elements",
                           c->what, text);
        }
        count *= dims[d];
    }
    uint32_t dtype;
    if ((s = take32(c, &dtype)) != DM_OK)
        return s;
    if (dtype >= DM_FILE_DTYPE_COUNT)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: unknown dtype %" PRIu32, c->what, dtype);
    if ((s = take64(c, &t->offset)) != DM_OK)
        return s;
    if (t->offset % DM_FILE_ALIGN != 0)
        return dm_fail(c->err, DM_ERR_FORMAT, "%s: offset %" PRIu64 " is not a multiple of %d",
                       c->what, t->offset, DM_FILE_ALIGN);
    t->ndim = (int)ndim;
    for (int d = 0; d < DM_FILE_MAX_DIMS; d++)
        t->dims[d] = d < (int)ndim ? (int64_t)dims[d] : 1;
    t->dtype = (int)dtype;
    t->count = count;
    t->bytes = count * (dtype == DM_FILE_F16 ? 2 : 4); /* <= 2^34 */
    return DM_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(kv_entry *const *)a)->name, (*(kv_entry *const *)b)->name);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(tensor_entry *const *)a)->name, (*(tensor_entry *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    uint64_t x = (*(tensor_entry *const *)a)->offset, y = (*(tensor_entry *const *)b)->offset;
    return x < y ? -1 : x > y;
}

/* Offset of the first nonzero byte of p[0..n), or n. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] == 0)
        i++;
    return i;
}

/* The data section: every tensor inside it, none overlapping, the gaps and the
 * tail zero, and it ends at the aligned end of the last tensor. */
static dm_status check_data(dm_file *f, dm_error *err)
{
    const uint8_t *b = f->buf;
    size_t body = f->size - TRAILER_SIZE;
    uint64_t data_size = body - f->data_start;
    char what[300];

    for (int i = 0; i < f->n_tensors; i++) {
        const tensor_entry *t = &f->t[i];
        if (t->offset > data_size || t->bytes > data_size - t->offset) {
            if (t->offset > UINT64_MAX - f->data_start) /* say it without wrapping around */
                return dm_fail(err, DM_ERR_FORMAT, "truncated: tensor '%s' needs %" PRIu64
                               " bytes at offset %zu + %" PRIu64 ", file has %zu", t->name,
                               t->bytes, f->data_start, t->offset, f->size);
            snprintf(what, sizeof what, "tensor '%s'", t->name);
            return truncated(err, what, t->bytes, f->data_start + t->offset, f->size);
        }
    }
    if (f->n_tensors <= 0) {
        if (data_size != 0)
            return dm_fail(err, DM_ERR_FORMAT, "%" PRIu64 " unexpected bytes at offset %zu: "
                           "no tensor is declared", data_size, f->data_start);
        return DM_OK;
    }

    tensor_entry **by_off = malloc((size_t)f->n_tensors * sizeof *by_off);
    if (!by_off)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < f->n_tensors; i++)
        by_off[i] = &f->t[i];
    qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, cmp_tensor_offset);

    dm_status s = DM_OK;
    uint64_t end = 0; /* end of the previous tensor */
    for (int i = 0; i < f->n_tensors && s == DM_OK; i++) {
        const tensor_entry *t = by_off[i];
        if (i > 0 && t->offset < end) {
            s = dm_fail(err, DM_ERR_FORMAT, "tensors '%s' and '%s' overlap (data bytes %" PRIu64
                        "..%" PRIu64 " and %" PRIu64 "..%" PRIu64 ")", by_off[i - 1]->name,
                        t->name, by_off[i - 1]->offset, end, t->offset, t->offset + t->bytes);
            break;
        }
        size_t gap = (size_t)(t->offset - end);
        size_t z = first_nonzero(b + f->data_start + end, gap);
        if (z < gap)
            s = dm_fail(err, DM_ERR_FORMAT, "nonzero padding byte at offset %" PRIu64 " before "
                        "tensor '%s'", f->data_start + end + z, t->name);
        end = t->offset + t->bytes;
    }
    free(by_off);
    if (s != DM_OK)
        return s;

    uint64_t want = align_up(end);
    if (data_size < want)
        return truncated(err, "the padding after the last tensor", want - end,
                         f->data_start + end, f->size);
    if (data_size > want)
        return dm_fail(err, DM_ERR_FORMAT, "%" PRIu64 " unexpected bytes after the last tensor, "
                       "at offset %" PRIu64, data_size - want, f->data_start + want);
    size_t z = first_nonzero(b + f->data_start + end, (size_t)(want - end));
    if (z < want - end)
        return dm_fail(err, DM_ERR_FORMAT, "nonzero padding byte at offset %" PRIu64
                       " after the last tensor", f->data_start + end + z);
    return DM_OK;
}

/* Validates f->buf[0..f->size) and fills the tables. Messages have no path. */
static dm_status parse(dm_file *f, dm_error *err)
{
    const uint8_t *b = f->buf;
    size_t size = f->size;

    if (size == 0)
        return dm_fail(err, DM_ERR_FORMAT, "truncated: the file is empty");
    if (memcmp(b, "DMAU", size < 4 ? size : 4) != 0)
        return dm_fail(err, DM_ERR_FORMAT, "bad magic: not a dmaudio file (it does not start "
                       "with \"DMAU\")");
    if (size < HEADER_SIZE + TRAILER_SIZE)
        return dm_fail(err, DM_ERR_FORMAT, "truncated: file has %zu bytes, the header and "
                       "trailer alone need %d", size, HEADER_SIZE + TRAILER_SIZE);
    uint32_t version = rd32(b + 4), flags = rd32(b + 8);
    if (version != DM_FILE_VERSION)
        return dm_fail(err, DM_ERR_FORMAT, "unsupported version %" PRIu32 " (this build reads "
                       "version %d)", version, DM_FILE_VERSION);
    if (flags != 0)
        return dm_fail(err, DM_ERR_FORMAT, "unsupported flags 0x%08" PRIx32 " (version 1 "
                       "defines none)", flags);
    uint64_t n_kv = rd64(b + 12), n_t = rd64(b + 20);
    if (n_kv > DM_FILE_MAX_KEYS)
        return dm_fail(err, DM_ERR_FORMAT, "too many keys: %" PRIu64 " (limit %d)", n_kv,
                       DM_FILE_MAX_KEYS);
    if (n_t > DM_FILE_MAX_TENSORS)
        return dm_fail(err, DM_ERR_FORMAT, "too many tensors: %" PRIu64 " (limit %d)", n_t,
                       DM_FILE_MAX_TENSORS);

    /* An intact trailer: the checksum first, so that a damaged file says so
     * rather than whatever its damage looks like. Otherwise (a truncated file)
     * the structure below says where it ends too early. */
    int trailer_ok = memcmp(b + size - 4, "DMAE", 4) == 0;
    if (trailer_ok) {
        uint32_t stored = rd32(b + size - TRAILER_SIZE);
        uint32_t computed = crc_update((uint32_t)crc32(0, Z_NULL, 0), b, size - TRAILER_SIZE);
        if (stored != computed)
            return dm_fail(err, DM_ERR_FORMAT, "checksum mismatch: stored 0x%08" PRIx32
                           ", computed 0x%08" PRIx32 " (the file is corrupt)", stored, computed);
    }

    cursor c = {.buf = b, .pos = HEADER_SIZE, .end = size - TRAILER_SIZE, .size = size, .err = err};
    dm_status s;
    if (n_kv * MIN_KV_SIZE > c.end - c.pos) /* before allocating for them */
        return dm_fail(err, DM_ERR_FORMAT, "truncated: %" PRIu64 " keys need at least %" PRIu64
                       " bytes at offset %zu, file has %zu", n_kv, n_kv * MIN_KV_SIZE, c.pos,
                       size);
    f->kv = calloc((size_t)n_kv + 1, sizeof *f->kv);
    f->kv_sorted = calloc((size_t)n_kv + 1, sizeof *f->kv_sorted);
    if (!f->kv || !f->kv_sorted)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    for (f->n_kv = 0; f->n_kv < (int)n_kv; f->n_kv++) {
        if ((s = parse_kv(&c, f, &f->kv[f->n_kv], f->n_kv)) != DM_OK)
            return s;
        f->kv_sorted[f->n_kv] = &f->kv[f->n_kv];
    }
    qsort(f->kv_sorted, (size_t)f->n_kv, sizeof *f->kv_sorted, cmp_kv);
    for (int i = 1; i < f->n_kv; i++)
        if (strcmp(f->kv_sorted[i - 1]->name, f->kv_sorted[i]->name) == 0)
            return dm_fail(err, DM_ERR_FORMAT, "duplicate key '%s'", f->kv_sorted[i]->name);

    if (n_t * MIN_TENSOR_SIZE > c.end - c.pos)
        return dm_fail(err, DM_ERR_FORMAT, "truncated: %" PRIu64 " tensors need at least %" PRIu64
                       " bytes at offset %zu, file has %zu", n_t, n_t * MIN_TENSOR_SIZE, c.pos,
                       size);
    f->t = calloc((size_t)n_t + 1, sizeof *f->t);
    f->t_sorted = calloc((size_t)n_t + 1, sizeof *f->t_sorted);
    if (!f->t || !f->t_sorted)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    for (f->n_tensors = 0; f->n_tensors < (int)n_t; f->n_tensors++) {
        if ((s = parse_tensor(&c, f, &f->t[f->n_tensors], f->n_tensors)) != DM_OK)
            return s;
        f->t_sorted[f->n_tensors] = &f->t[f->n_tensors];
    }
    qsort(f->t_sorted, (size_t)f->n_tensors, sizeof *f->t_sorted, cmp_tensor_name);
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(f->t_sorted[i - 1]->name, f->t_sorted[i]->name) == 0)
            return dm_fail(err, DM_ERR_FORMAT, "duplicate tensor '%s'", f->t_sorted[i]->name);

    /* zero padding up to the 64-aligned data section */
    uint64_t data_start = align_up(c.pos);
    snprintf(c.what, sizeof c.what, "the padding before the data section");
    if ((s = need(&c, data_start - c.pos)) != DM_OK)
        return s;
    size_t z = first_nonzero(b + c.pos, (size_t)(data_start - c.pos));
    if (z < data_start - c.pos)
        return dm_fail(err, DM_ERR_FORMAT, "nonzero padding byte at offset %zu before the data "
                       "section", c.pos + z);
    f->data_start = (size_t)data_start;

    if ((s = check_data(f, err)) != DM_OK)
        return s;
    if (!trailer_ok)
        return dm_fail(err, DM_ERR_FORMAT, "bad trailer: the file does not end with \"DMAE\" "
                       "(truncated, or bytes were appended)");
    return DM_OK;
}

void dm_file_free(dm_file *f)
{
    if (!f)
        return;
    free(f->buf);
    free(f->kv);
    free(f->kv_sorted);
    free(f->t);
    free(f->t_sorted);
    arena_free(f->arena);
    free(f);
}

/* Takes ownership of buf (malloc'ed) in every case. */
static dm_status parse_owned(uint8_t *buf, size_t size, dm_file **out, dm_error *err)
{
    *out = NULL;
    dm_file *f = calloc(1, sizeof *f);
    if (!f) {
        free(buf);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    f->buf = buf;
    f->size = size;
    dm_status s = parse(f, err);
    if (s != DM_OK) {
        dm_file_free(f);
        return s;
    }
    *out = f;
    return DM_OK;
}

dm_status dm_file_parse(const void *data, size_t size, dm_file **out, dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_parse: out is NULL");
    *out = NULL;
    if (!data && size > 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_parse: data is NULL");
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory (%zu bytes)", size);
    if (size > 0)
        memcpy(buf, data, size);
    return parse_owned(buf, size, out, err);
}

/* Reads all of fd (a regular file, a pipe...) into a malloc'ed block of exactly
 * its size. Returns 0 or an errno value. */
static int read_all(int fd, size_t hint, uint8_t **out, size_t *size)
{
    size_t cap = hint + 1, len = 0; /* +1: see EOF without growing */
    uint8_t *buf = malloc(cap);
    if (!buf)
        return ENOMEM;
    for (;;) {
        if (len == cap) {
            uint8_t *bigger = cap <= (size_t)-1 / 2 ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                free(buf);
                return ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return e;
        }
        if (k == 0)
            break;
        len += (size_t)k;
    }
    uint8_t *exact = realloc(buf, len ? len : 1);
    *out = exact ? exact : buf;
    *size = len;
    return 0;
}

dm_status dm_file_read(const char *path, dm_file **out, dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_read: out is NULL");
    *out = NULL;
    if (!path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_read: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(e));
    }
    size_t hint = 65536;
    if (S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < (size_t)-1 / 2)
        hint = (size_t)st.st_size;
    uint8_t *buf = NULL;
    size_t size = 0;
    e = read_all(fd, hint, &buf, &size);
    close(fd);
    if (e == ENOMEM)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
    if (e != 0)
        return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(e));
    dm_error local = {0};
    dm_status s = parse_owned(buf, size, out, &local);
    if (s != DM_OK)
        return dm_fail(err, s, "%s: %s", path, local.message);
    return DM_OK;
}

/* ---- getters ---- */

static const kv_entry *find_kv(const dm_file *f, const char *key)
{
    if (!f || !key || f->n_kv == 0)
        return NULL;
    kv_entry probe = {.name = key};
    const kv_entry *pp = &probe;
    kv_entry *const *hit = bsearch(&pp, f->kv_sorted, (size_t)f->n_kv, sizeof *f->kv_sorted,
                                   cmp_kv);
    return hit ? *hit : NULL;
}

static dm_status get(const dm_file *f, const char *key, int type, const kv_entry **e,
                     dm_error *err)
{
    if (!f || !key)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_get: file or key is NULL");
    *e = find_kv(f, key);
    if (!*e)
        return dm_fail(err, DM_ERR_FORMAT, "key '%s' missing", key);
    if ((*e)->type != type)
        return dm_fail(err, DM_ERR_FORMAT, "key '%s' has type %s, expected %s", key,
                       dm_file_type_name((*e)->type), dm_file_type_name(type));
    return DM_OK;
}

int dm_file_has(const dm_file *f, const char *key)
{
    return find_kv(f, key) != NULL;
}

dm_status dm_file_get_int(const dm_file *f, const char *key, int64_t *out, dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_INT, &e, err);
    if (s == DM_OK && out)
        *out = e->v.i;
    return s;
}

dm_status dm_file_get_float(const dm_file *f, const char *key, double *out, dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_FLOAT, &e, err);
    if (s == DM_OK && out)
        *out = e->v.f;
    return s;
}

dm_status dm_file_get_string(const dm_file *f, const char *key, const char **out, dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_STRING, &e, err);
    if (s == DM_OK && out)
        *out = e->v.s;
    return s;
}

dm_status dm_file_get_ints(const dm_file *f, const char *key, const int64_t **out, size_t *n,
                           dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_INTS, &e, err);
    if (s == DM_OK) {
        if (out)
            *out = e->v.ints;
        if (n)
            *n = e->n;
    }
    return s;
}

dm_status dm_file_get_floats(const dm_file *f, const char *key, const double **out, size_t *n,
                             dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_FLOATS, &e, err);
    if (s == DM_OK) {
        if (out)
            *out = e->v.floats;
        if (n)
            *n = e->n;
    }
    return s;
}

dm_status dm_file_get_strings(const dm_file *f, const char *key, const char *const **out,
                              size_t *n, dm_error *err)
{
    const kv_entry *e;
    dm_status s = get(f, key, DM_FILE_STRINGS, &e, err);
    if (s == DM_OK) {
        if (out)
            *out = e->v.strs;
        if (n)
            *n = e->n;
    }
    return s;
}

int dm_file_n_keys(const dm_file *f)
{
    return f ? f->n_kv : 0;
}

dm_status dm_file_key(const dm_file *f, int i, const char **name, int *type)
{
    if (!f || i < 0 || i >= f->n_kv)
        return DM_ERR_INVALID_ARGUMENT;
    if (name)
        *name = f->kv[i].name;
    if (type)
        *type = f->kv[i].type;
    return DM_OK;
}

/* ---- tensors ---- */

int dm_file_n_tensors(const dm_file *f)
{
    return f ? f->n_tensors : 0;
}

dm_status dm_file_tensor_info(const dm_file *f, int i, const char **name, int *ndim,
                              int64_t dims[4], int *dtype)
{
    if (!f || i < 0 || i >= f->n_tensors)
        return DM_ERR_INVALID_ARGUMENT;
    const tensor_entry *t = &f->t[i];
    if (name)
        *name = t->name;
    if (ndim)
        *ndim = t->ndim;
    if (dims)
        memcpy(dims, t->dims, sizeof t->dims);
    if (dtype)
        *dtype = t->dtype;
    return DM_OK;
}

static const tensor_entry *find_tensor(const dm_file *f, const char *name)
{
    if (!f || !name || f->n_tensors == 0)
        return NULL;
    tensor_entry probe = {.name = name};
    const tensor_entry *pp = &probe;
    tensor_entry *const *hit = bsearch(&pp, f->t_sorted, (size_t)f->n_tensors,
                                       sizeof *f->t_sorted, cmp_tensor_name);
    return hit ? *hit : NULL;
}

int dm_file_find_tensor(const dm_file *f, const char *name)
{
    const tensor_entry *t = find_tensor(f, name);
    return t ? (int)(t - f->t) : -1;
}

dm_status dm_file_read_tensor(const dm_file *f, const char *name, float *dst, size_t n,
                              dm_error *err)
{
    if (!f || !name || (!dst && n > 0))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_read_tensor: NULL argument");
    const tensor_entry *t = find_tensor(f, name);
    if (!t)
        return dm_fail(err, DM_ERR_FORMAT, "tensor '%s' missing", name);
    if (t->count != n)
        return dm_fail(err, DM_ERR_FORMAT, "tensor '%s' has %" PRIu64 " elements, expected %zu",
                       name, t->count, n);
    const uint8_t *p = f->buf + f->data_start + t->offset; /* checked by parse */
    if (t->dtype == DM_FILE_F32) {
        if (host_is_little_endian()) {
            memcpy(dst, p, n * sizeof *dst);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t u = rd32(p + 4 * i);
                memcpy(dst + i, &u, sizeof u);
            }
        }
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = dm_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    }
    return DM_OK;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct w_tensor {
    char *name;
    int ndim;
    uint64_t dims[DM_FILE_MAX_DIMS];
    int dtype;
    size_t bytes;
    uint8_t *data; /* encoded, little-endian */
    uint64_t offset;
} w_tensor;

struct dm_file_writer {
    uint8_t *kv; /* the encoded key/value entries */
    size_t kv_len, kv_cap;
    char **keys; /* their names, for the duplicate check */
    size_t n_keys, keys_cap;
    w_tensor *t;
    size_t n_t, t_cap;
    dm_error first; /* the first error of an add call (status DM_OK: none) */
};

dm_status dm_file_writer_create(dm_file_writer **out, dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    return DM_OK;
}

void dm_file_writer_free(dm_file_writer *w)
{
    if (!w)
        return;
    free(w->kv);
    for (size_t i = 0; i < w->n_keys; i++)
        free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w);
}

/* Grows *p (of *cap elements of size elem) to hold at least need elements. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > ((size_t)-1 / 2) / elem)
            return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int kv_put(dm_file_writer *w, const void *src, size_t n)
{
    if (n > (size_t)-1 - w->kv_len ||
        grow((void **)&w->kv, &w->kv_cap, w->kv_len + n, 1) != 0)
        return -1;
    memcpy(w->kv + w->kv_len, src, n);
    w->kv_len += n;
    return 0;
}

static int kv_put32(dm_file_writer *w, uint32_t v)
{
    uint8_t b[4];
    wr32(b, v);
    return kv_put(w, b, 4);
}

static int kv_put64(dm_file_writer *w, uint64_t v)
{
    uint8_t b[8];
    wr64(b, v);
    return kv_put(w, b, 8);
}

static int kv_put_string(dm_file_writer *w, const char *s)
{
    size_t n = strlen(s);
    return kv_put32(w, (uint32_t)n) || kv_put(w, s, n) ? -1 : 0;
}

/* Records the writer's first error (later ones are dropped) and returns it. */
static dm_status w_fail(dm_file_writer *w, dm_status status, const char *fmt, ...)
    DM_PRINTF(3, 4);
static dm_status w_fail(dm_file_writer *w, dm_status status, const char *fmt, ...)
{
    if (w->first.status == DM_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first.message, sizeof w->first.message, fmt, ap);
        va_end(ap);
        w->first.status = status;
    }
    return status;
}

static dm_status check_string(dm_file_writer *w, const char *key, const char *s)
{
    if (!s)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%s': string is NULL", key);
    size_t n = strlen(s);
    if (n > DM_FILE_MAX_STRING)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%s': string of %zu bytes (limit %u)",
                      key, n, DM_FILE_MAX_STRING);
    if (!utf8_ok((const uint8_t *)s, n, 0))
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%s': string is not valid UTF-8", key);
    return DM_OK;
}

/* Checks the writer and the key, then appends the key's name and type. */
static dm_status begin_key(dm_file_writer *w, const char *key, int type)
{
    if (!w)
        return DM_ERR_INVALID_ARGUMENT;
    if (w->first.status != DM_OK)
        return w->first.status;
    if (!key)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key is NULL");
    size_t n = strlen(key);
    const char *why = name_problem((const uint8_t *)key, n);
    if (why)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%.255s' %s", key, why);
    if (w->n_keys >= DM_FILE_MAX_KEYS)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "too many keys (limit %d)", DM_FILE_MAX_KEYS);
    char *copy = malloc(n + 1);
    if (!copy || grow((void **)&w->keys, &w->keys_cap, w->n_keys + 1, sizeof *w->keys) != 0 ||
        kv_put_string(w, key) || kv_put32(w, (uint32_t)type)) {
        free(copy);
        return w_fail(w, DM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(copy, key, n + 1);
    w->keys[w->n_keys++] = copy;
    return DM_OK;
}

static dm_status oom(dm_file_writer *w)
{
    return w_fail(w, DM_ERR_OUT_OF_MEMORY, "out of memory");
}

dm_status dm_file_writer_int(dm_file_writer *w, const char *key, int64_t v)
{
    dm_status s = begin_key(w, key, DM_FILE_INT);
    if (s == DM_OK && kv_put64(w, (uint64_t)v))
        s = oom(w);
    return s;
}

dm_status dm_file_writer_float(dm_file_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    dm_status s = begin_key(w, key, DM_FILE_FLOAT);
    if (s == DM_OK && kv_put64(w, u))
        s = oom(w);
    return s;
}

dm_status dm_file_writer_string(dm_file_writer *w, const char *key, const char *v)
{
    if (!w)
        return DM_ERR_INVALID_ARGUMENT;
    if (w->first.status != DM_OK)
        return w->first.status;
    dm_status s = check_string(w, key ? key : "(null)", v);
    if (s == DM_OK)
        s = begin_key(w, key, DM_FILE_STRING);
    if (s == DM_OK && kv_put_string(w, v))
        s = oom(w);
    return s;
}

static dm_status check_array(dm_file_writer *w, const char *key, const void *v, size_t n)
{
    if (!w)
        return DM_ERR_INVALID_ARGUMENT;
    if (w->first.status != DM_OK)
        return w->first.status;
    if (!v && n > 0)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%s': array is NULL", key ? key : "(null)");
    if (n > DM_FILE_MAX_ARRAY)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "key '%s': array of %zu elements (limit %u)",
                      key ? key : "(null)", n, DM_FILE_MAX_ARRAY);
    return DM_OK;
}

dm_status dm_file_writer_ints(dm_file_writer *w, const char *key, const int64_t *v, size_t n)
{
    dm_status s = check_array(w, key, v, n);
    if (s == DM_OK)
        s = begin_key(w, key, DM_FILE_INTS);
    if (s == DM_OK && kv_put64(w, n))
        s = oom(w);
    for (size_t i = 0; i < n && s == DM_OK; i++)
        if (kv_put64(w, (uint64_t)v[i]))
            s = oom(w);
    return s;
}

dm_status dm_file_writer_floats(dm_file_writer *w, const char *key, const double *v, size_t n)
{
    dm_status s = check_array(w, key, v, n);
    if (s == DM_OK)
        s = begin_key(w, key, DM_FILE_FLOATS);
    if (s == DM_OK && kv_put64(w, n))
        s = oom(w);
    for (size_t i = 0; i < n && s == DM_OK; i++) {
        uint64_t u;
        memcpy(&u, &v[i], sizeof u);
        if (kv_put64(w, u))
            s = oom(w);
    }
    return s;
}

dm_status dm_file_writer_strings(dm_file_writer *w, const char *key, const char *const *v,
                                 size_t n)
{
    dm_status s = check_array(w, key, v, n);
    for (size_t i = 0; i < n && s == DM_OK; i++)
        s = check_string(w, key ? key : "(null)", v[i]);
    if (s == DM_OK)
        s = begin_key(w, key, DM_FILE_STRINGS);
    if (s == DM_OK && kv_put64(w, n))
        s = oom(w);
    for (size_t i = 0; i < n && s == DM_OK; i++)
        if (kv_put_string(w, v[i]))
            s = oom(w);
    return s;
}

dm_status dm_file_writer_tensor(dm_file_writer *w, const char *name, int ndim,
                                const int64_t *dims, int dtype, const float *data)
{
    if (!w)
        return DM_ERR_INVALID_ARGUMENT;
    if (w->first.status != DM_OK)
        return w->first.status;
    if (!name)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor name is NULL");
    size_t len = strlen(name);
    const char *why = name_problem((const uint8_t *)name, len);
    if (why)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor name '%.255s' %s", name, why);
    if (w->n_t >= DM_FILE_MAX_TENSORS)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "too many tensors (limit %d)",
                      DM_FILE_MAX_TENSORS);
    if (ndim < 1 || ndim > DM_FILE_MAX_DIMS || !dims)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor '%s': ndim %d (must be 1..%d)", name,
                      ndim, DM_FILE_MAX_DIMS);
    if (dtype != DM_FILE_F32 && dtype != DM_FILE_F16)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor '%s': unknown dtype %d", name, dtype);
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 1)
            return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor '%s': dimension %d is %" PRId64
                          " (must be >= 1)", name, d, dims[d]);
        if ((uint64_t)dims[d] > DM_FILE_MAX_ELEMENTS ||
            count > DM_FILE_MAX_ELEMENTS / (uint64_t)dims[d])
            return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor '%s': more than 2^32 elements",
                          name);
        count *= (uint64_t)dims[d];
    }
    if (!data)
        return w_fail(w, DM_ERR_INVALID_ARGUMENT, "tensor '%s': data is NULL", name);
    uint64_t bytes = count * (dtype == DM_FILE_F16 ? 2 : 4);
    if (bytes > (size_t)-1)
        return oom(w);
    if (grow((void **)&w->t, &w->t_cap, w->n_t + 1, sizeof *w->t) != 0)
        return oom(w);
    w_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = malloc(len + 1);
    t->data = malloc((size_t)bytes);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return oom(w);
    }
    memcpy(t->name, name, len + 1);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->dims[d] = (uint64_t)dims[d];
    t->dtype = dtype;
    t->bytes = (size_t)bytes;
    size_t n = (size_t)count;
    if (dtype == DM_FILE_F32) {
        if (host_is_little_endian()) {
            memcpy(t->data, data, t->bytes);
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, &data[i], sizeof u);
                wr32(t->data + 4 * i, u);
            }
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h = dm_f32_to_f16(data[i]);
            t->data[2 * i] = (uint8_t)h;
            t->data[2 * i + 1] = (uint8_t)(h >> 8);
        }
    }
    w->n_t++;
    return DM_OK;
}

/* ---- layout and emission ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The name that appears twice in names[0..n), or NULL. */
static const char *find_duplicate(char **names, size_t n, int *oom_flag)
{
    *oom_flag = 0;
    if (n < 2)
        return NULL;
    char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *oom_flag = 1;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}

/* Checks the writer as a whole and assigns the tensor offsets; *total is the
 * file size. Messages have no path. */
static dm_status layout(dm_file_writer *w, uint64_t *data_start, uint64_t *total, dm_error *err)
{
    if (w->first.status != DM_OK)
        return dm_fail(err, w->first.status, "%s", w->first.message);
    int no_mem;
    const char *dup = find_duplicate(w->keys, w->n_keys, &no_mem);
    if (dup)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "duplicate key '%s'", dup);
    char **names = no_mem ? NULL : malloc((w->n_t + 1) * sizeof *names);
    if (!names)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < w->n_t; i++)
        names[i] = w->t[i].name;
    dup = find_duplicate(names, w->n_t, &no_mem); /* points into w->t: stays valid */
    free(names);
    if (dup)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "duplicate tensor '%s'", dup);
    if (no_mem)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");

    uint64_t pos = HEADER_SIZE + (uint64_t)w->kv_len;
    for (size_t i = 0; i < w->n_t; i++)
        pos += 4 + strlen(w->t[i].name) + 4 + 8 * (uint64_t)w->t[i].ndim + 4 + 8;
    *data_start = align_up(pos);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off = align_up(off + w->t[i].bytes); /* <= 2^16 * (2^34 + 64): no overflow */
    }
    *total = *data_start + off + TRAILER_SIZE;
    return DM_OK;
}

/* Where emitted bytes go: a stdio stream or a memory buffer; the CRC follows. */
typedef struct sink {
    FILE *fp;
    uint8_t *mem;
    size_t pos;
    uint32_t crc;
    int failed; /* errno of the first failed write, or 0 */
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->failed || n == 0)
        return;
    s->crc = crc_update(s->crc, p, n);
    if (s->fp) {
        errno = 0;
        if (fwrite(p, 1, n, s->fp) != n)
            s->failed = errno ? errno : EIO;
    } else {
        memcpy(s->mem + s->pos, p, n);
    }
    s->pos += n;
}

static void put32(sink *s, uint32_t v)
{
    uint8_t b[4];
    wr32(b, v);
    put(s, b, 4);
}

static void put64(sink *s, uint64_t v)
{
    uint8_t b[8];
    wr64(b, v);
    put(s, b, 8);
}

static void put_zeros(sink *s, uint64_t n)
{
    while (n > 0) {
        size_t k = n > DM_FILE_ALIGN ? DM_FILE_ALIGN : (size_t)n;
        put(s, zeros64, k);
        n -= k;
    }
}

static void emit(const dm_file_writer *w, uint64_t data_start, sink *s)
{
    s->crc = (uint32_t)crc32(0, Z_NULL, 0);
    put(s, "DMAU", 4);
    put32(s, DM_FILE_VERSION);
    put32(s, 0);
    put64(s, w->n_keys);
    put64(s, w->n_t);
    put(s, w->kv, w->kv_len);
    for (size_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        size_t n = strlen(t->name);
        put32(s, (uint32_t)n);
        put(s, t->name, n);
        put32(s, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            put64(s, t->dims[d]);
        put32(s, (uint32_t)t->dtype);
        put64(s, t->offset);
    }
    put_zeros(s, data_start - s->pos);
    uint64_t end = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        put_zeros(s, w->t[i].offset - end);
        put(s, w->t[i].data, w->t[i].bytes);
        end = w->t[i].offset + w->t[i].bytes;
    }
    put_zeros(s, align_up(end) - end);
    uint8_t trailer[TRAILER_SIZE];
    wr32(trailer, s->crc);
    memcpy(trailer + 4, "DMAE", 4);
    put(s, trailer, sizeof trailer); /* (also feeds the CRC, no longer used) */
}

dm_status dm_file_writer_serialize(dm_file_writer *w, void **data, size_t *size, dm_error *err)
{
    if (!w || !data || !size)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_writer_serialize: NULL argument");
    uint64_t data_start, total;
    dm_status st = layout(w, &data_start, &total, err);
    if (st != DM_OK)
        return st;
    if (total > (size_t)-1)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory");
    sink s = {.mem = malloc((size_t)total)};
    if (!s.mem)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory (%" PRIu64 " bytes)", total);
    emit(w, data_start, &s);
    *data = s.mem;
    *size = s.pos;
    return DM_OK;
}

/* A fresh name PATH.tmp.XXXXXX, opened with O_EXCL (mode 0666 minus the umask,
 * like any new file). Returns the fd, or -1 with errno set. */
static int open_temp(const char *path, char *name, size_t cap)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^
                 (uint64_t)(uintptr_t)name;
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        for (int i = 0; i < 6; i++) {
            x += 0x9e3779b97f4a7c15ull; /* splitmix64 */
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            suffix[i] = alphabet[z % (sizeof alphabet - 1)];
        }
        suffix[6] = '\0';
        snprintf(name, cap, "%s.tmp.%s", path, suffix);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* fsync the directory holding path, so that the rename itself is durable.
 * Best effort: some file systems refuse it. */
static void sync_parent(const char *path)
{
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (!dir)
        return;
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

dm_status dm_file_writer_save(dm_file_writer *w, const char *path, dm_error *err)
{
    if (!w || !path || !*path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_file_writer_save: NULL argument");
    uint64_t data_start, total;
    dm_error local = {0};
    dm_status st = layout(w, &data_start, &total, &local);
    if (st != DM_OK)
        return dm_fail(err, st, "%s: %s", path, local.message);

    size_t cap = strlen(path) + 16;
    char *tmp = malloc(cap);
    if (!tmp)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    int fd = open_temp(path, tmp, cap);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(e));
    }
    int e = 0;
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        e = errno;
        close(fd);
    } else {
        sink s = {.fp = fp};
        emit(w, data_start, &s);
        e = s.failed;
        if (!e && fflush(fp) != 0)
            e = errno ? errno : EIO;
        if (!e && fsync(fileno(fp)) != 0)
            e = errno;
        if (fclose(fp) != 0 && !e)
            e = errno ? errno : EIO;
    }
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        free(tmp);
        return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(e));
    }
    free(tmp);
    sync_parent(path);
    return DM_OK;
}
