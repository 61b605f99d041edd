/* dmaudio — audio files, training datasets and the synthetic dataset.
 *
 * Conventions as in dmaudio.h: dm_ prefix, dm_status returns, a one-line
 * message in the caller's dm_error (it always names the file concerned).
 *
 * All audio file reading and writing goes through libsndfile, all resampling
 * through libsamplerate. Audio in memory is float32, planar: (channels, frames).
 *
 * Copyright (c) 2026 The dmaudio authors. MIT licence (see LICENSE).
 */
#ifndef DMAUDIO_AUDIO_H
#define DMAUDIO_AUDIO_H

#include "dmaudio.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Audio in memory                                                           */
/* ------------------------------------------------------------------------ */

typedef struct dm_audio {
    float *data;        /* planar: sample i of channel c is data[c * frames + i] */
    int channels;
    int64_t frames;
    int rate;           /* Hz */
} dm_audio;

/* Hard limits of every call below (the read parameters may lower them). */
#define DM_AUDIO_MAX_CHANNELS 64
#define DM_AUDIO_MAX_FRAMES ((int64_t)1 << 28) /* per channel: 1h41m at 44.1 kHz */
#define DM_AUDIO_MAX_RATE 768000

/* Allocates a zeroed buffer in *a (free it with dm_audio_free). */
dm_status dm_audio_alloc(dm_audio *a, int channels, int64_t frames, int rate, dm_error *err);
/* Frees a->data and zeroes *a; a NULL or empty a is fine. Only for buffers
 * made by dm_audio_alloc, dm_audio_read or dm_audio_resample. */
void dm_audio_free(dm_audio *a);

/* libsamplerate's sinc converters. MEDIUM (97 dB SNR, ~4 M samples/s) is the
 * default; BEST (145 dB, ~1 M samples/s); FAST (97 dB, narrower band). All are
 * deterministic. */
typedef enum dm_resample_quality {
    DM_RESAMPLE_MEDIUM = 0,
    DM_RESAMPLE_BEST,
    DM_RESAMPLE_FAST,
    DM_RESAMPLE_QUALITY_COUNT
} dm_resample_quality;

/* "medium", "best", "fast"; "unknown" for a bad value. */
const char *dm_resample_quality_name(dm_resample_quality q);
/* 0 and *out set if name is known, -1 otherwise. */
int dm_resample_quality_from_name(const char *name, dm_resample_quality *out);

/* out = in at another rate: round(in->frames * rate / in->rate) frames, time 0
 * aligned. rate / in->rate must lie in [1/256, 256]. out is allocated (free it
 * with dm_audio_free); on failure it is left empty. */
dm_status dm_audio_resample(const dm_audio *in, int rate, dm_resample_quality quality,
                            dm_audio *out, dm_error *err);

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct dm_audio_read_params {
    int channels;       /* 0: as in the file (default); 1: mixed down to mono (the
                           mean of the channels); N > 1: the file must have N
                           channels, or 1 (then copied to all N)                */
    int rate;           /* 0: the file's rate (default); else resampled to it   */
    dm_resample_quality quality;   /* default DM_RESAMPLE_MEDIUM                */
    int max_channels;   /* files with more channels are refused (default 64)    */
    int64_t max_frames; /* longer files are refused, before and after
                           resampling (default DM_AUDIO_MAX_FRAMES)             */
    int allow_truncated;/* 0 (default): a file holding less audio than its header
                           announces is an error; 1: the frames present are
                           returned (never anything else)                       */
} dm_audio_read_params;

dm_audio_read_params dm_audio_read_default_params(void);

