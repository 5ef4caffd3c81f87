/* The residual MLP of vec2vec (adapters and shared backbone), forward and backward in C.
 *
 * depth blocks, each followed by a residual add of the block input (zero-padded or truncated
 * to the block's width), then an output normalisation added to its input:
 *   block i < depth-1:  Linear(w_i -> w_{i+1}) -> SiLU -> Dropout(p) -> Norm
 *   last block:         Linear(h -> h) -> Dropout(p) -> SiLU -> Linear(h -> d_out)
 *                       (depth == 1: Linear(d_in -> d_out) -> SiLU -> Dropout -> Norm)
 *   y = Norm_out(x) + x
 * with widths d_in, h, ..., h, d_out and Norm BatchNorm1d or LayerNorm (eps 1e-5).
 *
 * Parameters are one flat array: per block W [out, in], b [out] (the last block: W1, b1, W2,
 * b2), then gamma [out], beta [out] of its norm; finally gamma, beta of the output norm.
 * BatchNorm running statistics live in a separate flat `stats` array (mean, var per norm).
 * A tape records what the backward pass needs; the caller keeps the input alive meanwhile.
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
    int64_t in_w[V2T_RESMLP_MAX_DEPTH], out_w[V2T_RESMLP_MAX_DEPTH];
    int64_t w_off[V2T_RESMLP_MAX_DEPTH], b_off[V2T_RESMLP_MAX_DEPTH];
    int64_t w2_off, b2_off;                                    /* second Linear of the last block */
    int64_t g_off[V2T_RESMLP_MAX_DEPTH + 1], be_off[V2T_RESMLP_MAX_DEPTH + 1]; /* norms; [depth] = output */
    int64_t s_off[V2T_RESMLP_MAX_DEPTH + 1];                   /* running mean at s_off, var at s_off + D */
    int64_t n_params, n_stats;
} v2t_resmlp;

v2t_status v2t_resmlp_init(v2t_resmlp *m, int depth, int64_t d_in, int64_t d_hidden, int64_t d_out,
                           v2t_norm_kind norm, float dropout);
/* Fresh parameters: Linear weights N(0, 0.02^2) as vec2vec initialises them, biases 0,
 * norms gamma 1 / beta 0; stats: running mean 0, var 1. params: [n_params], stats: [n_stats]. */
void v2t_resmlp_default_init(const v2t_resmlp *m, v2t_rng *rng, float *params, float *stats);

typedef struct v2t_resmlp_tape {
    v2t_buffer mem;
    int64_t B;
    const float *x;
    float *z[V2T_RESMLP_MAX_DEPTH], *mask[V2T_RESMLP_MAX_DEPTH], *h[V2T_RESMLP_MAX_DEPTH];
    float *inv[V2T_RESMLP_MAX_DEPTH + 1], *out[V2T_RESMLP_MAX_DEPTH + 1];
    float *s_last, *hat_out, *scratch;
} v2t_resmlp_tape;

void v2t_resmlp_tape_release(v2t_resmlp_tape *t);

// x: [B, d_in] -> y: [B, d_out]. training: batch statistics (running stats updated when stats is
// not NULL) and dropout drawn from rng; otherwise running statistics and no dropout. tape: NULL
// for inference, else filled for v2t_resmlp_backward.
v2t_status v2t_resmlp_forward(const v2t_resmlp *m, const float *params, float *stats, int training, v2t_rng *rng,
                              v2t_exec *ex, const float *x, int64_t B, v2t_resmlp_tape *tape, float *y);

// dy: [B, d_out] -> grads: [n_params] accumulated (+=), dx: [B, d_in] written (NULL: skipped).
// The tape must come from a training forward pass with the same params.
v2t_status v2t_resmlp_backward(const v2t_resmlp *m, const float *params, v2t_exec *ex, v2t_resmlp_tape *tape,
                               const float *dy, float *grads, float *dx);

#endif
