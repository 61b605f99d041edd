/* Audio files: reading and writing through libsndfile, resampling through
 * libsamplerate, atomic writes (temporary file, fsync, check, rename).
 *
 * Sections: names of the enums; buffers; resampling; in-memory files (for
 * standard input and output); reading; metadata; writing. */
#include "dmaudio_audio.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <samplerate.h>
#include <sndfile.h>

#define DM_STR2(x) #x
#define DM_STR(x) DM_STR2(x)

/* Frames per libsndfile call. */
#define CHUNK_FRAMES 16384
/* Largest input accepted on standard input. */
#define STDIN_MAX_BYTES ((int64_t)2 << 30)

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const quality_names[DM_RESAMPLE_QUALITY_COUNT] = {"medium", "best", "fast"};
static const char *const format_names[DM_SAMPLE_FORMAT_COUNT] = {"pcm24", "pcm16", "float"};
static const char *const string_names[DM_AUDIO_STRING_COUNT] = {"title", "software", "comment"};
static const int string_ids[DM_AUDIO_STRING_COUNT] = {SF_STR_TITLE, SF_STR_SOFTWARE,
                                                      SF_STR_COMMENT};

static int name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *dm_resample_quality_name(dm_resample_quality q)
{
    return (unsigned)q < DM_RESAMPLE_QUALITY_COUNT ? quality_names[q] : "unknown";
}

int dm_resample_quality_from_name(const char *name, dm_resample_quality *out)
{
    int i = name_index(quality_names, DM_RESAMPLE_QUALITY_COUNT, name);
    if (i < 0)
        return -1;
    *out = (dm_resample_quality)i;
    return 0;
}

const char *dm_sample_format_name(dm_sample_format f)
{
    return (unsigned)f < DM_SAMPLE_FORMAT_COUNT ? format_names[f] : "unknown";
}

int dm_sample_format_from_name(const char *name, dm_sample_format *out)
{
    int i = name_index(format_names, DM_SAMPLE_FORMAT_COUNT, name);
    if (i < 0)
        return -1;
    *out = (dm_sample_format)i;
    return 0;
}

const char *dm_audio_string_name(dm_audio_string which)
{
    return (unsigned)which < DM_AUDIO_STRING_COUNT ? string_names[which] : "unknown";
}

int dm_audio_string_from_name(const char *name, dm_audio_string *out)
{
    int i = name_index(string_names, DM_AUDIO_STRING_COUNT, name);
    if (i < 0)
        return -1;
    *out = (dm_audio_string)i;
    return 0;
}

/* "Format not recognised." -> "Format not recognised" (for "(...)" in messages). */
static const char *sf_message(char *buf, size_t n, const char *msg)
{
    snprintf(buf, n, "%s", msg ? msg : "unknown error");
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '.' || buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = 0;
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Buffers                                                                   */
/* ------------------------------------------------------------------------ */

dm_status dm_audio_alloc(dm_audio *a, int channels, int64_t frames, int rate, dm_error *err)
{
    if (!a)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_alloc: no buffer");
    memset(a, 0, sizeof *a);
    if (channels < 1 || channels > DM_AUDIO_MAX_CHANNELS)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_alloc: %d channels, expected 1..%d",
                       channels, DM_AUDIO_MAX_CHANNELS);
    if (frames < 1 || frames > DM_AUDIO_MAX_FRAMES)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_alloc: %lld frames, expected 1..%lld",
                       (long long)frames, (long long)DM_AUDIO_MAX_FRAMES);
    if (rate < 1 || rate > DM_AUDIO_MAX_RATE)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_alloc: rate %d, expected 1..%d",
                       rate, DM_AUDIO_MAX_RATE);
    a->data = dm_alloc((size_t)channels * (size_t)frames, sizeof(float));
    if (!a->data)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "out of memory for %d x %lld samples", channels,
                       (long long)frames);
    a->channels = channels;
    a->frames = frames;
    a->rate = rate;
    return DM_OK;
}

