/* libFuzzer target for the container reader (core/src/dmfile.c).
 *
 * Each input is parsed twice: as it is, and with its trailer made valid (CRC of
 * the bytes before it, then "DMAE"), so that mutations get past the checksum and
 * reach the structural checks, the getters and the tensor reads. Whatever parses
 * is then walked completely: every key through every getter (right and wrong
 * types), every tensor read with its own element count and a wrong one, and the
 * result written back out and parsed again, which must give the same bytes.
 *
 * Built by `make fuzz` / `make fuzz-replay` with clang -fsanitize=fuzzer,address,undefined. */
#include "dmfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* Stops the fuzzer on a broken promise (ASan/UBSan report memory errors). */
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            __builtin_trap();                                                                  \
    } while (0)

static void copy_keys(const dm_file *f, dm_file_writer *w)
{
    for (int i = 0; i < dm_file_n_keys(f); i++) {
        const char *key;
        int type;
        REQUIRE(dm_file_key(f, i, &key, &type) == DM_OK);
        REQUIRE(dm_file_has(f, key));
        int64_t iv;
        double dv;
        const char *sv;
        const int64_t *ia;
        const double *da;
        const char *const *sa;
        size_t n;
        dm_error e;
        dm_status s[6] = {
            dm_file_get_int(f, key, &iv, &e),         dm_file_get_float(f, key, &dv, &e),
            dm_file_get_string(f, key, &sv, &e),      dm_file_get_ints(f, key, &ia, &n, &e),
            dm_file_get_floats(f, key, &da, &n, &e),  dm_file_get_strings(f, key, &sa, &n, &e),
        };
        for (int t = 0; t < 6; t++)
            REQUIRE((s[t] == DM_OK) == (t == type));
        switch (type) {
        case DM_FILE_INT:
            dm_file_get_int(f, key, &iv, &e);
            dm_file_writer_int(w, key, iv);
            break;
        case DM_FILE_FLOAT:
            dm_file_get_float(f, key, &dv, &e);
            dm_file_writer_float(w, key, dv);
            break;
        case DM_FILE_STRING:
            dm_file_get_string(f, key, &sv, &e);
            REQUIRE(strlen(sv) <= DM_FILE_MAX_STRING);
            dm_file_writer_string(w, key, sv);
            break;
        case DM_FILE_INTS:
            dm_file_get_ints(f, key, &ia, &n, &e);
            dm_file_writer_ints(w, key, ia, n);
            break;
        case DM_FILE_FLOATS:
            dm_file_get_floats(f, key, &da, &n, &e);
            dm_file_writer_floats(w, key, da, n);
            break;
        case DM_FILE_STRINGS:
            dm_file_get_strings(f, key, &sa, &n, &e);
            for (size_t k = 0; k < n; k++)
                REQUIRE(sa[k] && strlen(sa[k]) <= DM_FILE_MAX_STRING);
            dm_file_writer_strings(w, key, sa, n);
            break;
        default:
            REQUIRE(0);
        }
    }
    dm_error e;
    REQUIRE(dm_file_get_int(f, "fuzz.no.such.key", NULL, &e) == DM_ERR_FORMAT);
}

static void copy_tensors(const dm_file *f, dm_file_writer *w)
{
    for (int i = 0; i < dm_file_n_tensors(f); i++) {
        const char *name;
        int ndim, dtype;
        int64_t dims[4];
        REQUIRE(dm_file_tensor_info(f, i, &name, &ndim, dims, &dtype) == DM_OK);
        REQUIRE(ndim >= 1 && ndim <= 4 && (dtype == DM_FILE_F32 || dtype == DM_FILE_F16));
        REQUIRE(dm_file_find_tensor(f, name) == i);
        size_t count = 1;
        for (int d = 0; d < 4; d++) {
            REQUIRE(dims[d] >= 1);
            count *= (size_t)dims[d];
        }
        /* a parsed tensor's bytes are in the file, so count is bounded by its size */
        float *x = malloc(count * sizeof *x);
        REQUIRE(x);
        dm_error e;
        REQUIRE(dm_file_read_tensor(f, name, x, count, &e) == DM_OK);
        REQUIRE(dm_file_read_tensor(f, name, x, count - 1, &e) == DM_ERR_FORMAT);
        dm_file_writer_tensor(w, name, ndim, dims, dtype, x);
        free(x);
    }
    REQUIRE(dm_file_tensor_info(f, dm_file_n_tensors(f), NULL, NULL, NULL, NULL) ==
            DM_ERR_INVALID_ARGUMENT);
}

/* Walks a parsed file and checks that writing it back gives a file that parses to
 * the same bytes again (f16 data goes through float32 and back unchanged). */
static void exercise(const dm_file *f)
{
    dm_file_writer *w;
    REQUIRE(dm_file_writer_create(&w, NULL) == DM_OK);
    copy_keys(f, w);
    copy_tensors(f, w);
    void *a, *b;
    size_t na, nb;
    dm_error e;
    REQUIRE(dm_file_writer_serialize(w, &a, &na, &e) == DM_OK);
    dm_file_writer_free(w);
    dm_file *g;
    REQUIRE(dm_file_parse(a, na, &g, &e) == DM_OK);
    REQUIRE(dm_file_n_keys(g) == dm_file_n_keys(f));
    REQUIRE(dm_file_n_tensors(g) == dm_file_n_tensors(f));
    REQUIRE(dm_file_writer_create(&w, NULL) == DM_OK);
    copy_keys(g, w);
    copy_tensors(g, w);
    REQUIRE(dm_file_writer_serialize(w, &b, &nb, &e) == DM_OK);
    REQUIRE(na == nb && memcmp(a, b, na) == 0);
    dm_file_writer_free(w);
    dm_file_free(g);
    free(a);
    free(b);
}

static void parse_and_exercise(const uint8_t *data, size_t size)
{
    dm_file *f = NULL;
    dm_error e;
    dm_status s = dm_file_parse(data, size, &f, &e);
    REQUIRE((s == DM_OK) == (f != NULL));
    REQUIRE(s == DM_OK || s == DM_ERR_FORMAT);
    REQUIRE(s == DM_OK || memchr(e.message, '\0', sizeof e.message));
    if (f) {
        exercise(f);
        dm_file_free(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_and_exercise(data, size);
    if (size >= 8) {
        uint8_t *fixed = malloc(size);
        REQUIRE(fixed);
        memcpy(fixed, data, size);
        uint32_t crc = (uint32_t)crc32(0, fixed, (uInt)(size - 8));
        for (int i = 0; i < 4; i++)
            fixed[size - 8 + i] = (uint8_t)(crc >> (8 * i));
        memcpy(fixed + size - 4, "DMAE", 4);
        parse_and_exercise(fixed, size);
        free(fixed);
    }
    return 0;
}
