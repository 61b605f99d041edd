/* dmaudio — the FFTW spectral engine and the evaluation metrics.
 *
 * Part of the public API of libdmaudio (same conventions as dmaudio.h: dm_ prefix, dm_status
 * results with a caller-owned dm_error, creators destroy, arguments borrowed for the call).
 *
 * Layout. A spectrogram is a pair of float planes, or one plane of magnitudes or powers, laid
 * out (bins, frames) row-major: value (k, t) is at [k * frames + t], bins = n_fft / 2 + 1.
 * That is the U-Net's (C, L) layout: channels = frequency bins, length = frames.
 *
 * Definitions follow librosa's, so numbers can be checked against it (tests/gen_spectral_
 * fixtures.py is an independent numpy implementation of them):
 *  - STFT: periodic Hann window, centered frames (librosa center=True): the signal is padded
 *    by n_fft/2 on each side — "reflect" (numpy/librosa pad_mode="reflect", torch's default,
 *    the default here) or "constant" (zeros) — and frame t starts at padded sample t * hop;
 *    X[k, t] = sum_n w[n] xpad[t*hop + n] exp(-2 pi i k n / n_fft), not normalised
 *    (np.fft.rfft of the windowed frame). frames = 1 + n_samples / hop (integer division).
 *  - inverse STFT: inverse FFT of each frame, times the window, overlap-added, divided by the
 *    overlap-added squared window wherever that sum is above the smallest normal float
 *    (librosa.istft): exact reconstruction for any hop <= n_fft / 2.
 *  - mel filterbank: librosa.filters.mel with norm="slaney" (each triangle divided by half its
 *    width in Hz: area normalised), on the Slaney mel scale (linear below 1 kHz, logarithmic
 *    above) or the HTK one (2595 log10(1 + f / 700)).
 *  - log-mel: 10 log10(max(mel power, 1e-10)) (librosa.power_to_db, ref 1, amin 1e-10, no
 *    top_db), in dB.
 *  - MFCC: the orthonormal DCT-II over mel bands of the log-mel in dB (scipy.fft.dct type 2,
 *    norm="ortho"; librosa.feature.mfcc), first n_mfcc coefficients.
 *  - spectral centroid, flatness (power 2, amin 1e-10) and rolloff (roll_percent 0.85): as
 *    librosa.feature.spectral_* on a magnitude spectrogram.
 *
 * Threads: FFTW plans are made once, in dm_stft_create, behind a process-wide lock (FFTW's
 * planner is not thread-safe). Execution never allocates and never locks: separate dm_stft
 * objects can run in separate threads at the same time; one object is used by one thread at a
 * time. A dm_mel is read-only after creation and can be shared by any number of threads.
 *
 * Copyright (c) 2026 The dmaudio authors. MIT licence (see LICENSE).
 */
#ifndef DMAUDIO_SPECTRAL_H
#define DMAUDIO_SPECTRAL_H

#include <stddef.h>
#include <stdint.h>

#include "dmaudio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* STFT and inverse STFT                                                     */
/* ------------------------------------------------------------------------ */

typedef enum dm_stft_pad {
    DM_STFT_PAD_REFLECT = 0,   /* mirror without repeating the edge sample (default) */
    DM_STFT_PAD_CONSTANT,      /* zeros                                                */
    DM_STFT_PAD_COUNT
} dm_stft_pad;

/* "reflect", "constant"; "unknown" for a bad value. */
const char *dm_stft_pad_name(dm_stft_pad pad);
/* 0 and *out set if name is known, -1 otherwise. */
int dm_stft_pad_from_name(const char *name, dm_stft_pad *out);

typedef struct dm_stft dm_stft;

/* n_fft even, 4 .. 2^20; hop 1 .. n_fft. Reflect padding. */
dm_status dm_stft_create(int n_fft, int hop, dm_stft **out, dm_error *err);
dm_status dm_stft_create_padded(int n_fft, int hop, dm_stft_pad pad, dm_stft **out,
                                dm_error *err);
void dm_stft_free(dm_stft *st);

int dm_stft_n_fft(const dm_stft *st);
int dm_stft_hop(const dm_stft *st);
int dm_stft_bins(const dm_stft *st);                       /* n_fft / 2 + 1         */
dm_stft_pad dm_stft_get_pad(const dm_stft *st);
/* 1 + n_samples / hop: the frames of a signal of n_samples samples. */
int dm_stft_frames(const dm_stft *st, size_t n_samples);
/* The periodic Hann window, n_fft values (owned by st). */
const float *dm_stft_window(const dm_stft *st);