void dm_audio_free(dm_audio *a)
{
    if (!a)
        return;
    dm_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------ */
/* Resampling                                                                */
/* ------------------------------------------------------------------------ */

static int src_converter(dm_resample_quality q)
{
    switch (q) {
    case DM_RESAMPLE_BEST:
        return SRC_SINC_BEST_QUALITY;
    case DM_RESAMPLE_FAST:
        return SRC_SINC_FASTEST;
    default:
        return SRC_SINC_MEDIUM_QUALITY;
    }
}

static int64_t resampled_frames(int64_t frames, int from, int to)
{
    int64_t n = llround((double)frames * (double)to / (double)from);
    return n < 1 ? 1 : n;
}

static bool ratio_ok(int from, int to)
{
    double r = (double)to / (double)from;
    return r >= 1.0 / 256.0 && r <= 256.0;
}

/* out[0..n_out) = the mono signal in[0..n_in) at ratio `ratio`: the input is
 * followed by zeros for as long as the converter needs to produce n_out frames,
 * so the end is never cut short. */
static dm_status resample_mono(const float *in, int64_t n_in, double ratio, dm_resample_quality q,
                               float *out, int64_t n_out, const char *what, dm_error *err)
{
    int e = 0;
    SRC_STATE *st = src_new(src_converter(q), 1, &e);
    if (!st)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: cannot create a resampler (%s)", what,
                       src_strerror(e));
    static const float zeros[4096];
    int64_t used = 0, made = 0;
    int idle = 0;
    dm_status status = DM_OK;
    while (made < n_out) {
        SRC_DATA d;
        memset(&d, 0, sizeof d);
        bool padding = used >= n_in;
        int64_t avail = padding ? (int64_t)(sizeof zeros / sizeof zeros[0]) : n_in - used;
        d.data_in = padding ? zeros : in + used;
        d.input_frames = (long)(avail < (1 << 20) ? avail : (1 << 20));
        d.data_out = out + made;
        d.output_frames = (long)(n_out - made < (1 << 20) ? n_out - made : (1 << 20));
        d.src_ratio = ratio;
        d.end_of_input = 0;
        e = src_process(st, &d);
        if (e) {
            status = dm_fail(err, DM_ERR_UNSUPPORTED, "%s: resampling failed (%s)", what,
                             src_strerror(e));
            break;
        }
        if (!padding)
            used += d.input_frames_used;
        made += d.output_frames_gen;
        /* Padding always produces output after a few blocks; guard anyway. */
        idle = (d.output_frames_gen == 0 && padding) ? idle + 1 : 0;
        if (idle > 64) {
            status = dm_fail(err, DM_ERR_UNSUPPORTED, "%s: the resampler stalled", what);
            break;
        }
    }
    src_delete(st);
    return status;
}

dm_status dm_audio_resample(const dm_audio *in, int rate, dm_resample_quality quality,
                            dm_audio *out, dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_resample: no output");
    memset(out, 0, sizeof *out);
    if (!in || !in->data || in->channels < 1 || in->frames < 1 || in->rate < 1)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_resample: empty input");
    if ((unsigned)quality >= DM_RESAMPLE_QUALITY_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_resample: bad quality %d",
                       (int)quality);
    if (rate < 1 || rate > DM_AUDIO_MAX_RATE || !ratio_ok(in->rate, rate))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "cannot resample from %d Hz to %d Hz (ratio at most 256)", in->rate, rate);
    int64_t n = resampled_frames(in->frames, in->rate, rate);
    dm_status s = dm_audio_alloc(out, in->channels, n, rate, err);
    if (s)
        return s;
    double ratio = (double)rate / (double)in->rate;
    for (int c = 0; c < in->channels; c++) {
        s = resample_mono(in->data + (size_t)c * (size_t)in->frames, in->frames, ratio, quality,
                          out->data + (size_t)c * (size_t)n, n, "dm_audio_resample", err);
        if (s) {
            dm_audio_free(out);
            return s;
        }
    }
    return DM_OK;
}

/* ------------------------------------------------------------------------ */
/* In-memory files, for standard input and output                           */
/* ------------------------------------------------------------------------ */

typedef struct membuf {
    unsigned char *data;
    sf_count_t len, cap, pos;
    bool failed;                /* an allocation failed while writing */
} membuf;

static sf_count_t mem_filelen(void *u)
{
    return ((membuf *)u)->len;
}

