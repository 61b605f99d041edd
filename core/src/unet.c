/* The 1-D U-Net of docs/architecture.md.
 *
 * One builder walks the architecture and, for a given input length, (1) lays
 * out the named parameter tensors in one contiguous buffer and (2) records a
 * tape of layer operations over activation buffers. dm_unet_create runs it to
 * lay out and initialise the weights; dm_unet_state_create runs it again to
 * get the tape and buffer sizes for its length, and allocates everything a pass
 * needs (for inference only, buffers whose lives do not overlap share memory).
 * Forward walks the tape; backward walks it in reverse, each layer
 * adding into the gradients of its inputs, so buffers read by several layers
 * (skip connections, the shared conditioning vector) need no special care. */
#include "internal.h"
#include "layers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

dm_unet_config dm_unet_default_config(void)
{
    dm_unet_config c;
    memset(&c, 0, sizeof c);
    c.in_channels = 1;
    c.out_channels = 1;
    c.n_levels = 3;
    c.channels[0] = 32, c.channels[1] = 64, c.channels[2] = 128;
    c.factors[0] = 4, c.factors[1] = 4;
    c.blocks = 1;
    c.attention[2] = 1;
    c.heads = 4;
    c.groups = 4;
    c.kernel = 5;
    c.n_classes = 0;
    return c;
}

dm_status dm_unet_config_check(const dm_unet_config *c, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!c)
        return dm_fail(err, bad, "U-Net configuration: missing");
    if (c->n_levels < 1 || c->n_levels > DM_MAX_LEVELS)
        return dm_fail(err, bad, "U-Net configuration: n_levels %d is not in 1..%d", c->n_levels,
                       DM_MAX_LEVELS);
    if (c->in_channels < 1 || c->in_channels > 4096)
        return dm_fail(err, bad, "U-Net configuration: in_channels %d is not in 1..4096",
                       c->in_channels);
    if (c->out_channels < 1 || c->out_channels > 4096)
        return dm_fail(err, bad, "U-Net configuration: out_channels %d is not in 1..4096",
                       c->out_channels);
    if (c->groups < 1 || c->heads < 1)
        return dm_fail(err, bad, "U-Net configuration: groups %d and heads %d must be >= 1",
                       c->groups, c->heads);
    if (c->blocks < 1 || c->blocks > 16)
        return dm_fail(err, bad, "U-Net configuration: blocks %d is not in 1..16", c->blocks);
    if (c->kernel < 1 || c->kernel > 63 || c->kernel % 2 == 0)
        return dm_fail(err, bad, "U-Net configuration: kernel %d must be odd and in 1..63",
                       c->kernel);
    if (c->positions < 0 || c->positions > 256 || c->positions % 2)
        return dm_fail(err, bad, "U-Net configuration: positions %d must be even, 0..256",
                       c->positions);
    if (c->n_classes < 0 || c->n_classes > 65535)
        return dm_fail(err, bad, "U-Net configuration: n_classes %d is not in 0..65535",
                       c->n_classes);
    for (int l = 0; l < c->n_levels; l++) {
        int ch = c->channels[l];
        if (ch < 1 || ch > 8192)
            return dm_fail(err, bad, "U-Net configuration: channels[%d] = %d is not in 1..8192", l,
                           ch);
        if (ch % c->groups)
            return dm_fail(err, bad,
                           "U-Net configuration: channels[%d] = %d is not a multiple of groups %d",
                           l, ch, c->groups);
        if (c->attention[l] != 0 && c->attention[l] != 1)
            return dm_fail(err, bad, "U-Net configuration: attention[%d] must be 0 or 1", l);
        if (c->attention[l] && ch % c->heads)
            return dm_fail(err, bad,
                           "U-Net configuration: channels[%d] = %d is not a multiple of heads %d",
                           l, ch, c->heads);
        if (l < c->n_levels - 1 && (c->factors[l] < 2 || c->factors[l] > 64 || c->factors[l] % 2))
            return dm_fail(err, bad, "U-Net configuration: factors[%d] = %d must be even, 2..64",
                           l, c->factors[l]);
    }
    if (c->channels[0] % 2)
        return dm_fail(err, bad, "U-Net configuration: channels[0] = %d must be even",
                       c->channels[0]);
    if (dm_unet_length_multiple(c) > (1 << 20))
        return dm_fail(err, bad, "U-Net configuration: the product of the factors is too large");
    return DM_OK;
}

int dm_unet_length_multiple(const dm_unet_config *c)
{
    long m = 1;
    for (int l = 0; l + 1 < c->n_levels && l < DM_MAX_LEVELS; l++) {
        m *= c->factors[l] > 0 ? c->factors[l] : 1;
        if (m > (1 << 30))
            return 1 << 30;
    }
    return (int)m;
}

/* ------------------------------------------------------------------------ */
/* The builder: parameter table + op tape                                    */
/* ------------------------------------------------------------------------ */

enum init_kind { INIT_UNIFORM, INIT_ONE, INIT_ZERO, INIT_NORMAL };

typedef struct ptensor {
    char name[64];
    int ndim, dims[3];
    size_t off, n;
    int init;
    int fan_in;
} ptensor;

typedef enum op_kind {
    OP_TEMB, OP_LINEAR, OP_SILU, OP_CEMB, OP_CONV, OP_GN, OP_FILM,
    OP_ADD, OP_CONCAT, OP_UPSAMPLE, OP_ATTN, OP_POS,
    OP_GN_ACT,              /* inference: groupnorm [+ film (in2)] + silu, fused  */
    OP_NOP                  /* inference: an op fused into the one before         */
} op_kind;

typedef struct op {
    op_kind kind;
    int in, in2, out, aux;  /* activation buffer ids, -1 when unused            */
    size_t w, b;            /* parameter offsets (weight/gamma/table, bias/beta) */
    dm_conv1d_shape conv;   /* OP_CONV (B set per pass)                         */
    int C, C2, L, G, H, f;  /* other shapes                                     */
} op;

typedef struct abuf {
    int C, L;               /* per batch item: C * L floats                     */
    size_t off;             /* in the arena (max_batch items)                   */
} abuf;

