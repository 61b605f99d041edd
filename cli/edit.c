/* Pieces shared by the editing subcommands (variation, interpolate, inpaint): options,
 * the input sound, output names, recipes, writing, progress. See cli/edit.h. */
#include "edit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void dm_edit_opts_init(dm_edit_opts *o, const char *cmd)
{
    dm_sample_params d = dm_sample_default_params();
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->count = 1;
    o->sampler = d.sampler;
    o->guidance = d.guidance;
    o->eta = d.eta;
    o->format = DM_SAMPLE_PCM_24;
}

int dm_edit_option(dm_edit_opts *o, int opt, const char *arg, char **argv, const char *usage,
                   int max_seeds)
{
    switch (opt) {
    case 'm': o->model = arg; return 0;
    case 'o': o->output = arg; return 0;
    case 'n': return dm_cli_int("--count", arg, 1, 100000, &o->count);
    case 's':
        if (o->n_seeds == max_seeds) {
            fprintf(stderr, "dmaudio %s: --seed given more than %s\n", o->cmd,
                    max_seeds == 1 ? "once" : "twice");
            return -1;
        }
        return dm_cli_u64("--seed", arg, &o->seeds[o->n_seeds++]);
    case DM_OPT_STEPS: return dm_cli_int("--steps", arg, 1, DM_MAX_TIMESTEPS, &o->steps);
    case DM_OPT_SAMPLER:
        if (dm_sampler_from_name(arg, &o->sampler) != 0) {
            fprintf(stderr, "dmaudio %s: --sampler: unknown sampler '%s' (ddpm, ddim, dpmpp-2m, "
                            "euler, heun)\n", o->cmd, arg);
            return -1;
        }
        return 0;
    case 'c': o->class_name = arg; return 0;
    case 'g': return dm_cli_double("--guidance", arg, 0, 100, &o->guidance);
    case DM_OPT_ETA: return dm_cli_double("--eta", arg, 0, 1, &o->eta);
    case DM_OPT_FORMAT:
        if (dm_sample_format_from_name(arg, &o->format) != 0) {
            fprintf(stderr, "dmaudio %s: --format: unknown format '%s' (pcm16, pcm24, float)\n",
                    o->cmd, arg);
            return -1;
        }
        return 0;
    case 't': return dm_cli_int("--threads", arg, 0, 1024, &o->threads);
    case 'f': o->force = 1; return 0;
    case 'q': o->quiet = 1; return 0;
    case DM_OPT_JSON: o->json = 1; return 0;
    case 'h': puts(usage); return 2;
    case ':':
        fprintf(stderr, "dmaudio %s: option '%s' needs a value\n", o->cmd, argv[optind - 1]);
        return -1;
    case '?':
        fprintf(stderr, "dmaudio %s: unknown option '%s' (see 'dmaudio %s --help')\n", o->cmd,
                argv[optind - 1], o->cmd);
        return -1;
    default:
        return 1;
    }
}

/* Where the extension starts in path's last component (the '.'), or NULL. */
static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot : NULL;
}

int dm_edit_check_output(const dm_edit_opts *o)
{
    if (!o->output || !*o->output) {
        fprintf(stderr, "dmaudio %s: an output file is needed (-o OUT.wav)\n", o->cmd);
        return -1;
    }
    const char *ext = extension(o->output);
    if (!ext || (strcasecmp(ext, ".wav") != 0 && strcasecmp(ext, ".flac") != 0)) {
        fprintf(stderr, "dmaudio %s: %s: the output must end in .wav or .flac\n", o->cmd,
                o->output);
        return -1;
    }
    if (strcasecmp(ext, ".flac") == 0 && o->format == DM_SAMPLE_FLOAT) {
        fprintf(stderr, "dmaudio %s: --format float needs a .wav output (FLAC stores integers)\n",
                o->cmd);
        return -1;
    }
    return 0;
}

