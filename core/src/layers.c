/* Layers, forward and backward. Shapes and conventions are in layers.h. */
#include "layers.h"
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Element-wise math that vectorises                                         */
/* ------------------------------------------------------------------------ */

/* exp(x) without branches or calls, so that loops over it vectorise: x = k ln2 + r with
 * |r| <= ln2/2, exp(r) by Cephes' degree-7 polynomial (relative error < 2e-7 over the range),
 * times 2^k built from the exponent bits. x is clamped to [-87.3, 88.3], and below -87.3
 * the result is 0: never a subnormal (arithmetic on those is very slow). */
static inline float exp_fast(float x0)
{
    float x = x0 < -87.3f ? -87.3f : x0;
    x = x > 88.3f ? 88.3f : x;
    const float big = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float kf = x * 1.44269504088896341f + big;
    kf = kf - big;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x0 < -87.3f ? 0.0f : p * scale; /* 0, not a subnormal: those are slow */
}

static inline float silu1(float x)
{
    return x / (1.0f + exp_fast(-x));
}

DM_CLONES static void silu_chunk(float *out, const float *inp, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = silu1(inp[i]);
}

DM_CLONES static void silu_backward_chunk(float *dinp, const float *dout, const float *inp,
                                          size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + exp_fast(-inp[i]));
        dinp[i] += dout[i] * sg * (1.0f + inp[i] * (1.0f - sg));
    }
}

/* Forward ops that only stream memory (add, FiLM, upsampling) run in parallel only when very
 * large: a parallel region costs a wake-up and a barrier, which on a busy machine (a thread
 * not scheduled) costs far more than copying a few MB. */
#define DM_MEMORY_BOUND 16.0

/* Chunks of element-wise work: a function of n only. */
#define DM_CHUNK 4096

/* ------------------------------------------------------------------------ */
/* Conv1d via im2col + GEMM                                                  */
/* ------------------------------------------------------------------------ */

int dm_conv1d_out_len(int L, int K, int stride, int pad, int dil)
{
    int span = dil * (K - 1) + 1;
    if (stride <= 0 || L + 2 * pad < span)
        return 0;
    return (L + 2 * pad - span) / stride + 1;
}

/* A pointwise conv reads its input directly as the GEMM operand. */
static int conv_is_pointwise(const dm_conv1d_shape *s)
{
    return s->K == 1 && s->stride == 1 && s->pad == 0;
}

size_t dm_conv1d_scratch(const dm_conv1d_shape *s)
{
    if (conv_is_pointwise(s))
        return 0;
    return (size_t)s->Cin * s->K * s->Lout;
}

/* col (Cin*K, Lout): col[c*K+k][i] = x[c][i*stride - pad + k*dil], 0 outside. */
static void im2col(float *col, const float *x, const dm_conv1d_shape *s)
{
    const int Lin = s->Lin, Lout = s->Lout, K = s->K;
#pragma omp parallel for schedule(static) if (dm_par((double)s->Cin * K * Lout))
    for (int c = 0; c < s->Cin; c++) {
        for (int k = 0; k < K; k++) {
            float *row = col + ((size_t)c * K + k) * Lout;
            const float *xc = x + (size_t)c * Lin;
            int pos = k * s->dil - s->pad;
            for (int i = 0; i < Lout; i++, pos += s->stride)
                row[i] = (pos >= 0 && pos < Lin) ? xc[pos] : 0.0f;
        }
    }
}

/* The adjoint of im2col: dx[c][pos] += dcol[c*K+k][i]. Threads own channels. */
static void col2im_add(float *dx, const float *dcol, const dm_conv1d_shape *s)
{
    const int Lin = s->Lin, Lout = s->Lout, K = s->K;
#pragma omp parallel for schedule(static) if (dm_par((double)s->Cin * K * Lout))
    for (int c = 0; c < s->Cin; c++) {
        float *dxc = dx + (size_t)c * Lin;
        for (int k = 0; k < K; k++) {
            const float *row = dcol + ((size_t)c * K + k) * Lout;
            int pos = k * s->dil - s->pad;
            for (int i = 0; i < Lout; i++, pos += s->stride)
                if (pos >= 0 && pos < Lin)
                    dxc[pos] += row[i];
        }
    }
}

