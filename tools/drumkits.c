/* drumkits: builds the labelled drum one-shot set of the default model from Hydrogen kits.
 *
 *   drumkits [--src DIR] [--kits FILE] [--rate HZ] [--length N] [--per-class N] [--seed S]
 *            -o OUT_DIR
 *
 * Reads the kit table (recipes/drums/kits.tsv: kit folder, split, licence), then each kit's
 * drumkit.xml. An instrument's class comes from its name (rules in class_of below: "Open HH"
 * is open_hat, "Kick 2" is kick, "Crash" is cymbal...); instruments that fit no class (stick,
 * cowbell, conga...) are left out. Every sample file of an instrument (its velocity layers) is
 * read, mixed to mono, resampled to the set's rate, started at its onset, cut or padded to the
 * set's length with a short fade-out, and peak-normalised.
 *
 * Velocity layers are near copies of one sound, so the set counts instruments, not files:
 *   - valid/CLASS/ holds each layer of the validation kits once, as it is (unseen kits, for
 *     evaluation);
 *   - train/CLASS/ holds, per class, about --per-class clips: the instruments of the class in
 *     turn, each time one of its layers with a random gain (+-3 dB), pitch (+-1 semitone, by
 *     resampling, which also stretches time by the same ratio) and onset delay (0..2 ms), so
 *     that a class with few instruments is not swamped by one with many.
 * OUT_DIR/manifest.csv lists every file (split, class, file, kit, instrument, source, licence,
 * gain, pitch, delay) and OUT_DIR/SUMMARY.txt the counts per class and the kits' licences.
 * The same options write the same files (the random draws are Philox, keyed by --seed). */
#include "dmaudio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

static const char usage[] =
    "usage: drumkits -o OUT_DIR [OPTIONS]\n"
    "\n"
    "Builds OUT_DIR/train/CLASS/ and OUT_DIR/valid/CLASS/ (mono 24-bit WAV one-shots), with\n"
    "OUT_DIR/manifest.csv and OUT_DIR/SUMMARY.txt, from the Hydrogen kits listed in the kit\n"
    "table. Classes: clap, closed_hat, cymbal, kick, open_hat, snare, tom.\n"
    "\n"
    "options (defaults in brackets):\n"
    "  -o, --output DIR     where to write (must not exist, or be empty) (required)\n"
    "      --src DIR        the kits [/usr/share/hydrogen/data/drumkits]\n"
    "      --kits FILE      the kit table [recipes/drums/kits.tsv]\n"
    "  -r, --rate HZ        sample rate [44100]\n"
    "  -l, --length N       samples per clip [32768]\n"
    "  -n, --per-class N    training clips per class [320]\n"
    "  -s, --seed S         seed of the augmentation draws [1]\n"
    "      --noise N        instead: write N clips of white noise per class into\n"
    "                       OUT_DIR/CLASS/ (the ceiling of an evaluation), same peak,\n"
    "                       length and fade as the set\n"
    "  -q, --quiet          no progress\n"
    "  -h, --help           show this help";

enum { CLASS_NONE = -1, N_CLASSES = 7 };
static const char *const class_names[N_CLASSES] = {
    "clap", "closed_hat", "cymbal", "kick", "open_hat", "snare", "tom",
};

#define MAX_KITS 64
#define MAX_INSTR 2048
#define MAX_LAYERS 16

typedef struct {
    char dir[256];
    char split[16];
    char licence[128];
} kit;

typedef struct {
    int kit;                  /* index into the kit table                           */
    int cls;
    char name[128];           /* as in drumkit.xml                                  */
    int n_layers;
    char *layers[MAX_LAYERS]; /* sample file paths                                  */
} instrument;

typedef struct {
    const char *src, *kits_file, *out;
    int rate, length, per_class, quiet, noise;
    uint64_t seed;
} options;

/* ---- the class of an instrument name ---- */

