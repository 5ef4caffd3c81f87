/* Column means and (centred) cross products for the linear aligners, streamed over row
 * chunks so that memory stays bounded by the chunk, whatever the number of rows.
 *
 * Ridge needs Xc^T Xc and Xc^T Yc (Xc = X - mean(X)); its dual form needs Xc Xc^T; Procrustes
 * needs X^T Y. Every product runs on oneDNN (ops/gemm.h) with float32 accumulation; means are
 * accumulated in double.
 */
#ifndef V2T_ALIGN_MOMENTS_H
#define V2T_ALIGN_MOMENTS_H

#include <stdint.h>

#include "../ops/gemm.h"

// x: [n, d] row-major (row stride ldx) -> mean: [d]
void v2t_col_mean(const float *x, int64_t ldx, int64_t n, int64_t d, float *mean);

// x: [n, d1] (ldx), y: [n, d2] (ldy), mx: [d1] or NULL, my: [d2] or NULL -> out: [d1, d2]
// out = (x - mx)^T (y - my). When x == y, ldx == ldy, d1 == d2 and mx == my, only the upper
// block triangle is multiplied and mirrored (a symmetric Gram matrix for about half the work).
v2t_status v2t_cross_product(v2t_exec *ex, const float *x, int64_t ldx, const float *mx, int64_t d1, const float *y,
                             int64_t ldy, const float *my, int64_t d2, int64_t n, float *out);

// x: [n, d1], y: [n, d2] row-major, mx: [d1] or NULL, my: [d2] or NULL
//   -> gram: [d1, d1] = (x - mx)^T (x - mx), cross: [d1, d2] = (x - mx)^T (y - my)
// The normal equations of ridge regression in one streamed pass: each chunk of rows is centred
// once into [x | y] and multiplied by two products (the symmetric half of the Gram is skipped).
v2t_status v2t_gram_and_cross(v2t_exec *ex, const float *x, const float *mx, int64_t d1, const float *y,
                              const float *my, int64_t d2, int64_t n, float *gram, float *cross);

// x: [n, d] (ldx), mx: [d] or NULL -> out: [n, n] = (x - mx)(x - mx)^T
v2t_status v2t_row_gram(v2t_exec *ex, const float *x, int64_t ldx, const float *mx, int64_t n, int64_t d,
                        float *out);

// x: [n, d1] (ldx), w: [d1, d2], b: [d2] or NULL -> y: [n, d2] = x w + b
v2t_status v2t_affine(v2t_exec *ex, const float *x, int64_t ldx, int64_t n, int64_t d1, const float *w,
                      const float *b, int64_t d2, float *y);

#endif
