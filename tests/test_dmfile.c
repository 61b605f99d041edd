/* The container format (core/src/dmfile.c, docs/model-format.md): float16
 * conversion against known bits, a golden file, round trips of every key type and
 * tensor type, the hostile-file suite (every truncation, bad magic/version/CRC,
 * absurd counts, overflowing dims, bad offsets, overlaps...), writer errors, and
 * atomic saves that never destroy an existing file.
 *
 * Expected float16 bits were computed by hand from IEEE 754 binary16 and checked
 * with Python's struct.pack('<e', x) (round to nearest even) for the finite values;
 * infinities and NaN by hand (struct refuses them). The golden file's CRC was
 * computed with Python's zlib.crc32. */
#include "check.h"
#include "dmaudio.h"
#include "dmfile.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

static float f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Parses data and requires failure with this status and a message containing want. */
#define expect_parse_fail(data, size, status, want)                                            \
    do {                                                                                       \
        dm_file *f_ = NULL;                                                                    \
        dm_error e_ = {0};                                                                     \
        dm_status s_ = dm_file_parse((data), (size), &f_, &e_);                                \
        if (s_ != (status) || !strstr(e_.message, (want)))                                     \
            fail_msg("parse: got %s '%s', expected %s containing '%s'", dm_status_name(s_),    \
                     e_.message, dm_status_name(status), (want));                              \
        assert_null(f_);                                                                       \
    } while (0)

/* A growing byte buffer, to craft files by hand. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put32(bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put64(bytes *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static void put_str(bytes *b, const char *s)
{
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void put_zeros(bytes *b, size_t n)
{
    while (n--)
        put(b, "", 1);
}

static void set32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void set64(uint8_t *p, uint64_t v)
{
    set32(p, (uint32_t)v);
    set32(p + 4, (uint32_t)(v >> 32));
}

/* Bitwise CRC-32 (the zlib/PNG polynomial), written independently of zlib. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* Recomputes the trailer's CRC after an edit, so the edit is what gets tested. */
static void fix_crc(uint8_t *p, size_t size)
{
    set32(p + size - 8, crc32_ref(p, size - 8));
}

/* A hand-made file: header with these counts, then `body` (entries and tensor
 * table, written raw), zero padding to 64, data_len zero bytes of data (a
 * multiple of 64), and a correct trailer. */
static bytes craft(uint64_t n_kv, uint64_t n_t, const bytes *body, size_t data_len)
{
    bytes f = {0};
    put(&f, "DMAU", 4);
    put32(&f, 1);
    put32(&f, 0);
    put64(&f, n_kv);
    put64(&f, n_t);
    if (body->n)
        put(&f, body->p, body->n);
    put_zeros(&f, (64 - f.n % 64) % 64);
    put_zeros(&f, data_len);
    put32(&f, 0);
    put(&f, "DMAE", 4);
    fix_crc(f.p, f.n);
    return f;
}

/* One tensor table entry. */
static void put_tensor(bytes *b, const char *name, uint32_t ndim, const uint64_t *dims,
                       uint32_t dtype, uint64_t offset)
{
    put_str(b, name);
    put32(b, ndim);
    for (uint32_t d = 0; d < ndim; d++)
        put64(b, dims[d]);
    put32(b, dtype);
    put64(b, offset);
}

/* A small valid file with keys of every type and two tensors (f32 and f16). */
static void small_file(void **data, size_t *size)
{
    dm_file_writer *w = NULL;
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    const int64_t ints[] = {3, -4};
    const double floats[] = {0.5};
    const char *const strs[] = {"kick", "snare"};
    dm_file_writer_int(w, "dmaudio.i", 7);
    dm_file_writer_float(w, "dmaudio.f", 2.5);
    dm_file_writer_string(w, "dmaudio.s", "hello");
    dm_file_writer_ints(w, "dmaudio.is", ints, 2);
    dm_file_writer_floats(w, "dmaudio.fs", floats, 1);
    dm_file_writer_strings(w, "dmaudio.ss", strs, 2);
    const float a[6] = {1, 2, 3, 4, 5, 6};
    const int64_t da[2] = {2, 3}, db[1] = {5};
    dm_file_writer_tensor(w, "a", 2, da, DM_FILE_F32, a);
    dm_file_writer_tensor(w, "b", 1, db, DM_FILE_F16, a);
    dm_error e = {0};
    if (dm_file_writer_serialize(w, data, size, &e) != DM_OK)
        fail_msg("serialize: %s", e.message);
    dm_file_writer_free(w);
}

/* ---- temporary directory per test ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static int setup_dir(void **state)
{
    char *dir = malloc(64);
    snprintf(dir, 64, "%s", "/tmp/dmfile-test.XXXXXX");
    if (!mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int teardown_dir(void **state)
{
    char *dir = *state;
    chmod(dir, 0700);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return 0;
}

static char *join(const char *dir, const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Reads a whole small file into a static buffer; returns its size or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return (long)n;
}

/* Number of entries of dir whose name contains ".tmp." */
static int temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* float16                                                                   */
/* ------------------------------------------------------------------------ */

