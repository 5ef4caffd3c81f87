/* The finished hypotheses of beam search, one n-best list per example, with the exact
 * semantics of transformers' BeamHypotheses (pinned version 4.46.3):
 * - a hypothesis scores sum_logprobs / generated_len ** length_penalty, in double precision
 *   (Python floats), from the float32 running sum;
 * - it enters the list while the list is short, or when it beats the current worst score;
 *   an overfull list drops its lowest score (the earliest entry among equal scores);
 * - is_done: enough hypotheses and either early stopping, or (early_stopping False) the best
 *   running sum divided by cur_len ** length_penalty cannot beat the worst kept score, or
 *   (early_stopping "never") the same bound taken at max_length when length_penalty > 0;
 * - the final ranking is by score, highest first; among equal scores the entry added later
 *   comes first (Python's stable sort followed by pop()).
 * All storage is allocated once for batch x beams hypotheses of up to max_length tokens.
 */
#ifndef V2T_DECODE_HYPOTHESES_H
#define V2T_DECODE_HYPOTHESES_H

#include <stdint.h>

#include "../core/status.h"

typedef struct v2t_hypotheses {
    int64_t batch, beams, max_length;
    double length_penalty;
    int early_stopping; /* 0 False, 1 True, 2 "never" */
    int64_t *count;     /* [batch] */
    double *worst;      /* [batch] transformers' worst_score (starts at 1e9) */
    int32_t *order;     /* [batch, beams] list position -> slot */
    double *score;      /* [batch, beams] by slot */
    int64_t *length;    /* [batch, beams] by slot: tokens stored (decoder start included, eos not) */
    int32_t *tokens;    /* [batch, beams, max_length] by slot */
    void *block;        /* the one allocation behind the arrays above */
} v2t_hypotheses;

v2t_status v2t_hypotheses_init(v2t_hypotheses *h, int64_t batch, int64_t beams, int64_t max_length,
                               double length_penalty, int early_stopping);
void v2t_hypotheses_release(v2t_hypotheses *h);

/* Offer tokens[0, len) of example b with running sum `sum_logprobs`; generated_len is the
 * length the score is normalised by. */
void v2t_hypotheses_add(v2t_hypotheses *h, int64_t b, const int32_t *tokens, int64_t len, double sum_logprobs,
                        int64_t generated_len);

/* transformers' BeamHypotheses.is_done(best_sum_logprobs, cur_len) with the decoder prompt
 * length already subtracted: gen_len = tokens generated so far, counting the candidate. */
int v2t_hypotheses_is_done(const v2t_hypotheses *h, int64_t b, double best_sum_logprobs, int64_t gen_len);

/* Slots of example b in final order (best first) into ranked[count(b)]. */
void v2t_hypotheses_rank(const v2t_hypotheses *h, int64_t b, int32_t *ranked);

#endif