/* Whether to spread the batch items over threads (each item is then computed
 * exactly as it would be alone, so results do not depend on the split). */
static int batch_parallel(const dm_conv1d_shape *s, const dm_scratch *sc)
{
    return s->B > 1 && sc->copies > 1 &&
           dm_par((double)s->B * s->Cout * s->Cin * s->K * s->Lout / 16);
}

static inline int team_size(const dm_scratch *sc)
{
#ifdef _OPENMP
    int n = omp_get_max_threads();
    return n < sc->copies ? n : sc->copies;
#else
    (void)sc;
    return 1;
#endif
}

/* The forward pass works on tiles of output columns: for each (item, tile),
 * col (Cin*K, n) gathers the input the tile reads, and one single-threaded
 * GEMM adds w (Cout, Cin*K) . col into the bias-filled outputs. Tiles are as
 * wide as fits DM_CONV_TILE floats of col (a cache-sized block), a function of
 * the shape only, and each output element is computed by one GEMM call over
 * the whole Cin*K: results depend neither on the thread count nor on the
 * batch. The (item, tile) jobs are spread over the threads, so a batch of one
 * uses every core too. */
#define DM_CONV_TILE 32768

static int conv_tile(const dm_conv1d_shape *s)
{
    int ck = s->Cin * s->K;
    int t = DM_CONV_TILE / (ck > 0 ? ck : 1) / 64 * 64;
    if (t < 64)
        t = 64;
    return t < s->Lout ? t : (s->Lout > 0 ? s->Lout : 1);
}

size_t dm_conv1d_forward_scratch(const dm_conv1d_shape *s)
{
    if (conv_is_pointwise(s))
        return 0;
    return (size_t)s->Cin * s->K * conv_tile(s);
}

/* col (Cin*K, n) for output columns [i0, i0+n): col[c*K+k][i] = x[c][(i0+i)*stride - pad + k*dil]. */
static void im2col_tile(float *col, const float *x, const dm_conv1d_shape *s, int i0, int n)
{
    const int Lin = s->Lin, K = s->K, st = s->stride;
    for (int c = 0; c < s->Cin; c++) {
        const float *xc = x + (size_t)c * Lin;
        for (int k = 0; k < K; k++) {
            float *row = col + ((size_t)c * K + k) * n;
            int pos0 = i0 * st - s->pad + k * s->dil;
            /* the columns whose input lies inside [0, Lin): lo <= i < hi */
            int lo = pos0 >= 0 ? 0 : (-pos0 + st - 1) / st;
            int hi = Lin - pos0 <= 0 ? 0 : (Lin - pos0 + st - 1) / st;
            if (lo > n)
                lo = n;
            if (hi > n)
                hi = n;
            if (hi < lo)
                hi = lo;
            for (int i = 0; i < lo; i++)
                row[i] = 0.0f;
            if (st == 1) {
                memcpy(row + lo, xc + pos0 + lo, (size_t)(hi - lo) * sizeof(float));
            } else {
                for (int i = lo; i < hi; i++)
                    row[i] = xc[pos0 + i * st];
            }
            for (int i = hi; i < n; i++)
                row[i] = 0.0f;
        }
    }
}

/* Output channels per job: all of them, unless an item has fewer than DM_CONV_JOBS column
 * tiles (the short sequences of the lowest levels), when the rows are cut into blocks (a
 * multiple of 16, a function of the shape only) so that a batch of one still has
 * DM_CONV_JOBS jobs to spread over the threads. */
#define DM_CONV_JOBS 4

static int conv_rows(const dm_conv1d_shape *s, int tiles)
{
    if (tiles >= DM_CONV_JOBS || s->Cout < 32 * DM_CONV_JOBS)
        return s->Cout;
    int blocks = (DM_CONV_JOBS + tiles - 1) / tiles;
    return ((s->Cout + blocks - 1) / blocks + 15) / 16 * 16;
}

/* One job: rows o0 .. o0 + m - 1 of columns i0 .. i0 + n - 1,
 * y[o0:o0+m, i0:i0+n] = bias + w[o0:o0+m] . col. */