static void test_f16_known_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t f; /* float32 bits */
        uint16_t h;
        const char *what;
    } cases[] = {
        {0x00000000, 0x0000, "+0"},
        {0x80000000, 0x8000, "-0"},
        {0x3f800000, 0x3c00, "1"},
        {0xc0000000, 0xc000, "-2"},
        {0xc0b00000, 0xc580, "-5.5"},
        {0x3dcccccd, 0x2e66, "0.1"},
        {0x3eaaaaab, 0x3555, "1/3"},
        {0x477fe000, 0x7bff, "65504, the largest half"},
        {0x477fefff, 0x7bff, "just below 65520 rounds down to 65504"},
        {0x477ff000, 0x7c00, "65520 ties to even: +inf"},
        {0x501502f9, 0x7c00, "1e10 overflows to +inf"},
        {0x7f800000, 0x7c00, "+inf"},
        {0xff800000, 0xfc00, "-inf"},
        {0x7fc00000, 0x7e00, "quiet NaN"},
        {0xffc00000, 0xfe00, "negative quiet NaN"},
        {0x7f800001, 0x7e00, "signalling NaN is quieted, stays NaN"},
        {0x7fd02000, 0x7e81, "NaN payload's top bits kept"},
        {0x38800000, 0x0400, "2^-14, the smallest normal"},
        {0x387fc000, 0x03ff, "1023 * 2^-24, the largest subnormal"},
        {0x387fe000, 0x0400, "1023.5 * 2^-24 ties to even: the smallest normal"},
        {0x33800000, 0x0001, "2^-24, the smallest subnormal"},
        {0x33000000, 0x0000, "2^-25 ties to even: 0"},
        {0x33400000, 0x0001, "1.5 * 2^-25 rounds up to 2^-24"},
        {0x33c00000, 0x0002, "3 * 2^-25 ties to even: 2 * 2^-24"},
        {0x34200000, 0x0002, "5 * 2^-25 ties to even: 2 * 2^-24"},
        {0x32800000, 0x0000, "2^-26 underflows to 0"},
        {0x00000001, 0x0000, "a float32 subnormal underflows to +0"},
        {0x80000001, 0x8000, "a negative float32 subnormal underflows to -0"},
        {0x3f801000, 0x3c00, "1 + 2^-11 ties to even: 1"},
        {0x3f803000, 0x3c02, "1 + 3 * 2^-11 ties to even: 1 + 2^-9"},
        {0x3f801008, 0x3c01, "1 + 2^-11 + 2^-20 rounds up"},
        {0x45001000, 0x6800, "2049 ties to even: 2048"},
        {0x45003000, 0x6802, "2051 ties to even: 2052"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = dm_f32_to_f16(f32_bits(cases[i].f));
        if (got != cases[i].h)
            fail_msg("%s: float 0x%08x -> half 0x%04x, expected 0x%04x", cases[i].what,
                     cases[i].f, got, cases[i].h);
    }
}

/* Decoding is exact: known values, and every non-NaN half survives a round trip;
 * NaNs decode to NaN and come back as the same NaN, quieted. */
