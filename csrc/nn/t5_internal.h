/* Internals shared by the T5 source files: the session layout and the sublayers. */
#ifndef V2T_NN_T5_INTERNAL_H
#define V2T_NN_T5_INTERNAL_H

#include "../core/alloc.h"
#include "t5.h"

struct v2t_t5_session {
    const v2t_t5_model *m;
    v2t_exec ex;
    /* activations for N token rows, grown only when N grows */
    int64_t act_rows;
    v2t_buffer h;       /* [N, d_model] residual stream */
    v2t_buffer xn;      /* [N, d_model] normalised input of a sublayer */
    v2t_buffer qkv;     /* [N, 3*inner] fused projections (cross-attention queries reuse it) */
    v2t_buffer attn;    /* [N, inner] attention output */
    v2t_buffer ff;      /* [N, d_ff] or [N, 2*d_ff] (gated) */
    v2t_buffer scores;  /* attention score rows */
    v2t_buffer enc_bias; /* encoder position bias by offset: [heads, 2T-1] */
    v2t_buffer ones;    /* all-ones mask when the caller gives none */
    /* source of the current batch */
    int has_source;
    int64_t batch, src_len, max_steps;
    v2t_buffer enc_states; /* [B, T, d_model] when the session ran the encoder itself */
    v2t_buffer enc_mask;   /* int32 [B, T] */
    /* cross-attention keys/values, one block of 2*inner*T floats per (layer, example): the keys
     * transposed per head, [heads, d_kv, T], then the values [T, inner] */
    v2t_buffer cross_kv;   /* [L, B, 2*inner*T] */
    v2t_buffer cross_raw;  /* [chunk rows, L * 2*inner]: the fused projection of a few examples */
    /* decoding state */
    int started;
    int64_t beams, rows, pos; /* pos = positions held by the self-attention cache */
    /* self-attention cache, one block of 2*inner*max_steps floats per (layer, row): the keys
     * transposed per head, [heads, d_kv, max_steps], then the values [max_steps, inner] */
    v2t_buffer self_kv;    /* [L, rows, 2*inner*max_steps] */
    v2t_buffer dec_bias;   /* decoder position bias by offset: [heads, 2*max_steps-1] */
    v2t_buffer reorder;    /* one example's cache rows while beams are reordered */
    /* common ancestry of the beams: share[e, r, q] = how many leading cache positions rows r and
     * q of example e hold as copies of one ancestor (bitwise equal); the self-attention reads
     * row r's first share[e, r, 0] positions from the example's first row */
    v2t_buffer share;      /* int64 [batch, beams, beams] = [rows, beams] */
    /* examples still computed (all after start; retire() drops finished ones): the active
     * examples as runs of consecutive examples, and the full row of each computed row */
    int share_prefix;      /* 0 when VEC2TEXT_C_OWN_CACHE_ROWS is set: every row reads its own cache copy */
    int drop_finished;     /* 0 when VEC2TEXT_C_KEEP_FINISHED is set: compute every row, as transformers */
    int64_t n_active, n_runs;
    v2t_buffer runs;       /* int64 [batch, 2]: (first example, count) */
    v2t_buffer row_map;    /* int32 [rows]: computed row -> row of the full batch */
    v2t_buffer ids_c;      /* int32 [rows]: the tokens of the computed rows */
    /* copy gate (v2t_t5_session_set_copy): a token id per (example, decoder position) whose logit
     * gains copy_w . x + copy_b there; 0 gains nothing */
    int has_copy;
    v2t_buffer copy_ids;   /* int32 [batch, max_steps] */
    const float *copy_w;   /* [d_model], borrowed */
    float copy_b;
};

/* Make the activation buffers hold N token rows. */
v2t_status v2t_t5_reserve_activations(v2t_t5_session *s, int64_t N);

/* Position bias of one stack by offset: tab[h, (R-1) + rel] for rel in [-(R-1), R-1]. */
void v2t_t5_bias_table(const v2t_t5_model *m, const v2t_t5_stack *st, int bidirectional, int64_t R, float *tab);

/* Feed-forward sublayer: h[N, d_model] += FFN(rmsnorm(h)). */
v2t_status v2t_t5_ffn(v2t_t5_session *s, const v2t_t5_block *b, float *h, int64_t N);

/* Token embeddings: h[n] = embed[ids[n]]; `what` names the ids in the error for an id outside the vocabulary. */
v2t_status v2t_t5_embed(const v2t_t5_model *m, const int32_t *ids, int64_t N, float *h, const char *what);

#endif
