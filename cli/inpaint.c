/* dmaudio inpaint: regenerates the part [from, to) of a sound and keeps the rest. The model
 * sees one clip-length window of the input that holds the region (centred on it when the
 * input allows), with the known samples of that window as the in-painting mask's "keep"
 * part (dm_sample_params.mask); the generated region is then spliced into the input, whose
 * other samples are copied unchanged (bit for bit at the output's sample format). A region
 * that runs past the end of the input continues it: the output is then as long as `to`. */
#include "edit.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char dm_inpaint_usage[] =
    "usage: dmaudio inpaint IN --from SEC --to SEC -o OUT [OPTIONS]\n"
    "\n"
    "Regenerates the part of the sound IN from --from to --to seconds, consistent with\n"
    "what surrounds it, and keeps every other sample of IN as it is. IN is read at the\n"
    "model's rate and channels; the region must fit in one of the model's clips. A --to\n"
    "past the end of IN continues the sound (the output is then --to seconds long).\n"
    "Each file's recipe holds mode=inpaint but not IN: run inpaint again on the same input\n"
    "with the recipe's seed to remake it.\n"
    "\n"
    "options (defaults in brackets):\n"
    "      --from SEC        start of the part to regenerate, in seconds (required)\n"
    "      --to SEC          its end, in seconds (required)\n"
    "  -o, --output FILE     .wav or .flac (required); with -n K > 1, OUT-001.wav ...\n"
    "  -n, --count K         versions to write; version i uses seed S+i [1]\n"
    "  -s, --seed S          random seed [drawn from /dev/urandom, and printed]\n"
    DM_EDIT_USAGE_SAMPLER
    DM_EDIT_USAGE_COMMON;

enum { OPT_FROM = DM_OPT_FIRST_OWN, OPT_TO };