static void test_f16_decode(void **state)
{
    (void)state;
    assert_true(dm_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(dm_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(dm_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(dm_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(dm_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(dm_f16_to_f32(0xc580) == -5.5f);
    assert_int_equal(bits_f32(dm_f16_to_f32(0x8000)), 0x80000000u);
    assert_true(isinf(dm_f16_to_f32(0xfc00)) && dm_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(dm_f16_to_f32(0x7e00)));
    for (uint32_t h = 0; h < 65536; h++) {
        float f = dm_f16_to_f32((uint16_t)h);
        uint16_t back = dm_f32_to_f16(f);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            if (!isnan(f) || back != (h | 0x200))
                fail_msg("NaN 0x%04x -> 0x%04x", h, back);
        } else if (back != h) {
            fail_msg("half 0x%04x -> %a -> 0x%04x", h, (double)f, back);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* the layout, byte for byte                                                 */
/* ------------------------------------------------------------------------ */

static void test_golden_bytes(void **state)
{
    (void)state;
    uint8_t want[200] = {0};
    memcpy(want, "DMAU", 4);
    want[4] = 1;  /* version */
    want[12] = 1; /* n_kv */
    want[20] = 1; /* n_tensors */
    uint8_t kv[] = {1, 0, 0, 0, 'a', 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want + 28, kv, sizeof kv); /* ends at 45 */
    uint8_t t[] = {1, 0, 0, 0, 't', 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want + 45, t, sizeof t); /* ends at 74; padding to 128 */
    uint8_t data[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}; /* 1.0f, -2.0f */
    memcpy(want + 128, data, sizeof data);                              /* padding to 192 */
    set32(want + 192, 0x181d4298u);                                     /* zlib.crc32 */
    memcpy(want + 196, "DMAE", 4);

    dm_file_writer *w;
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_int(w, "a", 5), DM_OK);
    const int64_t dims[] = {2};
    const float v[] = {1.0f, -2.0f};
    assert_int_equal(dm_file_writer_tensor(w, "t", 1, dims, DM_FILE_F32, v), DM_OK);
    void *got;
    size_t n;
    assert_int_equal(dm_file_writer_serialize(w, &got, &n, NULL), DM_OK);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    assert_int_equal(crc32_ref(want, 192), 0x181d4298u);
    free(got);
    dm_file_writer_free(w);

    dm_file *f;
    assert_int_equal(dm_file_parse(want, sizeof want, &f, NULL), DM_OK);
    dm_file_free(f);

    /* the smallest file: no keys, no tensors */
    uint8_t empty[72] = {'D', 'M', 'A', 'U', 1};
    memcpy(empty + 68, "DMAE", 4);
    fix_crc(empty, sizeof empty);
    assert_int_equal(dm_file_parse(empty, sizeof empty, &f, NULL), DM_OK);
    assert_int_equal(dm_file_n_keys(f), 0);
    assert_int_equal(dm_file_n_tensors(f), 0);
    dm_file_free(f);
}

/* ------------------------------------------------------------------------ */
/* round trips                                                               */
/* ------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
    const char *dir = *state;
    const char *path = join(dir, "rt.dmm");
    dm_file_writer *w;
    dm_error e = {0};
    assert_int_equal(dm_file_writer_create(&w, &e), DM_OK);

    const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1234567890123LL};
    const double nan_d = f32_bits(0x7fc00000);
    const double floats[] = {0.0, -0.0, 1.5, -1e300, 5e-324, INFINITY, -INFINITY, nan_d};
    const char *const strs[] = {"", "kick", "snäre ✓", "line\nbreak", "𝄞"};
    assert_int_equal(dm_file_writer_int(w, "dmaudio.int.max", INT64_MAX), DM_OK);
    assert_int_equal(dm_file_writer_int(w, "dmaudio.int.min", INT64_MIN), DM_OK);
    assert_int_equal(dm_file_writer_float(w, "dmaudio.float", -0.1), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "dmaudio.string", "héllo wörld"), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "dmaudio.empty_string", ""), DM_OK);
    assert_int_equal(dm_file_writer_ints(w, "dmaudio.ints", ints, 6), DM_OK);
    assert_int_equal(dm_file_writer_floats(w, "dmaudio.floats", floats, 8), DM_OK);
    assert_int_equal(dm_file_writer_strings(w, "dmaudio.strings", strs, 5), DM_OK);
    assert_int_equal(dm_file_writer_ints(w, "dmaudio.no_ints", NULL, 0), DM_OK);
    assert_int_equal(dm_file_writer_floats(w, "dmaudio.no_floats", NULL, 0), DM_OK);
    assert_int_equal(dm_file_writer_strings(w, "dmaudio.no_strings", NULL, 0), DM_OK);

    /* tensors of 1..4 dims, f32 and f16, sizes that are not multiples of 64 bytes */
    float *x = zeros(2 * 3 * 5 * 7);
    for (int i = 0; i < 2 * 3 * 5 * 7; i++)
        x[i] = (float)sin(i * 0.37) * (float)(1 << (i % 17)) * 1e-3f;
    x[0] = INFINITY, x[1] = -0.0f, x[2] = 0x1p-24f, x[3] = 1e-7f, x[4] = 70000.0f;
    const int64_t d1[] = {3}, d2[] = {5, 7}, d3[] = {2, 3, 5}, d4[] = {2, 3, 5, 7};
    assert_int_equal(dm_file_writer_tensor(w, "one", 1, d1, DM_FILE_F32, x), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "two", 2, d2, DM_FILE_F16, x), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "three", 3, d3, DM_FILE_F32, x), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "four.f16", 4, d4, DM_FILE_F16, x), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "four.f32", 4, d4, DM_FILE_F32, x), DM_OK);
    if (dm_file_writer_save(w, path, &e) != DM_OK)
        fail_msg("save: %s", e.message);
    dm_file_writer_free(w);
    assert_int_equal(temp_files(dir), 0);

    dm_file *f = NULL;
    if (dm_file_read(path, &f, &e) != DM_OK)
        fail_msg("read: %s", e.message);

    /* keys, in file order */
    assert_int_equal(dm_file_n_keys(f), 11);
    const char *name;
    int type;
    assert_int_equal(dm_file_key(f, 7, &name, &type), DM_OK);
    assert_string_equal(name, "dmaudio.strings");
    assert_int_equal(type, DM_FILE_STRINGS);
    assert_int_equal(dm_file_key(f, 11, &name, &type), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_file_key(f, -1, &name, &type), DM_ERR_INVALID_ARGUMENT);

    int64_t i64;
    assert_int_equal(dm_file_get_int(f, "dmaudio.int.max", &i64, &e), DM_OK);
    assert_true(i64 == INT64_MAX);
    assert_int_equal(dm_file_get_int(f, "dmaudio.int.min", &i64, &e), DM_OK);
    assert_true(i64 == INT64_MIN);
    double d;
    assert_int_equal(dm_file_get_float(f, "dmaudio.float", &d, &e), DM_OK);
    assert_true(d == -0.1);
    const char *s;
    assert_int_equal(dm_file_get_string(f, "dmaudio.string", &s, &e), DM_OK);
    assert_string_equal(s, "héllo wörld");
    assert_int_equal(dm_file_get_string(f, "dmaudio.empty_string", &s, &e), DM_OK);
    assert_string_equal(s, "");

    const int64_t *pi;
    const double *pd;
    const char *const *ps;
    size_t n;
    assert_int_equal(dm_file_get_ints(f, "dmaudio.ints", &pi, &n, &e), DM_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(pi, ints, sizeof ints);
    assert_int_equal(dm_file_get_floats(f, "dmaudio.floats", &pd, &n, &e), DM_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(pd, floats, sizeof floats); /* bit for bit, -0 and NaN included */
    assert_int_equal(dm_file_get_strings(f, "dmaudio.strings", &ps, &n, &e), DM_OK);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(ps[i], strs[i]);
    assert_int_equal(dm_file_get_ints(f, "dmaudio.no_ints", &pi, &n, &e), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dm_file_get_floats(f, "dmaudio.no_floats", &pd, &n, &e), DM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(dm_file_get_strings(f, "dmaudio.no_strings", &ps, &n, &e), DM_OK);
    assert_int_equal(n, 0);
    assert_true(dm_file_has(f, "dmaudio.ints"));
    assert_false(dm_file_has(f, "dmaudio"));
    assert_false(dm_file_has(f, "dmaudio.ints.x"));

    /* tensors, in file order */
    assert_int_equal(dm_file_n_tensors(f), 5);
    int ndim, dtype;
    int64_t dims[4];
    assert_int_equal(dm_file_tensor_info(f, 3, &name, &ndim, dims, &dtype), DM_OK);
    assert_string_equal(name, "four.f16");
    assert_int_equal(ndim, 4);
    assert_true(dims[0] == 2 && dims[1] == 3 && dims[2] == 5 && dims[3] == 7);
    assert_int_equal(dtype, DM_FILE_F16);
    assert_int_equal(dm_file_tensor_info(f, 1, &name, &ndim, dims, &dtype), DM_OK);
    assert_true(ndim == 2 && dims[0] == 5 && dims[1] == 7 && dims[2] == 1 && dims[3] == 1);
    assert_int_equal(dm_file_tensor_info(f, 5, NULL, NULL, NULL, NULL), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_file_find_tensor(f, "three"), 2);
    assert_int_equal(dm_file_find_tensor(f, "thre"), -1);

    float *y = zeros(210);
    assert_int_equal(dm_file_read_tensor(f, "four.f32", y, 210, &e), DM_OK);
    assert_memory_equal(y, x, 210 * sizeof *y);
    assert_int_equal(dm_file_read_tensor(f, "one", y, 3, &e), DM_OK);
    assert_memory_equal(y, x, 3 * sizeof *y);
    assert_int_equal(dm_file_read_tensor(f, "four.f16", y, 210, &e), DM_OK);
    for (int i = 0; i < 210; i++) {
        float want = dm_f16_to_f32(dm_f32_to_f16(x[i]));
        if (bits_f32(y[i]) != bits_f32(want))
            fail_msg("f16 element %d: %a, expected %a", i, (double)y[i], (double)want);
    }
    assert_true(isinf(y[0]) && isinf(y[4]));          /* 70000 overflows to inf in f16 */
    assert_int_equal(bits_f32(y[1]), 0x80000000u);   /* -0 */
    assert_true(y[2] == 0x1p-24f);                    /* smallest subnormal */
    assert_true(y[3] == 2 * 0x1p-24f);                /* 1e-7 = 1.68 * 2^-24 -> 2 * 2^-24 */
    free(y);
    free(x);
    dm_file_free(f);
}

/* Typed getters say what is wrong. */
static void test_getter_errors(void **state)
{
    (void)state;
    void *data;
    size_t size;
    small_file(&data, &size);
    dm_file *f;
    dm_error e = {0};
    assert_int_equal(dm_file_parse(data, size, &f, &e), DM_OK);

    int64_t i;
    double d;
    const char *s;
    const int64_t *pi;
    const double *pd;
    const char *const *ps;
    size_t n;
    assert_int_equal(dm_file_get_int(f, "dmaudio.s", &i, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.s' has type string, expected int");
    assert_int_equal(dm_file_get_float(f, "dmaudio.i", &d, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.i' has type int, expected float");
    assert_int_equal(dm_file_get_string(f, "dmaudio.ss", &s, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.ss' has type string array, expected string");
    assert_int_equal(dm_file_get_ints(f, "dmaudio.fs", &pi, &n, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.fs' has type float array, expected int array");
    assert_int_equal(dm_file_get_floats(f, "dmaudio.is", &pd, &n, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.is' has type int array, expected float array");
    assert_int_equal(dm_file_get_strings(f, "dmaudio.f", &ps, &n, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.f' has type float, expected string array");
    assert_int_equal(dm_file_get_int(f, "dmaudio.nope", &i, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "key 'dmaudio.nope' missing");
    assert_int_equal(dm_file_get_int(f, "dmaudio.i", &i, NULL), DM_OK); /* NULL error is fine */
    assert_int_equal(i, 7);

    float buf[6];
    assert_int_equal(dm_file_read_tensor(f, "a", buf, 5, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "tensor 'a' has 6 elements, expected 5");
    assert_int_equal(dm_file_read_tensor(f, "c", buf, 6, &e), DM_ERR_FORMAT);
    assert_string_equal(e.message, "tensor 'c' missing");
    assert_int_equal(dm_file_read_tensor(f, "b", buf, 5, &e), DM_OK);
    assert_true(buf[0] == 1 && buf[4] == 5);
    dm_file_free(f);
    free(data);
}

/* ------------------------------------------------------------------------ */
/* hostile files                                                             */
/* ------------------------------------------------------------------------ */

/* Every proper prefix of a valid file is rejected as truncated. */
static void test_every_truncation(void **state)
{
    (void)state;
    void *data;
    size_t size;
    small_file(&data, &size);
    for (size_t len = 0; len < size; len++) {
        dm_file *f = NULL;
        dm_error e = {0};
        dm_status s = dm_file_parse(data, len, &f, &e);
        if (s != DM_ERR_FORMAT || strncmp(e.message, "truncated", 9) != 0)
            fail_msg("prefix of %zu/%zu bytes: %s '%s'", len, size, dm_status_name(s), e.message);
        assert_null(f);
    }
    /* and one example, word for word */
    expect_parse_fail(data, 125, DM_ERR_FORMAT, "truncated: key #3 needs 10 bytes at offset 108, "
                      "file has 125");
    free(data);
}

static void test_header_errors(void **state)
{
    (void)state;
    void *data;
    size_t size;
    small_file(&data, &size);
    uint8_t *p = malloc(size);
    assert_non_null(p);

    memcpy(p, data, size);
    p[0] = 'G';
    expect_parse_fail(p, size, DM_ERR_FORMAT, "bad magic");
    expect_parse_fail("GGUF", 4, DM_ERR_FORMAT, "bad magic");
    expect_parse_fail("DM", 2, DM_ERR_FORMAT, "truncated");

    memcpy(p, data, size);
    set32(p + 4, 7);
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "unsupported version 7");

    memcpy(p, data, size);
    set32(p + 8, 1);
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "unsupported flags 0x00000001");

    /* checksum: one flipped bit in the data, or in the stored CRC */
    memcpy(p, data, size);
    p[size - 20] ^= 4;
    expect_parse_fail(p, size, DM_ERR_FORMAT, "checksum mismatch");
    memcpy(p, data, size);
    p[size - 8] ^= 1;
    expect_parse_fail(p, size, DM_ERR_FORMAT, "checksum mismatch");

    /* damaged trailer magic */
    memcpy(p, data, size);
    p[size - 1] = 'X';
    expect_parse_fail(p, size, DM_ERR_FORMAT, "bad trailer");

    /* absurd counts */
    memcpy(p, data, size);
    set64(p + 12, 65537);
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "too many keys: 65537 (limit 65536)");
    set64(p + 12, UINT64_MAX);
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "too many keys: 18446744073709551615");
    memcpy(p, data, size);
    set64(p + 20, (uint64_t)1 << 40);
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "too many tensors: 1099511627776 (limit 65536)");
    memcpy(p, data, size);
    set64(p + 12, 65536); /* within the limit, but the file is far too short for them */
    fix_crc(p, size);
    expect_parse_fail(p, size, DM_ERR_FORMAT, "truncated: 65536 keys need at least");

    free(p);
    free(data);
}

/* Appended bytes, garbage after the last tensor, nonzero padding. */
static void test_extra_bytes(void **state)
{
    (void)state;
    void *data;
    size_t size;
    small_file(&data, &size);
    uint8_t *p = calloc(size + 64, 1);
    assert_non_null(p);

    /* 64 extra bytes before the trailer (the file is still checksummed) */
    memcpy(p, data, size - 8);
    memcpy(p + size + 56, (uint8_t *)data + size - 8, 8);
    fix_crc(p, size + 64);
    expect_parse_fail(p, size + 64, DM_ERR_FORMAT, "64 unexpected bytes after the last tensor");

    /* bytes appended after the trailer */
    memcpy(p, data, size);
    memset(p + size, 0, 64);
    expect_parse_fail(p, size + 64, DM_ERR_FORMAT, "unexpected bytes");

    /* a nonzero byte in the padding after the entries (they end at 45, the data
     * section starts at 64) */
    bytes body = {0};
    put_str(&body, "k");
    put32(&body, DM_FILE_INT);
    put64(&body, 1);
    bytes f = craft(1, 0, &body, 0);
    assert_int_equal(f.n, 64 + 8);
    dm_file *ok;
    assert_int_equal(dm_file_parse(f.p, f.n, &ok, NULL), DM_OK);
    dm_file_free(ok);
    f.p[60] = 1;
    fix_crc(f.p, f.n);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "nonzero padding byte at offset 60");
    free(f.p);
    free(body.p);

    /* a nonzero byte between two tensors */
    bytes t = {0};
    uint64_t dims[] = {1};
    put_tensor(&t, "x", 1, dims, DM_FILE_F32, 0);
    put_tensor(&t, "y", 1, dims, DM_FILE_F32, 64);
    f = craft(0, 2, &t, 128);
    assert_int_equal(dm_file_parse(f.p, f.n, &ok, NULL), DM_OK);
    dm_file_free(ok);
    f.p[f.n - 8 - 64 - 10] = 1;
    fix_crc(f.p, f.n);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "nonzero padding byte");
    free(f.p);
    free(t.p);
    free(p);
    free(data);
}

/* Key/value entries: hostile lengths, types, encodings, duplicates. */
static void test_bad_entries(void **state)
{
    (void)state;
    static const struct {
        const char *want;
        uint8_t raw[40];
        size_t n;
    } cases[] = {
        {"key #0: name length 0 (must be 1..255)", {0, 0, 0, 0}, 4},
        {"key #0: name length 4294967295", {0xff, 0xff, 0xff, 0xff}, 4},
        {"key #0: name length 256", {0, 1, 0, 0}, 4},
        {"truncated: key #0 needs 200 bytes at offset 32", {200, 0, 0, 0}, 4},
        {"key #0: name is not valid UTF-8 or contains a control character",
         {2, 0, 0, 0, 0xc3, 0x28, 0, 0, 0, 0}, 10},
        {"key #0: name is not valid UTF-8", {2, 0, 0, 0, 'a', 0, 0, 0, 0, 0}, 10}, /* NUL */
        {"key #0: name is not valid UTF-8", {2, 0, 0, 0, 'a', '\n', 0, 0, 0, 0}, 10},
        {"key #0: name is not valid UTF-8", {3, 0, 0, 0, 0xed, 0xa0, 0x80}, 7}, /* surrogate */
        {"key #0: name is not valid UTF-8", {2, 0, 0, 0, 0xc0, 0x80}, 6},       /* overlong */
        {"key 'k': unknown type 6", {1, 0, 0, 0, 'k', 6, 0, 0, 0}, 9},
        {"key 'k': unknown type 4294967295", {1, 0, 0, 0, 'k', 0xff, 0xff, 0xff, 0xff}, 9},
        {"key 'k': string of 4294967295 bytes (limit 1048576)",
         {1, 0, 0, 0, 'k', 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 13},
        {"key 'k': string of 1048577 bytes", {1, 0, 0, 0, 'k', 2, 0, 0, 0, 1, 0, 0x10, 0}, 13},
        {"truncated: key 'k' needs 1048576 bytes at offset 41",
         {1, 0, 0, 0, 'k', 2, 0, 0, 0, 0, 0, 0x10, 0}, 13},
        {"key 'k': string is not valid UTF-8 or contains NUL",
         {1, 0, 0, 0, 'k', 2, 0, 0, 0, 2, 0, 0, 0, 'a', 0}, 15},
        {"key 'k': string is not valid UTF-8", {1, 0, 0, 0, 'k', 2, 0, 0, 0, 1, 0, 0, 0, 0xff}, 14},
        {"key 'k': array of 18446744073709551615 elements (limit 16777216)",
         {1, 0, 0, 0, 'k', 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 17},
        {"key 'k': array of 16777217 elements",
         {1, 0, 0, 0, 'k', 4, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0}, 17},
        {"truncated: key 'k' needs 134217728 bytes at offset 45",
         {1, 0, 0, 0, 'k', 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 17},
        {"truncated: key 'k' needs 4000 bytes at offset 45",
         {1, 0, 0, 0, 'k', 5, 0, 0, 0, 0xe8, 3, 0, 0, 0, 0, 0, 0}, 17},
        {"key 'k' string 1: string of 4294967295 bytes",
         {1, 0, 0, 0, 'k', 5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
         25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes body = {0};
        put(&body, cases[i].raw, cases[i].n);
        bytes f = craft(1, 0, &body, 0);
        dm_file *out = NULL;
        dm_error e = {0};
        dm_status s = dm_file_parse(f.p, f.n, &out, &e);
        if (s != DM_ERR_FORMAT || !strstr(e.message, cases[i].want))
            fail_msg("case %zu: got %s '%s', expected '%s'", i, dm_status_name(s), e.message,
                     cases[i].want);
        assert_null(out);
        free(f.p);
        free(body.p);
    }

    /* duplicate keys, even of different types */
    bytes body = {0};
    put_str(&body, "dmaudio.a");
    put32(&body, DM_FILE_INT);
    put64(&body, 1);
    put_str(&body, "dmaudio.b");
    put32(&body, DM_FILE_INT);
    put64(&body, 2);
    put_str(&body, "dmaudio.a");
    put32(&body, DM_FILE_STRING);
    put_str(&body, "x");
    bytes f = craft(3, 0, &body, 0);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "duplicate key 'dmaudio.a'");
    free(f.p);
    f = craft(2, 0, &body, 0); /* the first two are fine, the third is left over */
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "nonzero padding byte");
    free(f.p);
    free(body.p);
}

/* The tensor table: ndim, dims, dtype, offsets, overlaps, duplicates. */
static void test_bad_tensors(void **state)
{
    (void)state;
    static const struct {
        const char *want;
        uint32_t ndim;
        uint64_t dims[5];
        uint32_t dtype;
        uint64_t offset;
        size_t data;
    } cases[] = {
        {"tensor 'w': ndim 0 (must be 1..4)", 0, {0}, 0, 0, 0},
        {"tensor 'w': ndim 5 (must be 1..4)", 5, {1, 1, 1, 1, 1}, 0, 0, 64},
        {"tensor 'w': dimension 1 is 0 (must be >= 1)", 2, {3, 0}, 0, 0, 64},
        {"tensor 'w': dims 1099511627776 x 1099511627776 exceed the limit of 2^32 elements", 2,
         {(uint64_t)1 << 40, (uint64_t)1 << 40}, 0, 0, 64},
        {"tensor 'w': dims 4294967296 x 2 exceed", 2, {(uint64_t)1 << 32, 2}, 0, 0, 64},
        {"tensor 'w': dims 65536 x 65536 x 2 exceed", 3, {65536, 65536, 2}, 1, 0, 64},
        {"tensor 'w': dims 18446744073709551615 exceed", 1, {UINT64_MAX}, 0, 0, 64},
        {"tensor 'w': unknown dtype 2", 1, {4}, 2, 0, 64},
        {"tensor 'w': offset 32 is not a multiple of 64", 1, {4}, 0, 32, 64},
        {"truncated: tensor 'w' needs 16 bytes at offset 1088, file has 1096", 1, {4}, 0, 1024,
         1024},
        {"truncated: tensor 'w' needs 256 bytes at offset 64, file has 136", 1, {64}, 0, 0, 64},
        {"truncated: tensor 'w' needs 68 bytes at offset 64, file has 136 (its last 8 bytes are "
         "the trailer)", 1, {17}, 0, 0, 64},
        {"truncated: tensor 'w' needs 16 bytes at offset 4611686018427387968", 1, {4}, 0,
         (uint64_t)1 << 62, 64},
        {"truncated: tensor 'w' needs 16 bytes at offset 64 + 18446744073709551552, file has "
         "136", 1, {4}, 0, UINT64_MAX - 63, 64},
        {"truncated: tensor 'w' needs 17179869184 bytes", 4, {1024, 1024, 1024, 4}, 0, 0, 64},
        {"truncated: tensor 'w' needs 8589934592 bytes", 2, {65536, 65536}, 1, 0, 64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes body = {0};
        put_tensor(&body, "w", cases[i].ndim, cases[i].dims, cases[i].dtype, cases[i].offset);
        bytes f = craft(0, 1, &body, cases[i].data);
        dm_file *out = NULL;
        dm_error e = {0};
        dm_status s = dm_file_parse(f.p, f.n, &out, &e);
        if (s != DM_ERR_FORMAT || !strstr(e.message, cases[i].want))
            fail_msg("case %zu: got %s '%s', expected '%s'", i, dm_status_name(s), e.message,
                     cases[i].want);
        assert_null(out);
        free(f.p);
        free(body.p);
    }

    uint64_t d16[] = {16}, d1[] = {1};
    /* overlapping tensors: 64 bytes at 0 and 4 bytes at 0 */
    bytes body = {0};
    put_tensor(&body, "a", 1, d16, DM_FILE_F32, 0);
    put_tensor(&body, "b", 1, d1, DM_FILE_F32, 0);
    bytes f = craft(0, 2, &body, 64);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "overlap");
    free(f.p);
    free(body.p);
    /* 68 bytes at 0 run into one at 64 */
    body = (bytes){0};
    put_tensor(&body, "b", 1, d1, DM_FILE_F32, 64);
    put_tensor(&body, "a", 1, (uint64_t[]){17}, DM_FILE_F32, 0);
    f = craft(0, 2, &body, 128);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "tensors 'a' and 'b' overlap (data bytes 0..68 "
                      "and 64..68)");
    free(f.p);
    free(body.p);
    /* the same tensors 64 bytes apart are fine, in either table order */
    body = (bytes){0};
    put_tensor(&body, "b", 1, d1, DM_FILE_F32, 128);
    put_tensor(&body, "a", 1, (uint64_t[]){17}, DM_FILE_F32, 0);
    f = craft(0, 2, &body, 192);
    dm_file *ok = NULL;
    dm_error e = {0};
    if (dm_file_parse(f.p, f.n, &ok, &e) != DM_OK)
        fail_msg("gap between tensors: %s", e.message);
    float one;
    assert_int_equal(dm_file_read_tensor(ok, "b", &one, 1, &e), DM_OK);
    assert_true(one == 0.0f);
    dm_file_free(ok);
    free(f.p);
    free(body.p);
    /* duplicate names */
    body = (bytes){0};
    put_tensor(&body, "a", 1, d1, DM_FILE_F32, 0);
    put_tensor(&body, "a", 1, d1, DM_FILE_F32, 64);
    f = craft(0, 2, &body, 128);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "duplicate tensor 'a'");
    free(f.p);
    free(body.p);
    /* tensor name rules are the key rules */
    body = (bytes){0};
    put_tensor(&body, "", 1, d1, DM_FILE_F32, 0);
    f = craft(0, 1, &body, 64);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "tensor #0: name length 0");
    free(f.p);
    free(body.p);
    /* more tensors declared than the table holds */
    body = (bytes){0};
    put_tensor(&body, "a", 1, d1, DM_FILE_F32, 0);
    f = craft(0, 3, &body, 0);
    expect_parse_fail(f.p, f.n, DM_ERR_FORMAT, "truncated: 3 tensors need at least 87 bytes at "
                      "offset 28, file has 72");
    free(f.p);
    free(body.p);
}

/* ------------------------------------------------------------------------ */
/* dm_file_read                                                              */
/* ------------------------------------------------------------------------ */

static void test_read_errors(void **state)
{
    const char *dir = *state;
    dm_file *f = NULL;
    dm_error e = {0};
    char want[600];

    const char *missing = join(dir, "missing.dmm");
    assert_int_equal(dm_file_read(missing, &f, &e), DM_ERR_IO);
    snprintf(want, sizeof want, "%s: No such file or directory", missing);
    assert_string_equal(e.message, want);
    assert_null(f);

    assert_int_equal(dm_file_read(dir, &f, &e), DM_ERR_IO);
    snprintf(want, sizeof want, "%s: Is a directory", dir);
    assert_string_equal(e.message, want);

    const char *junk = join(dir, "junk.wav");
    write_bytes(junk, "RIFF....WAVEfmt ", 16);
    assert_int_equal(dm_file_read(junk, &f, &e), DM_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: bad magic: not a dmaudio file", junk);
    assert_memory_equal(e.message, want, strlen(want));

    const char *empty = join(dir, "empty.dmm");
    write_bytes(empty, "", 0);
    assert_int_equal(dm_file_read(empty, &f, &e), DM_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: truncated: the file is empty", empty);
    assert_string_equal(e.message, want);

    /* a file read from disk equals the same bytes parsed from memory */
    void *data;
    size_t size;
    small_file(&data, &size);
    const char *good = join(dir, "good.dmm");
    write_bytes(good, data, size);
    assert_int_equal(dm_file_read(good, &f, &e), DM_OK);
    assert_int_equal(dm_file_n_keys(f), 6);
    dm_file_free(f);
    free(data);
}

/* ------------------------------------------------------------------------ */
/* the writer                                                                */
/* ------------------------------------------------------------------------ */

static void test_writer_errors(void **state)
{
    const char *dir = *state;
    dm_file_writer *w;
    dm_error e = {0};
    const int64_t dims[] = {2};
    const float v[] = {1, 2};
    char key[300];

    /* bad keys */
    const char *bad[] = {"", "a\nb", "\xff", "caf\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
        assert_int_equal(dm_file_writer_int(w, bad[i], 1), DM_ERR_INVALID_ARGUMENT);
        dm_file_writer_free(w);
    }
    memset(key, 'k', 256);
    key[256] = '\0';
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_int(w, key, 1), DM_ERR_INVALID_ARGUMENT);
    dm_file_writer_free(w);
    key[255] = '\0'; /* 255 bytes is the longest allowed */
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_int(w, key, 1), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, key, 1, dims, DM_FILE_F32, v), DM_OK);
    void *data;
    size_t size;
    assert_int_equal(dm_file_writer_serialize(w, &data, &size, &e), DM_OK);
    dm_file *f;
    assert_int_equal(dm_file_parse(data, size, &f, &e), DM_OK);
    assert_true(dm_file_has(f, key));
    dm_file_free(f);
    free(data);
    dm_file_writer_free(w);

    /* bad values */
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "s", "\xc3\x28"), DM_ERR_INVALID_ARGUMENT);
    dm_file_writer_free(w);
    char *huge = malloc(DM_FILE_MAX_STRING + 2);
    memset(huge, 'x', DM_FILE_MAX_STRING + 1);
    huge[DM_FILE_MAX_STRING + 1] = '\0';
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "s", huge), DM_ERR_INVALID_ARGUMENT);
    dm_file_writer_free(w);
    huge[DM_FILE_MAX_STRING] = '\0'; /* exactly 1 MiB is allowed */
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "s", huge), DM_OK);
    assert_int_equal(dm_file_writer_serialize(w, &data, &size, &e), DM_OK);
    assert_int_equal(dm_file_parse(data, size, &f, &e), DM_OK);
    const char *s;
    assert_int_equal(dm_file_get_string(f, "s", &s, &e), DM_OK);
    assert_int_equal(strlen(s), DM_FILE_MAX_STRING);
    dm_file_free(f);
    free(data);
    dm_file_writer_free(w);
    free(huge);
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_ints(w, "a", NULL, 3), DM_ERR_INVALID_ARGUMENT);
    dm_file_writer_free(w);
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_floats(w, "a", (const double[]){1}, DM_FILE_MAX_ARRAY + 1),
                     DM_ERR_INVALID_ARGUMENT);
    dm_file_writer_free(w);

    /* bad tensors: refused before anything is allocated */
    const int64_t d0[] = {0}, dneg[] = {-3}, dbig[] = {(int64_t)1 << 40, (int64_t)1 << 40};
    struct {
        int ndim, dtype;
        const int64_t *dims;
        const float *data;
    } tc[] = {
        {0, 0, dims, v}, {5, 0, dims, v}, {1, 0, d0, v}, {1, 0, dneg, v},
        {2, 0, dbig, v}, {1, 2, dims, v}, {1, 0, dims, NULL}, {1, 0, NULL, v},
    };
    for (size_t i = 0; i < sizeof tc / sizeof tc[0]; i++) {
        assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
        dm_status st = dm_file_writer_tensor(w, "t", tc[i].ndim, tc[i].dims, tc[i].dtype,
                                             tc[i].data);
        if (st != DM_ERR_INVALID_ARGUMENT)
            fail_msg("tensor case %zu: %s", i, dm_status_name(st));
        dm_file_writer_free(w);
    }

    /* the first error sticks: later calls return it and save reports it, creating nothing */
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "t", 1, d0, DM_FILE_F32, v), DM_ERR_INVALID_ARGUMENT);
    assert_int_equal(dm_file_writer_int(w, "fine", 1), DM_ERR_INVALID_ARGUMENT);
    const char *path = join(dir, "never.dmm");
    assert_int_equal(dm_file_writer_save(w, path, &e), DM_ERR_INVALID_ARGUMENT);
    char want[600];
    snprintf(want, sizeof want, "%s: tensor 't': dimension 0 is 0 (must be >= 1)", path);
    assert_string_equal(e.message, want);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(temp_files(dir), 0);
    dm_file_writer_free(w);

    /* duplicates are found at save */
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_int(w, "a", 1), DM_OK);
    assert_int_equal(dm_file_writer_string(w, "a", "x"), DM_OK);
    assert_int_equal(dm_file_writer_serialize(w, &data, &size, &e), DM_ERR_INVALID_ARGUMENT);
    assert_string_equal(e.message, "duplicate key 'a'");
    dm_file_writer_free(w);
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "t", 1, dims, DM_FILE_F32, v), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "t", 1, dims, DM_FILE_F16, v), DM_OK);
    assert_int_equal(dm_file_writer_save(w, path, &e), DM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.message, "duplicate tensor 't'"));
    assert_int_equal(access(path, F_OK), -1);
    dm_file_writer_free(w);
}

