/* Evaluation: a fixed-size embedding per clip from FFTW features, the Fréchet distance
 * between Gaussian fits of two sets of embeddings, the kernel inception distance (unbiased
 * MMD^2, cubic polynomial kernel) with its standard error, and nearest-neighbour distances
 * for the memorisation check. Definitions in core/include/dmaudio_spectral.h.
 *
 * Every result is independent of the thread count: parallel loops give each output (a clip,
 * a matrix row, a subset, a query) to one thread, which computes it serially in a fixed order. */
#include "internal.h"
#include "dmaudio_spectral.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* LAPACK (exported by OpenBLAS), Fortran calling convention with the hidden lengths of the
 * character arguments. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

static int thread_index(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Clip embedding */

#define EMB_MELS 40
#define EMB_MFCC 20
#define EMB_SEGS 8
#define EMB_BANDS 8
#define EMB_OFF_ENV (4 * EMB_MELS / 2 + 2 * EMB_MFCC + 6)

_Static_assert(EMB_OFF_ENV + EMB_SEGS * EMB_BANDS == DM_EMBED_DIM, "embedding layout");
_Static_assert(EMB_MELS % EMB_BANDS == 0, "coarse bands");

int dm_embed_dim(void)
{
    return DM_EMBED_DIM;
}

int dm_embed_n_fft(double sample_rate)
{
    int n = 64;
    while (n < 0.02 * sample_rate && n < (1 << 20))
        n *= 2;
    return n;
}

/* Buffers for one thread; sized for max_frames. */
typedef struct embed_ws {
    dm_stft *st;
    float *a, *b;            /* (bins, T): re then magnitude, im then power */
    float *mel, *mfcc;       /* (EMB_MELS, T), (EMB_MFCC, T)                 */
    float *cent, *flat, *roll;
} embed_ws;

static void embed_ws_free(embed_ws *w)
{
    dm_stft_free(w->st);
    dm_free(w->a);
    dm_free(w->b);
    dm_free(w->mel);
    dm_free(w->mfcc);
    dm_free(w->cent);
    dm_free(w->flat);
    dm_free(w->roll);
    memset(w, 0, sizeof *w);
}

static dm_status embed_ws_init(embed_ws *w, int n_fft, int max_frames, dm_error *err)
{
    memset(w, 0, sizeof *w);
    dm_status s = dm_stft_create(n_fft, n_fft / 4, &w->st, err);
    if (s != DM_OK)
        return s;
    size_t T = (size_t)max_frames, bins = (size_t)(n_fft / 2 + 1);
    w->a = dm_alloc(bins * T, sizeof(float));
    w->b = dm_alloc(bins * T, sizeof(float));
    w->mel = dm_alloc(EMB_MELS * T, sizeof(float));
    w->mfcc = dm_alloc(EMB_MFCC * T, sizeof(float));
    w->cent = dm_alloc(T, sizeof(float));
    w->flat = dm_alloc(T, sizeof(float));
    w->roll = dm_alloc(T, sizeof(float));
    if (!w->a || !w->b || !w->mel || !w->mfcc || !w->cent || !w->flat || !w->roll) {
        embed_ws_free(w);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "embedding: out of memory");
    }
    return DM_OK;
}

/* Mean and population standard deviation of v[0..n), in double. */
static void mean_std(const float *v, size_t n, float *mean, float *std)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    double m = s / (double)n, q = 0.0;
    for (size_t i = 0; i < n; i++)
        q += ((double)v[i] - m) * ((double)v[i] - m);
    *mean = (float)m;
    *std = (float)sqrt(q / (double)n);
}

