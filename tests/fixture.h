/* Loader for the .dmfx test fixtures written by tests/gen_fixtures.py.
 *
 * Format (little-endian, see docs/architecture.md): "DMFX", u32 version (1), u32 tensor count,
 * then per tensor: u32 name length, the name (no terminator), u32 ndim, u32 dims[ndim],
 * u32 dtype (0 float32, 1 int32), the raw data.
 */
#ifndef DMAUDIO_TESTS_FIXTURE_H
#define DMAUDIO_TESTS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#define FX_MAX_DIMS 8
#define FX_F32 0
#define FX_I32 1

typedef struct {
    char *name;             /* NUL-terminated */
    int ndim;
    int dims[FX_MAX_DIMS];
    int dtype;              /* 0 f32, 1 i32 */
    size_t n;               /* element count (product of dims; 1 for ndim 0) */
    void *data;             /* n floats or n int32_t, host byte order */
} fx_tensor;

typedef struct {
    int n;
    fx_tensor *t;
} fx_file;

/* 0 on success; on failure -1, *f is left empty and a one-line message is put in err. */
int fx_load(const char *path, fx_file *f, char *err, size_t errlen);
void fx_free(fx_file *f);
/* NULL if missing. */
const fx_tensor *fx_get(const fx_file *f, const char *name);
/* NULL if missing or of the other dtype; otherwise *n (if n is not NULL) = element count. */
const float *fx_f32(const fx_file *f, const char *name, size_t *n);
const int32_t *fx_i32(const fx_file *f, const char *name, size_t *n);

#endif
