/* dmaudio variation: variations of an input sound (SDEdit, Meng et al. 2022): the input,
 * read at the model's rate and channels and cropped or zero-padded to its clip length, is
 * noised to the level of --strength and denoised back by the sampler. Variation i uses seed
 * S + i; the variations are generated in batches and do not depend on the batch size. */
#include "edit.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char dm_variation_usage[] =
    "usage: dmaudio variation IN -o OUT [OPTIONS]\n"
    "\n"
    "Writes variations of the sound IN (any format libsndfile reads): IN is read at the\n"
    "model's rate and channels, cut or zero-padded to the model's clip length, noised to\n"
    "the level --strength and denoised again (SDEdit). Small strengths stay close to IN,\n"
    "1 keeps only its length. Each file's recipe holds mode=variation and the strength, but\n"
    "not IN itself: 'dmaudio sample --recipe' cannot remake a variation; run variation\n"
    "again on the same input with the recipe's seed to do so.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -o, --output FILE     .wav or .flac (required); with -n K > 1, OUT-001.wav ...\n"
    "  -S, --strength S      how far from IN, in (0, 1] [0.5]\n"
    "  -n, --count K         variations to write; variation i uses seed S+i [1]\n"
    "  -s, --seed S          random seed [drawn from /dev/urandom, and printed]\n"
    "  -b, --batch B         variations generated together [min(K, 8)]\n"
    DM_EDIT_USAGE_SAMPLER
    DM_EDIT_USAGE_COMMON;

enum { OPT_STRENGTH = DM_OPT_FIRST_OWN };

int cmd_variation(int argc, char **argv)
{
    static const struct option longopts[] = {
        DM_EDIT_LONGOPTS,
        {"strength", required_argument, 0, 'S'},
        {"batch", required_argument, 0, 'b'},
        {0, 0, 0, 0},
    };
    dm_edit_opts o;
    dm_edit_opts_init(&o, "variation");
    double strength = 0.5;
    int batch_opt = 0;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, DM_EDIT_SHORTOPTS "S:b:", longopts, NULL)) != -1) {
        int r;
        if (opt == 'S')
            r = dm_cli_double("--strength", optarg, 1e-6, 1.0, &strength);
        else if (opt == 'b')
            r = dm_cli_int("--batch", optarg, 1, 1024, &batch_opt);
        else
            r = dm_edit_option(&o, opt, optarg, argv, dm_variation_usage, 1);
        if (r == 2)
            return DM_EXIT_OK;
        if (r != 0)
            return DM_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio variation: no input sound (usage: dmaudio variation IN -o OUT)\n");
        return DM_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio variation: unexpected argument '%s' (one input sound)\n",
                argv[optind + 1]);
        return DM_EXIT_USAGE;
    }
    const char *input = argv[optind];
    if (dm_edit_check_output(&o) != 0)
        return DM_EXIT_USAGE;

    dm_model *m = dm_cli_open_model("variation", o.model);
    if (!m)
        return DM_EXIT_FAILURE;
    const dm_model_info in = dm_model_get_info(m);
    int status, cls;
    char **paths = NULL;
    float *init = NULL, *out = NULL;
    dm_generator *gen = NULL;
    dm_audio src = {0};
    dm_error err;
    if ((status = dm_edit_resolve(&o, m, &cls)) != DM_EXIT_OK)
        goto done;
    if ((status = dm_edit_output_paths(&o, o.count, 0, &paths)) != DM_EXIT_OK)
        goto done;
    if ((status = dm_edit_read_input(&o, input, &in, &src)) != DM_EXIT_OK)
        goto done;
    status = DM_EXIT_FAILURE;

    const int batch = batch_opt > 0 ? (batch_opt < o.count ? batch_opt : o.count)
                                    : (o.count < 8 ? o.count : 8);
    const size_t item = (size_t)in.audio_channels * (size_t)in.length;
    init = calloc((size_t)batch * item, sizeof *init);
    out = malloc((size_t)batch * item * sizeof *out);
    if (!init || !out) {
        fprintf(stderr, "dmaudio variation: out of memory\n");
        goto done;
    }
    /* the input, cut or zero-padded to the model's length, once per batch item */
    const int64_t keep = src.frames < in.length ? src.frames : in.length;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < in.audio_channels; c++)
            memcpy(init + (size_t)b * item + (size_t)c * in.length,
                   src.data + (size_t)c * (size_t)src.frames, (size_t)keep * sizeof(float));
    if (!o.quiet) {
        fprintf(stderr, "dmaudio variation: %s, %.3f s at %d Hz%s; strength %g, %s %d steps, "
                        "%s, model '%s'\n",
                input, (double)src.frames / in.sample_rate, in.sample_rate,
                src.frames > in.length ? " (cut to the model's length)"
                : src.frames < in.length ? " (padded to the model's length)" : "",
                strength, dm_sampler_name(o.sampler), o.steps,
                cls >= 0 ? dm_model_class_name(m, cls) : "no class", in.name);
    }
    if (dm_generator_create(m, batch, o.threads, &gen, &err) != DM_OK) {
        fprintf(stderr, "dmaudio variation: %s\n", err.message);
        goto done;
    }
    char title[PATH_MAX + 32];
    const char *base = strrchr(input, '/');
    snprintf(title, sizeof title, "dmaudio variation of %s", base ? base + 1 : input);
    char extra[64];
    snprintf(extra, sizeof extra, ", \"strength\": %.17g", strength);

    dm_edit_progress prog = {.done = 0};
    const int per = dm_edit_steps_taken(&o, strength);
    prog.total = ((o.count + batch - 1) / batch) * per;
    dm_cli_catch_signals();
    dm_cli_progress_begin(&prog.bar, "variation", o.quiet);
    for (int b0 = 0; b0 < o.count; b0 += batch) {
        const int nb = o.count - b0 < batch ? o.count - b0 : batch;
        dm_sample_params p;
        dm_edit_sample_params(&o, cls, &prog, &p);
        p.seed = o.seeds[0] + (uint64_t)b0;
        p.init = init;
        p.strength = strength;
        if (dm_generate(gen, &p, nb, out, &err) != DM_OK) {
            dm_cli_progress_end(&prog.bar);
            if (dm_cli_signal())
                status = dm_cli_stopped("variation", "the files written so far are complete");
            else
                fprintf(stderr, "dmaudio variation: %s\n", err.message);
            goto done;
        }
        prog.done += per;
        dm_cli_progress_end(&prog.bar);
        for (int k = 0; k < nb; k++) {
            dm_recipe r;
            dm_edit_recipe(&o, m, cls, "variation", strength, o.seeds[0] + (uint64_t)(b0 + k), &r);
            dm_audio a = {.data = out + (size_t)k * item, .channels = in.audio_channels,
                          .frames = in.length, .rate = in.sample_rate};
            if (dm_edit_write(&o, &a, paths[b0 + k], title, &r, extra) != DM_EXIT_OK)
                goto done;
        }
    }
    status = DM_EXIT_OK;
done:
    dm_edit_free_paths(paths, o.count);
    free(init);
    free(out);
    dm_audio_free(&src);
    dm_generator_free(gen);
    dm_model_free(m);
    return status;
}
