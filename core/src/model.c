/* Models: a U-Net plus what turns it into a sound generator (representation,
 * audio format, noise schedule, prediction target, class names), and their
 * files (docs/model-format.md, section "Model keys"). */
#include "internal.h"
#include "model_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct dm_model {
    dm_model_info info;
    dm_unet *net;
    dm_schedule sched;
    char (*classes)[DM_NAME_MAX];
};

static const char *const repr_names[DM_REPR_COUNT] = {"wave", "spec"};

const char *dm_repr_name(dm_repr r)
{
    return (unsigned)r < DM_REPR_COUNT ? repr_names[r] : "unknown";
}

int dm_repr_from_name(const char *name, dm_repr *out)
{
    for (int i = 0; name && i < DM_REPR_COUNT; i++)
        if (strcmp(name, repr_names[i]) == 0) {
            *out = (dm_repr)i;
            return 0;
        }
    return -1;
}

dm_model_params dm_model_default_params(void)
{
    dm_model_params p;
    memset(&p, 0, sizeof p);
    p.unet = dm_unet_default_config();
    p.repr = DM_REPR_WAVE;
    p.sample_rate = 44100;
    p.audio_channels = 1;
    p.length = 16384;
    p.n_fft = 512;
    p.hop = 128;
    p.schedule = DM_SCHEDULE_COSINE;
    p.schedule_shift = 1.0;
    p.timesteps = 1000;
    p.prediction = DM_PREDICT_V;
    p.data_scale = 1.0;
    p.name = "dmaudio";
    return p;
}

/* A name users type: 1..63 bytes of letters, digits and "-_.+", not starting with '.'. */
static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= DM_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == '+'))
            return 0;
    }
    return 1;
}

/* The network's shape for a representation: (channels, length), and the clip length in
 * samples (the requested one for wave; for spec the one whose STFT has net_length frames,
 * net_length being the smallest multiple of mult >= length / hop + 1). */
typedef struct model_shape {
    int length, net_channels, net_length;
} model_shape;

static model_shape shape_of(const dm_model_params *p, int mult)
{
    model_shape s = {p->length, p->audio_channels, p->length};
    if (p->repr == DM_REPR_SPEC) {
        long frames = (long)p->length / p->hop + 1;
        frames = (frames + mult - 1) / mult * mult;
        s.net_channels = 2 * (p->n_fft / 2 + 1) * p->audio_channels;
        s.net_length = (int)frames;
        s.length = (int)((frames - 1) * p->hop);
    }
    return s;
}

