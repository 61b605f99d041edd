/* dmaudio eval: how close generated sounds are to real ones, and how likely a model finds
 * real sounds.
 *
 *   eval GEN_DIR REF_DIR: both folders are loaded mono at one rate, every clip is embedded
 *   (dm_embed_clips: statistics of FFTW log-mel, MFCC and spectral-shape features), and the two
 *   sets of embeddings are compared: Fréchet distance of Gaussian fits, KID (unbiased MMD^2,
 *   cubic kernel) over random subsets with its standard error, and a memorisation check
 *   (nearest-neighbour distances from GEN to REF against REF's own leave-one-out ones). When
 *   both folders have class sub-folders, the same figures per class of the same name, and a
 *   classification check: a 5-nearest-neighbour classifier fitted on REF's labelled clips
 *   (embeddings standardised by REF's mean and deviation per dimension) names the class of
 *   each GEN clip; the share named as the folder it is in, per class and overall.
 *
 *   eval --elbo MODEL DATA_DIR: the variational bound of the model on the clips of DATA_DIR
 *   (dm_model_elbo), in bits per sample, with its standard error; per class too. */
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char dm_eval_usage[] =
    "usage: dmaudio eval GEN_DIR REF_DIR [OPTIONS]\n"
    "       dmaudio eval --elbo MODEL DATA_DIR [OPTIONS]\n"
    "       dmaudio eval --elbo [-m MODEL] DATA_DIR [OPTIONS]\n"
    "\n"
    "Compares generated sounds (GEN_DIR) with reference sounds (REF_DIR), both read mono\n"
    "at one rate and embedded by FFTW features (log-mel, MFCC, spectral shape):\n"
    "  frechet_distance  between Gaussian fits of the two sets (0 for identical sets)\n"
    "  kid               kernel inception distance (unbiased MMD^2, cubic kernel, on\n"
    "                    features standardised by all of REF's clips), mean\n"
    "                    and standard error over random subsets (about 0 for one\n"
    "                    distribution; may be slightly negative)\n"
    "  memorisation      median distance from each GEN clip to its nearest REF clip, next\n"
    "                    to the median distance of each REF clip to its nearest other REF\n"
    "                    clip; and the share of GEN clips closer to a REF clip than 95% of\n"
    "                    REF clips are to each other (about 5% when GEN does not copy REF;\n"
    "                    far more means near-copies of the reference)\n"
    "With class sub-folders of the same names in both folders, per class too, and\n"
    "  classified        the share of GEN clips that a 5-nearest-neighbour classifier\n"
    "                    fitted on REF's clips puts in their own folder's class\n"
    "\n"
    "With --elbo: the variational bound (Ho et al. 2020, Eq. 5) of MODEL on the clips of\n"
    "DATA_DIR (read at the model's rate and channels, the first clip length of each file;\n"
    "classes matched by name), in bits per sample at --bits quantisation, with its\n"
    "standard error. Lower is better; compare models on the same data, bits and seed.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -r, --rate HZ         analysis rate [the rate of GEN_DIR's first file]\n"
    "      --subsets N       KID subsets [100]\n"
    "      --subset-size N   clips per KID subset [min(1000, clips in each set)]\n"
    "      --elbo            the variational bound of a model (see above)\n"
    "  -m, --model FILE      --elbo: the model, instead of the MODEL argument\n"
    "                        [$DMAUDIO_MODEL, else the bundled model]\n"
    "      --timesteps N     --elbo: diffusion terms per clip, 0 = all (exact sum) [50]\n"
    "      --bits N          --elbo: quantisation of the audio, 1..24 [16]\n"
    "  -s, --seed S          KID subsets; --elbo noise and timesteps [0]\n"
    "  -t, --threads N       threads, 0 = all cores [0]\n"
    "      --json            one JSON object on stdout instead of text\n"
    "  -q, --quiet           no progress bar\n"
    "  -h, --help            show this help";