static void embed_one(embed_ws *w, const dm_mel *mel, const float *x, size_t n,
                      double sample_rate, float *emb)
{
    dm_stft *st = w->st;
    const int n_fft = dm_stft_n_fft(st);
    const int T = dm_stft_frames(st, n);
    const size_t nb = (size_t)dm_stft_bins(st) * (size_t)T;
    const float scale = 2.0f / (float)n_fft; /* 1 / sum(periodic Hann) */
    const float nyquist = (float)(sample_rate / 2.0);

    dm_stft_forward(st, x, n, w->a, w->b, NULL);
    for (size_t i = 0; i < nb; i++) {
        float re = w->a[i] * scale, im = w->b[i] * scale;
        float p = re * re + im * im;
        w->a[i] = sqrtf(p);
        w->b[i] = p;
    }
    dm_mel_apply(mel, w->b, T, w->mel, NULL);
    for (size_t i = 0; i < (size_t)EMB_MELS * T; i++) /* bels re -50 dB: -5 .. about +5 */
        w->mel[i] = log10f(w->mel[i] > 1e-10f ? w->mel[i] : 1e-10f) + 5.0f;
    dm_mel_mfcc(mel, w->mel, T, EMB_MFCC, w->mfcc, NULL);
    dm_spectral_centroid(w->a, n_fft, T, sample_rate, w->cent, NULL);
    dm_spectral_flatness(w->a, n_fft, T, w->flat, NULL);
    dm_spectral_rolloff(w->a, n_fft, T, sample_rate, 0.85, w->roll, NULL);
    for (int t = 0; t < T; t++) {
        w->cent[t] /= nyquist;
        w->flat[t] = log10f(w->flat[t]);
        w->roll[t] /= nyquist;
    }

    int o = 0;
    for (int m = 0; m < EMB_MELS; m++)
        mean_std(w->mel + (size_t)m * T, (size_t)T, &emb[m], &emb[EMB_MELS + m]);
    o = 2 * EMB_MELS;
    for (int c = 0; c < EMB_MFCC; c++)
        mean_std(w->mfcc + (size_t)c * T, (size_t)T, &emb[o + c], &emb[o + EMB_MFCC + c]);
    o += 2 * EMB_MFCC;
    mean_std(w->cent, (size_t)T, &emb[o], &emb[o + 1]);
    mean_std(w->flat, (size_t)T, &emb[o + 2], &emb[o + 3]);
    mean_std(w->roll, (size_t)T, &emb[o + 4], &emb[o + 5]);
    o += 6;

    const int per_band = EMB_MELS / EMB_BANDS;
    for (int s = 0; s < EMB_SEGS; s++) {
        long t0 = (long)s * T / EMB_SEGS, t1 = (long)(s + 1) * T / EMB_SEGS;
        if (t1 <= t0)
            t1 = t0 + 1;
        for (int b = 0; b < EMB_BANDS; b++) {
            double sum = 0.0;
            for (int m = b * per_band; m < (b + 1) * per_band; m++)
                for (long t = t0; t < t1; t++)
                    sum += w->mel[(size_t)m * T + (size_t)t];
            emb[o + s * EMB_BANDS + b] = (float)(sum / ((double)per_band * (double)(t1 - t0)));
        }
    }
}

static dm_status embed_check(const float *const *clips, const size_t *lengths, int count,
                             double sample_rate, const float *emb, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (count < 0 || (count > 0 && (!clips || !lengths || !emb)))
        return dm_fail(err, bad, "embedding: bad argument");
    if (!(sample_rate >= 1000.0 && sample_rate <= 768000.0))
        return dm_fail(err, bad, "embedding: sample rate %g is not in 1000..768000", sample_rate);
    for (int i = 0; i < count; i++) {
        if (!clips[i] || lengths[i] < 1 || lengths[i] > (size_t)INT32_MAX / 2)
            return dm_fail(err, bad, "embedding: clip %d: %zu samples", i, lengths[i]);
        for (size_t j = 0; j < lengths[i]; j++)
            if (!isfinite(clips[i][j]))
                return dm_fail(err, bad, "embedding: clip %d: sample %zu is not finite", i, j);
    }
    return DM_OK;
}