static void conv_tile_forward(float *y, const float *x, const float *w, const float *bias,
                              const dm_conv1d_shape *s, int o0, int m, int i0, int n,
                              float *col)
{
    const int CK = s->Cin * s->K, Lout = s->Lout;
    for (int o = o0; o < o0 + m; o++) {
        float v = bias ? bias[o] : 0.0f;
        float *yo = y + (size_t)o * Lout + i0;
        for (int i = 0; i < n; i++)
            yo[i] = v;
    }
    const float *wo = w + (size_t)o0 * CK;
    float *yo = y + (size_t)o0 * Lout + i0;
    if (conv_is_pointwise(s)) {
        dm_sgemm_serial(false, false, m, n, CK, 1.0f, wo, CK, x + i0, s->Lin, 1.0f, yo, Lout);
    } else {
        im2col_tile(col, x, s, i0, n);
        dm_sgemm_serial(false, false, m, n, CK, 1.0f, wo, CK, col, n, 1.0f, yo, Lout);
    }
}

void dm_conv1d_forward(float *out, const float *inp, const float *w, const float *bias,
                       const dm_conv1d_shape *s, const dm_scratch *sc)
{
    const size_t xs = (size_t)s->Cin * s->Lin, ys = (size_t)s->Cout * s->Lout;
    const int T = conv_tile(s), tiles = (s->Lout + T - 1) / T;
    const int R = conv_rows(s, tiles), blocks = (s->Cout + R - 1) / R;
    const int jobs = s->B * tiles * blocks;
    const size_t need = dm_conv1d_forward_scratch(s);
    /* the per-thread col regions that fit the scratch given */
    int copies = need == 0 ? 1 << 20 : (int)(sc->stride * (size_t)sc->copies / need);
    int par = jobs > 1 && copies > 1 &&
              dm_par((double)s->B * s->Cout * s->Cin * s->K * s->Lout / 16);
    int team = 1;
#ifdef _OPENMP
    team = omp_get_max_threads();
#endif
    if (team > copies)
        team = copies;
    (void)par;
#pragma omp parallel num_threads(team) if (par)
    {
        float *col = sc->p + (size_t)dm_thread_id() * need;
#pragma omp for schedule(dynamic, 1)
        for (int j = 0; j < jobs; j++) {
            int b = j / (tiles * blocks), r = j % (tiles * blocks);
            int i0 = (r / blocks) * T, o0 = (r % blocks) * R;
            int n = s->Lout - i0 < T ? s->Lout - i0 : T;
            int m = s->Cout - o0 < R ? s->Cout - o0 : R;
            conv_tile_forward(out + b * ys, inp + b * xs, w, bias, s, o0, m, i0, n, col);
        }
    }
}

/* One item's input gradient: dx += col2im(w^T (CK, Cout) . dy (Cout, Lout)). */
static void conv_item_backward_input(float *dx, const float *dy, const float *w,
                                     const dm_conv1d_shape *s, float *dcol)
{
    const int CK = s->Cin * s->K;
    if (conv_is_pointwise(s)) {
        dm_sgemm(true, false, CK, s->Lout, s->Cout, 1.0f, w, CK, dy, s->Lout, 1.0f, dx, s->Lout);
    } else {
        dm_sgemm(true, false, CK, s->Lout, s->Cout, 1.0f, w, CK, dy, s->Lout, 0.0f, dcol, s->Lout);
        col2im_add(dx, dcol, s);
    }
}