/* ------------------------------------------------------------------------ */
/* atomic saves                                                              */
/* ------------------------------------------------------------------------ */

static dm_file_writer *writer_with(size_t n_floats)
{
    dm_file_writer *w;
    assert_int_equal(dm_file_writer_create(&w, NULL), DM_OK);
    float *x = zeros(n_floats);
    for (size_t i = 0; i < n_floats; i++)
        x[i] = (float)i;
    const int64_t dims[] = {(int64_t)n_floats};
    assert_int_equal(dm_file_writer_string(w, "dmaudio.note", "new"), DM_OK);
    assert_int_equal(dm_file_writer_tensor(w, "x", 1, dims, DM_FILE_F32, x), DM_OK);
    free(x);
    return w;
}

static void test_save_missing_dir(void **state)
{
    const char *dir = *state;
    dm_file_writer *w = writer_with(16);
    dm_error e = {0};
    const char *path = join(dir, "no/such/dir/model.dmm");
    assert_int_equal(dm_file_writer_save(w, path, &e), DM_ERR_IO);
    char want[600];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(e.message, want);
    assert_int_equal(temp_files(dir), 0);
    dm_file_writer_free(w);
}

/* PATH is a directory: the rename fails after the whole file was written. */
static void test_save_over_directory(void **state)
{
    const char *dir = *state;
    const char *path = join(dir, "model.dmm");
    assert_int_equal(mkdir(path, 0755), 0);
    write_bytes(join(dir, "model.dmm/inside"), "keep", 4);
    dm_file_writer *w = writer_with(1000);
    dm_error e = {0};
    assert_int_equal(dm_file_writer_save(w, path, &e), DM_ERR_IO);
    assert_non_null(strstr(e.message, path));
    assert_int_equal(temp_files(dir), 0);
    char buf[16];
    assert_int_equal(slurp(join(dir, "model.dmm/inside"), buf, sizeof buf), 4);
    dm_file_writer_free(w);
}