dm_status dm_embed_clips(const float *const *clips, const size_t *lengths, int count,
                         double sample_rate, int n_threads, float *emb, dm_error *err)
{
    dm_status s = embed_check(clips, lengths, count, sample_rate, emb, err);
    if (s != DM_OK || count == 0)
        return s;
    if (n_threads < 0 || n_threads > 1024)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "embedding: n_threads %d is not in 0..1024",
                       n_threads);
    const int n_fft = dm_embed_n_fft(sample_rate);
    size_t longest = 0;
    for (int i = 0; i < count; i++)
        longest = lengths[i] > longest ? lengths[i] : longest;

    dm_mel *mel = NULL;
    s = dm_mel_create(sample_rate, n_fft, EMB_MELS, 0.0, sample_rate / 2.0, 0, &mel, err);
    if (s != DM_OK)
        return s;
    int prev = dm_threads_begin(n_threads);
    int nt = max_threads();
    if (nt > count)
        nt = count;
    embed_ws *ws = dm_alloc((size_t)nt, sizeof *ws);
    if (!ws)
        s = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "embedding: out of memory");
    int made = 0;
    for (; s == DM_OK && made < nt; made++) {
        /* A dm_stft per thread: its FFT buffers are its own. */
        int max_frames = (int)(1 + longest / (size_t)(n_fft / 4));
        s = embed_ws_init(&ws[made], n_fft, max_frames, err);
        if (s != DM_OK)
            break;
    }
    if (s == DM_OK) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int i = 0; i < count; i++)
            embed_one(&ws[thread_index()], mel, clips[i], lengths[i], sample_rate,
                      emb + (size_t)i * DM_EMBED_DIM);
    }
    for (int i = 0; ws && i < made; i++)
        embed_ws_free(&ws[i]);
    dm_free(ws);
    dm_threads_end(prev);
    dm_mel_free(mel);
    return s;
}

dm_status dm_embed_clip(const float *x, size_t n, double sample_rate, float *emb, dm_error *err)
{
    return dm_embed_clips(&x, &n, 1, sample_rate, 1, emb, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Fréchet distance */

static dm_status set_args(const char *what, const float *a, int n_a, const float *b, int n_b,
                          int d, int min_n, int n_threads, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!a || !b)
        return dm_fail(err, bad, "%s: NULL argument", what);
    if (d < 1 || d > 65536)
        return dm_fail(err, bad, "%s: dimension %d is not in 1..65536", what, d);
    if (n_a < min_n || n_b < min_n)
        return dm_fail(err, bad, "%s: sets of %d and %d items (at least %d each)", what, n_a,
                       n_b, min_n);
    if (n_threads < 0 || n_threads > 1024)
        return dm_fail(err, bad, "%s: n_threads %d is not in 0..1024", what, n_threads);
    const size_t na = (size_t)n_a * (size_t)d, nb = (size_t)n_b * (size_t)d;
    for (size_t i = 0; i < na; i++)
        if (!isfinite(a[i]))
            return dm_fail(err, bad, "%s: first set, item %zu is not finite", what, i / (size_t)d);
    for (size_t i = 0; i < nb; i++)
        if (!isfinite(b[i]))
            return dm_fail(err, bad, "%s: second set, item %zu is not finite", what, i / (size_t)d);
    return DM_OK;
}

/* mu (d) and the unbiased covariance S (d x d, full) of x (n, d); xc: n x d scratch. */
static void gaussian_fit(const float *x, int n, int d, double *mu, double *S, double *xc)
{
    for (int j = 0; j < d; j++) {
        double s = 0.0;
        for (int i = 0; i < n; i++)
            s += x[(size_t)i * d + j];
        mu[j] = s / n;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            xc[(size_t)i * d + j] = (double)x[(size_t)i * d + j] - mu[j];
#pragma omp parallel for schedule(dynamic, 4)
    for (int j = 0; j < d; j++) {
        for (int k = 0; k <= j; k++) {
            double s = 0.0;
            for (int i = 0; i < n; i++)
                s += xc[(size_t)i * d + j] * xc[(size_t)i * d + k];
            S[(size_t)j * d + k] = s / (n - 1);
        }
    }
    for (int j = 0; j < d; j++)
        for (int k = j + 1; k < d; k++)
            S[(size_t)j * d + k] = S[(size_t)k * d + j];
}

/* Eigen-decomposition of the symmetric A (d x d, overwritten by the eigenvectors as columns
 * of the column-major matrix, i.e. rows here, when vectors) -> w ascending. LAPACK runs on one
 * BLAS thread: OpenBLAS's threaded level-2 kernels (dsymv inside dsytrd) split sums between
 * threads, and the result must not depend on the thread count. n_threads is restored after. */
static dm_status sym_eig_serial(double *A, int d, double *w, int vectors, dm_error *err);

static dm_status sym_eig(double *A, int d, double *w, int vectors, int n_threads, dm_error *err)
{
    dm_threads_begin(1);
    dm_status s = sym_eig_serial(A, d, w, vectors, err);
    dm_threads_begin(n_threads);
    return s;
}

static dm_status sym_eig_serial(double *A, int d, double *w, int vectors, dm_error *err)
{
    const char jobz = vectors ? 'V' : 'N', uplo = 'L';
    int lwork = -1, liwork = -1, info = 0, iq = 0;
    double wq = 0.0;
    dsyevd_(&jobz, &uplo, &d, A, &d, w, &wq, &lwork, &iq, &liwork, &info, 1, 1);
    if (info != 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "eigen-decomposition: workspace query failed");
    lwork = (int)wq + 1;
    liwork = iq > 0 ? iq : 1;
    double *work = dm_alloc((size_t)lwork, sizeof(double));
    int *iwork = dm_alloc((size_t)liwork, sizeof(int));
    if (!work || !iwork) {
        dm_free(work);
        dm_free(iwork);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "eigen-decomposition: out of memory");
    }
    dsyevd_(&jobz, &uplo, &d, A, &d, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    dm_free(work);
    dm_free(iwork);
    if (info != 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "eigen-decomposition did not converge (LAPACK info %d)", info);
    return DM_OK;
}

/* C = A B for d x d row-major matrices; each row of C is one thread's. */
static void matmul(const double *A, const double *B, double *C, int d)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d; i++) {
        double *c = C + (size_t)i * d;
        for (int j = 0; j < d; j++)
            c[j] = 0.0;
        for (int k = 0; k < d; k++) {
            const double a = A[(size_t)i * d + k];
            const double *b = B + (size_t)k * d;
            for (int j = 0; j < d; j++)
                c[j] += a * b[j];
        }
    }
}