enum { OPT_SUBSETS = 256, OPT_SUBSET_SIZE, OPT_ELBO, OPT_TIMESTEPS, OPT_BITS, OPT_JSON };

typedef struct eval_opts {
    int rate, subsets, subset_size, elbo, timesteps, bits, threads, json, quiet;
    uint64_t seed;
} eval_opts;

/* ---- loading ---- */

static int on_file(int done, int total, const char *path, void *user_data)
{
    (void)path;
    dm_cli_progress_update(user_data, done, total);
    return 0;
}

static dm_dataset *load(const eval_opts *o, const char *dir, int rate, int channels, int length,
                        const char *label)
{
    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = rate;
    dp.channels = channels;
    dp.length = length;
    dm_cli_progress bar;
    dm_cli_progress_begin(&bar, label, o->quiet);
    dp.progress = on_file;
    dp.user_data = &bar;
    dm_dataset *ds;
    dm_error err;
    dm_status st = dm_dataset_load(dir, &dp, &ds, &err);
    dm_cli_progress_end(&bar);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return NULL;
    }
    return ds;
}

/* The rate of the first file of dir (in dataset order). */
static int first_rate(const char *dir, int *rate)
{
    dm_dataset_params dp = dm_dataset_default_params();
    dp.scan_only = 1;
    dm_dataset *ds;
    dm_error err;
    if (dm_dataset_load(dir, &dp, &ds, &err) != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return -1;
    }
    dm_audio_file_info fi;
    dm_status st = dm_audio_probe(dm_dataset_path(ds, 0), &fi, &err);
    dm_dataset_free(ds);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return -1;
    }
    if (fi.rate < 1000 || fi.rate > 768000) {
        fprintf(stderr, "dmaudio eval: %s: %d Hz cannot be analysed (1000..768000; pass --rate)\n",
                dir, fi.rate);
        return -1;
    }
    *rate = fi.rate;
    return 0;
}

/* ---- statistics ---- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of n sorted values, interpolating linearly (numpy's default). */
static double quantile(const float *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1)
        return sorted[n - 1];
    return sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]);
}

typedef struct set_figures {
    int n_gen, n_ref;
    double fd, kid, kid_se;
    int subsets, subset_size;
    double gen_nn, ref_nn, ref_p5, closer;   /* memorisation */
} set_figures;

/* sr, sg = ref, gen with each feature shifted by ref's mean and divided by ref's standard
 * deviation, floored at 5% of the features' average deviation: a feature nearly constant over
 * ref would otherwise turn its smallest difference into the largest distance. */
static void standardise(const float *ref, int n_ref, const float *gen, int n_gen, float *sr,
                        float *sg)
{
    const int d = DM_EMBED_DIM;
    double mean[DM_EMBED_DIM], sd[DM_EMBED_DIM], avg = 0;
    for (int j = 0; j < d; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < n_ref; i++)
            m += ref[(size_t)i * d + j];
        m /= n_ref;
        for (int i = 0; i < n_ref; i++) {
            double e = ref[(size_t)i * d + j] - m;
            v += e * e;
        }
        mean[j] = m, sd[j] = sqrt(v / n_ref), avg += sd[j] / d;
    }
    for (int j = 0; j < d; j++) {
        const double s = sd[j] > 0.05 * avg ? sd[j] : 0.05 * avg;
        const double inv = s > 0 ? 1.0 / s : 0.0;
        for (int i = 0; i < n_ref; i++)
            sr[(size_t)i * d + j] = (float)((ref[(size_t)i * d + j] - mean[j]) * inv);
        for (int i = 0; i < n_gen; i++)
            sg[(size_t)i * d + j] = (float)((gen[(size_t)i * d + j] - mean[j]) * inv);
    }
}

