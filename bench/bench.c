/* make bench: how fast dmaudio runs on this machine, against the machine's peak and against
 * PyTorch running the same network with the same weights (bench/torch_bench.py).
 *
 * One run measures, in order: the peak float32 FMA throughput (1 and N threads); the GEMM
 * backend on the shapes the model's convolutions multiply; every layer type of a U-Net
 * forward pass; whole forward and forward+backward passes (FLOPs counted analytically;
 * backward counted as twice the forward); sampling with each sampler at its default step
 * count; training steps (forward, backward, AdamW, EMA); the peak RSS of `dmaudio sample`
 * and `dmaudio train`; then the PyTorch side. Every time is the median of several runs.
 * Prints a table and writes build/bench.json.
 *
 * Wave and spec models alike: the U-Net rows run in network space (net_channels x
 * net_length: samples for wave, compressed-STFT bins x frames for spec); sampling rows are
 * whole dm_generate calls (spec: the inverse STFT included) and their real-time factor is in
 * audio seconds (length / sample_rate); a training step draws audio from a synthetic dataset
 * (dm_synth_write_dataset at the model's rate and length) and encodes it itself (spec: the
 * STFT included; PyTorch's training row starts from network-space tensors and does not).
 * When the model's classes are not the synthetic data's (click, noise, tone), training runs
 * on a model of the same network and representation with the data's classes, random weights.
 *
 * Environment: BENCH_QUICK=1 (a tiny model and few runs: a smoke test), BENCH_MODEL=file
 * (default models/default.dmm, else a wave stand-in of the training preset "small" written
 * to BENCH_DIR), BENCH_THREADS (default all cores), BENCH_FULL=1 (every sampler at batch 1
 * and 8, with and without guidance; default: the default sampler in all four settings
 * and the others at batch 1 without guidance), BENCH_TORCH=0 (skip PyTorch),
 * BENCH_ONLY=layers,passes (some of peak, load, gemm, layers, passes, sampling, training,
 * memory, torch), BENCH_DIR (build/bench), BENCH_JSON (build/bench.json), PYTHON
 * (/usr/bin/python3), DMAUDIO (build/dmaudio). */
#include "dmaudio.h"
#include "internal.h"
#include "layers.h"
#include "sampler.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

extern char **environ;

/* ------------------------------------------------------------------------ */
/* Settings, results                                                         */
/* ------------------------------------------------------------------------ */

typedef struct settings {
    int quick, full, threads, torch;
    const char *dir, *json, *python, *dmaudio, *model;
} settings;

#define MAX_ROWS 256

typedef struct row {
    char section[24], name[64], unit[16];
    double ours, torch;  /* torch < 0: not measured */
    double frac_peak;    /* GFLOP/s rows: share of the N-thread peak, else < 0 */
    int runs;
    char note[48];
} row;

static row rows[MAX_ROWS];
static int n_rows;
static double peak_n, peak_1;

static row *add_row(const char *section, const char *name, const char *unit, double ours,
                    int runs)
{
    if (n_rows == MAX_ROWS)
        return &rows[MAX_ROWS - 1];
    row *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->section, sizeof r->section, "%s", section);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->ours = ours;
    r->torch = -1.0;
    r->frac_peak = -1.0;
    r->runs = runs;
    return r;
}

static row *gflops_row(const char *section, const char *name, double gflops, int runs)
{
    row *r = add_row(section, name, "GFLOP/s", gflops, runs);
    if (peak_n > 0)
        r->frac_peak = gflops / peak_n;
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what, const dm_error *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err->message : strerror(errno));
    exit(1);
}

static float *alloc_f(size_t n)
{
    float *p = dm_alloc(n, sizeof(float));
    if (!p)
        die("out of memory", NULL);
    return p;
}

/* Runs f up to `max_runs` times (at least `min_runs`), stopping once `budget` seconds have
 * gone; returns the median seconds of one run and the number of runs. */
typedef void (*job_fn)(void *ctx);

static double time_job(job_fn f, void *ctx, int min_runs, int max_runs, double budget, int *runs)
{
    double t[64];
    int n = 0;
    double start = dm_seconds();
    if (max_runs > 64)
        max_runs = 64;
    while (n < max_runs && (n < min_runs || dm_seconds() - start < budget)) {
        double t0 = dm_seconds();
        f(ctx);
        t[n++] = dm_seconds() - t0;
    }
    if (runs)
        *runs = n;
    return median(t, n);
}

/* ------------------------------------------------------------------------ */
/* Peak FMA throughput                                                       */
/* ------------------------------------------------------------------------ */

/* 12 independent accumulators hide the FMA latency on every current core. */
#define FMA12(OP)                                                                              \
    a0 = OP(a0, m, c), a1 = OP(a1, m, c), a2 = OP(a2, m, c), a3 = OP(a3, m, c);                \
    a4 = OP(a4, m, c), a5 = OP(a5, m, c), a6 = OP(a6, m, c), a7 = OP(a7, m, c);                \
    a8 = OP(a8, m, c), a9 = OP(a9, m, c), a10 = OP(a10, m, c), a11 = OP(a11, m, c)