dm_status dm_frechet_distance(const float *a, int n_a, const float *b, int n_b, int d,
                              int n_threads, double *out, dm_error *err)
{
    dm_status s = set_args("Fréchet distance", a, n_a, b, n_b, d, 2, n_threads, err);
    if (s != DM_OK)
        return s;
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "Fréchet distance: NULL argument");
    const size_t dd = (size_t)d * (size_t)d;
    const int n_max = n_a > n_b ? n_a : n_b;
    double *mu_a = dm_alloc((size_t)d, sizeof(double)), *mu_b = dm_alloc((size_t)d, sizeof(double));
    double *w = dm_alloc((size_t)d, sizeof(double));
    double *Sa = dm_alloc(dd, sizeof(double)), *Sb = dm_alloc(dd, sizeof(double));
    double *H = dm_alloc(dd, sizeof(double)), *T = dm_alloc(dd, sizeof(double));
    double *xc = dm_alloc((size_t)n_max * (size_t)d, sizeof(double));
    if (!mu_a || !mu_b || !w || !Sa || !Sb || !H || !T || !xc) {
        s = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "Fréchet distance: out of memory");
        goto done;
    }
    int prev = dm_threads_begin(n_threads);
    gaussian_fit(a, n_a, d, mu_a, Sa, xc);
    gaussian_fit(b, n_b, d, mu_b, Sb, xc);

    double mean_term = 0.0, trace = 0.0;
    for (int j = 0; j < d; j++) {
        mean_term += (mu_a[j] - mu_b[j]) * (mu_a[j] - mu_b[j]);
        trace += Sa[(size_t)j * d + j] + Sb[(size_t)j * d + j];
    }

    /* Sa^1/2 = V diag(sqrt(max(l, 0))) V^T. dsyevd works on the column-major matrix, which is
     * Sa itself (symmetric); on return row i of T holds eigenvector i. */
    memcpy(T, Sa, dd * sizeof(double));
    s = sym_eig(T, d, w, 1, n_threads, err);
    if (s == DM_OK) {
        for (int i = 0; i < d; i++)
            w[i] = w[i] > 0.0 ? sqrt(w[i]) : 0.0;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < d; i++) {
            for (int j = 0; j <= i; j++) {
                double v = 0.0;
                for (int k = 0; k < d; k++)
                    v += T[(size_t)k * d + i] * w[k] * T[(size_t)k * d + j];
                H[(size_t)i * d + j] = v;
            }
        }
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++)
                H[(size_t)i * d + j] = H[(size_t)j * d + i];
        /* M = H Sb H (symmetric positive semi-definite); Tr(M^1/2) = sum sqrt(eig(M)). */
        matmul(H, Sb, T, d);
        matmul(T, H, Sa, d);
        for (int i = 0; i < d; i++) /* symmetrise the rounding */
            for (int j = 0; j < i; j++) {
                double v = 0.5 * (Sa[(size_t)i * d + j] + Sa[(size_t)j * d + i]);
                Sa[(size_t)i * d + j] = Sa[(size_t)j * d + i] = v;
            }
        s = sym_eig(Sa, d, w, 0, n_threads, err);
    }
    if (s == DM_OK) {
        double tr_sqrt = 0.0;
        for (int i = 0; i < d; i++)
            tr_sqrt += w[i] > 0.0 ? sqrt(w[i]) : 0.0;
        double fd = mean_term + trace - 2.0 * tr_sqrt;
        *out = fd > 0.0 ? fd : 0.0;
    }
    dm_threads_end(prev);