/* The figures for gen (n_gen rows) against ref (n_ref rows) of d-dim embeddings. */
static int compare(const eval_opts *o, const float *gen, const float *sgen, int n_gen,
                   const float *ref, const float *sref, int n_ref, set_figures *f)
{
    const int d = DM_EMBED_DIM;
    dm_error err;
    memset(f, 0, sizeof *f);
    f->n_gen = n_gen, f->n_ref = n_ref;
    if (dm_frechet_distance(gen, n_gen, ref, n_ref, d, o->threads, &f->fd, &err) != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return -1;
    }
    int size = n_gen < n_ref ? n_gen : n_ref;
    if (size > 1000)
        size = 1000;
    if (o->subset_size > 0 && o->subset_size < size)
        size = o->subset_size;
    f->subsets = o->subsets, f->subset_size = size;
    /* KID's polynomial kernel sees the raw scale of each feature, so it runs on the
     * standardised embeddings (FD on the raw ones, as is usual) */
    if (dm_kid(sgen, n_gen, sref, n_ref, d, o->subsets, size, o->seed, o->threads, &f->kid,
               &f->kid_se, &err) != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return -1;
    }
    float *gd = malloc((size_t)n_gen * sizeof *gd), *rd = malloc((size_t)n_ref * sizeof *rd);
    if (!gd || !rd) {
        free(gd), free(rd);
        fprintf(stderr, "dmaudio eval: out of memory\n");
        return -1;
    }
    if (dm_nearest_neighbour_distances(sgen, n_gen, sref, n_ref, d, o->threads, gd, NULL, rd, &err) !=
        DM_OK) {
        free(gd), free(rd);
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        return -1;
    }
    qsort(gd, (size_t)n_gen, sizeof *gd, cmp_float);
    qsort(rd, (size_t)n_ref, sizeof *rd, cmp_float);
    f->gen_nn = quantile(gd, n_gen, 0.5);
    f->ref_nn = quantile(rd, n_ref, 0.5);
    f->ref_p5 = quantile(rd, n_ref, 0.05);
    int closer = 0;
    for (int i = 0; i < n_gen; i++)
        closer += gd[i] < f->ref_p5;
    f->closer = (double)closer / n_gen;
    free(gd), free(rd);
    return 0;
}

static void print_figures_json(const set_figures *f)
{
    printf("\"gen_clips\": %d, \"ref_clips\": %d, \"frechet_distance\": %.9g, "
           "\"kid\": {\"mean\": %.9g, \"std_err\": %.9g, \"subsets\": %d, \"subset_size\": %d}, "
           "\"memorisation\": {\"gen_median_nn\": %.9g, \"ref_median_nn\": %.9g, "
           "\"ref_p5_nn\": %.9g, \"gen_closer_than_ref_p5\": %.9g}",
           f->n_gen, f->n_ref, f->fd, f->kid, f->kid_se, f->subsets, f->subset_size, f->gen_nn,
           f->ref_nn, f->ref_p5, f->closer);
}

/* Embeddings of the items of ds whose class is cls (-2: all), into emb; returns the count. */
static int gather(const dm_dataset *ds, const float *all, int cls, float *emb)
{
    int n = 0;
    for (int i = 0; i < dm_dataset_count(ds); i++) {
        int c;
        dm_dataset_item(ds, i, NULL, NULL, &c);
        if (cls == -2 || c == cls)
            memcpy(emb + (size_t)n++ * DM_EMBED_DIM, all + (size_t)i * DM_EMBED_DIM,
                   DM_EMBED_DIM * sizeof(float));
    }
    return n;
}

