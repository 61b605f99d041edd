/* Shared helpers for the cmocka tests: tensor comparison with a stated
 * tolerance, fixture paths. Included by each test file. */
#ifndef DM_TEST_CHECK_H
#define DM_TEST_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"

/* max|a - b| / max|b| (relative to the reference's largest value). */
static inline double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num)) /* also catches NaN */
            num = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* Fails the current test, naming the tensor, if rel_err > tol. */
#define assert_close(what, a, b, n, tol)                                                        \
    do {                                                                                        \
        double e_ = rel_err((a), (b), (n));                                                     \
        if (!(e_ <= (tol)))                                                                     \
            fail_msg("%s: relative error %.3g > %.3g", (what), e_, (double)(tol));              \
    } while (0)

static inline void load_fixture(const char *name, fx_file *f)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "tests/fixtures/%s", name);
    if (fx_load(path, f, err, sizeof err) != 0)
        fail_msg("cannot load fixture %s: %s", path, err);
}

/* A float tensor of the fixture that must exist and have n elements. */
static inline const float *need_f32(const fx_file *f, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    size_t n = 0;
    const float *p = fx_f32(f, name, &n);
    if (!p)
        fail_msg("fixture has no float tensor '%s'", name);
    return p;
}

static inline float *copy_f32(const float *p, size_t n)
{
    float *q = malloc(n * sizeof *q + 1);
    assert_non_null(q);
    memcpy(q, p, n * sizeof *q);
    return q;
}

static inline float *zeros(size_t n)
{
    float *q = calloc(n + 1, sizeof *q);
    assert_non_null(q);
    return q;
}

#endif