static sf_count_t mem_seek(sf_count_t offset, int whence, void *u)
{
    membuf *m = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    if (offset < -base)
        return -1;
    m->pos = base + offset;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *u)
{
    membuf *m = u;
    sf_count_t n = m->pos < m->len ? m->len - m->pos : 0;
    if (count < n)
        n = count;
    if (n > 0)
        memcpy(ptr, m->data + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static bool mem_reserve(membuf *m, sf_count_t need)
{
    if (need <= m->cap)
        return true;
    sf_count_t cap = m->cap ? m->cap : 65536;
    while (cap < need)
        cap *= 2;
    unsigned char *p = dm_alloc((size_t)cap, 1);
    if (!p)
        return false;
    if (m->len)
        memcpy(p, m->data, (size_t)m->len);
    dm_free(m->data);
    m->data = p;
    m->cap = cap;
    return true;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *u)
{
    membuf *m = u;
    if (count <= 0)
        return 0;
    if (!mem_reserve(m, m->pos + count)) {
        m->failed = true;
        return 0;
    }
    /* dm_alloc zero-fills, so a gap left by a seek past the end reads as 0. */
    memcpy(m->data + m->pos, ptr, (size_t)count);
    m->pos += count;
    if (m->pos > m->len)
        m->len = m->pos;
    return count;
}

static sf_count_t mem_tell(void *u)
{
    return ((membuf *)u)->pos;
}

static SF_VIRTUAL_IO mem_io = {mem_filelen, mem_seek, mem_read, mem_write, mem_tell};

static dm_status read_stdin(membuf *m, dm_error *err)
{
    memset(m, 0, sizeof *m);
    for (;;) {
        if (m->len >= STDIN_MAX_BYTES)
            return dm_fail(err, DM_ERR_FORMAT, "-: standard input holds more than %lld bytes",
                           (long long)STDIN_MAX_BYTES);
        if (!mem_reserve(m, m->len + 65536))
            return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "-: out of memory reading standard input");
        ssize_t k = read(STDIN_FILENO, m->data + m->len, (size_t)(m->cap - m->len));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return dm_fail(err, DM_ERR_IO, "-: cannot read standard input: %s", strerror(errno));
        if (k == 0)
            return DM_OK;
        m->len += k;
    }
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

dm_audio_read_params dm_audio_read_default_params(void)
{
    dm_audio_read_params p;
    memset(&p, 0, sizeof p);
    p.channels = 0;
    p.rate = 0;
    p.quality = DM_RESAMPLE_MEDIUM;
    p.max_channels = DM_AUDIO_MAX_CHANNELS;
    p.max_frames = DM_AUDIO_MAX_FRAMES;
    p.allow_truncated = 0;
    return p;
}

/* An open sound file: a file descriptor, or standard input held in memory. */
typedef struct sound_in {
    SNDFILE *sf;
    SF_INFO info;
    int fd;
    membuf mem;
} sound_in;

static void sound_close(sound_in *s)
{
    if (s->sf)
        sf_close(s->sf);
    if (s->fd >= 0)
        close(s->fd);
    dm_free(s->mem.data);
    s->sf = NULL;
    s->fd = -1;
    s->mem.data = NULL;
}

/* n bytes at offset off of the open file (fd, or standard input in memory); false if short. */
static bool read_at(const sound_in *s, int64_t off, void *buf, size_t n)
{
    if (s->fd < 0) {
        if (off < 0 || off + (int64_t)n > s->mem.len)
            return false;
        memcpy(buf, s->mem.data + off, n);
        return true;
    }
    return pread(s->fd, buf, n, (off_t)off) == (ssize_t)n;
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* libsndfile 1.2 can spin for ever in sf_open on a RIFF WAVE file whose LIST chunk holds a
 * sub-chunk longer than the LIST chunk (libsndfile issue #1118; found by fuzz_audio, see
 * tests/fuzz/corpus/audio/regression-list-hang.wav). Such a file is refused before libsndfile
 * sees it: every sub-chunk of every LIST chunk must end inside that chunk (and inside the
 * file). Other formats, and WAV files without such a chunk, pass untouched. */
static bool riff_lists_ok(const sound_in *s, int64_t file_len)
{
    unsigned char h[12];
    if (!read_at(s, 0, h, 12) || memcmp(h, "RIFF", 4) != 0 || memcmp(h + 8, "WAVE", 4) != 0)
        return true;
    int64_t pos = 12;
    for (int chunks = 0; pos + 8 <= file_len && chunks < 100000; chunks++) {
        if (!read_at(s, pos, h, 8))
            return true;
        const int64_t size = le32(h + 4), end = pos + 8 + size;
        if (memcmp(h, "LIST", 4) == 0) {
            const int64_t list_end = end < file_len ? end : file_len;
            int64_t sub = pos + 12; /* after the list's type ("INFO", "adtl") */
            for (int n = 0; sub + 8 <= list_end && n < 100000; n++) {
                if (!read_at(s, sub, h, 8))
                    return true;
                const int64_t sub_size = le32(h + 4);
                if (sub_size > list_end - (sub + 8))
                    return false;
                sub += 8 + sub_size + (sub_size & 1);
            }
        }
        pos = end + (size & 1);
    }
    return true;
}

static dm_status sound_open(const char *path, sound_in *s, dm_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (!path || !*path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "no file name given");
    if (strcmp(path, "-") == 0) {
        dm_status st = read_stdin(&s->mem, err);
        if (st) {
            sound_close(s);
            return st;
        }
        if (s->mem.len == 0) {
            sound_close(s);
            return dm_fail(err, DM_ERR_FORMAT, "-: empty (standard input held no data)");
        }
        if (!riff_lists_ok(s, s->mem.len)) {
            sound_close(s);
            return dm_fail(err, DM_ERR_FORMAT, "-: corrupt WAV header (a LIST sub-chunk runs "
                                               "past its chunk)");
        }
        s->sf = sf_open_virtual(&mem_io, SFM_READ, &s->info, &s->mem);
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0)
            return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(errno));
        struct stat sb;
        if (fstat(s->fd, &sb) != 0) {
            int e = errno;
            sound_close(s);
            return dm_fail(err, DM_ERR_IO, "%s: %s", path, strerror(e));
        }
        if (S_ISDIR(sb.st_mode)) {
            sound_close(s);
            return dm_fail(err, DM_ERR_IO, "%s: is a directory, not a sound file", path);
        }
        if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
            sound_close(s);
            return dm_fail(err, DM_ERR_FORMAT, "%s: empty (0 bytes)", path);
        }
        if (!riff_lists_ok(s, S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : INT64_MAX)) {
            sound_close(s);
            return dm_fail(err, DM_ERR_FORMAT, "%s: corrupt WAV header (a LIST sub-chunk runs "
                                               "past its chunk)", path);
        }
        /* libsndfile must not close fd: we do, on every path. */
        s->sf = sf_open_fd(s->fd, SFM_READ, &s->info, SF_FALSE);
    }
    if (!s->sf) {
        char msg[256];
        sf_message(msg, sizeof msg, sf_strerror(NULL));
        sound_close(s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: not a sound file (%s)", path, msg);
    }
    if (s->info.channels < 1 || s->info.channels > 1024 || s->info.samplerate < 1) {
        int ch = s->info.channels, rate = s->info.samplerate;
        sound_close(s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: corrupt header (%d channels, %d Hz)", path, ch,
                       rate);
    }
    return DM_OK;
}

/* libsndfile reads a WAV, AIFF or Ogg file that is shorter than its header
 * announces as far as the data goes, and says so only in its log. These are
 * the lines it writes then (libsndfile 1.0.28 .. 1.2):
 *   "  data : 192000 (should be 95949)"          WAV: data chunk cut short
 *   "  SSND : 96008 (should be 48024)"           AIFF: the same
 *   "*** Chunk size 96008 > file length 48032"   AIFF, and chunks after the data
 * (Its Ogg reader logs "File ended unexpectedly" even for complete files; a
 * cut Ogg file announces no length and gives the frames decodable, or none.)
 * A data size of 0x7fff0000 or more is a placeholder left by a writer that
 * streamed to a pipe (sox, ffmpeg): such a file is complete. */
static bool log_says_truncated(SNDFILE *sf)
{
    char log[16384];
    memset(log, 0, sizeof log);
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log - 1);
    for (char *line = log; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        while (*line == ' ')
            line++;
        long long declared = 0, actual = 0;
        if ((strncmp(line, "data :", 6) == 0 || strncmp(line, "SSND :", 6) == 0) &&
            sscanf(line + 6, "%lld (should be %lld)", &declared, &actual) == 2 &&
            declared > actual && declared < 0x7fff0000LL)
            return true;
        if (strstr(line, "> file length"))
            return true;
        line = next;
    }
    return false;
}