/* A seed nobody chose: 32 bits of /dev/urandom, short to type. */
static int random_seed(const char *cmd, uint64_t *seed)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    uint32_t v = 0;
    ssize_t n = fd >= 0 ? read(fd, &v, sizeof v) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof v) {
        fprintf(stderr, "dmaudio %s: cannot read /dev/urandom for a seed (pass --seed S)\n", cmd);
        return -1;
    }
    *seed = v;
    return 0;
}

int dm_edit_resolve(dm_edit_opts *o, const dm_model *m, int *cls)
{
    const dm_model_info in = dm_model_get_info(m);
    *cls = -1;
    if (o->class_name && in.n_classes == 0) {
        fprintf(stderr, "dmaudio %s: --class: the model '%s' is unconditional (it has no "
                        "classes)\n", o->cmd, in.name);
        return DM_EXIT_USAGE;
    }
    if (o->class_name && (*cls = dm_model_find_class(m, o->class_name)) < 0) {
        fprintf(stderr, "dmaudio %s: --class: unknown class '%s' (the model's classes:", o->cmd,
                o->class_name);
        for (int c = 0; c < in.n_classes; c++)
            fprintf(stderr, "%s %s", c ? "," : "", dm_model_class_name(m, c));
        fprintf(stderr, ")\n");
        return DM_EXIT_USAGE;
    }
    if (o->n_seeds == 0) {
        if (random_seed(o->cmd, &o->seeds[0]) != 0)
            return DM_EXIT_FAILURE;
        o->n_seeds = 1;
    }
    if (o->steps == 0)
        o->steps = dm_sampler_default_steps(o->sampler);
    return DM_EXIT_OK;
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
static int folder_writable(const char *cmd, const char *path)
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
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "dmaudio %s: %s: cannot write in the folder %s: %s\n", cmd, path, dir,
                stat(dir, &sb) != 0 ? strerror(errno)
                : !S_ISDIR(sb.st_mode) ? "not a folder" : strerror(EACCES));
        return -1;
    }
    return 0;
}

void dm_edit_free_paths(char **paths, int count)
{
    for (int i = 0; paths && i < count; i++)
        free(paths[i]);
    free(paths);
}

int dm_edit_output_paths(const dm_edit_opts *o, int count, int numbered, char ***out)
{
    char **paths = calloc((size_t)count, sizeof *paths);
    *out = NULL;
    if (!paths) {
        fprintf(stderr, "dmaudio %s: out of memory\n", o->cmd);
        return DM_EXIT_FAILURE;
    }
    for (int i = 0; i < count; i++) {
        char name[PATH_MAX];
        if (count == 1 && !numbered)
            snprintf(name, sizeof name, "%s", o->output);
        else if (numbered_path(o->output, i + 1, count, name, sizeof name) != 0) {
            fprintf(stderr, "dmaudio %s: %s: name too long\n", o->cmd, o->output);
            dm_edit_free_paths(paths, count);
            return DM_EXIT_USAGE;
        }
        if (!(paths[i] = strdup(name))) {
            fprintf(stderr, "dmaudio %s: out of memory\n", o->cmd);
            dm_edit_free_paths(paths, count);
            return DM_EXIT_FAILURE;
        }
        struct stat sb;
        if (!o->force && lstat(name, &sb) == 0) {
            fprintf(stderr, "dmaudio %s: %s exists (use --force to overwrite it)\n", o->cmd, name);
            dm_edit_free_paths(paths, count);
            return DM_EXIT_FAILURE;
        }
        if (i == 0 && folder_writable(o->cmd, name) != 0) {
            dm_edit_free_paths(paths, count);
            return DM_EXIT_FAILURE;
        }
    }
    *out = paths;
    return DM_EXIT_OK;
}

int dm_edit_read_input(const dm_edit_opts *o, const char *path, const dm_model_info *in,
                       dm_audio *out)
{
    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.rate = in->sample_rate;
    rp.channels = in->audio_channels;
    dm_error err;
    if (dm_audio_read(path, &rp, out, &err) != DM_OK) {
        fprintf(stderr, "dmaudio %s: %s\n", o->cmd, err.message);
        return DM_EXIT_FAILURE;
    }
    return DM_EXIT_OK;
}

