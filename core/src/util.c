/* Errors, status names, aligned allocation, threads, version. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#define DM_STR2(x) #x
#define DM_STR(x) DM_STR2(x)

const char *dm_version(void)
{
    return DM_STR(DM_VERSION_MAJOR) "." DM_STR(DM_VERSION_MINOR) "." DM_STR(DM_VERSION_PATCH);
}

static const struct {
    const char *name;
    const char *message;
} status_table[DM_STATUS_COUNT] = {
    [DM_OK] = {"ok", "success"},
    [DM_ERR_INVALID_ARGUMENT] = {"invalid-argument", "invalid argument"},
    [DM_ERR_OUT_OF_MEMORY] = {"out-of-memory", "out of memory"},
    [DM_ERR_IO] = {"io", "input/output error"},
    [DM_ERR_FORMAT] = {"format", "corrupt or unsupported file"},
    [DM_ERR_UNSUPPORTED] = {"unsupported", "not supported by this build"},
    [DM_ERR_CANCELLED] = {"cancelled", "cancelled"},
};

const char *dm_status_name(dm_status status)
{
    if ((unsigned)status >= DM_STATUS_COUNT)
        return "unknown";
    return status_table[status].name;
}

const char *dm_status_message(dm_status status)
{
    if ((unsigned)status >= DM_STATUS_COUNT)
        return "unknown status";
    return status_table[status].message;
}

int dm_status_from_name(const char *name, dm_status *out)
{
    for (int i = 0; name && i < DM_STATUS_COUNT; i++) {
        if (strcmp(name, status_table[i].name) == 0) {
            *out = (dm_status)i;
            return 0;
        }
    }
    return -1;
}

dm_status dm_fail(dm_error *err, dm_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void *dm_alloc(size_t count, size_t size)
{
    if (size && count > ((size_t)-1 - 64) / size)
        return NULL;
    size_t bytes = count * size;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

void dm_free(void *p)
{
    free(p);
}

double dm_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int dm_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* OpenBLAS runs single-threaded: dm_sgemm does the splitting itself, so that
 * results never depend on the thread count (OpenBLAS's own threading changes
 * the summation order on some CPUs). */
static void blas_single_thread(void)
{
    openblas_set_num_threads(1);
}

int dm_threads_resolve(int n_threads)
{
    return n_threads > 0 ? n_threads : dm_cpu_count();
}

int dm_threads_begin(int n_threads)
{
    pthread_once(&blas_once, blas_single_thread);
    if (n_threads <= 0)
        n_threads = dm_cpu_count();
#ifdef _OPENMP
    int previous = omp_get_max_threads();
    omp_set_num_threads(n_threads); /* per calling thread, not process-wide */
    return previous;
#else
    (void)n_threads;
    return 1;
#endif
}

void dm_threads_end(int previous)
{
#ifdef _OPENMP
    omp_set_num_threads(previous);
#else
    (void)previous;
#endif
}

/* Tile width along one output dimension: a function of the shape only, never
 * of the thread count, so every tile is the same single-threaded GEMM call
 * whichever thread runs it. Aims at about 8 tiles of at least 64. */
static int tile_size(int n)
{
    int t = (n / 8 + 63) / 64 * 64;
    return t < 64 ? 64 : t;
}

static void sgemm_one(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dm_sgemm_serial(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    pthread_once(&blas_once, blas_single_thread);
    sgemm_one(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dm_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    pthread_once(&blas_once, blas_single_thread);
    /* Whether and how to tile depends on the shape only; the thread count only
     * decides whether the tiles run in parallel. */
    double work = (double)M * N * K;
    if (work < 2097152.0 || (N < 128 && M < 128)) {
        sgemm_one(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (N >= M) { /* tiles of columns: C[:, j0:j1] = op(A) op(B)[:, j0:j1] */
        int ts = tile_size(N), tiles = (N + ts - 1) / ts;
#pragma omp parallel for schedule(dynamic, 1) if (dm_par(work / 32))
        for (int i = 0; i < tiles; i++) {
            int j0 = i * ts, nj = N - j0 < ts ? N - j0 : ts;
            const float *Bj = trans_b ? B + (size_t)j0 * ldb : B + j0;
            sgemm_one(trans_a, trans_b, M, nj, K, alpha, A, lda, Bj, ldb, beta, C + j0, ldc);
        }
    } else { /* tiles of rows: C[i0:i1, :] = op(A)[i0:i1, :] op(B) */
        int ts = tile_size(M), tiles = (M + ts - 1) / ts;
#pragma omp parallel for schedule(dynamic, 1) if (dm_par(work / 32))
        for (int i = 0; i < tiles; i++) {
            int i0 = i * ts, ni = M - i0 < ts ? M - i0 : ts;
            const float *Ai = trans_a ? A + i0 : A + (size_t)i0 * lda;
            sgemm_one(trans_a, trans_b, ni, N, K, alpha, Ai, lda, B, ldb, beta,
                      C + (size_t)i0 * ldc, ldc);
        }
    }
}

void dm_sgemv(int M, int N, const float *A, int lda, const float *x, float *y)
{
    pthread_once(&blas_once, blas_single_thread);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, M, N, 1.0f, A, lda, x, 1, 1.0f, y, 1);
}
