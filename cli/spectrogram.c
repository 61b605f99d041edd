/* dmaudio spectrogram: a picture of a sound. Short-time power spectrum (FFTW, through
 * dm_stft) on a logarithmic frequency axis, in dB relative to a full-scale sine, mapped
 * through the magma colour map; time and frequency labels drawn with a 5x7 bitmap font; a
 * colour bar. Written as an RGB PNG by libpng, atomically (temporary file, fsync, rename). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char dm_spectrogram_usage[] =
    "usage: dmaudio spectrogram IN -o OUT.png [OPTIONS]\n"
    "\n"
    "Draws the spectrogram of the sound IN (mixed to mono, at its own rate): power on a\n"
    "logarithmic frequency axis, in dB relative to a full-scale sine (magma colours, from\n"
    "--range dB below 0 dB up to 0 dB), with time (s) and frequency (Hz) axes and a colour\n"
    "bar. The PNG is written atomically: OUT.png is either complete or untouched.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -o, --output FILE     the picture, .png (required)\n"
    "  -W, --width W         picture width in pixels, 200..16384 [800]\n"
    "  -H, --height H        picture height in pixels, 100..16384 [400]\n"
    "      --n-fft N         analysis window, even, 16..65536 [the power of two nearest\n"
    "                        to 46 ms, at least 256, at most a quarter of IN]\n"
    "      --range DB        dB shown below full scale, 10..300 [90]\n"
    "  -f, --force           overwrite OUT.png if it exists\n"
    "  -q, --quiet           no message\n"
    "  -h, --help            show this help";

enum { OPT_NFFT = 256, OPT_RANGE };

/* ---- colours ---- */

/* matplotlib's magma at 0, 1/8, ..., 1; linear in between. */
static const unsigned char magma[9][3] = {
    {0, 0, 4},       {28, 16, 68},    {79, 18, 123},   {129, 37, 129}, {181, 54, 122},
    {229, 80, 100},  {251, 135, 97},  {254, 194, 135}, {252, 253, 191},
};

static void colour(double v, unsigned char rgb[3])
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double pos = v * 8;
    int i = (int)pos;
    if (i >= 8)
        i = 7;
    double f = pos - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (unsigned char)lround(magma[i][c] + f * (magma[i + 1][c] - magma[i][c]));
}

/* ---- a 5x7 font for the labels ---- */

static const struct {
    char c;
    unsigned char rows[7]; /* 5 bits each, the leftmost pixel in bit 4 */
} glyphs[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}},
    {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
};

typedef struct image {
    int w, h;
    unsigned char *px; /* RGB rows */
} image;

static void put(image *im, int x, int y, const unsigned char rgb[3])
{
    if (x >= 0 && y >= 0 && x < im->w && y < im->h)
        memcpy(im->px + ((size_t)y * im->w + x) * 3, rgb, 3);
}

static const unsigned char ink[3] = {0, 0, 0}, paper[3] = {255, 255, 255};

/* Text with its top-left corner at (x, y); 6 pixels per character. */
static void text(image *im, int x, int y, const char *s)
{
    for (; *s; s++, x += 6)
        for (size_t g = 0; g < sizeof glyphs / sizeof glyphs[0]; g++)
            if (glyphs[g].c == *s)
                for (int r = 0; r < 7; r++)
                    for (int c = 0; c < 5; c++)
                        if (glyphs[g].rows[r] & (0x10 >> c))
                            put(im, x + c, y + r, ink);
}

static int text_width(const char *s)
{
    return 6 * (int)strlen(s) - 1;
}

/* "50", "200", "1k", "2.5k", "20k" */
static void hz_label(double f, char *buf, size_t n)
{
    if (f >= 1000)
        snprintf(buf, n, "%gk", f / 1000);
    else
        snprintf(buf, n, "%g", f);
}

/* ---- the picture ---- */

typedef struct layout {
    int x0, x1, y0, y1; /* the plot: [x0, x1) x [y0, y1) */
} layout;