void dm_edit_recipe(const dm_edit_opts *o, const dm_model *m, int cls, const char *mode,
                    double strength, uint64_t seed, dm_recipe *r)
{
    const dm_model_info in = dm_model_get_info(m);
    memset(r, 0, sizeof *r);
    snprintf(r->model, sizeof r->model, "%s", in.name);
    r->crc = in.checksum;
    r->seed = seed;
    snprintf(r->sampler, sizeof r->sampler, "%s", dm_sampler_name(o->sampler));
    r->steps = o->steps;
    snprintf(r->cls, sizeof r->cls, "%s", cls >= 0 ? dm_model_class_name(m, cls) : "-");
    r->guidance = o->guidance;
    r->strength = strength;
    r->eta = o->eta;
    snprintf(r->mode, sizeof r->mode, "%s", mode);
    snprintf(r->version, sizeof r->version, "%s", DM_CLI_VERSION);
}

int dm_edit_write(const dm_edit_opts *o, const dm_audio *a, const char *path, const char *title,
                  const dm_recipe *r, const char *extra_json)
{
    char comment[640];
    dm_recipe full = *r; /* completed by what is written */
    full.rate = a->rate;
    full.frames = a->frames;
    snprintf(full.format, sizeof full.format, "%s", dm_sample_format_name(o->format));
    dm_recipe_format(&full, comment, sizeof comment);
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.format = o->format;
    wp.title = title;
    wp.comment = comment;
    int64_t clipped = 0;
    wp.clipped = &clipped;
    dm_error err;
    if (dm_audio_write(path, a, &wp, &err) != DM_OK) {
        fprintf(stderr, "dmaudio %s: %s\n", o->cmd, err.message);
        return DM_EXIT_FAILURE;
    }
    const double seconds = (double)a->frames / a->rate;
    if (!o->quiet) {
        fprintf(stderr, "dmaudio %s: wrote %s (seed %" PRIu64 ", %.3f s, %d Hz)\n", o->cmd, path,
                r->seed, seconds, a->rate);
        if (clipped > 0)
            fprintf(stderr, "dmaudio %s: %s: %" PRId64 " samples beyond full scale were clipped\n",
                    o->cmd, path, clipped);
    }
    if (o->json) {
        printf("{\"path\": ");
        dm_cli_json_string(stdout, path);
        printf(", \"mode\": \"%s\", \"seed\": %" PRIu64 ", \"class\": ", r->mode, r->seed);
        if (strcmp(r->cls, "-") != 0)
            dm_cli_json_string(stdout, r->cls);
        else
            printf("null");
        printf(", \"sampler\": \"%s\", \"steps\": %d, \"guidance\": %.17g, \"eta\": %.17g, "
               "\"seconds\": %.9g, \"rate\": %d, \"channels\": %d, \"model\": ",
               r->sampler, r->steps, r->guidance, r->eta, seconds, a->rate, a->channels);
        dm_cli_json_string(stdout, r->model);
        printf(", \"crc\": \"%08" PRIx32 "\"%s}\n", r->crc, extra_json ? extra_json : "");
        fflush(stdout);
    }
    return DM_EXIT_OK;
}

int dm_edit_on_step(void *user_data, int step, int n_steps)
{
    dm_edit_progress *p = user_data;
    (void)n_steps;
    dm_cli_progress_update(&p->bar, p->done + step, p->total);
    return dm_cli_signal() != 0; /* Ctrl-C: stop at this step, write nothing more */
}

int dm_edit_steps_taken(const dm_edit_opts *o, double strength)
{
    if (strength >= 1.0)
        return o->steps;
    int n = (int)lround(o->steps * strength);
    return n < 1 ? 1 : n;
}

void dm_edit_sample_params(const dm_edit_opts *o, int cls, dm_edit_progress *prog,
                           dm_sample_params *p)
{
    *p = dm_sample_default_params();
    p->sampler = o->sampler;
    p->steps = o->steps;
    p->eta = o->eta;
    p->guidance = o->guidance;
    p->cls = cls;
    p->progress = dm_edit_on_step;
    p->progress_user_data = prog;
}