int cmd_inpaint(int argc, char **argv)
{
    static const struct option longopts[] = {
        DM_EDIT_LONGOPTS,
        {"from", required_argument, 0, OPT_FROM},
        {"to", required_argument, 0, OPT_TO},
        {0, 0, 0, 0},
    };
    dm_edit_opts o;
    dm_edit_opts_init(&o, "inpaint");
    double from = -1, to = -1;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, DM_EDIT_SHORTOPTS, longopts, NULL)) != -1) {
        int r;
        if (opt == OPT_FROM)
            r = dm_cli_double("--from", optarg, 0, 1e6, &from);
        else if (opt == OPT_TO)
            r = dm_cli_double("--to", optarg, 0, 1e6, &to);
        else
            r = dm_edit_option(&o, opt, optarg, argv, dm_inpaint_usage, 1);
        if (r == 2)
            return DM_EXIT_OK;
        if (r != 0)
            return DM_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio inpaint: no input sound (usage: dmaudio inpaint IN --from SEC "
                        "--to SEC -o OUT)\n");
        return DM_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio inpaint: unexpected argument '%s' (one input sound)\n",
                argv[optind + 1]);
        return DM_EXIT_USAGE;
    }
    if (from < 0 || to < 0) {
        fprintf(stderr, "dmaudio inpaint: --from SEC and --to SEC are both needed\n");
        return DM_EXIT_USAGE;
    }
    if (!(to > from)) {
        fprintf(stderr, "dmaudio inpaint: --to %g must come after --from %g\n", to, from);
        return DM_EXIT_USAGE;
    }
    const char *input = argv[optind];
    if (dm_edit_check_output(&o) != 0)
        return DM_EXIT_USAGE;

    dm_model *m = dm_cli_open_model("inpaint", o.model);
    if (!m)
        return DM_EXIT_FAILURE;
    const dm_model_info in = dm_model_get_info(m);
    const int C = in.audio_channels, L = in.length, rate = in.sample_rate;
    int status, cls;
    char **paths = NULL;
    float *init = NULL, *mask = NULL, *gen_out = NULL;
    dm_generator *gen = NULL;
    dm_audio src = {0}, res = {0};
    dm_error err;
    if ((status = dm_edit_resolve(&o, m, &cls)) != DM_EXIT_OK)
        goto done;
    const int64_t a = (int64_t)llround(from * rate), b = (int64_t)llround(to * rate);
    if (b <= a) {
        fprintf(stderr, "dmaudio inpaint: --from %g --to %g is less than a sample at %d Hz\n",
                from, to, rate);
        status = DM_EXIT_USAGE;
        goto done;
    }
    if (b - a > L) {
        fprintf(stderr, "dmaudio inpaint: the region (%.6g s) is longer than the model's clips "
                        "(%.6g s)\n", (double)(b - a) / rate, (double)L / rate);
        status = DM_EXIT_USAGE;
        goto done;
    }
    if ((status = dm_edit_output_paths(&o, o.count, 0, &paths)) != DM_EXIT_OK)
        goto done;
    if ((status = dm_edit_read_input(&o, input, &in, &src)) != DM_EXIT_OK)
        goto done;
    status = DM_EXIT_FAILURE;
    const int64_t N = src.frames;
    if (a > N) {
        fprintf(stderr, "dmaudio inpaint: %s is %.6g s long at %d Hz; --from %g is past its end\n",
                input, (double)N / rate, rate, from);
        status = DM_EXIT_USAGE;
        goto done;
    }
    const int64_t total = N > b ? N : b; /* frames of the result */
    /* the window the model sees: L frames holding [a, b), centred on it where possible */
    int64_t w0 = a - (L - (b - a)) / 2;
    if (w0 > total - L)
        w0 = total - L;
    if (w0 < 0)
        w0 = 0;

    const int batch = o.count < 8 ? o.count : 8;
    const size_t item = (size_t)C * (size_t)L;
    init = calloc((size_t)batch * item, sizeof *init);
    mask = calloc((size_t)L, sizeof *mask);
    gen_out = malloc((size_t)batch * item * sizeof *gen_out);
    if (!init || !mask || !gen_out || dm_audio_alloc(&res, C, total, rate, &err) != DM_OK) {
        fprintf(stderr, "dmaudio inpaint: out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < L; i++) {
        const int64_t s = w0 + i;
        const int known = s < N && (s < a || s >= b);
        mask[i] = known ? 1.0f : 0.0f;
        for (int c = 0; c < C && s < N; c++)
            for (int k = 0; k < batch; k++)
                init[(size_t)k * item + (size_t)c * L + i] = src.data[(size_t)c * N + s];
    }
    if (!o.quiet)
        fprintf(stderr, "dmaudio inpaint: %s, %.3f s at %d Hz; regenerating %.3f..%.3f s%s, "
                        "%s %d steps, %s, model '%s'\n",
                input, (double)N / rate, rate, (double)a / rate, (double)b / rate,
                b > N ? " (continuing past the end)" : "", dm_sampler_name(o.sampler), o.steps,
                cls >= 0 ? dm_model_class_name(m, cls) : "no class", in.name);
    if (dm_generator_create(m, batch, o.threads, &gen, &err) != DM_OK) {
        fprintf(stderr, "dmaudio inpaint: %s\n", err.message);
        goto done;
    }
    char title[PATH_MAX + 64], extra[96];
    const char *base = strrchr(input, '/');
    snprintf(title, sizeof title, "dmaudio inpaint of %s, %.6g..%.6g s", base ? base + 1 : input,
             (double)a / rate, (double)b / rate);
    snprintf(extra, sizeof extra, ", \"from\": %.10g, \"to\": %.10g", (double)a / rate,
             (double)b / rate);

    dm_edit_progress prog = {.done = 0, .total = ((o.count + batch - 1) / batch) * o.steps};
    dm_cli_catch_signals();
    dm_cli_progress_begin(&prog.bar, "inpaint", o.quiet);
    for (int b0 = 0; b0 < o.count; b0 += batch) {
        const int nb = o.count - b0 < batch ? o.count - b0 : batch;
        dm_sample_params p;
        dm_edit_sample_params(&o, cls, &prog, &p);
        p.seed = o.seeds[0] + (uint64_t)b0;
        p.init = init;
        p.mask = mask;
        if (dm_generate(gen, &p, nb, gen_out, &err) != DM_OK) {
            dm_cli_progress_end(&prog.bar);
            if (dm_cli_signal())
                status = dm_cli_stopped("inpaint", "the files written so far are complete");
            else
                fprintf(stderr, "dmaudio inpaint: %s\n", err.message);
            goto done;
        }
        prog.done += o.steps;
        dm_cli_progress_end(&prog.bar);
        for (int k = 0; k < nb; k++) {
            /* the input as it is, then the regenerated region spliced in */
            for (int c = 0; c < C; c++) {
                float *dst = res.data + (size_t)c * total;
                const float *g = gen_out + (size_t)k * item + (size_t)c * L;
                memcpy(dst, src.data + (size_t)c * N, (size_t)N * sizeof *dst);
                for (int64_t s = a; s < b; s++)
                    dst[s] = g[s - w0];
            }
            dm_recipe r;
            dm_edit_recipe(&o, m, cls, "inpaint", 1.0, o.seeds[0] + (uint64_t)(b0 + k), &r);
            if (dm_edit_write(&o, &res, paths[b0 + k], title, &r, extra) != DM_EXIT_OK)
                goto done;
        }
    }
    status = DM_EXIT_OK;
done:
    dm_edit_free_paths(paths, o.count);
    free(init), free(mask), free(gen_out);
    dm_audio_free(&src);
    dm_audio_free(&res);
    dm_generator_free(gen);
    dm_model_free(m);
    return status;
}
