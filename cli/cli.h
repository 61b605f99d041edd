/* Shared declarations of the dmaudio command's subcommands. */
#ifndef DM_CLI_H
#define DM_CLI_H

#include "dmaudio.h"

#include <stdio.h>

#define DM_CLI_VERSION "0.1.0"

enum { DM_EXIT_OK = 0, DM_EXIT_FAILURE = 1, DM_EXIT_USAGE = 2 };

typedef struct dm_command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
} dm_command;

void dm_cli_print_command_help(const dm_command *cmd, FILE *out);

#define DM_ARCH_USAGE                                                                           \
    "usage: dmaudio arch [OPTIONS]\n"                                                           \
    "\n"                                                                                        \
    "options (defaults in brackets):\n"                                                         \
    "  --channels LIST   widths per level, comma-separated [32,64,128]\n"                      \
    "  --factors LIST    length ratio between levels, even [4,4]\n"                            \
    "  --attention LIST  levels with self-attention, comma-separated indices [2]\n"            \
    "  --blocks N        residual blocks per level [1]\n"                                       \
    "  --heads N         attention heads [4]\n"                                                 \
    "  --groups N        GroupNorm groups [4]\n"                                                \
    "  --kernel N        convolution kernel, odd [5]\n"                                         \
    "  --classes N       number of classes, 0 for unconditional [0]\n"                          \
    "  --positions P     position channels joined to the input, even [0]\n"                    \
    "  --in N, --out N   input and output channels [1, 1]\n"                                    \
    "  --length N        samples per clip, for FLOPs and memory [16384]\n"                      \
    "  --batch N         batch size, for FLOPs and memory [1]\n"                                \
    "  --tensors         also list every parameter tensor\n"                                    \
    "  --json            print JSON on stdout instead of text\n"                                \
    "  -h, --help        show this help"

int cmd_arch(int argc, char **argv);

