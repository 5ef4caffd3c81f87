/* T5 encoder-decoder (transformers' T5ForConditionalGeneration / T5EncoderModel) on oneDNN.
 *
 * The model (v2t_t5_model) holds prepacked weights and is immutable after v2t_t5_load: any
 * number of threads may use it at once, each through its own v2t_t5_session, which owns the
 * per-call state: the oneDNN stream and scratchpad, activation buffers, the encoder output of
 * the current batch, the cross-attention keys/values (computed once per example and shared by
 * its beams) and the self-attention KV cache, preallocated for the maximum decoder length.
 *
 * Numerics follow transformers: pre-norm residual blocks with RMSNorm (no mean, no bias),
 * attention without 1/sqrt(d) scaling and a relative position bias from block 0 of each stack
 * (bidirectional buckets in the encoder, causal in the decoder, none in cross-attention),
 * ReLU or gated-GELU feed-forward, and, with tied embeddings, the decoder output rescaled by
 * d_model^-0.5 before the lm_head.
 */
#ifndef V2T_NN_T5_H
#define V2T_NN_T5_H

#include <stdint.h>

#include "../core/status.h"
#include "../decode/decode.h"
#include "../io/safetensors.h"
#include "../ops/linear.h"

typedef struct v2t_t5_config {
    int64_t vocab_size, d_model, d_kv, num_heads, d_ff;
    int64_t num_layers, num_decoder_layers;
    int64_t relative_attention_num_buckets, relative_attention_max_distance;
    int gated;                /* 1: wi_0/wi_1 gate (v1.1 "gated-gelu"), 0: single wi (v1.0 "relu") */
    v2t_act act;              /* FFN activation: RELU ("relu"), GELU_TANH ("gelu_new"), GELU_ERF ("gelu") */
    int tie_word_embeddings;  /* lm_head = shared embedding, decoder output scaled by d_model^-0.5 */
    float layer_norm_epsilon;
    int32_t decoder_start_token_id, eos_token_id, pad_token_id;
    int64_t max_length;       /* longest encoder input / decoder sequence accepted */
    int encoder_only;         /* load the encoder stack only (T5EncoderModel, GTR embedder) */
    v2t_dtype dtype;          /* weight dtype of the matmuls: F32, or BF16 (inputs rounded to bf16, f32 accumulate) */
} v2t_t5_config;

/* transformers' T5Config defaults (t5-small shapes, v1.0 ReLU, tied, max_length 512). */
v2t_t5_config v2t_t5_config_defaults(void);

/* Checks every field; the message names the field and the value. */
v2t_status v2t_t5_config_check(const v2t_t5_config *cfg);

/* One transformer block. Self-attention Q, K, V are fused into one [3*inner, d_model] matmul.
 * Cross-attention K, V of every decoder block live in the stack's `cross_kv` matmul. */
typedef struct v2t_t5_block {
    const float *ln_self;   /* [d_model] */
    v2t_linear qkv;         /* [3*inner, d_model] */
    v2t_linear o;           /* [d_model, inner], accumulates into the residual */
    const float *ln_cross;  /* decoder only: [d_model] */
    v2t_linear cross_q;     /* decoder only: [inner, d_model] */
    v2t_linear cross_o;     /* decoder only: [d_model, inner], accumulates */
    const float *ln_ff;     /* [d_model] */
    v2t_linear wi;          /* [d_ff, d_model] with the activation fused, or [2*d_ff, d_model] (wi_0; wi_1) */
    v2t_linear wo;          /* [d_model, d_ff], accumulates */
} v2t_t5_block;

typedef struct v2t_t5_stack {
    int64_t num_layers;
    v2t_t5_block *blocks;
    const float *rel_bias;  /* block 0's relative_attention_bias: [num_buckets, num_heads] */
    const float *final_ln;  /* [d_model] */
    v2t_linear cross_kv;    /* decoder only: [num_layers * 2 * inner, d_model]: per layer (k; v) */
} v2t_t5_stack;

typedef struct v2t_t5_model {
    v2t_t5_config cfg;
    int64_t inner;          /* num_heads * d_kv */
    float *params;          /* one allocation: embedding, norms, position bias tables */
    const float *embed;     /* shared embedding [vocab_size, d_model] */
    const float *logits_ln; /* decoder final norm weight, times d_model^-0.5 when tied: [d_model] */
    v2t_t5_stack encoder, decoder;
    v2t_linear lm_head;     /* [vocab_size, d_model] (the embedding when tied) */
} v2t_t5_model;