/* x: n_samples (>= 1) -> re, im: (bins, frames), frames = dm_stft_frames(st, n_samples).
 * im may be NULL (only the real parts are written). Does not allocate. */
dm_status dm_stft_forward(dm_stft *st, const float *x, size_t n_samples, float *re, float *im,
                          dm_error *err);

/* re, im: (bins, frames) -> y: n_samples. The imaginary parts of the DC and Nyquist bins are
 * ignored (a real signal's spectrum). Any frames >= 1 and n_samples >= 1 are accepted;
 * samples no frame covers are 0. Does not allocate. */
dm_status dm_stft_inverse(dm_stft *st, const float *re, const float *im, int frames, float *y,
                          size_t n_samples, dm_error *err);

/* The adjoint (transpose) of dm_stft_forward, for back-propagation: given d(loss)/d(re) and
 * d(loss)/d(im), (bins, frames) with frames = dm_stft_frames(st, n_samples), ADDS
 * d(loss)/dx into dx (n_samples). Per frame: the inverse real FFT of dre + i dim with the
 * bins strictly between DC and Nyquist halved (a c2r transform counts each of them twice, as
 * k and n_fft - k; the forward transform's bin k depends on x through cos and -sin once),
 * times the window, then the padding's transpose: each padded sample's gradient goes to the
 * sample it copies (reflect) or nowhere (constant). <STFT x, (gre, gim)> = <x, adjoint>.
 * Does not allocate. */
dm_status dm_stft_backward(dm_stft *st, const float *dre, const float *dim, int frames,
                           float *dx, size_t n_samples, dm_error *err);

/* ------------------------------------------------------------------------ */
/* Multi-resolution STFT loss (Yamamoto et al. 2020, Parallel WaveGAN)       */
/* ------------------------------------------------------------------------ */
/* For a signal y (the estimate) and a reference x of n samples, at R resolutions (n_fft_r,
 * hop_r), with STFT as dm_stft_forward (Hann, centered, reflect) and magnitudes
 *   |S|_r = sqrt(re^2 + im^2 + eps),  eps = DM_MRSTFT_EPS (smooth, never 0):
 *   SC_r = || |S_r(y)| - |S_r(x)| ||_F / || |S_r(x)| ||_F                (spectral convergence)
 *   LM_r = mean over bins and frames of | log |S_r(y)| - log |S_r(x)| |   (log magnitude, L1)
 *   L    = (1 / R) sum_r (SC_r + LM_r).
 * The gradient dL/dy is exact (chain rule through |S| and dm_stft_backward); where
 * |S_r(y)| = |S_r(x)| the L1 term's subgradient 0 is used, and the SC term's gradient is 0
 * when y's magnitudes equal x's everywhere. */
#define DM_MRSTFT_MAX_RES 8
#define DM_MRSTFT_EPS 1e-7

typedef struct dm_mrstft dm_mrstft;

/* The resolutions used for training at a sample rate: n_fft = 128, 256, 512 at 16 kHz,
 * scaled to the rate (the power of two nearest base * rate / 16000, at least 16), each at
 * most the largest power of two <= n_samples (resolutions that collapse onto the same n_fft
 * are kept once); hop = n_fft / 4. Returns R (1..3) and fills n_fft[R], hop[R]. */
int dm_mrstft_default_resolutions(int sample_rate, size_t n_samples, int *n_fft, int *hop);

/* Plans the R (1..DM_MRSTFT_MAX_RES) STFTs (each n_fft even, 4..65536, hop 1..n_fft) and
 * allocates every buffer for signals of n_samples (>= 1). */
dm_status dm_mrstft_create(int n_res, const int *n_fft, const int *hop, size_t n_samples,
                           dm_mrstft **out, dm_error *err);
void dm_mrstft_free(dm_mrstft *l);
int dm_mrstft_n_res(const dm_mrstft *l);

/* L(y, x) as above, returned. grad (n_samples, may be NULL) receives dL/dy (written, not
 * added); parts (2 R values, may be NULL) receives SC_r, LM_r per resolution. y and x must be
 * finite. Does not allocate; one object is used by one thread at a time. */
double dm_mrstft_loss(dm_mrstft *l, const float *y, const float *x, float *grad, double *parts);

/* ------------------------------------------------------------------------ */
/* Magnitudes, mel filterbank, log-mel, MFCC                                 */
/* ------------------------------------------------------------------------ */