static dm_status check_params(const dm_model_params *p, const char *where, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if ((unsigned)p->repr >= DM_REPR_COUNT)
        return dm_fail(err, bad, "%s: unknown representation %d", where, (int)p->repr);
    if (p->sample_rate < 1000 || p->sample_rate > 384000)
        return dm_fail(err, bad, "%s: sample rate %d is not in 1000..384000", where,
                       p->sample_rate);
    if (p->audio_channels < 1 || p->audio_channels > 2)
        return dm_fail(err, bad, "%s: %d audio channels (1 or 2 supported)", where,
                       p->audio_channels);
    if (p->length < 16 || p->length > (1 << 22))
        return dm_fail(err, bad, "%s: length %d samples is not in 16..%d", where, p->length,
                       1 << 22);
    if ((unsigned)p->schedule >= DM_SCHEDULE_COUNT)
        return dm_fail(err, bad, "%s: unknown schedule %d", where, (int)p->schedule);
    if (p->timesteps < 2 || p->timesteps > DM_MAX_TIMESTEPS)
        return dm_fail(err, bad, "%s: %d timesteps is not in 2..%d", where, p->timesteps,
                       DM_MAX_TIMESTEPS);
    if (!(p->schedule_shift >= 1.0 / 64 && p->schedule_shift <= 64.0))
        return dm_fail(err, bad, "%s: schedule shift %g is not in 1/64..64", where,
                       p->schedule_shift);
    if ((unsigned)p->prediction >= DM_PREDICTION_COUNT)
        return dm_fail(err, bad, "%s: unknown prediction target %d", where, (int)p->prediction);
    if (!(p->data_scale >= 1e-3 && p->data_scale <= 1e3))
        return dm_fail(err, bad, "%s: data scale %g is not in 0.001..1000", where, p->data_scale);
    if (p->n_classes < 0 || p->n_classes > DM_MAX_CLASSES)
        return dm_fail(err, bad, "%s: %d classes is not in 0..%d", where, p->n_classes,
                       DM_MAX_CLASSES);
    if (p->n_classes > 0 && !p->class_names)
        return dm_fail(err, bad, "%s: %d classes but no class names", where, p->n_classes);
    for (int i = 0; i < p->n_classes; i++) {
        if (!valid_name(p->class_names[i]))
            return dm_fail(err, bad, "%s: class name %d is empty, too long or has characters "
                                     "other than letters, digits and -_.+", where, i);
        for (int j = 0; j < i; j++)
            if (strcmp(p->class_names[i], p->class_names[j]) == 0)
                return dm_fail(err, bad, "%s: class name '%s' appears twice", where,
                               p->class_names[i]);
    }
    if (!valid_name(p->name ? p->name : "dmaudio"))
        return dm_fail(err, bad, "%s: model name is empty, too long or has characters other "
                                 "than letters, digits and -_.+", where);
    if (p->repr == DM_REPR_SPEC) {
        if (p->n_fft < 16 || p->n_fft > 8192 || (p->n_fft & (p->n_fft - 1)))
            return dm_fail(err, bad, "%s: spec n_fft %d is not a power of two in 16..8192", where,
                           p->n_fft);
        if (p->hop < 1 || p->hop > p->n_fft / 2 || p->n_fft % p->hop)
            return dm_fail(err, bad, "%s: spec hop %d is not in 1..%d and a divisor of n_fft %d",
                           where, p->hop, p->n_fft / 2, p->n_fft);
        int channels = 2 * (p->n_fft / 2 + 1) * p->audio_channels;
        if (channels > 4096)
            return dm_fail(err, bad, "%s: spec n_fft %d with %d audio channel(s) gives %d network "
                                     "channels, more than the U-Net's 4096", where, p->n_fft,
                           p->audio_channels, channels);
    }
    dm_unet_config u = p->unet;
    u.in_channels = u.out_channels = p->repr == DM_REPR_SPEC
                                         ? 2 * (p->n_fft / 2 + 1) * p->audio_channels
                                         : p->audio_channels;
    u.n_classes = p->n_classes;
    dm_status st = dm_unet_config_check(&u, err);
    if (st != DM_OK)
        return st;
    int mult = dm_unet_length_multiple(&u);
    if (p->repr == DM_REPR_WAVE && p->length % mult)
        return dm_fail(err, bad, "%s: length %d is not a multiple of %d (the network's factors)",
                       where, p->length, mult);
    if (p->repr == DM_REPR_SPEC) {
        model_shape s = shape_of(p, mult);
        if (s.length < 16 || s.length > (1 << 22))
            return dm_fail(err, bad, "%s: length %d samples gives %d frames of hop %d (a multiple "
                                     "of %d), %d samples, not in 16..%d", where, p->length,
                           s.net_length, p->hop, mult, s.length, 1 << 22);
    }
    return DM_OK;
}

/* The network of a model: the configuration with the channels the representation needs. */
static dm_unet_config net_config(const dm_model_params *p)
{
    dm_unet_config u = p->unet;
    u.in_channels = u.out_channels = shape_of(p, 1).net_channels;
    u.n_classes = p->n_classes;
    return u;
}

