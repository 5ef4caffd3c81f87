/* Evaluation of an aligner on held-out pairs, as in the vec2vec paper.
 *
 * Row i of the predictions should land nearest to row i of the targets. Within each chunk of
 * `chunk` consecutive rows, the cosine matrix S[i, j] = cos(p_i, t_j) is formed block by block
 * (never whole) on oneDNN, and for each row
 *   rank_i = 1 + #{j in chunk : S[i, j] > S[i, i]}      (1 = the true partner is nearest)
 *   top1_i = 1 when argmax_j S[i, j] == i (first maximum, as numpy.argmax breaks ties).
 * Rows of zero norm get cosine 0 with everything.
 */
#ifndef V2T_ALIGN_RETRIEVAL_H
#define V2T_ALIGN_RETRIEVAL_H

#include <stdint.h>

#include "../ops/gemm.h"

// p, t: [n, d] row-major; mp, mt: [d] or NULL (subtracted first) -> cos: [n], cos_i = cos(p_i - mp, t_i - mt)
void v2t_row_cosine(const float *p, const float *mp, const float *t, const float *mt, int64_t n, int64_t d,
                    float *cos);

// p, t: [n, d] row-major -> rank: [n] (1-indexed), top1: [n] (0/1); chunk >= 1
v2t_status v2t_retrieval_ranks(v2t_exec *ex, const float *p, const float *t, int64_t n, int64_t d, int64_t chunk,
                               int64_t *rank, uint8_t *top1);

#endif
