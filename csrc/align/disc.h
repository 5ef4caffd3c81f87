/* The vec2vec discriminator: a plain MLP (no residual) from an embedding to one score, laid out
 * as the published code builds it (dropout 0 there, so none here):
 *
 *   depth == 1:  Linear(d_in -> 1)
 *   otherwise:   Linear(d_in -> W), then depth-2 times [SiLU -> Linear(W -> W) -> LayerNorm(W)],
 *                then SiLU -> Linear(W -> 1)
 *
 * Parameters: one flat array in PyTorch's parameters() order: W0 [W, d_in], b0 [W], then per
 * middle layer Wk [W, W], bk [W], gamma [W], beta [W], then W_last [1, W], b_last [1].
 * LayerNorm works per row, so real and fake rows may share one forward pass.
 */
#ifndef V2T_ALIGN_DISC_H
#define V2T_ALIGN_DISC_H

#include <stdint.h>

#include "train_ops.h"

#define V2T_DISC_MAX_DEPTH 16

typedef struct v2t_disc {
    int depth;
    int64_t d_in, width;
    int64_t w_off[V2T_DISC_MAX_DEPTH], b_off[V2T_DISC_MAX_DEPTH];  /* Linear k */
    int64_t g_off[V2T_DISC_MAX_DEPTH], be_off[V2T_DISC_MAX_DEPTH]; /* LayerNorm after Linear k (middle) */
    int64_t n_params;
} v2t_disc;

v2t_status v2t_disc_init(v2t_disc *d, int depth, int64_t d_in, int64_t width);
/* Kaiming-normal Linear weights (std sqrt(2 / fan_in)), zero biases, LayerNorm 1 / 0. */
void v2t_disc_default_init(const v2t_disc *d, v2t_rng *rng, float *params);

typedef struct v2t_disc_tape {
    v2t_buffer mem;
    int64_t B;
    const float *x;
    float *h[V2T_DISC_MAX_DEPTH];   /* output of Linear k (LayerNorm applied for middle k) */
    float *a[V2T_DISC_MAX_DEPTH];   /* silu(h[k]) */
    float *hat[V2T_DISC_MAX_DEPTH]; /* LayerNorm normalised input (middle k) */
    float *inv[V2T_DISC_MAX_DEPTH]; /* LayerNorm inverse std per row (middle k) */
    float *scratch;                 /* 2 * B * max(W, d_in) + 2 * W */
} v2t_disc_tape;

void v2t_disc_tape_release(v2t_disc_tape *t);

/* wt: [n_params] with every Linear weight of params transposed ([in, out]) at the same offset.
 * ex: NULL, or a bf16 trainer's execution state whose mirror of wt receives the copies. */
void v2t_disc_transpose_weights(const v2t_disc *d, const float *params, float *wt, v2t_exec *ex);

// x: [B, d_in] -> score: [B]; tape filled for v2t_disc_backward (the caller keeps x alive).
// wt: transposed weights of params (plain-layout products), or NULL.
v2t_status v2t_disc_forward(const v2t_disc *d, const float *params, const float *wt, v2t_exec *ex, const float *x,
                            int64_t B, v2t_disc_tape *t, float *score);

// dscore: [B] -> grads: [n_params] accumulated (+=; NULL: skipped), dx: [B, d_in] written (NULL: skipped)
v2t_status v2t_disc_backward(const v2t_disc *d, const float *params, v2t_exec *ex, v2t_disc_tape *t,
                             const float *dscore, float *grads, float *dx);

#endif