#ifdef BENCH_X86
__attribute__((target("avx512f"))) static float fma_avx512(long iters)
{
    const __m512 m = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f),
           a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f),
           a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f),
           a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        FMA12(_mm512_fmadd_ps);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters)
{
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f),
           a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f),
           a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f),
           a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
    for (long i = 0; i < iters; i++) {
        FMA12(_mm256_fmadd_ps);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
#endif

static float fma_scalar(long iters)
{
    float m = 0.9999999f, c = 1e-7f;
    float a0 = 0, a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6, a7 = 7, a8 = 8, a9 = 9,
          a10 = 10, a11 = 11;
    for (long i = 0; i < iters; i++) {
        FMA12(fmaf);
    }
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
}

typedef struct fma_kernel {
    const char *name;
    float (*fn)(long);
    int lanes;
} fma_kernel;

static volatile float fma_sink;

/* GFLOP/s of `threads` threads each running the kernel for about `seconds`. */
static double fma_gflops(const fma_kernel *k, int threads, double seconds)
{
    long iters = 1 << 16;
    for (;;) { /* calibrate on one thread */
        double t0 = dm_seconds();
        fma_sink = k->fn(iters);
        double dt = dm_seconds() - t0;
        if (dt > 0.02) {
            iters = (long)(iters * seconds / dt) + 1;
            break;
        }
        iters *= 4;
    }
    double t0 = dm_seconds();
#pragma omp parallel num_threads(threads)
    {
        float v = k->fn(iters);
#pragma omp atomic
        fma_sink += v;
    }
    double dt = dm_seconds() - t0;
    return (double)threads * iters * 12.0 * k->lanes * 2.0 / dt * 1e-9;
}

static void bench_peak(const settings *S)
{
    fma_kernel ks[3];
    int nk = 0;
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        ks[nk++] = (fma_kernel){"avx512", fma_avx512, 16};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ks[nk++] = (fma_kernel){"avx2", fma_avx2, 8};
#endif
    if (nk == 0)
        ks[nk++] = (fma_kernel){"scalar", fma_scalar, 1};
    const int reps = S->quick ? 3 : 7;
    const double secs = S->quick ? 0.05 : 0.2;
    const char *best1 = "", *bestn = "";
    for (int i = 0; i < nk; i++) {
        double t1[16], tn[16];
        for (int r = 0; r < reps; r++) {
            t1[r] = fma_gflops(&ks[i], 1, secs);
            tn[r] = fma_gflops(&ks[i], S->threads, secs);
        }
        /* the peak is what the core can do: the best run (the machine may be busy) */
        double m1 = t1[0], mn = tn[0];
        for (int r = 1; r < reps; r++)
            m1 = fmax(m1, t1[r]), mn = fmax(mn, tn[r]);
        if (m1 > peak_1)
            peak_1 = m1, best1 = ks[i].name;
        if (mn > peak_n)
            peak_n = mn, bestn = ks[i].name;
    }
    row *r = add_row("peak", "FMA, 1 thread", "GFLOP/s", peak_1, reps);
    snprintf(r->note, sizeof r->note, "%s", best1);
    char name[64];
    snprintf(name, sizeof name, "FMA, %d threads", S->threads);
    r = add_row("peak", name, "GFLOP/s", peak_n, reps);
    snprintf(r->note, sizeof r->note, "%s", bestn);
    r->frac_peak = 1.0;
}

/* ------------------------------------------------------------------------ */
/* The model                                                                 */
/* ------------------------------------------------------------------------ */

/* The default architecture (the training preset "small") at 22.05 kHz, 16384 samples, 3
 * classes, with random weights: every layer non-trivial. BENCH_QUICK: a tiny one. */
static dm_model *standin_model(const settings *S, char *path, size_t n)
{
    static const char *const names[3] = {"click", "noise", "tone"}; /* as the dataset sorts them */
    dm_model_params p = dm_model_default_params();
    dm_unet_config *u = &p.unet;
    u->n_levels = 3;
    u->channels[0] = S->quick ? 16 : 32, u->channels[1] = S->quick ? 32 : 64;
    u->channels[2] = S->quick ? 64 : 128;
    u->factors[0] = u->factors[1] = 4;
    memset(u->attention, 0, sizeof u->attention);
    u->attention[2] = 1;
    u->blocks = 1, u->groups = 8, u->heads = 4, u->kernel = 5;
    p.sample_rate = 22050;
    p.length = S->quick ? 4096 : 16384;
    p.n_classes = 3;
    p.class_names = names;
    p.name = "bench-standin";
    dm_model *m;
    dm_error err;
    if (dm_model_create(&p, 1, &m, &err) != DM_OK)
        die("stand-in model", &err);
    dm_unet *net = dm_model_unet(m);
    float *w = dm_unet_params(net);
    size_t np = dm_unet_n_params(net);
    float *z = alloc_f(np);
    dm_rng_normal(2, 0, 0, z, np);
    for (size_t i = 0; i < np; i++)
        w[i] += 0.02f * z[i];
    dm_free(z);
    dm_model_update_checksum(m);
    snprintf(path, n, "%s/standin.dmm", S->dir);
    if (dm_model_save(m, path, 0, &err) != DM_OK)
        die("stand-in model", &err);
    return m;
}

/* Loading the model file (what `dmaudio sample` does first). */
typedef struct load_job {
    const char *path;
} load_job;

static void load_run(void *ctx)
{
    load_job *j = ctx;
    dm_model *m;
    dm_error err;
    if (dm_model_load(j->path, &m, &err) != DM_OK)
        die("model", &err);
    dm_model_free(m);
}

static void bench_load(const settings *S, const char *path)
{
    load_job j = {path};
    int n;
    double t = time_job(load_run, &j, S->quick ? 2 : 5, S->quick ? 2 : 9, 5, &n);
    add_row("load", "model load", "ms", 1e3 * t, n);
}

/* ------------------------------------------------------------------------ */
/* GEMM and layers                                                           */
/* ------------------------------------------------------------------------ */

typedef struct gemm_job {
    int M, N, K;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_run(void *ctx)
{
    gemm_job *g = ctx;
    dm_sgemm(false, false, g->M, g->N, g->K, 1.0f, g->A, g->K, g->B, g->N, 0.0f, g->C, g->N);
}

/* One op of the tape, over several profiled passes. */
typedef struct prof_op {
    char kind[16], shape[48];
    double flops, t[32];
} prof_op;

typedef struct profile {
    prof_op *ops;
    int n, cap, run, pos;
} profile;

static void prof_cb(void *user, const char *kind, const char *shape, double flops,
                    double seconds)
{
    profile *p = user;
    if (p->run == 0) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 256;
            p->ops = realloc(p->ops, (size_t)p->cap * sizeof *p->ops);
            if (!p->ops)
                die("out of memory", NULL);
        }
        prof_op *o = &p->ops[p->n++];
        snprintf(o->kind, sizeof o->kind, "%s", kind);
        snprintf(o->shape, sizeof o->shape, "%s", shape);
        o->flops = flops;
    }
    if (p->pos < p->n && p->run < 32)
        p->ops[p->pos].t[p->run] = seconds;
    p->pos++;
}