static float *embed(const eval_opts *o, const dm_dataset *ds)
{
    const int n = dm_dataset_count(ds);
    const float **clips = malloc((size_t)n * sizeof *clips);
    size_t *lengths = malloc((size_t)n * sizeof *lengths);
    float *emb = malloc((size_t)n * DM_EMBED_DIM * sizeof *emb);
    if (!clips || !lengths || !emb) {
        fprintf(stderr, "dmaudio eval: out of memory\n");
        free(clips), free(lengths), free(emb);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        int64_t frames;
        dm_dataset_item(ds, i, &clips[i], &frames, NULL);
        lengths[i] = (size_t)frames;
    }
    dm_error err;
    dm_status st = dm_embed_clips((const float *const *)clips, lengths, n, dm_dataset_rate(ds),
                                  o->threads, emb, &err);
    free(clips), free(lengths);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s\n", err.message);
        free(emb);
        return NULL;
    }
    return emb;
}

/* For each GEN clip i with a class that REF has too (ref_of[i] >= 0): whether a 5-nearest-
 * neighbour vote among REF's clips (eg, er: standardised embeddings) gives that class (ties
 * go to the class of the nearest voter). right[c] / total[c] count per REF class c. */
enum { KNN = 5 };
static int classify(const float *eg, const int *ref_of, int ng, const float *er, const int *rc,
                    int nr, int ncr, int *right, int *total)
{
    const int d = DM_EMBED_DIM;
    const float *sg = eg, *sr = er; /* both standardised by REF */
    int *votes = calloc((size_t)ncr, sizeof *votes);
    if (!votes)
        return -1;
    for (int i = 0; i < ng; i++) {
        if (ref_of[i] < 0)
            continue;
        double best[KNN];
        int who[KNN];
        for (int k = 0; k < KNN; k++)
            best[k] = INFINITY, who[k] = -1;
        for (int r = 0; r < nr; r++) {
            double dist = 0;
            for (int j = 0; j < d; j++) {
                double e = sg[(size_t)i * d + j] - sr[(size_t)r * d + j];
                dist += e * e;
            }
            for (int k = 0; k < KNN; k++) {
                if (dist < best[k]) { /* insert at k, shifting the rest down */
                    for (int m = KNN - 1; m > k; m--)
                        best[m] = best[m - 1], who[m] = who[m - 1];
                    best[k] = dist, who[k] = r;
                    break;
                }
            }
        }
        memset(votes, 0, (size_t)ncr * sizeof *votes);
        int winner = -1;
        for (int k = 0; k < KNN && who[k] >= 0; k++)
            votes[rc[who[k]]]++;
        for (int k = 0; k < KNN && who[k] >= 0; k++) /* nearest first: ties go to it */
            if (winner < 0 || votes[rc[who[k]]] > votes[winner])
                winner = rc[who[k]];
        total[ref_of[i]]++;
        right[ref_of[i]] += winner == ref_of[i];
    }
    free(votes);
    return 0;
}

