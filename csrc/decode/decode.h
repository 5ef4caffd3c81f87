/* Generation over any step-wise decoder, reproducing transformers' `generate`
 * (greedy and beam search, no sampling) for the pinned transformers version.
 *
 * The decoder is reached through v2t_decoder_ops so the same search serves the inverter and
 * the corrector (and a test double driven from Python). Rows are example-major:
 * row = example * beams + beam. All rows stay in the batch until the search ends; finished
 * rows are fed pad tokens exactly as transformers does.
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
} v2t_decoder_ops;

typedef struct v2t_generate_config {
    int64_t max_length;           /* counts the decoder start token, like transformers */
    int64_t num_beams;            /* 1 = greedy */
    int64_t num_return_sequences; /* <= num_beams */
    float length_penalty;
    int early_stopping;           /* transformers' early_stopping=False/True */
    int32_t decoder_start_id, eos_id, pad_id;
} v2t_generate_config;

/* Defaults of T5's generation config: max_length 20, 1 beam, length_penalty 1.0, start = pad = 0, eos = 1. */
v2t_generate_config v2t_generate_defaults(void);

/* out_ids: [batch * num_return_sequences, max_length], filled with pad after each sequence;
 * out_lengths: [batch * num_return_sequences] = the number of valid columns of each row
 * (the array transformers returns is trimmed to the longest: max(out_lengths) columns).
 * out_scores (beam search only, may be NULL): the length-penalised sequence scores. */
v2t_status v2t_generate(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                        int32_t *out_ids, int64_t *out_lengths, float *out_scores);

#endif
