/* dmaudio interpolate: K clips between two seeds. Frame k starts from the spherical
 * interpolation (slerp) at f = k / (K - 1) of the initial noises of seeds A and B, so frame 1
 * is exactly `dmaudio sample --seed A` and frame K `--seed B` (same sampler and steps). The
 * fresh noise that stochastic samplers (ddpm, ddim with --eta > 0) add at each step comes
 * from seed A for f < 1/2 and from seed B after, so with those samplers the frames in between
 * change more abruptly; deterministic samplers give the smoothest morphs. */
#include "edit.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char dm_interpolate_usage[] =
    "usage: dmaudio interpolate --seed A --seed B --frames K -o OUT [OPTIONS]\n"
    "\n"
    "Writes K clips (OUT-001.wav ... OUT-00K.wav) whose initial noise moves from that of\n"
    "seed A to that of seed B along a great circle (slerp): the first clip is what\n"
    "'dmaudio sample --seed A' makes, the last what '--seed B' makes, with the same\n"
    "sampler, steps, class and guidance. Deterministic samplers (dpmpp-2m, euler, heun,\n"
    "ddim with eta 0) morph smoothly; ddpm draws fresh noise from seed A for the first half\n"
    "of the frames and from seed B for the second.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -s, --seed A --seed B the two seeds (required)\n"
    "  -k, --frames K        clips to write, 2..10000 (required)\n"
    "  -o, --output FILE     .wav or .flac (required); numbered OUT-001.wav ...\n"
    DM_EDIT_USAGE_SAMPLER
    DM_EDIT_USAGE_COMMON;

int cmd_interpolate(int argc, char **argv)
{
    static const struct option longopts[] = {
        DM_EDIT_LONGOPTS,
        {"frames", required_argument, 0, 'k'},
        {0, 0, 0, 0},
    };
    dm_edit_opts o;
    dm_edit_opts_init(&o, "interpolate");
    int frames = 0;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, DM_EDIT_SHORTOPTS "k:", longopts, NULL)) != -1) {
        int r;
        if (opt == 'k')
            r = dm_cli_int("--frames", optarg, 2, 10000, &frames);
        else if (opt == 'n') {
            fprintf(stderr, "dmaudio interpolate: use --frames K for the number of clips\n");
            r = -1;
        } else
            r = dm_edit_option(&o, opt, optarg, argv, dm_interpolate_usage, 2);
        if (r == 2)
            return DM_EXIT_OK;
        if (r != 0)
            return DM_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "dmaudio interpolate: unexpected argument '%s'\n", argv[optind]);
        return DM_EXIT_USAGE;
    }
    if (o.n_seeds != 2) {
        fprintf(stderr, "dmaudio interpolate: two seeds are needed (--seed A --seed B)\n");
        return DM_EXIT_USAGE;
    }
    if (frames == 0) {
        fprintf(stderr, "dmaudio interpolate: --frames K is needed (K >= 2)\n");
        return DM_EXIT_USAGE;
    }
    if (dm_edit_check_output(&o) != 0)
        return DM_EXIT_USAGE;

    dm_model *m = dm_cli_open_model("interpolate", o.model);
    if (!m)
        return DM_EXIT_FAILURE;
    const dm_model_info in = dm_model_get_info(m);
    int status, cls;
    char **paths = NULL;
    float *na = NULL, *nb = NULL, *noise = NULL, *out = NULL;
    dm_generator *gen = NULL;
    dm_error err;
    if ((status = dm_edit_resolve(&o, m, &cls)) != DM_EXIT_OK)
        goto done;
    if ((status = dm_edit_output_paths(&o, frames, 1, &paths)) != DM_EXIT_OK)
        goto done;
    status = DM_EXIT_FAILURE;
    const size_t net = (size_t)in.net_channels * (size_t)in.net_length;
    const size_t item = (size_t)in.audio_channels * (size_t)in.length;
    na = malloc(net * sizeof *na);
    nb = malloc(net * sizeof *nb);
    noise = malloc(net * sizeof *noise);
    out = malloc(item * sizeof *out);
    if (!na || !nb || !noise || !out) {
        fprintf(stderr, "dmaudio interpolate: out of memory\n");
        goto done;
    }
    if (dm_generator_create(m, 1, o.threads, &gen, &err) != DM_OK ||
        dm_generator_noise(gen, o.seeds[0], na, &err) != DM_OK ||
        dm_generator_noise(gen, o.seeds[1], nb, &err) != DM_OK) {
        fprintf(stderr, "dmaudio interpolate: %s\n", err.message);
        goto done;
    }
    if (!o.quiet)
        fprintf(stderr, "dmaudio interpolate: %d clips from seed %" PRIu64 " to seed %" PRIu64
                        ", %s %d steps, %s, model '%s'\n",
                frames, o.seeds[0], o.seeds[1], dm_sampler_name(o.sampler), o.steps,
                cls >= 0 ? dm_model_class_name(m, cls) : "no class", in.name);

    dm_edit_progress prog = {.done = 0, .total = frames * o.steps};
    dm_cli_catch_signals();
    dm_cli_progress_begin(&prog.bar, "interpolate", o.quiet);
    for (int k = 0; k < frames; k++) {
        const double f = (double)k / (frames - 1);
        dm_slerp(na, nb, f, noise, net);
        dm_sample_params p;
        dm_edit_sample_params(&o, cls, &prog, &p);
        p.noise = noise;
        p.seed = f < 0.5 ? o.seeds[0] : o.seeds[1];
        if (dm_generate(gen, &p, 1, out, &err) != DM_OK) {
            dm_cli_progress_end(&prog.bar);
            if (dm_cli_signal())
                status = dm_cli_stopped("interpolate", "the files written so far are complete");
            else
                fprintf(stderr, "dmaudio interpolate: %s\n", err.message);
            goto done;
        }
        prog.done += o.steps;
        dm_cli_progress_end(&prog.bar);
        dm_recipe r;
        /* the recipe's seed is the one whose step noise was used; f says where the frame is */
        dm_edit_recipe(&o, m, cls, "interpolate", 1.0, p.seed, &r);
        char title[160], extra[160];
        snprintf(title, sizeof title, "dmaudio interpolate %" PRIu64 " -> %" PRIu64 " at %.6g",
                 o.seeds[0], o.seeds[1], f);
        snprintf(extra, sizeof extra, ", \"seed_a\": %" PRIu64 ", \"seed_b\": %" PRIu64
                                      ", \"frame\": %d, \"position\": %.17g",
                 o.seeds[0], o.seeds[1], k + 1, f);
        dm_audio a = {.data = out, .channels = in.audio_channels, .frames = in.length,
                      .rate = in.sample_rate};
        if (dm_edit_write(&o, &a, paths[k], title, &r, extra) != DM_EXIT_OK)
            goto done;
    }
    status = DM_EXIT_OK;
done:
    dm_edit_free_paths(paths, frames);
    free(na), free(nb), free(noise), free(out);
    dm_generator_free(gen);
    dm_model_free(m);
    return status;
}
