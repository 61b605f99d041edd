/* dmaudio train: trains a model on a folder of sounds (one sub-folder per
 * class, or none), with periodic checkpoints, a wall-clock budget, and a
 * clean stop on Ctrl-C / SIGTERM: the step under way finishes, the checkpoint
 * and the model are saved, and `--resume` continues exactly where it stopped
 * (the data order is a pure function of the seed and the step number).
 * Under mpirun / srun (built with MPI=1) the processes share every step's
 * batch (cli/mpi.c); rank 0 alone prints and writes files. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char dm_train_usage[] =
    "usage: dmaudio train DATA_DIR -o MODEL [OPTIONS]\n"
    "\n"
    "Trains a diffusion model on the audio files under DATA_DIR (wav, flac, ogg,\n"
    "aiff). Files in sub-folders are labelled by the folder's name (DATA_DIR/kick/,\n"
    "DATA_DIR/snare/...): the model is then class-conditional. A checkpoint is\n"
    "written as it goes; Ctrl-C stops cleanly and --resume continues.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -o, --output MODEL        the model file to write (required)\n"
    "      --preset NAME         tiny (widths 16,32,64), small (32,64,128) or base\n"
    "                            (64,128,256,256 factors 4,4,4); attention at the last\n"
    "                            level, 8 groups, 4 heads, kernel 5 [small]\n"
    "      --channels LIST       widths per level, overrides the preset's\n"
    "      --factors LIST        length ratios between levels [4 each]\n"
    "      --attention LIST      levels with self-attention [the last]\n"
    "      --blocks N            residual blocks per level [1]\n"
    "      --kernel N            convolution kernel, odd [5]\n"
    "      --positions P         P sinusoids of the frame index join the input, so\n"
    "                            the network knows where in the clip it is (even,\n"
    "                            up to 256; 0 = none) [0]\n"
    "      --groups N, --heads N GroupNorm groups and attention heads [8, 4]\n"
    "      --repr NAME           wave or spec (compressed STFT) [wave]\n"
    "      --n-fft N, --hop N    spec: STFT size and hop [512, 128]\n"
    "  -r, --rate HZ             sample rate of the model [the first file's]\n"
    "  -l, --length SAMPLES      clip length, rounded up to a multiple of the factors'\n"
    "                            product [the longest file, at most 65536]\n"
    "      --seconds SEC         the clip length in seconds instead\n"
    "      --steps N             training steps (the total, also when resuming) [10000;\n"
    "                            when resuming, the checkpoint's]\n"
    "  -b, --batch N             clips per step [16]\n"
    "      --lr X                peak learning rate (AdamW, cosine decay) [3e-4]\n"
    "      --warmup N            learning-rate warm-up steps [min(100, steps/10)]\n"
    "      --schedule NAME       noise schedule, linear or cosine [cosine]\n"
    "      --schedule-shift S    scale the schedule's noise by S against the data\n"
    "                            (SNR / S^2), so that long clips' coarse shape is\n"
    "                            learnt; 1/64..64 [1]\n"
    "      --prediction NAME     what the network predicts: v, eps or x0 (x0: silence\n"
    "                            is an output of 0, not a copy of the input's noise) [v]\n"
    "      --data-scale X|auto   audio gain before diffusion; auto = 0.5 / RMS of the\n"
    "                            data (spec: of its compressed STFT), clamped to\n"
    "                            0.1..100 [auto]\n"
    "      --ema X               decay of the weights' moving average [0.999]\n"
    "      --min-snr G           min-SNR-gamma loss weighting, 0 = off [0]\n"
    "      --class-dropout P     share of steps trained without the class [0.1]\n"
    "  -s, --seed S              weights, data order and noise [1]\n"
    "      --name NAME           the model's name [MODEL's file name]\n"
    "      --max-time SEC        stop after this wall-clock time, saving everything\n"
    "      --checkpoint FILE     [MODEL.ckpt]\n"
    "      --checkpoint-every N  steps between checkpoints [500, or 10 minutes]\n"
    "      --resume              continue from the checkpoint (the architecture and\n"
    "                            training settings are the checkpoint's)\n"
    "      --float16             store the model's weights as float16\n"
    "      --shards N            cut each batch into N equal parts, trained one after\n"
    "                            the other and summed in a fixed order (less memory;\n"
    "                            processes share them) [the number of processes]\n"
    "  -t, --threads N           threads, 0 = all cores (shared by the processes\n"
    "                            of one machine) [0]\n"
    "  -f, --force               start over even if MODEL or the checkpoint exists\n"
    "  -q, --quiet               no progress and no message\n"
    "      --json                at the end, one JSON object on stdout: model,\n"
    "                            checkpoint, step, steps, loss, seconds, stopped\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 done (or --max-time reached), 1 error, 2 usage error, 130 after\n"
    "Ctrl-C and 143 after SIGTERM (both save the checkpoint and the model first).\n"
    "\n"
    "On several processes (a dmaudio built with make MPI=1): mpirun -np N dmaudio\n"
    "train ... (or srun) splits each batch between the N processes, which keep\n"
    "identical weights: the result is bitwise that of one process with --shards N\n"
    "(N a power of two). Rank 0 prints and writes the files; all read DATA_DIR and\n"
    "the checkpoint, which resumes on any number of processes dividing its shards.";

#define DEFAULT_MAX_LENGTH 65536
#define CHECKPOINT_STEPS 500
#define CHECKPOINT_SECONDS 600.0

/* Set by the signal handler, read by the training loop: the only thing the
 * handler does. */
static volatile sig_atomic_t stop_signal = 0;

static void on_signal(int sig) { stop_signal = sig; }

/* A signal ignored on entry stays ignored (a background job of a shell
 * without job control ignores SIGINT, as nohup does SIGHUP). */