static dm_status check_read_params(const dm_audio_read_params *p, dm_error *err)
{
    if (p->max_channels < 1 || p->max_channels > DM_AUDIO_MAX_CHANNELS)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "max_channels %d, expected 1..%d",
                       p->max_channels, DM_AUDIO_MAX_CHANNELS);
    if (p->channels < 0 || p->channels > p->max_channels)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "channels %d, expected 0..%d", p->channels,
                       p->max_channels);
    if (p->rate < 0 || p->rate > DM_AUDIO_MAX_RATE)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "rate %d, expected 0 (keep) or 1..%d",
                       p->rate, DM_AUDIO_MAX_RATE);
    if (p->max_frames < 1 || p->max_frames > DM_AUDIO_MAX_FRAMES)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "max_frames %lld, expected 1..%lld",
                       (long long)p->max_frames, (long long)DM_AUDIO_MAX_FRAMES);
    if ((unsigned)p->quality >= DM_RESAMPLE_QUALITY_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "bad resampling quality %d", (int)p->quality);
    return DM_OK;
}

/* Reads every frame of s into a growing interleaved buffer: the header's frame
 * count is not trusted for the allocation (a hostile header may claim 2^28). */
static dm_status read_frames(const char *path, sound_in *s, const dm_audio_read_params *p,
                             float **out, int64_t *out_frames, dm_error *err)
{
    const int ch = s->info.channels;
    const int64_t announced = s->info.frames;    /* SF_COUNT_MAX: unknown */
    const bool known = announced >= 0 && announced < SF_COUNT_MAX;
    int64_t cap = known && announced < (1 << 20) ? announced : (1 << 20);
    if (cap < CHUNK_FRAMES)
        cap = CHUNK_FRAMES;
    if (cap > p->max_frames + CHUNK_FRAMES)
        cap = p->max_frames + CHUNK_FRAMES;
    float *buf = dm_alloc((size_t)cap * (size_t)ch, sizeof(float));
    if (!buf)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    int64_t n = 0;
    for (;;) {
        if (cap - n < CHUNK_FRAMES) {
            int64_t ncap = cap * 2;
            if (ncap > p->max_frames + CHUNK_FRAMES)
                ncap = p->max_frames + CHUNK_FRAMES;
            float *nb = dm_alloc((size_t)ncap * (size_t)ch, sizeof(float));
            if (!nb) {
                dm_free(buf);
                return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            }
            memcpy(nb, buf, (size_t)n * (size_t)ch * sizeof(float));
            dm_free(buf);
            buf = nb;
            cap = ncap;
        }
        sf_count_t k = sf_readf_float(s->sf, buf + (size_t)n * (size_t)ch, CHUNK_FRAMES);
        if (k <= 0)
            break;
        n += k;
        if (n > p->max_frames) {
            dm_free(buf);
            return dm_fail(err, DM_ERR_FORMAT, "%s: more than %lld frames, the limit", path,
                           (long long)p->max_frames);
        }
    }
    if (!p->allow_truncated) {
        char msg[256];
        if (sf_error(s->sf) != SF_ERR_NO_ERROR) {
            sf_message(msg, sizeof msg, sf_strerror(s->sf));
            dm_free(buf);
            return dm_fail(err, DM_ERR_FORMAT, "%s: truncated or corrupt after %lld frames (%s)",
                           path, (long long)n, msg);
        }
        if ((known && n < announced) || log_says_truncated(s->sf)) {
            dm_free(buf);
            if (known && n < announced)
                return dm_fail(err, DM_ERR_FORMAT,
                               "%s: truncated (the header announces %lld frames, %lld present)",
                               path, (long long)announced, (long long)n);
            return dm_fail(err, DM_ERR_FORMAT,
                           "%s: truncated (the file is shorter than its header says)", path);
        }
    }
    if (n == 0) {
        dm_free(buf);
        if (!known)
            return dm_fail(err, DM_ERR_FORMAT, "%s: no audio could be decoded (empty or truncated)",
                           path);
        return dm_fail(err, DM_ERR_FORMAT, "%s: empty", path);
    }
    for (int64_t i = 0; i < n * ch; i++) {
        if (!isfinite(buf[i])) {
            dm_free(buf);
            return dm_fail(err, DM_ERR_FORMAT,
                           "%s: sample %lld of channel %d is not a number (NaN or infinity)", path,
                           (long long)(i / ch), (int)(i % ch));
        }
    }
    *out = buf;
    *out_frames = n;
    return DM_OK;
}

