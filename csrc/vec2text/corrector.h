/* vec2text's CorrectorEncoderModel: the T5 encoder input built from the target embedding e,
 * the hypothesis embedding h and the hypothesis tokens.
 *
 *   [S, T1(e), S, T3(h), S, T2(e - h), S, Emb[hypothesis ids]]   (4 + 3R + L rows of d_model)
 *
 * S is the shared-embedding row of </s> (eos), T1/T2/T3 are three embedding transforms
 * (`embedding_transform_{1,2,3}.*`, see transform.h) each giving R rows, Emb is the T5 shared
 * embedding. Every row then goes through a LayerNorm (mean-subtracting, eps 1e-5, weight and
 * bias `layernorm.*`). The mask is 1 for the first 4 + 3R rows and `id != pad` for the token
 * rows (so the hypothesis' leading decoder-start token is masked).
 * The T5 model is borrowed, as in the inverter. Immutable after load.
 */
#ifndef V2T_VEC2TEXT_CORRECTOR_H
#define V2T_VEC2TEXT_CORRECTOR_H

#include <stdint.h>

#include "../core/alloc.h"
#include "../nn/t5.h"
#include "transform.h"

typedef struct v2t_corrector {
    int64_t dim;               /* D */
    int64_t num_repeat_tokens; /* R */
    const v2t_t5_model *t5;    /* borrowed */
    v2t_embed_transform target, difference, hypothesis; /* T1, T2, T3 */
    float *ln_weight, *ln_bias; /* [d_model] each, one allocation */
    int copy_gate;              /* ours (config `copy_gate`): see v2t_corrector_set_copy */
    float *copy_w;              /* [d_model] `copy_gate.weight` (times sqrt(d_model) when tied) */
    float copy_b;               /* `copy_gate.bias` */
} v2t_corrector;

#define V2T_CORRECTOR_LN_EPS 1e-5f

v2t_status v2t_corrector_load(const v2t_st *st, const v2t_t5_model *t5, int64_t num_repeat_tokens,
                              int copy_gate, v2t_corrector **out);
void v2t_corrector_free(v2t_corrector *c);

/* Encoder positions for a hypothesis of L tokens: 4 + 3R + L. */
int64_t v2t_corrector_length(const v2t_corrector *c, int64_t L);

/* e, h: [B, D] (row strides lde, ldh); ids: [B, L] (row stride ld_ids) ->
 * embeds: [B, 4 + 3R + L, d_model], mask: [B, 4 + 3R + L].
 * scratch grows to hold B * (2D + R*d_model) floats. */
v2t_status v2t_corrector_inputs(const v2t_corrector *c, v2t_exec *ex, const float *e, int64_t lde, const float *h,
                                int64_t ldh, const int32_t *ids, int64_t ld_ids, int64_t B, int64_t L,
                                v2t_buffer *scratch, float *embeds, int32_t *mask);

/* After the source of a batch is set on the corrector's T5 session: with copy_gate, decoder
 * position t of example b adds `copy_gate.weight . s + copy_gate.bias` (s the decoder's final
 * state after its norm) to the logit of its hypothesis' t-th token, ids[b, 1 + t] (ids as given
 * to v2t_corrector_inputs: the decoder's start token, then the hypothesis; pad gets nothing): a
 * learnt, state-dependent bonus for keeping the hypothesis' tokens. Nothing without it
 * (vec2text's correctors). */
v2t_status v2t_corrector_set_copy(const v2t_corrector *c, v2t_t5_session *s, const int32_t *ids, int64_t ld_ids,
                                  int64_t B, int64_t L);

#endif
