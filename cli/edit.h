/* What variation, interpolate and inpaint share (cli/edit.c): their sampler options, reading
 * the input sound in the model's format, output names, the recipe, writing and progress. */
#ifndef DM_CLI_EDIT_H
#define DM_CLI_EDIT_H

#include "cli.h"

#include <getopt.h>

/* Option codes of the shared long options (beyond the single letters). */
enum {
    DM_OPT_STEPS = 300, DM_OPT_SAMPLER, DM_OPT_ETA, DM_OPT_FORMAT, DM_OPT_JSON,
    DM_OPT_FIRST_OWN = 340 /* a command's own options start here */
};

/* The long options every editing command takes; a command lists them, then its own. */
#define DM_EDIT_LONGOPTS                                                                        \
    {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},               \
    {"count", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},                 \
    {"steps", required_argument, 0, DM_OPT_STEPS},                                             \
    {"sampler", required_argument, 0, DM_OPT_SAMPLER},                                         \
    {"class", required_argument, 0, 'c'}, {"guidance", required_argument, 0, 'g'},             \
    {"eta", required_argument, 0, DM_OPT_ETA}, {"format", required_argument, 0, DM_OPT_FORMAT}, \
    {"threads", required_argument, 0, 't'}, {"force", no_argument, 0, 'f'},                    \
    {"quiet", no_argument, 0, 'q'}, {"json", no_argument, 0, DM_OPT_JSON},                     \
    {"help", no_argument, 0, 'h'}
#define DM_EDIT_SHORTOPTS ":m:o:n:s:c:g:t:fqh"

/* The usage lines of the shared options (after a command's own). */
#define DM_EDIT_USAGE_SAMPLER                                                                   \
    "      --sampler NAME    ddpm, ddim, dpmpp-2m, euler or heun [dpmpp-2m]\n"                  \
    "      --steps N         sampler steps for a whole trajectory [the sampler's default:\n"    \
    "                        ddpm 100, ddim 50, dpmpp-2m 25, euler 50, heun 25]\n"             \
    "  -c, --class NAME      the class to generate (class-conditional models) [none]\n"        \
    "  -g, --guidance G      classifier-free guidance scale, 1 = none [2]\n"                   \
    "      --eta E           DDIM noise, 0..1 [0]\n"
#define DM_EDIT_USAGE_COMMON                                                                    \
    "  -m, --model FILE      the model [$DMAUDIO_MODEL, else the bundled model]\n"             \
    "      --format F        pcm16, pcm24 or float (WAV only) [pcm24]\n"                       \
    "  -t, --threads N       threads, 0 = all cores [0]\n"                                     \
    "  -f, --force           overwrite existing files\n"                                       \
    "  -q, --quiet           no progress bar, no message\n"                                    \
    "      --json            one JSON object per file written, on stdout\n"                    \
    "  -h, --help            show this help"

#define DM_EDIT_MAX_SEEDS 2

typedef struct dm_edit_opts {
    const char *cmd;                 /* "variation"... for messages                 */
    const char *model, *output, *class_name;
    int count, steps, threads, force, quiet, json;
    int n_seeds;
    uint64_t seeds[DM_EDIT_MAX_SEEDS];
    dm_sampler_kind sampler;
    double guidance, eta;
    dm_sample_format format;
} dm_edit_opts;

void dm_edit_opts_init(dm_edit_opts *o, const char *cmd);
/* One getopt_long result: 0 handled, -1 a usage error (printed), 1 not a shared option.
 * 'h' prints usage and returns 2. max_seeds: how many --seed the command takes. */
int dm_edit_option(dm_edit_opts *o, int opt, const char *arg, char **argv, const char *usage,
                   int max_seeds);
/* After the options: the output's extension and format. 0 or -1 (printed). */
int dm_edit_check_output(const dm_edit_opts *o);

/* With the model: the class (-1: none), missing seeds drawn from /dev/urandom, the steps.
 * Returns an exit status (DM_EXIT_OK to go on). */
int dm_edit_resolve(dm_edit_opts *o, const dm_model *m, int *cls);

/* paths[i] for i < count: o->output, or numbered (OUT-001.wav...) when count > 1 or
 * numbered is set; checked (exists without --force, folder not writable). Returns an exit
 * status; on success *paths is an array to free with dm_edit_free_paths. */
int dm_edit_output_paths(const dm_edit_opts *o, int count, int numbered, char ***paths);
void dm_edit_free_paths(char **paths, int count);

/* IN read at the model's rate and channels (dm_audio_read resamples and mixes), into a
 * dm_audio owned by the caller. Prints the error (naming the file); returns an exit status. */
int dm_edit_read_input(const dm_edit_opts *o, const char *path, const dm_model_info *in,
                       dm_audio *out);

/* The recipe of a clip made with these options. */
void dm_edit_recipe(const dm_edit_opts *o, const dm_model *m, int cls, const char *mode,
                    double strength, uint64_t seed, dm_recipe *r);

/* Writes a (planar audio) to path with the recipe in its comment and title; prints the
 * "wrote" message and the JSON line. Returns an exit status. extra_json: more "key": value
 * pairs for the JSON object (", \"strength\": 0.5"), or NULL. */
int dm_edit_write(const dm_edit_opts *o, const dm_audio *a, const char *path, const char *title,
                  const dm_recipe *r, const char *extra_json);

/* A progress bar over the sampler steps of several generations. */
typedef struct dm_edit_progress {
    dm_cli_progress bar;
    int done, total;
} dm_edit_progress;
int dm_edit_on_step(void *user_data, int step, int n_steps);

/* Sampler steps a call really takes (SDEdit takes a share of them). */
int dm_edit_steps_taken(const dm_edit_opts *o, double strength);

/* Fills p from the options (sampler, steps, eta, guidance, class, progress). */
void dm_edit_sample_params(const dm_edit_opts *o, int cls, dm_edit_progress *prog,
                           dm_sample_params *p);

#endif