done:
    dm_free(mu_a);
    dm_free(mu_b);
    dm_free(w);
    dm_free(Sa);
    dm_free(Sb);
    dm_free(H);
    dm_free(T);
    dm_free(xc);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Kernel inception distance */

/* x.y in double, in a fixed order (four interleaved partial sums), so that every path that
 * needs k(x, y) gets the same bits; symmetric in x and y. */
static double dot_row(const float *x, const float *y, int d)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int j = 0;
    for (; j + 4 <= d; j += 4) {
        s0 += (double)x[j] * y[j];
        s1 += (double)x[j + 1] * y[j + 1];
        s2 += (double)x[j + 2] * y[j + 2];
        s3 += (double)x[j + 3] * y[j + 3];
    }
    for (; j < d; j++)
        s0 += (double)x[j] * y[j];
    return (s0 + s1) + (s2 + s3);
}

static double poly_kernel(const float *x, const float *y, int d)
{
    double v = dot_row(x, y, d) / d + 1.0;
    return v * v * v;
}

/* The first m entries of a uniformly random permutation of 0..n-1 (partial Fisher-Yates);
 * perm (n) and u (m) are scratch, the result is perm[0..m). */
static void draw_subset(int n, int m, uint64_t seed, uint64_t stream, int *perm, float *u)
{
    for (int i = 0; i < n; i++)
        perm[i] = i;
    dm_rng_uniform(seed, stream, 0, u, (size_t)m);
    for (int i = 0; i < m; i++) {
        int j = i + (int)(u[i] * (float)(n - i));
        if (j >= n)
            j = n - 1;
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Kernel values, either computed on demand or looked up in Gram matrices computed once (when
 * (n_a + n_b)^2 <= KID_GRAM_MAX doubles and that saves work): the same numbers either way. */
#define KID_GRAM_MAX ((size_t)1 << 24)

typedef struct kid_sets {
    const float *a, *b;
    int n_a, n_b, d;
    double *kaa, *kbb, *kab; /* (n_a, n_a), (n_b, n_b), (n_a, n_b), or NULL */
} kid_sets;

static inline double k_aa(const kid_sets *k, int i, int j)
{
    return k->kaa ? k->kaa[(size_t)i * k->n_a + j]
                  : poly_kernel(k->a + (size_t)i * k->d, k->a + (size_t)j * k->d, k->d);
}

static inline double k_bb(const kid_sets *k, int i, int j)
{
    return k->kbb ? k->kbb[(size_t)i * k->n_b + j]
                  : poly_kernel(k->b + (size_t)i * k->d, k->b + (size_t)j * k->d, k->d);
}

static inline double k_ab(const kid_sets *k, int i, int j)
{
    return k->kab ? k->kab[(size_t)i * k->n_b + j]
                  : poly_kernel(k->a + (size_t)i * k->d, k->b + (size_t)j * k->d, k->d);
}

/* Fills the Gram matrices (rows split between threads; K(x, y) = K(y, x) bit for bit). */
static void kid_gram(kid_sets *k)
{
    const int d = k->d;
#pragma omp parallel for schedule(dynamic, 8)
    for (int i = 0; i < k->n_a + k->n_b; i++) {
        if (i < k->n_a) {
            const float *x = k->a + (size_t)i * d;
            for (int j = i; j < k->n_a; j++)
                k->kaa[(size_t)i * k->n_a + j] = poly_kernel(x, k->a + (size_t)j * d, d);
            for (int j = 0; j < k->n_b; j++)
                k->kab[(size_t)i * k->n_b + j] = poly_kernel(x, k->b + (size_t)j * d, d);
        } else {
            int r = i - k->n_a;
            const float *x = k->b + (size_t)r * d;
            for (int j = r; j < k->n_b; j++)
                k->kbb[(size_t)r * k->n_b + j] = poly_kernel(x, k->b + (size_t)j * d, d);
        }
    }
    for (int i = 0; i < k->n_a; i++)
        for (int j = 0; j < i; j++)
            k->kaa[(size_t)i * k->n_a + j] = k->kaa[(size_t)j * k->n_a + i];
    for (int i = 0; i < k->n_b; i++)
        for (int j = 0; j < i; j++)
            k->kbb[(size_t)i * k->n_b + j] = k->kbb[(size_t)j * k->n_b + i];
}

dm_status dm_kid(const float *a, int n_a, const float *b, int n_b, int d, int n_subsets,
                 int subset_size, uint64_t seed, int n_threads, double *mean, double *std_err,
                 dm_error *err)
{
    dm_status s = set_args("KID", a, n_a, b, n_b, d, 2, n_threads, err);
    if (s != DM_OK)
        return s;
    if (!mean || !std_err)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "KID: NULL argument");
    if (n_subsets < 1 || n_subsets > 1000000)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "KID: %d subsets is not in 1..1000000",
                       n_subsets);
    const int n_min = n_a < n_b ? n_a : n_b;
    if (subset_size < 2 || subset_size > n_min)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "KID: subset size %d is not in 2..%d (the smaller set)", subset_size, n_min);

    const int m = subset_size;
    kid_sets ks = {.a = a, .b = b, .n_a = n_a, .n_b = n_b, .d = d};
    const size_t na = (size_t)n_a, nb = (size_t)n_b;
    /* Gram matrices when they fit and save work (each subset touches 3 m^2 / 2 pairs). */
    if ((na + nb) * (na + nb) <= KID_GRAM_MAX &&
        (double)n_subsets * 1.5 * m * m > 0.5 * (double)((na + nb) * (na + nb))) {
        ks.kaa = dm_alloc(na * na, sizeof(double));
        ks.kbb = dm_alloc(nb * nb, sizeof(double));
        ks.kab = dm_alloc(na * nb, sizeof(double));
        if (!ks.kaa || !ks.kbb || !ks.kab) { /* then compute on demand */
            dm_free(ks.kaa), dm_free(ks.kbb), dm_free(ks.kab);
            ks.kaa = ks.kbb = ks.kab = NULL;
        }
    }
    int prev = dm_threads_begin(n_threads);
    const int nt = max_threads();
    double *mmd = dm_alloc((size_t)n_subsets, sizeof(double));
    int *perm = dm_alloc((size_t)nt * (na + nb), sizeof(int));
    float *u = dm_alloc((size_t)nt * (size_t)m, sizeof(float));
    if (!mmd || !perm || !u) {
        s = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "KID: out of memory");
    } else {
        if (ks.kaa)
            kid_gram(&ks);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int k = 0; k < n_subsets; k++) {
            int th = thread_index();
            int *pa = perm + (size_t)th * (na + nb), *pb = pa + n_a;
            float *ut = u + (size_t)th * (size_t)m;
            draw_subset(n_a, m, seed, 2 * (uint64_t)k, pa, ut);
            draw_subset(n_b, m, seed, 2 * (uint64_t)k + 1, pb, ut);
            double kxx = 0.0, kyy = 0.0, kxy = 0.0;
            for (int i = 0; i < m; i++) {
                for (int j = i + 1; j < m; j++) {
                    kxx += k_aa(&ks, pa[i], pa[j]);
                    kyy += k_bb(&ks, pb[i], pb[j]);
                }
                for (int j = 0; j < m; j++)
                    kxy += k_ab(&ks, pa[i], pb[j]);
            }
            /* the off-diagonal sums above hold each pair once: both triangles are twice that */
            mmd[k] = 2.0 * (kxx + kyy) / ((double)m * (m - 1)) - 2.0 * kxy / ((double)m * m);
        }
        double sum = 0.0;
        for (int k = 0; k < n_subsets; k++)
            sum += mmd[k];
        double mu = sum / n_subsets, q = 0.0;
        for (int k = 0; k < n_subsets; k++)
            q += (mmd[k] - mu) * (mmd[k] - mu);
        *mean = mu;
        *std_err = n_subsets > 1 ? sqrt(q / (n_subsets - 1)) / sqrt((double)n_subsets) : 0.0;
    }
    dm_threads_end(prev);
    dm_free(mmd);
    dm_free(perm);
    dm_free(u);
    dm_free(ks.kaa);
    dm_free(ks.kbb);
    dm_free(ks.kab);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Nearest neighbours (memorisation check) */