/* Reads any file libsndfile knows (WAV, FLAC, Ogg Vorbis, AIFF, ...) into out
 * (allocated; free with dm_audio_free; left empty on failure). params may be
 * NULL (defaults). path "-" reads standard input (at most 2 GiB).
 * Errors: DM_ERR_IO (missing, unreadable, a directory), DM_ERR_FORMAT (not a
 * sound file, empty, truncated, NaN or infinite samples, over a limit),
 * DM_ERR_INVALID_ARGUMENT (bad params), DM_ERR_OUT_OF_MEMORY. Examples:
 *   "x.wav: not a sound file (Format not recognised)", "x.wav: empty",
 *   "x.wav: 3 channels, expected at most 2". */
dm_status dm_audio_read(const char *path, const dm_audio_read_params *params, dm_audio *out,
                        dm_error *err);

typedef struct dm_audio_file_info {
    int channels;
    int64_t frames;     /* as announced by the header; -1 if unknown           */
    int rate;
    char format[96];    /* e.g. "WAV (Microsoft), Signed 24 bit PCM"           */
} dm_audio_file_info;

/* Opens path and reports what it holds, without reading the audio. */
dm_status dm_audio_probe(const char *path, dm_audio_file_info *info, dm_error *err);

/* The metadata strings dm_audio_write stores (libsndfile's SF_STR_*). */
typedef enum dm_audio_string {
    DM_AUDIO_TITLE = 0,
    DM_AUDIO_SOFTWARE,
    DM_AUDIO_COMMENT,   /* dmaudio puts the recipe of a generated clip here   */
    DM_AUDIO_STRING_COUNT
} dm_audio_string;

/* "title", "software", "comment"; "unknown" for a bad value. */
const char *dm_audio_string_name(dm_audio_string which);
int dm_audio_string_from_name(const char *name, dm_audio_string *out);

/* Copies the string into out (n bytes with the terminating 0); an absent string
 * gives "". DM_ERR_INVALID_ARGUMENT if it does not fit (nothing is truncated). */
dm_status dm_audio_read_string(const char *path, dm_audio_string which, char *out, size_t n,
                               dm_error *err);
/* The same for DM_AUDIO_COMMENT (where the recipe is). */
dm_status dm_audio_read_metadata(const char *path, char *comment, size_t n, dm_error *err);

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dm_sample_format {
    DM_SAMPLE_PCM_24 = 0,   /* default; x -> round(x * 2^23), clamped          */
    DM_SAMPLE_PCM_16,       /* x -> round(x * 2^15), clamped (no dither)       */
    DM_SAMPLE_FLOAT,        /* 32-bit float, WAV only                          */
    DM_SAMPLE_FORMAT_COUNT
} dm_sample_format;

/* "pcm24", "pcm16", "float"; "unknown" for a bad value. */
const char *dm_sample_format_name(dm_sample_format f);
int dm_sample_format_from_name(const char *name, dm_sample_format *out);

typedef struct dm_audio_write_params {
    dm_sample_format format;  /* default DM_SAMPLE_PCM_24                       */
    const char *title;        /* metadata; NULL or "" leaves it out (default)   */
    const char *software;     /* default "dmaudio " + the library version        */
    const char *comment;      /* default NULL                                    */
    int64_t *clipped;         /* out, optional: receives the number of samples
                                 outside [-1, 1] that were clipped               */
} dm_audio_write_params;

dm_audio_write_params dm_audio_write_default_params(void);

/* Writes a to path; the container comes from the extension (case-insensitive):
 * .wav (PCM 16/24-bit or float) or .flac (PCM 16/24-bit). Samples are clipped
 * to [-1, 1] in every format. params may be NULL (defaults).
 *
 * The write is atomic: the file is written to a hidden temporary file in the
 * same directory (".NAME.XXXXXX"), synced, read back and checked, then renamed
 * over path. On any failure (disk full, unwritable directory...) the temporary
 * file is removed and whatever was at path is left untouched.
 *
 * path "-" writes a WAV to standard output (encoded in memory first); that
 * case is not atomic. A caller writing to a pipe should ignore SIGPIPE to get
 * an error instead of being killed.
 *
 * Errors: DM_ERR_INVALID_ARGUMENT (unknown extension, NaN/infinite samples,
 * a combination the format cannot store), DM_ERR_IO (the file system). */