/* sample, info, train, synth: cli/sample.c, info.c, train.c, synth.c */
extern const char dm_sample_usage[], dm_info_usage[], dm_train_usage[], dm_synth_usage[];
int cmd_sample(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_synth(int argc, char **argv);

/* augment, play, devices: cli/augment.c, cli/play.c */
extern const char dm_augment_usage[], dm_play_usage[], dm_devices_usage[];
int cmd_augment(int argc, char **argv);
int cmd_play(int argc, char **argv);
int cmd_devices(int argc, char **argv);

/* variation, interpolate, inpaint, eval, spectrogram: cli/variation.c, interpolate.c,
 * inpaint.c, eval.c, spectrogram.c (the first three share cli/edit.c) */
extern const char dm_variation_usage[], dm_interpolate_usage[], dm_inpaint_usage[],
    dm_eval_usage[], dm_spectrogram_usage[];
int cmd_variation(int argc, char **argv);
int cmd_interpolate(int argc, char **argv);
int cmd_inpaint(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_spectrogram(int argc, char **argv);
/* Plays interleaved float samples (frames x channels, in [-1, 1]) at rate Hz
 * through PortAudio and returns when they have been heard. device: NULL or ""
 * for $DMAUDIO_DEVICE, else the default output; a number is a device index (as
 * `dmaudio devices` lists them), anything else a device name (exact, or a
 * unique case-insensitive part of one). Resamples when the device refuses the
 * rate, mixes down to mono for a mono device. Ctrl-C stops playback (SIGINT is
 * then re-raised for the caller's handler, or exits 130 by default). Returns 0,
 * or 1 with a one-line message in err (n bytes), e.g. "no output device
 * 'foo' (see 'dmaudio devices')". */
int dm_cli_play(const float *interleaved, int channels, int64_t frames, int rate,
                const char *device, char *err, size_t n);
/* 0 if device (as for dm_cli_play) names an output device, else 1 with a
 * one-line message in err: checked before work whose result is to be played. */
int dm_cli_check_device(const char *device, char *err, size_t n);
/* The same in steps, for several clips played back to back on one stream
 * (`sample -n N --play`): open (Ctrl-C then stops playback, see above), write
 * as many times as needed (returns when the clip is queued), close (drain: wait
 * until everything queued has played; re-raises a Ctrl-C received meanwhile).
 * Each returns 0, or 1 with a one-line message in err. */
typedef struct dm_cli_player dm_cli_player;
int dm_cli_player_open(dm_cli_player **out, const char *device, char *err, size_t n);
int dm_cli_player_write(dm_cli_player *p, const float *interleaved, int channels,
                        int64_t frames, int rate, char *err, size_t n);
int dm_cli_player_close(dm_cli_player *p, int drain, char *err, size_t n);
/* 1 once Ctrl-C was pressed while a player was open: long work stops early. */
int dm_cli_play_interrupted(void);

/* ---- shared by the subcommands (cli/common.c) ---- */

/* The model to use: `path` when given, else $DMAUDIO_MODEL, else the bundled
 * default model (models/default.dmm beside the build tree, then
 * PREFIX/share/dmaudio/models/default.dmm). Prints a one-line error naming the
 * file and returns NULL on failure. */
dm_model *dm_cli_open_model(const char *cmd, const char *path);
/* Where the bundled default model is looked for, first existing one (or the
 * first candidate if none exists) into buf. */
const char *dm_cli_default_model_path(char *buf, size_t n);
/* The file dm_cli_open_model(cmd, path) opens: path, else $DMAUDIO_MODEL, else
 * the bundled model's path (into buf), for messages and JSON. */
const char *dm_cli_model_path(const char *path, char *buf, size_t n);

/* Ctrl-C (SIGINT) and SIGTERM set a flag instead of ending the process, so
 * that long work stops at a clean point: the step under way finishes, no file
 * is left half-written. A signal ignored on entry stays ignored (a background
 * job of a shell without job control); a second Ctrl-C stops at once.
 * dm_cli_signal() is the signal caught, or 0. dm_cli_stopped() prints
 * "dmaudio CMD: stopped by Ctrl-C (SIGINT); WHAT" and returns 128 + signal,
 * the exit status. */
void dm_cli_catch_signals(void);
int dm_cli_signal(void);
int dm_cli_stopped(const char *cmd, const char *what);

/* Progress on stderr, only when stderr is a terminal and not quiet:
 * "label  [#####     ]  12/50  ETA 0:03". */
typedef struct dm_cli_progress {
    const char *label;
    int enabled;
    double start;
} dm_cli_progress;
void dm_cli_progress_begin(dm_cli_progress *p, const char *label, int quiet);
void dm_cli_progress_update(dm_cli_progress *p, double done, double total);
void dm_cli_progress_end(dm_cli_progress *p);
double dm_cli_now(void); /* monotonic seconds */

/* The recipe every generated file carries in its comment metadata, so that it
 * can be reproduced (`dmaudio sample --recipe FILE`) or varied. One line:
 *   dmaudio-recipe/1 model=NAME crc=8HEX seed=N sampler=NAME steps=N class=NAME|-
 *   guidance=G strength=S eta=E mode=sample|variation|inpaint|interpolate version=V
 *   rate=HZ frames=N format=pcm24|pcm16|float
 * rate, frames and format describe the file as written (after --rate and
 * --length); older recipes lack them, and a reader then takes them from the
 * file itself. Unknown keys are ignored when parsing; values never
 * contain spaces. */
typedef struct dm_recipe {
    char model[DM_NAME_MAX];
    uint32_t crc;
    uint64_t seed;
    char sampler[16];
    int steps;
    char cls[DM_NAME_MAX];       /* "-" when unconditional */
    double guidance, strength, eta;
    char mode[16];
    char version[16];
    int rate;                    /* 0: not in the recipe */
    int64_t frames;              /* 0: not in the recipe */
    char format[16];             /* "": not in the recipe */
} dm_recipe;
void dm_recipe_format(const dm_recipe *r, char *out, size_t n);
/* 0 on success; -1 with a reason in why (e.g. "not a dmaudio recipe"). */
int dm_recipe_parse(const char *text, dm_recipe *r, char *why, size_t why_n);

/* Parses a whole decimal integer in [lo, hi]; prints a usage error naming the
 * option and returns -1 when it is not one. */
int dm_cli_int(const char *option, const char *text, long lo, long hi, int *out);
/* "32,64,128": at most max integers in [lo, hi] into values; the count, or -1
 * after a usage message (cli/arch.c). */
int dm_cli_int_list(const char *option, const char *text, int *values, int max, long lo,
                    long hi);
/* The same for a seed (any uint64) and a real number in [lo, hi] (cli/values.c). */
int dm_cli_u64(const char *option, const char *text, uint64_t *out);
int dm_cli_double(const char *option, const char *text, double lo, double hi, double *out);
/* Writes s as a quoted, escaped JSON string. */
void dm_cli_json_string(FILE *out, const char *s);

/* ---- data-parallel training (cli/mpi.c; MPI only when built with DM_MPI) ---- */

/* The processes training together: rank 0 of 1 without MPI, or when the command was not
 * launched by mpirun / mpiexec / srun. */
typedef struct dm_cli_group {
    int rank, size;
    int local_size;              /* processes on this machine            */
    float *scratch;              /* the reduce's receive buffer: set by  */
                                 /* the caller, dm_unet_n_params floats  */
} dm_cli_group;
/* MPI_Init when launched by an MPI launcher; 0, or -1 after a message. */
int dm_cli_group_start(int *argc, char ***argv, dm_cli_group *g);
void dm_cli_group_stop(void);               /* MPI_Finalize */
void dm_cli_group_abort(int status);        /* MPI_Abort: every process exits */
int dm_cli_group_max(int value);            /* the maximum over the processes */
int dm_cli_group_same(uint32_t value);      /* 1 when every process has this value */
/* A dm_train_reduce_fn; user_data is the dm_cli_group. */
dm_status dm_cli_group_reduce(float *grads, size_t n, double *loss, void *user_data);
/* "Open MPI v4.1.4" when built with MPI, else NULL. */
const char *dm_cli_group_library(void);

#endif
