/* Row normalisations over the last dimension.
 *   rmsnorm   (T5):   y = w * x * rsqrt(mean(x^2) + eps)            (no mean subtraction, no bias)
 *   layernorm (BERT, vec2text corrector): y = (x - mean) * rsqrt(var + eps) * w + b  (biased var)
 * x, y: [M, D] with row strides ldx, ldy; y may alias x when ldx == ldy.
 */
#ifndef V2T_OPS_NORM_H
#define V2T_OPS_NORM_H

#include <stdint.h>

void v2t_rmsnorm(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, float eps, float *y,
                 int64_t ldy);
void v2t_rmsnorm_ref(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, float eps, float *y,
                     int64_t ldy);
void v2t_layernorm(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, const float *b, float eps,
                   float *y, int64_t ldy);
void v2t_layernorm_ref(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, const float *b,
                       float eps, float *y, int64_t ldy);

#endif