/* init 0: the weights are left at 0, for a caller that fills them. */
static dm_status model_create(const dm_model_params *p, uint64_t seed, int init, dm_model **out,
                              dm_error *err)
{
    if (!out || !p)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_model_create: missing argument");
    *out = NULL;
    dm_status st = check_params(p, "model", err);
    if (st != DM_OK)
        return st;
    dm_model *m = calloc(1, sizeof *m);
    if (!m)
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "model: out of memory");
    dm_unet_config u = net_config(p);
    model_shape shape = shape_of(p, dm_unet_length_multiple(&u));
    st = init ? dm_unet_create(&u, seed, &m->net, err) : dm_unet_create_zeroed(&u, &m->net, err);
    if (st != DM_OK ||
        (st = dm_schedule_init(&m->sched, p->schedule, p->timesteps, err)) != DM_OK ||
        (p->schedule_shift != 1.0 &&
         (st = dm_schedule_shift(&m->sched, p->schedule_shift, err)) != DM_OK)) {
        dm_model_free(m);
        return st;
    }
    if (p->n_classes > 0) {
        m->classes = calloc((size_t)p->n_classes, sizeof *m->classes);
        if (!m->classes) {
            dm_model_free(m);
            return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "model: out of memory");
        }
        for (int i = 0; i < p->n_classes; i++)
            snprintf(m->classes[i], DM_NAME_MAX, "%s", p->class_names[i]);
    }
    dm_model_info *in = &m->info;
    in->repr = p->repr;
    in->sample_rate = p->sample_rate;
    in->audio_channels = p->audio_channels;
    in->length = shape.length;
    in->net_channels = shape.net_channels;
    in->net_length = shape.net_length;
    in->n_fft = p->n_fft;
    in->hop = p->hop;
    in->schedule = p->schedule;
    in->schedule_shift = p->schedule_shift;
    in->timesteps = p->timesteps;
    in->prediction = p->prediction;
    in->data_scale = p->data_scale;
    in->n_classes = p->n_classes;
    in->n_params = dm_unet_n_params(m->net);
    snprintf(in->name, sizeof in->name, "%s", p->name ? p->name : "dmaudio");
    dm_model_update_checksum(m);
    *out = m;
    return DM_OK;
}

dm_status dm_model_create(const dm_model_params *p, uint64_t seed, dm_model **out, dm_error *err)
{
    return model_create(p, seed, 1, out, err);
}

void dm_model_free(dm_model *m)
{
    if (!m)
        return;
    dm_unet_free(m->net);
    free(m->classes);
    free(m);
}

dm_model *dm_model_clone(const dm_model *m)
{
    dm_model_params p = dm_model_default_params();
    const dm_model_info *in = &m->info;
    p.unet = *dm_unet_get_config(m->net);
    p.repr = in->repr, p.sample_rate = in->sample_rate, p.audio_channels = in->audio_channels;
    p.length = in->length, p.n_fft = in->n_fft, p.hop = in->hop, p.schedule = in->schedule;
    p.timesteps = in->timesteps, p.prediction = in->prediction, p.n_classes = in->n_classes;
    p.schedule_shift = in->schedule_shift;
    p.data_scale = in->data_scale;
    p.name = in->name;
    const char **names = NULL;
    if (in->n_classes) {
        names = malloc((size_t)in->n_classes * sizeof *names);
        if (!names)
            return NULL;
        for (int i = 0; i < in->n_classes; i++)
            names[i] = m->classes[i];
    }
    p.class_names = names;
    dm_model *c = NULL;
    if (model_create(&p, 0, 0, &c, NULL) == DM_OK) {
        memcpy(dm_unet_params(c->net), dm_unet_params_const(m->net), in->n_params * sizeof(float));
        c->info.checksum = m->info.checksum;
    }
    free(names);
    return c;
}

dm_model_info dm_model_get_info(const dm_model *m) { return m->info; }
dm_unet *dm_model_unet(dm_model *m) { return m->net; }
const dm_unet *dm_model_unet_const(const dm_model *m) { return m->net; }
const dm_schedule *dm_model_schedule(const dm_model *m) { return &m->sched; }

const char *dm_model_class_name(const dm_model *m, int cls)
{
    return cls >= 0 && cls < m->info.n_classes ? m->classes[cls] : NULL;
}

int dm_model_find_class(const dm_model *m, const char *name)
{
    for (int i = 0; name && i < m->info.n_classes; i++)
        if (strcmp(m->classes[i], name) == 0)
            return i;
    return -1;
}

void dm_model_update_checksum(dm_model *m)
{
    const float *w = dm_unet_params_const(m->net);
    size_t bytes = m->info.n_params * sizeof(float);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < bytes; off += (1u << 30)) {
        size_t chunk = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        crc = crc32(crc, (const Bytef *)w + off, (uInt)chunk);
    }
    m->info.checksum = (uint32_t)crc;
}

