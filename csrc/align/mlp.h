/* The MLP aligner: a stack of dense layers with ReLU between them, trained on mean squared
 * error with AdamW.
 *
 *   a_0 = x;  a_l = relu(a_{l-1} W_l^T + b_l)  (l < L);  y_hat = a_{L-1} W_L^T + b_L
 *   loss = mean over all elements of (y_hat - y)^2          (torch.nn.MSELoss)
 *
 * Parameters live in one flat float array, layer by layer: W_1 [w1, w0], b_1 [w1], W_2 ...,
 * where widths w_0 = d_in, ..., w_L = d_out. A v2t_mlp_shape plus a parameter array is an
 * immutable model (v2t_mlp_forward); v2t_mlp_trainer owns parameters, gradients, the Adam
 * moments and the activation scratch of one training run.
 */
#ifndef V2T_ALIGN_MLP_H
#define V2T_ALIGN_MLP_H

#include <stdint.h>

#include "train_ops.h"

#define V2T_MLP_MAX_LAYERS 16

typedef struct v2t_mlp_shape {
    int n_layers;                              /* dense layers L >= 1 */
    int64_t widths[V2T_MLP_MAX_LAYERS + 1];    /* w_0 = d_in ... w_L = d_out */
    int64_t w_off[V2T_MLP_MAX_LAYERS], b_off[V2T_MLP_MAX_LAYERS];
    int64_t n_params;
} v2t_mlp_shape;

/* Fill offsets and the parameter count; checks 1 <= n_layers <= V2T_MLP_MAX_LAYERS, widths > 0. */
v2t_status v2t_mlp_shape_init(v2t_mlp_shape *s, int n_layers, const int64_t *widths);

// params: [n_params], x: [n, d_in] -> y: [n, d_out]; rows are processed in bounded blocks
v2t_status v2t_mlp_forward(const v2t_mlp_shape *s, const float *params, v2t_exec *ex, const float *x, int64_t n,
                           float *y);

typedef struct v2t_mlp_trainer {
    v2t_mlp_shape shape;
    float *params, *grads, *adam_m, *adam_v; /* [n_params] each */
    float *params_t;                         /* [n_params] weights transposed (plain-layout forward products);
                                                in bf16 training only its mirror is kept current */
    int64_t step;                            /* AdamW updates done */
    int64_t cap_rows;                        /* rows the scratch below holds */
    float *acts;                             /* [cap_rows, sum of w_1 .. w_L] activations */
    float *delta[2];                         /* [cap_rows, max width] back-propagated gradients */
    float *xb, *yb;                          /* [cap_rows, d_in], [cap_rows, d_out] gathered batch */
    int64_t *order;                          /* [rows of the last epoch] shuffled row order */
    int64_t order_len;
    v2t_exec ex;
} v2t_mlp_trainer;

// params: [n_params] initial values (copied)
v2t_status v2t_mlp_trainer_init(v2t_mlp_trainer *t, int n_layers, const int64_t *widths, const float *params);
void v2t_mlp_trainer_release(v2t_mlp_trainer *t);

// on: matmuls in bf16 (ops/gemm.h), the weights read from bf16 mirrors refreshed at every update.
// Once on, it stays on (turning it off is an error).
v2t_status v2t_mlp_trainer_set_bf16(v2t_mlp_trainer *t, int on);

// x: [B, d_in], y: [B, d_out] -> *loss (mean squared error), t->grads = d loss / d params
v2t_status v2t_mlp_loss_grad(v2t_mlp_trainer *t, const float *x, const float *y, int64_t B, double *loss);

// x: [n, d_in], y: [n, d_out]: one pass over the rows in an order shuffled by `seed`, one AdamW
// update per batch of `batch` rows (the last one may be smaller). *mean_loss: row-weighted mean.
v2t_status v2t_mlp_train_epoch(v2t_mlp_trainer *t, const float *x, const float *y, int64_t n, int64_t batch,
                               const v2t_adam_config *cfg, uint64_t seed, double *mean_loss);

#endif