static int has(const char *s, const char *word) { return strstr(s, word) != NULL; }

/* A word starting with w: "tom" in "Tom Hi" and "tomhi2", not in "Custom". */
static int has_word_start(const char *s, const char *w)
{
    for (const char *p = strstr(s, w); p; p = strstr(p + 1, w))
        if (p == s || !isalnum((unsigned char)p[-1]))
            return 1;
    return 0;
}

/* Whole-token match: "bd" in "VariBreaks BD 1" but not in "abdomen". */
static int has_token(const char *s, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = strstr(s, tok); p; p = strstr(p + 1, tok)) {
        int left = p == s || !isalnum((unsigned char)p[-1]);
        int right = !isalnum((unsigned char)p[n]);
        if (left && right)
            return 1;
    }
    return 0;
}

static int class_of(const char *name)
{
    char s[128];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof s; i++)
        s[i] = (char)tolower((unsigned char)name[i]);
    s[i] = 0;

    if (has(s, "stick") || has(s, "roll") || has(s, "side") || has(s, "choke"))
        return CLASS_NONE;
    if (has(s, "hat") || has_token(s, "hh") || has(s, "hi-hat") || has_token(s, "ohh")) {
        if (has(s, "open") || has_token(s, "op") || has(s, "swish") || has_token(s, "ohh"))
            return 4; /* open_hat: also semi-open */
        return 1;     /* closed_hat: closed, pedal */
    }
    if (has(s, "kick") || has(s, "bass drum") || has(s, "bassdrum") || has_token(s, "bd"))
        return 3;
    if (has(s, "snare"))
        return 5;
    if (has(s, "crash") || has(s, "ride") || has(s, "cymbal") || has(s, "splash") ||
        has(s, "china"))
        return 2;
    if (has_word_start(s, "tom"))
        return 6;
    if (has(s, "clap"))
        return 0;
    return CLASS_NONE;
}

/* ---- the kit table ---- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* Fields are separated by one or more tabs (kit folders contain spaces). */
static int read_kits(const char *path, kit *kits, int *n_kits)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "drumkits: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int n = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *field[3] = {0};
        int nf = 0;
        for (char *p = s; nf < 3 && p && *p;) {
            field[nf++] = p;
            p = strchr(p, '\t');
            if (p) {
                *p++ = 0;
                while (*p == '\t')
                    p++;
            }
        }
        if (nf != 3 || n == MAX_KITS) {
            fprintf(stderr, "drumkits: %s:%d: expected 'kit<TAB>split<TAB>licence'\n", path,
                    lineno);
            fclose(f);
            return -1;
        }
        field[1] = trim(field[1]);
        if (strcmp(field[1], "train") && strcmp(field[1], "valid") && strcmp(field[1], "exclude")) {
            fprintf(stderr, "drumkits: %s:%d: split '%s' is not train, valid or exclude\n", path,
                    lineno, field[1]);
            fclose(f);
            return -1;
        }
        snprintf(kits[n].dir, sizeof kits[n].dir, "%s", trim(field[0]));
        snprintf(kits[n].split, sizeof kits[n].split, "%s", field[1]);
        snprintf(kits[n].licence, sizeof kits[n].licence, "%s", trim(field[2]));
        n++;
    }
    fclose(f);
    *n_kits = n;
    return 0;
}

/* ---- drumkit.xml ---- */

