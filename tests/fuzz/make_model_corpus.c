/* Writes the model fuzzer's seed corpus: small valid models (float32 and
 * float16, with and without classes, a checkpoint) and a few broken ones.
 * Build and run from the repository root:
 *   cc -std=c11 -Icore/include -Icore/src tests/fuzz/make_model_corpus.c build/libdmaudio.a \
 *      $(pkg-config --libs openblas sndfile fftw3f samplerate zlib) -fopenmp -lm -o /tmp/mmc
 *   /tmp/mmc tests/fuzz/corpus/model */
#include "dmaudio.h"

#include <stdio.h>
#include <string.h>

static dm_model *tiny(int n_classes, int levels)
{
    static const char *const names[] = {"kick", "snare", "hat"};
    dm_model_params p = dm_model_default_params();
    p.unet.n_levels = levels;
    p.unet.channels[0] = 4, p.unet.channels[1] = 8;
    p.unet.factors[0] = 2;
    p.unet.attention[0] = 0, p.unet.attention[1] = levels > 1;
    p.unet.attention[2] = 0;
    p.unet.heads = 2, p.unet.groups = 2, p.unet.kernel = 3;
    p.sample_rate = 8000, p.length = 64;
    p.n_classes = n_classes, p.class_names = n_classes ? names : NULL;
    p.name = "fuzz-seed";
    dm_model *m = NULL;
    dm_error err;
    if (dm_model_create(&p, 1, &m, &err) != DM_OK)
        fprintf(stderr, "%s\n", err.message);
    return m;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[512];
    dm_model *a = tiny(3, 2), *b = tiny(0, 1);
    snprintf(path, sizeof path, "%s/classes-f32.dmm", dir);
    dm_model_save(a, path, 0, NULL);
    snprintf(path, sizeof path, "%s/classes-f16.dmm", dir);
    dm_model_save(a, path, 1, NULL);
    snprintf(path, sizeof path, "%s/one-level.dmm", dir);
    dm_model_save(b, path, 1, NULL);
    dm_train_params tp = dm_train_default_params();
    tp.batch = 1;
    dm_trainer *t;
    if (dm_trainer_create(b, &tp, &t, NULL) == DM_OK) {
        snprintf(path, sizeof path, "%s/checkpoint.dmc", dir);
        dm_trainer_save(t, path, NULL);
        dm_trainer_free(t);
    }
    /* a truncated model */
    snprintf(path, sizeof path, "%s/classes-f16.dmm", dir);
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/truncated.dmm", dir);
    f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, n / 2, f);
        fclose(f);
    }
    dm_model_free(a);
    dm_model_free(b);
    return 0;
}