static void bench_layers(const settings *S, const dm_model *m)
{
    const dm_unet *net = dm_model_unet_const(m);
    dm_model_info in = dm_model_get_info(m);
    /* batch 1: larger batches run whole items per thread, not layer by layer */
    const int C = in.net_channels, L = in.net_length, B = 1;
    const int runs = S->quick ? 2 : 5;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = B, sp.length = L, sp.n_threads = S->threads;
    dm_unet_state *st;
    dm_error err;
    if (dm_unet_state_create(net, &sp, &st, &err) != DM_OK)
        die("state", &err);
    float *x = alloc_f((size_t)B * C * L), *y = alloc_f((size_t)B * C * L);
    dm_rng_normal(3, 0, 0, x, (size_t)B * C * L);
    float t[1] = {0.7f};
    profile p = {0};
    for (p.run = 0; p.run < runs; p.run++) {
        p.pos = 0;
        if (dm_unet_forward_profile(net, st, B, x, t, NULL, y, prof_cb, &p, &err) != DM_OK)
            die("forward", &err);
    }
    /* per layer type: the sum of each op's median time */
    static const char *const kinds[] = {"conv",   "attention", "groupnorm+silu", "groupnorm",
                                        "silu",   "film",      "add",            "concat",
                                        "upsample", "linear",  "positions"};
    enum { NK = sizeof kinds / sizeof kinds[0] };
    double kf[NK], kt[NK], total_t = 0.0;
    for (int k = 0; k < NK; k++) {
        kf[k] = kt[k] = 0.0;
        for (int i = 0; i < p.n; i++)
            if (strcmp(p.ops[i].kind, kinds[k]) == 0)
                kf[k] += p.ops[i].flops, kt[k] += median(p.ops[i].t, runs);
        total_t += kt[k];
    }
    for (int k = 0; k < NK; k++) {
        if (kt[k] <= 0.0 || kf[k] <= 0.0)
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s, batch %d", kinds[k], B);
        row *r = gflops_row("layer", name, kf[k] / kt[k] * 1e-9, runs);
        snprintf(r->note, sizeof r->note, "%.3f s, %.1f%% of the pass", kt[k],
                 100.0 * kt[k] / total_t);
    }
    /* each distinct convolution shape: the layer, then the same product as one GEMM call */
    for (int i = 0; i < p.n; i++) {
        if (strcmp(p.ops[i].kind, "conv") != 0)
            continue;
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(p.ops[j].kind, "conv") == 0 && strcmp(p.ops[j].shape, p.ops[i].shape) == 0;
        if (seen)
            continue;
        double f = 0.0, tt = 0.0;
        for (int j = i; j < p.n; j++)
            if (strcmp(p.ops[j].kind, "conv") == 0 && strcmp(p.ops[j].shape, p.ops[i].shape) == 0)
                f += p.ops[j].flops, tt += median(p.ops[j].t, runs);
        char name[64];
        snprintf(name, sizeof name, "conv %s", p.ops[i].shape);
        gflops_row("conv", name, f / tt * 1e-9, runs);
    }
    free(p.ops);
    dm_unet_state_free(st);
    dm_free(x);
    dm_free(y);
}

typedef struct gemm_shape {
    int M, N, K;
    const char *what;
} gemm_shape;

/* The GEMM backend alone on the convolutions' products: (Cout x Lout x Cin*K) per item,
 * as one dm_sgemm call on all threads. Spec models add the input and output convolutions,
 * whose bin channels (130 at n_fft 128) make them real products; for wave they are not. */
static void bench_gemm(const settings *S, const dm_model *m)
{
    const dm_unet_config *u = dm_unet_get_config(dm_model_unet_const(m));
    dm_model_info in = dm_model_get_info(m);
    gemm_shape shapes[DM_MAX_LEVELS + 8];
    int ns = 0, K = u->kernel, Ls[DM_MAX_LEVELS], attn = -1;
    static char what[DM_MAX_LEVELS][24];
    Ls[0] = in.net_length;
    for (int l = 1; l < u->n_levels; l++)
        Ls[l] = Ls[l - 1] / u->factors[l - 1];
    if (in.repr == DM_REPR_SPEC)
        shapes[ns++] = (gemm_shape){u->channels[0], Ls[0], (u->in_channels + u->positions) * K,
                                    "in conv"};
    for (int l = 0; l < u->n_levels; l++) {
        snprintf(what[l], sizeof what[l], "level %d conv", l);
        shapes[ns++] = (gemm_shape){u->channels[l], Ls[l], u->channels[l] * K, what[l]};
        if (u->attention[l])
            attn = l;
    }
    shapes[ns++] = (gemm_shape){u->channels[0], Ls[0], 2 * u->channels[0] * K, "up0 conv1"};
    if (in.repr == DM_REPR_SPEC)
        shapes[ns++] = (gemm_shape){u->out_channels, Ls[0], u->channels[0] * K, "out conv"};
    if (attn >= 0) /* the deepest level with attention */
        shapes[ns++] = (gemm_shape){3 * u->channels[attn], Ls[attn], u->channels[attn], "qkv 1x1"};
    shapes[ns++] = (gemm_shape){512, 512, 512, "square"};
    const int runs = S->quick ? 3 : 9;
    for (int i = 0; i < ns; i++) {
        gemm_job g = {shapes[i].M, shapes[i].N, shapes[i].K, NULL, NULL, NULL};
        float *A = alloc_f((size_t)g.M * g.K), *Bm = alloc_f((size_t)g.K * g.N);
        g.C = alloc_f((size_t)g.M * g.N);
        dm_rng_normal(4, 0, 0, A, (size_t)g.M * g.K);
        dm_rng_normal(4, 1, 0, Bm, (size_t)g.K * g.N);
        g.A = A, g.B = Bm;
        int prev = dm_threads_begin(S->threads);
        gemm_run(&g);
        int n;
        double t = time_job(gemm_run, &g, runs, runs, 1e9, &n);
        dm_threads_end(prev);
        char name[64];
        snprintf(name, sizeof name, "sgemm %dx%dx%d (%s)", g.M, g.N, g.K, shapes[i].what);
        gflops_row("gemm", name, 2.0 * g.M * g.N * g.K / t * 1e-9, n);
        dm_free(A), dm_free(Bm), dm_free(g.C);
    }
}

