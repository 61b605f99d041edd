/* dmaudio info: what a model file holds (format, classes, network, checksum),
 * or what an audio file is and the recipe it carries, as text or JSON. A
 * file starting with the container magic "DMAU" is read as a model (or a
 * training checkpoint, whose EMA model is described); anything else as audio. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <zlib.h>

const char dm_info_usage[] =
    "usage: dmaudio info [OPTIONS] [MODEL | AUDIO_FILE]\n"
    "       dmaudio info -m MODEL [OPTIONS]\n"
    "\n"
    "Describes a model (the bundled default model when no file is given): name,\n"
    "audio format, classes, schedule, network and checksum; or an audio file: its\n"
    "format, level (peak, RMS), a CRC-32 of its decoded samples (equal for equal\n"
    "audio, whatever the metadata) and the recipe a generated clip carries.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE  the model to describe [$DMAUDIO_MODEL, else the bundled\n"
    "                    model]\n"
    "      --json        print one JSON object on stdout instead of text\n"
    "  -h, --help        show this help";

/* ---- models ---- */

static void print_model_text(const char *path, const dm_model *m)
{
    const dm_model_info in = dm_model_get_info(m);
    const dm_unet_config *u = dm_unet_get_config(dm_model_unet_const(m));
    printf("model           %s\n", in.name);
    printf("file            %s\n", path);
    printf("representation  %s\n", dm_repr_name(in.repr));
    printf("sample rate     %d Hz\n", in.sample_rate);
    printf("clip length     %d samples (%.3f s)\n", in.length, (double)in.length / in.sample_rate);
    printf("channels        %d\n", in.audio_channels);
    if (in.n_classes == 0) {
        printf("classes         none (unconditional)\n");
    } else {
        printf("classes         %d:", in.n_classes);
        for (int c = 0; c < in.n_classes; c++)
            printf("%s %s", c ? "," : "", dm_model_class_name(m, c));
        printf("\n");
    }
    printf("schedule        %s, %d timesteps", dm_schedule_name(in.schedule), in.timesteps);
    if (in.schedule_shift != 1.0)
        printf(", noise shifted x%g", in.schedule_shift);
    printf("\n");
    printf("prediction      %s\n", dm_prediction_name(in.prediction));
    printf("parameters      %zu (%.2f MB as float32)\n", in.n_params, in.n_params * 4.0 / 1e6);
    printf("architecture    widths");
    for (int l = 0; l < u->n_levels; l++)
        printf(" %d%s", u->channels[l], u->attention[l] ? "+attn" : "");
    printf(", factors");
    for (int l = 0; l + 1 < u->n_levels; l++)
        printf("%s%d", l ? "," : " ", u->factors[l]);
    if (u->n_levels == 1)
        printf(" none");
    printf(", %d block%s per level, kernel %d, %d groups, %d heads", u->blocks,
           u->blocks == 1 ? "" : "s", u->kernel, u->groups, u->heads);
    if (u->positions > 0)
        printf(", %d position channels", u->positions);
    printf("\n");
    printf("data scale      %.6g\n", in.data_scale);
    printf("crc             %08" PRIx32 "\n", in.checksum);
}

static void print_model_json(const char *path, const dm_model *m)
{
    const dm_model_info in = dm_model_get_info(m);
    const dm_unet_config *u = dm_unet_get_config(dm_model_unet_const(m));
    printf("{\"type\": \"model\", \"path\": ");
    dm_cli_json_string(stdout, path);
    printf(", \"name\": ");
    dm_cli_json_string(stdout, in.name);
    printf(", \"representation\": \"%s\", \"sample_rate\": %d, \"length\": %d, "
           "\"seconds\": %.9g, \"channels\": %d, \"classes\": [",
           dm_repr_name(in.repr), in.sample_rate, in.length, (double)in.length / in.sample_rate,
           in.audio_channels);
    for (int c = 0; c < in.n_classes; c++) {
        printf("%s", c ? ", " : "");
        dm_cli_json_string(stdout, dm_model_class_name(m, c));
    }
    printf("], \"schedule\": \"%s\", \"schedule_shift\": %.17g, \"timesteps\": %d, "
           "\"prediction\": \"%s\", \"parameters\": %zu, \"architecture\": {\"widths\": [",
           dm_schedule_name(in.schedule), in.schedule_shift, in.timesteps,
           dm_prediction_name(in.prediction), in.n_params);
    for (int l = 0; l < u->n_levels; l++)
        printf("%s%d", l ? ", " : "", u->channels[l]);
    printf("], \"factors\": [");
    for (int l = 0; l + 1 < u->n_levels; l++)
        printf("%s%d", l ? ", " : "", u->factors[l]);
    printf("], \"attention\": [");
    for (int l = 0, k = 0; l < u->n_levels; l++)
        if (u->attention[l])
            printf("%s%d", k++ ? ", " : "", l);
    printf("], \"blocks\": %d, \"kernel\": %d, \"groups\": %d, \"heads\": %d, "
           "\"positions\": %d}, \"data_scale\": %.17g, \"crc\": \"%08" PRIx32 "\"}\n",
           u->blocks, u->kernel, u->groups, u->heads, u->positions, in.data_scale, in.checksum);
}

