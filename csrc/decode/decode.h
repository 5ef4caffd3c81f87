/* Generation over any step-wise decoder, reproducing transformers' `generate`
 * (greedy and beam search, no sampling) for the pinned transformers version.
 *
 * The decoder is reached through v2t_decoder_ops so the same search serves the inverter and
 * the corrector (and a test double driven from Python). Rows are example-major:
 * row = example * beams + beam. Finished rows are fed pad tokens exactly as transformers does;
 * a decoder with a `retire` hook also stops computing the rows of finished examples (their
 * logits are never read again, so the results are the same).
 */
#ifndef V2T_DECODE_DECODE_H
#define V2T_DECODE_DECODE_H

#include <stdint.h>

#include "../core/status.h"

typedef struct v2t_decoder_ops {
    /* Begin a search over `batch` examples with `beams` rows each (caches emptied). */
    v2t_status (*start)(void *ctx, int64_t batch, int64_t beams);
    /* One decoder step. tokens[rows] are the newest tokens; parents[rows] (NULL on the first
     * step or for greedy) give, for each row, the row of the previous step it continues, so
     * the decoder can reorder its caches. Writes logits[rows, vocab] (unnormalised). */
    v2t_status (*step)(void *ctx, const int32_t *tokens, const int32_t *parents, int64_t rows, float *logits);
    int64_t vocab;
    /* Optional (NULL: every row is always computed). done[batch] flags the examples whose
     * search has ended; the searches call it whenever the set grows, and read no logits of
     * those examples' rows afterwards, so the decoder may stop computing them (their logits
     * rows are then unspecified). */
    v2t_status (*retire)(void *ctx, const unsigned char *done);
} v2t_decoder_ops;

/* transformers' early_stopping values. */
enum { V2T_EARLY_STOP_FALSE = 0, V2T_EARLY_STOP_TRUE = 1, V2T_EARLY_STOP_NEVER = 2 };

typedef struct v2t_generate_config {
    int64_t max_length;           /* counts the decoder start token, like transformers; >= 2 */
    int64_t num_beams;            /* 1 = greedy */
    int64_t num_return_sequences; /* <= num_beams; 1 for greedy */
    double length_penalty;        /* double: transformers scores hypotheses with Python floats */
    int early_stopping;           /* V2T_EARLY_STOP_FALSE / _TRUE / _NEVER */
    int32_t decoder_start_id, pad_id;
    int32_t eos_id;               /* < 0: no eos token (rows only end at max_length) */
} v2t_generate_config;

/* Defaults of T5's generation config: max_length 20, 1 beam, 1 returned sequence,
 * length_penalty 1.0, early_stopping False, start = pad = 0, eos = 1. */
v2t_generate_config v2t_generate_defaults(void);

/* The argument checks of v2t_generate on their own (for callers that size outputs first):
 * every message names the argument (max_length, num_beams, num_return_sequences,
 * length_penalty, early_stopping, decoder_start_token_id, pad_token_id, eos_token_id, batch,
 * vocab) and says what was expected and what was given. */
v2t_status v2t_generate_check(const v2t_decoder_ops *ops, int64_t batch, const v2t_generate_config *cfg);

/* Greedy search (num_beams == 1) or beam search, no sampling, no logits processors (T5's
 * default generation config adds none).
 * out_ids: [batch * num_return_sequences, max_length], each row the decoder start token, the
 * generated tokens (eos included when the row ended with it), then pad up to max_length;
 * out_lengths: [batch * num_return_sequences] = the number of valid columns of each row
 * (the array transformers returns is trimmed to the longest: max(out_lengths) columns and
 * padded with pad_id). out_scores (beam search only, may be NULL; left untouched by greedy):
 * transformers' sequences_scores, the length-penalised hypothesis scores.
 * The decoder is called at most max_length - 1 times; parents passed to ops->step always point
 * to a row of the same example (rows of examples that are already finished continue
 * themselves). All buffers are allocated before the first step. */
v2t_status v2t_generate(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                        int32_t *out_ids, int64_t *out_lengths, float *out_scores);

#endif