/* ------------------------------------------------------------------------ */
/* Whole passes                                                              */
/* ------------------------------------------------------------------------ */

typedef struct pass_job {
    const dm_unet *net;
    dm_unet_state *st;
    int B, backward;
    float *x, *y, *t;
} pass_job;

static void pass_run(void *ctx)
{
    pass_job *j = ctx;
    dm_error err;
    if (dm_unet_forward(j->net, j->st, j->B, j->x, j->t, NULL, j->y, &err) != DM_OK)
        die("forward", &err);
    if (j->backward) {
        dm_unet_state_zero_grads(j->st);
        if (dm_unet_backward(j->net, j->st, j->y, NULL, &err) != DM_OK)
            die("backward", &err);
    }
}

static double time_pass(const settings *S, const dm_model *m, int B, int backward, int threads,
                        int *runs)
{
    const dm_unet *net = dm_model_unet_const(m);
    dm_model_info in = dm_model_get_info(m);
    size_t n = (size_t)B * in.net_channels * in.net_length;
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = B, sp.length = in.net_length, sp.train = backward, sp.n_threads = threads;
    pass_job j = {net, NULL, B, backward, alloc_f(n), alloc_f(n), alloc_f((size_t)B)};
    dm_error err;
    if (dm_unet_state_create(net, &sp, &j.st, &err) != DM_OK)
        die("state", &err);
    dm_rng_normal(5, 0, 0, j.x, n);
    for (int b = 0; b < B; b++)
        j.t[b] = 0.1f + 0.8f * (float)b / (float)B;
    pass_run(&j); /* warm up */
    double t = time_job(pass_run, &j, S->quick ? 2 : 3, S->quick ? 2 : 9, S->quick ? 1 : 15, runs);
    dm_unet_state_free(j.st);
    dm_free(j.x), dm_free(j.y), dm_free(j.t);
    return t;
}

static void bench_passes(const settings *S, const dm_model *m)
{
    dm_model_info in = dm_model_get_info(m);
    const dm_unet *net = dm_model_unet_const(m);
    int batches[2] = {1, 8};
    for (int bi = 0; bi < 2; bi++) {
        int B = batches[bi], n;
        double f = dm_unet_forward_flops(net, B, in.net_length);
        char name[64];
        double t = time_pass(S, m, B, 0, S->threads, &n);
        snprintf(name, sizeof name, "U-Net forward, batch %d", B);
        row *r = gflops_row("unet", name, f / t * 1e-9, n);
        snprintf(r->note, sizeof r->note, "%.3f s a pass", t);
        if (B == 8) {
            double t1 = time_pass(S, m, B, 0, 1, &n);
            snprintf(name, sizeof name, "U-Net forward, batch %d, 1 thread", B);
            r = gflops_row("unet", name, f / t1 * 1e-9, n);
            r->frac_peak = peak_1 > 0 ? f / t1 * 1e-9 / peak_1 : -1.0; /* BENCH_ONLY: maybe none */
            snprintf(r->note, sizeof r->note, "of 1-thread peak; x%.2f on %d", t1 / t,
                     S->threads);
        }
        t = time_pass(S, m, B, 1, S->threads, &n);
        snprintf(name, sizeof name, "U-Net fwd+bwd, batch %d", B);
        r = gflops_row("unet", name, 3.0 * f / t * 1e-9, n);
        snprintf(r->note, sizeof r->note, "%.3f s a pass", t);
    }
}

/* ------------------------------------------------------------------------ */
/* Sampling                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct sample_job {
    dm_generator *g;
    dm_sample_params p;
    int B;
    float *out;
} sample_job;

static void sample_run(void *ctx)
{
    sample_job *j = ctx;
    dm_error err;
    if (dm_generate(j->g, &j->p, j->B, j->out, &err) != DM_OK)
        die("generate", &err);
}

/* Seconds per call of dm_generate at batch B. */
static double time_sampling(const settings *S, const dm_model *m, dm_sampler_kind k, int steps,
                            int B, int guided, int threads, int *runs)
{
    dm_model_info in = dm_model_get_info(m);
    sample_job j;
    dm_error err;
    if (dm_generator_create(m, B, threads, &j.g, &err) != DM_OK)
        die("generator", &err);
    j.p = dm_sample_default_params();
    j.p.sampler = k;
    j.p.steps = steps;
    j.p.seed = 1;
    j.p.cls = guided ? 0 : -1;
    j.B = B;
    j.out = alloc_f((size_t)B * in.audio_channels * in.length);
    double t = time_job(sample_run, &j, S->quick ? 1 : 3, S->quick ? 1 : 7, S->quick ? 0 : 15, runs);
    dm_generator_free(j.g);
    dm_free(j.out);
    return t;
}