/* ---- files ---- */

static int64_t *ints_of(const int *v, int n, int64_t *buf)
{
    for (int i = 0; i < n; i++)
        buf[i] = v[i];
    return buf;
}

dm_status dm_model_write_keys(const dm_model *m, dm_file_writer *w, const char *kind)
{
    const dm_model_info *in = &m->info;
    const dm_unet_config *u = dm_unet_get_config(m->net);
    int64_t buf[DM_MAX_LEVELS];
    char creator[64];
    snprintf(creator, sizeof creator, "dmaudio %s", dm_version());
    dm_status st = DM_OK;
#define W(call)                                                                                 \
    do {                                                                                        \
        if (st == DM_OK)                                                                        \
            st = (call);                                                                        \
    } while (0)
    W(dm_file_writer_string(w, "dmaudio.kind", kind));
    W(dm_file_writer_string(w, "dmaudio.creator", creator));
    W(dm_file_writer_string(w, "dmaudio.name", in->name));
    W(dm_file_writer_string(w, "dmaudio.repr", dm_repr_name(in->repr)));
    W(dm_file_writer_int(w, "dmaudio.sample_rate", in->sample_rate));
    W(dm_file_writer_int(w, "dmaudio.audio_channels", in->audio_channels));
    W(dm_file_writer_int(w, "dmaudio.length", in->length));
    W(dm_file_writer_int(w, "dmaudio.spec.n_fft", in->n_fft));
    W(dm_file_writer_int(w, "dmaudio.spec.hop", in->hop));
    if (in->repr == DM_REPR_SPEC)
        W(dm_file_writer_float(w, "dmaudio.spec.compression", DM_SPEC_COMPRESSION));
    W(dm_file_writer_string(w, "dmaudio.schedule", dm_schedule_name(in->schedule)));
    W(dm_file_writer_int(w, "dmaudio.timesteps", in->timesteps));
    W(dm_file_writer_string(w, "dmaudio.prediction", dm_prediction_name(in->prediction)));
    W(dm_file_writer_float(w, "dmaudio.data_scale", in->data_scale));
    if (in->schedule_shift != 1.0) /* absent: 1, as in files written before the key existed */
        W(dm_file_writer_float(w, "dmaudio.schedule_shift", in->schedule_shift));
    if (in->n_classes > 0) {
        const char *names[DM_MAX_CLASSES];
        for (int i = 0; i < in->n_classes; i++)
            names[i] = m->classes[i];
        W(dm_file_writer_strings(w, "dmaudio.classes", names, (size_t)in->n_classes));
    }
    W(dm_file_writer_ints(w, "dmaudio.unet.channels", ints_of(u->channels, u->n_levels, buf),
                          (size_t)u->n_levels));
    if (u->n_levels > 1)
        W(dm_file_writer_ints(w, "dmaudio.unet.factors", ints_of(u->factors, u->n_levels - 1, buf),
                              (size_t)u->n_levels - 1));
    W(dm_file_writer_ints(w, "dmaudio.unet.attention", ints_of(u->attention, u->n_levels, buf),
                          (size_t)u->n_levels));
    W(dm_file_writer_int(w, "dmaudio.unet.blocks", u->blocks));
    W(dm_file_writer_int(w, "dmaudio.unet.heads", u->heads));
    W(dm_file_writer_int(w, "dmaudio.unet.groups", u->groups));
    W(dm_file_writer_int(w, "dmaudio.unet.kernel", u->kernel));
    if (u->positions > 0) /* absent: 0, as in files written before the key existed */
        W(dm_file_writer_int(w, "dmaudio.unet.positions", u->positions));
#undef W
    return st;
}

dm_status dm_model_write_tensors(const dm_model *m, dm_file_writer *w, const char *prefix,
                                 const float *weights, int dtype)
{
    for (int i = 0; i < dm_unet_n_tensors(m->net); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(m->net, i, &ti);
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, ti.name);
        int64_t dims[3] = {ti.dims[0], ti.dims[1], ti.dims[2]};
        dm_status st = dm_file_writer_tensor(w, name, ti.ndim, dims, dtype, weights + ti.offset);
        if (st != DM_OK)
            return st;
    }
    return DM_OK;
}