dm_status dm_nearest_neighbour_distances(const float *gen, int n_gen, const float *train,
                                         int n_train, int d, int n_threads, float *gen_dist,
                                         int *gen_index, float *train_dist, dm_error *err)
{
    if (n_gen < 0 || (n_gen > 0 && !gen_dist))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "nearest neighbours: bad argument");
    static const float none[1] = {0.0f};
    dm_status s = set_args("nearest neighbours", n_gen > 0 ? gen : none, n_gen > 0 ? n_gen : 2,
                           train, n_train, d, 2, n_threads, err);
    if (s != DM_OK)
        return s;

    const size_t D = (size_t)d;
    double *scale = dm_alloc(D, sizeof(double));
    double *tr = dm_alloc((size_t)n_train * D, sizeof(double));
    double *ge = dm_alloc((size_t)(n_gen > 0 ? n_gen : 1) * D, sizeof(double));
    if (!scale || !tr || !ge) {
        dm_free(scale);
        dm_free(tr);
        dm_free(ge);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "nearest neighbours: out of memory");
    }
    /* Per-dimension std, floored at 1% of their rms: a dimension that is almost constant in
     * the training set (a band at the log floor but for a few frames) would otherwise turn
     * differences of no importance into the largest distances. */
    double ms = 0.0;
    for (size_t j = 0; j < D; j++) {
        double m = 0.0, q = 0.0;
        for (int i = 0; i < n_train; i++)
            m += train[(size_t)i * D + j];
        m /= n_train;
        for (int i = 0; i < n_train; i++) {
            double v = train[(size_t)i * D + j] - m;
            q += v * v;
        }
        scale[j] = sqrt(q / (n_train - 1));
        ms += scale[j] * scale[j];
    }
    const double floor_sd = 0.01 * sqrt(ms / (double)D);
    for (size_t j = 0; j < D; j++) {
        double sd = scale[j] > floor_sd ? scale[j] : floor_sd;
        scale[j] = sd > 1e-12 ? 1.0 / sd : 1.0;
    }
    for (size_t i = 0; i < (size_t)n_train * D; i++)
        tr[i] = train[i] * scale[i % D];
    for (size_t i = 0; i < (size_t)n_gen * D; i++)
        ge[i] = gen[i] * scale[i % D];

    int prev = dm_threads_begin(n_threads);
    const int n_all = n_gen + (train_dist ? n_train : 0);
#pragma omp parallel for schedule(dynamic, 8)
    for (int q = 0; q < n_all; q++) {
        int own = q < n_gen ? -1 : q - n_gen; /* the training row left out */
        const double *x = own < 0 ? ge + (size_t)q * D : tr + (size_t)own * D;
        double best = INFINITY;
        int best_j = -1;
        for (int j = 0; j < n_train; j++) {
            if (j == own)
                continue;
            const double *y = tr + (size_t)j * D;
            double s2 = 0.0;
            for (size_t k = 0; k < D; k++)
                s2 += (x[k] - y[k]) * (x[k] - y[k]);
            if (s2 < best)
                best = s2, best_j = j;
        }
        if (own < 0) {
            gen_dist[q] = (float)sqrt(best);
            if (gen_index)
                gen_index[q] = best_j;
        } else {
            train_dist[own] = (float)sqrt(best);
        }
    }
    dm_threads_end(prev);
    dm_free(scale);
    dm_free(tr);
    dm_free(ge);
    return DM_OK;
}