static void bench_sampling(const settings *S, const dm_model *m)
{
    dm_model_info in = dm_model_get_info(m);
    const double clip_s = (double)in.length / in.sample_rate;
    for (int k = 0; k < DM_SAMPLER_COUNT; k++) {
        for (int bi = 0; bi < 2; bi++) {
            for (int guided = 0; guided < 2; guided++) {
                int B = bi ? 8 : 1;
                int is_default = k == DM_SAMPLER_DPMPP_2M;
                if (!S->full && !is_default && (B != 1 || guided))
                    continue;
                if (guided && in.n_classes == 0)
                    continue;
                int steps = S->quick ? 2 : dm_sampler_default_steps((dm_sampler_kind)k);
                int n;
                double t = time_sampling(S, m, (dm_sampler_kind)k, steps, B, guided, S->threads, &n);
                char name[64];
                snprintf(name, sizeof name, "%s %d steps, batch %d%s",
                         dm_sampler_name((dm_sampler_kind)k), steps, B, guided ? ", guided" : "");
                row *r = add_row("sample", name, "clips/s", B / t, n);
                snprintf(r->note, sizeof r->note, "%.3f s/clip, RTF %.2f", t / B, clip_s * B / t);
            }
        }
    }
    /* thread scaling at batch 8: a few steps of the default sampler, 1 thread vs all */
    int steps = S->quick ? 1 : 3, n1, n2;
    double t1 = time_sampling(S, m, DM_SAMPLER_DPMPP_2M, steps, 8, 0, 1, &n1);
    double tn = time_sampling(S, m, DM_SAMPLER_DPMPP_2M, steps, 8, 0, S->threads, &n2);
    char name[64];
    snprintf(name, sizeof name, "thread scaling 1 -> %d, batch 8", S->threads);
    row *r = add_row("sample", name, "x", t1 / tn, n1 < n2 ? n1 : n2);
    snprintf(r->note, sizeof r->note, "dpmpp-2m %d steps: %.2f s vs %.2f s", steps, t1, tn);
}

/* ------------------------------------------------------------------------ */
/* Training                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct train_job {
    dm_trainer *t;
    const dm_dataset *ds;
} train_job;

static void train_run(void *ctx)
{
    train_job *j = ctx;
    dm_error err;
    if (dm_trainer_step(j->t, j->ds, NULL, &err) != DM_OK)
        die("training step", &err);
}

/* The model the training rows train: m itself when its classes are the dataset's, else
 * (the bundled model's drum classes, say) one of the same network, representation and
 * schedule with the dataset's classes and random weights: the class table is the only
 * difference, (classes + 1) x embedding floats, nothing a step's time notices. */
static dm_model *training_model(const dm_model *m, const dm_dataset *ds)
{
    dm_model_info in = dm_model_get_info(m);
    int nc = dm_dataset_n_classes(ds), same = nc == in.n_classes;
    for (int c = 0; same && c < nc; c++)
        same = strcmp(dm_dataset_class_name(ds, c), dm_model_class_name(m, c)) == 0;
    if (same)
        return NULL;
    const char *names[DM_DATASET_MAX_CLASSES];
    for (int c = 0; c < nc; c++)
        names[c] = dm_dataset_class_name(ds, c);
    dm_model_params p = dm_model_default_params();
    p.unet = *dm_unet_get_config(dm_model_unet_const(m));
    p.repr = in.repr, p.sample_rate = in.sample_rate, p.audio_channels = in.audio_channels;
    p.length = in.length, p.n_fft = in.n_fft, p.hop = in.hop, p.schedule = in.schedule;
    p.schedule_shift = in.schedule_shift, p.timesteps = in.timesteps;
    p.prediction = in.prediction, p.data_scale = in.data_scale;
    p.n_classes = nc, p.class_names = nc ? names : NULL, p.name = "bench-train";
    dm_model *t;
    dm_error err;
    if (dm_model_create(&p, 1, &t, &err) != DM_OK)
        die("training model", &err);
    fprintf(stderr, "bench: training: the model has %d classes, the synthetic data %d: the "
                    "rows train the same network with the data's classes\n",
            in.n_classes, nc);
    return t;
}

/* Spec models: each step encodes its batch (STFT and compression) before the network,
 * as `dmaudio train` does; PyTorch's training row starts from network-space tensors. */
static void bench_training(const settings *S, const dm_model *m, const char *data)
{
    dm_model_info in = dm_model_get_info(m);
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = in.sample_rate, dp.length = in.length;
    dm_dataset *ds;
    dm_error err;
    if (dm_dataset_load(data, &dp, &ds, &err) != DM_OK)
        die("dataset", &err);
    dm_model *own = training_model(m, ds);
    int batches[2] = {1, 8};
    for (int bi = 0; bi < 2; bi++) {
        dm_train_params tp = dm_train_default_params();
        tp.batch = batches[bi];
        tp.n_threads = S->threads;
        train_job j = {NULL, ds};
        if (dm_trainer_create(own ? own : m, &tp, &j.t, &err) != DM_OK)
            die("trainer", &err);
        train_run(&j); /* warm up */
        int n;
        double t = time_job(train_run, &j, S->quick ? 1 : 3, S->quick ? 2 : 7, S->quick ? 0 : 20, &n);
        char name[64];
        snprintf(name, sizeof name, "training step, batch %d", tp.batch);
        row *r = add_row("train", name, "samples/s", tp.batch / t, n);
        snprintf(r->note, sizeof r->note, "%.3f s a step%s%s", t,
                 in.repr == DM_REPR_SPEC ? ", STFT incl." : "", own ? ", data's classes" : "");
        dm_trainer_free(j.t);
    }
    dm_model_free(own);
    dm_dataset_free(ds);
}

/* ------------------------------------------------------------------------ */
/* Peak memory of the command                                                */
/* ------------------------------------------------------------------------ */

/* A child's peak RSS (ru_maxrss) starts from its parent's RSS at fork or vfork (Linux
 * carries it over exec), so the command runs under a fresh, small copy of this program:
 * `bench --rss FILE CMD...` runs CMD and writes its peak RSS in kB to FILE. */
static int rss_helper(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    pid_t pid;
    if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0)
        return 1;
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    FILE *f = fopen(argv[2], "w");
    if (!f)
        return 1;
    fprintf(f, "%ld\n", ru.ru_maxrss);
    return fclose(f) != 0;
}

static const char *self_path;