static int eval_sets(const eval_opts *o, const char *gen_dir, const char *ref_dir)
{
    int rate = o->rate;
    if (rate == 0 && first_rate(gen_dir, &rate) != 0)
        return DM_EXIT_FAILURE;
    int status = DM_EXIT_FAILURE;
    dm_dataset *gen = NULL, *ref = NULL;
    float *eg = NULL, *er = NULL, *cg = NULL, *cr = NULL;
    float *seg = NULL, *ser = NULL, *scg = NULL, *scr = NULL;
    int *ref_of = NULL, *rc = NULL, *right = NULL, *total = NULL;
    if (!(gen = load(o, gen_dir, rate, 1, 0, "loading GEN")) ||
        !(ref = load(o, ref_dir, rate, 1, 0, "loading REF")))
        goto done;
    const int ng = dm_dataset_count(gen), nr = dm_dataset_count(ref);
    if (ng < 2 || nr < 2) {
        fprintf(stderr, "dmaudio eval: %s: %d clip(s); at least 2 are needed in each folder\n",
                ng < 2 ? gen_dir : ref_dir, ng < 2 ? ng : nr);
        goto done;
    }
    if (!(eg = embed(o, gen)) || !(er = embed(o, ref)))
        goto done;
    /* the embeddings standardised by all of REF's clips, for KID, the nearest neighbours and
     * the classifier: per-class statistics of a handful of clips would be unstable */
    seg = malloc((size_t)ng * DM_EMBED_DIM * sizeof *seg);
    ser = malloc((size_t)nr * DM_EMBED_DIM * sizeof *ser);
    if (!seg || !ser) {
        fprintf(stderr, "dmaudio eval: out of memory\n");
        goto done;
    }
    standardise(er, nr, eg, ng, ser, seg);
    set_figures all;
    if (compare(o, eg, seg, ng, er, ser, nr, &all) != 0)
        goto done;
    if (o->json) {
        printf("{\"gen\": ");
        dm_cli_json_string(stdout, gen_dir);
        printf(", \"ref\": ");
        dm_cli_json_string(stdout, ref_dir);
        printf(", \"rate\": %d, \"embedding_dim\": %d, ", rate, DM_EMBED_DIM);
        print_figures_json(&all);
    } else {
        printf("gen               %s (%d clips)\n", gen_dir, ng);
        printf("ref               %s (%d clips), compared mono at %d Hz\n", ref_dir, nr, rate);
        printf("frechet_distance  %.6g\n", all.fd);
        printf("kid               %.6g +- %.2g  (%d subsets of %d)\n", all.kid, all.kid_se,
               all.subsets, all.subset_size);
        printf("memorisation      nearest-neighbour distance, median: GEN to REF %.4g, REF to "
               "REF %.4g\n", all.gen_nn, all.ref_nn);
        printf("                  %.1f%% of GEN clips are closer to REF than 95%% of REF clips "
               "are to each other (about 5%% without copies)\n", 100.0 * all.closer);
    }
    /* per class, for the classes both folders have */
    int n_shared = 0;
    const int ncr = dm_dataset_n_classes(ref);
    if (dm_dataset_n_classes(gen) > 0 && ncr > 0) {
        cg = malloc((size_t)ng * DM_EMBED_DIM * sizeof *cg);
        cr = malloc((size_t)nr * DM_EMBED_DIM * sizeof *cr);
        scg = malloc((size_t)ng * DM_EMBED_DIM * sizeof *scg);
        scr = malloc((size_t)nr * DM_EMBED_DIM * sizeof *scr);
        if (!cg || !cr || !scg || !scr) {
            fprintf(stderr, "dmaudio eval: out of memory\n");
            goto done;
        }
        /* the classifier: GEN's classes as REF's indices, REF's labels */
        ref_of = malloc((size_t)ng * sizeof *ref_of), rc = malloc((size_t)nr * sizeof *rc);
        right = calloc((size_t)ncr, sizeof *right), total = calloc((size_t)ncr, sizeof *total);
        if (!ref_of || !rc || !right || !total) {
            fprintf(stderr, "dmaudio eval: out of memory\n");
            goto done;
        }
        for (int i = 0; i < ng; i++) {
            int c;
            dm_dataset_item(gen, i, NULL, NULL, &c);
            ref_of[i] = dm_dataset_find_class(ref, dm_dataset_class_name(gen, c));
        }
        for (int i = 0; i < nr; i++)
            dm_dataset_item(ref, i, NULL, NULL, &rc[i]);
        if (classify(seg, ref_of, ng, ser, rc, nr, ncr, right, total) != 0) {
            fprintf(stderr, "dmaudio eval: out of memory\n");
            goto done;
        }
        int all_right = 0, all_total = 0;
        for (int c = 0; c < ncr; c++)
            all_right += right[c], all_total += total[c];
        if (all_total > 0) {
            if (o->json)
                printf(", \"classified\": %.9g", (double)all_right / all_total);
            else
                printf("classified        %.1f%% of GEN clips as their own class (%d of %d; "
                       "5-NN on REF)\n", 100.0 * all_right / all_total, all_right, all_total);
        }
        for (int c = 0; c < ncr; c++) {
            const char *name = dm_dataset_class_name(ref, c);
            int g = dm_dataset_find_class(gen, name);
            if (g < 0)
                continue;
            int kg = gather(gen, eg, g, cg), kr = gather(ref, er, c, cr);
            gather(gen, seg, g, scg), gather(ref, ser, c, scr);
            double share = total[c] > 0 ? (double)right[c] / total[c] : 0.0;
            if (o->json)
                printf("%s", n_shared == 0 ? ", \"classes\": {" : ", ");
            else if (n_shared == 0)
                printf("per class:\n");
            n_shared++;
            if (kg < 2 || kr < 2) {
                if (o->json) {
                    dm_cli_json_string(stdout, name);
                    printf(": {\"gen_clips\": %d, \"ref_clips\": %d}", kg, kr);
                } else {
                    printf("  %-14s (%d and %d clips: too few to compare)\n", name, kg, kr);
                }
                continue;
            }
            set_figures f;
            if (compare(o, cg, scg, kg, cr, scr, kr, &f) != 0)
                goto done;
            if (o->json) {
                dm_cli_json_string(stdout, name);
                printf(": {");
                print_figures_json(&f);
                printf(", \"classified\": %.9g}", share);
            } else {
                printf("  %-14s fd %-10.5g kid %.4g +- %.2g  nn %.4g / %.4g  closer %.1f%%  "
                       "classified %.1f%%  (%d / %d clips)\n", name, f.fd, f.kid, f.kid_se,
                       f.gen_nn, f.ref_nn, 100.0 * f.closer, 100.0 * share, kg, kr);
            }
        }
        if (o->json && n_shared > 0)
            printf("}");
    }
    if (o->json)
        printf("}\n");
    status = DM_EXIT_OK;
done:
    fflush(stdout);
    free(eg), free(er), free(cg), free(cr);
    free(seg), free(ser), free(scg), free(scr);
    free(ref_of), free(rc), free(right), free(total);
    dm_dataset_free(gen);
    dm_dataset_free(ref);
    return status;
}