dm_status dm_audio_write(const char *path, const dm_audio *a, const dm_audio_write_params *params,
                         dm_error *err);

/* ------------------------------------------------------------------------ */
/* Training datasets: a folder of audio files                                */
/* ------------------------------------------------------------------------ */
/* Every file under the folder (recursively) whose extension is wav, flac, ogg,
 * aif or aiff (any case); names starting with "." (files and folders) are
 * skipped, and so are other extensions. The class of a file is the name of
 * the first-level sub-folder holding it; files directly in the folder make an
 * unconditional dataset (no class) -- mixing both is an error. Class indices
 * follow the class names sorted bytewise; items are in depth-first order of
 * bytewise-sorted names, whatever the file system's order. Each file is read
 * whole, converted to the dataset's channels and rate, and zero-padded at the
 * end to at least `length` frames (longer clips are kept whole for random
 * crops). */

#define DM_DATASET_MAX_CLASSES 1024

typedef struct dm_dataset dm_dataset;

typedef struct dm_dataset_params {
    int rate;                 /* every item at this rate (default 44100)        */
    int channels;             /* 1 (default): mixed down to mono; 2: stereo,
                                 mono files copied to both channels              */
    int length;               /* minimum frames per item (zero-padded); default 0 */
    dm_resample_quality quality;   /* default DM_RESAMPLE_MEDIUM                 */
    int64_t max_frames;       /* per file, after resampling (default DM_AUDIO_MAX_FRAMES) */
    int64_t max_total_frames; /* over all items, 0 = no limit (default)          */
    int scan_only;            /* 1: list the files and classes, read no audio
                                 (dm_dataset_item / crop then fail); default 0   */
    /* Called after each file (done = 1..total); a non-zero return stops the
     * load with DM_ERR_CANCELLED. May be NULL. */
    int (*progress)(int done, int total, const char *path, void *user_data);
    void *user_data;
} dm_dataset_params;

dm_dataset_params dm_dataset_default_params(void);

/* Errors: DM_ERR_IO (dir missing or unreadable), DM_ERR_INVALID_ARGUMENT (no
 * audio file, labelled and unlabelled files mixed, more than
 * DM_DATASET_MAX_CLASSES classes, bad params), any error of dm_audio_read
 * (the message names the file), DM_ERR_CANCELLED. */
dm_status dm_dataset_load(const char *dir, const dm_dataset_params *params, dm_dataset **out,
                          dm_error *err);
void dm_dataset_free(dm_dataset *ds);

int dm_dataset_count(const dm_dataset *ds);
int dm_dataset_n_classes(const dm_dataset *ds);      /* 0: unconditional      */
int dm_dataset_channels(const dm_dataset *ds);
int dm_dataset_rate(const dm_dataset *ds);
/* Class name of index cls (0 <= cls < n_classes), NULL otherwise. */
const char *dm_dataset_class_name(const dm_dataset *ds, int cls);
/* Index of the class with this name, or -1. */
int dm_dataset_find_class(const dm_dataset *ds, const char *name);
/* Item i: data is (channels, frames) planar, owned by ds; cls is its class or
 * -1 in an unconditional dataset. Any output pointer may be NULL. */
dm_status dm_dataset_item(const dm_dataset *ds, int i, const float **data, int64_t *frames,
                          int *cls);
/* The file of item i: dir + "/" + relative path; and the relative path alone
 * ("kick/a.wav"). NULL for a bad i. Owned by ds. */
const char *dm_dataset_path(const dm_dataset *ds, int i);
const char *dm_dataset_relpath(const dm_dataset *ds, int i);
/* dst (channels, length) = frames [offset, offset + length) of item i, zero
 * where that range falls outside the item (offset may be negative). */