dm_status dm_model_save(const dm_model *m, const char *path, int float16, dm_error *err)
{
    dm_file_writer *w;
    dm_status st = dm_file_writer_create(&w, err);
    if (st != DM_OK)
        return st;
    st = dm_model_write_keys(m, w, "model");
    if (st == DM_OK)
        st = dm_model_write_tensors(m, w, "", dm_unet_params_const(m->net), float16 ? 1 : 0);
    if (st != DM_OK)
        dm_fail(err, st, "%s: cannot build the model file (%s)", path, dm_status_message(st));
    else
        st = dm_file_writer_save(w, path, err);
    dm_file_writer_free(w);
    return st;
}

/* An integer key within [lo, hi]. */
static dm_status get_int(const dm_file *f, const char *path, const char *key, long lo, long hi,
                         int *out, dm_error *err)
{
    int64_t v;
    dm_error e;
    if (dm_file_get_int(f, key, &v, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    if (v < lo || v > hi)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s = %lld is not in %ld..%ld", path, key,
                       (long long)v, lo, hi);
    *out = (int)v;
    return DM_OK;
}

/* A string key, which parse() must recognise (it returns 0 on success). */
static dm_status get_enum(const dm_file *f, const char *path, const char *key,
                          int (*parse)(const char *, int *), int *out, dm_error *err)
{
    const char *s;
    dm_error e;
    if (dm_file_get_string(f, key, &s, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    if (parse(s, out) != 0)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s = '%.40s' is not a known value", path, key, s);
    return DM_OK;
}

static int parse_repr(const char *s, int *out)
{
    dm_repr r;
    int rc = dm_repr_from_name(s, &r);
    *out = (int)r;
    return rc;
}

static int parse_schedule(const char *s, int *out)
{
    dm_schedule_kind k;
    int rc = dm_schedule_from_name(s, &k);
    *out = (int)k;
    return rc;
}

static int parse_prediction(const char *s, int *out)
{
    dm_prediction p;
    int rc = dm_prediction_from_name(s, &p);
    *out = (int)p;
    return rc;
}

static dm_status get_int_list(const dm_file *f, const char *path, const char *key, int n, long lo,
                              long hi, int *out, dm_error *err)
{
    const int64_t *v;
    size_t count;
    dm_error e;
    if (dm_file_get_ints(f, key, &v, &count, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    if (count != (size_t)n)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s has %zu values, expected %d", path, key, count,
                       n);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > hi)
            return dm_fail(err, DM_ERR_FORMAT, "%s: %s[%d] = %lld is not in %ld..%ld", path, key,
                           i, (long long)v[i], lo, hi);
        out[i] = (int)v[i];
    }
    return DM_OK;
}

dm_status dm_model_from_keys(const dm_file *f, const char *path, dm_model **out, dm_error *err)
{
    dm_model_params p = dm_model_default_params();
    dm_unet_config *u = &p.unet;
    memset(u, 0, sizeof *u);
    const char *name = NULL, *const *classes = NULL;
    dm_error e;
    dm_status st = DM_OK;
#define R(call)                                                                                 \
    do {                                                                                        \
        if (st == DM_OK)                                                                        \
            st = (call);                                                                        \
    } while (0)
    if (dm_file_get_string(f, "dmaudio.name", &name, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    p.name = name;
    int repr = 0, schedule = 0, prediction = 0;
    R(get_enum(f, path, "dmaudio.repr", parse_repr, &repr, err));
    R(get_int(f, path, "dmaudio.sample_rate", 1000, 384000, &p.sample_rate, err));
    R(get_int(f, path, "dmaudio.audio_channels", 1, 2, &p.audio_channels, err));
    R(get_int(f, path, "dmaudio.length", 16, 1 << 22, &p.length, err));
    R(get_int(f, path, "dmaudio.spec.n_fft", 2, 1 << 16, &p.n_fft, err));
    R(get_int(f, path, "dmaudio.spec.hop", 1, 1 << 16, &p.hop, err));
    R(get_enum(f, path, "dmaudio.schedule", parse_schedule, &schedule, err));
    R(get_int(f, path, "dmaudio.timesteps", 2, DM_MAX_TIMESTEPS, &p.timesteps, err));
    R(get_enum(f, path, "dmaudio.prediction", parse_prediction, &prediction, err));
    if (st != DM_OK)
        return st;
    if (dm_file_get_float(f, "dmaudio.data_scale", &p.data_scale, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    if (dm_file_has(f, "dmaudio.schedule_shift") &&
        dm_file_get_float(f, "dmaudio.schedule_shift", &p.schedule_shift, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    p.repr = (dm_repr)repr;
    if (p.repr == DM_REPR_SPEC) { /* the compression exponent this library decodes with */
        double a;
        if (dm_file_get_float(f, "dmaudio.spec.compression", &a, &e) != DM_OK)
            return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
        if (a != DM_SPEC_COMPRESSION)
            return dm_fail(err, DM_ERR_UNSUPPORTED, "%s: dmaudio.spec.compression = %g; this "
                                                    "version decodes %g only", path, a,
                           DM_SPEC_COMPRESSION);
    }
    p.schedule = (dm_schedule_kind)schedule;
    p.prediction = (dm_prediction)prediction;
    if (dm_file_has(f, "dmaudio.classes")) {
        size_t n;
        if (dm_file_get_strings(f, "dmaudio.classes", &classes, &n, &e) != DM_OK)
            return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
        if (n < 1 || n > DM_MAX_CLASSES)
            return dm_fail(err, DM_ERR_FORMAT, "%s: %zu classes is not in 1..%d", path, n,
                           DM_MAX_CLASSES);
        p.n_classes = (int)n;
        p.class_names = classes;
    }
    const int64_t *levels;
    size_t nl;
    if (dm_file_get_ints(f, "dmaudio.unet.channels", &levels, &nl, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
    if (nl < 1 || nl > DM_MAX_LEVELS)
        return dm_fail(err, DM_ERR_FORMAT, "%s: dmaudio.unet.channels has %zu levels, not 1..%d",
                       path, nl, DM_MAX_LEVELS);
    u->n_levels = (int)nl;
    R(get_int_list(f, path, "dmaudio.unet.channels", u->n_levels, 1, 8192, u->channels, err));
    if (u->n_levels > 1)
        R(get_int_list(f, path, "dmaudio.unet.factors", u->n_levels - 1, 2, 64, u->factors, err));
    R(get_int_list(f, path, "dmaudio.unet.attention", u->n_levels, 0, 1, u->attention, err));
    R(get_int(f, path, "dmaudio.unet.blocks", 1, 16, &u->blocks, err));
    R(get_int(f, path, "dmaudio.unet.heads", 1, 8192, &u->heads, err));
    R(get_int(f, path, "dmaudio.unet.groups", 1, 8192, &u->groups, err));
    R(get_int(f, path, "dmaudio.unet.kernel", 1, 63, &u->kernel, err));
    u->positions = 0;
    if (dm_file_has(f, "dmaudio.unet.positions"))
        R(get_int(f, path, "dmaudio.unet.positions", 2, 256, &u->positions, err));
#undef R
    if (st != DM_OK)
        return st;
    /* A few bytes of keys can describe a network of billions of parameters: the file must
     * hold that many values before the network is allocated and initialised. */
    if (check_params(&p, "model", &e) == DM_OK) {
        const size_t need = dm_unet_config_n_params((dm_unet_config[]){net_config(&p)});
        int64_t have = 0;
        for (int i = 0; i < dm_file_n_tensors(f); i++) {
            const char *tn;
            int ndim, dtype;
            int64_t dims[4], count = 1;
            dm_file_tensor_info(f, i, &tn, &ndim, dims, &dtype);
            for (int d = 0; d < ndim; d++)
                count *= dims[d];
            have += count;
        }
        if ((int64_t)need > have)
            return dm_fail(err, DM_ERR_FORMAT, "%s: the network the keys describe has %zu "
                                               "parameters; the file's tensors hold %lld values",
                           path, need, (long long)have);
    }
    st = model_create(&p, 0, 0, out, &e); /* the weights come from the file */
    if (st != DM_OK)
        return dm_fail(err, st == DM_ERR_INVALID_ARGUMENT ? DM_ERR_FORMAT : st, "%s: %s", path,
                       e.message);
    if (dm_model_get_info(*out).length != p.length) { /* spec: not (frames - 1) * hop */
        int want = dm_model_get_info(*out).length;
        dm_model_free(*out);
        *out = NULL;
        return dm_fail(err, DM_ERR_FORMAT, "%s: dmaudio.length = %d is not a spec clip length "
                                           "((frames - 1) x hop with whole frames; %d would be)",
                       path, p.length, want);
    }
    return DM_OK;
}

dm_status dm_model_read_tensors(const dm_model *m, const dm_file *f, const char *path,
                                const char *prefix, float *dst, dm_error *err)
{
    for (int i = 0; i < dm_unet_n_tensors(m->net); i++) {
        dm_tensor_info ti;
        dm_unet_tensor(m->net, i, &ti);
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, ti.name);
        int idx = dm_file_find_tensor(f, name);
        if (idx < 0)
            return dm_fail(err, DM_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
        const char *tn;
        int ndim, dtype;
        int64_t dims[4];
        dm_file_tensor_info(f, idx, &tn, &ndim, dims, &dtype);
        int same = ndim == ti.ndim;
        for (int d = 0; same && d < ndim; d++)
            same = dims[d] == ti.dims[d];
        if (!same)
            return dm_fail(err, DM_ERR_FORMAT, "%s: tensor '%s' has the wrong shape for the "
                                               "network the file describes", path, name);
        dm_error e;
        if (dm_file_read_tensor(f, name, dst + ti.offset, ti.size, &e) != DM_OK)
            return dm_fail(err, DM_ERR_FORMAT, "%s: %s", path, e.message);
        for (size_t j = 0; j < ti.size; j++)
            if (!isfinite(dst[ti.offset + j]))
                return dm_fail(err, DM_ERR_FORMAT, "%s: tensor '%s' holds a non-finite value",
                               path, name);
    }
    return DM_OK;
}

dm_status dm_model_from_container(const dm_file *f, const char *path, dm_model **out,
                                  dm_error *err)
{
    *out = NULL;
    const char *kind;
    dm_error e;
    if (dm_file_get_string(f, "dmaudio.kind", &kind, &e) != DM_OK)
        return dm_fail(err, DM_ERR_FORMAT, "%s: not a dmaudio model (%s)", path, e.message);
    if (strcmp(kind, "model") != 0 && strcmp(kind, "checkpoint") != 0)
        return dm_fail(err, DM_ERR_FORMAT, "%s: dmaudio.kind '%.40s' is neither model nor "
                                           "checkpoint", path, kind);
    const char *prefix = strcmp(kind, "checkpoint") == 0 ? "ema." : "";
    dm_model *m;
    dm_status st = dm_model_from_keys(f, path, &m, err);
    if (st != DM_OK)
        return st;
    st = dm_model_read_tensors(m, f, path, prefix, dm_unet_params(m->net), err);
    /* a model file holds exactly the network's tensors */
    if (st == DM_OK && !*prefix && dm_file_n_tensors(f) != dm_unet_n_tensors(m->net))
        st = dm_fail(err, DM_ERR_FORMAT, "%s: %d tensors, the network has %d", path,
                     dm_file_n_tensors(f), dm_unet_n_tensors(m->net));
    if (st != DM_OK) {
        dm_model_free(m);
        return st;
    }
    dm_model_update_checksum(m);
    *out = m;
    return DM_OK;
}

dm_status dm_model_load(const char *path, dm_model **out, dm_error *err)
{
    if (!out || !path)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_model_load: missing argument");
    *out = NULL;
    dm_file *f;
    dm_status st = dm_file_read(path, &f, err);
    if (st != DM_OK)
        return st;
    st = dm_model_from_container(f, path, out, err);
    dm_file_free(f);
    return st;
}