/* ---- --elbo ---- */

static int on_batch(void *user_data, int step, int n_steps)
{
    dm_cli_progress_update(user_data, step, n_steps);
    return 0;
}

static int eval_elbo(const eval_opts *o, const char *model_arg, const char *data_dir)
{
    char where[4096 + 64];
    const char *model_path = dm_cli_model_path(model_arg, where, sizeof where);
    dm_model *m = dm_cli_open_model("eval", model_arg);
    if (!m)
        return DM_EXIT_FAILURE;
    const dm_model_info in = dm_model_get_info(m);
    int status = DM_EXIT_FAILURE;
    dm_dataset *ds = NULL;
    float *clips = NULL;
    int *cls = NULL;
    double *per = NULL;
    if (in.repr != DM_REPR_WAVE) {
        fprintf(stderr, "dmaudio eval: %s: the bound is computed for waveform models; this one "
                        "is '%s'\n", model_path, dm_repr_name(in.repr));
        goto done;
    }
    if (!(ds = load(o, data_dir, in.sample_rate, in.audio_channels, in.length, "loading")))
        goto done;
    const int n = dm_dataset_count(ds), nc = dm_dataset_n_classes(ds);
    const size_t item = (size_t)in.audio_channels * in.length;
    clips = malloc((size_t)n * item * sizeof *clips);
    cls = malloc((size_t)n * sizeof *cls);
    per = malloc((size_t)n * sizeof *per);
    if (!clips || !cls || !per) {
        fprintf(stderr, "dmaudio eval: out of memory\n");
        goto done;
    }
    int unknown = 0;
    for (int i = 0; i < n; i++) {
        int c;
        dm_dataset_item(ds, i, NULL, NULL, &c);
        dm_dataset_crop(ds, i, 0, in.length, clips + (size_t)i * item);
        cls[i] = c >= 0 && in.n_classes > 0 ? dm_model_find_class(m, dm_dataset_class_name(ds, c))
                                            : -1;
        unknown += c >= 0 && in.n_classes > 0 && cls[i] < 0;
    }
    if (unknown && !o->quiet)
        fprintf(stderr, "dmaudio eval: %d clip(s) of %s are in classes the model does not know; "
                        "they are evaluated without a class\n", unknown, data_dir);
    dm_elbo_params p = dm_elbo_default_params();
    p.n_t = o->timesteps;
    p.bits = o->bits;
    p.seed = o->seed;
    p.classes = cls;
    p.n_threads = o->threads;
    dm_cli_progress bar;
    dm_cli_progress_begin(&bar, "elbo", o->quiet);
    p.progress = on_batch;
    p.progress_user_data = &bar;
    dm_error err;
    dm_status st = dm_model_elbo_per_clip(m, clips, n, &p, per, &err);
    dm_cli_progress_end(&bar);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio eval: %s: %s\n", model_path, err.message);
        goto done;
    }
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += per[i] / n;
    for (int i = 0; i < n; i++)
        var += (per[i] - mean) * (per[i] - mean) / (n > 1 ? n - 1 : 1);
    const double se = n > 1 ? sqrt(var / n) : 0.0;
    const int T = in.timesteps, terms = o->timesteps == 0 || o->timesteps >= T - 1 ? T - 1
                                                                                     : o->timesteps;
    if (o->json) {
        printf("{\"model\": ");
        dm_cli_json_string(stdout, model_path);
        printf(", \"name\": ");
        dm_cli_json_string(stdout, in.name);
        printf(", \"crc\": \"%08" PRIx32 "\", \"data\": ", in.checksum);
        dm_cli_json_string(stdout, data_dir);
        printf(", \"clips\": %d, \"timesteps\": %d, \"diffusion_terms\": %d, \"exact\": %s, "
               "\"bits\": %d, \"seed\": %" PRIu64 ", \"bits_per_sample\": %.9g, \"std_err\": %.9g",
               n, T, terms, terms == T - 1 ? "true" : "false", o->bits, o->seed, mean, se);
    } else {
        printf("model             %s ('%s', crc %08" PRIx32 ", T = %d)\n", model_path, in.name,
               in.checksum, T);
        printf("data              %s (%d clips of %.4g s at %d Hz)\n", data_dir, n,
               (double)in.length / in.sample_rate, in.sample_rate);
        printf("elbo              %.4f +- %.4f bits per sample (%d-bit audio; %s)\n", mean, se,
               o->bits, terms == T - 1 ? "all timesteps" : "Monte Carlo");
        if (terms < T - 1)
            printf("                  %d of %d diffusion terms per clip, seed %" PRIu64 "\n", terms,
                   T - 1, o->seed);
    }
    if (nc > 0) {
        for (int c = 0; c < nc; c++) {
            double s = 0, s2 = 0;
            int k = 0;
            for (int i = 0; i < n; i++) {
                int ci;
                dm_dataset_item(ds, i, NULL, NULL, &ci);
                if (ci == c)
                    s += per[i], k++;
            }
            double mc = k ? s / k : 0;
            for (int i = 0; i < n; i++) {
                int ci;
                dm_dataset_item(ds, i, NULL, NULL, &ci);
                if (ci == c)
                    s2 += (per[i] - mc) * (per[i] - mc);
            }
            double sec = k > 1 ? sqrt(s2 / (k - 1) / k) : 0.0;
            if (o->json) {
                printf("%s", c == 0 ? ", \"classes\": {" : ", ");
                dm_cli_json_string(stdout, dm_dataset_class_name(ds, c));
                printf(": {\"clips\": %d, \"bits_per_sample\": %.9g, \"std_err\": %.9g}", k, mc,
                       sec);
            } else {
                printf("%s  %-14s %.4f +- %.4f  (%d clips)\n", c == 0 ? "per class:\n" : "",
                       dm_dataset_class_name(ds, c), mc, sec, k);
            }
        }
        if (o->json)
            printf("}");
    }
    if (o->json)
        printf("}\n");
    status = DM_EXIT_OK;
