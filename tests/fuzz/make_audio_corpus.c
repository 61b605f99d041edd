/* Writes the seed corpus of tests/fuzz/fuzz_audio.c: tiny sound files in the formats
 * libsndfile reads (WAV PCM 16/24/float, mono and stereo, with a recipe in the comment;
 * FLAC; AIFF; Ogg Vorbis; CAF; AU; W64; RF64), and broken variants of a WAV: cut inside the
 * data, a data chunk announcing far more than the file holds, zero channels, zero rate,
 * 1 Hz, 65 channels, NaN samples, a bad format tag, header only. Run once; the files are
 * committed. From the repository root:
 *
 *   cc -std=c11 tests/fuzz/make_audio_corpus.c $(pkg-config --cflags --libs sndfile) -lm \
 *      -o build/make_audio_corpus && build/make_audio_corpus tests/fuzz/corpus/audio
 */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static void die(const char *what)
{
    fprintf(stderr, "make_audio_corpus: %s\n", what);
    exit(1);
}

/* A decaying 440 Hz tone, frames x channels, written in format; the comment holds a recipe. */
static void tone(const char *name, int format, int channels, int rate, int frames)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf)
        die(sf_strerror(NULL));
    sf_set_string(sf, SF_STR_COMMENT,
                  "dmaudio-recipe/1 model=drums crc=0d4357c4 seed=7 sampler=dpmpp-2m steps=25 "
                  "class=kick guidance=2 strength=1 eta=0 mode=sample version=0.1.0");
    sf_set_string(sf, SF_STR_TITLE, "fuzz seed");
    float *x = malloc(sizeof(float) * (size_t)frames * channels);
    for (int i = 0; i < frames; i++)
        for (int c = 0; c < channels; c++)
            x[i * channels + c] = (float)(0.5 * exp(-i / 20.0) * sin(2 * M_PI * 440 * i / rate));
    if (sf_writef_float(sf, x, frames) != frames)
        die("short write");
    sf_close(sf);
    free(x);
}

static unsigned char *slurp(const char *name, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    static unsigned char buf[1 << 16];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void save(const char *name, const unsigned char *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Offset of a RIFF chunk's id, or die. */
static size_t chunk(const unsigned char *p, size_t n, const char *id)
{
    for (size_t at = 12; at + 8 <= n;) {
        uint32_t size = p[at + 4] | p[at + 5] << 8 | p[at + 6] << 16 | (uint32_t)p[at + 7] << 24;
        if (memcmp(p + at, id, 4) == 0)
            return at;
        at += 8 + size + (size & 1);
    }
    die("no such chunk");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: make_audio_corpus DIR");
    dir = argv[1];
    tone("pcm16-mono.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 8000, 64);
    tone("pcm24-stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 2, 44100, 48);
    tone("float-stereo.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, 48000, 32);
    tone("ulaw.wav", SF_FORMAT_WAV | SF_FORMAT_ULAW, 1, 8000, 64);
    tone("mono.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, 16000, 64);
    tone("stereo.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 2, 22050, 32);
    tone("mono.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 1, 8000, 256);
    tone("mono.caf", SF_FORMAT_CAF | SF_FORMAT_PCM_16, 1, 8000, 32);
    tone("mono.au", SF_FORMAT_AU | SF_FORMAT_PCM_16, 1, 8000, 32);
    tone("mono.w64", SF_FORMAT_W64 | SF_FORMAT_PCM_16, 1, 8000, 32);
    tone("mono.rf64", SF_FORMAT_RF64 | SF_FORMAT_PCM_16, 1, 8000, 32);
    tone("3ch-float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 3, 8000, 16);

    size_t n;
    const unsigned char *src = slurp("pcm16-mono.wav", &n);
    unsigned char w[1 << 16];
    const size_t fmt = chunk(src, n, "fmt "), data = chunk(src, n, "data");

    memcpy(w, src, n);
    save("broken-cut.wav", w, data + 8 + 20); /* 10 of 64 frames */
    memcpy(w, src, n);
    put32(w + data + 4, 1u << 30);
    save("broken-data-size.wav", w, n);
    memcpy(w, src, n);
    put16(w + fmt + 10, 0);
    save("broken-zero-channels.wav", w, n);
    memcpy(w, src, n);
    put16(w + fmt + 10, 65);
    save("broken-65-channels.wav", w, n);
    memcpy(w, src, n);
    put32(w + fmt + 12, 0);
    save("broken-zero-rate.wav", w, n);
    memcpy(w, src, n);
    put32(w + fmt + 12, 1);
    save("broken-1hz.wav", w, n);
    memcpy(w, src, n);
    put16(w + fmt + 8, 0x7777);
    save("broken-format-tag.wav", w, n);
    save("broken-header-only.wav", src, data + 8);
    save("broken-riff-only.wav", src, 12);

    const unsigned char *fl = slurp("float-stereo.wav", &n);
    memcpy(w, fl, n);
    const size_t fdata = chunk(w, n, "data");
    const uint32_t nan = 0x7fc00000u, inf = 0x7f800000u;
    put32(w + fdata + 8, nan);
    put32(w + fdata + 12, inf);
    save("broken-nan.wav", w, n);
    return 0;
}