static xmlNode *child(xmlNode *node, const char *name)
{
    for (xmlNode *c = node ? node->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

static void add_layer(instrument *in, const char *kit_dir, xmlNode *filename)
{
    xmlChar *text = xmlNodeGetContent(filename);
    const char *t = text ? trim((char *)text) : "";
    if (*t && in->n_layers < MAX_LAYERS) {
        size_t n = strlen(kit_dir) + strlen(t) + 2;
        char *path = malloc(n);
        if (path) {
            snprintf(path, n, "%s/%s", kit_dir, t);
            int dup = 0;
            for (int i = 0; i < in->n_layers; i++)
                dup |= strcmp(in->layers[i], path) == 0;
            if (dup)
                free(path);
            else
                in->layers[in->n_layers++] = path;
        }
    }
    xmlFree(text);
}

/* Appends the kit's classified instruments to ins. Old kits name the sample in
 * <instrument><filename>, newer ones in <instrument><instrumentComponent><layer><filename> or
 * <instrument><layer><filename>: every <filename> under the instrument is a layer. */
static void collect_layers(instrument *in, const char *kit_dir, xmlNode *node)
{
    for (xmlNode *c = node->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, "filename") == 0)
            add_layer(in, kit_dir, c);
        else
            collect_layers(in, kit_dir, c);
    }
}

static int read_kit(const options *o, int k, const kit *kt, instrument *ins, int *n_ins)
{
    char kit_dir[1400], xml[1500];
    if (snprintf(kit_dir, sizeof kit_dir, "%s/%s", o->src, kt->dir) >= (int)sizeof kit_dir ||
        snprintf(xml, sizeof xml, "%s/drumkit.xml", kit_dir) >= (int)sizeof xml) {
        fprintf(stderr, "drumkits: %s/%s: path too long\n", o->src, kt->dir);
        return -1;
    }
    xmlDoc *doc = xmlReadFile(xml, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        fprintf(stderr, "drumkits: %s: missing or not XML (is hydrogen-drumkits installed?)\n",
                xml);
        return -1;
    }
    xmlNode *list = child(xmlDocGetRootElement(doc), "instrumentList");
    for (xmlNode *c = list ? list->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "instrument") != 0)
            continue;
        xmlChar *name = xmlNodeGetContent(child(c, "name"));
        int cls = name ? class_of((const char *)name) : CLASS_NONE;
        if (cls != CLASS_NONE && *n_ins < MAX_INSTR) {
            instrument *in = &ins[*n_ins];
            memset(in, 0, sizeof *in);
            in->kit = k, in->cls = cls;
            snprintf(in->name, sizeof in->name, "%s", trim((char *)name));
            collect_layers(in, kit_dir, c);
            if (in->n_layers > 0)
                (*n_ins)++;
        }
        xmlFree(name);
    }
    xmlFreeDoc(doc);
    return 0;
}

/* ---- audio ---- */

/* x (frames long, mono) -> clip (length): from 1 ms before the onset (the first sample above
 * 1% of the peak), zero-padded, the last 10% faded out with a half cosine, peak set to `peak`.
 * Returns 0, or -1 for a silent file. */
static int shape_clip(const float *x, int64_t frames, int length, int delay, double peak,
                      int rate, float *clip)
{
    float top = 0;
    for (int64_t i = 0; i < frames; i++)
        top = fmaxf(top, fabsf(x[i]));
    if (!(top > 1e-6f))
        return -1;
    int64_t onset = 0;
    while (onset < frames && fabsf(x[onset]) < 0.01f * top)
        onset++;
    onset -= rate / 1000;
    if (onset < 0)
        onset = 0;
    for (int i = 0; i < length; i++) {
        int64_t j = onset + i - delay;
        clip[i] = j >= onset && j < frames ? x[j] : 0.0f;
    }
    int fade = length / 10;
    for (int i = 0; i < fade; i++)
        clip[length - fade + i] *= (float)(0.5 * (1.0 + cos(M_PI * (i + 1) / fade)));
    float m = 0;
    for (int i = 0; i < length; i++)
        m = fmaxf(m, fabsf(clip[i]));
    if (!(m > 1e-6f))
        return -1;
    for (int i = 0; i < length; i++)
        clip[i] *= (float)(peak / m);
    return 0;
}

/* The layer at the set's rate, or at rate / ratio (the pitch shift: played back at the set's
 * rate it sounds ratio times higher and 1/ratio as long). */