static void install_handlers(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C stops at once */
    const int sigs[] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
}

enum {
    OPT_PRESET = 256, OPT_CHANNELS, OPT_FACTORS, OPT_ATTENTION, OPT_BLOCKS, OPT_KERNEL,
    OPT_POSITIONS, OPT_SCHEDULE_SHIFT,
    OPT_GROUPS, OPT_HEADS, OPT_REPR, OPT_SECONDS, OPT_STEPS, OPT_LR, OPT_WARMUP, OPT_SCHEDULE,
    OPT_PREDICTION, OPT_DATA_SCALE, OPT_EMA, OPT_MIN_SNR, OPT_CLASS_DROPOUT, OPT_NAME,
    OPT_MAX_TIME, OPT_CHECKPOINT, OPT_CHECKPOINT_EVERY, OPT_RESUME, OPT_FLOAT16, OPT_N_FFT,
    OPT_HOP, OPT_SHARDS, OPT_JSON,
};

typedef struct train_opts {
    const char *data, *output, *checkpoint, *name;
    dm_unet_config unet;
    int n_channels, n_factors, n_attn, attn[DM_MAX_LEVELS];
    dm_repr repr;
    int n_fft, hop;               /* spec only */
    int rate, length, steps, batch, warmup, threads, ckpt_every, shards;
    double seconds, lr, data_scale, ema, min_snr, class_dropout, max_time;
    dm_schedule_kind schedule;
    double schedule_shift;
    dm_prediction prediction;
    uint64_t seed;
    int resume, float16, force, quiet, json, steps_given;
    char fixed[256];              /* options a --resume keeps from the checkpoint */
} train_opts;

/* ---- presets ---- */

static int apply_preset(const char *name, dm_unet_config *u)
{
    static const struct {
        const char *name;
        int levels, channels[4], factors[3];
    } presets[] = {
        {"tiny", 3, {16, 32, 64}, {4, 4}},
        {"small", 3, {32, 64, 128}, {4, 4}},
        {"base", 4, {64, 128, 256, 256}, {4, 4, 4}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(name, presets[i].name) != 0)
            continue;
        *u = dm_unet_default_config();
        u->n_levels = presets[i].levels;
        memset(u->channels, 0, sizeof u->channels);
        memset(u->factors, 0, sizeof u->factors);
        memset(u->attention, 0, sizeof u->attention);
        for (int l = 0; l < u->n_levels; l++)
            u->channels[l] = presets[i].channels[l];
        for (int l = 0; l + 1 < u->n_levels; l++)
            u->factors[l] = presets[i].factors[l];
        u->attention[u->n_levels - 1] = 1;
        u->groups = 8, u->heads = 4, u->kernel = 5, u->blocks = 1;
        return 0;
    }
    fprintf(stderr, "dmaudio train: --preset: unknown preset '%s' (tiny, small, base)\n", name);
    return -1;
}

/* ---- options ---- */