typedef struct builder {
    const dm_unet_config *cfg;
    int E;                  /* time embedding width                             */
    ptensor *t;
    int nt, cap_t;
    size_t n_params;
    op *ops;
    int nops, cap_ops;
    abuf *bufs;
    int nbufs, cap_bufs;
    int oom;
    size_t scratch;         /* floats of scratch the largest op needs           */
    size_t fscratch;        /* per thread, the largest conv forward's           */
    size_t attn_scratch;    /* the largest attention's L*L                      */
    int semb;               /* buffer of silu(embedding), read by every block   */
} builder;

static void *grow(void *p, int *cap, int need, size_t elem, int *oom)
{
    if (need <= *cap)
        return p;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(p, (size_t)ncap * elem);
    if (!q) {
        *oom = 1;
        return p;
    }
    *cap = ncap;
    return q;
}

static size_t add_param(builder *bd, const char *prefix, const char *suffix, int init,
                        int fan_in, int ndim, int d0, int d1, int d2)
{
    bd->t = grow(bd->t, &bd->cap_t, bd->nt + 1, sizeof *bd->t, &bd->oom);
    if (bd->oom)
        return 0;
    ptensor *p = &bd->t[bd->nt++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", prefix, suffix);
    p->ndim = ndim;
    p->dims[0] = d0, p->dims[1] = ndim > 1 ? d1 : 1, p->dims[2] = ndim > 2 ? d2 : 1;
    p->n = (size_t)p->dims[0] * p->dims[1] * p->dims[2];
    p->off = bd->n_params;
    p->init = init;
    p->fan_in = fan_in;
    bd->n_params += p->n;
    return p->off;
}

static int new_buf(builder *bd, int C, int L)
{
    bd->bufs = grow(bd->bufs, &bd->cap_bufs, bd->nbufs + 1, sizeof *bd->bufs, &bd->oom);
    if (bd->oom)
        return 0;
    bd->bufs[bd->nbufs].C = C;
    bd->bufs[bd->nbufs].L = L;
    bd->bufs[bd->nbufs].off = 0;
    return bd->nbufs++;
}

static op *new_op(builder *bd, op_kind kind, int in, int in2)
{
    bd->ops = grow(bd->ops, &bd->cap_ops, bd->nops + 1, sizeof *bd->ops, &bd->oom);
    if (bd->oom)
        return NULL;
    op *o = &bd->ops[bd->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->in = in, o->in2 = in2, o->out = -1, o->aux = -1;
    return o;
}

static void need_scratch(builder *bd, size_t n)
{
    if (n > bd->scratch)
        bd->scratch = n;
}

/* The layers, as the architecture document names them. Each returns the id of
 * its output buffer. `zero` marks the layers initialised to zero. */

static int b_conv(builder *bd, const char *name, int in, int cout, int K, int stride, int pad,
                  int zero)
{
    int cin = bd->bufs[in].C, L = bd->bufs[in].L;
    size_t w = add_param(bd, name, "w", zero ? INIT_ZERO : INIT_UNIFORM, cin * K, 3, cout, cin, K);
    size_t b = add_param(bd, name, "b", zero ? INIT_ZERO : INIT_UNIFORM, cin * K, 1, cout, 0, 0);
    op *o = new_op(bd, OP_CONV, in, -1);
    if (!o)
        return 0;
    o->w = w, o->b = b;
    dm_conv1d_shape s = {0, cin, L, cout, dm_conv1d_out_len(L, K, stride, pad, 1), K, stride, pad,
                         1};
    o->conv = s;
    need_scratch(bd, dm_conv1d_scratch(&s));
    if (dm_conv1d_forward_scratch(&s) > bd->fscratch)
        bd->fscratch = dm_conv1d_forward_scratch(&s);
    int out = new_buf(bd, cout, s.Lout);
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_gn(builder *bd, const char *name, int in)
{
    int C = bd->bufs[in].C, L = bd->bufs[in].L;
    size_t g = add_param(bd, name, "g", INIT_ONE, 0, 1, C, 0, 0);
    size_t b = add_param(bd, name, "b", INIT_ZERO, 0, 1, C, 0, 0);
    op *o = new_op(bd, OP_GN, in, -1);
    if (!o)
        return 0;
    o->w = g, o->b = b, o->C = C, o->L = L, o->G = bd->cfg->groups;
    int aux = new_buf(bd, 2 * bd->cfg->groups, 1);
    int out = new_buf(bd, C, L);
    bd->ops[bd->nops - 1].aux = aux;
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_unary(builder *bd, op_kind kind, int in)
{
    op *o = new_op(bd, kind, in, -1);
    if (!o)
        return 0;
    int out = new_buf(bd, bd->bufs[in].C, bd->bufs[in].L);
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_linear(builder *bd, const char *name, int in, int OUT)
{
    int IN = bd->bufs[in].C;
    size_t w = add_param(bd, name, "w", INIT_UNIFORM, IN, 2, OUT, IN, 0);
    size_t b = add_param(bd, name, "b", INIT_UNIFORM, IN, 1, OUT, 0, 0);
    op *o = new_op(bd, OP_LINEAR, in, -1);
    if (!o)
        return 0;
    o->w = w, o->b = b, o->C = IN, o->C2 = OUT;
    int out = new_buf(bd, OUT, 1);
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_binary(builder *bd, op_kind kind, int a, int b)
{
    op *o = new_op(bd, kind, a, b);
    if (!o)
        return 0;
    int C = bd->bufs[a].C, L = bd->bufs[a].L;
    o->C = C, o->L = L;
    if (kind == OP_CONCAT)
        o->C2 = bd->bufs[b].C;
    int out = new_buf(bd, kind == OP_CONCAT ? C + bd->bufs[b].C : C, L);
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_upsample(builder *bd, int in, int f)
{
    op *o = new_op(bd, OP_UPSAMPLE, in, -1);
    if (!o)
        return 0;
    o->C = bd->bufs[in].C, o->L = bd->bufs[in].L, o->f = f;
    int out = new_buf(bd, o->C, o->L * f);
    bd->ops[bd->nops - 1].out = out;
    return out;
}

static int b_resblock(builder *bd, const char *P, int in, int cout)
{
    char name[48];
    const int K = bd->cfg->kernel;
    int cin = bd->bufs[in].C;
    snprintf(name, sizeof name, "%s.gn1", P);
    int h = b_gn(bd, name, in);
    h = b_unary(bd, OP_SILU, h);
    snprintf(name, sizeof name, "%s.conv1", P);
    h = b_conv(bd, name, h, cout, K, 1, K / 2, 0);
    snprintf(name, sizeof name, "%s.emb", P);
    int m = b_linear(bd, name, bd->semb, 2 * cout);
    snprintf(name, sizeof name, "%s.gn2", P);
    h = b_gn(bd, name, h);
    h = b_binary(bd, OP_FILM, h, m);
    h = b_unary(bd, OP_SILU, h);
    snprintf(name, sizeof name, "%s.conv2", P);
    h = b_conv(bd, name, h, cout, K, 1, K / 2, 1);
    int skip = in;
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.skip", P);
        skip = b_conv(bd, name, in, cout, 1, 1, 0, 0);
    }
    return b_binary(bd, OP_ADD, skip, h);
}

static int b_attnblock(builder *bd, const char *P, int in)
{
    char name[48];
    int C = bd->bufs[in].C, L = bd->bufs[in].L;
    snprintf(name, sizeof name, "%s.gn", P);
    int h = b_gn(bd, name, in);
    snprintf(name, sizeof name, "%s.qkv", P);
    h = b_conv(bd, name, h, 3 * C, 1, 1, 0, 0);
    op *o = new_op(bd, OP_ATTN, h, -1);
    if (!o)
        return 0;
    o->C = C, o->L = L, o->H = bd->cfg->heads;
    int aux = new_buf(bd, bd->cfg->heads * L, L);
    int out = new_buf(bd, C, L);
    bd->ops[bd->nops - 1].aux = aux;
    bd->ops[bd->nops - 1].out = out;
    need_scratch(bd, (size_t)L * L);
    if ((size_t)L * L > bd->attn_scratch)
        bd->attn_scratch = (size_t)L * L;
    snprintf(name, sizeof name, "%s.proj", P);
    h = b_conv(bd, name, out, C, 1, 1, 0, 1);
    return b_binary(bd, OP_ADD, in, h);
}

/* Builds the whole network for inputs of `length`. Buffer 0 is the input x,
 * buffer 1 the noise levels t; returns the output buffer. */
static int build(builder *bd, const dm_unet_config *c, int length)
{
    memset(bd, 0, sizeof *bd);
    bd->cfg = c;
    bd->E = 4 * c->channels[0];
    const int K = c->kernel, N = c->n_levels;
    char name[48];

    int x = new_buf(bd, c->in_channels, length);
    int t = new_buf(bd, 1, 1);

    /* conditioning: time embedding, MLP, class embedding */
    op *o = new_op(bd, OP_TEMB, t, -1);
    if (!o)
        return -1;
    o->C = c->channels[0];
    int e = new_buf(bd, c->channels[0], 1);
    bd->ops[bd->nops - 1].out = e;
    e = b_linear(bd, "time.l1", e, bd->E);
    e = b_unary(bd, OP_SILU, e);
    e = b_linear(bd, "time.l2", e, bd->E);
    if (c->n_classes > 0) {
        size_t table = add_param(bd, "class", "emb", INIT_NORMAL, 0, 2, c->n_classes + 1, bd->E, 0);
        o = new_op(bd, OP_CEMB, e, -1);
        if (!o)
            return -1;
        o->w = table, o->C = bd->E;
        int out = new_buf(bd, bd->E, 1);
        bd->ops[bd->nops - 1].out = out;
        e = out;
    }
    bd->semb = b_unary(bd, OP_SILU, e);

    /* position channels: the frame index as sinusoids, joined to the input */
    int xin = x;
    if (c->positions > 0) {
        o = new_op(bd, OP_POS, x, -1);
        if (!o)
            return -1;
        o->C = c->positions, o->L = length;
        int pos = new_buf(bd, c->positions, length);
        bd->ops[bd->nops - 1].out = pos;
        xin = b_binary(bd, OP_CONCAT, x, pos);
    }
    int h = b_conv(bd, "in", xin, c->channels[0], K, 1, K / 2, 0);

    int skips[DM_MAX_LEVELS];
    for (int l = 0; l < N; l++) {
        for (int i = 0; i < c->blocks; i++) {
            snprintf(name, sizeof name, "down%d.res%d", l, i);
            h = b_resblock(bd, name, h, c->channels[l]);
            if (c->attention[l]) {
                snprintf(name, sizeof name, "down%d.attn%d", l, i);
                h = b_attnblock(bd, name, h);
            }
        }
        skips[l] = h;
        if (l < N - 1) {
            int f = c->factors[l];
            snprintf(name, sizeof name, "down%d.down", l);
            h = b_conv(bd, name, h, c->channels[l + 1], 2 * f, f, f / 2, 0);
        }
    }

    h = b_resblock(bd, "mid.res0", h, c->channels[N - 1]);
    if (c->attention[N - 1])
        h = b_attnblock(bd, "mid.attn", h);
    h = b_resblock(bd, "mid.res1", h, c->channels[N - 1]);

    for (int l = N - 1; l >= 0; l--) {
        h = b_binary(bd, OP_CONCAT, h, skips[l]);
        for (int i = 0; i < c->blocks; i++) {
            snprintf(name, sizeof name, "up%d.res%d", l, i);
            h = b_resblock(bd, name, h, c->channels[l]);
            if (c->attention[l]) {
                snprintf(name, sizeof name, "up%d.attn%d", l, i);
                h = b_attnblock(bd, name, h);
            }
        }
        if (l > 0) {
            h = b_upsample(bd, h, c->factors[l - 1]);
            snprintf(name, sizeof name, "up%d.up", l);
            h = b_conv(bd, name, h, c->channels[l - 1], K, 1, K / 2, 0);
        }
    }

    h = b_gn(bd, "out.gn", h);
    h = b_unary(bd, OP_SILU, h);
    h = b_conv(bd, "out", h, c->out_channels, K, 1, K / 2, 1);
    return bd->oom ? -1 : h;
}

static void builder_free(builder *bd)
{
    free(bd->t);
    free(bd->ops);
    free(bd->bufs);
    memset(bd, 0, sizeof *bd);
}

/* ------------------------------------------------------------------------ */
/* The network: configuration and weights                                   */
/* ------------------------------------------------------------------------ */

struct dm_unet {
    dm_unet_config cfg;
    ptensor *tensors;
    int n_tensors;
    size_t n_params;
    float *params;
};

static void init_params(dm_unet *net, uint64_t seed)
{
    for (int i = 0; i < net->n_tensors; i++) {
        const ptensor *p = &net->tensors[i];
        float *w = net->params + p->off;
        switch (p->init) {
        case INIT_ZERO:
            memset(w, 0, p->n * sizeof *w);
            break;
        case INIT_ONE:
            for (size_t j = 0; j < p->n; j++)
                w[j] = 1.0f;
            break;
        case INIT_NORMAL:
            dm_rng_normal(seed, (uint64_t)i, 0, w, p->n);
            break;
        case INIT_UNIFORM: {
            float bound = 1.0f / sqrtf((float)(p->fan_in > 0 ? p->fan_in : 1));
            dm_rng_uniform(seed, (uint64_t)i, 0, w, p->n);
            for (size_t j = 0; j < p->n; j++)
                w[j] = (2.0f * w[j] - 1.0f) * bound;
            break;
        }
        }
    }
}

static dm_status unet_create(const dm_unet_config *cfg, uint64_t seed, int init, dm_unet **out,
                             dm_error *err)
{
    if (!out)
        return dm_fail(err, DM_ERR_INVALID_ARGUMENT, "dm_unet_create: out is NULL");
    *out = NULL;
    dm_status st = dm_unet_config_check(cfg, err);
    if (st != DM_OK)
        return st;
    builder bd;
    if (build(&bd, cfg, dm_unet_length_multiple(cfg)) < 0) {
        builder_free(&bd);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net: out of memory");
    }
    dm_unet *net = calloc(1, sizeof *net);
    float *params = dm_alloc(bd.n_params, sizeof(float));
    if (!net || !params) {
        free(net);
        dm_free(params);
        builder_free(&bd);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net: out of memory for %zu parameters",
                       bd.n_params);
    }
    net->cfg = *cfg;
    net->tensors = bd.t; /* keep the table */
    net->n_tensors = bd.nt;
    net->n_params = bd.n_params;
    net->params = params;
    bd.t = NULL;
    builder_free(&bd);
    if (init)
        init_params(net, seed);
    *out = net;
    return DM_OK;
}

dm_status dm_unet_create(const dm_unet_config *cfg, uint64_t seed, dm_unet **out, dm_error *err)
{
    return unet_create(cfg, seed, 1, out, err);
}

dm_status dm_unet_create_zeroed(const dm_unet_config *cfg, dm_unet **out, dm_error *err)
{
    return unet_create(cfg, 0, 0, out, err);
}

size_t dm_unet_config_n_params(const dm_unet_config *cfg)
{
    if (dm_unet_config_check(cfg, NULL) != DM_OK)
        return 0;
    builder bd;
    size_t n = build(&bd, cfg, dm_unet_length_multiple(cfg)) < 0 ? 0 : bd.n_params;
    builder_free(&bd);
    return n;
}

void dm_unet_free(dm_unet *net)
{
    if (!net)
        return;
    free(net->tensors);
    dm_free(net->params);
    free(net);
}

const dm_unet_config *dm_unet_get_config(const dm_unet *net) { return &net->cfg; }
size_t dm_unet_n_params(const dm_unet *net) { return net->n_params; }
float *dm_unet_params(dm_unet *net) { return net->params; }
const float *dm_unet_params_const(const dm_unet *net) { return net->params; }
int dm_unet_n_tensors(const dm_unet *net) { return net->n_tensors; }

dm_status dm_unet_tensor(const dm_unet *net, int i, dm_tensor_info *info)
{
    if (!net || !info || i < 0 || i >= net->n_tensors)
        return DM_ERR_INVALID_ARGUMENT;
    const ptensor *p = &net->tensors[i];
    info->name = p->name;
    info->ndim = p->ndim;
    memcpy(info->dims, p->dims, sizeof info->dims);
    info->offset = p->off;
    info->size = p->n;
    return DM_OK;
}

int dm_unet_find_tensor(const dm_unet *net, const char *name)
{
    for (int i = 0; name && i < net->n_tensors; i++)
        if (strcmp(net->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static double op_flops(const op *o, const abuf *bufs)
{
    switch (o->kind) {
    case OP_CONV:
        return 2.0 * o->conv.Cout * o->conv.Cin * o->conv.K * o->conv.Lout;
    case OP_LINEAR:
        return 2.0 * o->C * o->C2;
    case OP_ATTN:
        return 4.0 * o->C * (double)o->L * o->L + 5.0 * o->H * (double)o->L * o->L;
    case OP_GN:
        return 7.0 * o->C * o->L;
    case OP_GN_ACT: /* groupnorm, film when in2, silu */
        return (7.0 + (o->in2 >= 0 ? 2.0 : 0.0) + 4.0) * o->C * o->L;
    case OP_SILU:
        return 4.0 * bufs[o->in].C * bufs[o->in].L;
    case OP_FILM:
        return 2.0 * o->C * o->L;
    case OP_ADD:
        return (double)o->C * o->L;
    default:
        return 0.0;
    }
}

double dm_unet_forward_flops(const dm_unet *net, int batch, int length)
{
    builder bd;
    double flops = 0.0;
    if (build(&bd, &net->cfg, length) >= 0)
        for (int i = 0; i < bd.nops; i++)
            flops += op_flops(&bd.ops[i], bd.bufs);
    builder_free(&bd);
    return flops * batch;
}

/* ------------------------------------------------------------------------ */
/* Arena layout                                                              */
/* ------------------------------------------------------------------------ */

/* Floats of a buffer for max_batch items (each item padded to 16 floats), or 0
 * when too large. */
static size_t buf_floats(const abuf *b, int max_batch)
{
    size_t per = (size_t)b->C * (size_t)b->L;
    size_t n = (per + 15) / 16 * 16 * (size_t)max_batch;
    return n > ((size_t)1 << 40) ? 0 : n;
}

/* Training: every buffer has its own place (backward reads them all). Returns
 * the arena's floats, or (size_t)-1 on overflow. */
static size_t plan_all(abuf *bufs, int nbufs, int max_batch)
{
    size_t total = 0;
    for (int i = 0; i < nbufs; i++) {
        size_t n = buf_floats(&bufs[i], max_batch);
        if (n == 0 || total > ((size_t)1 << 40) - n)
            return (size_t)-1;
        bufs[i].off = total;
        total += n;
    }
    return total;
}

/* The ops whose output may overwrite their first input in place: element-wise. */
static int elementwise(op_kind k)
{
    return k == OP_SILU || k == OP_FILM || k == OP_ADD;
}

typedef struct slot {
    size_t off, n;
    int buf;
} slot;

/* Inference: groupnorm followed by silu, or by film then silu, becomes one op when the
 * intermediate results are read by nothing else (the fused kernel computes the same bits). */
static void fuse_inference(builder *bd)
{
    int *readers = calloc((size_t)bd->nbufs, sizeof *readers);
    if (!readers)
        return; /* unfused is correct too */
    for (int j = 0; j < bd->nops; j++) {
        readers[bd->ops[j].in]++;
        if (bd->ops[j].in2 >= 0)
            readers[bd->ops[j].in2]++;
    }
    for (int j = 0; j + 1 < bd->nops; j++) {
        op *g = &bd->ops[j], *n1 = &bd->ops[j + 1];
        if (g->kind != OP_GN || readers[g->out] != 1)
            continue;
        if (n1->kind == OP_SILU && n1->in == g->out) {
            g->kind = OP_GN_ACT, g->aux = -1, g->out = n1->out;
            n1->kind = OP_NOP, n1->in = g->in, n1->out = g->out;
        } else if (j + 2 < bd->nops && n1->kind == OP_FILM && n1->in == g->out &&
                   readers[n1->out] == 1 && bd->ops[j + 2].kind == OP_SILU &&
                   bd->ops[j + 2].in == n1->out) {
            op *n2 = &bd->ops[j + 2];
            g->kind = OP_GN_ACT, g->aux = -1, g->in2 = n1->in2, g->out = n2->out;
            n1->kind = OP_NOP, n1->in = g->in, n1->in2 = -1, n1->out = g->out;
            n2->kind = OP_NOP, n2->in = g->in, n2->out = g->out;
        }
    }
    free(readers);
}

/* Inference: a buffer lives from the op that writes it to the last op that
 * reads it (the output to the end); buffers whose lives do not overlap share
 * memory, placed first-fit, and an element-wise op writes over its input when
 * that input dies there. The attention keeps no probabilities (aux unused).
 * Returns the arena's floats, or (size_t)-1 on overflow or out of memory. */
static size_t plan_inference(builder *bd, int out_buf, int max_batch)
{
    const int nb = bd->nbufs;
    int *first = malloc((size_t)nb * sizeof *first), *last = malloc((size_t)nb * sizeof *last);
    slot *live = malloc(((size_t)nb + 1) * sizeof *live);
    size_t total = (size_t)-1;
    if (!first || !last || !live)
        goto done;
    for (int i = 0; i < nb; i++)
        first[i] = i < 2 ? -1 : -2, last[i] = -2;
    fuse_inference(bd);
    for (int j = 0; j < bd->nops; j++) {
        const op *o = &bd->ops[j];
        if (o->kind == OP_NOP)
            continue;
        first[o->out] = j;
        if (o->aux >= 0 && o->kind != OP_ATTN)
            first[o->aux] = j, last[o->aux] = j;
        last[o->in] = j;
        if (o->in2 >= 0)
            last[o->in2] = j;
    }
    last[out_buf] = bd->nops;
    int nlive = 0;
    total = 0;
    for (int j = -1; j < bd->nops; j++) {
        /* place what op j writes (the inputs x and t before the first op) */
        for (int i = 0; i < nb; i++) {
            if (first[i] != j)
                continue;
            size_t n = buf_floats(&bd->bufs[i], max_batch);
            if (n == 0) {
                total = (size_t)-1;
                goto done;
            }
            if (last[i] < j)
                last[i] = j;
            const op *o = j >= 0 ? &bd->ops[j] : NULL;
            int k = -1;
            if (o && i == o->out && elementwise(o->kind) && last[o->in] == j)
                for (k = 0; k < nlive && live[k].buf != o->in; k++)
                    ;
            if (k >= 0 && k < nlive && live[k].n == n) { /* in place */
                bd->bufs[i].off = live[k].off;
                live[k].buf = i;
                continue;
            }
            /* first fit among the live slots, kept sorted by offset */
            size_t off = 0;
            int at = 0;
            for (; at < nlive; at++) {
                if (off + n <= live[at].off)
                    break;
                if (live[at].off + live[at].n > off)
                    off = live[at].off + live[at].n;
            }
            memmove(live + at + 1, live + at, (size_t)(nlive - at) * sizeof *live);
            live[at].off = off, live[at].n = n, live[at].buf = i;
            nlive++;
            bd->bufs[i].off = off;
            if (off + n > total)
                total = off + n;
        }
        /* free what op j read for the last time */
        for (int k = 0; k < nlive;) {
            if (last[live[k].buf] == j) {
                memmove(live + k, live + k + 1, (size_t)(nlive - k - 1) * sizeof *live);
                nlive--;
            } else {
                k++;
            }
        }
    }
done:
    free(first);
    free(last);
    free(live);
    return total;
}

/* ------------------------------------------------------------------------ */
/* The state: buffers for passes at one length                               */
/* ------------------------------------------------------------------------ */

struct dm_unet_state {
    int max_batch, length, train, n_threads;
    int batch;              /* of the last forward pass, 0 before the first   */
    op *ops;
    int nops;
    abuf *bufs;
    int nbufs;
    int out_buf;
    float *act;             /* activations: train, max_batch items per buffer; */
                            /* inference, n_arenas arenas of one item each     */
    int n_arenas;           /* inference: threads that run items at once       */
    float *dact;            /* their gradients (train only)                   */
    float *pos;             /* the position channels (P, length), made once    */
    size_t act_n;
    float *scratch;
    size_t scratch_n;       /* floats per copy (backward)                     */
    int scratch_copies;     /* one per thread that may run a batch item       */
    size_t scratch_total;   /* floats in all, >= the forward's needs           */
                            /* (inference: n_arenas regions of scratch_n)      */
    float *grads;           /* parameter gradients (train only)               */
    size_t n_params;
    int *cls;               /* (max_batch)                                    */
};

dm_unet_state_params dm_unet_state_default_params(void)
{
    dm_unet_state_params p = {1, 0, 0, 0};
    return p;
}

dm_status dm_unet_state_create(const dm_unet *net, const dm_unet_state_params *params,
                               dm_unet_state **out, dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!out)
        return dm_fail(err, bad, "dm_unet_state_create: out is NULL");
    *out = NULL;
    if (!net || !params)
        return dm_fail(err, bad, "dm_unet_state_create: net and params are required");
    int mult = dm_unet_length_multiple(&net->cfg);
    if (params->length <= 0 || params->length % mult || params->length > (1 << 24))
        return dm_fail(err, bad, "U-Net state: length %d must be a positive multiple of %d",
                       params->length, mult);
    if (params->max_batch < 1 || params->max_batch > 4096)
        return dm_fail(err, bad, "U-Net state: max_batch %d is not in 1..4096", params->max_batch);
    if (params->n_threads < 0 || params->n_threads > 1024)
        return dm_fail(err, bad, "U-Net state: n_threads %d is not in 0..1024", params->n_threads);

    builder bd;
    int out_buf = build(&bd, &net->cfg, params->length);
    if (out_buf < 0 || bd.n_params != net->n_params) {
        builder_free(&bd);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net state: out of memory");
    }
    /* lay the buffers out in one arena: all of them for training, sharing
     * memory between buffers whose lives do not overlap for inference */
    size_t total = params->train ? plan_all(bd.bufs, bd.nbufs, params->max_batch)
                                 : plan_inference(&bd, out_buf, 1);
    if (total == (size_t)-1) {
        builder_free(&bd);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net state: buffers too large");
    }
    dm_unet_state *st = calloc(1, sizeof *st);
    if (!st) {
        builder_free(&bd);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net state: out of memory");
    }
    st->max_batch = params->max_batch;
    st->length = params->length;
    st->train = params->train != 0;
    st->n_threads = params->n_threads;
    st->ops = bd.ops, st->nops = bd.nops;
    st->bufs = bd.bufs, st->nbufs = bd.nbufs;
    st->out_buf = out_buf;
    st->act_n = total;
    /* training: a full im2col per thread that runs a batch item (backward);
     * inference: per thread, a conv tile or an attention matrix, and an arena
     * for one item (threads run whole items when the batch has several) */
    const int threads = dm_threads_resolve(params->n_threads);
    size_t fs = (bd.fscratch + 15) / 16 * 16;
    if (params->train) {
        st->n_arenas = 1;
        st->scratch_n = (bd.scratch + 15) / 16 * 16;
        st->scratch_copies = threads > params->max_batch ? params->max_batch : threads;
        st->scratch_total = st->scratch_n * (size_t)st->scratch_copies;
        if (st->scratch_total < fs * (size_t)threads)
            st->scratch_total = fs * (size_t)threads;
        if (st->scratch_total < bd.attn_scratch)
            st->scratch_total = bd.attn_scratch;
    } else {
        st->n_arenas = threads < params->max_batch ? threads : params->max_batch;
        st->scratch_n = fs > bd.attn_scratch ? fs : (bd.attn_scratch + 15) / 16 * 16;
        st->scratch_copies = threads;
        st->scratch_total = st->scratch_n * (size_t)threads;
    }
    st->n_params = net->n_params;
    bd.ops = NULL, bd.bufs = NULL;
    builder_free(&bd);
    st->act = dm_alloc(total * (size_t)st->n_arenas, sizeof(float));
    st->scratch = dm_alloc(st->scratch_total, sizeof(float));
    st->cls = dm_alloc((size_t)st->max_batch, sizeof(int));
    if (st->train) {
        st->dact = dm_alloc(total, sizeof(float));
        st->grads = dm_alloc(net->n_params, sizeof(float));
    }
    const int P = net->cfg.positions;
    if (P > 0 && (st->pos = dm_alloc((size_t)P * st->length, sizeof(float))) != NULL)
        dm_position_embedding_forward(st->pos, 1, P, st->length); /* not per pass: sin, cos */
    if (!st->act || !st->scratch || !st->cls || (st->train && (!st->dact || !st->grads)) ||
        (P > 0 && !st->pos)) {
        size_t mb = (total * (st->train ? 2 : (size_t)st->n_arenas) * sizeof(float)) >> 20;
        dm_unet_state_free(st);
        return dm_fail(err, DM_ERR_OUT_OF_MEMORY, "U-Net state: out of memory (%zu MiB needed)",
                       mb);
    }
    *out = st;
    return DM_OK;
}

void dm_unet_state_free(dm_unet_state *st)
{
    if (!st)
        return;
    free(st->ops);
    free(st->bufs);
    dm_free(st->act);
    dm_free(st->dact);
    dm_free(st->scratch);
    dm_free(st->grads);
    dm_free(st->cls);
    dm_free(st->pos);
    free(st);
}

float *dm_unet_state_grads(dm_unet_state *st) { return st ? st->grads : NULL; }
int dm_unet_state_length(const dm_unet_state *st) { return st->length; }

size_t dm_unet_state_bytes(const dm_unet_state *st)
{
    size_t n = st->act_n * (st->train ? 2 : (size_t)st->n_arenas) + st->scratch_total +
               (st->train ? st->n_params : 0);
    return n * sizeof(float);
}

void dm_unet_state_zero_grads(dm_unet_state *st)
{
    if (st && st->grads)
        memset(st->grads, 0, st->n_params * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* Forward and backward passes                                               */
/* ------------------------------------------------------------------------ */

/* Buffer i of the arena and its per-item size. Items are padded to 16 floats;
 * layers see B items of C*L floats each, so the padding must be absent: items
 * are packed contiguously at the start of the buffer's region instead. */
static float *A(const dm_unet_state *st, float *base, int i)
{
    return base + st->bufs[i].off;
}

static size_t item(const dm_unet_state *st, int i)
{
    return (size_t)st->bufs[i].C * st->bufs[i].L;
}

/* What a forward pass over some items works with. */
typedef struct pass {
    float *act;             /* the arena                                       */
    float *scratch;         /* `copies` regions of scratch_n floats            */
    size_t scratch_n;
    int copies;
    const int *cls;         /* the items' classes                              */
} pass;

static void op_forward(const dm_unet *net, const dm_unet_state *st, const pass *ps, const op *o,
                       int B)
{
    const float *P = net->params;
    float *act = ps->act;
    float *y = A(st, act, o->out);
    const float *x = A(st, act, o->in);
    switch (o->kind) {
    case OP_TEMB:
        dm_time_embedding_forward(y, x, B, o->C);
        break;
    case OP_LINEAR:
        dm_linear_forward(y, x, P + o->w, P + o->b, B, o->C, o->C2);
        break;
    case OP_SILU:
        dm_silu_forward(y, x, (size_t)B * item(st, o->in));
        break;
    case OP_CEMB:
        dm_class_embedding_forward(y, x, P + o->w, ps->cls, B, o->C);
        break;
    case OP_CONV: {
        dm_conv1d_shape s = o->conv;
        s.B = B;
        dm_scratch sc = {ps->scratch, ps->scratch_n * (size_t)ps->copies, 1};
        dm_conv1d_forward(y, x, P + o->w, P + o->b, &s, &sc);
        break;
    }
    case OP_GN:
        dm_groupnorm_forward(y, A(st, act, o->aux), x, P + o->w, P + o->b, B, o->C, o->L, o->G);
        break;
    case OP_FILM:
        dm_film_forward(y, x, A(st, act, o->in2), B, o->C, o->L);
        break;
    case OP_ADD:
        dm_add_forward(y, x, A(st, act, o->in2), (size_t)B * item(st, o->in));
        break;
    case OP_CONCAT:
        dm_concat_forward(y, x, A(st, act, o->in2), B, o->C, o->C2, o->L);
        break;
    case OP_UPSAMPLE:
        dm_upsample_forward(y, x, B, o->C, o->L, o->f);
        break;
    case OP_GN_ACT:
        dm_groupnorm_act_forward(y, x, P + o->w, P + o->b, o->in2 >= 0 ? A(st, act, o->in2) : NULL,
                                 1, B, o->C, o->L, o->G);
        break;
    case OP_NOP:
        break;
    case OP_POS:
        for (int b = 0; b < B; b++)
            memcpy(y + (size_t)b * o->C * o->L, st->pos, (size_t)o->C * o->L * sizeof *y);
        break;
    case OP_ATTN:
        if (st->train)
            dm_attention_forward(y, A(st, act, o->aux), x, B, o->C, o->L, o->H);
        else
        {
            dm_scratch sc = {ps->scratch, ps->scratch_n, ps->copies};
            dm_attention_forward_infer(y, &sc, x, B, o->C, o->L, o->H);
        }
        break;
    }
}

static void op_backward(const dm_unet *net, dm_unet_state *st, const op *o, int B)
{
    const float *P = net->params;
    float *G = st->grads;
    float *act = st->act, *dact = st->dact;
    const float *dy = A(st, dact, o->out);
    const float *x = A(st, act, o->in);
    float *dx = A(st, dact, o->in);
    switch (o->kind) {
    case OP_TEMB:
    case OP_POS:
        break; /* t and the positions are inputs, not parameters */
    case OP_LINEAR:
        dm_linear_backward(dx, G + o->w, G + o->b, dy, x, P + o->w, B, o->C, o->C2);
        break;
    case OP_SILU:
        dm_silu_backward(dx, dy, x, (size_t)B * item(st, o->in));
        break;
    case OP_CEMB:
        dm_class_embedding_backward(dx, G + o->w, dy, st->cls, B, o->C);
        break;
    case OP_CONV: {
        dm_conv1d_shape s = o->conv;
        s.B = B;
        dm_scratch sc = {st->scratch, st->scratch_n, st->scratch_copies};
        dm_conv1d_backward(dx, G + o->w, G + o->b, dy, x, P + o->w, &s, &sc);
        break;
    }
    case OP_GN:
        dm_groupnorm_backward(dx, G + o->w, G + o->b, dy, x, A(st, act, o->aux), P + o->w, B,
                              o->C, o->L, o->G);
        break;
    case OP_FILM:
        dm_film_backward(dx, A(st, dact, o->in2), dy, x, A(st, act, o->in2), B, o->C, o->L);
        break;
    case OP_ADD:
        dm_add_backward(dx, A(st, dact, o->in2), dy, (size_t)B * item(st, o->in));
        break;
    case OP_CONCAT:
        dm_concat_backward(dx, A(st, dact, o->in2), dy, B, o->C, o->C2, o->L);
        break;
    case OP_UPSAMPLE:
        dm_upsample_backward(dx, dy, B, o->C, o->L, o->f);
        break;
    case OP_ATTN:
        dm_attention_backward(dx, dy, x, A(st, act, o->aux), B, o->C, o->L, o->H, st->scratch);
        break;
    case OP_GN_ACT:
    case OP_NOP:
        break; /* inference states only */
    }
}

static const char *const op_names[] = {"temb",   "linear",   "silu",      "cemb",
                                       "conv",   "groupnorm", "film",     "add",
                                       "concat", "upsample", "attention", "positions",
                                       "groupnorm+silu", "nop"};

static void op_describe(const dm_unet_state *st, const op *o, int B, char *shape, size_t n)
{
    const abuf *in = &st->bufs[o->in], *out = &st->bufs[o->out];
    if (o->kind == OP_CONV)
        snprintf(shape, n, "%dx%dx%d k%d s%d", B, o->conv.Cin, o->conv.Lin, o->conv.K,
                 o->conv.stride);
    else
        snprintf(shape, n, "%dx%dx%d", B, in->C, in->L);
    (void)out;
}

static void run_ops(const dm_unet *net, const dm_unet_state *st, const pass *ps, int B,
                    dm_unet_op_fn fn, void *user)
{
    for (int i = 0; i < st->nops; i++) {
        const op *o = &st->ops[i];
        if (!fn) {
            op_forward(net, st, ps, o, B);
            continue;
        }
        if (o->kind == OP_NOP)
            continue;
        double t0 = dm_seconds();
        op_forward(net, st, ps, o, B);
        double dt = dm_seconds() - t0;
        char shape[64];
        op_describe(st, o, B, shape, sizeof shape);
        fn(user, op_names[o->kind], shape, op_flops(o, st->bufs) * B, dt);
    }
}

/* Inference: item b of the batch through the network on the arena of ps. Every layer
 * computes an item alone as it would within a batch, so the bits are the same. */
static void run_item(const dm_unet *net, const dm_unet_state *st, const pass *ps0, int b,
                     const float *x, const float *t, float *y, dm_unet_op_fn fn, void *user)
{
    pass ps = *ps0;
    ps.cls = st->cls + b;
    memcpy(A(st, ps.act, 0), x + (size_t)b * item(st, 0), item(st, 0) * sizeof(float));
    memcpy(A(st, ps.act, 1), t + b, sizeof(float));
    run_ops(net, st, &ps, 1, fn, user);
    memcpy(y + (size_t)b * item(st, st->out_buf), A(st, ps.act, st->out_buf),
           item(st, st->out_buf) * sizeof(float));
}

static dm_status forward_impl(const dm_unet *net, dm_unet_state *st, int batch, const float *x,
                              const float *t, const int *cls, float *y, dm_error *err,
                              dm_unet_op_fn fn, void *user)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!net || !st || !x || !t || !y)
        return dm_fail(err, bad, "U-Net forward: net, state, x, t and y are required");
    if (st->n_params != net->n_params)
        return dm_fail(err, bad, "U-Net forward: the state was made for another network");
    if (batch < 1 || batch > st->max_batch)
        return dm_fail(err, bad, "U-Net forward: batch %d is not in 1..%d", batch, st->max_batch);
    const int nc = net->cfg.n_classes;
    for (int b = 0; b < batch; b++) {
        if (!isfinite(t[b]))
            return dm_fail(err, bad, "U-Net forward: t[%d] is not finite", b);
        int c = cls ? cls[b] : nc;
        if (nc > 0 && (c < 0 || c > nc))
            return dm_fail(err, bad, "U-Net forward: class %d of item %d is not in 0..%d", c, b,
                           nc);
        st->cls[b] = nc > 0 ? c : 0;
    }
    int prev = dm_threads_begin(st->n_threads);
    if (st->train) { /* the whole batch through each op, every activation kept */
        pass ps = {st->act, st->scratch, st->scratch_total, 1, st->cls};
        memcpy(A(st, st->act, 0), x, (size_t)batch * item(st, 0) * sizeof(float));
        memcpy(A(st, st->act, 1), t, (size_t)batch * sizeof(float));
        run_ops(net, st, &ps, batch, fn, user);
        memcpy(y, A(st, st->act, st->out_buf),
               (size_t)batch * item(st, st->out_buf) * sizeof(float));
        st->batch = batch;
    } else if (batch > 1 && st->n_arenas > 1 && !fn) {
        /* items spread over the threads, each running the whole network on its
         * own arena: no synchronisation inside a pass */
        int team = st->n_arenas < batch ? st->n_arenas : batch;
        (void)team;
#pragma omp parallel num_threads(team)
        {
            int id = dm_thread_id();
            pass ps = {st->act + (size_t)id * st->act_n, st->scratch + (size_t)id * st->scratch_n,
                       st->scratch_n, 1, NULL};
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < batch; b++)
                run_item(net, st, &ps, b, x, t, y, NULL, NULL);
        }
    } else { /* item by item, the layers' own loops in parallel */
        pass ps = {st->act, st->scratch, st->scratch_n, st->scratch_copies, NULL};
        for (int b = 0; b < batch; b++)
            run_item(net, st, &ps, b, x, t, y, fn, user);
    }
    dm_threads_end(prev);
    return DM_OK;
}

dm_status dm_unet_forward(const dm_unet *net, dm_unet_state *st, int batch, const float *x,
                          const float *t, const int *cls, float *y, dm_error *err)
{
    return forward_impl(net, st, batch, x, t, cls, y, err, NULL, NULL);
}

dm_status dm_unet_forward_profile(const dm_unet *net, dm_unet_state *st, int batch,
                                  const float *x, const float *t, const int *cls, float *y,
                                  dm_unet_op_fn fn, void *user, dm_error *err)
{
    return forward_impl(net, st, batch, x, t, cls, y, err, fn, user);
}

dm_status dm_unet_backward(const dm_unet *net, dm_unet_state *st, const float *dy, float *dx,
                           dm_error *err)
{
    const dm_status bad = DM_ERR_INVALID_ARGUMENT;
    if (!net || !st || !dy)
        return dm_fail(err, bad, "U-Net backward: net, state and dy are required");
    if (!st->train)
        return dm_fail(err, bad, "U-Net backward: the state was created without train");
    if (st->batch < 1)
        return dm_fail(err, bad, "U-Net backward: no forward pass to differentiate");
    const int B = st->batch;
    int prev = dm_threads_begin(st->n_threads);
    memset(st->dact, 0, st->act_n * sizeof(float));
    memcpy(A(st, st->dact, st->out_buf), dy, (size_t)B * item(st, st->out_buf) * sizeof(float));
    for (int i = st->nops - 1; i >= 0; i--)
        op_backward(net, st, &st->ops[i], B);
    if (dx)
        memcpy(dx, A(st, st->dact, 0), (size_t)B * item(st, 0) * sizeof(float));
    dm_threads_end(prev);
    return DM_OK;
}
