/* Nearest neighbours by inner product, averaged: the pseudo-pairs of the unsupervised
 * aligners. For each query row, the `k` key rows with the largest inner product (cosine when
 * both sides are unit rows) are found, and the mean of their `values` rows is written out. */
#ifndef V2T_ALIGN_NEIGHBORS_H
#define V2T_ALIGN_NEIGHBORS_H

#include <stdint.h>

#include "../ops/gemm.h"

// q: [nq, d], keys: [nk, d], values: [nk, dv] -> out: [nq, dv] = mean of values over the top-k keys of
// each query; idx: [nq, k] or NULL -> the chosen key indices, best first. 1 <= k <= nk.
v2t_status v2t_topk_mean(v2t_exec *ex, const float *q, int64_t nq, const float *keys, int64_t nk, int64_t d,
                         const float *values, int64_t dv, int64_t k, float *out, int64_t *idx);

// x: [n, d], mean: [d] or NULL -> out: [n, d] = (x - mean) / |x - mean| (zero rows stay zero); out may be x
void v2t_centre_normalise(const float *x, int64_t n, int64_t d, const float *mean, float *out);

#endif