/* ---- audio files ---- */

typedef struct audio_stats {
    double peak, rms;
    uint32_t crc;               /* CRC-32 of the planar float32 samples */
} audio_stats;

static int audio_stats_compute(const char *path, audio_stats *st, dm_error *err)
{
    dm_audio a;
    if (dm_audio_read(path, NULL, &a, err) != DM_OK)
        return -1;
    size_t n = (size_t)a.channels * (size_t)a.frames;
    double peak = 0.0, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = a.data[i];
        peak = fabs(x) > peak ? fabs(x) : peak;
        sum += x * x;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    const unsigned char *bytes = (const unsigned char *)a.data;
    for (size_t left = n * sizeof(float); left > 0;) {
        uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, bytes, k);
        bytes += k, left -= k;
    }
    st->peak = peak;
    st->rms = n ? sqrt(sum / (double)n) : 0.0;
    st->crc = (uint32_t)crc;
    dm_audio_free(&a);
    return 0;
}

static double dbfs(double x) { return x > 0 ? 20.0 * log10(x) : -INFINITY; }

static void print_audio_text(const char *path, const dm_audio_file_info *fi,
                             const audio_stats *as, const char *title, const char *comment,
                             const dm_recipe *r, const char *why)
{
    printf("file      %s\n", path);
    printf("format    %s\n", fi->format);
    printf("rate      %d Hz\n", fi->rate);
    printf("channels  %d\n", fi->channels);
    if (fi->frames >= 0)
        printf("length    %" PRId64 " frames (%.3f s)\n", fi->frames,
               fi->rate > 0 ? (double)fi->frames / fi->rate : 0.0);
    else
        printf("length    unknown\n");
    printf("peak      %.6f (%.1f dBFS)\n", as->peak, dbfs(as->peak));
    printf("rms       %.6f (%.1f dBFS)\n", as->rms, dbfs(as->rms));
    printf("audio crc %08" PRIx32 " (of the decoded samples)\n", as->crc);
    if (*title)
        printf("title     %s\n", title);
    if (r) {
        printf("recipe    %s\n", comment);
        printf("  mode      %s\n", r->mode);
        printf("  model     %s (crc %08" PRIx32 ")\n", r->model, r->crc);
        printf("  seed      %" PRIu64 "\n", r->seed);
        printf("  sampler   %s, %d steps", r->sampler, r->steps);
        if (r->eta != 0.0)
            printf(", eta %g", r->eta);
        printf("\n  class     %s\n", strcmp(r->cls, "-") ? r->cls : "none (unconditional)");
        printf("  guidance  %g\n", r->guidance);
        if (strcmp(r->mode, "sample") != 0)
            printf("  strength  %g\n", r->strength);
        if (r->rate > 0 && r->frames > 0 && r->format[0])
            printf("  output    %d Hz, %" PRId64 " frames, %s\n", r->rate, r->frames, r->format);
        printf("  version   %s\n", r->version[0] ? r->version : "unknown");
    } else {
        if (*comment)
            printf("comment   %s\n", comment);
        printf("recipe    none%s%s%s\n", why ? " (" : "", why ? why : "", why ? ")" : "");
    }
}

