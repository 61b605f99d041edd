/* The counter-based generator: Random123 known answers, the normal
 * distribution's moments, and independence from slicing and thread count. */
#include "check.h"
#include "dmaudio.h"

#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Known-answer vectors of Random123's kat_vectors file (philox4x32, 10 rounds). */
static void test_philox_known_answers(void **state)
{
    (void)state;
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        dm_philox4x32(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++)
            assert_int_equal(out[j], kat[i].out[j]);
    }
}

/* 2^20 normals: mean within 5 standard errors of 0 (5/1024), variance within
 * 5 standard errors of 1 (sqrt(2/n) each), 4th moment near 3. */
static void test_normal_moments(void **state)
{
    (void)state;
    const size_t n = 1 << 20;
    float *z = zeros(n);
    dm_rng_normal(42, 7, 0, z, n);
    double m1 = 0, m2 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        m1 += z[i];
        m2 += (double)z[i] * z[i];
        m4 += (double)z[i] * z[i] * z[i] * z[i];
    }
    m1 /= n, m2 /= n, m4 /= n;
    assert_true(fabs(m1) < 5.0 / sqrt((double)n));
    assert_true(fabs(m2 - 1.0) < 5.0 * sqrt(2.0 / n));
    assert_true(fabs(m4 - 3.0) < 5.0 * sqrt(96.0 / n));
    free(z);
}

static void test_uniform_range_and_mean(void **state)
{
    (void)state;
    const size_t n = 1 << 18;
    float *u = zeros(n);
    dm_rng_uniform(1, 2, 3, u, n);
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(u[i] >= 0.0f && u[i] < 1.0f);
        m += u[i];
    }
    m /= n;
    assert_true(fabs(m - 0.5) < 5.0 * sqrt(1.0 / 12.0 / n));
    free(u);
}

/* A slice drawn on its own equals the same slice of the whole stream, and
 * different seeds or streams differ. */
static void test_slices_and_streams(void **state)
{
    (void)state;
    float all[1000], part[333], other[1000];
    dm_rng_normal(9, 1, 0, all, 1000);
    dm_rng_normal(9, 1, 417, part, 333);
    assert_memory_equal(part, all + 417, sizeof part);
    dm_rng_normal(9, 2, 0, other, 1000);
    assert_memory_not_equal(all, other, sizeof all);
    dm_rng_normal(10, 1, 0, other, 1000);
    assert_memory_not_equal(all, other, sizeof all);
}

/* Large draws run in parallel: the numbers must not depend on the thread count. */
static void test_thread_count_invariance(void **state)
{
    (void)state;
    const size_t n = 300001;
    float *a = zeros(n), *b = zeros(n);
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    dm_rng_normal(123, 5, 11, a, n);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    dm_rng_normal(123, 5, 11, b, n);
    assert_memory_equal(a, b, n * sizeof *a);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_normal_moments),
        cmocka_unit_test(test_uniform_range_and_mean),
        cmocka_unit_test(test_slices_and_streams),
        cmocka_unit_test(test_thread_count_invariance),
    };
    return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
