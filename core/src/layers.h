/* The numeric core: layers as forward/backward pairs (see docs/architecture.md).
 *
 * Conventions (as in llm.c): activations are (B, C, L) float32, time fastest.
 * Forward writes its output. Backward ADDS into every gradient it produces
 * (dinp, dweight, dbias, ...); a NULL gradient pointer means "not needed".
 * Nothing here allocates: scratch buffers are passed in. Loops that run in
 * parallel give each thread its own outputs, so results do not depend on the
 * number of threads. */
#ifndef DM_LAYERS_H
#define DM_LAYERS_H

#include <stddef.h>

/* Output length of a 1-D convolution (PyTorch's formula). */
int dm_conv1d_out_len(int L, int K, int stride, int pad, int dil);

typedef struct dm_conv1d_shape {
    int B, Cin, Lin, Cout, Lout, K, stride, pad, dil;
} dm_conv1d_shape;

/* Scratch memory: `copies` regions of `stride` floats, one per thread that may
 * work on a batch item at the same time (copies >= 1). */
typedef struct dm_scratch {
    float *p;
    size_t stride;
    int copies;
} dm_scratch;

/* Floats of scratch one copy needs for a conv (col and dcol). */
size_t dm_conv1d_scratch(const dm_conv1d_shape *s);

/* Floats of scratch per thread the forward pass needs (at most the above). */
size_t dm_conv1d_forward_scratch(const dm_conv1d_shape *s);

/* inp (B,Cin,Lin), w (Cout,Cin,K), bias (Cout) -> out (B,Cout,Lout). Tiles of
 * (item, output columns) run in parallel, each thread using a region of
 * dm_conv1d_forward_scratch() floats; as many threads run as such regions fit
 * in the scratch's copies * stride floats. */
void dm_conv1d_forward(float *out, const float *inp, const float *w, const float *bias,
                       const dm_conv1d_shape *s, const dm_scratch *scratch);
/* dout (B,Cout,Lout) -> dinp (B,Cin,Lin), dw (Cout,Cin,K), dbias (Cout). */
void dm_conv1d_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, const dm_conv1d_shape *s,
                        const dm_scratch *scratch);

/* inp (B,C,L) -> out (B,C,L); stats (B,G,2) keeps (mean, 1/std) for backward. */
void dm_groupnorm_forward(float *out, float *stats, const float *inp, const float *gamma,
                          const float *beta, int B, int C, int L, int G);
/* Inference: out = silu?(film?(groupnorm(inp))) in one pass, bit for bit the layers one
 * after the other; e (B,2C) is film's input or NULL, silu 0 or 1. Keeps no statistics. */
void dm_groupnorm_act_forward(float *out, const float *inp, const float *gamma,
                              const float *beta, const float *e, int silu, int B, int C, int L,
                              int G);
void dm_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *stats, const float *gamma,
                           int B, int C, int L, int G);

/* n elements: out = inp * sigmoid(inp). */
void dm_silu_forward(float *out, const float *inp, size_t n);
void dm_silu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* inp (B,IN), w (OUT,IN), bias (OUT) -> out (B,OUT). */
void dm_linear_forward(float *out, const float *inp, const float *w, const float *bias,
                       int B, int IN, int OUT);
void dm_linear_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int B, int IN, int OUT);

/* inp (B,C,L), e (B,2C) -> out = inp * (1 + e[:, :C]) + e[:, C:]. */
void dm_film_forward(float *out, const float *inp, const float *e, int B, int C, int L);
void dm_film_backward(float *dinp, float *de, const float *dout, const float *inp,
                      const float *e, int B, int C, int L);

/* inp (B,C,L) -> out (B,C,f*L), nearest neighbour. */
void dm_upsample_forward(float *out, const float *inp, int B, int C, int L, int f);
void dm_upsample_backward(float *dinp, const float *dout, int B, int C, int L, int f);

/* a (B,Ca,L), b (B,Cb,L) -> out (B,Ca+Cb,L). */
void dm_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, int L);
void dm_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, int L);

/* n elements: out = a + b. */
void dm_add_forward(float *out, const float *a, const float *b, size_t n);
void dm_add_backward(float *da, float *db, const float *dout, size_t n);

/* Multi-head self-attention over time. qkv (B,3C,L) -> out (B,C,L);
 * probs (B,H,L,L) keeps the softmax for backward; scratch holds L*L floats. */
void dm_attention_forward(float *out, float *probs, const float *qkv, int B, int C, int L, int H);
/* The same output, bit for bit, keeping no probabilities: each thread uses a scratch
 * copy of L*L floats (stride >= L*L); (item, head) pairs run in parallel. */
void dm_attention_forward_infer(float *out, const dm_scratch *sc, const float *qkv, int B, int C,
                                int L, int H);
void dm_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                           int B, int C, int L, int H, float *scratch);

/* t (B) -> out (B,E0): [cos(1000 t f_k), sin(1000 t f_k)], f_k = 10000^(-k/(E0/2)). */
void dm_time_embedding_forward(float *out, const float *t, int B, int E0);
/* Frame positions: out (B, P, L), channel k < P/2 is cos(l f_k) and channel P/2 + k is
 * sin(l f_k) at frame l, f_k = 10000^(-k / (P/2)): the time embedding's frequencies. */
void dm_position_embedding_forward(float *out, int B, int P, int L);

/* out (B,E) = inp + table[cls[b]]; table (n_rows, E). */
void dm_class_embedding_forward(float *out, const float *inp, const float *table,
                                const int *cls, int B, int E);
void dm_class_embedding_backward(float *dinp, float *dtable, const float *dout,
                                 const int *cls, int B, int E);

#endif
