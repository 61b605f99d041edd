/* dmaudio play and dmaudio devices, and dm_cli_play (also used by `sample
 * --play`): audio output through PortAudio, with blocking writes.
 *
 * PortAudio probes every host API when it starts; on a machine without a sound
 * card or a JACK server, ALSA and JACK print a screenful of "cannot find card"
 * and "cannot connect to server" lines. They are kept off the terminal: ALSA's
 * error handler is replaced by a silent one, and stderr points to /dev/null
 * while PortAudio starts and stops. DMAUDIO_AUDIO_DEBUG=1 shows them. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <portaudio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef __linux__
#include <alsa/asoundlib.h>
#endif

const char dm_play_usage[] =
    "usage: dmaudio play [OPTIONS] FILE...\n"
    "\n"
    "Plays audio files (wav, flac, ogg, aiff...; '-' reads standard input) one after\n"
    "the other on an output device, through PortAudio.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -d, --device DEV   a device index or name, as 'dmaudio devices' lists them\n"
    "                     (a unique part of a name is enough) [$DMAUDIO_DEVICE, else\n"
    "                     the default output]\n"
    "  -q, --quiet        no message\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 played, 1 an unreadable file or no such device, 2 usage error.";

const char dm_devices_usage[] =
    "usage: dmaudio devices [--json]\n"
    "\n"
    "Lists the audio output devices PortAudio sees: index, name, host API, output\n"
    "channels and default sample rate; '*' marks the default output.\n"
    "\n"
    "options:\n"
    "  --json       one JSON object per device on stdout\n"
    "  -h, --help   show this help";

#define CHUNK_FRAMES 1024

/* ---- starting PortAudio quietly ---- */

#ifdef __linux__
static void alsa_silent(const char *file, int line, const char *function, int err,
                        const char *fmt, ...)
{
    (void)file, (void)line, (void)function, (void)err, (void)fmt;
}
#endif

static int audio_debug(void)
{
    const char *d = getenv("DMAUDIO_AUDIO_DEBUG");
    return d && *d && strcmp(d, "0") != 0;
}

/* Runs f with stderr on /dev/null (unless debugging). */
static PaError quietly(PaError (*f)(void))
{
    if (audio_debug())
        return f();
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved >= 0 && null >= 0)
        dup2(null, STDERR_FILENO);
    PaError e = f();
    if (saved >= 0 && null >= 0) {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
    }
    if (saved >= 0)
        close(saved);
    if (null >= 0)
        close(null);
    return e;
}

static PaError audio_start(char *err, size_t n)
{
#ifdef __linux__
    if (!audio_debug())
        snd_lib_error_set_handler(alsa_silent);
#endif
    PaError e = quietly(Pa_Initialize);
    if (e != paNoError)
        snprintf(err, n, "cannot start PortAudio: %s", Pa_GetErrorText(e));
    return e;
}

static void audio_stop(void) { quietly(Pa_Terminate); }

static const char *pa_error_text(PaError e)
{
    if (e == paUnanticipatedHostError) {
        const PaHostErrorInfo *h = Pa_GetLastHostErrorInfo();
        if (h && h->errorText && *h->errorText)
            return h->errorText;
    }
    return Pa_GetErrorText(e);
}

/* ---- choosing a device ---- */

