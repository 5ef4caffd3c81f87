/* Sequence-level beam selection of the vec2text correction loop.
 *
 * Candidates of one example are scored by the cosine between their re-embedding and the
 * target embedding, cos(x, y) = x.y / (max(|x|, 1e-8) * max(|y|, 1e-8)) as torch computes it.
 * Intermediate rounds keep the first `keep` candidates with distinct token rows in descending
 * cosine order; the last round keeps the single best candidate (first index on ties).
 */
#ifndef V2T_VEC2TEXT_SELECT_H
#define V2T_VEC2TEXT_SELECT_H

#include <stdint.h>

#include "../core/status.h"

// a: [n, D], b: [n, D] (b may have row stride 0 to compare many rows with one target) -> out: [n]
void v2t_cosine_rows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t n, int64_t D, float *out);
void v2t_cosine_rows_ref(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t n, int64_t D, float *out);

/* For each of `batch` examples with `cands` candidates each:
 * scores: [batch, cands]; ids: [batch, cands, len] token rows (compared whole, padding included).
 * Writes out_idx: [batch, keep] candidate indices (within the example) of the first `keep`
 * distinct rows in descending score order (ties: lower index first). When an example has fewer
 * than `keep` distinct rows, the remaining slots repeat its distinct rows in the same order
 * (the reference crashes there; see loop.c) and *short_examples counts such examples. */
v2t_status v2t_select_distinct_topk(const float *scores, const int32_t *ids, int64_t batch, int64_t cands,
                                    int64_t len, int64_t keep, int64_t *out_idx, int64_t *short_examples);

/* out_idx[b] = argmax over candidates of scores[b, :] (first index on ties). */
void v2t_select_best(const float *scores, int64_t batch, int64_t cands, int64_t *out_idx);

#endif