dm_status dm_audio_read(const char *path, const dm_audio_read_params *params, dm_audio *out,
                        dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_read: no output");
    memset(out, 0, sizeof *out);
    dm_audio_read_params p = params ? *params : dm_audio_read_default_params();
    dm_status st = check_read_params(&p, err);
    if (st)
        return st;

    sound_in s;
    st = sound_open(path, &s, err);
    if (st)
        return st;
    const int ch = s.info.channels, rate = s.info.samplerate;
    if (p.channels <= 1 || p.channels == ch) {
        if (ch > p.max_channels) {
            sound_close(&s);
            return dm_fail(err, DM_ERR_FORMAT, "%s: %d channels, expected at most %d", path, ch,
                           p.max_channels);
        }
    } else if (ch != 1) {
        sound_close(&s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: %d channels, expected 1 or %d", path, ch,
                       p.channels);
    }
    if (rate > DM_AUDIO_MAX_RATE) {
        sound_close(&s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: sample rate %d Hz, more than %d", path, rate,
                       DM_AUDIO_MAX_RATE);
    }
    if (s.info.frames == 0) {
        sound_close(&s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: empty", path);
    }
    if (s.info.frames > p.max_frames && s.info.frames < SF_COUNT_MAX) {
        long long n = (long long)s.info.frames;
        sound_close(&s);
        return dm_fail(err, DM_ERR_FORMAT, "%s: %lld frames, more than the limit of %lld", path,
                       n, (long long)p.max_frames);
    }
    const int out_rate = p.rate ? p.rate : rate;
    if (!ratio_ok(rate, out_rate)) {
        sound_close(&s);
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: cannot resample from %d Hz to %d Hz (ratio at most 256)", path, rate,
                       out_rate);
    }

    float *inter = NULL;
    int64_t n = 0;
    st = read_frames(path, &s, &p, &inter, &n, err);
    sound_close(&s);
    if (st)
        return st;

    /* Interleaved (n, ch) -> planar (src_ch, n), mixing down when asked. */
    const int src_ch = p.channels == 1 ? 1 : ch;
    const int out_ch = p.channels ? p.channels : ch;
    float *planar = dm_alloc((size_t)src_ch * (size_t)n, sizeof(float));
    if (!planar) {
        dm_free(inter);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    if (src_ch == 1 && ch > 1) {
        for (int64_t i = 0; i < n; i++) {
            double sum = 0.0;
            for (int c = 0; c < ch; c++)
                sum += inter[(size_t)i * (size_t)ch + (size_t)c];
            planar[i] = (float)(sum / ch);
        }
    } else {
        for (int c = 0; c < ch; c++)
            for (int64_t i = 0; i < n; i++)
                planar[(size_t)c * (size_t)n + (size_t)i] = inter[(size_t)i * (size_t)ch + (size_t)c];
    }
    dm_free(inter);

    int64_t m = out_rate == rate ? n : resampled_frames(n, rate, out_rate);
    if (m > p.max_frames) {
        dm_free(planar);
        return dm_fail(err, DM_ERR_FORMAT, "%s: %lld frames at %d Hz, more than the limit of %lld",
                       path, (long long)m, out_rate, (long long)p.max_frames);
    }
    st = dm_audio_alloc(out, out_ch, m, out_rate, err);
    if (st) {
        dm_free(planar);
        return st;
    }
    for (int c = 0; c < src_ch && !st; c++) {
        const float *x = planar + (size_t)c * (size_t)n;
        float *y = out->data + (size_t)c * (size_t)m;
        if (out_rate == rate)
            memcpy(y, x, (size_t)n * sizeof *y);
        else
            st = resample_mono(x, n, (double)out_rate / rate, p.quality, y, m, path, err);
    }
    dm_free(planar);
    if (st) {
        dm_audio_free(out);
        return st;
    }
    for (int c = src_ch; c < out_ch; c++) /* a mono file read as N channels */
        memcpy(out->data + (size_t)c * (size_t)m, out->data, (size_t)m * sizeof(float));
    return DM_OK;
}

dm_status dm_audio_probe(const char *path, dm_audio_file_info *info, dm_error *err)
{
    if (!info)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_audio_probe: no output");
    memset(info, 0, sizeof *info);
    sound_in s;
    dm_status st = sound_open(path, &s, err);
    if (st)
        return st;
    info->channels = s.info.channels;
    info->rate = s.info.samplerate;
    info->frames = s.info.frames >= 0 && s.info.frames < SF_COUNT_MAX ? s.info.frames : -1;
    SF_FORMAT_INFO major = {.format = s.info.format & SF_FORMAT_TYPEMASK};
    SF_FORMAT_INFO sub = {.format = s.info.format & SF_FORMAT_SUBMASK};
    bool have_major = sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0;
    bool have_sub = sf_command(NULL, SFC_GET_FORMAT_INFO, &sub, sizeof sub) == 0;
    snprintf(info->format, sizeof info->format, "%s, %s",
             have_major && major.name ? major.name : "unknown container",
             have_sub && sub.name ? sub.name : "unknown encoding");
    sound_close(&s);
    return DM_OK;
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */
/* ------------------------------------------------------------------------ */

dm_status dm_audio_read_string(const char *path, dm_audio_string which, char *out, size_t n,
                               dm_error *err)
{
    if ((unsigned)which >= DM_AUDIO_STRING_COUNT)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: bad metadata string %d",
                       path ? path : "(null)", (int)which);
    if (!out || n == 0)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: no room for the %s",
                       path ? path : "(null)", string_names[which]);
    out[0] = 0;
    sound_in s;
    dm_status st = sound_open(path, &s, err);
    if (st)
        return st;
    const char *v = sf_get_string(s.sf, string_ids[which]);
    size_t len = v ? strlen(v) : 0;
    if (len >= n) {
        sound_close(&s);
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: the %s has %zu bytes, more than %zu",
                       path, string_names[which], len, n - 1);
    }
    if (len)
        memcpy(out, v, len);
    out[len] = 0;
    sound_close(&s);
    return DM_OK;
}