/* Load every tensor the config needs from `st`, names prefixed by `prefix` ("" for a
 * transformers save, "encoder_decoder." inside a vec2text checkpoint). A tensor the config
 * needs and the file lacks fails with V2T_ERR_MISSING naming it; a wrong shape with
 * V2T_ERR_FORMAT. With tied embeddings only `shared.weight` needs to be present
 * (`encoder.embed_tokens.weight` is accepted in its place). *out is NULL on failure. */
v2t_status v2t_t5_load(const v2t_st *st, const char *prefix, const v2t_t5_config *cfg, v2t_t5_model **out);
void v2t_t5_free(v2t_t5_model *m);

/* transformers' T5Attention._relative_position_bucket for one relative position
 * (memory position - query position). */
int64_t v2t_t5_relpos_bucket(int64_t rel, int bidirectional, int64_t num_buckets, int64_t max_distance);

/* ---- per-call state ---- */

typedef struct v2t_t5_session v2t_t5_session;

v2t_status v2t_t5_session_create(const v2t_t5_model *m, v2t_t5_session **out);
void v2t_t5_session_free(v2t_t5_session *s);

/* Encoder forward. Exactly one of ids [B, T] / embeds [B, T, d_model] is non-NULL;
 * mask [B, T] (1 = token, 0 = padding) may be NULL for all ones. out: [B, T, d_model], the
 * final hidden states after the final RMSNorm. */
v2t_status v2t_t5_encode(v2t_t5_session *s, const int32_t *ids, const float *embeds, const int32_t *mask, int64_t B,
                         int64_t T, float *out);

/* Give the decoder the source of the current batch: encoder states enc [B, T, d_model] and
 * mask [B, T] (NULL = all ones), copied; cross-attention keys/values are computed here, once
 * per example. `max_steps` reserves the self-attention cache: the number of decoder positions
 * any later search or teacher-forced pass may use. */
v2t_status v2t_t5_session_set_source(v2t_t5_session *s, const float *enc, const int32_t *mask, int64_t B, int64_t T,
                                     int64_t max_steps);

/* A copy gate for the decoder of the current source: ids [B, H] (row stride ld), B the source
 * batch; at decoder position t < H every row of example b gets `w . x + b` added to the logit of
 * ids[b, t], x the row's final normalised state as the output layer reads it (times d_model^-0.5
 * when the embeddings are tied); id 0 and positions >= H get nothing. Ids must lie in [0, vocab).
 * The ids are copied, w ([d_model]) is borrowed until the next source; set_source clears the gate. */
v2t_status v2t_t5_session_set_copy(v2t_t5_session *s, const int32_t *ids, int64_t ld, int64_t B, int64_t H,
                                   const float *w, float b);

/* Same, running the encoder first (ids or embeds as in v2t_t5_encode). */
v2t_status v2t_t5_session_encode_source(v2t_t5_session *s, const int32_t *ids, const float *embeds,
                                        const int32_t *mask, int64_t B, int64_t T, int64_t max_steps);

/* Step-wise decoding (the v2t_decoder_ops of decode.h; ctx is the session).
 * start: `batch` must equal the source batch; rows = batch * beams (example-major); the
 * self-attention cache is emptied and sized for rows x max_steps (the only allocation).
 * step: tokens [rows] at the next position; parents [rows] or NULL: row r continues row
 * parents[r] of the previous step, which must belong to the same example; logits [rows, vocab]. */
v2t_status v2t_t5_start(void *session, int64_t batch, int64_t beams);
v2t_status v2t_t5_step(void *session, const int32_t *tokens, const int32_t *parents, int64_t rows, float *logits);
/* retire: done [batch] flags finished examples; later steps compute only the other examples'
 * rows (logits rows of retired examples are left unspecified). Every row is still computed,
 * as transformers does, when the environment variable VEC2TEXT_C_KEEP_FINISHED is set to a
 * non-zero value at start (for comparisons and benchmarks). */
v2t_status v2t_t5_retire(void *session, const unsigned char *done);

/* The ops table for this model: start/step/retire above, vocab = cfg.vocab_size. */
v2t_decoder_ops v2t_t5_decoder_ops(const v2t_t5_model *m);

/* Teacher forcing over the current source: decoder ids [B, L] (B = source batch, L <= max_steps)
 * in one causal pass; logits [B, L, vocab]. Leaves the cache filled with the L positions. */
v2t_status v2t_t5_decoder_logits(v2t_t5_session *s, const int32_t *dec_ids, int64_t L, float *logits);

#endif
