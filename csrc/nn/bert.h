/* BERT encoder (as in all-MiniLM-L6-v2 and bert-base): word + absolute position + token type
 * embeddings, embedding LayerNorm, then per layer
 *     h = LayerNorm(h + Wo · attention(Wq h, Wk h, Wv h))       scale 1/sqrt(head_dim)
 *     h = LayerNorm(h + W2 · act(W1 h))                         act: GELU (erf) for "gelu"
 * (post-LayerNorm), all LayerNorms with eps from the config.
 *
 * Weights come from a safetensors file in transformers' naming, with or without the "bert."
 * prefix (BertModel vs. the task heads). Q, K and V are fused into one [3D, D] matmul; the
 * residual adds are fused into the output matmuls. A v2t_bert is immutable after loading;
 * each calling thread brings its own v2t_bert_state.
 */
#ifndef V2T_NN_BERT_H
#define V2T_NN_BERT_H

#include <stdint.h>

#include "../core/alloc.h"
#include "../core/status.h"
#include "../ops/linear.h"
#include "pooling.h"

typedef struct v2t_bert_config {
    int64_t vocab_size;        /* 30522 */
    int64_t hidden_size;       /* 768 (384 for all-MiniLM-L6-v2) */
    int64_t num_layers;        /* 12 */
    int64_t num_heads;         /* 12 */
    int64_t intermediate_size; /* 3072 */
    int64_t max_position;      /* 512 */
    int64_t type_vocab_size;   /* 2 */
    float layer_norm_eps;      /* 1e-12 */
    v2t_act hidden_act;        /* V2T_ACT_GELU_ERF */
    v2t_dtype dtype;           /* weights: V2T_DT_F32 */
} v2t_bert_config;

typedef struct v2t_bert_layer {
    v2t_linear qkv;      /* D -> 3D: query, key, value */
    v2t_linear attn_out; /* D -> D, added to the residual */
    v2t_linear ffn_in;   /* D -> I, activation fused */
    v2t_linear ffn_out;  /* I -> D, added to the residual */
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* [D] each: after attention, after the FFN */
} v2t_bert_layer;

typedef struct v2t_bert {
    v2t_bert_config cfg;
    float *word;  /* [vocab_size, D] */
    float *pos;   /* [max_position, D] */
    float *type;  /* [type_vocab_size, D] */
    float *emb_ln_w, *emb_ln_b; /* [D] */
    v2t_bert_layer *layers;     /* [num_layers] */
} v2t_bert;

/* Per-call state: oneDNN stream, activations, attention scratch. Zero-initialise, then
 * v2t_bert_state_init; release with v2t_bert_state_release. */
typedef struct v2t_bert_state {
    v2t_exec ex;
    int ready;
    v2t_buffer hidden, qkv, ctx, ffn, attn;
} v2t_bert_state;

/* bert-base defaults (transformers' BertConfig). */
void v2t_bert_default_config(v2t_bert_config *cfg);

/* Load and pack the weights of `path` (a safetensors file); *out is NULL on failure, and a
 * missing tensor is named in the message. */
v2t_status v2t_bert_load(const char *path, const v2t_bert_config *cfg, v2t_bert **out);
void v2t_bert_free(v2t_bert *m);

v2t_status v2t_bert_state_init(v2t_bert_state *s);
void v2t_bert_state_release(v2t_bert_state *s);

/* Final hidden states.
 * ids: [B, T] int32; type_ids: [B, T] or NULL (zeros); mask: [B, T] of 0/1 or NULL (ones);
 * out: [B, T, D] row-major. T may not exceed max_position. */
v2t_status v2t_bert_forward(const v2t_bert *m, v2t_bert_state *s, const int32_t *ids, const int32_t *type_ids,
                            const int32_t *mask, int64_t B, int64_t T, float *out);

/* Sentence embeddings: forward, then pooling (mean over unmasked tokens or the first token),
 * then optional L2 normalisation. out: [B, D]. */
v2t_status v2t_bert_embed(const v2t_bert *m, v2t_bert_state *s, const int32_t *ids, const int32_t *type_ids,
                          const int32_t *mask, int64_t B, int64_t T, v2t_pooling pooling, int normalize,
                          float *out);

#endif
