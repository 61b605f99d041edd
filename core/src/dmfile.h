/* The dmaudio container: the binary file format of model files and training
 * checkpoints, defined normatively in docs/model-format.md. Internal: not installed.
 *
 * Reading: dm_file_read() loads a whole file into memory and validates all of it
 * (structure, limits, padding, CRC) before returning; nothing read afterwards can
 * go out of bounds. Keys and tensors are then looked up by name.
 *
 * Writing: a dm_file_writer collects keys and tensors (copying them), then
 * dm_file_writer_save() writes the file atomically. The add functions record the
 * first error they meet (a bad key, a duplicate, no memory) in the writer and
 * ignore the calls after it; save reports that error. So a caller can add
 * everything and check once, like ferror().
 */
#ifndef DM_DMFILE_H
#define DM_DMFILE_H

#include "dmaudio.h"

#include <stddef.h>
#include <stdint.h>

/* Value types of the key/value entries (their numbers in the file). */
enum {
    DM_FILE_INT = 0,     /* int64            */
    DM_FILE_FLOAT = 1,   /* float64          */
    DM_FILE_STRING = 2,  /* UTF-8 string     */
    DM_FILE_INTS = 3,    /* int64 array      */
    DM_FILE_FLOATS = 4,  /* float64 array    */
    DM_FILE_STRINGS = 5, /* string array     */
    DM_FILE_TYPE_COUNT
};

/* Tensor element types. */
enum { DM_FILE_F32 = 0, DM_FILE_F16 = 1, DM_FILE_DTYPE_COUNT };

/* Limits (see docs/model-format.md). Files beyond them are rejected; the writer
 * refuses to produce them. */
#define DM_FILE_VERSION 1
#define DM_FILE_ALIGN 64
#define DM_FILE_MAX_KEYS 65536
#define DM_FILE_MAX_TENSORS 65536
#define DM_FILE_MAX_NAME 255                   /* bytes of a key or tensor name   */
#define DM_FILE_MAX_STRING (1u << 20)          /* bytes of a string value         */
#define DM_FILE_MAX_ARRAY (1u << 24)           /* elements of an array value      */
#define DM_FILE_MAX_DIMS 4
#define DM_FILE_MAX_ELEMENTS ((uint64_t)1 << 32) /* elements of a tensor          */

/* "int", "float", "string", "int array", "float array", "string array"; "unknown". */
const char *dm_file_type_name(int type);
/* "f32", "f16"; "unknown". */
const char *dm_file_dtype_name(int dtype);

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct dm_file dm_file; /* a parsed, validated container held in memory */

/* Reads the whole file and validates everything, CRC included. Messages start
 * with "PATH: ". DM_ERR_IO if the file cannot be read, DM_ERR_FORMAT if it is
 * not a valid container, DM_ERR_OUT_OF_MEMORY. */
dm_status dm_file_read(const char *path, dm_file **out, dm_error *err);
/* The same from memory (the bytes are copied; data is not kept). */
dm_status dm_file_parse(const void *data, size_t size, dm_file **out, dm_error *err);
void dm_file_free(dm_file *f);

/* Typed getters. DM_ERR_FORMAT "key 'x' missing" or "key 'x' has type string,
 * expected int". Returned pointers live as long as f. Arrays may be empty
 * (n == 0; the pointer is then not NULL but must not be read). */
dm_status dm_file_get_int(const dm_file *f, const char *key, int64_t *out, dm_error *err);
dm_status dm_file_get_float(const dm_file *f, const char *key, double *out, dm_error *err);
dm_status dm_file_get_string(const dm_file *f, const char *key, const char **out, dm_error *err);
dm_status dm_file_get_ints(const dm_file *f, const char *key, const int64_t **out, size_t *n,
                           dm_error *err);
dm_status dm_file_get_floats(const dm_file *f, const char *key, const double **out, size_t *n,
                             dm_error *err);
dm_status dm_file_get_strings(const dm_file *f, const char *key, const char *const **out,
                              size_t *n, dm_error *err);
/* 1 if the key exists (of any type), else 0. */
int dm_file_has(const dm_file *f, const char *key);

/* The keys in file order, e.g. for `dmaudio info`: key i's name and type.
 * DM_ERR_INVALID_ARGUMENT if i is out of range; name or type may be NULL. */
int dm_file_n_keys(const dm_file *f);
dm_status dm_file_key(const dm_file *f, int i, const char **name, int *type);

/* Tensors, in file order. dims[ndim..3] are set to 1. Any output may be NULL.
 * DM_ERR_INVALID_ARGUMENT if i is out of range. */
int dm_file_n_tensors(const dm_file *f);
dm_status dm_file_tensor_info(const dm_file *f, int i, const char **name, int *ndim,
                              int64_t dims[4], int *dtype);
/* Index of the tensor with this name, or -1. */
int dm_file_find_tensor(const dm_file *f, const char *name);
/* Copies tensor `name` into dst as float32 (float16 is expanded exactly);
 * DM_ERR_FORMAT if it is missing or its element count is not exactly n. */
dm_status dm_file_read_tensor(const dm_file *f, const char *name, float *dst, size_t n,
                              dm_error *err);

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct dm_file_writer dm_file_writer;

dm_status dm_file_writer_create(dm_file_writer **out, dm_error *err);
void dm_file_writer_free(dm_file_writer *w);

/* Each adds one key (a dotted name such as "dmaudio.arch.channels", 1..255 bytes
 * of UTF-8) and copies the value. DM_ERR_INVALID_ARGUMENT for a bad key or value
 * (a string over 1 MiB or not UTF-8, an array over 1<<24 elements, too many
 * keys), DM_ERR_OUT_OF_MEMORY; the error is also kept for save (see above).
 * A duplicate key is reported by save. */
dm_status dm_file_writer_int(dm_file_writer *w, const char *key, int64_t v);
dm_status dm_file_writer_float(dm_file_writer *w, const char *key, double v);
dm_status dm_file_writer_string(dm_file_writer *w, const char *key, const char *v);
dm_status dm_file_writer_ints(dm_file_writer *w, const char *key, const int64_t *v, size_t n);
dm_status dm_file_writer_floats(dm_file_writer *w, const char *key, const double *v, size_t n);
dm_status dm_file_writer_strings(dm_file_writer *w, const char *key, const char *const *v,
                                 size_t n);

/* Adds a tensor of ndim (1..4) dims (each >= 1, at most 1<<32 elements in all)
 * and copies data (product(dims) floats), converting it to float16 when dtype is
 * DM_FILE_F16 (round to nearest even; subnormals, infinities and NaN kept). */
dm_status dm_file_writer_tensor(dm_file_writer *w, const char *name, int ndim,
                                const int64_t *dims, int dtype, const float *data);

/* Writes the file atomically: PATH.tmp.XXXXXX in the same directory, written,
 * flushed and fsync'ed, then renamed over PATH. On any failure the temporary file
 * is removed, PATH is left as it was, and the result is DM_ERR_IO with
 * "PATH: <strerror>" (or the first error of an add call). The writer can be saved
 * again. */
dm_status dm_file_writer_save(dm_file_writer *w, const char *path, dm_error *err);
/* The same bytes into a new malloc'ed buffer (the caller frees it): for tests and
 * tools that build files in memory. */
dm_status dm_file_writer_serialize(dm_file_writer *w, void **data, size_t *size, dm_error *err);

/* IEEE 754 binary16 conversions used by the format (exposed for the tests). */
uint16_t dm_f32_to_f16(float x);
float dm_f16_to_f32(uint16_t h);

#endif