void dm_conv1d_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, const dm_conv1d_shape *s,
                        const dm_scratch *sc)
{
    const int CK = s->Cin * s->K;
    const size_t xs = (size_t)s->Cin * s->Lin, ys = (size_t)s->Cout * s->Lout;
    /* dw (Cout, CK) += dy (Cout, Lout) . col^T (Lout, CK), items in order */
    if (dw) {
        for (int b = 0; b < s->B; b++) {
            const float *col = inp + b * xs;
            if (!conv_is_pointwise(s)) {
                im2col(sc->p, col, s);
                col = sc->p;
            }
            dm_sgemm(false, true, s->Cout, CK, s->Lout, 1.0f, dout + b * ys, s->Lout, col,
                     s->Lout, 1.0f, dw, CK);
        }
    }
    if (dinp) {
        if (batch_parallel(s, sc)) {
#pragma omp parallel num_threads(team_size(sc))
            {
                float *dcol = sc->p + (size_t)dm_thread_id() * sc->stride;
#pragma omp for schedule(static)
                for (int b = 0; b < s->B; b++)
                    conv_item_backward_input(dinp + b * xs, dout + b * ys, w, s, dcol);
            }
        } else {
            for (int b = 0; b < s->B; b++)
                conv_item_backward_input(dinp + b * xs, dout + b * ys, w, s, sc->p);
        }
    }
    if (dbias) {
#pragma omp parallel for schedule(static) if (dm_par((double)s->B * ys))
        for (int o = 0; o < s->Cout; o++) {
            double sum = 0.0;
            for (int b = 0; b < s->B; b++) {
                const float *dy = dout + ((size_t)b * s->Cout + o) * s->Lout;
                for (int i = 0; i < s->Lout; i++)
                    sum += dy[i];
            }
            dbias[o] += (float)sum;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* GroupNorm                                                                 */
/* ------------------------------------------------------------------------ */

#define DM_GN_EPS 1e-5

/* Mean and 1/std of n values: sums in double over 8 interleaved lanes (in a fixed order, so
 * the loop vectorises and the result does not depend on the machine). */
DM_CLONES static void gn_stats(const float *x, size_t n, float *mean_out, float *rstd_out)
{
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += x[i + j];
    double sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++)
        sum += x[i];
    double mean = sum / (double)n;
    double v[8] = {0};
    for (i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double d = x[i + j] - mean;
            v[j] += d * d;
        }
    double var = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    for (; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    var /= (double)n;
    *mean_out = (float)mean;
    *rstd_out = (float)(1.0 / sqrt(var + DM_GN_EPS));
}

/* One channel of a group: y = (x - m) a + bb, then (when e) y = y * scale + shift, then
 * (when silu) silu(y); the same float operations as the separate layers. */
DM_CLONES static void gn_apply(float *y, const float *x, int L, float m, float a, float bb,
                               int film, float scale, float shift, int silu)
{
    if (!film && !silu) {
#pragma omp simd
        for (int l = 0; l < L; l++)
            y[l] = (x[l] - m) * a + bb;
    } else if (!film) {
#pragma omp simd
        for (int l = 0; l < L; l++)
            y[l] = silu1((x[l] - m) * a + bb);
    } else {
#pragma omp simd
        for (int l = 0; l < L; l++) {
            float v = (x[l] - m) * a + bb;
            v = v * scale + shift;
            y[l] = silu ? silu1(v) : v;
        }
    }
}

static void groupnorm_forward(float *out, float *stats, const float *inp, const float *gamma,
                              const float *beta, const float *e, int silu, int B, int C, int L,
                              int G)
{
    const int cg = C / G;
#pragma omp parallel for schedule(static) if (dm_par(4.0 * B * C * L))
    for (int bg = 0; bg < B * G; bg++) {
        int b = bg / G, g = bg % G;
        const float *x = inp + ((size_t)b * C + (size_t)g * cg) * L;
        float *y = out + ((size_t)b * C + (size_t)g * cg) * L;
        float mean, rstd;
        gn_stats(x, (size_t)cg * L, &mean, &rstd);
        if (stats) {
            stats[2 * bg] = mean;
            stats[2 * bg + 1] = rstd;
        }
        for (int c = 0; c < cg; c++) {
            int ch = g * cg + c;
            float a = rstd * gamma[ch];
            float scale = e ? 1.0f + e[(size_t)b * 2 * C + ch] : 1.0f;
            float shift = e ? e[(size_t)b * 2 * C + C + ch] : 0.0f;
            gn_apply(y + (size_t)c * L, x + (size_t)c * L, L, mean, a, beta[ch], e != NULL,
                     scale, shift, silu);
        }
    }
}

void dm_groupnorm_forward(float *out, float *stats, const float *inp, const float *gamma,
                          const float *beta, int B, int C, int L, int G)
{
    groupnorm_forward(out, stats, inp, gamma, beta, NULL, 0, B, C, L, G);
}

void dm_groupnorm_act_forward(float *out, const float *inp, const float *gamma,
                              const float *beta, const float *e, int silu, int B, int C, int L,
                              int G)
{
    groupnorm_forward(out, NULL, inp, gamma, beta, e, silu, B, C, L, G);
}

void dm_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *stats, const float *gamma,
                           int B, int C, int L, int G)
{
    const int cg = C / G;
    const size_t n = (size_t)cg * L;
    if (dinp) {
        /* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma */
#pragma omp parallel for schedule(static) if (dm_par(8.0 * B * C * L))
        for (int bg = 0; bg < B * G; bg++) {
            int b = bg / G, g = bg % G;
            size_t base = ((size_t)b * C + (size_t)g * cg) * L;
            float mean = stats[2 * bg], rstd = stats[2 * bg + 1];
            double s1 = 0.0, s2 = 0.0;
            for (int c = 0; c < cg; c++) {
                float gm = gamma[g * cg + c];
                for (int l = 0; l < L; l++) {
                    size_t i = base + (size_t)c * L + l;
                    double dxhat = (double)dout[i] * gm;
                    s1 += dxhat;
                    s2 += dxhat * (inp[i] - mean) * rstd;
                }
            }
            float m1 = (float)(s1 / (double)n), m2 = (float)(s2 / (double)n);
            for (int c = 0; c < cg; c++) {
                float gm = gamma[g * cg + c];
                for (int l = 0; l < L; l++) {
                    size_t i = base + (size_t)c * L + l;
                    float xhat = (inp[i] - mean) * rstd;
                    dinp[i] += rstd * (dout[i] * gm - m1 - xhat * m2);
                }
            }
        }
    }
    if (dgamma || dbeta) {
#pragma omp parallel for schedule(static) if (dm_par(4.0 * B * C * L))
        for (int c = 0; c < C; c++) {
            int g = c / cg;
            double sg = 0.0, sb = 0.0;
            for (int b = 0; b < B; b++) {
                float mean = stats[2 * (b * G + g)], rstd = stats[2 * (b * G + g) + 1];
                size_t base = ((size_t)b * C + c) * L;
                for (int l = 0; l < L; l++) {
                    sg += (double)dout[base + l] * ((inp[base + l] - mean) * rstd);
                    sb += dout[base + l];
                }
            }
            if (dgamma)
                dgamma[c] += (float)sg;
            if (dbeta)
                dbeta[c] += (float)sb;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* SiLU                                                                      */
/* ------------------------------------------------------------------------ */

void dm_silu_forward(float *out, const float *inp, size_t n)
{
    const size_t chunks = (n + DM_CHUNK - 1) / DM_CHUNK;
#pragma omp parallel for schedule(static) if (dm_par(4.0 * n))
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * DM_CHUNK;
        silu_chunk(out + i0, inp + i0, n - i0 < DM_CHUNK ? n - i0 : DM_CHUNK);
    }
}

void dm_silu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    const size_t chunks = (n + DM_CHUNK - 1) / DM_CHUNK;
#pragma omp parallel for schedule(static) if (dm_par(4.0 * n))
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * DM_CHUNK;
        silu_backward_chunk(dinp + i0, dout + i0, inp + i0,
                            n - i0 < DM_CHUNK ? n - i0 : DM_CHUNK);
    }
}

/* ------------------------------------------------------------------------ */
/* Linear                                                                    */
/* ------------------------------------------------------------------------ */

/* Rows of w per matrix-vector product: a function of the shape only (never of the thread
 * count), so every output is computed by the same call whichever thread runs it. */
#define DM_LINEAR_ROWS 64

void dm_linear_forward(float *out, const float *inp, const float *w, const float *bias,
                       int B, int IN, int OUT)
{
    /* item by item, so that an item's result does not depend on the batch it is in; each
     * item's rows in blocks spread over the threads */
    const int blocks = (OUT + DM_LINEAR_ROWS - 1) / DM_LINEAR_ROWS;
    for (int b = 0; b < B; b++) {
        float *y = out + (size_t)b * OUT;
        const float *x = inp + (size_t)b * IN;
#pragma omp parallel for schedule(static) if (blocks > 1 && dm_par((double)OUT * IN))
        for (int k = 0; k < blocks; k++) {
            int o0 = k * DM_LINEAR_ROWS, n = OUT - o0 < DM_LINEAR_ROWS ? OUT - o0 : DM_LINEAR_ROWS;
            for (int o = o0; o < o0 + n; o++)
                y[o] = bias ? bias[o] : 0.0f;
            dm_sgemv(n, IN, w + (size_t)o0 * IN, IN, x, y + o0); /* y += w x */
        }
    }
}

void dm_linear_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int B, int IN, int OUT)
{
    if (dinp) /* dinp (B, IN) += dout (B, OUT) . w (OUT, IN) */
        dm_sgemm(false, false, B, IN, OUT, 1.0f, dout, OUT, w, IN, 1.0f, dinp, IN);
    if (dw) /* dw (OUT, IN) += dout^T (OUT, B) . inp (B, IN) */
        dm_sgemm(true, false, OUT, IN, B, 1.0f, dout, OUT, inp, IN, 1.0f, dw, IN);
    if (dbias)
        for (int o = 0; o < OUT; o++) {
            double sum = 0.0;
            for (int b = 0; b < B; b++)
                sum += dout[(size_t)b * OUT + o];
            dbias[o] += (float)sum;
        }
}

/* ------------------------------------------------------------------------ */
/* FiLM (scale-shift conditioning)                                           */
/* ------------------------------------------------------------------------ */

void dm_film_forward(float *out, const float *inp, const float *e, int B, int C, int L)
{
#pragma omp parallel for schedule(static) if (dm_par(2.0 * B * C * L / DM_MEMORY_BOUND))
    for (int bc = 0; bc < B * C; bc++) {
        int b = bc / C, c = bc % C;
        float scale = 1.0f + e[(size_t)b * 2 * C + c], shift = e[(size_t)b * 2 * C + C + c];
        const float *x = inp + (size_t)bc * L;
        float *y = out + (size_t)bc * L;
        for (int l = 0; l < L; l++)
            y[l] = x[l] * scale + shift;
    }
}

void dm_film_backward(float *dinp, float *de, const float *dout, const float *inp,
                      const float *e, int B, int C, int L)
{
#pragma omp parallel for schedule(static) if (dm_par(4.0 * B * C * L))
    for (int bc = 0; bc < B * C; bc++) {
        int b = bc / C, c = bc % C;
        float scale = 1.0f + e[(size_t)b * 2 * C + c];
        const float *x = inp + (size_t)bc * L, *dy = dout + (size_t)bc * L;
        double ds = 0.0, dsh = 0.0;
        for (int l = 0; l < L; l++) {
            if (dinp)
                dinp[(size_t)bc * L + l] += dy[l] * scale;
            ds += (double)dy[l] * x[l];
            dsh += dy[l];
        }
        if (de) {
            de[(size_t)b * 2 * C + c] += (float)ds;
            de[(size_t)b * 2 * C + C + c] += (float)dsh;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Nearest upsampling, concatenation, addition                               */
/* ------------------------------------------------------------------------ */

void dm_upsample_forward(float *out, const float *inp, int B, int C, int L, int f)
{
#pragma omp parallel for schedule(static) if (dm_par((double)B * C * L * f / DM_MEMORY_BOUND))
    for (int bc = 0; bc < B * C; bc++) {
        const float *x = inp + (size_t)bc * L;
        float *y = out + (size_t)bc * L * f;
        for (int l = 0; l < L; l++)
            for (int r = 0; r < f; r++)
                y[(size_t)l * f + r] = x[l];
    }
}

void dm_upsample_backward(float *dinp, const float *dout, int B, int C, int L, int f)
{
#pragma omp parallel for schedule(static) if (dm_par((double)B * C * L * f))
    for (int bc = 0; bc < B * C; bc++) {
        const float *dy = dout + (size_t)bc * L * f;
        float *dx = dinp + (size_t)bc * L;
        for (int l = 0; l < L; l++) {
            float sum = 0.0f;
            for (int r = 0; r < f; r++)
                sum += dy[(size_t)l * f + r];
            dx[l] += sum;
        }
    }
}

void dm_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, int L)
{
    size_t na = (size_t)Ca * L, nb = (size_t)Cb * L;
    for (int i = 0; i < B; i++) {
        memcpy(out + i * (na + nb), a + i * na, na * sizeof(float));
        memcpy(out + i * (na + nb) + na, b + i * nb, nb * sizeof(float));
    }
}

void dm_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, int L)
{
    size_t na = (size_t)Ca * L, nb = (size_t)Cb * L;
    for (int i = 0; i < B; i++) {
        const float *d = dout + i * (na + nb);
        if (da)
            dm_add_backward(da + i * na, NULL, d, na);
        if (db)
            dm_add_backward(db + i * nb, NULL, d + na, nb);
    }
}

void dm_add_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for schedule(static) if (dm_par((double)n / DM_MEMORY_BOUND))
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void dm_add_backward(float *da, float *db, const float *dout, size_t n)
{
#pragma omp parallel for schedule(static) if (dm_par(2.0 * n))
    for (size_t i = 0; i < n; i++) {
        if (da)
            da[i] += dout[i];
        if (db)
            db[i] += dout[i];
    }
}

/* ------------------------------------------------------------------------ */
/* Self-attention over time                                                  */
/* ------------------------------------------------------------------------ */
/* Per (batch, head): q, k, v are (D, L) slices; S = q^T k / sqrt(D) (L, L);
 * P = row-softmax(S); out (D, L) = v P^T. */

/* One row: max and sum over 16 interleaved lanes in a fixed order (vectorises; the
 * result does not depend on the machine). */
DM_CLONES static void softmax_row(float *row, int L)
{
    float m[16];
    int j = 0;
    for (int k = 0; k < 16; k++)
        m[k] = row[0];
    for (; j + 16 <= L; j += 16)
        for (int k = 0; k < 16; k++)
            m[k] = row[j + k] > m[k] ? row[j + k] : m[k];
    float mx = m[0];
    for (int k = 1; k < 16; k++)
        mx = m[k] > mx ? m[k] : mx;
    for (; j < L; j++)
        mx = row[j] > mx ? row[j] : mx;
    float s[16] = {0};
    for (j = 0; j + 16 <= L; j += 16)
        for (int k = 0; k < 16; k++) {
            float v = exp_fast(row[j + k] - mx);
            row[j + k] = v;
            s[k] += v;
        }
    double sum = 0.0;
    for (int k = 0; k < 16; k++)
        sum += s[k];
    for (; j < L; j++) {
        row[j] = exp_fast(row[j] - mx);
        sum += row[j];
    }
    float inv = (float)(1.0 / sum);
    for (j = 0; j < L; j++)
        row[j] *= inv;
}

static void softmax_rows(float *p, int L)
{
#pragma omp parallel for schedule(static) if (dm_par(16.0 * L * L))
    for (int i = 0; i < L; i++)
        softmax_row(p + (size_t)i * L, L);
}

/* One (item, head): p (L, L) = softmax(q^T k * scale); y (D, L) = v p^T, by single-threaded
 * GEMMs: the heads run in parallel, and a head's bits do not depend on the thread count. */
static void attention_head_forward(float *y, float *p, const float *q, int C, int L, int D)
{
    const float *k = q + (size_t)C * L, *v = k + (size_t)C * L;
    const float scale = 1.0f / sqrtf((float)D);
    dm_sgemm_serial(true, false, L, L, D, scale, q, L, k, L, 0.0f, p, L);
    softmax_rows(p, L);
    dm_sgemm_serial(false, true, D, L, L, 1.0f, v, L, p, L, 0.0f, y, L);
}

void dm_attention_forward(float *out, float *probs, const float *qkv, int B, int C, int L, int H)
{
    const int D = C / H;
#pragma omp parallel for schedule(dynamic, 1) if (B * H > 1 && dm_par(4.0 * B * C * L * L))
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        attention_head_forward(out + ((size_t)b * C + (size_t)h * D) * L,
                               probs + (size_t)bh * L * L,
                               qkv + ((size_t)b * 3 * C + (size_t)h * D) * L, C, L, D);
    }
}

void dm_attention_forward_infer(float *out, const dm_scratch *sc, const float *qkv, int B, int C,
                                int L, int H)
{
    const int D = C / H;
    int team = 1;
#ifdef _OPENMP
    team = omp_get_max_threads();
#endif
    if (team > sc->copies)
        team = sc->copies;
#pragma omp parallel num_threads(team) if (B * H > 1 && team > 1 && dm_par(4.0 * B * C * L * L))
    {
        float *p = sc->p + (size_t)dm_thread_id() * sc->stride;
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            attention_head_forward(out + ((size_t)b * C + (size_t)h * D) * L, p,
                                   qkv + ((size_t)b * 3 * C + (size_t)h * D) * L, C, L, D);
        }
    }
}