static int load_layer(const char *path, int rate, double ratio, dm_audio *out)
{
    dm_error err;
    dm_audio_read_params rp = dm_audio_read_default_params();
    rp.channels = 1;
    rp.quality = DM_RESAMPLE_BEST;
    rp.rate = (int)lround(rate / ratio);
    if (dm_audio_read(path, &rp, out, &err) != DM_OK) {
        fprintf(stderr, "drumkits: %s\n", err.message);
        return -1;
    }
    return 0;
}

static void slug(const char *s, char *out, size_t n)
{
    size_t j = 0;
    for (; *s && j + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c))
            out[j++] = (char)tolower(c);
        else if (j > 0 && out[j - 1] != '-')
            out[j++] = '-';
    }
    while (j > 0 && out[j - 1] == '-')
        j--;
    out[j] = 0;
}

/* CSV field: quoted, with doubled quotes. */
static void csv(FILE *f, const char *s, const char *sep)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fprintf(f, "\"%s", sep);
}

/* 1 if dir exists and holds anything, 0 if missing or empty. */
static int not_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return found;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "drumkits: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct {
    FILE *manifest;
    int count[2][N_CLASSES];   /* [valid?][class] files written */
    int instruments[2][N_CLASSES];
} tally;

static int write_clip(const options *o, tally *t, const kit *kits, const instrument *in,
                      int layer, int copy, double gain_db, double semitones, int delay_samples)
{
    int valid = strcmp(kits[in->kit].split, "valid") == 0;
    const char *split = valid ? "valid" : "train";
    double ratio = pow(2.0, semitones / 12.0);
    dm_audio a = {0};
    if (load_layer(in->layers[layer], o->rate, ratio, &a) != 0)
        return -1;
    dm_audio clip = {0};
    dm_error err;
    if (dm_audio_alloc(&clip, 1, o->length, o->rate, &err) != DM_OK) {
        fprintf(stderr, "drumkits: %s\n", err.message);
        dm_audio_free(&a);
        return -1;
    }
    double peak = 0.7 * pow(10.0, gain_db / 20.0);
    int silent = shape_clip(a.data, a.frames, o->length, delay_samples, peak, o->rate, clip.data);
    dm_audio_free(&a);
    if (silent) { /* a silent layer is left out, not an error */
        dm_audio_free(&clip);
        return 0;
    }
    char kslug[96], islug[96], path[1400];
    slug(kits[in->kit].dir, kslug, sizeof kslug);
    slug(in->name, islug, sizeof islug);
    snprintf(path, sizeof path, "%s/%s/%s/%s-%s-%d-%02d.wav", o->out, split,
             class_names[in->cls], kslug, islug, layer, copy);
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.title = in->name;
    int rc = dm_audio_write(path, &clip, &wp, &err) == DM_OK ? 0 : -1;
    dm_audio_free(&clip);
    if (rc) {
        fprintf(stderr, "drumkits: %s\n", err.message);
        return -1;
    }
    fprintf(t->manifest, "%s,%s,", split, class_names[in->cls]);
    csv(t->manifest, path + strlen(o->out) + 1, ",");
    csv(t->manifest, kits[in->kit].dir, ",");
    csv(t->manifest, in->name, ",");
    csv(t->manifest, in->layers[layer], ",");
    csv(t->manifest, kits[in->kit].licence, ",");
    fprintf(t->manifest, "%.2f,%.3f,%.2f\n", gain_db, semitones, 1000.0 * delay_samples / o->rate);
    t->count[valid][in->cls]++;
    return 0;
}