dm_status dm_audio_read_metadata(const char *path, char *comment, size_t n, dm_error *err)
{
    return dm_audio_read_string(path, DM_AUDIO_COMMENT, comment, n, err);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

dm_audio_write_params dm_audio_write_default_params(void)
{
    dm_audio_write_params p;
    memset(&p, 0, sizeof p);
    p.format = DM_SAMPLE_PCM_24;
    p.software = "dmaudio " DM_STR(DM_VERSION_MAJOR) "." DM_STR(DM_VERSION_MINOR) "." DM_STR(
        DM_VERSION_PATCH);
    return p;
}

/* The libsndfile format for path and params, or an error. */
static dm_status choose_format(const char *path, dm_sample_format f, int *format, dm_error *err)
{
    bool to_stdout = strcmp(path, "-") == 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int major;
    if (to_stdout || (dot && strcasecmp(dot, ".wav") == 0))
        major = SF_FORMAT_WAV;
    else if (dot && strcasecmp(dot, ".flac") == 0)
        major = SF_FORMAT_FLAC;
    else if (dot && dot != base)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: unknown extension \"%s\" (use .wav or .flac)", path, dot);
    else
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: no extension (use .wav or .flac)", path);
    int sub;
    switch (f) {
    case DM_SAMPLE_PCM_24:
        sub = SF_FORMAT_PCM_24;
        break;
    case DM_SAMPLE_PCM_16:
        sub = SF_FORMAT_PCM_16;
        break;
    case DM_SAMPLE_FLOAT:
        if (major == SF_FORMAT_FLAC)
            return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                           "%s: FLAC stores integers (use pcm24 or pcm16, not float)", path);
        sub = SF_FORMAT_FLOAT;
        break;
    default:
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: bad sample format %d", path, (int)f);
    }
    *format = major | sub;
    return DM_OK;
}