void dm_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                           int B, int C, int L, int H, float *scratch)
{
    const int D = C / H;
    const float scale = 1.0f / sqrtf((float)D);
    float *ds = scratch;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t qoff = ((size_t)b * 3 * C + (size_t)h * D) * L;
            const float *q = qkv + qoff, *k = q + (size_t)C * L, *v = k + (size_t)C * L;
            float *dq = dqkv + qoff, *dk = dq + (size_t)C * L, *dv = dk + (size_t)C * L;
            const float *p = probs + ((size_t)b * H + h) * L * L;
            const float *dy = dout + ((size_t)b * C + (size_t)h * D) * L;
            /* dv (D, L) += dy (D, L) . P (L, L) */
            dm_sgemm(false, false, D, L, L, 1.0f, dy, L, p, L, 1.0f, dv, L);
            /* dP (L, L) = dy^T (L, D) . v (D, L) */
            dm_sgemm(true, false, L, L, D, 1.0f, dy, L, v, L, 0.0f, ds, L);
            /* dS = P * (dP - rowsum(P * dP)) */
#pragma omp parallel for schedule(static) if (dm_par(4.0 * L * L))
            for (int i = 0; i < L; i++) {
                const float *pr = p + (size_t)i * L;
                float *dr = ds + (size_t)i * L;
                double dot = 0.0;
                for (int j = 0; j < L; j++)
                    dot += (double)pr[j] * dr[j];
                for (int j = 0; j < L; j++)
                    dr[j] = pr[j] * (dr[j] - (float)dot);
            }
            /* dq (D, L) += scale k (D, L) . dS^T;  dk (D, L) += scale q (D, L) . dS */
            dm_sgemm(false, true, D, L, L, scale, k, L, ds, L, 1.0f, dq, L);
            dm_sgemm(false, false, D, L, L, scale, q, L, ds, L, 1.0f, dk, L);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Time and class embeddings                                                 */
/* ------------------------------------------------------------------------ */

void dm_time_embedding_forward(float *out, const float *t, int B, int E0)
{
    const int half = E0 / 2;
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * (double)k / (double)half);
            double a = 1000.0 * (double)t[b] * f;
            out[(size_t)b * E0 + k] = (float)cos(a);
            out[(size_t)b * E0 + half + k] = (float)sin(a);
        }
    }
}