static void print_audio_json(const char *path, const dm_audio_file_info *fi,
                             const audio_stats *as, const char *title, const char *comment,
                             const dm_recipe *r)
{
    printf("{\"type\": \"audio\", \"path\": ");
    dm_cli_json_string(stdout, path);
    printf(", \"format\": ");
    dm_cli_json_string(stdout, fi->format);
    printf(", \"rate\": %d, \"channels\": %d, \"frames\": %" PRId64 ", \"seconds\": %.9g, "
           "\"title\": ",
           fi->rate, fi->channels, fi->frames,
           fi->frames >= 0 && fi->rate > 0 ? (double)fi->frames / fi->rate : -1.0);
    dm_cli_json_string(stdout, title);
    printf(", \"peak\": %.9g, \"rms\": %.9g, \"audio_crc\": \"%08" PRIx32 "\"", as->peak,
           as->rms, as->crc);
    printf(", \"comment\": ");
    dm_cli_json_string(stdout, comment);
    printf(", \"recipe\": ");
    if (!r) {
        printf("null}\n");
        return;
    }
    printf("{\"mode\": ");
    dm_cli_json_string(stdout, r->mode);
    printf(", \"model\": ");
    dm_cli_json_string(stdout, r->model);
    printf(", \"crc\": \"%08" PRIx32 "\", \"seed\": %" PRIu64 ", \"sampler\": ", r->crc, r->seed);
    dm_cli_json_string(stdout, r->sampler);
    printf(", \"steps\": %d, \"class\": ", r->steps);
    if (strcmp(r->cls, "-") == 0)
        printf("null");
    else
        dm_cli_json_string(stdout, r->cls);
    printf(", \"guidance\": %.17g, \"strength\": %.17g, \"eta\": %.17g, \"version\": ",
           r->guidance, r->strength, r->eta);
    dm_cli_json_string(stdout, r->version);
    if (r->rate > 0)
        printf(", \"rate\": %d", r->rate);
    else
        printf(", \"rate\": null");
    if (r->frames > 0)
        printf(", \"frames\": %" PRId64, r->frames);
    else
        printf(", \"frames\": null");
    printf(", \"format\": ");
    if (r->format[0])
        dm_cli_json_string(stdout, r->format);
    else
        printf("null");
    printf("}}\n");
}

static int info_audio(const char *path, int json)
{
    dm_audio_file_info fi;
    dm_error err;
    if (dm_audio_probe(path, &fi, &err) != DM_OK) {
        if (err.status == DM_ERR_FORMAT)
            fprintf(stderr, "dmaudio info: %s is neither a dmaudio model nor an audio file (%s)\n",
                    path, err.message);
        else
            fprintf(stderr, "dmaudio info: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    audio_stats as;
    if (audio_stats_compute(path, &as, &err) != 0) { /* e.g. truncated */
        fprintf(stderr, "dmaudio info: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    char title[512], comment[4096];
    if (dm_audio_read_string(path, DM_AUDIO_TITLE, title, sizeof title, &err) != DM_OK)
        title[0] = '\0';
    if (dm_audio_read_metadata(path, comment, sizeof comment, &err) != DM_OK)
        comment[0] = '\0';
    dm_recipe r;
    char why[128];
    int have = *comment && dm_recipe_parse(comment, &r, why, sizeof why) == 0;
    if (json)
        print_audio_json(path, &fi, &as, title, comment, have ? &r : NULL);
    else
        print_audio_text(path, &fi, &as, title, comment, have ? &r : NULL,
                         strncmp(comment, "dmaudio-recipe/", 15) == 0 ? why : NULL);
    return DM_EXIT_OK;
}

/* 1 if the file starts with the container magic, 0 if not, -1 (message
 * printed) if it cannot be opened. */
static int is_container(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "dmaudio info: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char magic[4] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return n == 4 && memcmp(magic, "DMAU", 4) == 0;
}

int cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'},
        {"model", required_argument, 0, 'm'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0;
    const char *model = NULL;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":m:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'm': model = optarg; break;
        case 'h': puts(dm_info_usage); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio info: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio info: unknown option '%s' (see 'dmaudio info --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio info: unexpected argument '%s' (one file at a time)\n",
                argv[optind + 1]);
        return DM_EXIT_USAGE;
    }
    const char *path = optind < argc ? argv[optind] : NULL;
    if (model && path) {
        fprintf(stderr, "dmaudio info: -m %s and '%s': one file at a time\n", model, path);
        return DM_EXIT_USAGE;
    }
    if (model && !*model) {
        fprintf(stderr, "dmaudio info: --model: empty file name\n");
        return DM_EXIT_USAGE;
    }
    char where[4096 + 64];
    if (path) {
        int kind = is_container(path);
        if (kind < 0)
            return DM_EXIT_FAILURE;
        if (kind == 0)
            return info_audio(path, json);
    } else {
        path = model; /* -m: a model, whatever the file holds (the loader says what is wrong) */
    }
    const char *shown = dm_cli_model_path(path, where, sizeof where);
    dm_model *m = dm_cli_open_model("info", path);
    if (!m)
        return DM_EXIT_FAILURE;
    if (json)
        print_model_json(shown, m);
    else
        print_model_text(shown, m);
    dm_model_free(m);
    return DM_EXIT_OK;
}
