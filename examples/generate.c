/* generate.c — the smallest program that makes a sound with libdmaudio.
 *
 *   generate MODEL OUT.wav [SEED [CLASS]]
 *
 * Loads a model, generates one clip with the default sampler (DPM-Solver++(2M), 25 steps,
 * guidance 2) and writes it as a 24-bit WAV at the model's rate. The same seed gives the
 * same audio as `dmaudio sample -m MODEL --seed SEED [-c CLASS]`.
 *
 * In this repository: `make examples` builds build/examples/generate. Elsewhere, with
 * dmaudio installed:
 *   cc -std=c11 generate.c -o generate $(pkg-config --cflags --libs dmaudio)
 */
#include <dmaudio.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* Called after each sampler step; a non-zero return would cancel. */
static int progress(void *user_data, int step, int n_steps)
{
    fprintf(stderr, "\r%s: step %d/%d", (const char *)user_data, step, n_steps);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL OUT.wav [SEED [CLASS]]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1], *out_path = argv[2];
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    dm_error err;

    dm_model *model;
    if (dm_model_load(model_path, &model, &err) != DM_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    dm_model_info info = dm_model_get_info(model);

    dm_sample_params p = dm_sample_default_params();
    p.seed = seed;
    if (argc > 4 && (p.cls = dm_model_find_class(model, argv[4])) < 0) {
        fprintf(stderr, "%s: the model has no class '%s'\n", model_path, argv[4]);
        dm_model_free(model);
        return 1;
    }
    p.progress = progress;
    p.progress_user_data = (void *)out_path;

    /* A generator holds the buffers of one batch; the model's weights stay shared. */
    dm_generator *gen = NULL;
    float *clip = malloc((size_t)info.audio_channels * (size_t)info.length * sizeof *clip);
    int status = 1;
    if (!clip) {
        fprintf(stderr, "out of memory\n");
    } else if (dm_generator_create(model, /*max_batch*/ 1, /*threads: all*/ 0, &gen, &err) != DM_OK ||
               dm_generate(gen, &p, /*batch*/ 1, clip, &err) != DM_OK) {
        fprintf(stderr, "\n%s\n", err.message);
    } else {
        /* clip is planar: (channels, length), as dm_audio holds it */
        dm_audio audio = {.data = clip, .channels = info.audio_channels,
                          .frames = info.length, .rate = info.sample_rate};
        dm_audio_write_params wp = dm_audio_write_default_params();
        wp.title = "made by examples/generate.c";
        if (dm_audio_write(out_path, &audio, &wp, &err) != DM_OK) { /* atomic */
            fprintf(stderr, "\n%s\n", err.message);
        } else {
            fprintf(stderr, "\rwrote %s: %.3f s at %d Hz from model '%s', seed %" PRIu64 "\n",
                    out_path, (double)info.length / info.sample_rate, info.sample_rate,
                    info.name, seed);
            status = 0;
        }
    }
    free(clip);
    dm_generator_free(gen);
    dm_model_free(model);
    return status;
}
