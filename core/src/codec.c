/* The codec between a clip's audio and the network's tensor, for both
 * representations (definitions in dmaudio.h, section "Models"):
 *  - wave: net = audio x data_scale, same layout;
 *  - spec: per audio channel, X = STFT(x) (Hann, centered, reflect padding,
 *    dmaudio_spectral.h), each bin mapped to |X|^a X / |X| (a =
 *    DM_SPEC_COMPRESSION) times data_scale, real parts of bins 0..B-1 then
 *    imaginary parts, each a row of `frames` values; decoding inverts the
 *    compression and runs the inverse STFT (exact reconstruction).
 * Encode and decode never allocate: the STFT plans and the scratch planes are
 * made in dm_codec_create. */
#include "internal.h"
#include "dmaudio_spectral.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct dm_codec {
    dm_model_info info;
    int bins;                    /* spec: n_fft / 2 + 1                          */
    dm_stft *stft;               /* spec only                                    */
    float *work;                 /* spec: one channel's (re, im) planes, 2 B F   */
};

void dm_codec_free(dm_codec *c)
{
    if (!c)
        return;
    dm_stft_free(c->stft);
    dm_free(c->work);
    free(c);
}

dm_status dm_codec_create(const dm_model *m, dm_codec **out, dm_error *err)
{
    if (!m || !out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_codec_create: missing argument");
    *out = NULL;
    dm_codec *c = calloc(1, sizeof *c);
    if (!c)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "codec: out of memory");
    c->info = dm_model_get_info(m);
    if (c->info.repr == DM_REPR_SPEC) {
        dm_status st = dm_stft_create(c->info.n_fft, c->info.hop, &c->stft, err);
        if (st != DM_OK) {
            dm_codec_free(c);
            return st;
        }
        c->bins = dm_stft_bins(c->stft);
        c->work = dm_alloc(2 * (size_t)c->bins * c->info.net_length, sizeof(float));
        if (!c->work) {
            dm_codec_free(c);
            return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "codec: out of memory");
        }
    }
    *out = c;
    return DM_OK;
}

/* audio: (audio_channels, length) -> net: (net_channels, net_length). */
void dm_codec_encode(dm_codec *c, const float *audio, float *net)
{
    const dm_model_info *in = &c->info;
    const double scale = in->data_scale;
    if (in->repr != DM_REPR_SPEC) {
        const size_t n = (size_t)in->audio_channels * in->length;
        for (size_t i = 0; i < n; i++)
            net[i] = (float)(audio[i] * scale);
        return;
    }
    const size_t plane = (size_t)c->bins * in->net_length;
    const double ex = DM_SPEC_COMPRESSION - 1.0;
    for (int ch = 0; ch < in->audio_channels; ch++) {
        float *re = net + 2 * plane * ch, *im = re + plane;
        /* the sizes were validated when the model was made: this cannot fail */
        if (dm_stft_forward(c->stft, audio + (size_t)ch * in->length, (size_t)in->length, re, im,
                            NULL) != DM_OK) {
            memset(re, 0, 2 * plane * sizeof *re);
            continue;
        }
        for (size_t i = 0; i < plane; i++) {
            double r = re[i], m = im[i], mag = sqrt(r * r + m * m);
            double f = mag > 0.0 ? scale * pow(mag, ex) : 0.0; /* 0 stays 0 */
            re[i] = (float)(r * f);
            im[i] = (float)(m * f);
        }
    }
}

/* net: (net_channels, net_length) -> audio: (audio_channels, length). */
void dm_codec_decode(dm_codec *c, const float *net, float *audio)
{
    const dm_model_info *in = &c->info;
    if (in->repr != DM_REPR_SPEC) {
        const size_t n = (size_t)in->audio_channels * in->length;
        const float inv = (float)(1.0 / in->data_scale);
        for (size_t i = 0; i < n; i++)
            audio[i] = net[i] * inv;
        return;
    }
    const size_t plane = (size_t)c->bins * in->net_length;
    const double inv = 1.0 / in->data_scale, ex = 1.0 / DM_SPEC_COMPRESSION - 1.0;
    float *re = c->work, *im = c->work + plane;
    for (int ch = 0; ch < in->audio_channels; ch++) {
        const float *yr = net + 2 * plane * ch, *yi = yr + plane;
        for (size_t i = 0; i < plane; i++) {
            double r = yr[i] * inv, m = yi[i] * inv, mag = sqrt(r * r + m * m);
            double f = mag > 0.0 ? pow(mag, ex) : 0.0;
            re[i] = (float)(r * f);
            im[i] = (float)(m * f);
        }
        float *y = audio + (size_t)ch * in->length;
        if (dm_stft_inverse(c->stft, re, im, in->net_length, y, (size_t)in->length, NULL) != DM_OK)
            memset(y, 0, (size_t)in->length * sizeof *y);
    }
}

/* numpy's "reflect" index of sample i of a signal of n samples (n >= 2). */
static long reflect_index(long i, long n)
{
    if (n == 1)
        return 0;
    long period = 2 * (n - 1), m = i % period;
    if (m < 0)
        m += period;
    return m < n ? m : period - m;
}

/* mask: (length) per sample -> out: (net_length) per frame, 1 kept, 0 generated. */
void dm_codec_mask(const dm_codec *c, const float *mask, float *out)
{
    const dm_model_info *in = &c->info;
    if (in->repr != DM_REPR_SPEC) {
        for (int i = 0; i < in->length; i++)
            out[i] = mask[i] > 0.5f ? 1.0f : 0.0f;
        return;
    }
    const long n = in->length, half = in->n_fft / 2;
    for (int t = 0; t < in->net_length; t++) {
        long start = (long)t * in->hop - half;
        int keep = 1;
        for (long j = 0; keep && j < in->n_fft; j++)
            keep = mask[reflect_index(start + j, n)] > 0.5f;
        out[t] = keep ? 1.0f : 0.0f;
    }
}