/* Encodes a into an open SNDFILE: metadata first (FLAC needs it before any
 * audio), then the samples, clipped, in chunks. */
static dm_status encode(SNDFILE *sf, const char *path, const dm_audio *a,
                        const dm_audio_write_params *p, int64_t *clipped, dm_error *err)
{
    /* No PEAK chunk in float WAVs: it holds the time of writing, and the same audio
     * must give the same bytes. (Before any sample is written; a no-op for FLAC.) */
    sf_command(sf, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    const char *values[DM_AUDIO_STRING_COUNT] = {p->title, p->software, p->comment};
    for (int i = 0; i < DM_AUDIO_STRING_COUNT; i++) {
        if (!values[i] || !*values[i])
            continue;
        if (sf_set_string(sf, string_ids[i], values[i]) != 0) {
            char msg[256];
            sf_message(msg, sizeof msg, sf_strerror(sf));
            return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: cannot store the %s (%s)", path,
                           string_names[i], msg);
        }
    }
    const int ch = a->channels;
    const bool as_float = p->format == DM_SAMPLE_FLOAT;
    const double scale = p->format == DM_SAMPLE_PCM_16 ? 32768.0 : 8388608.0;
    const int32_t shift_mul = p->format == DM_SAMPLE_PCM_16 ? 65536 : 256;
    const int32_t qmax = p->format == DM_SAMPLE_PCM_16 ? 32767 : 8388607;
    const int frames_per_chunk = CHUNK_FRAMES / 4;
    void *buf = dm_alloc((size_t)frames_per_chunk * (size_t)ch, 4);
    if (!buf)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    int64_t nclip = 0;
    dm_status st = DM_OK;
    for (int64_t i0 = 0; i0 < a->frames && !st; i0 += frames_per_chunk) {
        int64_t k = a->frames - i0 < frames_per_chunk ? a->frames - i0 : frames_per_chunk;
        for (int64_t i = 0; i < k; i++) {
            for (int c = 0; c < ch; c++) {
                float x = a->data[(size_t)c * (size_t)a->frames + (size_t)(i0 + i)];
                if (x > 1.0f || x < -1.0f) {
                    nclip++;
                    x = x > 0 ? 1.0f : -1.0f;
                }
                size_t j = (size_t)i * (size_t)ch + (size_t)c;
                if (as_float) {
                    ((float *)buf)[j] = x;
                } else {
                    long q = lrint((double)x * scale);
                    if (q > qmax)
                        q = qmax;
                    ((int32_t *)buf)[j] = (int32_t)q * shift_mul;
                }
            }
        }
        errno = 0;
        sf_count_t w = as_float ? sf_writef_float(sf, buf, k) : sf_writef_int(sf, buf, k);
        if (w != k) {
            int e = errno;
            char msg[256];
            if (e)
                snprintf(msg, sizeof msg, "%s", strerror(e));
            else if (sf_error(sf))
                sf_message(msg, sizeof msg, sf_strerror(sf));
            else
                snprintf(msg, sizeof msg, "short write");
            st = dm_fail(err, DM_ERR_IO, "%s: write failed: %s", path, msg);
        }
    }
    dm_free(buf);
    if (clipped)
        *clipped = nclip;
    return st;
}

static dm_status write_all(int fd, const unsigned char *p, size_t n, const char *what,
                           dm_error *err)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return dm_fail(err, DM_ERR_IO, "%s: write failed: %s", what,
                           k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
    }
    return DM_OK;
}

static dm_status write_stdout(const dm_audio *a, const dm_audio_write_params *p, int format,
                              int64_t *clipped, dm_error *err)
{
    membuf m;
    memset(&m, 0, sizeof m);
    SF_INFO info = {.samplerate = a->rate, .channels = a->channels, .format = format};
    SNDFILE *sf = sf_open_virtual(&mem_io, SFM_WRITE, &info, &m);
    if (!sf) {
        char msg[256];
        sf_message(msg, sizeof msg, sf_strerror(NULL));
        dm_free(m.data);
        return dm_fail(err, DM_ERR_IO, "-: cannot encode (%s)", msg);
    }
    dm_status st = encode(sf, "-", a, p, clipped, err);
    sf_close(sf);
    if (!st && m.failed)
        st = dm_fail(err, DM_ERR_OUT_OF_MEMORY, "-: out of memory encoding the file");
    if (!st)
        st = write_all(STDOUT_FILENO, m.data, (size_t)m.len, "-", err);
    dm_free(m.data);
    return st;
}

