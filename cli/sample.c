/* dmaudio sample: generates clips with a model and writes them as WAV or FLAC
 * files that carry their recipe, so that `--recipe FILE` can make the same
 * audio again, bit for bit.
 *
 * Item i of a run with seed S uses seed S + i; its audio does not depend on
 * the batch it was generated in, nor on the number of threads. After
 * generation at the model's rate, a clip is resampled to --rate (when it
 * differs) and then cut to --length with a short fade-out. A recipe keeps the
 * model's checksum, seed, sampler, steps, class, guidance and eta, and the
 * rate, length (frames) and sample format of the file written; a recipe
 * without the last three (written before they were added) takes them from
 * the file it is read from. --play plays each clip after writing it (or instead, without -o). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char dm_sample_usage[] =
    "usage: dmaudio sample [OPTIONS]\n"
    "\n"
    "Generates clips with a diffusion model and writes them as WAV or FLAC files\n"
    "whose metadata holds the recipe (model, seed, sampler...) that reproduces them.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -m, --model FILE      the model [$DMAUDIO_MODEL, else the bundled model]\n"
    "  -o, --output FILE     .wav or .flac; '-' writes a WAV on stdout [clip.wav, or\n"
    "                        no file with --play]\n"
    "  -n, --count N         clips to write; with N > 1, FILE gets a number before its\n"
    "                        extension (clip-001.wav ...) and clip i uses seed S+i [1]\n"
    "  -s, --seed S          random seed [drawn from /dev/urandom, and printed]\n"
    "      --steps N         sampler steps [the sampler's default: ddpm 100, ddim 50,\n"
    "                        dpmpp-2m 25, euler 50, heun 25]\n"
    "      --sampler NAME    ddpm, ddim, dpmpp-2m, euler or heun [dpmpp-2m]\n"
    "  -c, --class NAME      the class to generate (class-conditional models)\n"
    "                        [none: the unconditional model]\n"
    "  -g, --guidance G      classifier-free guidance scale, 1 = none [2]\n"
    "      --eta E           DDIM noise, 0..1 [0]\n"
    "  -l, --length SEC      shorter clips, cut with a 10 ms fade-out [the model's length]\n"
    "  -r, --rate HZ         resample to this rate [the model's rate]\n"
    "      --format F        pcm16, pcm24 or float (WAV only) [pcm24]\n"
    "  -p, --play            play each clip through the sound card once written;\n"
    "                        without -o, play it and write no file\n"
    "  -d, --device DEV      --play: the output device, as 'dmaudio devices' lists\n"
    "                        them [$DMAUDIO_DEVICE, else the default output]\n"
    "      --recipe FILE     make again the audio of FILE (a clip written by dmaudio):\n"
    "                        its recipe fixes everything but -m, -o, --force, --quiet,\n"
    "                        --json, --threads, --play and --device; -m must be the\n"
    "                        same model (checked)\n"
    "  -t, --threads N       threads, 0 = all cores [0]\n"
    "  -b, --batch B         clips generated together [min(N, 8)]\n"
    "  -f, --force           overwrite existing files\n"
    "  -q, --quiet           no progress bar, no message\n"
    "      --json            one JSON object per file written, on stdout\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 written (and played), 1 runtime error (model, file, device),\n"
    "2 usage error, 130 or 143 when stopped by Ctrl-C or SIGTERM (the clips written\n"
    "so far are complete).";

#define FADE_SECONDS 0.010

enum {
    OPT_STEPS = 256, OPT_SAMPLER, OPT_ETA, OPT_FORMAT, OPT_RECIPE, OPT_JSON,
};

#define DEFAULT_OUTPUT "clip.wav"

typedef struct sample_opts {
    const char *model, *output, *recipe, *class_name, *device;
    int count, steps, threads, batch, rate, force, quiet, json;
    int play, no_file;              /* no_file: --play without -o */
    int have_seed;
    uint64_t seed;
    dm_sampler_kind sampler;
    double guidance, eta, length;   /* length < 0: the model's */
    dm_sample_format format;
    const char *fixed_name;         /* the first option given that --recipe fixes */
} sample_opts;