static int is_output(PaDeviceIndex i)
{
    const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
    return d && d->maxOutputChannels > 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The device spec names (see dm_cli_play), or paNoDevice with a message. */
static PaDeviceIndex find_device(const char *spec, char *err, size_t n)
{
    const int count = Pa_GetDeviceCount();
    if (!spec || !*spec)
        spec = getenv("DMAUDIO_DEVICE");
    if (!spec || !*spec) {
        PaDeviceIndex d = Pa_GetDefaultOutputDevice();
        if (d == paNoDevice || !is_output(d))
            snprintf(err, n, "no audio output device (see 'dmaudio devices')");
        return d == paNoDevice || !is_output(d) ? paNoDevice : d;
    }
    if (all_digits(spec)) {
        long i = strlen(spec) < 8 ? strtol(spec, NULL, 10) : -1;
        if (i < 0 || i >= count || !is_output((PaDeviceIndex)i)) {
            snprintf(err, n, "no output device number %s (see 'dmaudio devices')", spec);
            return paNoDevice;
        }
        return (PaDeviceIndex)i;
    }
    for (PaDeviceIndex i = 0; i < count; i++)
        if (is_output(i) && strcmp(Pa_GetDeviceInfo(i)->name, spec) == 0)
            return i;
    PaDeviceIndex found = paNoDevice;
    int matches = 0;
    size_t len = strlen(spec);
    for (PaDeviceIndex i = 0; i < count; i++) {
        if (!is_output(i))
            continue;
        const char *name = Pa_GetDeviceInfo(i)->name;
        for (const char *p = name; *p; p++) {
            if (strncasecmp(p, spec, len) == 0) {
                if (matches++ == 0)
                    found = i;
                break;
            }
        }
    }
    if (matches == 1)
        return found;
    if (matches > 1)
        snprintf(err, n, "'%s' matches %d output devices; give more of the name or its number "
                         "(see 'dmaudio devices')", spec, matches);
    else
        snprintf(err, n, "no output device '%s' (see 'dmaudio devices')", spec);
    return paNoDevice;
}

/* ---- playing ---- */

/* A device being played to. Consecutive buffers of the same format go to one
 * stream, without a gap; a buffer of another format closes it and opens
 * another. */
typedef struct player {
    PaDeviceIndex dev;
    const PaDeviceInfo *info;
    PaStream *stream;
    int channels, rate;          /* of the open stream                          */
    float *chunk;                /* CHUNK_FRAMES x channels                     */
    int handler_set;
    struct sigaction old_int;
} player;

static volatile sig_atomic_t interrupted = 0;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Interleaved (frames, channels) -> planar and back, around dm_audio_resample. */
static int resample_interleaved(const float *x, int channels, int64_t frames, int rate,
                                int to_rate, float **out, int64_t *out_frames, char *err,
                                size_t n)
{
    dm_audio in, res = {0};
    dm_error e;
    if (dm_audio_alloc(&in, channels, frames, rate, &e) != DM_OK) {
        snprintf(err, n, "%s", e.message);
        return -1;
    }
    for (int64_t i = 0; i < frames; i++)
        for (int c = 0; c < channels; c++)
            in.data[(size_t)c * (size_t)frames + (size_t)i] = x[(size_t)i * channels + c];
    dm_status st = dm_audio_resample(&in, to_rate, DM_RESAMPLE_MEDIUM, &res, &e);
    dm_audio_free(&in);
    if (st != DM_OK) {
        snprintf(err, n, "cannot resample from %d to %d Hz: %s", rate, to_rate, e.message);
        return -1;
    }
    float *y = malloc((size_t)res.frames * (size_t)channels * sizeof *y);
    if (!y) {
        dm_audio_free(&res);
        snprintf(err, n, "out of memory");
        return -1;
    }
    for (int64_t i = 0; i < res.frames; i++)
        for (int c = 0; c < channels; c++)
            y[(size_t)i * channels + c] = res.data[(size_t)c * (size_t)res.frames + (size_t)i];
    *out = y;
    *out_frames = res.frames;
    dm_audio_free(&res);
    return 0;
}

static float clamp_sample(float v)
{
    return v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v == v ? v : 0.0f;
}

/* Starts PortAudio and finds the device; Ctrl-C then stops playback. */
static int player_open(player *p, const char *device, char *err, size_t n)
{
    memset(p, 0, sizeof *p);
    if (audio_start(err, n) != paNoError)
        return -1;
    if ((p->dev = find_device(device, err, n)) == paNoDevice) {
        audio_stop();
        return -1;
    }
    p->info = Pa_GetDeviceInfo(p->dev);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    if (sigaction(SIGINT, &sa, &p->old_int) == 0) {
        p->handler_set = 1;
        if (p->old_int.sa_handler == SIG_IGN) { /* ignored on entry: stays ignored */
            sigaction(SIGINT, &p->old_int, NULL);
            p->handler_set = 0;
        }
    }
    return 0;
}

/* Ends the stream (drain: after the buffered audio has played), stops
 * PortAudio, and re-raises a Ctrl-C received meanwhile: the caller's handler
 * runs, or the program ends as SIGINT would have ended it. */
static int player_close(player *p, int drain, char *err, size_t n)
{
    int status = 0;
    if (p->stream) {
        PaError e = drain && !interrupted ? Pa_StopStream(p->stream) : Pa_AbortStream(p->stream);
        if (e != paNoError && drain && !interrupted) {
            snprintf(err, n, "%s: playback failed: %s", p->info->name, pa_error_text(e));
            status = -1;
        }
        Pa_CloseStream(p->stream);
        p->stream = NULL;
    }
    audio_stop();
    free(p->chunk);
    p->chunk = NULL;
    if (p->handler_set) {
        sigaction(SIGINT, &p->old_int, NULL);
        p->handler_set = 0;
        if (interrupted)
            raise(SIGINT);
    }
    return status;
}

/* Plays interleaved x; returns when the last chunk is queued. */
static int player_write(player *p, const float *x, int channels, int64_t frames, int rate,
                        char *err, size_t n)
{
    float *mono = NULL, *resampled = NULL;
    int status = -1, ch = channels;
    if (ch > p->info->maxOutputChannels) { /* e.g. stereo on a mono device: mix down */
        if (!(mono = malloc((size_t)(frames > 0 ? frames : 1) * sizeof *mono))) {
            snprintf(err, n, "out of memory");
            return -1;
        }
        for (int64_t i = 0; i < frames; i++) {
            double s = 0;
            for (int c = 0; c < ch; c++)
                s += x[(size_t)i * ch + c];
            mono[i] = (float)(s / ch);
        }
        x = mono, ch = 1;
    }
    PaStreamParameters op;
    memset(&op, 0, sizeof op);
    op.device = p->dev;
    op.channelCount = ch;
    op.sampleFormat = paFloat32;
    op.suggestedLatency = p->info->defaultHighOutputLatency;
    int play_rate = rate;
    if (p->stream && p->channels == ch && p->rate == rate) {
        /* the open stream takes it as it is */
    } else if (Pa_IsFormatSupported(NULL, &op, rate) != paFormatIsSupported) {
        play_rate = (int)lround(p->info->defaultSampleRate);
        PaError e = Pa_IsFormatSupported(NULL, &op, play_rate);
        if (e != paFormatIsSupported) {
            snprintf(err, n, "%s: cannot play %d channel(s) at %d Hz (%s)", p->info->name, ch,
                     rate, pa_error_text(e));
            goto done;
        }
        if (resample_interleaved(x, ch, frames, rate, play_rate, &resampled, &frames, err, n) != 0)
            goto done;
        x = resampled;
    }
    if (p->stream && (p->channels != ch || p->rate != play_rate)) {
        Pa_StopStream(p->stream);
        Pa_CloseStream(p->stream);
        p->stream = NULL;
    }
    if (!p->stream) {
        PaError e = Pa_OpenStream(&p->stream, NULL, &op, play_rate, paFramesPerBufferUnspecified,
                                  paClipOff, NULL, NULL);
        if (e != paNoError) {
            p->stream = NULL;
            snprintf(err, n, "%s: cannot open the device: %s", p->info->name, pa_error_text(e));
            goto done;
        }
        free(p->chunk);
        if (!(p->chunk = malloc((size_t)CHUNK_FRAMES * (size_t)ch * sizeof *p->chunk))) {
            snprintf(err, n, "out of memory");
            goto done;
        }
        p->channels = ch, p->rate = play_rate;
        if ((e = Pa_StartStream(p->stream)) != paNoError) {
            snprintf(err, n, "%s: cannot start playing: %s", p->info->name, pa_error_text(e));
            goto done;
        }
    }
    for (int64_t i = 0; i < frames && !interrupted; i += CHUNK_FRAMES) {
        const int64_t k = frames - i < CHUNK_FRAMES ? frames - i : CHUNK_FRAMES;
        for (size_t j = 0; j < (size_t)k * (size_t)ch; j++)
            p->chunk[j] = clamp_sample(x[(size_t)i * ch + j]);
        PaError e = Pa_WriteStream(p->stream, p->chunk, (unsigned long)k);
        if (e != paNoError && e != paOutputUnderflowed) {
            snprintf(err, n, "%s: playback failed: %s", p->info->name, pa_error_text(e));
            goto done;
        }
    }
    status = 0;
done:
    free(mono);
    free(resampled);
    return status;
}

int dm_cli_play(const float *interleaved, int channels, int64_t frames, int rate,
                const char *device, char *err, size_t n)
{
    if (!interleaved || channels < 1 || channels > DM_AUDIO_MAX_CHANNELS || frames < 0 ||
        rate < 1 || rate > DM_AUDIO_MAX_RATE) {
        snprintf(err, n, "nothing to play (%d channels, %lld frames, %d Hz)", channels,
                 (long long)frames, rate);
        return 1;
    }
    player p;
    if (player_open(&p, device, err, n) != 0)
        return 1;
    int r = player_write(&p, interleaved, channels, frames, rate, err, n);
    char err2[256];
    int c = player_close(&p, r == 0, err2, sizeof err2);
    if (r == 0 && c != 0)
        snprintf(err, n, "%s", err2);
    return r == 0 && c == 0 ? 0 : 1;
}

int dm_cli_check_device(const char *device, char *err, size_t n)
{
    if (audio_start(err, n) != paNoError)
        return 1;
    PaDeviceIndex d = find_device(device, err, n);
    audio_stop();
    return d == paNoDevice ? 1 : 0;
}

struct dm_cli_player {
    player p;
};

int dm_cli_player_open(dm_cli_player **out, const char *device, char *err, size_t n)
{
    *out = malloc(sizeof **out);
    if (!*out) {
        snprintf(err, n, "out of memory");
        return 1;
    }
    if (player_open(&(*out)->p, device, err, n) != 0) {
        free(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

int dm_cli_player_write(dm_cli_player *pl, const float *interleaved, int channels,
                        int64_t frames, int rate, char *err, size_t n)
{
    return player_write(&pl->p, interleaved, channels, frames, rate, err, n) != 0;
}

int dm_cli_player_close(dm_cli_player *pl, int drain, char *err, size_t n)
{
    if (!pl)
        return 0;
    int r = player_close(&pl->p, drain, err, n);
    free(pl);
    return r != 0;
}

int dm_cli_play_interrupted(void) { return interrupted != 0; }

/* ---- dmaudio play ---- */

int cmd_play(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"device", required_argument, 0, 'd'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *device = NULL;
    int quiet = 0;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":d:qh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': device = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': puts(dm_play_usage); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio play: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio play: unknown option '%s' (see 'dmaudio play --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio play: no file given (usage: dmaudio play FILE...)\n");
        return DM_EXIT_USAGE;
    }
    if (device && !*device) {
        fprintf(stderr, "dmaudio play: --device: empty device name\n");
        return DM_EXIT_USAGE;
    }
    /* every file is decoded once before anything plays: a truncated or corrupt file
     * stops the command before the first sound, not in the middle of the list */
    int stdin_count = 0;
    for (int i = optind; i < argc; i++) {
        dm_audio a;
        dm_error e;
        if (strcmp(argv[i], "-") == 0) {
            if (++stdin_count > 1) {
                fprintf(stderr, "dmaudio play: '-' (standard input) can be given once\n");
                return DM_EXIT_USAGE;
            }
            continue;
        }
        if (dm_audio_read(argv[i], NULL, &a, &e) != DM_OK) {
            fprintf(stderr, "dmaudio play: %s\n", e.message);
            return DM_EXIT_FAILURE;
        }
        dm_audio_free(&a);
    }
    char err[512];
    player p;
    if (player_open(&p, device, err, sizeof err) != 0) {
        fprintf(stderr, "dmaudio play: %s\n", err);
        return DM_EXIT_FAILURE;
    }
    int status = DM_EXIT_OK;
    for (int i = optind; i < argc && status == DM_EXIT_OK && !interrupted; i++) {
        dm_audio a;
        dm_error e;
        if (dm_audio_read(argv[i], NULL, &a, &e) != DM_OK) {
            snprintf(err, sizeof err, "%s", e.message);
            status = DM_EXIT_FAILURE;
            break;
        }
        float *x = malloc((size_t)a.frames * (size_t)a.channels * sizeof *x);
        if (!x) {
            dm_audio_free(&a);
            snprintf(err, sizeof err, "%s: out of memory", argv[i]);
            status = DM_EXIT_FAILURE;
            break;
        }
        for (int64_t k = 0; k < a.frames; k++)
            for (int c = 0; c < a.channels; c++)
                x[(size_t)k * a.channels + c] = a.data[(size_t)c * (size_t)a.frames + (size_t)k];
        if (!quiet)
            fprintf(stderr, "dmaudio play: %s (%.3f s, %d Hz, %d channel%s) on %s\n", argv[i],
                    (double)a.frames / a.rate, a.rate, a.channels, a.channels > 1 ? "s" : "",
                    p.info->name);
        if (player_write(&p, x, a.channels, a.frames, a.rate, err, sizeof err) != 0)
            status = DM_EXIT_FAILURE;
        free(x);
        dm_audio_free(&a);
    }
    if (status != DM_EXIT_OK)
        fprintf(stderr, "dmaudio play: %s\n", err);
    if (player_close(&p, status == DM_EXIT_OK, err, sizeof err) != 0 && status == DM_EXIT_OK) {
        fprintf(stderr, "dmaudio play: %s\n", err);
        status = DM_EXIT_FAILURE;
    }
    return status;
}

/* ---- dmaudio devices ---- */

int cmd_devices(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'h': puts(dm_devices_usage); return DM_EXIT_OK;
        default:
            fprintf(stderr, "dmaudio devices: unknown option '%s' (see 'dmaudio devices --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dmaudio devices: unexpected argument '%s'\n", argv[optind]);
        return DM_EXIT_USAGE;
    }
    char err[256];
    if (audio_start(err, sizeof err) != paNoError) {
        fprintf(stderr, "dmaudio devices: %s\n", err);
        return DM_EXIT_FAILURE;
    }
    const int count = Pa_GetDeviceCount();
    const PaDeviceIndex def = Pa_GetDefaultOutputDevice();
    int name_w = 4, api_w = 8, listed = 0;
    for (int i = 0; i < count; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || d->maxOutputChannels < 1)
            continue;
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        int w = (int)strlen(d->name), aw = h ? (int)strlen(h->name) : 1;
        name_w = w > name_w ? (w < 60 ? w : 60) : name_w;
        api_w = aw > api_w ? aw : api_w;
    }
    if (!json)
        for (int i = 0; i < count; i++) {
            const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
            if (d && d->maxOutputChannels > 0) {
                printf("  %5s  %-*s  %-*s  %8s  %s\n", "index", name_w, "name", api_w, "host API",
                       "channels", "default rate");
                break;
            }
        }
    for (int i = 0; i < count; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || d->maxOutputChannels < 1)
            continue;
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        const char *api = h ? h->name : "?";
        listed++;
        if (json) {
            printf("{\"index\": %d, \"name\": ", i);
            dm_cli_json_string(stdout, d->name);
            printf(", \"host_api\": ");
            dm_cli_json_string(stdout, api);
            printf(", \"channels\": %d, \"default_rate\": %.0f, \"default\": %s}\n",
                   d->maxOutputChannels, d->defaultSampleRate, i == def ? "true" : "false");
        } else {
            printf("%c %5d  %-*s  %-*s  %8d  %.0f Hz\n", i == def ? '*' : ' ', i, name_w, d->name,
                   api_w, api, d->maxOutputChannels, d->defaultSampleRate);
        }
    }
    audio_stop();
    if (!listed)
        fprintf(stderr, "dmaudio devices: no audio output device found (no sound card, and no "
                        "sound server PortAudio can reach)\n");
    return DM_EXIT_OK;
}