/* dB (relative to a full-scale sine) of the power spectrogram pw (bins, frames). */
static void draw(image *im, const layout *L, const float *pw, int bins, int frames, int n_fft,
                 double rate, double seconds, double range)
{
    const int W = L->x1 - L->x0, H = L->y1 - L->y0;
    const double ref = (n_fft / 4.0) * (n_fft / 4.0); /* |X|^2 of a full-scale sine's peak */
    const double df = rate / n_fft;
    const double f_lo = fmax(20.0, df), f_hi = rate / 2;
    float *col = malloc((size_t)bins * sizeof *col);
    if (!col)
        return;
    for (int x = 0; x < W; x++) {
        /* the frames of this column: their maximum, or the nearest one */
        int t0 = (int)((double)x * frames / W), t1 = (int)((double)(x + 1) * frames / W);
        if (t1 <= t0)
            t1 = t0 + 1;
        if (t1 > frames)
            t1 = frames, t0 = frames - 1 < t0 ? frames - 1 : t0;
        for (int k = 0; k < bins; k++) {
            float m = 0;
            for (int t = t0; t < t1; t++)
                m = fmaxf(m, pw[(size_t)k * frames + t]);
            col[k] = m;
        }
        for (int y = 0; y < H; y++) {
            /* this row's band, logarithmic, the top row highest */
            double a = f_lo * pow(f_hi / f_lo, (double)(H - 1 - y) / H);
            double b = f_lo * pow(f_hi / f_lo, (double)(H - y) / H);
            int ka = (int)ceil(a / df), kb = (int)floor(b / df);
            double p;
            if (kb >= ka) { /* bins inside the band: the loudest */
                p = 0;
                for (int k = ka; k <= kb && k < bins; k++)
                    p = fmax(p, col[k]);
            } else { /* a band narrower than a bin: interpolate in dB at its centre */
                double f = sqrt(a * b) / df;
                int k = (int)floor(f);
                if (k >= bins - 1)
                    k = bins - 2;
                double u = f - k;
                double d0 = log10(fmax(col[k], 1e-30)), d1 = log10(fmax(col[k + 1], 1e-30));
                p = pow(10.0, d0 + u * (d1 - d0));
            }
            double db = 10.0 * log10(fmax(p / ref, 1e-30));
            unsigned char rgb[3];
            colour(1.0 + db / range, rgb);
            put(im, L->x0 + x, L->y0 + y, rgb);
        }
    }
    free(col);

    /* frequency axis */
    static const double fticks[] = {20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000,
                                    50000, 100000, 200000};
    int last_y = INT_MAX;
    for (size_t i = 0; i < sizeof fticks / sizeof fticks[0]; i++) {
        double f = fticks[i];
        if (f < f_lo || f > f_hi)
            continue;
        int y = L->y0 + (int)lround((H - 1) - log(f / f_lo) / log(f_hi / f_lo) * H);
        if (last_y - y < 12)
            continue;
        last_y = y;
        for (int k = 1; k <= 4; k++)
            put(im, L->x0 - k, y, ink);
        char s[16];
        hz_label(f, s, sizeof s);
        text(im, L->x0 - 6 - text_width(s), y - 3, s);
    }
    text(im, 2, L->y0, "Hz");

    /* time axis */
    static const double steps[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2,
                                   5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600};
    double step = steps[sizeof steps / sizeof steps[0] - 1];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (seconds / steps[i] <= W / 60.0) {
            step = steps[i];
            break;
        }
    for (int i = 0;; i++) {
        double t = i * step;
        if (t > seconds * (1 + 1e-9))
            break;
        int x = L->x0 + (int)lround(seconds > 0 ? t / seconds * (W - 1) : 0);
        for (int k = 0; k < 4; k++)
            put(im, x, L->y1 + k, ink);
        char s[32];
        snprintf(s, sizeof s, "%.10g", t);
        int tx = x - text_width(s) / 2;
        if (tx + text_width(s) < L->x1 + 2)
            text(im, tx < 0 ? 0 : tx, L->y1 + 7, s);
    }
    text(im, L->x1 + 6, L->y1 + 7, "s");

    /* the colour bar, 0 dB at the top */
    const int bx = L->x1 + 8;
    for (int y = L->y0; y < L->y1; y++) {
        unsigned char rgb[3];
        colour(1.0 - (double)(y - L->y0) / (H - 1), rgb);
        for (int x = bx; x < bx + 10; x++)
            put(im, x, y, rgb);
    }
    char s[16];
    text(im, bx + 13, L->y0, "0");
    snprintf(s, sizeof s, "-%g", range);
    text(im, bx + 13, L->y1 - 7, s);
    text(im, bx + 13, L->y0 + H / 2 - 3, "dB");
}