/* A seed nobody chose: 32 bits of /dev/urandom, so that it is short to type. */
static int random_seed(uint64_t *seed)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    uint32_t v = 0;
    ssize_t n = fd >= 0 ? read(fd, &v, sizeof v) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof v) {
        fprintf(stderr, "dmaudio sample: cannot read /dev/urandom for a seed (pass --seed S)\n");
        return -1;
    }
    *seed = v;
    return 0;
}

/* Where the extension starts in path's last component (the '.'), or NULL. */
static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot : NULL;
}

/* "out/clip.wav", 3 of 12 -> "out/clip-003.wav" (at least 3 digits). */
static int numbered_path(const char *path, int i, int count, char *buf, size_t n)
{
    int width = 3;
    for (int c = count; c >= 1000; c /= 10)
        width++;
    const char *dot = extension(path);
    int stem = (int)(dot - path);
    int len = snprintf(buf, n, "%.*s-%0*d%s", stem, path, width, i, dot);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* Can files be created in the folder of path? Prints why not. */
static int folder_writable(const char *path)
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
        fprintf(stderr, "dmaudio sample: %s: cannot write in the folder %s: %s\n", path, dir,
                strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dmaudio sample: %s: %s is not a folder\n", path, dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "dmaudio sample: %s: cannot write in the folder %s: %s\n", path, dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* The sample format of an existing file, from libsndfile's description. */
static dm_sample_format format_of(const dm_audio_file_info *fi)
{
    if (strstr(fi->format, "16 bit"))
        return DM_SAMPLE_PCM_16;
    if (strstr(fi->format, "float") || strstr(fi->format, "Float"))
        return DM_SAMPLE_FLOAT;
    return DM_SAMPLE_PCM_24;
}

/* ---- progress over all the steps of all the batches ---- */

typedef struct sample_progress {
    dm_cli_progress bar;
    int done, total;
} sample_progress;

static int on_step(void *user_data, int step, int n_steps)
{
    sample_progress *p = user_data;
    (void)n_steps;
    dm_cli_progress_update(&p->bar, p->done + step, p->total);
    return dm_cli_signal() || dm_cli_play_interrupted(); /* stop at this step */
}

/* ---- one clip: resample, cut, fade, write ---- */

typedef struct clip_job {
    const dm_model_info *info;
    int out_rate;
    int64_t want_frames;          /* at out_rate; <= 0: all */
    dm_audio_write_params wp;
} clip_job;

/* Writes the clip planar (channels, length) at the model's rate to path (NULL:
 * nothing written), with recipe r completed by the rate, frames and format of
 * the file. The audio written is left in *out (the caller frees it). */
static dm_status write_clip(const clip_job *job, const float *clip, const char *path,
                            dm_recipe *r, dm_audio *out, int64_t *clipped, dm_error *err)
{
    const dm_model_info *in = job->info;
    dm_audio src = {.data = (float *)clip, .channels = in->audio_channels, .frames = in->length,
                    .rate = in->sample_rate};
    dm_audio res = {0};
    const dm_audio *a = &src;
    if (job->out_rate != in->sample_rate) {
        dm_status st = dm_audio_resample(&src, job->out_rate, DM_RESAMPLE_MEDIUM, &res, err);
        if (st != DM_OK)
            return st;
        a = &res;
    }
    int64_t frames = a->frames;
    if (job->want_frames > 0 && job->want_frames < frames)
        frames = job->want_frames;
    dm_audio cut;
    dm_status st = dm_audio_alloc(&cut, a->channels, frames, a->rate, err);
    if (st != DM_OK) {
        dm_audio_free(&res);
        return st;
    }
    int64_t fade = frames < a->frames ? (int64_t)lround(FADE_SECONDS * a->rate) : 0;
    if (fade > frames / 2)
        fade = frames / 2;
    for (int c = 0; c < a->channels; c++) {
        const float *x = a->data + (size_t)c * (size_t)a->frames;
        float *y = cut.data + (size_t)c * (size_t)frames;
        memcpy(y, x, (size_t)frames * sizeof *y);
        for (int64_t k = 0; k < fade; k++) /* raised cosine, 0 at the last sample */
            y[frames - fade + k] *= (float)(0.5 * (1.0 + cos(M_PI * (double)(k + 1) / fade)));
    }
    dm_audio_free(&res);
    r->rate = cut.rate;
    r->frames = frames;
    snprintf(r->format, sizeof r->format, "%s", dm_sample_format_name(job->wp.format));
    char comment[640];
    dm_recipe_format(r, comment, sizeof comment);
    dm_audio_write_params wp = job->wp;
    wp.comment = comment;
    wp.clipped = clipped;
    *clipped = 0;
    st = path ? dm_audio_write(path, &cut, &wp, err) : DM_OK;
    if (st != DM_OK) {
        dm_audio_free(&cut);
        return st;
    }
    *out = cut;
    return DM_OK;
}

/* Plays a planar clip on pl, opened on the first call; prints why not. */
static int play_clip(dm_cli_player **pl, const dm_audio *a, const char *device)
{
    float *x = malloc((size_t)a->frames * (size_t)a->channels * sizeof *x);
    if (!x) {
        fprintf(stderr, "dmaudio sample: out of memory\n");
        return -1;
    }
    for (int64_t k = 0; k < a->frames; k++)
        for (int c = 0; c < a->channels; c++)
            x[(size_t)k * a->channels + c] = a->data[(size_t)c * (size_t)a->frames + (size_t)k];
    char err[512];
    int r = !*pl ? dm_cli_player_open(pl, device, err, sizeof err) : 0;
    if (r == 0)
        r = dm_cli_player_write(*pl, x, a->channels, a->frames, a->rate, err, sizeof err);
    free(x);
    if (r != 0)
        fprintf(stderr, "dmaudio sample: --play: %s\n", err);
    return r ? -1 : 0;
}

static void print_json(const char *path, uint64_t seed, const char *cls, const char *sampler,
                       int steps, double guidance, double eta, double seconds, int rate,
                       int channels, const dm_model_info *in)
{
    printf("{\"path\": ");
    if (path)
        dm_cli_json_string(stdout, path);
    else
        printf("null");
    printf(", \"seed\": %" PRIu64 ", \"class\": ", seed);
    if (cls)
        dm_cli_json_string(stdout, cls);
    else
        printf("null");
    printf(", \"sampler\": \"%s\", \"steps\": %d, \"guidance\": %.17g, \"eta\": %.17g, "
           "\"seconds\": %.9g, \"rate\": %d, \"channels\": %d, \"model\": ",
           sampler, steps, guidance, eta, seconds, rate, channels);
    dm_cli_json_string(stdout, in->name);
    printf(", \"crc\": \"%08" PRIx32 "\"}\n", in->checksum);
    fflush(stdout);
}

/* ---- options ---- */

static int parse_options(int argc, char **argv, sample_opts *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"output", required_argument, 0, 'o'},
        {"count", required_argument, 0, 'n'},   {"seed", required_argument, 0, 's'},
        {"steps", required_argument, 0, OPT_STEPS},
        {"sampler", required_argument, 0, OPT_SAMPLER},
        {"class", required_argument, 0, 'c'},   {"guidance", required_argument, 0, 'g'},
        {"eta", required_argument, 0, OPT_ETA}, {"length", required_argument, 0, 'l'},
        {"rate", required_argument, 0, 'r'},    {"format", required_argument, 0, OPT_FORMAT},
        {"recipe", required_argument, 0, OPT_RECIPE},
        {"threads", required_argument, 0, 't'}, {"batch", required_argument, 0, 'b'},
        {"force", no_argument, 0, 'f'},         {"quiet", no_argument, 0, 'q'},
        {"json", no_argument, 0, OPT_JSON},     {"help", no_argument, 0, 'h'},
        {"play", no_argument, 0, 'p'},          {"device", required_argument, 0, 'd'},
        {0, 0, 0, 0},
    };
    optind = 1;
    opterr = 0;
    int opt, idx;
    while ((opt = getopt_long(argc, argv, ":m:o:n:s:c:g:l:r:t:b:d:fpqh", longopts, &idx)) != -1) {
        int r = 0, fixed = 1;
        switch (opt) {
        case 'm': o->model = optarg, fixed = 0; break;
        case 'o': o->output = optarg, fixed = 0; break;
        case 'n': r = dm_cli_int("--count", optarg, 1, 1000000, &o->count); break;
        case 's': r = dm_cli_u64("--seed", optarg, &o->seed), o->have_seed = 1; break;
        case OPT_STEPS: r = dm_cli_int("--steps", optarg, 1, DM_MAX_TIMESTEPS, &o->steps); break;
        case OPT_SAMPLER:
            if (dm_sampler_from_name(optarg, &o->sampler) != 0) {
                fprintf(stderr, "dmaudio sample: --sampler: unknown sampler '%s' (ddpm, ddim, "
                                "dpmpp-2m, euler, heun)\n", optarg);
                r = -1;
            }
            break;
        case 'c': o->class_name = optarg; break;
        case 'g': r = dm_cli_double("--guidance", optarg, 0, 100, &o->guidance); break;
        case OPT_ETA: r = dm_cli_double("--eta", optarg, 0, 1, &o->eta); break;
        case 'l': r = dm_cli_double("--length", optarg, 1e-6, 1e6, &o->length); break;
        case 'r': r = dm_cli_int("--rate", optarg, 1000, DM_AUDIO_MAX_RATE, &o->rate); break;
        case OPT_FORMAT:
            if (dm_sample_format_from_name(optarg, &o->format) != 0) {
                fprintf(stderr, "dmaudio sample: --format: unknown format '%s' (pcm16, pcm24, "
                                "float)\n", optarg);
                r = -1;
            }
            break;
        case OPT_RECIPE: o->recipe = optarg, fixed = 0; break;
        case 't': r = dm_cli_int("--threads", optarg, 0, 1024, &o->threads), fixed = 0; break;
        case 'b': r = dm_cli_int("--batch", optarg, 1, 1024, &o->batch); break;
        case 'f': o->force = 1, fixed = 0; break;
        case 'q': o->quiet = 1, fixed = 0; break;
        case OPT_JSON: o->json = 1, fixed = 0; break;
        case 'p': o->play = 1, fixed = 0; break;
        case 'd': o->device = optarg, fixed = 0; break;
        case 'h': puts(dm_sample_usage); return 1;
        case ':':
            fprintf(stderr, "dmaudio sample: option '%s' needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "dmaudio sample: unknown option '%s' (see 'dmaudio sample --help')\n",
                    argv[optind - 1]);
            return -1;
        }
        if (r < 0)
            return -1;
        if (fixed && !o->fixed_name) { /* "--steps" of "--steps 5", or "--steps=5" */
            o->fixed_name = argv[optind - 1 - (optarg && optarg == argv[optind - 1])];
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dmaudio sample: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->recipe && o->fixed_name) {
        fprintf(stderr, "dmaudio sample: %s cannot be combined with --recipe (the recipe fixes "
                        "it; only -m, -o, --force, --quiet, --json and --threads can be)\n",
                o->fixed_name);
        return -1;
    }
    if (o->device && !o->play) {
        fprintf(stderr, "dmaudio sample: --device chooses where --play plays; add --play\n");
        return -1;
    }
    if (o->device && !*o->device) {
        fprintf(stderr, "dmaudio sample: --device: empty device name\n");
        return -1;
    }
    if (!o->output) {
        o->no_file = o->play;
        o->output = DEFAULT_OUTPUT;
    }
    if (!*o->output) {
        fprintf(stderr, "dmaudio sample: --output: empty file name\n");
        return -1;
    }
    int to_stdout = strcmp(o->output, "-") == 0;
    const char *ext = extension(o->output);
    if (!to_stdout && (!ext || (strcasecmp(ext, ".wav") != 0 && strcasecmp(ext, ".flac") != 0))) {
        fprintf(stderr, "dmaudio sample: %s: the output must end in .wav or .flac\n", o->output);
        return -1;
    }
    if (!o->no_file && ext && strcasecmp(ext, ".flac") == 0 && o->format == DM_SAMPLE_FLOAT) {
        fprintf(stderr, "dmaudio sample: --format float needs a .wav output (FLAC stores "
                        "integers)\n");
        return -1;
    }
    if (to_stdout && o->count > 1) {
        fprintf(stderr, "dmaudio sample: -o - writes one clip; -n %d needs a file name\n",
                o->count);
        return -1;
    }
    if (to_stdout && o->json) {
        fprintf(stderr, "dmaudio sample: --json and -o - both write to stdout; choose one\n");
        return -1;
    }
    return 0;
}

/* ---- --recipe FILE ---- */

/* Fills o and the job from the recipe in o->recipe, checked against model m. */
static int apply_recipe(sample_opts *o, const dm_model *m, int *cls, int64_t *want_frames)
{
    const char *path = o->recipe;
    char comment[4096], why[160];
    dm_error err;
    dm_audio_file_info fi;
    if (dm_audio_probe(path, &fi, &err) != DM_OK ||
        dm_audio_read_metadata(path, comment, sizeof comment, &err) != DM_OK) {
        fprintf(stderr, "dmaudio sample: --recipe: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    dm_recipe r;
    if (!*comment) {
        fprintf(stderr, "dmaudio sample: %s has no recipe in its metadata\n", path);
        return DM_EXIT_FAILURE;
    }
    if (dm_recipe_parse(comment, &r, why, sizeof why) != 0) {
        fprintf(stderr, "dmaudio sample: %s: bad recipe (%s)\n", path, why);
        return DM_EXIT_FAILURE;
    }
    if (strcmp(r.mode, "sample") != 0) {
        fprintf(stderr, "dmaudio sample: %s was made by 'dmaudio %s', not by sample; its recipe "
                        "needs the input sound\n", path, r.mode);
        return DM_EXIT_FAILURE;
    }
    const dm_model_info in = dm_model_get_info(m);
    if (r.crc != in.checksum) {
        fprintf(stderr, "dmaudio sample: %s was made with model '%s' (crc %08" PRIx32 "), but "
                        "the model given is '%s' (crc %08" PRIx32 "); pass it with -m\n",
                path, r.model, r.crc, in.name, in.checksum);
        return DM_EXIT_FAILURE;
    }
    if (dm_sampler_from_name(r.sampler, &o->sampler) != 0) {
        fprintf(stderr, "dmaudio sample: %s: the recipe's sampler '%s' is unknown to this "
                        "version\n", path, r.sampler);
        return DM_EXIT_FAILURE;
    }
    *cls = -1;
    if (strcmp(r.cls, "-") != 0 && (*cls = dm_model_find_class(m, r.cls)) < 0) {
        fprintf(stderr, "dmaudio sample: %s: the recipe's class '%s' is not in the model\n", path,
                r.cls);
        return DM_EXIT_FAILURE;
    }
    /* rate, frames and format: the recipe's, else (an older recipe) the file's */
    const int rate = r.rate ? r.rate : fi.rate;
    if (rate < 1000 || fi.channels != in.audio_channels) {
        fprintf(stderr, "dmaudio sample: %s: %d Hz, %d channel(s) cannot come from this model "
                        "(%d channel(s))\n", path, rate, fi.channels, in.audio_channels);
        return DM_EXIT_FAILURE;
    }
    o->format = format_of(&fi);
    if (r.format[0] && dm_sample_format_from_name(r.format, &o->format) != 0) {
        fprintf(stderr, "dmaudio sample: %s: the recipe's sample format '%s' is unknown to this "
                        "version\n", path, r.format);
        return DM_EXIT_FAILURE;
    }
    o->seed = r.seed, o->have_seed = 1;
    o->steps = r.steps;
    o->guidance = r.guidance;
    o->eta = r.eta;
    o->rate = rate;
    o->count = 1;
    const char *ext = extension(o->output);
    if (!o->no_file && o->format == DM_SAMPLE_FLOAT && ext && strcasecmp(ext, ".flac") == 0) {
        fprintf(stderr, "dmaudio sample: %s holds float samples, which FLAC cannot store; write "
                        "a .wav\n", path);
        return DM_EXIT_FAILURE;
    }
    *want_frames = r.frames ? r.frames : fi.frames;
    return DM_EXIT_OK;
}

/* ---- the command ---- */

int cmd_sample(int argc, char **argv)
{
    dm_sample_params defaults = dm_sample_default_params();
    sample_opts o = {.count = 1, .sampler = defaults.sampler,
                     .guidance = defaults.guidance, .eta = defaults.eta, .length = -1,
                     .format = DM_SAMPLE_PCM_24};
    int r = parse_options(argc, argv, &o);
    if (r != 0)
        return r > 0 ? DM_EXIT_OK : DM_EXIT_USAGE;

    dm_model *m = dm_cli_open_model("sample", o.model);
    if (!m)
        return DM_EXIT_FAILURE;
    const dm_model_info in = dm_model_get_info(m);
    int status = DM_EXIT_FAILURE, cls = -1, written = 0;
    int64_t want_frames = 0; /* at the output rate; 0: the whole clip */
    char **paths = NULL;
    float *buf = NULL;
    dm_generator *gen = NULL;
    dm_cli_player *player = NULL;
    dm_error err;

    if (o.recipe) {
        if ((status = apply_recipe(&o, m, &cls, &want_frames)) != DM_EXIT_OK)
            goto done;
        status = DM_EXIT_FAILURE;
    } else {
        if (o.class_name && in.n_classes == 0) {
            fprintf(stderr, "dmaudio sample: --class: the model '%s' is unconditional (it has no "
                            "classes)\n", in.name);
            status = DM_EXIT_USAGE;
            goto done;
        }
        if (o.class_name && (cls = dm_model_find_class(m, o.class_name)) < 0) {
            fprintf(stderr, "dmaudio sample: --class: unknown class '%s' (the model's classes:",
                    o.class_name);
            for (int c = 0; c < in.n_classes; c++)
                fprintf(stderr, "%s %s", c ? "," : "", dm_model_class_name(m, c));
            fprintf(stderr, ")\n");
            status = DM_EXIT_USAGE;
            goto done;
        }
        double max_len = (double)in.length / in.sample_rate;
        if (o.length > max_len * (1 + 1e-9)) {
            fprintf(stderr, "dmaudio sample: --length %g is longer than the model's clips (at "
                            "most %.6g s)\n", o.length, max_len);
            status = DM_EXIT_USAGE;
            goto done;
        }
        if (o.rate == 0)
            o.rate = in.sample_rate;
        if (o.length > 0) {
            want_frames = (int64_t)llround(o.length * o.rate);
            if (want_frames < 1)
                want_frames = 1;
        }
        if (!o.have_seed && random_seed(&o.seed) != 0)
            goto done;
    }
    if ((double)o.rate * 256 < in.sample_rate || o.rate > 256.0 * in.sample_rate) {
        fprintf(stderr, "dmaudio sample: %s %d Hz: cannot resample from the model's %d Hz (ratio "
                        "at most 256)\n", o.recipe ? o.recipe : "--rate", o.rate, in.sample_rate);
        status = o.recipe ? DM_EXIT_FAILURE : DM_EXIT_USAGE;
        goto done;
    }
    if (o.steps == 0)
        o.steps = dm_sampler_default_steps(o.sampler);

    /* every output name, checked before anything is generated */
    const int to_stdout = strcmp(o.output, "-") == 0;
    paths = calloc((size_t)o.count, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "dmaudio sample: out of memory\n");
        goto done;
    }
    for (int i = 0; i < o.count; i++) {
        char name[PATH_MAX];
        if (o.count == 1)
            snprintf(name, sizeof name, "%s", o.output);
        else if (numbered_path(o.output, i + 1, o.count, name, sizeof name) != 0) {
            fprintf(stderr, "dmaudio sample: %s: name too long\n", o.output);
            status = DM_EXIT_USAGE;
            goto done;
        }
        if (!(paths[i] = strdup(name))) {
            fprintf(stderr, "dmaudio sample: out of memory\n");
            goto done;
        }
        struct stat sb;
        if (o.no_file)
            continue;
        if (!to_stdout && !o.force && lstat(name, &sb) == 0) {
            fprintf(stderr, "dmaudio sample: %s exists (use --force to overwrite it)\n", name);
            goto done;
        }
        if (!to_stdout && i == 0 && folder_writable(name) != 0)
            goto done;
    }
    if (o.play) { /* a wrong device is known before anything is generated or written */
        char why[512];
        if (dm_cli_check_device(o.device, why, sizeof why) != 0) {
            fprintf(stderr, "dmaudio sample: --play: %s\n", why);
            goto done;
        }
    }
    if (to_stdout)
        signal(SIGPIPE, SIG_IGN); /* a closed pipe is a write error, not a silent death */
    dm_cli_catch_signals(); /* Ctrl-C: the clips written are complete, no other is started */

    if (!o.quiet) {
        char seeds[64];
        if (o.count == 1)
            snprintf(seeds, sizeof seeds, "seed %" PRIu64, o.seed);
        else
            snprintf(seeds, sizeof seeds, "seeds %" PRIu64 "..%" PRIu64, o.seed,
                     o.seed + (uint64_t)(o.count - 1));
        fprintf(stderr, "dmaudio sample: %s, %s %d steps, %s, model '%s'\n", seeds,
                dm_sampler_name(o.sampler), o.steps,
                cls >= 0 ? dm_model_class_name(m, cls) : "no class", in.name);
    }
    const int batch = o.batch > 0 ? (o.batch < o.count ? o.batch : o.count)
                                   : (o.count < 8 ? o.count : 8);
    if (dm_generator_create(m, batch, o.threads, &gen, &err) != DM_OK) {
        fprintf(stderr, "dmaudio sample: %s\n", err.message);
        goto done;
    }
    const size_t item = (size_t)in.audio_channels * (size_t)in.length;
    buf = malloc((size_t)batch * item * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "dmaudio sample: out of memory\n");
        goto done;
    }

    clip_job job = {.info = &in, .out_rate = o.rate, .want_frames = want_frames,
                    .wp = dm_audio_write_default_params()};
    job.wp.format = o.format;
    job.wp.title = "dmaudio sample";
    dm_recipe recipe;
    memset(&recipe, 0, sizeof recipe);
    snprintf(recipe.model, sizeof recipe.model, "%s", in.name);
    recipe.crc = in.checksum;
    snprintf(recipe.sampler, sizeof recipe.sampler, "%s", dm_sampler_name(o.sampler));
    recipe.steps = o.steps;
    snprintf(recipe.cls, sizeof recipe.cls, "%s", cls >= 0 ? dm_model_class_name(m, cls) : "-");
    recipe.guidance = o.guidance;
    recipe.strength = 1.0;
    recipe.eta = o.eta;
    snprintf(recipe.mode, sizeof recipe.mode, "sample");
    snprintf(recipe.version, sizeof recipe.version, "%s", DM_CLI_VERSION);

    sample_progress prog = {.done = 0, .total = 0};
    const int n_batches = (o.count + batch - 1) / batch;
    prog.total = n_batches * o.steps;
    dm_cli_progress_begin(&prog.bar, "sampling", o.quiet);
    for (int b0 = 0; b0 < o.count; b0 += batch) {
        const int nb = o.count - b0 < batch ? o.count - b0 : batch;
        dm_sample_params p = dm_sample_default_params();
        p.sampler = o.sampler;
        p.steps = o.steps;
        p.eta = o.eta;
        p.guidance = o.guidance;
        p.cls = cls;
        p.seed = o.seed + (uint64_t)b0;
        p.progress = on_step;
        p.progress_user_data = &prog;
        if (dm_cli_signal() || dm_cli_play_interrupted()) /* the player re-raises its Ctrl-C */
            goto done;
        if (dm_generate(gen, &p, nb, buf, &err) != DM_OK) {
            dm_cli_progress_end(&prog.bar);
            if (!dm_cli_signal() && !dm_cli_play_interrupted())
                fprintf(stderr, "dmaudio sample: %s\n", err.message);
            goto done;
        }
        prog.done += o.steps;
        for (int k = 0; k < nb; k++) {
            const int i = b0 + k;
            recipe.seed = o.seed + (uint64_t)i;
            const char *path = o.no_file ? NULL : paths[i];
            dm_audio clip;
            int64_t clipped = 0;
            if (write_clip(&job, buf + (size_t)k * item, path, &recipe, &clip, &clipped, &err) !=
                DM_OK) {
                dm_cli_progress_end(&prog.bar);
                fprintf(stderr, "dmaudio sample: %s\n", err.message);
                goto done;
            }
            written += path != NULL;
            const double seconds = (double)clip.frames / clip.rate;
            if (!o.quiet) {
                dm_cli_progress_end(&prog.bar);
                if (path && !to_stdout)
                    fprintf(stderr, "dmaudio sample: wrote %s (seed %" PRIu64 ", %.3f s, %d Hz)\n",
                            path, recipe.seed, seconds, o.rate);
                if (clipped > 0)
                    fprintf(stderr, "dmaudio sample: %s: %" PRId64 " samples beyond full scale "
                                    "were clipped\n", path, clipped);
            }
            if (o.json)
                print_json(path, recipe.seed, cls >= 0 ? recipe.cls : NULL, recipe.sampler,
                           o.steps, o.guidance, o.eta, seconds, o.rate, in.audio_channels, &in);
            if (o.play) {
                if (!o.quiet)
                    fprintf(stderr, "dmaudio sample: playing seed %" PRIu64 " (%.3f s)\n",
                            recipe.seed, seconds);
                if (play_clip(&player, &clip, o.device) != 0) {
                    dm_audio_free(&clip);
                    goto done;
                }
            }
            dm_audio_free(&clip);
        }
    }
    dm_cli_progress_end(&prog.bar);
    status = DM_EXIT_OK;
done:
    if (player) { /* waits for the end of the last clip; re-raises a Ctrl-C */
        char why[512];
        if (dm_cli_player_close(player, status == DM_EXIT_OK, why, sizeof why) != 0 &&
            status == DM_EXIT_OK) {
            fprintf(stderr, "dmaudio sample: --play: %s\n", why);
            status = DM_EXIT_FAILURE;
        }
    }
    if (dm_cli_signal()) {
        char what[96];
        snprintf(what, sizeof what, "%d of %d clip%s written, each complete", written, o.count,
                 o.count > 1 ? "s" : "");
        status = dm_cli_stopped("sample", o.no_file ? "nothing written" : what);
    }
    if (paths)
        for (int i = 0; i < o.count; i++)
            free(paths[i]);
    free(paths);
    free(buf);
    dm_generator_free(gen);
    dm_model_free(m);
    return status;
}
