/* Element-wise and normalisation layers with their backward passes, for training the vec2vec
 * networks in C. Rows are samples: every array is [B, D] row-major. PyTorch semantics:
 *   SiLU        y = x * sigmoid(x)
 *   BatchNorm1d (training) y = (x - mean_b) / sqrt(var_b + eps) * gamma + beta, biased batch
 *               variance; running stats updated with the unbiased variance and `momentum`
 *   LayerNorm   per row, biased variance, affine gamma/beta
 *   Dropout     y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p)
 *   residual    y += x zero-padded or truncated to y's width (vec2vec's add_residual)
 *   L2 rows     y = x / |x|
 */
#ifndef V2T_ALIGN_LAYERS_TRAIN_H
#define V2T_ALIGN_LAYERS_TRAIN_H

#include <stdint.h>

#include "train_ops.h"

// x, y: [n] (y may alias x)
void v2t_silu(const float *x, float *y, int64_t n);
// x: [n] the SiLU input, dy: [n] -> dx: [n] (may alias dy)
void v2t_silu_backward(const float *x, const float *dy, float *dx, int64_t n);

// x: [B, D], gamma, beta: [D] -> y: [B, D]; xhat: [B, D], inv_std: [D] saved for backward (or NULL);
// running_mean/var: [D] updated when not NULL (momentum as in PyTorch, default 0.1)
void v2t_batchnorm_train(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                         float momentum, float *running_mean, float *running_var, float *y, float *xhat,
                         float *inv_std);
// eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta
void v2t_batchnorm_eval(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                        const float *running_mean, const float *running_var, float *y);
// dy, xhat: [B, D], inv_std: [D] -> dx: [B, D]; dgamma, dbeta: [D] accumulated (+=)
void v2t_batchnorm_backward(const float *dy, const float *xhat, const float *inv_std, const float *gamma, int64_t B,
                            int64_t D, float *dx, float *dgamma, float *dbeta);

// x: [B, D] -> y, xhat: [B, D], inv_std: [B]
void v2t_layernorm_train(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                         float *y, float *xhat, float *inv_std);
// dy, xhat: [B, D], inv_std: [B] -> dx: [B, D]; dgamma, dbeta: [D] accumulated (+=)
void v2t_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, const float *gamma, int64_t B,
                            int64_t D, float *dx, float *dgamma, float *dbeta);

// x: [n] -> y: [n], mask: [n] holds 0 or 1 / (1 - p); p == 0 copies (mask filled with 1)
void v2t_dropout(const float *x, float p, v2t_rng *rng, float *mask, float *y, int64_t n);

// x: [B, Dx] -> y: [B, Dy] += x[:, :min(Dx, Dy)]
void v2t_residual_add(const float *x, int64_t Dx, float *y, int64_t Dy, int64_t B);
// dy: [B, Dy] -> dx: [B, Dx] += dy[:, :min(Dx, Dy)]
void v2t_residual_backward(const float *dy, int64_t Dy, float *dx, int64_t Dx, int64_t B);

// x: [B, D] -> y: [B, D] = x / |x| row-wise, norms: [B]
void v2t_l2_rows(const float *x, int64_t B, int64_t D, float *y, float *norms);
// y (output), dy: [B, D], norms: [B] -> dx: [B, D] = (dy - y <y, dy>) / |x|
void v2t_l2_rows_backward(const float *y, const float *dy, const float *norms, int64_t B, int64_t D, float *dx);

#endif