/* ---- PNG, atomically ---- */

/* libpng's messages go into the one-line error (its default prints to stderr). */
static void png_on_error(png_structp png, png_const_charp msg)
{
    char *buf = png_get_error_ptr(png);
    snprintf(buf, 128, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static int write_png(const char *path, const image *im, const char *title, char *why, size_t n)
{
    char tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", dir_len, path, slash ? slash + 1 : path) >=
        (int)sizeof tmp) {
        snprintf(why, n, "name too long");
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(why, n, "cannot create a file in its folder: %s", strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        snprintf(why, n, "%s", strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    char png_msg[128] = "libpng error";
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, png_msg, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        snprintf(why, n, "out of memory");
        goto fail;
    }
    if (setjmp(png_jmpbuf(png))) {
        snprintf(why, n, "cannot write it (%s)", errno ? strerror(errno) : png_msg);
        goto fail;
    }
    rows = malloc((size_t)im->h * sizeof *rows);
    if (!rows) {
        snprintf(why, n, "out of memory");
        goto fail;
    }
    for (int y = 0; y < im->h; y++)
        rows[y] = im->px + (size_t)y * im->w * 3;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text txt[2];
    memset(txt, 0, sizeof txt);
    txt[0].compression = txt[1].compression = PNG_TEXT_COMPRESSION_NONE;
    txt[0].key = (png_charp) "Software";
    txt[0].text = (png_charp) "dmaudio " DM_CLI_VERSION;
    txt[1].key = (png_charp) "Title";
    txt[1].text = (png_charp)title;
    png_set_text(png, info, txt, 2);
    png_set_rows(png, info, rows);
    errno = 0;
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    rows = NULL;
    errno = 0;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        snprintf(why, n, "cannot write it: %s", strerror(errno ? errno : EIO));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0) {
        snprintf(why, n, "cannot write it: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    mode_t mask = umask(0); /* mkstemp made it 0600; a picture is for everyone to read */
    umask(mask);
    if (chmod(tmp, 0666 & ~mask) != 0 || rename(tmp, path) != 0) {
        snprintf(why, n, "cannot rename the finished file into place: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
fail:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(rows);
    fclose(f);
    unlink(tmp);
    return -1;
}

/* ---- the command ---- */

int cmd_spectrogram(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'}, {"n-fft", required_argument, 0, OPT_NFFT},
        {"range", required_argument, 0, OPT_RANGE}, {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *output = NULL;
    int width = 800, height = 400, n_fft = 0, force = 0, quiet = 0;
    double range = 90;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":o:W:H:fqh", longopts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 'o': output = optarg; break;
        case 'W': r = dm_cli_int("--width", optarg, 200, 16384, &width); break;
        case 'H': r = dm_cli_int("--height", optarg, 100, 16384, &height); break;
        case OPT_NFFT:
            r = dm_cli_int("--n-fft", optarg, 16, 65536, &n_fft);
            if (r == 0 && n_fft % 2) {
                fprintf(stderr, "dmaudio spectrogram: --n-fft %d must be even\n", n_fft);
                r = -1;
            }
            break;
        case OPT_RANGE: r = dm_cli_double("--range", optarg, 10, 300, &range); break;
        case 'f': force = 1; break;
        case 'q': quiet = 1; break;
        case 'h': puts(dm_spectrogram_usage); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio spectrogram: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio spectrogram: unknown option '%s' (see 'dmaudio spectrogram "
                            "--help')\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
        if (r < 0)
            return DM_EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "dmaudio spectrogram: no input sound (usage: dmaudio spectrogram IN -o "
                        "OUT.png)\n");
        return DM_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dmaudio spectrogram: unexpected argument '%s' (one input sound)\n",
                argv[optind + 1]);
        return DM_EXIT_USAGE;
    }
    const char *input = argv[optind];
    if (!output || !*output) {
        fprintf(stderr, "dmaudio spectrogram: an output picture is needed (-o OUT.png)\n");
        return DM_EXIT_USAGE;
    }
    const char *dot = strrchr(output, '.');
    if (!dot || strchr(dot, '/') || strcasecmp(dot, ".png") != 0) {
        fprintf(stderr, "dmaudio spectrogram: %s: the output must end in .png\n", output);
        return DM_EXIT_USAGE;
    }
    struct stat sb;
    if (!force && lstat(output, &sb) == 0) {
        fprintf(stderr, "dmaudio spectrogram: %s exists (use --force to overwrite it)\n", output);
        return DM_EXIT_FAILURE;
    }

    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.channels = 1;
    dm_audio a = {0};
    dm_error err;
    if (dm_audio_read(input, &rp, &a, &err) != DM_OK) {
        fprintf(stderr, "dmaudio spectrogram: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    if (n_fft == 0) { /* the power of two nearest to 46 ms, at least 256; but a short sound
                         * gets windows of at most a quarter of its length (at least 16) */
        n_fft = 256;
        while (n_fft < 65536 && fabs(log2(2.0 * n_fft / (0.046 * a.rate))) <
                                    fabs(log2(n_fft / (0.046 * a.rate))))
            n_fft *= 2;
        while (n_fft > 16 && n_fft > a.frames / 4)
            n_fft /= 2;
    }
    int status = DM_EXIT_FAILURE;
    image im = {width, height, NULL};
    layout L = {44, width - 56, 8, height - 24};
    const int W = L.x1 - L.x0;
    int64_t hop64 = a.frames / W;
    const int hop = (int)(hop64 < 1 ? 1 : hop64 > n_fft ? n_fft : hop64);
    dm_stft *st = NULL;
    float *re = NULL, *imag = NULL;
    if (dm_stft_create(n_fft, hop, &st, &err) != DM_OK) {
        fprintf(stderr, "dmaudio spectrogram: %s\n", err.message);
        goto done;
    }
    const int bins = dm_stft_bins(st), frames = dm_stft_frames(st, (size_t)a.frames);
    re = malloc((size_t)bins * frames * sizeof *re);
    imag = malloc((size_t)bins * frames * sizeof *imag);
    im.px = malloc((size_t)width * height * 3);
    if (!re || !imag || !im.px) {
        fprintf(stderr, "dmaudio spectrogram: %s: out of memory\n", input);
        goto done;
    }
    if (dm_stft_forward(st, a.data, (size_t)a.frames, re, imag, &err) != DM_OK) {
        fprintf(stderr, "dmaudio spectrogram: %s: %s\n", input, err.message);
        goto done;
    }
    dm_spec_power(re, imag, (size_t)bins * frames, re);
    for (size_t i = 0; i < (size_t)width * height; i++)
        memcpy(im.px + 3 * i, paper, 3);
    draw(&im, &L, re, bins, frames, n_fft, a.rate, (double)a.frames / a.rate, range);
    char title[PATH_MAX + 32], why[256];
    const char *base = strrchr(input, '/');
    snprintf(title, sizeof title, "spectrogram of %s", base ? base + 1 : input);
    if (write_png(output, &im, title, why, sizeof why) != 0) {
        fprintf(stderr, "dmaudio spectrogram: %s: %s\n", output, why);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "dmaudio spectrogram: wrote %s (%dx%d, %.3f s at %d Hz, n_fft %d, hop %d)\n",
                output, width, height, (double)a.frames / a.rate, a.rate, n_fft, hop);
    status = DM_EXIT_OK;
done:
    free(re), free(imag), free(im.px);
    dm_stft_free(st);
    dm_audio_free(&a);
    return status;
}
