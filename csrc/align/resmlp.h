/* The residual MLP of vec2vec (input/output adapters and the shared backbone), forward and
 * backward in C, laid out as the published vec2vec code builds it (MLPWithResidual, without
 * its optional output norm):
 *
 *   depth == 1:        Linear(d_in -> d_out) -> SiLU
 *   block 0:           Linear(d_in -> h) -> SiLU
 *   blocks 1..depth-2: Linear(h -> h) -> SiLU -> Norm(h) -> Dropout(p)
 *   last block:        Linear(h -> h) -> Dropout(p) -> SiLU -> Linear(h -> d_out)
 *
 * and after every block the block input is added back, zero-padded or truncated to the block's
 * width. Norm is BatchNorm1d (the published default) or LayerNorm, eps 1e-5.
 *
 * Parameters are one flat array in the order PyTorch's parameters() lists them: per block
 * W [out, in], b [out], then for the middle blocks gamma [h], beta [h]; the last block holds
 * W1 [h, h], b1 [h], W2 [d_out, h], b2 [d_out]. BatchNorm running statistics live in a separate
 * flat `stats` array (mean [h], var [h] per middle block; empty with LayerNorm). A tape records
 * what the backward pass needs; the caller keeps the input alive meanwhile.
 */
#ifndef V2T_ALIGN_RESMLP_H
#define V2T_ALIGN_RESMLP_H

#include <stdint.h>

#include "layers_train.h"

#define V2T_RESMLP_MAX_DEPTH 16

typedef enum v2t_norm_kind { V2T_NORM_BATCH = 0, V2T_NORM_LAYER = 1 } v2t_norm_kind;

typedef struct v2t_resmlp {
    int depth;
    int64_t d_in, d_hidden, d_out;
    v2t_norm_kind norm;
    float dropout;
    int64_t in_w[V2T_RESMLP_MAX_DEPTH], out_w[V2T_RESMLP_MAX_DEPTH]; /* block input / output widths */
    int64_t w_off[V2T_RESMLP_MAX_DEPTH], b_off[V2T_RESMLP_MAX_DEPTH]; /* first Linear of each block */
    int64_t g_off[V2T_RESMLP_MAX_DEPTH], be_off[V2T_RESMLP_MAX_DEPTH]; /* norm of middle blocks */
    int64_t s_off[V2T_RESMLP_MAX_DEPTH];  /* running mean at s_off, var at s_off + h (middle blocks) */
    int64_t w2_off, b2_off;              /* second Linear of the last block (depth >= 2) */
    int64_t n_params, n_stats;
} v2t_resmlp;

v2t_status v2t_resmlp_init(v2t_resmlp *m, int depth, int64_t d_in, int64_t d_hidden, int64_t d_out,
                           v2t_norm_kind norm, float dropout);

/* Which block kind block i is: 0 first (depth >= 2) or only block, 1 middle, 2 last. */
int v2t_resmlp_block_kind(const v2t_resmlp *m, int i);

/* Fresh parameters as the published code initialises them: Linear weights Kaiming-normal
 * (std sqrt(2 / fan_in)), biases 0; BatchNorm gamma ~ N(1, 0.02^2), beta ~ N(0, 0.02^2);
 * LayerNorm gamma 1, beta 0. stats: running mean 0, var 1. params: [n_params], stats: [n_stats]. */
void v2t_resmlp_default_init(const v2t_resmlp *m, v2t_rng *rng, float *params, float *stats);

typedef struct v2t_resmlp_tape {
    v2t_buffer mem;
    int64_t B;
    const float *x;
    float *z[V2T_RESMLP_MAX_DEPTH];    /* pre-activation of the first Linear */
    float *hat[V2T_RESMLP_MAX_DEPTH];  /* middle: normalised SiLU output; last: dropped-out z */
    float *mask[V2T_RESMLP_MAX_DEPTH]; /* dropout mask (0 or 1 / (1 - p)) */
    float *inv[V2T_RESMLP_MAX_DEPTH];  /* middle: inverse std per column (batch) or row (layer) */
    float *out[V2T_RESMLP_MAX_DEPTH];  /* block output after the residual add (not the last) */
    float *s_last;                     /* last block: SiLU output fed to its second Linear */
    float *scratch;                    /* 3 * B * max width */
} v2t_resmlp_tape;

void v2t_resmlp_tape_release(v2t_resmlp_tape *t);

/* wt: [n_params] holds every Linear weight of params transposed ([in, out]) at the same offset
 * (other entries untouched); forward passes given wt run plain-layout products. ex: NULL, or a
 * bf16 trainer's execution state whose mirror of wt receives the copies (train_ops.h). */
void v2t_resmlp_transpose_weights(const v2t_resmlp *m, const float *params, float *wt, v2t_exec *ex);

// x: [B, d_in] -> y: [B, d_out]. training: batch statistics (running stats updated when stats is
// not NULL) and dropout drawn from rng; otherwise running statistics and no dropout. tape: NULL
// for inference, else filled for v2t_resmlp_backward. wt: transposed weights of params, or NULL.
v2t_status v2t_resmlp_forward(const v2t_resmlp *m, const float *params, const float *wt, float *stats, int training,
                              v2t_rng *rng, v2t_exec *ex, const float *x, int64_t B, v2t_resmlp_tape *tape,
                              float *y);

// dy: [B, d_out] -> grads: [n_params] accumulated (+=), dx: [B, d_in] written (NULL: skipped).
// The tape must come from a training forward pass with the same params.
v2t_status v2t_resmlp_backward(const v2t_resmlp *m, const float *params, v2t_exec *ex, v2t_resmlp_tape *tape,
                               const float *dy, float *grads, float *dx);

#endif