static int parse_options(int argc, char **argv, train_opts *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},
        {"preset", required_argument, 0, OPT_PRESET},
        {"channels", required_argument, 0, OPT_CHANNELS},
        {"factors", required_argument, 0, OPT_FACTORS},
        {"attention", required_argument, 0, OPT_ATTENTION},
        {"blocks", required_argument, 0, OPT_BLOCKS},
        {"kernel", required_argument, 0, OPT_KERNEL},
        {"positions", required_argument, 0, OPT_POSITIONS},
        {"groups", required_argument, 0, OPT_GROUPS},
        {"heads", required_argument, 0, OPT_HEADS},
        {"repr", required_argument, 0, OPT_REPR},
        {"n-fft", required_argument, 0, OPT_N_FFT},
        {"hop", required_argument, 0, OPT_HOP},
        {"rate", required_argument, 0, 'r'},
        {"length", required_argument, 0, 'l'},
        {"seconds", required_argument, 0, OPT_SECONDS},
        {"steps", required_argument, 0, OPT_STEPS},
        {"json", no_argument, 0, OPT_JSON},
        {"batch", required_argument, 0, 'b'},
        {"lr", required_argument, 0, OPT_LR},
        {"warmup", required_argument, 0, OPT_WARMUP},
        {"schedule", required_argument, 0, OPT_SCHEDULE},
        {"schedule-shift", required_argument, 0, OPT_SCHEDULE_SHIFT},
        {"prediction", required_argument, 0, OPT_PREDICTION},
        {"data-scale", required_argument, 0, OPT_DATA_SCALE},
        {"ema", required_argument, 0, OPT_EMA},
        {"min-snr", required_argument, 0, OPT_MIN_SNR},
        {"class-dropout", required_argument, 0, OPT_CLASS_DROPOUT},
        {"seed", required_argument, 0, 's'},
        {"name", required_argument, 0, OPT_NAME},
        {"max-time", required_argument, 0, OPT_MAX_TIME},
        {"checkpoint", required_argument, 0, OPT_CHECKPOINT},
        {"checkpoint-every", required_argument, 0, OPT_CHECKPOINT_EVERY},
        {"resume", no_argument, 0, OPT_RESUME},
        {"float16", no_argument, 0, OPT_FLOAT16},
        {"shards", required_argument, 0, OPT_SHARDS},
        {"threads", required_argument, 0, 't'},
        {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    /* the preset first, whatever its position: the other options override it */
    const char *preset = "small";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            preset = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0)
            preset = argv[i] + 9;
    }
    if (apply_preset(preset, &o->unet) != 0)
        return -1;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":o:r:l:b:s:t:fqh", longopts, NULL)) != -1) {
        int r = 0, fixed = 1;
        dm_unet_config *u = &o->unet;
        switch (opt) {
        case 'o': o->output = optarg, fixed = 0; break;
        case OPT_PRESET: break; /* applied above */
        case OPT_CHANNELS:
            r = o->n_channels =
                dm_cli_int_list("--channels", optarg, u->channels, DM_MAX_LEVELS, 1, 8192);
            break;
        case OPT_FACTORS:
            r = o->n_factors =
                dm_cli_int_list("--factors", optarg, u->factors, DM_MAX_LEVELS - 1, 2, 64);
            break;
        case OPT_ATTENTION:
            r = o->n_attn =
                dm_cli_int_list("--attention", optarg, o->attn, DM_MAX_LEVELS, 0, DM_MAX_LEVELS - 1);
            break;
        case OPT_BLOCKS: r = dm_cli_int("--blocks", optarg, 1, 16, &u->blocks); break;
        case OPT_KERNEL: r = dm_cli_int("--kernel", optarg, 1, 63, &u->kernel); break;
        case OPT_POSITIONS:
            r = dm_cli_int("--positions", optarg, 0, 256, &u->positions);
            if (r == 0 && u->positions % 2) {
                fprintf(stderr, "dmaudio train: --positions: %d is odd (sines and cosines come "
                                "in pairs)\n", u->positions);
                r = -1;
            }
            break;
        case OPT_GROUPS: r = dm_cli_int("--groups", optarg, 1, 1024, &u->groups); break;
        case OPT_HEADS: r = dm_cli_int("--heads", optarg, 1, 1024, &u->heads); break;
        case OPT_REPR:
            if (dm_repr_from_name(optarg, &o->repr) != 0) {
                fprintf(stderr, "dmaudio train: --repr: unknown representation '%s' (wave, "
                                "spec)\n", optarg);
                r = -1;
            }
            break;
        case OPT_N_FFT: r = dm_cli_int("--n-fft", optarg, 16, 8192, &o->n_fft); break;
        case OPT_HOP: r = dm_cli_int("--hop", optarg, 1, 4096, &o->hop); break;
        case 'r':
            r = dm_cli_int("--rate", optarg, 8000, 384000, &o->rate);
            fixed = 0; /* a resumed run checks it against the checkpoint */
            break;
        case 'l': r = dm_cli_int("--length", optarg, 16, 1 << 22, &o->length); break;
        case OPT_SECONDS: r = dm_cli_double("--seconds", optarg, 1e-3, 600, &o->seconds); break;
        case OPT_STEPS:
            r = dm_cli_int("--steps", optarg, 1, 1000000000, &o->steps), fixed = 0;
            o->steps_given = 1;
            break;
        case 'b': r = dm_cli_int("--batch", optarg, 1, 1024, &o->batch); break;
        case OPT_SHARDS: r = dm_cli_int("--shards", optarg, 1, 1024, &o->shards); break;
        case OPT_LR: r = dm_cli_double("--lr", optarg, 1e-9, 1, &o->lr); break;
        case OPT_WARMUP: r = dm_cli_int("--warmup", optarg, 0, 1000000000, &o->warmup); break;
        case OPT_SCHEDULE:
            if (dm_schedule_from_name(optarg, &o->schedule) != 0) {
                fprintf(stderr, "dmaudio train: --schedule: unknown schedule '%s' (linear, "
                                "cosine)\n", optarg);
                r = -1;
            }
            break;
        case OPT_SCHEDULE_SHIFT:
            r = dm_cli_double("--schedule-shift", optarg, 1.0 / 64, 64, &o->schedule_shift);
            break;
        case OPT_PREDICTION:
            if (dm_prediction_from_name(optarg, &o->prediction) != 0) {
                fprintf(stderr, "dmaudio train: --prediction: unknown target '%s' (v, eps, x0)\n",
                        optarg);
                r = -1;
            }
            break;
        case OPT_DATA_SCALE:
            if (strcmp(optarg, "auto") == 0)
                o->data_scale = 0;
            else
                r = dm_cli_double("--data-scale", optarg, 1e-3, 1e3, &o->data_scale);
            break;
        case OPT_EMA: r = dm_cli_double("--ema", optarg, 0, 0.999999, &o->ema); break;
        case OPT_MIN_SNR: r = dm_cli_double("--min-snr", optarg, 0, 1e6, &o->min_snr); break;
        case OPT_CLASS_DROPOUT:
            r = dm_cli_double("--class-dropout", optarg, 0, 1, &o->class_dropout);
            break;
        case 's': r = dm_cli_u64("--seed", optarg, &o->seed); break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_MAX_TIME:
            r = dm_cli_double("--max-time", optarg, 1e-3, 1e9, &o->max_time), fixed = 0;
            break;
        case OPT_CHECKPOINT: o->checkpoint = optarg, fixed = 0; break;
        case OPT_CHECKPOINT_EVERY:
            r = dm_cli_int("--checkpoint-every", optarg, 1, 1000000000, &o->ckpt_every);
            fixed = 0;
            break;
        case OPT_RESUME: o->resume = 1, fixed = 0; break;
        case OPT_FLOAT16: o->float16 = 1, fixed = 0; break;
        case OPT_JSON: o->json = 1, fixed = 0; break;
        case 't': r = dm_cli_int("--threads", optarg, 0, 1024, &o->threads), fixed = 0; break;
        case 'f': o->force = 1, fixed = 0; break;
        case 'q': o->quiet = 1, fixed = 0; break;
        case 'h': puts(dm_train_usage); return 1;
        case ':':
            fprintf(stderr, "dmaudio train: option '%s' needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "dmaudio train: unknown option '%s' (see 'dmaudio train --help')\n",
                    argv[optind - 1]);
            return -1;
        }
        if (r < 0)
            return -1;
        if (fixed) { /* "--lr" from "--lr 0.1" or "--lr=0.1", once */
            const char *arg = argv[optind - 1 - (optarg && optarg == argv[optind - 1])];
            char name[40], all[sizeof o->fixed + 4], item[48];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
            snprintf(all, sizeof all, ", %s, ", o->fixed);
            snprintf(item, sizeof item, ", %s, ", name);
            size_t len = strlen(o->fixed);
            if (!strstr(all, item) && len + strlen(name) + 3 < sizeof o->fixed)
                snprintf(o->fixed + len, sizeof o->fixed - len, "%s%s", len ? ", " : "", name);
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio train: no data folder given (usage: dmaudio train DATA_DIR -o "
                        "MODEL)\n");
        return -1;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio train: unexpected argument '%s'\n", argv[optind + 1]);
        return -1;
    }
    o->data = argv[optind];
    if (!o->output || !*o->output) {
        fprintf(stderr, "dmaudio train: no model file given (-o MODEL)\n");
        return -1;
    }
    if (o->resume && o->force) {
        fprintf(stderr, "dmaudio train: --resume continues the checkpoint, --force starts over; "
                        "choose one\n");
        return -1;
    }
    if ((o->n_fft || o->hop) && o->repr != DM_REPR_SPEC) {
        fprintf(stderr, "dmaudio train: --n-fft and --hop are for --repr spec\n");
        return -1;
    }
    if (o->length && o->seconds > 0) {
        fprintf(stderr, "dmaudio train: --length and --seconds both set the clip length; "
                        "choose one\n");
        return -1;
    }
    /* widths given: the factors and attention follow the level count unless given too */
    dm_unet_config *u = &o->unet;
    if (o->n_channels > 0) {
        int old_levels = u->n_levels;
        u->n_levels = o->n_channels;
        if (o->n_factors < 0 && u->n_levels != old_levels)
            for (int l = 0; l < DM_MAX_LEVELS; l++)
                u->factors[l] = 4;
        if (o->n_attn < 0) {
            memset(u->attention, 0, sizeof u->attention);
            u->attention[u->n_levels - 1] = 1;
        }
    }
    if (o->n_factors >= 0 && o->n_factors != u->n_levels - 1) {
        fprintf(stderr, "dmaudio train: --factors needs %d values for %d levels, got %d\n",
                u->n_levels - 1, u->n_levels, o->n_factors);
        return -1;
    }
    if (o->n_attn >= 0) {
        memset(u->attention, 0, sizeof u->attention);
        for (int i = 0; i < o->n_attn; i++) {
            if (o->attn[i] >= u->n_levels) {
                fprintf(stderr, "dmaudio train: --attention: level %d does not exist (0..%d)\n",
                        o->attn[i], u->n_levels - 1);
                return -1;
            }
            u->attention[o->attn[i]] = 1;
        }
    }
    return 0;
}