/* The disk fills up mid-write (RLIMIT_FSIZE stands in for a full disk; it works
 * for root too): the save fails, the old file is intact, no temporary is left. */
static void test_save_disk_full_keeps_old_file(void **state)
{
    const char *dir = *state;
    const char *path = join(dir, "model.dmm");
    write_bytes(path, "the old model", 13);

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    dm_file_writer *w = writer_with(100000); /* 400 kB */
    dm_error e = {0};
    dm_status s = dm_file_writer_save(w, path, &e);

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(s, DM_ERR_IO);
    char want[600];
    snprintf(want, sizeof want, "%s: File too large", path);
    assert_string_equal(e.message, want);
    char buf[64];
    assert_int_equal(slurp(path, buf, sizeof buf), 13);
    assert_memory_equal(buf, "the old model", 13);
    assert_int_equal(temp_files(dir), 0);

    /* with room, the same writer replaces the file */
    assert_int_equal(dm_file_writer_save(w, path, &e), DM_OK);
    dm_file *f;
    assert_int_equal(dm_file_read(path, &f, &e), DM_OK);
    const char *note;
    assert_int_equal(dm_file_get_string(f, "dmaudio.note", &note, &e), DM_OK);
    assert_string_equal(note, "new");
    dm_file_free(f);
    assert_int_equal(temp_files(dir), 0);
    dm_file_writer_free(w);
}