/* --noise: OUT/CLASS/noise-NNNN.wav, Gaussian white noise shaped like the set's clips. */
static int write_noise(const options *o)
{
    if (not_empty(o->out)) {
        fprintf(stderr, "drumkits: %s: not empty; remove it first\n", o->out);
        return -1;
    }
    if (make_dir(o->out) != 0)
        return -1;
    dm_audio clip = {0}, white = {0};
    dm_error err;
    if (dm_audio_alloc(&clip, 1, o->length, o->rate, &err) != DM_OK ||
        dm_audio_alloc(&white, 1, o->length, o->rate, &err) != DM_OK) {
        fprintf(stderr, "drumkits: %s\n", err.message);
        dm_audio_free(&clip);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < N_CLASSES && rc == 0; k++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", o->out, class_names[k]);
        rc = make_dir(path);
        for (int i = 0; i < o->noise && rc == 0; i++) {
            dm_rng_normal(o->seed, 1000u + (uint64_t)k, (uint64_t)i * (uint64_t)o->length,
                          white.data, (size_t)o->length);
            shape_clip(white.data, o->length, o->length, 0, 0.7, o->rate, clip.data);
            snprintf(path, sizeof path, "%s/%s/noise-%04d.wav", o->out, class_names[k], i);
            if (dm_audio_write(path, &clip, NULL, &err) != DM_OK) {
                fprintf(stderr, "drumkits: %s\n", err.message);
                rc = -1;
            }
        }
    }
    dm_audio_free(&clip);
    dm_audio_free(&white);
    return rc;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "drumkits: %s: '%s' is not a whole number in %ld..%ld\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    options o = {"/usr/share/hydrogen/data/drumkits", "recipes/drums/kits.tsv", NULL,
                 44100, 32768, 320, 0, 0, 1};
    static const struct option longs[] = {
        {"output", required_argument, 0, 'o'}, {"src", required_argument, 0, 'S'},
        {"kits", required_argument, 0, 'K'},   {"rate", required_argument, 0, 'r'},
        {"length", required_argument, 0, 'l'}, {"per-class", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},   {"quiet", no_argument, 0, 'q'},
        {"noise", required_argument, 0, 'N'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "o:r:l:n:s:qh", longs, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'S': o.src = optarg; break;
        case 'K': o.kits_file = optarg; break;
        case 'r': if (parse_int("--rate", optarg, 8000, 192000, &v)) return 2; o.rate = (int)v; break;
        case 'l': if (parse_int("--length", optarg, 256, 1 << 20, &v)) return 2; o.length = (int)v; break;
        case 'n': if (parse_int("--per-class", optarg, 1, 100000, &v)) return 2; o.per_class = (int)v; break;
        case 's': if (parse_int("--seed", optarg, 0, 2147483647L, &v)) return 2; o.seed = (uint64_t)v; break;
        case 'N': if (parse_int("--noise", optarg, 1, 100000, &v)) return 2; o.noise = (int)v; break;
        case 'q': o.quiet = 1; break;
        case 'h': puts(usage); return 0;
        default: fprintf(stderr, "drumkits: see 'drumkits --help'\n"); return 2;
        }
    }
    if (!o.out || optind != argc) {
        fprintf(stderr, "drumkits: %s (see 'drumkits --help')\n",
                o.out ? "unexpected argument" : "-o OUT_DIR is required");
        return 2;
    }

    if (o.noise > 0)
        return write_noise(&o) == 0 ? 0 : 1;

    static kit kits[MAX_KITS];
    static instrument ins[MAX_INSTR];
    int n_kits = 0, n_ins = 0;
    if (read_kits(o.kits_file, kits, &n_kits) != 0)
        return 1;
    for (int k = 0; k < n_kits; k++)
        if (strcmp(kits[k].split, "exclude") != 0 && read_kit(&o, k, &kits[k], ins, &n_ins) != 0)
            return 1;

    if (not_empty(o.out)) {
        fprintf(stderr, "drumkits: %s: not empty; remove it first\n", o.out);
        return 1;
    }
    if (make_dir(o.out) != 0)
        return 1;
    char path[1200];
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/%s", o.out, s ? "valid" : "train");
        if (make_dir(path) != 0)
            return 1;
        for (int k = 0; k < N_CLASSES; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", o.out, s ? "valid" : "train", class_names[k]);
            if (make_dir(path) != 0)
                return 1;
        }
    }
    snprintf(path, sizeof path, "%s/manifest.csv", o.out);
    tally t = {0};
    t.manifest = fopen(path, "w");
    if (!t.manifest) {
        fprintf(stderr, "drumkits: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(t.manifest, "split,class,file,kit,instrument,source,licence,gain_db,semitones,"
                        "delay_ms\n");

    /* validation: every layer once, as it is */
    for (int i = 0; i < n_ins; i++) {
        if (strcmp(kits[ins[i].kit].split, "valid") != 0)
            continue;
        t.instruments[1][ins[i].cls]++;
        for (int l = 0; l < ins[i].n_layers; l++)
            if (write_clip(&o, &t, kits, &ins[i], l, 0, 0.0, 0.0, 0) != 0)
                return 1;
    }
    /* training: per class, the instruments in turn until per_class clips, each copy a layer
     * (in turn) with random gain, pitch and delay: uniform draws 3 per clip */
    for (int k = 0; k < N_CLASSES; k++) {
        int members[MAX_INSTR], m = 0;
        for (int i = 0; i < n_ins; i++)
            if (ins[i].cls == k && strcmp(kits[ins[i].kit].split, "train") == 0)
                members[m++] = i;
        t.instruments[0][k] = m;
        for (int j = 0; j < o.per_class && m > 0; j++) {
            const instrument *in = &ins[members[j % m]];
            int copy = j / m;
            float u[3];
            dm_rng_uniform(o.seed, (uint64_t)k, 3u * (uint64_t)j, u, 3);
            int first = copy < in->n_layers; /* each layer's first use is unaltered */
            double gain = first ? 0.0 : 6.0 * u[0] - 3.0;
            double semis = first ? 0.0 : 2.0 * u[1] - 1.0;
            int delay = first ? 0 : (int)(u[2] * 0.002 * o.rate);
            if (write_clip(&o, &t, kits, in, copy % in->n_layers, copy, gain, semis, delay) != 0)
                return 1;
            if (!o.quiet && (j + 1) % 40 == 0)
                fprintf(stderr, "drumkits: %s %d/%d\n", class_names[k], j + 1, o.per_class);
        }
    }
    if (fclose(t.manifest) != 0) {
        fprintf(stderr, "drumkits: %s/manifest.csv: %s\n", o.out, strerror(errno));
        return 1;
    }

    snprintf(path, sizeof path, "%s/SUMMARY.txt", o.out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "drumkits: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "dmaudio drum set: %d Hz mono, %d samples (%.3f s) per clip, seed %llu\n\n",
            o.rate, o.length, (double)o.length / o.rate, (unsigned long long)o.seed);
    fprintf(f, "%-12s %18s %18s\n", "class", "train instr/files", "valid instr/files");
    for (int k = 0; k < N_CLASSES; k++)
        fprintf(f, "%-12s %9d/%-8d %9d/%-8d\n", class_names[k], t.instruments[0][k],
                t.count[0][k], t.instruments[1][k], t.count[1][k]);
    fprintf(f, "\nkits (folder, split, licence):\n");
    for (int k = 0; k < n_kits; k++)
        fprintf(f, "  %-26s %-8s %s\n", kits[k].dir, kits[k].split, kits[k].licence);
    fclose(f);
    if (!o.quiet) {
        f = fopen(path, "r");
        for (int ch; f && (ch = fgetc(f)) != EOF;)
            fputc(ch, stderr);
        if (f)
            fclose(f);
    }
    for (int i = 0; i < n_ins; i++)
        for (int l = 0; l < ins[i].n_layers; l++)
            free(ins[i].layers[l]);
    xmlCleanupParser();
    return 0;
}
