/* The vec2text correction loop (vec2text 0.0.13 `api.invert_embeddings` with its
 * `Corrector.generate`), batched across examples and beams, with the GIL-free C core doing
 * everything but the re-embedding, which goes through v2t_embed_ops (the binding decodes the
 * token rows to text and runs an embedder there).
 *
 * Semantics (b = sequence_beam_width or 1, steps = num_steps or 1):
 *  - num_steps < 0 ("None"): the inverter alone, greedy, max_length. sequence_beam_width must be 0.
 *  - otherwise: the step-0 hypothesis is the inverter's greedy output with
 *    hypothesis_max_length (the corrector's max_seq_length), re-embedded; then exactly `steps`
 *    correction rounds. A round builds the corrector's encoder inputs from (target, hypothesis
 *    embedding, hypothesis ids) for every hypothesis row, runs beam search with
 *    num_beams = num_return_sequences = b (b = 1: greedy), max_length, and re-embeds every
 *    candidate; candidate rows are example-major, row = (example * beams + parent) * b + beam.
 *    With b = 1 the candidate is the new hypothesis. With b > 1, an intermediate round keeps
 *    the first b distinct token rows in torch-topk order of their cosine to the target, the
 *    last round keeps the best-cosine candidate (first index on ties).
 *  - the reference's early stop never fires and candidates of earlier rounds are dropped.
 * When an example has fewer than b distinct candidates (the reference raises there), the
 * distinct ones are repeated in order to fill its b rows.
 *
 * Beyond the reference (all off by default): keep_best (return the best-cosine hypothesis seen
 * in any round, step 0 included, earliest on ties), stop_at_cosine (an example whose best
 * hypothesis reaches the threshold after a round stops there and returns it), an observer
 * called after every round and for progress, and chunking: examples are processed
 * `chunk` at a time inside each round so the decoder cache stays within a memory budget.
 * Search, which spends inference to raise the cosine: `candidates` > b makes each round's beam
 * search return that many candidates per hypothesis (all re-embedded and ranked; b hypotheses
 * are still kept, or the best one when b = 1), and `edit_rounds` > 0 runs the local edit search
 * of edit.h on every example's best hypothesis after the rounds (after the inverter when
 * num_steps is None). Either one turns keep_best on.
 */
#ifndef V2T_VEC2TEXT_LOOP_H
#define V2T_VEC2TEXT_LOOP_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "corrector.h"
#include "inverter.h"

typedef struct v2t_embed_ops {
    /* ids: [rows, width] token rows (decoder start token, the generated tokens, pad after the
     * end) -> out: [rows, dim] their embeddings. */
    v2t_status (*embed)(void *ctx, const int32_t *ids, int64_t rows, int64_t width, float *out);
    void *ctx;
    int64_t dim;
} v2t_embed_ops;

/* What an observer sees after each round (round 0 = the inverter's hypothesis). */
typedef struct v2t_loop_round {
    int64_t round, steps;     /* steps = number of correction rounds (0 with num_steps None) */
    int64_t batch;            /* examples */
    int64_t beams;            /* hypothesis rows per example after this round (1 or b) */
    int64_t width;            /* columns of ids */
    const int32_t *ids;       /* [batch * beams, width] hypotheses (pad after each row) */
    const int64_t *lengths;   /* [batch * beams] */
    const float *embeddings;  /* [batch * beams, dim] or NULL when not computed */
    const float *cosines;     /* [batch * beams] or NULL */
    const float *best_scores; /* [batch]: max candidate cosine of this round (the reference's
                                 best_scores), or NULL when there was no selection (b = 1) */
    const uint8_t *active;    /* [batch]: 1 while the example is still being corrected */
} v2t_loop_round;

typedef struct v2t_loop_observer {
    v2t_status (*round)(void *ctx, const v2t_loop_round *r);      /* may be NULL */
    v2t_status (*progress)(void *ctx, int64_t done, int64_t total); /* units: chunks x rounds; may be NULL */
    void *ctx;
} v2t_loop_observer;

/* Seconds spent per phase of v2t_invert (wall clock), for benchmarks. */
typedef struct v2t_loop_timings {
    double transforms; /* embedding transforms, corrector inputs and LayerNorm */
    double encoder;    /* T5 encoder + cross-attention keys/values */
    double decoding;   /* greedy / beam search */
    double embedding;  /* re-embedding callbacks (decode to text + embedder) */
    double selection;  /* cosines, selection, bookkeeping */
} v2t_loop_timings;

typedef struct v2t_loop_config {
    int64_t num_steps;             /* < 0: None (inverter only) */
    int64_t sequence_beam_width;   /* >= 0; 0 behaves as 1 without the reference's selection */
    int64_t max_length;            /* 128: inverter-only output and every correction round */
    int64_t hypothesis_max_length; /* 32: the step-0 hypothesis (corrector max_seq_length) */
    int keep_best;
    float stop_at_cosine;          /* NaN: off */
    int embed_outputs;             /* num_steps None: also re-embed the output (for observers / cosines) */
    int64_t candidates;            /* beam-search candidates per hypothesis and round; 0: b */
    int64_t edit_rounds;           /* local edit rounds after the correction rounds; 0: off */
    int64_t edit_top_k;            /* edit proposals per position and kind (edit.h) */
    int64_t chunk;                 /* examples per generate call; 0: from memory_budget */
    size_t memory_budget;          /* bytes of decoder state per chunk when chunk == 0 */
    v2t_loop_timings *timings;     /* filled (added to) when not NULL */
} v2t_loop_config;

/* num_steps None, width 0, max_length 128, hypothesis_max_length 32, options off,
 * chunk 0 with a 2 GiB budget. */
v2t_loop_config v2t_loop_defaults(void);

/* Examples per chunk for `batch` examples under cfg (balanced chunks). */
/* About how many bytes of decoder and encoder state one example needs in a round. */
double v2t_loop_bytes_per_example(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_loop_config *cfg);

int64_t v2t_loop_chunk(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_loop_config *cfg, int64_t batch);

/* targets: [batch, D] -> out_ids: [batch, out_width] (pad after each row), out_lengths: [batch],
 * out_cosines: [batch] (cosine of each result's re-embedding to its target; NaN where not
 * computed) or NULL. out_width must be >= max(max_length, hypothesis_max_length).
 * cor may be NULL when num_steps < 0. */
v2t_status v2t_invert(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_embed_ops *embed,
                      const v2t_loop_observer *obs, const v2t_loop_config *cfg, const float *targets, int64_t batch,
                      int32_t *out_ids, int64_t out_width, int64_t *out_lengths, float *out_cosines);

#endif