/* out[i] = sqrt(re[i]^2 + im[i]^2); out may alias re or im. */
void dm_spec_magnitude(const float *re, const float *im, size_t n, float *out);
/* out[i] = re[i]^2 + im[i]^2; out may alias re or im. */
void dm_spec_power(const float *re, const float *im, size_t n, float *out);
/* out[i] = 10 log10(max(x[i], 1e-10)) (librosa.power_to_db, ref 1, no top_db); may alias. */
void dm_power_to_db(const float *x, size_t n, float *out);

typedef struct dm_mel dm_mel;

/* Triangular filters on n_mels + 2 mel-spaced edge frequencies from fmin to fmax (fmax <= 0:
 * sample_rate / 2), Slaney area normalisation; htk = 0: Slaney mel scale, 1: HTK mel scale.
 * Also holds the orthonormal DCT-II of size n_mels for MFCCs. */
dm_status dm_mel_create(double sample_rate, int n_fft, int n_mels, double fmin, double fmax,
                        int htk, dm_mel **out, dm_error *err);
void dm_mel_free(dm_mel *mel);
int dm_mel_n_mels(const dm_mel *mel);
int dm_mel_bins(const dm_mel *mel);                        /* n_fft / 2 + 1         */
/* The dense filter matrix: out is (n_mels, bins). */
void dm_mel_filters(const dm_mel *mel, float *out);

/* power: (bins, frames) -> out: (n_mels, frames), out = filters @ power. */
dm_status dm_mel_apply(const dm_mel *mel, const float *power, int frames, float *out,
                       dm_error *err);
/* logmel: (n_mels, frames) in dB -> out: (n_mfcc, frames), 1 <= n_mfcc <= n_mels. */
dm_status dm_mel_mfcc(const dm_mel *mel, const float *logmel, int frames, int n_mfcc, float *out,
                      dm_error *err);

/* ------------------------------------------------------------------------ */
/* Spectral shape features, per frame (mag: magnitudes (n_fft/2 + 1, frames)) */
/* ------------------------------------------------------------------------ */

/* Magnitude-weighted mean frequency in Hz (0 for a silent frame). */
dm_status dm_spectral_centroid(const float *mag, int n_fft, int frames, double sample_rate,
                               float *out, dm_error *err);
/* Geometric / arithmetic mean of max(mag^2, 1e-10), in (0, 1]. */
dm_status dm_spectral_flatness(const float *mag, int n_fft, int frames, float *out,
                               dm_error *err);
/* Lowest bin frequency (Hz) at which the cumulative magnitude reaches roll_percent of the
 * frame's total (librosa uses 0.85); roll_percent in (0, 1). */
dm_status dm_spectral_rolloff(const float *mag, int n_fft, int frames, double sample_rate,
                              double roll_percent, float *out, dm_error *err);

/* ------------------------------------------------------------------------ */
/* Fast Griffin-Lim (Perraudin, Balazs and Sondergaard 2013)                  */
/* ------------------------------------------------------------------------ */
/* Phase retrieval from a magnitude spectrogram S:
 *   t_n = P_consistent(P_magnitude(c_{n-1})),  c_n = t_n + momentum (t_n - t_{n-1}),
 * with P_magnitude(c) = S c / |c| and P_consistent(c) = STFT(iSTFT(c)); momentum 0 is the
 * classic Griffin-Lim. The spectral convergence of an estimate y is
 *   || |STFT(y)| - S ||_F / ||S||_F. */

typedef struct dm_griffin_lim_params {
    int n_iter;        /* iterations (default 64)                                   */
    float momentum;    /* alpha (default 0.99); 0 .. 1.5                            */
    int random_init;   /* 0: zero phase (default); 1: uniform random phase from seed */
    uint64_t seed;     /* for random_init (default 0)                               */
} dm_griffin_lim_params;

dm_griffin_lim_params dm_griffin_lim_default_params(void);

/* Floats of scratch dm_griffin_lim needs for this many frames. */
size_t dm_griffin_lim_scratch(const dm_stft *st, int frames);

/* mag: (bins, frames) magnitudes, frames = dm_stft_frames(st, n_samples) -> y: n_samples.
 * sc (NULL, or n_iter + 1 values): sc[i] = spectral convergence of the estimate after i
 * iterations; sc[n_iter] is that of the returned y. scratch: dm_griffin_lim_scratch(st,
 * frames) floats, or NULL to have the call allocate (and free) it. */
dm_status dm_griffin_lim(dm_stft *st, const float *mag, int frames, float *y, size_t n_samples,
                         const dm_griffin_lim_params *params, float *sc, float *scratch,
                         dm_error *err);