/* Creates dir/.base.XXXXXX (O_EXCL, mode 0666 less the umask), name in tmp. */
static int create_temp(const char *path, char *tmp, size_t n)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    const char *base = slash ? slash + 1 : path;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)tmp;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* splitmix64 step */
        x += 0x9e3779b97f4a7c15ULL;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        char suffix[7];
        static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int i = 0; i < 6; i++, z /= 36)
            suffix[i] = digits[z % 36];
        suffix[6] = 0;
        int len = snprintf(tmp, n, "%.*s.%s.%s", dirlen, path, base, suffix);
        if (len < 0 || (size_t)len >= n) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* The directory of path, for messages and the final fsync. */
static void dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

/* Reads the temporary file back: the header must announce, and the decoder
 * deliver, exactly the frames written. This catches a write error that
 * libsndfile or libFLAC kept to themselves (they do not all report one). */
static dm_status verify(int fd, const char *path, const dm_audio *a, dm_error *err)
{
    if (lseek(fd, 0, SEEK_SET) != 0)
        return dm_fail(err, DM_ERR_IO, "%s: cannot check what was written: %s", path,
                       strerror(errno));
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &info, SF_FALSE);
    if (!sf) {
        char msg[256];
        sf_message(msg, sizeof msg, sf_strerror(NULL));
        return dm_fail(err, DM_ERR_IO, "%s: the file written cannot be read back (%s)", path, msg);
    }
    float *buf = dm_alloc((size_t)CHUNK_FRAMES * (size_t)a->channels, sizeof(float));
    int64_t n = 0;
    sf_count_t k;
    while (buf && (k = sf_readf_float(sf, buf, CHUNK_FRAMES)) > 0)
        n += k;
    bool bad_read = sf_error(sf) != SF_ERR_NO_ERROR;
    sf_close(sf);
    dm_free(buf);
    if (!buf)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (bad_read || info.frames != a->frames || n != a->frames || info.channels != a->channels ||
        info.samplerate != a->rate)
        return dm_fail(err, DM_ERR_IO,
                       "%s: the file written is incomplete (%lld of %lld frames read back; disk "
                       "full?)",
                       path, (long long)n, (long long)a->frames);
    return DM_OK;
}

dm_status dm_audio_write(const char *path, const dm_audio *a, const dm_audio_write_params *params,
                         dm_error *err)
{
    dm_audio_write_params p = params ? *params : dm_audio_write_default_params();
    if (p.clipped)
        *p.clipped = 0;
    if (!path || !*path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "no output file name given");
    if (!a || !a->data || a->frames < 1)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: no audio to write", path);
    if (a->channels < 1 || a->channels > DM_AUDIO_MAX_CHANNELS)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: %d channels, expected 1..%d", path,
                       a->channels, DM_AUDIO_MAX_CHANNELS);
    if (a->frames > DM_AUDIO_MAX_FRAMES)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: %lld frames, more than the limit of %lld",
                       path, (long long)a->frames, (long long)DM_AUDIO_MAX_FRAMES);
    if (a->rate < 1 || a->rate > DM_AUDIO_MAX_RATE)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "%s: sample rate %d, expected 1..%d", path,
                       a->rate, DM_AUDIO_MAX_RATE);
    int format = 0;
    dm_status st = choose_format(path, p.format, &format, err);
    if (st)
        return st;
    SF_INFO info = {.samplerate = a->rate, .channels = a->channels, .format = format};
    if (!sf_format_check(&info))
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                       "%s: this format cannot store %d channels at %d Hz as %s", path,
                       a->channels, a->rate, dm_sample_format_name(p.format));
    const size_t total = (size_t)a->channels * (size_t)a->frames;
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(a->data[i]))
            return dm_fail(err, DM_ERR_INVALID_ARGUMENT,
                           "%s: sample %lld of channel %d is not a number (NaN or infinity); "
                           "nothing written",
                           path, (long long)(i % (size_t)a->frames), (int)(i / (size_t)a->frames));
    }

    if (strcmp(path, "-") == 0)
        return write_stdout(a, &p, format, p.clipped, err);

    char dir[PATH_MAX], tmp[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int fd = create_temp(path, tmp, sizeof tmp);
    if (fd < 0)
        return dm_fail(err, DM_ERR_IO, "%s: cannot create a file in %s: %s", path, dir,
                       strerror(errno));

    SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, SF_FALSE);
    if (!sf) {
        char msg[256];
        sf_message(msg, sizeof msg, sf_strerror(NULL));
        st = dm_fail(err, DM_ERR_IO, "%s: cannot start writing (%s)", path, msg);
    } else {
        st = encode(sf, path, a, &p, p.clipped, err);
        sf_close(sf);
    }
    if (!st && fsync(fd) != 0)
        st = dm_fail(err, DM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!st)
        st = verify(fd, path, a, err);
    if (close(fd) != 0 && !st)
        st = dm_fail(err, DM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = dm_fail(err, DM_ERR_IO, "%s: cannot replace the file: %s", path, strerror(errno));
    if (st) {
        unlink(tmp);
        return st;
    }
    /* Make the rename itself durable; some file systems refuse (EINVAL): fine. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return DM_OK;
}
