/* Internal helpers shared by the library's sources. Not installed. */
#ifndef DM_INTERNAL_H
#define DM_INTERNAL_H

#include "dmaudio.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__)
#define DM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DM_PRINTF(a, b)
#endif

/* DM_CLONES: hot element-wise kernels compiled for AVX-512, AVX2 and the baseline, the best one
 * chosen when the library loads (the build itself stays portable). Contraction into FMA is
 * off (-std=c11), so every version computes the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DM_CLONES
#endif

/* Fills err (when not NULL) and returns status, so that callers can write
 * `return dm_fail(err, DM_ERR_FORMAT, "%s: truncated", path);`. */
dm_status dm_fail(dm_error *err, dm_status status, const char *fmt, ...) DM_PRINTF(3, 4);

/* 64-byte aligned allocations, zero-filled; NULL on failure or overflow. */
void *dm_alloc(size_t count, size_t size);
void dm_free(void *p);

/* Row-major single-precision GEMM: C = alpha * op(A) op(B) + beta * C, where
 * op(A) is M x K and op(B) is K x N. The one place the matrix-multiply backend
 * (OpenBLAS's cblas_sgemm today) is called. */
void dm_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The same product as one single-threaded backend call, whatever the shape:
 * for callers that split the work themselves. */
void dm_sgemm_serial(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc);

/* y (M) += A (M x N, row-major) . x (N), single-threaded: a matrix-vector product reads A
 * once, where a GEMM of one row would first copy it into its packed layout. */
void dm_sgemv(int M, int N, const float *A, int lda, const float *x, float *y);

/* Thread count for the calling thread's next passes (OpenMP regions and the
 * GEMM backend); 0 means all cores. Returns the previous OpenMP setting. */
int dm_threads_begin(int n_threads);
/* Resolves 0 to the number of cores. */
int dm_threads_resolve(int n_threads);
void dm_threads_end(int previous);
int dm_cpu_count(void);

/* Whether a loop of `work` elementary operations is worth a parallel region:
 * big enough to amortise the fork and join, and not already inside one. Small
 * loops run serially, which also keeps spinning threads off a busy machine. */
#define DM_PAR_MIN 65536
static inline int dm_par(double work)
{
#ifdef _OPENMP
    return work >= DM_PAR_MIN && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
    (void)work;
    return 0;
#endif
}

static inline int dm_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* dm_unet_create with every weight 0 instead of the initialisation: for callers that
 * overwrite them (loading a file), which then skip the random draws. */
dm_status dm_unet_create_zeroed(const dm_unet_config *cfg, dm_unet **out, dm_error *err);

/* Monotonic wall-clock seconds. */
double dm_seconds(void);

/* For benchmarks: a forward pass that reports every op of the tape as it runs
 * (kind such as "conv", a shape string, its FLOPs and seconds). Same results
 * as dm_unet_forward. */
typedef void (*dm_unet_op_fn)(void *user, const char *kind, const char *shape, double flops,
                              double seconds);
dm_status dm_unet_forward_profile(const dm_unet *net, dm_unet_state *st, int batch,
                                  const float *x, const float *t, const int *cls, float *y,
                                  dm_unet_op_fn fn, void *user, dm_error *err);

/* The number of parameters dm_unet_create would allocate for cfg, without allocating them;
 * 0 for an invalid configuration (unet.c). The model loader checks a file holds that many
 * values before it builds the network. */
size_t dm_unet_config_n_params(const dm_unet_config *cfg);

#endif