/* ------------------------------------------------------------------------ */
/* Evaluation: clip embeddings, Fréchet distance, KID, nearest neighbours     */
/* ------------------------------------------------------------------------ */
/* The embedding of a mono clip at sample rate sr (both sets of a comparison must share it):
 *   STFT with n_fft = the smallest power of two >= 0.02 sr (at least 64), hop = n_fft / 4,
 *   reflect padding, divided by n_fft / 2 (the window's sum, so a full-scale sine peaks near
 *   0 dB); P = |X|^2, M = |X|;
 *   L = log-mel of P (40 Slaney bands, 0 .. sr/2) in bels relative to -50 dB:
 *       (10 log10(max(mel, 1e-10)) + 50) / 10, from -5 (the floor) to about +5 (full scale),
 *       so that entries are of order 1 (KID's kernel is made for that), (40, T);
 *   C = MFCC of L (orthonormal DCT-II, first 20), (20, T);
 *   centroid / (sr/2), log10(flatness), rolloff(0.85) / (sr/2), each (T).
 * Means and standard deviations (population, over the T frames):
 *   [  0,  40) mean of L per band        [ 40,  80) std of L per band
 *   [ 80, 100) mean of C                 [100, 120) std of C
 *   [120, 126) mean, std of centroid; of log10 flatness; of rolloff
 *   [126, 190) envelope: 8 time segments x 8 bands, segment-major: the mean of L over the
 *              frames [floor(s T / 8), floor((s+1) T / 8)) (the one frame floor(s T / 8) when
 *              that is empty) and the mel bands [5b, 5b + 5), at 126 + 8 s + b. */
#define DM_EMBED_DIM 190

/* The dm_embed_* calls create their FFT plans and buffers per call: not for real-time threads. */
int dm_embed_dim(void);
/* The analysis n_fft the embedding uses at this sample rate. */
int dm_embed_n_fft(double sample_rate);

/* x: n (>= 1) finite samples -> emb: DM_EMBED_DIM floats. sample_rate in 1000 .. 768000. */
dm_status dm_embed_clip(const float *x, size_t n, double sample_rate, float *emb, dm_error *err);
/* count clips at once, in parallel over clips (n_threads, 0 = all cores); emb is
 * (count, DM_EMBED_DIM). Same numbers as dm_embed_clip, whatever the thread count. */
dm_status dm_embed_clips(const float *const *clips, const size_t *lengths, int count,
                         double sample_rate, int n_threads, float *emb, dm_error *err);

/* Fréchet distance between Gaussian fits of a (n_a, d) and b (n_b, d), rows = items, in
 * double: |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2), unbiased covariances
 * (n - 1), square roots by symmetric eigen-decomposition (LAPACK dsyevd) with eigenvalues
 * < 0 (rounding) taken as 0; a result below 0 (rounding) is returned as 0. n_a, n_b >= 2. */
dm_status dm_frechet_distance(const float *a, int n_a, const float *b, int n_b, int d,
                              int n_threads, double *out, dm_error *err);

/* Kernel inception distance: the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, averaged
 * over n_subsets pairs of random subsets of subset_size rows of a and of b (drawn without
 * replacement with dm_rng_uniform(seed, ...)); *mean is the average, *std_err the standard
 * error of that average (sample std / sqrt(n_subsets); 0 when n_subsets == 1).
 * 2 <= subset_size <= min(n_a, n_b). For two literally identical sets the unbiased estimate is
 * slightly negative (it is 0 in expectation for independent draws of one distribution).
 * Kernel values are cached in Gram matrices (up to 128 MB) when (n_a + n_b)^2 <= 2^24 and the
 * subsets would evaluate more pairs than that. */
dm_status dm_kid(const float *a, int n_a, const float *b, int n_b, int d, int n_subsets,
                 int subset_size, uint64_t seed, int n_threads, double *mean, double *std_err,
                 dm_error *err);

/* Memorisation check. Coordinates are first divided by the training set's per-dimension
 * standard deviation s_j (n - 1), floored at 1% of the rms of all s_j (an almost constant
 * dimension would otherwise dominate every distance); when that is <= 1e-12 (a constant
 * training set) they are left unscaled. Distances are Euclidean. gen_dist[i] (n_gen values) = distance from gen row i to its nearest training
 * row, gen_index[i] its row (gen_index may be NULL); train_dist[j] (n_train values, may be
 * NULL) = distance from training row j to its nearest other training row (leave one out).
 * n_train >= 2. */
dm_status dm_nearest_neighbour_distances(const float *gen, int n_gen, const float *train,
                                         int n_train, int d, int n_threads, float *gen_dist,
                                         int *gen_index, float *train_dist, dm_error *err);

#ifdef __cplusplus
}
#endif

#endif /* DMAUDIO_SPECTRAL_H */