void dm_position_embedding_forward(float *out, int B, int P, int L)
{
    const int half = P / 2;
    for (int k = 0; k < half; k++) {
        double f = exp(-log(10000.0) * (double)k / (double)half);
        float *c = out + (size_t)k * L, *s = out + (size_t)(half + k) * L;
        for (int l = 0; l < L; l++) {
            c[l] = (float)cos((double)l * f);
            s[l] = (float)sin((double)l * f);
        }
    }
    for (int b = 1; b < B; b++)
        memcpy(out + (size_t)b * P * L, out, (size_t)P * L * sizeof *out);
}

void dm_class_embedding_forward(float *out, const float *inp, const float *table,
                                const int *cls, int B, int E)
{
    for (int b = 0; b < B; b++) {
        const float *row = table + (size_t)cls[b] * E;
        for (int e = 0; e < E; e++)
            out[(size_t)b * E + e] = inp[(size_t)b * E + e] + row[e];
    }
}

void dm_class_embedding_backward(float *dinp, float *dtable, const float *dout,
                                 const int *cls, int B, int E)
{
    for (int b = 0; b < B; b++) {
        for (int e = 0; e < E; e++) {
            float d = dout[(size_t)b * E + e];
            if (dinp)
                dinp[(size_t)b * E + e] += d;
            if (dtable)
                dtable[(size_t)cls[b] * E + e] += d;
        }
    }
}