dm_status dm_dataset_crop(const dm_dataset *ds, int i, int64_t offset, int length, float *dst);

/* ------------------------------------------------------------------------ */
/* The synthetic dataset: a known distribution for "does it learn" tests     */
/* ------------------------------------------------------------------------ */
/* Three classes of one-shots, each peak-normalised to an amplitude A drawn
 * uniformly in [0.3, 0.8], starting at t = 0 (all other draws uniform too):
 *  0 "tone":  a decaying sine, f in 200..800 Hz (log-uniform), exp(-t/tau) with
 *             tau in 0.05..0.3 s, plus a 2nd harmonic at 5..20 % amplitude;
 *  1 "noise": white noise through a band-pass biquad (centre 1..4 kHz,
 *             log-uniform, Q 0.7..2), exp(-t/tau) with tau in 0.02..0.15 s;
 *  2 "click": 1..3 impulses 1..3 ms apart (relative gains 0.3..1, random
 *             signs) through a 2-pole resonance at 5..10 kHz (log-uniform)
 *             decaying with tau in 0.2..1 ms, plus 30 % of the raw impulses.
 * Frequencies above 0.45 * rate are lowered to it. */

typedef enum dm_synth_class {
    DM_SYNTH_TONE = 0,
    DM_SYNTH_NOISE,
    DM_SYNTH_CLICK,
    DM_SYNTH_N_CLASSES
} dm_synth_class;

/* "tone", "noise", "click"; "unknown" for a bad value. */
const char *dm_synth_class_name(int cls);
int dm_synth_class_from_name(const char *name, int *out);

/* out[0..length) = clip number `index` of class cls: a pure function of (cls,
 * seed, index, rate, length), drawn from dm_rng streams 8 * index + 2 * cls
 * and 8 * index + 2 * cls + 1 of seed. rate in 8000..DM_AUDIO_MAX_RATE,
 * length >= 1. Values lie in [-0.8, 0.8]. */
dm_status dm_synth_clip(int cls, uint64_t seed, uint64_t index, int rate, int length, float *out);

/* Writes dir/<class>/<class>_NNNN.wav (NNNN = 0000, 0001...; PCM 24-bit mono,
 * each an atomic dm_audio_write, with the clip's parameters in the comment):
 * per_class clips per class, clip k being dm_synth_clip(cls, seed, k, ...).
 * dir and the class folders are created if missing. */
dm_status dm_synth_write_dataset(const char *dir, int per_class, uint64_t seed, int rate,
                                 int length, dm_error *err);

/* Two statistics that tell the classes apart, for tests and for judging what a
 * model generates:
 *  freq_hz: a spectral centroid of the power spectrum, from the time domain:
 *           (rate/pi) asin(sqrt(D/E)/2), E the energy of x and D that of its
 *           first difference -- the frequency whose 4 sin^2(pi f / rate) is the
 *           power-weighted mean of 4 sin^2(pi f / rate), i.e. the RMS frequency
 *           when f << rate. Exact for a sine.
 *  t90_s:   the time by which 90 % of the clip's energy has arrived.
 * On 2000 clips per class at 8, 16, 22.05, 44.1 and 48 kHz (0.5 s): tone
 * freq 201..836 Hz; noise freq >= 1156 Hz and t90 >= 18.8 ms; click t90 <= 6.3 ms. */
typedef struct dm_synth_stats {
    double freq_hz;
    double t90_s;
    double peak;            /* max |x| */
    double rms;
} dm_synth_stats;

void dm_synth_stats_compute(const float *x, int rate, int length, dm_synth_stats *st);
/* freq_hz < 1000 Hz: tone; else t90_s < 11 ms: click; else noise; -1 for a
 * silent clip. No error on the generator's own clips (see above and
 * tests/test_dataset.c). */
int dm_synth_classify(const float *x, int rate, int length);

#ifdef __cplusplus
}
#endif

#endif /* DMAUDIO_AUDIO_H */
