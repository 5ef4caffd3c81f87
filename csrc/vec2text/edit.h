/* Local edit search: after the correction rounds, each example's best hypothesis is changed one
 * token at a time while the cosine of its re-embedding to the target rises (beyond vec2text; the
 * loop runs it only when asked, see loop.h).
 *
 * One edit round, for every example still improving:
 *  1. the model (the corrector when there is one, conditioned on the target, the hypothesis and
 *     its embedding, else the inverter, conditioned on the target) reads the hypothesis under
 *     teacher forcing: logits[p] is its next-token distribution after the decoder start and the
 *     first p tokens;
 *  2. proposals, for a hypothesis of n tokens t_1..t_n (decoder start first, then the tokens,
 *     then </s> when it has one), in this order, position p = 1..n+1:
 *       substitutions  t_p -> v for the first top_k tokens v of topk(logits[p-1]) that are not
 *                      pad, </s> or t_p                                      (p <= n)
 *       insertions     v before t_p for the first top_k tokens v of topk(logits[p-1]) that are
 *                      not pad or </s>                         (while n + 1 tokens still fit)
 *       deletion       of t_p                                               (p <= n, n >= 2)
 *  3. every proposal is re-embedded (v2t_embed_ops) and scored by cosine to the target; the
 *     best (first on ties) replaces the hypothesis when its cosine is higher, otherwise the
 *     example stops.
 * The result never has a lower cosine than its input.
 */
#ifndef V2T_VEC2TEXT_EDIT_H
#define V2T_VEC2TEXT_EDIT_H

#include <stdint.h>

#include "corrector.h"
#include "inverter.h"
#include "loop.h"

typedef struct v2t_edit_config {
    int64_t rounds; /* edit rounds, >= 0 */
    int64_t top_k;  /* proposals per position and kind, >= 1 */
    int64_t chunk;  /* examples per teacher-forced pass, >= 1 */
} v2t_edit_config;

/* Proposals for one hypothesis. row: [len] (decoder start, n tokens, </s> if has_eos);
 * logits: [n + 1, V] teacher-forced; top: scratch [n + 1, top_k + 3] int32; work: v2t_topk
 * scratch of v2t_topk_work_items(V, top_k + 3) items. Writes at most v2t_edit_max_proposals
 * rows of width `width` (pad after each row) to out, their lengths to out_len; returns the count. */
int64_t v2t_edit_max_proposals(int64_t n, int64_t top_k);
int64_t v2t_edit_propose(const int32_t *row, int64_t n, int has_eos, const float *logits, int64_t V, int64_t top_k,
                         int32_t pad, int32_t eos, int64_t width, int32_t *top, void *work, int32_t *out,
                         int64_t *out_len);

/* Search the hypotheses of examples todo[0..n): ids [N, W] (pad after each row), len [N],
 * emb [N, D], cos [N] are updated in place (only rows that improved change). targets [N, D].
 * Exactly one of inv / cor is used: cor when non-NULL. accepted (may be NULL): [N], adds the
 * number of edits accepted per example. observer: progress in units of example-rounds. */
v2t_status v2t_edit_search(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_embed_ops *embed,
                           const v2t_edit_config *cfg, const float *targets, const int64_t *todo, int64_t n,
                           int32_t *ids, int64_t W, int64_t *len, float *emb, float *cos, int64_t *accepted);

#endif
