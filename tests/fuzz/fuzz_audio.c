/* libFuzzer target: the audio reader path, libsndfile behind our own checks. Each input is
 * written to a file in a private temporary folder (dm_audio_* open files by name) and goes
 * through what the commands do with a user's sound:
 *   dm_audio_probe; dm_audio_read as it is; dm_audio_read_metadata and, when the comment
 *   holds a recipe, the recipe parser (cli/recipe.c); dm_dataset_load of a folder holding it
 *   as a labelled file (resampled to 8 kHz, stereo, zero-padded to 256 frames), then crops
 *   across its ends.
 * Checks: a failure carries a message naming the file; a read returns what it reports
 * (frames and channels within the limits, every sample finite); a dataset item holds at least
 * the padded length. Any crash, leak or sanitizer report is a bug. The limits are lowered
 * (2^20 frames, 8 channels) so that a hostile header cannot ask for more memory than the
 * fuzzer allows; the checks that enforce them are the ones the defaults go through.
 * Seed corpus: tests/fuzz/corpus/audio/ (small WAV, FLAC, AIFF, Ogg files and broken ones,
 * written by tests/fuzz/make_audio_corpus.c). */
#include "cli.h"
#include "dmaudio.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], sub[300], path[320];

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/dmaudio-fuzz-audio.XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    snprintf(sub, sizeof sub, "%s/kick", dir);
    snprintf(path, sizeof path, "%s/in.wav", sub);
    if (mkdir(sub, 0700) != 0)
        abort();
}

static void cleanup(void)
{
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

/* A failure must say which file. */
static void check_error(dm_status st, const dm_error *err)
{
    if (st != DM_OK && !strstr(err->message, "in.wav"))
        abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!dir[0]) {
        setup();
        atexit(cleanup);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();

    dm_error err;
    dm_audio_file_info info;
    check_error(dm_audio_probe(path, &info, &err), &err);

    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.max_frames = (int64_t)1 << 20;
    rp.max_channels = 8;
    dm_audio a;
    dm_status st = dm_audio_read(path, &rp, &a, &err);
    check_error(st, &err);
    if (st == DM_OK) {
        if (a.channels < 1 || a.channels > 8 || a.frames < 1 || a.frames > rp.max_frames)
            abort();
        for (int64_t i = 0; i < a.frames * a.channels; i++)
            if (!isfinite(a.data[i]))
                abort();
        dm_audio_free(&a);
    }

    char comment[1024];
    st = dm_audio_read_metadata(path, comment, sizeof comment, &err);
    check_error(st, &err);
    if (st == DM_OK && comment[0]) {
        dm_recipe r;
        char why[128];
        dm_recipe_parse(comment, &r, why, sizeof why);
    }

    dm_dataset_params dp = dm_dataset_default_params();
    dp.rate = 8000;
    dp.channels = 2;
    dp.length = 256;
    dp.max_frames = (int64_t)1 << 20;
    dm_dataset *ds;
    st = dm_dataset_load(dir, &dp, &ds, &err);
    check_error(st, &err);
    if (st == DM_OK) {
        int64_t frames;
        int cls;
        if (dm_dataset_count(ds) != 1 || dm_dataset_n_classes(ds) != 1 ||
            dm_dataset_item(ds, 0, NULL, &frames, &cls) != DM_OK || frames < 256 || cls != 0)
            abort();
        float crop[2 * 300];
        if (dm_dataset_crop(ds, 0, -100, 300, crop) != DM_OK ||
            dm_dataset_crop(ds, 0, frames - 100, 300, crop) != DM_OK)
            abort();
        for (int i = 0; i < 2 * 300; i++)
            if (!isfinite(crop[i]))
                abort();
        dm_dataset_free(ds);
    }
    return 0;
}