done:
    fflush(stdout);
    free(clips), free(cls), free(per);
    dm_dataset_free(ds);
    dm_model_free(m);
    return status;
}

/* ---- the command ---- */

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rate", required_argument, 0, 'r'},
        {"subsets", required_argument, 0, OPT_SUBSETS},
        {"subset-size", required_argument, 0, OPT_SUBSET_SIZE},
        {"elbo", no_argument, 0, OPT_ELBO},
        {"model", required_argument, 0, 'm'},
        {"timesteps", required_argument, 0, OPT_TIMESTEPS},
        {"bits", required_argument, 0, OPT_BITS},
        {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, OPT_JSON},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    eval_opts o = {.subsets = 100, .timesteps = 50, .bits = 16};
    int given_sets = 0, given_elbo = 0; /* options that only apply to one mode */
    const char *model = NULL;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":r:s:t:m:qh", longopts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 'r': r = dm_cli_int("--rate", optarg, 1000, 768000, &o.rate), given_sets = 1; break;
        case OPT_SUBSETS:
            r = dm_cli_int("--subsets", optarg, 1, 100000, &o.subsets), given_sets = 1;
            break;
        case OPT_SUBSET_SIZE:
            r = dm_cli_int("--subset-size", optarg, 2, 1000000, &o.subset_size), given_sets = 1;
            break;
        case OPT_ELBO: o.elbo = 1; break;
        case 'm': model = optarg, given_elbo = 1; break;
        case OPT_TIMESTEPS:
            r = dm_cli_int("--timesteps", optarg, 0, DM_MAX_TIMESTEPS, &o.timesteps);
            given_elbo = 1;
            break;
        case OPT_BITS: r = dm_cli_int("--bits", optarg, 1, 24, &o.bits), given_elbo = 1; break;
        case 's': r = dm_cli_u64("--seed", optarg, &o.seed); break;
        case 't': r = dm_cli_int("--threads", optarg, 0, 1024, &o.threads); break;
        case OPT_JSON: o.json = 1; break;
        case 'q': o.quiet = 1; break;
        case 'h': puts(dm_eval_usage); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio eval: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio eval: unknown option '%s' (see 'dmaudio eval --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
        if (r < 0)
            return DM_EXIT_USAGE;
    }
    if (!o.elbo && given_elbo) {
        fprintf(stderr, "dmaudio eval: -m, --timesteps and --bits need --elbo\n");
        return DM_EXIT_USAGE;
    }
    if (o.elbo && argc - optind == 2 && model) {
        fprintf(stderr, "dmaudio eval: --elbo: the model is given twice (-m %s and '%s')\n",
                model, argv[optind]);
        return DM_EXIT_USAGE;
    }
    const int wanted = o.elbo && (model || argc - optind == 1) ? 1 : 2; /* -m or the bundled */
    if (argc - optind != wanted) {
        fprintf(stderr, "dmaudio eval: %s (usage: dmaudio eval GEN_DIR REF_DIR, or dmaudio eval "
                        "--elbo [MODEL | -m MODEL] DATA_DIR)\n",
                argc - optind >= wanted ? "too many arguments"
                : wanted == 1           ? "no DATA_DIR given"
                                        : "two arguments are needed");
        return DM_EXIT_USAGE;
    }
    if (o.elbo && given_sets) {
        fprintf(stderr, "dmaudio eval: --rate, --subsets and --subset-size do not apply to "
                        "--elbo\n");
        return DM_EXIT_USAGE;
    }
    if (o.elbo)
        return wanted == 1 ? eval_elbo(&o, model, argv[optind])
                           : eval_elbo(&o, argv[optind], argv[optind + 1]);
    return eval_sets(&o, argv[optind], argv[optind + 1]);
}