/* Runs argv, returns its peak RSS in MB (or -1). */
static double child_rss_mb(const settings *S, char *const argv[])
{
    char file[512], *args[64];
    snprintf(file, sizeof file, "%s/rss.txt", S->dir);
    int n = 0;
    args[n++] = (char *)self_path, args[n++] = "--rss", args[n++] = file;
    for (int i = 0; argv[i] && n < 63; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    pid_t pid;
    int status;
    long kb = -1;
    if (posix_spawn(&pid, self_path, NULL, NULL, args, environ) != 0 ||
        waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench: %s %s failed\n", argv[0], argv[1]);
        return -1.0;
    }
    FILE *f = fopen(file, "r");
    if (!f || fscanf(f, "%ld", &kb) != 1)
        kb = -1;
    if (f)
        fclose(f);
    return kb < 0 ? -1.0 : kb / 1024.0;
}

static void bench_rss(const settings *S, const dm_model *m, const char *model_path,
                      const char *data)
{
    char out[512], tout[512], cls[64];
    snprintf(out, sizeof out, "%s/rss.wav", S->dir);
    snprintf(tout, sizeof tout, "%s/rss-train.dmm", S->dir);
    dm_model_info in = dm_model_get_info(m);
    snprintf(cls, sizeof cls, "%s", in.n_classes ? dm_model_class_name(m, 0) : "");
    char *a1[] = {(char *)S->dmaudio, "sample", "-m", (char *)model_path, "-o", out, "--seed",
                  "1", "--force", "--quiet", "--steps", S->quick ? "2" : "25", NULL};
    row *r = add_row("memory", "peak RSS, dmaudio sample", "MB", child_rss_mb(S, a1), 1);
    snprintf(r->note, sizeof r->note, "batch 1, no class");
    if (in.n_classes) {
        char *a2[] = {(char *)S->dmaudio, "sample", "-m", (char *)model_path, "-o", out,
                      "--seed", "1", "--force", "--quiet", "--class", cls, "--steps",
                      S->quick ? "2" : "25", NULL};
        r = add_row("memory", "peak RSS, dmaudio sample --class", "MB", child_rss_mb(S, a2), 1);
        snprintf(r->note, sizeof r->note, "batch 1, guided (2 items a pass)");
    }
    const dm_unet_config *u = dm_unet_get_config(dm_model_unet_const(m));
    char ch[64] = "", fa[64] = "", at[64] = "", rate[16], len[16], gr[16], he[16], ke[16], bl[16];
    for (int l = 0; l < u->n_levels; l++) {
        snprintf(ch + strlen(ch), sizeof ch - strlen(ch), "%s%d", l ? "," : "", u->channels[l]);
        if (l + 1 < u->n_levels)
            snprintf(fa + strlen(fa), sizeof fa - strlen(fa), "%s%d", l ? "," : "", u->factors[l]);
        if (u->attention[l])
            snprintf(at + strlen(at), sizeof at - strlen(at), "%s%d", *at ? "," : "", l);
    }
    snprintf(rate, sizeof rate, "%d", in.sample_rate);
    snprintf(len, sizeof len, "%d", in.length);
    snprintf(gr, sizeof gr, "%d", u->groups);
    snprintf(he, sizeof he, "%d", u->heads);
    snprintf(ke, sizeof ke, "%d", u->kernel);
    snprintf(bl, sizeof bl, "%d", u->blocks);
    /* the same network and representation (the classes are the data's) */
    char *a3[64] = {(char *)S->dmaudio, "train", (char *)data, "-o", tout, "--channels", ch,
                    "--factors", fa, "--attention", at, "--groups", gr, "--heads", he,
                    "--kernel", ke, "--blocks", bl, "--rate", rate, "--length", len,
                    "--repr", (char *)dm_repr_name(in.repr), "--steps", "2", "--batch", "8",
                    "--force", "--quiet", NULL};
    int na = 0;
    while (a3[na])
        na++;
    char nfft[16], hop[16], pos[16], shift[32];
    if (in.repr == DM_REPR_SPEC) {
        snprintf(nfft, sizeof nfft, "%d", in.n_fft);
        snprintf(hop, sizeof hop, "%d", in.hop);
        a3[na++] = "--n-fft", a3[na++] = nfft, a3[na++] = "--hop", a3[na++] = hop;
    }
    if (u->positions) {
        snprintf(pos, sizeof pos, "%d", u->positions);
        a3[na++] = "--positions", a3[na++] = pos;
    }
    if (in.schedule_shift != 1.0) {
        snprintf(shift, sizeof shift, "%.17g", in.schedule_shift);
        a3[na++] = "--schedule-shift", a3[na++] = shift;
    }
    a3[na] = NULL;
    r = add_row("memory", "peak RSS, dmaudio train", "MB", child_rss_mb(S, a3), 1);
    snprintf(r->note, sizeof r->note, "batch 8");
}

/* ------------------------------------------------------------------------ */
/* PyTorch                                                                   */
/* ------------------------------------------------------------------------ */

static void write_f32(const settings *S, const char *name, const float *v, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.f32", S->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0)
        die(path, NULL);
}

/* What the PyTorch side checks its outputs against: a forward pass at batch 2 and a guided
 * DPM-Solver++(2M) run at batch 1 (initial noise, noise levels and times, our result). The
 * run is dm_generate's, so its result is audio (audio_channels, length): the PyTorch side
 * decodes its own network-space result with the representation written here (wave: / the
 * data scale; spec: the compression inverted, then torch.istft). The noise levels and times
 * come from the model's schedule, its shift included. */
static void write_reference(const settings *S, const dm_model *m, const char *model_path)
{
    dm_model_info in = dm_model_get_info(m);
    const dm_unet *net = dm_model_unet_const(m);
    const int C = in.net_channels, L = in.net_length;
    const size_t n = (size_t)C * L;
    dm_error err;
    /* forward */
    dm_unet_state_params sp = dm_unet_state_default_params();
    sp.max_batch = 2, sp.length = L, sp.n_threads = S->threads;
    dm_unet_state *st;
    if (dm_unet_state_create(net, &sp, &st, &err) != DM_OK)
        die("state", &err);
    float *x = alloc_f(2 * n), *y = alloc_f(2 * n), t[2] = {0.3f, 0.85f};
    int cls[2] = {in.n_classes ? 1 : 0, in.n_classes};
    dm_rng_normal(11, 0, 0, x, 2 * n);
    if (dm_unet_forward(net, st, 2, x, t, cls, y, &err) != DM_OK)
        die("forward", &err);
    write_f32(S, "fwd_x", x, 2 * n);
    write_f32(S, "fwd_y", y, 2 * n);
    dm_unet_state_free(st);
    /* sampling */
    dm_generator *g;
    if (dm_generator_create(m, 1, S->threads, &g, &err) != DM_OK)
        die("generator", &err);
    dm_sample_params p = dm_sample_default_params();
    p.seed = 5;
    p.cls = in.n_classes ? 0 : -1;
    int steps = S->quick ? 2 : dm_sampler_default_steps(DM_SAMPLER_DPMPP_2M);
    p.steps = steps;
    const size_t na = (size_t)in.audio_channels * in.length;
    float *noise = alloc_f(n), *audio = alloc_f(na);
    dm_generator_noise(g, p.seed, noise, &err);
    if (dm_generate(g, &p, 1, audio, &err) != DM_OK)
        die("generate", &err);
    write_f32(S, "smp_noise", noise, n);
    write_f32(S, "smp_out", audio, na);
    dm_generator_free(g);
    /* the noise levels and the times the network sees */
    dm_loop_params lp;
    memset(&lp, 0, sizeof lp);
    lp.sampler = DM_SAMPLER_DPMPP_2M, lp.steps = steps, lp.rho = 7.0, lp.strength = 1.0;
    double sig[DM_MAX_TIMESTEPS + 1];
    int ns = dm_loop_sigmas(dm_model_schedule(m), &lp, sig);
    char path[512];
    snprintf(path, sizeof path, "%s/reference.txt", S->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, NULL);
    fprintf(f, "model %s\nthreads %d\nquick %d\nchannels %d\nlength %d\nclasses %d\n", model_path,
            S->threads, S->quick, C, L, in.n_classes);
    fprintf(f, "repr %s\naudio_channels %d\naudio_length %d\nn_fft %d\nhop %d\n"
               "data_scale %.17g\ncompression %.17g\n",
            dm_repr_name(in.repr), in.audio_channels, in.length, in.n_fft, in.hop, in.data_scale,
            DM_SPEC_COMPRESSION);
    fprintf(f, "flops_b1 %.17g\n", dm_unet_forward_flops(net, 1, L));
    fprintf(f, "fwd_t %.9g %.9g\nfwd_cls %d %d\n", t[0], t[1], cls[0], cls[1]);
    fprintf(f, "smp_cls %d\nsmp_guidance %.17g\nprediction %s\n", p.cls, p.guidance,
            dm_prediction_name(in.prediction));
    fprintf(f, "sigmas");
    for (int k = 0; k <= ns; k++)
        fprintf(f, " %.17g", sig[k]);
    fprintf(f, "\nus");
    for (int k = 0; k < ns; k++)
        fprintf(f, " %.17g", dm_schedule_u_from_sigma(dm_model_schedule(m), sig[k]));
    fprintf(f, "\n");
    if (fclose(f) != 0)
        die(path, NULL);
    dm_free(x), dm_free(y), dm_free(noise), dm_free(audio);
}

/* Runs the PyTorch side under one OpenMP wait policy; reads its "key value" lines into the
 * rows of the same key, keeping the better of this run's figure and an earlier one (the
 * larger throughput; for the output checks, the larger error). */
static int run_torch_once(const settings *S, const char *policy, int first)
{
    char cmd[1024], path[512];
    snprintf(path, sizeof path, "%s/torch.txt", S->dir);
    remove(path);
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=%s %s bench/torch_bench.py --dir %s --threads %d%s%s",
             policy, S->python, S->dir, S->threads, S->quick ? " --quick" : "",
             S->full ? " --full" : "");
    fprintf(stderr, "bench: %s\n", cmd);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "bench: the PyTorch side failed (exit %d); its rows are left empty\n", rc);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char key[128];
        double v;
        if (sscanf(line, "%127[^\t]\t%lf", key, &v) != 2)
            continue;
        for (int i = 0; i < n_rows; i++)
            if (strcmp(rows[i].name, key) == 0 && strcmp(rows[i].section, "torch") != 0 &&
                v > rows[i].torch)
                rows[i].torch = v;
        int check = strncmp(key, "check ", 6) == 0, info = strncmp(key, "info ", 5) == 0;
        if (!first && check) {
            for (int i = 0; i < n_rows; i++)
                if (strcmp(rows[i].section, "torch") == 0 && strcmp(rows[i].name, key) == 0 &&
                    v > rows[i].ours)
                    rows[i].ours = v;
        } else if (first && (check || info)) {
            row *r = add_row("torch", key, "", v, 1);
            char *tab2 = strchr(strchr(line, '\t') + 1, '\t');
            if (tab2) {
                tab2[strcspn(tab2, "\n")] = 0;
                snprintf(r->note, sizeof r->note, "%s", tab2 + 1);
            }
        }
    }
    fclose(f);
    return 0;
}

