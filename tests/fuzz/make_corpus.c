/* Writes the seed corpus of tests/fuzz/fuzz_dmfile.c: a few small valid container
 * files made with the writer, and broken variants of them (each broken file has a
 * correct CRC unless the CRC is what is broken, so it tests what its name says).
 * Run once; the files are committed. From the repository root, after `make`:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Icore/include -Icore/src tests/fuzz/make_corpus.c \
 *      build/libdmaudio.a $(pkg-config --libs openblas zlib) -fopenmp -lm -o build/make_corpus
 *   build/make_corpus tests/fuzz/corpus/dmfile
 */
#include "dmfile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

static const char *dir;

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s\n", what);
    exit(1);
}

static void save(const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
        die(path);
    printf("%-40s %6zu bytes\n", name, n);
}

static void fix_crc(uint8_t *p, size_t n)
{
    uint32_t c = (uint32_t)crc32(0, p, (uInt)(n - 8));
    for (int i = 0; i < 4; i++)
        p[n - 8 + i] = (uint8_t)(c >> (8 * i));
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

/* Position of the first occurrence of the bytes of s in p, or die. */
static size_t find(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, s, k) == 0)
            return i;
    die(s);
    return 0;
}

static uint8_t *finish(dm_file_writer *w, size_t *n)
{
    void *p;
    dm_error e;
    if (dm_file_writer_serialize(w, &p, n, &e) != DM_OK)
        die(e.message);
    dm_file_writer_free(w);
    return p;
}

static dm_file_writer *writer(void)
{
    dm_file_writer *w;
    if (dm_file_writer_create(&w, NULL) != DM_OK)
        die("out of memory");
    return w;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    size_t n;
    uint8_t *p;

    /* valid: empty */
    p = finish(writer(), &n);
    save("valid-empty.dmm", p, n);
    free(p);

    /* valid: one key of every type */
    dm_file_writer *w = writer();
    const int64_t ints[] = {1, -2, INT64_MAX};
    const double floats[] = {0.5, -1e300};
    const char *const strs[] = {"kick", "", "snäre"};
    dm_file_writer_int(w, "dmaudio.i", -7);
    dm_file_writer_float(w, "dmaudio.f", 0.25);
    dm_file_writer_string(w, "dmaudio.s", "hello\nworld");
    dm_file_writer_ints(w, "dmaudio.is", ints, 3);
    dm_file_writer_floats(w, "dmaudio.fs", floats, 2);
    dm_file_writer_strings(w, "dmaudio.ss", strs, 3);
    dm_file_writer_ints(w, "dmaudio.empty", NULL, 0);
    p = finish(w, &n);
    save("valid-keys.dmm", p, n);
    free(p);

    /* valid: tensors of 1..4 dims, f32 and f16 */
    float x[120];
    for (int i = 0; i < 120; i++)
        x[i] = (float)(i - 60) * 0.125f;
    x[0] = 1e-7f, x[1] = 70000.0f, x[2] = -0.0f;
    w = writer();
    dm_file_writer_tensor(w, "a", 1, (const int64_t[]){3}, DM_FILE_F32, x);
    dm_file_writer_tensor(w, "b.w", 2, (const int64_t[]){4, 5}, DM_FILE_F16, x);
    dm_file_writer_tensor(w, "c", 3, (const int64_t[]){2, 3, 4}, DM_FILE_F32, x);
    dm_file_writer_tensor(w, "d", 4, (const int64_t[]){2, 3, 4, 5}, DM_FILE_F16, x);
    p = finish(w, &n);
    save("valid-tensors.dmm", p, n);
    free(p);

    /* valid: a model-like file, the base of the broken ones */
    w = writer();
    dm_file_writer_string(w, "dmaudio.repr", "wave");
    dm_file_writer_int(w, "dmaudio.rate", 16000);
    dm_file_writer_ints(w, "dmaudio.arch.channels", (const int64_t[]){8, 16}, 2);
    dm_file_writer_strings(w, "dmaudio.classes", strs, 3);
    dm_file_writer_tensor(w, "enc.w", 3, (const int64_t[]){8, 1, 5}, DM_FILE_F32, x);
    dm_file_writer_tensor(w, "dec.w", 2, (const int64_t[]){1, 8}, DM_FILE_F16, x);
    uint8_t *m = finish(w, &n);
    size_t mn = n;
    save("valid-model.dmm", m, mn);
    p = malloc(mn + 64);
    if (!p)
        die("out of memory");

    save("broken-truncated-half.dmm", m, mn / 2);
    save("broken-truncated-trailer.dmm", m, mn - 3);

    memcpy(p, m, mn);
    p[0] = 'X';
    save("broken-magic.dmm", p, mn);

    memcpy(p, m, mn);
    set32(p + 4, 7);
    fix_crc(p, mn);
    save("broken-version.dmm", p, mn);

    memcpy(p, m, mn);
    p[mn - 20] ^= 0x40;
    save("broken-checksum.dmm", p, mn);

    memcpy(p, m, mn);
    set64(p + 12, (uint64_t)1 << 40);
    fix_crc(p, mn);
    save("broken-key-count.dmm", p, mn);

    /* the first key's string value: a huge length */
    memcpy(p, m, mn);
    set32(p + find(p, mn, "wave") - 4, 0xfffffff0u);
    fix_crc(p, mn);
    save("broken-string-length.dmm", p, mn);

    /* tensor table entries: name, ndim, dims, dtype, offset */
    size_t t_out = find(m, mn, "dec.w") + 5; /* at its ndim */
    memcpy(p, m, mn);
    set64(p + t_out + 4, (uint64_t)1 << 40);
    set64(p + t_out + 12, (uint64_t)1 << 40);
    fix_crc(p, mn);
    save("broken-dims-overflow.dmm", p, mn);

    memcpy(p, m, mn);
    set32(p + t_out, 0);
    fix_crc(p, mn);
    save("broken-ndim.dmm", p, mn);

    memcpy(p, m, mn);
    set32(p + t_out + 20, 9);
    fix_crc(p, mn);
    save("broken-dtype.dmm", p, mn);

    memcpy(p, m, mn);
    set64(p + t_out + 24, 0); /* on top of enc.w */
    fix_crc(p, mn);
    save("broken-overlap.dmm", p, mn);

    memcpy(p, m, mn);
    set64(p + t_out + 24, 8);
    fix_crc(p, mn);
    save("broken-misaligned.dmm", p, mn);

    memcpy(p, m, mn);
    set64(p + t_out + 24, (uint64_t)1 << 62);
    fix_crc(p, mn);
    save("broken-offset-past-end.dmm", p, mn);

    memcpy(p, m, mn);
    memcpy(p + find(p, mn, "dec.w"), "enc.w", 5);
    fix_crc(p, mn);
    save("broken-duplicate-tensor.dmm", p, mn);

    memcpy(p, m, mn);
    memcpy(p + find(p, mn, "dmaudio.rate"), "dmaudio.repr", 12);
    fix_crc(p, mn);
    save("broken-duplicate-key.dmm", p, mn);

    memcpy(p, m, mn);
    memcpy(p + mn - 8 - 2, "\x01", 1); /* nonzero padding after the last tensor */
    fix_crc(p, mn);
    save("broken-padding.dmm", p, mn);

    free(p);
    free(m);
    return 0;
}
