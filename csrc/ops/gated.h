/* The gate of a gated feed-forward (T5 v1.1 "gated-gelu"): the fused input projection
 * produces (a | b) per row, and the FFN hidden state is act(a) * b.
 */
#ifndef V2T_OPS_GATED_H
#define V2T_OPS_GATED_H

#include <stdint.h>

#include "linear.h"

// x: [M, 2F] row-major (row stride ldx), a = x[:, :F], b = x[:, F:]
// y: [M, F] (row stride ldy) = act(a) * b; y may alias x (same pointer, ldy == ldx).
void v2t_gated_act(v2t_act act, const float *x, int64_t ldx, int64_t M, int64_t F, float *y, int64_t ldy);

/* Naive reference in double precision, same contract. */
void v2t_gated_act_ref(v2t_act act, const float *x, int64_t ldx, int64_t M, int64_t F, float *y, int64_t ldy);

#endif