/* PyTorch's threads are erratic on this machine: one row may halve between runs, and which
 * OpenMP wait policy suits it changes from row to row. It runs twice, with threads that
 * sleep and with threads that spin while they wait, and every row keeps its better figure:
 * the best of its options, whichever they are. */
static int run_torch(const settings *S)
{
    if (run_torch_once(S, "passive", 1) != 0)
        return -1;
    return S->quick ? 0 : run_torch_once(S, "active", 0);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_and_save(const settings *S, const dm_model *m, const char *model_path,
                           double seconds)
{
    dm_model_info in = dm_model_get_info(m);
    char repr[64];
    if (in.repr == DM_REPR_SPEC)
        snprintf(repr, sizeof repr, "spec n_fft %d hop %d", in.n_fft, in.hop);
    else
        snprintf(repr, sizeof repr, "%s", dm_repr_name(in.repr));
    printf("\ndmaudio bench: %d threads, model %s (%s, %zu parameters, network %d x %d, %.3f s "
           "clips at %d Hz), %s\n",
           S->threads, model_path, repr, in.n_params, in.net_channels, in.net_length,
           (double)in.length / in.sample_rate, in.sample_rate, S->quick ? "QUICK" : "full");
    printf("medians of the runs shown; ratio = ours / PyTorch in throughput (> 1: we are "
           "faster)\n\n");
    printf("%-8s %-46s %12s %-9s %7s %12s %7s  %s\n", "section", "row", "ours", "unit", "%peak",
           "PyTorch", "ratio", "runs, note");
    const char *sec = "";
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        if (strcmp(sec, r->section) != 0 && i)
            printf("\n");
        sec = r->section;
        char peak[16] = "", torch[16] = "", ratio[16] = "";
        if (r->frac_peak >= 0)
            snprintf(peak, sizeof peak, "%.1f%%", 100.0 * r->frac_peak);
        if (r->torch > 0) {
            snprintf(torch, sizeof torch, "%.4g", r->torch);
            snprintf(ratio, sizeof ratio, "%.2f", r->ours / r->torch);
        }
        printf("%-8s %-46s %12.4g %-9s %7s %12s %7s  %d, %s\n", r->section, r->name, r->ours,
               r->unit, peak, torch, ratio, r->runs, r->note);
    }
    printf("\nbench: %.0f s in all; JSON in %s\n", seconds, S->json);
    FILE *f = fopen(S->json, "w");
    if (!f)
        die(S->json, NULL);
    fprintf(f, "{\n  \"threads\": %d,\n  \"quick\": %d,\n  \"model\": ", S->threads, S->quick);
    json_str(f, model_path);
    fprintf(f, ",\n  \"repr\": ");
    json_str(f, dm_repr_name(in.repr));
    fprintf(f, ",\n  \"net_channels\": %d,\n  \"net_length\": %d", in.net_channels,
            in.net_length);
    fprintf(f, ",\n  \"n_params\": %zu,\n  \"peak_gflops_1\": %.6g,\n  \"peak_gflops_n\": %.6g,\n"
               "  \"seconds\": %.1f,\n  \"rows\": [\n",
            in.n_params, peak_1, peak_n, seconds);
    for (int i = 0; i < n_rows; i++) {
        const row *r = &rows[i];
        fprintf(f, "    {\"section\": ");
        json_str(f, r->section);
        fprintf(f, ", \"name\": ");
        json_str(f, r->name);
        fprintf(f, ", \"unit\": ");
        json_str(f, r->unit);
        fprintf(f, ", \"ours\": %.6g, \"runs\": %d", r->ours, r->runs);
        if (r->frac_peak >= 0)
            fprintf(f, ", \"fraction_of_peak\": %.4f", r->frac_peak);
        if (r->torch > 0)
            fprintf(f, ", \"pytorch\": %.6g, \"ratio\": %.4f", r->torch, r->ours / r->torch);
        fprintf(f, ", \"note\": ");
        json_str(f, r->note);
        fprintf(f, "}%s\n", i + 1 < n_rows ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0)
        die(S->json, NULL);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--rss") == 0)
        return rss_helper(argc, argv);
    self_path = "/proc/self/exe";
    static char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        self_path = exe;
    }
    settings S;
    memset(&S, 0, sizeof S);
    S.quick = atoi(env_or("BENCH_QUICK", "0")) != 0;
    S.full = atoi(env_or("BENCH_FULL", "0")) != 0;
    S.threads = atoi(env_or("BENCH_THREADS", "0"));
    if (S.threads <= 0)
        S.threads = dm_cpu_count();
    S.torch = atoi(env_or("BENCH_TORCH", "1")) != 0;
    S.dir = env_or("BENCH_DIR", "build/bench");
    S.json = env_or("BENCH_JSON", "build/bench.json");
    S.python = env_or("PYTHON", "/usr/bin/python3");
    S.dmaudio = env_or("DMAUDIO", "build/dmaudio");
    mkdir(S.dir, 0777);
    double start = dm_seconds();

    char model_path[512];
    dm_model *m = NULL;
    dm_error err;
    const char *given = getenv("BENCH_MODEL");
    struct stat sb;
    if (given && *given) {
        snprintf(model_path, sizeof model_path, "%s", given);
    } else if (!S.quick && stat("models/default.dmm", &sb) == 0) {
        snprintf(model_path, sizeof model_path, "models/default.dmm");
        given = model_path;
    }
    if (given) {
        if (dm_model_load(model_path, &m, &err) != DM_OK)
            die("model", &err);
    } else {
        m = standin_model(&S, model_path, sizeof model_path);
    }
    dm_model_info in = dm_model_get_info(m);
    char data[512];
    snprintf(data, sizeof data, "%s/data", S.dir);
    if (dm_synth_write_dataset(data, 4, 1, in.sample_rate, in.length, &err) != DM_OK)
        die("dataset", &err);
    fprintf(stderr, "bench: model %s, %d threads%s\n", model_path, S.threads,
            S.quick ? " (quick)" : "");

    const char *only = getenv("BENCH_ONLY");
#define PART(name) (!only || !*only || strstr(only, name))
    if (PART("peak")) {
        fprintf(stderr, "bench: peak FMA\n");
        bench_peak(&S);
    }
    if (PART("load")) {
        fprintf(stderr, "bench: model load\n");
        bench_load(&S, model_path);
    }
    if (PART("gemm")) {
        fprintf(stderr, "bench: GEMM\n");
        bench_gemm(&S, m);
    }
    if (PART("layers")) {
        fprintf(stderr, "bench: layers\n");
        bench_layers(&S, m);
    }
    if (PART("passes")) {
        fprintf(stderr, "bench: U-Net passes\n");
        bench_passes(&S, m);
    }
    if (PART("sampling")) {
        fprintf(stderr, "bench: sampling\n");
        bench_sampling(&S, m);
    }
    if (PART("training")) {
        fprintf(stderr, "bench: training\n");
        bench_training(&S, m, data);
    }
    if (PART("memory")) {
        fprintf(stderr, "bench: peak memory\n");
        bench_rss(&S, m, model_path, data);
    }
#undef PART
    if (S.torch && (!only || !*only || strstr(only, "torch"))) {
        write_reference(&S, m, model_path);
        run_torch(&S);
    }
    print_and_save(&S, m, model_path, dm_seconds() - start);
    dm_model_free(m);
    return 0;
}