/* ---- helpers ---- */

/* The model's name from its file name: "kits/drums.dmm" -> "drums", with the
 * characters a model name cannot hold replaced by '-'. */
static void name_from_path(const char *path, char *name, size_t n)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    while (*base == '.')
        base++;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (len > n - 1)
        len = n - 1;
    if (len > DM_NAME_MAX - 1)
        len = DM_NAME_MAX - 1;
    for (size_t i = 0; i < len; i++) {
        char c = base[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '+';
        name[i] = ok ? c : '-';
    }
    name[len] = '\0';
    if (len == 0)
        snprintf(name, n, "dmaudio");
}

/* 0 if files can be created beside path; else prints why. */
static int can_write_beside(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        fprintf(stderr, "dmaudio train: %s: cannot write in the folder %s: %s\n", path, dir,
                strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dmaudio train: %s: %s is not a folder\n", path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "dmaudio train: %s: cannot write in the folder %s: %s\n", path, dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void format_duration(double s, char *buf, size_t n)
{
    long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

typedef struct load_progress {
    dm_cli_progress bar;
} load_progress;

static int on_file(int done, int total, const char *path, void *user_data)
{
    (void)path;
    load_progress *p = user_data;
    dm_cli_progress_update(&p->bar, done, total);
    return stop_signal != 0; /* Ctrl-C while loading: stop, nothing to save yet */
}

/* 0.5 / RMS of every sample of the dataset, clamped to 0.1..100. */
static double auto_data_scale(const dm_dataset *ds, double *rms_out)
{
    double sum = 0.0, count = 0.0;
    const int ch = dm_dataset_channels(ds);
    for (int i = 0; i < dm_dataset_count(ds); i++) {
        const float *x;
        int64_t frames;
        if (dm_dataset_item(ds, i, &x, &frames, NULL) != DM_OK)
            continue;
        size_t n = (size_t)frames * (size_t)ch;
        for (size_t j = 0; j < n; j++)
            sum += (double)x[j] * x[j];
        count += (double)n;
    }
    double rms = count > 0 ? sqrt(sum / count) : 0.0;
    *rms_out = rms;
    double s = rms > 0 ? 0.5 / rms : 100.0;
    return s < 0.1 ? 0.1 : s > 100.0 ? 100.0 : s;
}

/* For a spec model m made with data_scale 1: the rms of the network values of (up to 512,
 * evenly spread) dataset clips from their start, and 0.5 / rms clamped to 0.1..100. */
static dm_status spec_data_scale(const dm_model *m, const dm_dataset *ds, double *rms_out,
                                 double *scale, dm_error *err)
{
    const dm_model_info in = dm_model_get_info(m);
    const size_t na = (size_t)in.audio_channels * (size_t)in.length;
    const size_t nn = (size_t)in.net_channels * (size_t)in.net_length;
    dm_codec *codec = NULL;
    dm_status st = dm_codec_create(m, &codec, err);
    if (st != DM_OK)
        return st;
    float *audio = malloc(na * sizeof *audio), *net = malloc(nn * sizeof *net);
    if (!audio || !net) {
        free(audio), free(net);
        dm_codec_free(codec);
        err->status = DM_ERR_OUT_OF_MEMORY;
        snprintf(err->message, sizeof err->message, "out of memory");
        return DM_ERR_OUT_OF_MEMORY;
    }
    const int n = dm_dataset_count(ds), take = n < 512 ? n : 512;
    double sum = 0.0, count = 0.0;
    for (int k = 0; k < take && st == DM_OK; k++) {
        st = dm_dataset_crop(ds, (int)((int64_t)k * n / take), 0, in.length, audio);
        if (st != DM_OK) {
            err->status = st;
            snprintf(err->message, sizeof err->message, "%s: cannot read",
                     dm_dataset_path(ds, (int)((int64_t)k * n / take)));
        }
        if (st != DM_OK)
            break;
        dm_codec_encode(codec, audio, net);
        for (size_t j = 0; j < nn; j++)
            sum += (double)net[j] * net[j];
        count += (double)nn;
    }
    free(audio), free(net);
    dm_codec_free(codec);
    if (st != DM_OK)
        return st; /* err holds dm_dataset_crop's message */
    const double rms = count > 0 ? sqrt(sum / count) : 0.0;
    const double s = rms > 0 ? 0.5 / rms : 100.0;
    *rms_out = rms;
    *scale = s < 0.1 ? 0.1 : s > 100.0 ? 100.0 : s;
    return DM_OK;
}

/* The dataset at rate (0: the first file's) and channels; prints errors. */
static int load_data(const train_opts *o, int rate, int channels, dm_dataset **ds)
{
    dm_error err;
    dm_dataset_params dp = dm_dataset_default_params();
    dp.channels = channels;
    if (rate == 0) { /* the first file decides */
        dp.scan_only = 1;
        dm_dataset *scan;
        if (dm_dataset_load(o->data, &dp, &scan, &err) != DM_OK) {
            fprintf(stderr, "dmaudio train: %s\n", err.message);
            return -1;
        }
        dm_audio_file_info fi;
        dm_status st = dm_audio_probe(dm_dataset_path(scan, 0), &fi, &err);
        dm_dataset_free(scan);
        if (st != DM_OK) {
            fprintf(stderr, "dmaudio train: %s\n", err.message);
            return -1;
        }
        if (fi.rate < 8000 || fi.rate > 384000) {
            fprintf(stderr, "dmaudio train: %s: %d Hz; pass --rate (8000..384000)\n",
                    dm_dataset_path(scan, 0), fi.rate);
            return -1;
        }
        rate = fi.rate;
        dp.scan_only = 0;
    }
    dp.rate = rate;
    load_progress lp;
    dm_cli_progress_begin(&lp.bar, "loading", o->quiet);
    dp.progress = on_file;
    dp.user_data = &lp;
    dm_status st = dm_dataset_load(o->data, &dp, ds, &err);
    dm_cli_progress_end(&lp.bar);
    if (st == DM_ERR_CANCELLED) {
        fprintf(stderr, "dmaudio train: interrupted while loading %s; nothing written\n",
                o->data);
        return -2;
    }
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        return -1;
    }
    if (!o->quiet) {
        int nc = dm_dataset_n_classes(*ds);
        fprintf(stderr, "dmaudio train: %d files from %s at %d Hz, ", dm_dataset_count(*ds),
                o->data, rate);
        if (nc == 0) {
            fprintf(stderr, "no classes\n");
        } else {
            fprintf(stderr, "%d classes:", nc);
            for (int c = 0; c < nc; c++)
                fprintf(stderr, "%s %s", c ? "," : "", dm_dataset_class_name(*ds, c));
            fprintf(stderr, "\n");
        }
    }
    return 0;
}

/* A new model for the data, from the options. Returns an exit status. */
static int new_trainer(train_opts *o, const dm_dataset *ds, dm_trainer **out)
{
    dm_unet_config cfg = o->unet;
    cfg.in_channels = cfg.out_channels = dm_dataset_channels(ds);
    cfg.n_classes = dm_dataset_n_classes(ds);
    dm_error err;
    if (dm_unet_config_check(&cfg, &err) != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        return DM_EXIT_USAGE;
    }
    const int rate = dm_dataset_rate(ds);
    int length = o->length;
    const char *why = "";
    if (o->seconds > 0) {
        length = (int)lround(o->seconds * rate);
    } else if (length == 0) {
        int64_t longest = 0;
        for (int i = 0; i < dm_dataset_count(ds); i++) {
            int64_t f = 0;
            dm_dataset_item(ds, i, NULL, &f, NULL);
            longest = f > longest ? f : longest;
        }
        why = " (the longest file)";
        if (longest > DEFAULT_MAX_LENGTH) {
            longest = DEFAULT_MAX_LENGTH;
            why = " (the longest file is longer; set --length)";
        }
        length = (int)longest;
    }
    if (length < 16)
        length = 16;
    /* wave: the network runs on the samples; spec: the library fits the frames */
    const int mult = dm_unet_length_multiple(&cfg);
    if (o->repr == DM_REPR_WAVE && length % mult) {
        int up = (length / mult + 1) * mult;
        if (!o->quiet)
            fprintf(stderr, "dmaudio train: clip length %d rounded up to %d samples (a multiple "
                            "of %d, the product of the factors)\n", length, up, mult);
        length = up;
        why = "";
    }
    double rms = 0.0, scale = o->data_scale;
    if (scale == 0) {
        scale = auto_data_scale(ds, &rms);
        if (!o->quiet && o->repr == DM_REPR_WAVE)
            fprintf(stderr, "dmaudio train: data scale %.4g (0.5 / RMS %.4g of the data%s)\n",
                    scale, rms, scale <= 0.1 || scale >= 100.0 ? ", clamped to 0.1..100" : "");
    }
    char name[DM_NAME_MAX];
    if (o->name)
        snprintf(name, sizeof name, "%s", o->name);
    else
        name_from_path(o->output, name, sizeof name);

    const int nc = dm_dataset_n_classes(ds);
    const char *classes[DM_DATASET_MAX_CLASSES];
    for (int c = 0; c < nc; c++)
        classes[c] = dm_dataset_class_name(ds, c);
    dm_model_params mp = dm_model_default_params();
    mp.unet = cfg;
    mp.repr = o->repr;
    if (o->n_fft)
        mp.n_fft = o->n_fft;
    if (o->hop)
        mp.hop = o->hop;
    mp.sample_rate = rate;
    mp.audio_channels = dm_dataset_channels(ds);
    mp.length = length;
    mp.schedule = o->schedule;
    mp.schedule_shift = o->schedule_shift;
    mp.prediction = o->prediction;
    mp.data_scale = scale;
    mp.n_classes = nc;
    mp.class_names = nc ? classes : NULL;
    mp.name = o->name ? o->name : name;
    dm_model *m;
    dm_status st;
    if (o->data_scale == 0 && o->repr == DM_REPR_SPEC) {
        /* spec: the scale applies to the compressed STFT, whose rms the audio's does not tell;
         * encode the data at scale 1 and take 0.5 / that rms instead */
        mp.data_scale = 1.0;
        st = dm_model_create(&mp, o->seed, &m, &err);
        if (st == DM_OK)
            st = spec_data_scale(m, ds, &rms, &scale, &err);
        dm_model_free(m);
        if (st != DM_OK) {
            fprintf(stderr, "dmaudio train: %s\n", err.message);
            return st == DM_ERR_INVALID_ARGUMENT ? DM_EXIT_USAGE : DM_EXIT_FAILURE;
        }
        if (!o->quiet)
            fprintf(stderr, "dmaudio train: spec data scale %.4g (0.5 / RMS %.4g of the "
                            "compressed STFT of the data)\n", scale, rms);
        mp.data_scale = scale;
    }
    st = dm_model_create(&mp, o->seed, &m, &err);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        return st == DM_ERR_INVALID_ARGUMENT ? DM_EXIT_USAGE : DM_EXIT_FAILURE;
    }
    dm_train_params tp = dm_train_default_params();
    tp.batch = o->batch;
    tp.lr = o->lr;
    tp.warmup_steps = o->warmup >= 0 ? o->warmup : (o->steps / 10 < 100 ? o->steps / 10 : 100);
    tp.total_steps = o->steps;
    tp.ema_decay = o->ema;
    tp.min_snr_gamma = o->min_snr;
    tp.class_dropout = o->class_dropout;
    tp.seed = o->seed;
    tp.shards = o->shards;
    tp.n_threads = o->threads;
    st = dm_trainer_create(m, &tp, out, &err);
    if (st != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        dm_model_free(m);
        return st == DM_ERR_INVALID_ARGUMENT ? DM_EXIT_USAGE : DM_EXIT_FAILURE;
    }
    if (!o->quiet) {
        const dm_model_info in = dm_model_get_info(m);
        fprintf(stderr, "dmaudio train: new %s model '%s': %d samples (%.3f s)%s, %zu "
                        "parameters, batch %d, %d steps\n",
                dm_repr_name(in.repr), in.name, in.length, (double)in.length / rate,
                in.length == length ? why : " (fitted to the STFT frames)", in.n_params,
                tp.batch, tp.total_steps);
    }
    dm_model_free(m);
    return DM_EXIT_OK;
}

/* Checkpoint, then model; prints errors. */
static int save_all(const train_opts *o, const dm_trainer *t, const char *ckpt)
{
    dm_error err;
    if (dm_trainer_save(t, ckpt, &err) != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        return -1;
    }
    if (dm_model_save(dm_trainer_model(t), o->output, o->float16, &err) != DM_OK) {
        fprintf(stderr, "dmaudio train: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* ---- the command ---- */

/* Everything before the first step: checks, the dataset, the trainer (new or resumed) in
 * its group. Returns an exit status; prints its errors. */
static int prepare(train_opts *o, const char *ckpt, dm_cli_group *g, dm_trainer **t,
                   dm_dataset **ds)
{
    if (can_write_beside(o->output) != 0 || can_write_beside(ckpt) != 0)
        return DM_EXIT_FAILURE;
    if (o->resume && !file_exists(ckpt)) {
        fprintf(stderr, "dmaudio train: --resume: no checkpoint %s to continue\n", ckpt);
        return DM_EXIT_FAILURE;
    }
    if (!o->resume && !o->force) {
        if (file_exists(ckpt)) {
            fprintf(stderr, "dmaudio train: %s exists: pass --resume to continue that run, or "
                            "--force to start over\n", ckpt);
            return DM_EXIT_FAILURE;
        }
        if (file_exists(o->output)) {
            fprintf(stderr, "dmaudio train: %s exists (use --force to overwrite it)\n",
                    o->output);
            return DM_EXIT_FAILURE;
        }
    }
    /* the processes of one machine share its cores */
    if (o->threads == 0 && g->local_size > 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = cores > g->local_size ? (int)(cores / g->local_size) : 1;
    }
    if (o->shards == 0)
        o->shards = g->size;

    install_handlers();
    dm_error err;
    int r;
    if (o->resume) {
        if (dm_trainer_load(ckpt, o->threads, t, &err) != DM_OK) {
            fprintf(stderr, "dmaudio train: %s\n", err.message);
            return DM_EXIT_FAILURE;
        }
        const dm_model_info in = dm_model_get_info(dm_trainer_model(*t));
        const dm_train_params tp = dm_trainer_get_params(*t);
        if (!o->steps_given)
            o->steps = tp.total_steps;
        o->batch = tp.batch;
        if (!o->quiet) {
            fprintf(stderr, "dmaudio train: resuming '%s' from %s at step %" PRId64 "\n",
                    in.name, ckpt, dm_trainer_step_count(*t));
            fprintf(stderr, "dmaudio train: the checkpoint's settings: %d steps, batch %d, lr %g "
                            "(warm-up %d), ema %g, class dropout %g, min-snr %g, seed %" PRIu64
                            "\n", tp.total_steps, tp.batch, tp.lr, tp.warmup_steps, tp.ema_decay,
                    tp.class_dropout, tp.min_snr_gamma, tp.seed);
        }
        if (!o->quiet && o->steps > tp.total_steps)
            fprintf(stderr, "dmaudio train: --steps %d goes past the checkpoint's learning-rate "
                            "schedule (%d steps): the steps after it use its final rate %g\n",
                    o->steps, tp.total_steps, tp.lr * tp.min_lr_ratio);
        if (!o->quiet && o->fixed[0])
            fprintf(stderr, "dmaudio train: ignoring %s: a resumed run keeps the checkpoint's "
                            "architecture and training settings\n", o->fixed);
        r = load_data(o, o->rate ? o->rate : in.sample_rate, in.audio_channels, ds);
    } else {
        r = load_data(o, o->rate, 1, ds);
        if (r == 0) {
            int status = new_trainer(o, *ds, t);
            if (status != DM_EXIT_OK)
                return status;
        }
    }
    if (r != 0)
        return r == -2 ? 128 + stop_signal : DM_EXIT_FAILURE;
    if (dm_trainer_set_group(*t, g->rank, g->size, dm_cli_group_reduce, g, &err) != DM_OK) {
        if (g->rank == 0)
            fprintf(stderr, "dmaudio train: %s\n", err.message);
        return DM_EXIT_USAGE;
    }
    if (g->size > 1) {
        size_t n = dm_model_get_info(dm_trainer_model(*t)).n_params;
        g->scratch = malloc((n < ((size_t)1 << 30) ? n : (size_t)1 << 30) * sizeof(float));
        if (!g->scratch) {
            fprintf(stderr, "dmaudio train: out of memory\n");
            return DM_EXIT_FAILURE;
        }
        if (!o->quiet)
            fprintf(stderr, "dmaudio train: %d processes (%s) share each step's %d shard(s), "
                            "%d thread(s) each\n", g->size, dm_cli_group_library(),
                    dm_trainer_params(*t).shards, o->threads);
    }
    return DM_EXIT_OK;
}

/* The training loop and the final save. Returns an exit status. */
static int train_loop(const train_opts *o, const char *ckpt, const dm_cli_group *g,
                      dm_trainer *t, const dm_dataset *ds, double start)
{
    dm_error err;
    const int tty = isatty(STDERR_FILENO);
    const int64_t first = dm_trainer_step_count(t), total = o->steps;
    double loop_start = dm_cli_now(), last_print = 0, last_ckpt = loop_start, loss_ema = 0;
    double loss_sum = 0;
    int loss_n = 0, ema_n = 0;
    int64_t last_ckpt_step = first, next_pct = first;
    const char *stopped = NULL; /* why the loop ended early */
    int64_t step = first;
    while (step < total) {
        /* every process stops at the same step: a signal anywhere, or rank 0's clock */
        int stop = stop_signal ? stop_signal
                               : (g->rank == 0 && o->max_time > 0 &&
                                  dm_cli_now() - start >= o->max_time);
        stop = dm_cli_group_max(stop);
        if (stop > 1) {
            stop_signal = stop;
            stopped = "signal";
            break;
        }
        if (stop == 1) {
            stopped = "time";
            break;
        }
        double loss = 0;
        if (dm_trainer_step(t, ds, &loss, &err) != DM_OK) {
            if (tty && !o->quiet)
                fprintf(stderr, "\r\033[K");
            if (step == first && o->resume)
                fprintf(stderr, "dmaudio train: %s does not fit the checkpoint %s: %s\n",
                        o->data, ckpt, err.message);
            else
                fprintf(stderr, "dmaudio train: %s\n", err.message);
            dm_cli_group_abort(DM_EXIT_FAILURE); /* the others wait in the reduce */
            return DM_EXIT_FAILURE;
        }
        step = dm_trainer_step_count(t);
        loss_sum += loss, loss_n++;
        ema_n++;
        loss_ema = 0.9 * loss_ema + 0.1 * loss;
        const double now = dm_cli_now();
        const double rate = (double)(step - first) / fmax(now - loop_start, 1e-9);
        if (!o->quiet) {
            const double speed = rate * o->batch; /* a resumed run's: the checkpoint's */
            const char *unit = "samples/s";
            char eta[32];
            format_duration((double)(total - step) / fmax(rate, 1e-9), eta, sizeof eta);
            const double shown = loss_ema / (1.0 - pow(0.9, ema_n)); /* bias-corrected */
            if (tty && (now - last_print >= 0.1 || step == total)) {
                fprintf(stderr, "\rstep %" PRId64 "/%" PRId64 "  loss %.4f  %.1f %s  ETA %s\033[K",
                        step, total, shown, speed, unit, eta);
                last_print = now;
            } else if (!tty && (step == first + 1 || now - last_print >= 10.0 ||
                                step >= next_pct || step == total)) {
                fprintf(stderr, "dmaudio train: step %" PRId64 "/%" PRId64 "  loss %.4f  %.1f %s  "
                                "ETA %s\n",
                        step, total, loss_sum / loss_n, speed, unit, eta);
                loss_sum = 0, loss_n = 0;
                last_print = now;
                next_pct = step + (total - first + 9) / 10;
            }
        }
        int due = o->ckpt_every > 0 ? step % o->ckpt_every == 0
                                    : (step - last_ckpt_step >= CHECKPOINT_STEPS ||
                                       now - last_ckpt >= CHECKPOINT_SECONDS);
        if (due && step < total && g->rank == 0) {
            if (dm_trainer_save(t, ckpt, &err) != DM_OK) {
                if (tty && !o->quiet)
                    fprintf(stderr, "\r\033[K");
                fprintf(stderr, "dmaudio train: %s\n", err.message);
                dm_cli_group_abort(DM_EXIT_FAILURE);
                return DM_EXIT_FAILURE;
            }
            last_ckpt_step = step, last_ckpt = dm_cli_now();
            if (!o->quiet && !tty)
                fprintf(stderr, "dmaudio train: checkpoint at step %" PRId64 " in %s\n", step,
                        ckpt);
        }
    }
    if (tty && !o->quiet)
        fprintf(stderr, "\r\033[K");
    /* identical updates keep identical weights; a difference would be a bug */
    if (!dm_cli_group_same(dm_model_get_info(dm_trainer_model(t)).checksum)) {
        if (g->rank == 0)
            fprintf(stderr, "dmaudio train: the processes' weights differ at step %" PRId64
                            "; nothing saved (please report this bug)\n", step);
        return DM_EXIT_FAILURE;
    }
    if (g->rank != 0)
        return stopped && strcmp(stopped, "signal") == 0 ? 128 + stop_signal : DM_EXIT_OK;
    if (save_all(o, t, ckpt) != 0)
        return DM_EXIT_FAILURE;
    if (o->json) {
        printf("{\"model\": ");
        dm_cli_json_string(stdout, o->output);
        printf(", \"checkpoint\": ");
        dm_cli_json_string(stdout, ckpt);
        printf(", \"step\": %" PRId64 ", \"steps\": %" PRId64 ", \"loss\": ", step, total);
        if (ema_n > 0)
            printf("%.9g", loss_ema / (1.0 - pow(0.9, ema_n)));
        else
            printf("null");
        printf(", \"seconds\": %.3f, \"stopped\": ", dm_cli_now() - start);
        if (stopped && strcmp(stopped, "signal") == 0)
            printf("\"%s\"}\n", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
        else if (stopped)
            printf("\"max-time\"}\n");
        else
            printf("null}\n");
        fflush(stdout);
    }
    if (stopped && strcmp(stopped, "signal") == 0) {
        int sig = stop_signal;
        fprintf(stderr, "dmaudio train: stopped by %s at step %" PRId64 "/%" PRId64 "; saved %s "
                        "and %s (continue with --resume)\n",
                sig == SIGTERM ? "SIGTERM" : "Ctrl-C (SIGINT)", step, total, ckpt, o->output);
        return 128 + sig;
    }
    if (stopped) {
        if (!o->quiet)
            fprintf(stderr, "dmaudio train: time limit (--max-time %g s) reached at step %" PRId64
                            "/%" PRId64 "; saved %s and %s (continue with --resume)\n",
                    o->max_time, step, total, ckpt, o->output);
    } else if (step == first && !o->quiet) {
        fprintf(stderr, "dmaudio train: the checkpoint is at step %" PRId64 ", --steps %" PRId64
                        " asks no more; wrote %s from it\n", step, total, o->output);
    } else if (!o->quiet) {
        fprintf(stderr, "dmaudio train: done, step %" PRId64 "/%" PRId64 " in %.1f s; wrote %s "
                        "(checkpoint %s)\n",
                step, total, dm_cli_now() - start, o->output, ckpt);
    }
    return DM_EXIT_OK;
}

int cmd_train(int argc, char **argv)
{
    train_opts o = {.n_channels = -1, .n_factors = -1, .n_attn = -1, .repr = DM_REPR_WAVE,
                    .steps = 10000, .batch = 16, .warmup = -1, .lr = 3e-4, .ema = 0.999,
                    .class_dropout = 0.1, .schedule = DM_SCHEDULE_COSINE, .schedule_shift = 1,
                    .prediction = DM_PREDICT_V, .seed = 1};
    int r = parse_options(argc, argv, &o);
    if (r != 0)
        return r > 0 ? DM_EXIT_OK : DM_EXIT_USAGE;

    const double start = dm_cli_now();
    char ckpt_buf[PATH_MAX];
    const char *ckpt = o.checkpoint;
    if (!ckpt) {
        if (snprintf(ckpt_buf, sizeof ckpt_buf, "%s.ckpt", o.output) >= (int)sizeof ckpt_buf) {
            fprintf(stderr, "dmaudio train: %s: name too long\n", o.output);
            return DM_EXIT_USAGE;
        }
        ckpt = ckpt_buf;
    }
    if (strcmp(ckpt, o.output) == 0) {
        fprintf(stderr, "dmaudio train: the checkpoint and the model cannot be the same file "
                        "(%s)\n", ckpt);
        return DM_EXIT_USAGE;
    }

    dm_cli_group g;
    if (dm_cli_group_start(NULL, NULL, &g) != 0)
        return DM_EXIT_FAILURE;
    if (g.rank != 0)
        o.quiet = 1; /* rank 0 speaks for all */
    dm_trainer *t = NULL;
    dm_dataset *ds = NULL;
    g.scratch = NULL;
    const int mine = prepare(&o, ckpt, &g, &t, &ds);
    /* every process starts, or none: the worst status wins */
    int status = dm_cli_group_max(mine);
    if (mine == DM_EXIT_OK && status != DM_EXIT_OK && g.rank == 0)
        fprintf(stderr, "dmaudio train: another process could not start (see its message)\n");
    if (status == DM_EXIT_OK)
        status = train_loop(&o, ckpt, &g, t, ds, start);
    dm_trainer_free(t);
    dm_dataset_free(ds);
    free(g.scratch);
    dm_cli_group_stop();
    return status;
}