/* A read-only directory: nothing can be created there. Root ignores permissions,
 * so as root the save runs with the effective uid of "nobody" (65534). */
static void test_save_read_only_dir(void **state)
{
    const char *dir = *state;
    const char *sub = join(dir, "ro");
    assert_int_equal(mkdir(sub, 0755), 0);
    const char *path = join(dir, "ro/model.dmm");
    write_bytes(path, "the old model", 13);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(sub, 0555), 0);
    dm_file_writer *w = writer_with(16);
    dm_error e = {0};
    int root = geteuid() == 0;
    if (root && seteuid(65534) != 0) {
        print_message("# cannot drop root privileges (%s): read-only case not run\n",
                      strerror(errno));
        dm_file_writer_free(w);
        return;
    }
    dm_status s = dm_file_writer_save(w, path, &e);
    if (root)
        assert_int_equal(seteuid(0), 0);
    chmod(sub, 0755);
    assert_int_equal(s, DM_ERR_IO);
    char want[600];
    snprintf(want, sizeof want, "%s: Permission denied", path);
    assert_string_equal(e.message, want);
    char buf[64];
    assert_int_equal(slurp(path, buf, sizeof buf), 13);
    assert_memory_equal(buf, "the old model", 13);
    assert_int_equal(temp_files(sub), 0);
    dm_file_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_decode),
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_extra_bytes),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test_setup_teardown(test_read_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_writer_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_missing_dir, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_over_directory, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_disk_full_keeps_old_file, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_save_read_only_dir, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("dmfile", tests, NULL, NULL);
}
