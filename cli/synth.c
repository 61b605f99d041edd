/* dmaudio synth: writes the synthetic dataset of dmaudio_audio.h (decaying
 * tones, noise bursts, clicks; one sub-folder per class) -- a distribution
 * known in advance, to try training on before using your own sounds. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

const char dm_synth_usage[] =
    "usage: dmaudio synth OUT_DIR [OPTIONS]\n"
    "\n"
    "Writes OUT_DIR/tone/, OUT_DIR/noise/ and OUT_DIR/click/, each with N mono\n"
    "24-bit WAV clips (tone_0000.wav ...): a labelled dataset for 'dmaudio train'.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -n, --per-class N   clips per class [100]\n"
    "  -r, --rate HZ       sample rate, 8000..768000 [44100]\n"
    "  -l, --length N      samples per clip [16384]\n"
    "  -s, --seed S        the same seed writes the same files [1]\n"
    "  -f, --force         write into OUT_DIR even if it is not empty\n"
    "  -q, --quiet         no message\n"
    "  -h, --help          show this help";

/* 1 if dir exists and holds anything, 0 if missing or empty, -1 on error. */
static int dir_not_empty(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "dmaudio synth: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "dmaudio synth: %s exists and is not a folder\n", dir);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "dmaudio synth: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

int cmd_synth(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"per-class", required_argument, 0, 'n'}, {"rate", required_argument, 0, 'r'},
        {"length", required_argument, 0, 'l'},    {"seed", required_argument, 0, 's'},
        {"force", no_argument, 0, 'f'},           {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0},
    };
    int per_class = 100, rate = 44100, length = 16384, force = 0, quiet = 0;
    uint64_t seed = 1;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":n:r:l:s:fqh", longopts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 'n': r = dm_cli_int("--per-class", optarg, 1, 1000000, &per_class); break;
        case 'r': r = dm_cli_int("--rate", optarg, 8000, DM_AUDIO_MAX_RATE, &rate); break;
        case 'l': r = dm_cli_int("--length", optarg, 1, 1 << 24, &length); break;
        case 's': r = dm_cli_u64("--seed", optarg, &seed); break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': puts(dm_synth_usage); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio synth: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio synth: unknown option '%s' (see 'dmaudio synth --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
        if (r < 0)
            return DM_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio synth: no output folder given (usage: dmaudio synth OUT_DIR)\n");
        return DM_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio synth: unexpected argument '%s'\n", argv[optind + 1]);
        return DM_EXIT_USAGE;
    }
    const char *dir = argv[optind];
    int full = dir_not_empty(dir);
    if (full < 0)
        return DM_EXIT_FAILURE;
    if (full && !force) {
        fprintf(stderr, "dmaudio synth: %s is not empty (use --force to write into it)\n", dir);
        return DM_EXIT_FAILURE;
    }
    dm_error err;
    if (dm_synth_write_dataset(dir, per_class, seed, rate, length, &err) != DM_OK) {
        fprintf(stderr, "dmaudio synth: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    if (!quiet)
        fprintf(stderr,
                "dmaudio synth: wrote %d clips to %s (%d classes x %d, %d Hz, %d samples, "
                "seed %" PRIu64 ")\n",
                DM_SYNTH_N_CLASSES * per_class, dir, DM_SYNTH_N_CLASSES, per_class, rate, length,
                seed);
    return DM_EXIT_OK;
}
