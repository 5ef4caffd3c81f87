#include "corrector.h"

#include <math.h>
#include <string.h>

#include "../ops/norm.h"

v2t_status v2t_corrector_load(const v2t_st *st, const v2t_t5_model *t5, int64_t num_repeat_tokens,
                              int copy_gate, v2t_corrector **out)
{
    *out = NULL;
    if (t5->cfg.encoder_only)
        return v2t_fail(V2T_ERR_VALUE, "corrector: the T5 model was loaded encoder-only; the corrector needs its decoder");
    if (num_repeat_tokens < 1 || 4 + 3 * num_repeat_tokens > t5->cfg.max_length)
        return v2t_fail(V2T_ERR_VALUE, "corrector: num_repeat_tokens must be >= 1 with 4 + 3 * num_repeat_tokens <= "
                        "the T5 model's max_length %lld, got %lld", (long long)t5->cfg.max_length,
                        (long long)num_repeat_tokens);
    int64_t dim;
    V2T_TRY(v2t_embed_transform_dim(st, "embedding_transform_1.", &dim));
    v2t_corrector *c;
    V2T_TRY(v2t_calloc((void **)&c, sizeof *c, "corrector"));
    c->dim = dim;
    c->num_repeat_tokens = num_repeat_tokens;
    c->copy_gate = copy_gate != 0;
    c->t5 = t5;
    const int64_t dm = t5->cfg.d_model, od = num_repeat_tokens * dm;
    v2t_status s;
    V2T_CHECK(s, v2t_embed_transform_load(st, "embedding_transform_1.", dim, od, &c->target), fail);
    V2T_CHECK(s, v2t_embed_transform_load(st, "embedding_transform_2.", dim, od, &c->difference), fail);
    V2T_CHECK(s, v2t_embed_transform_load(st, "embedding_transform_3.", dim, od, &c->hypothesis), fail);
    const int64_t shape[1] = {dm};
    float *w = NULL, *b = NULL;
    V2T_CHECK(s, v2t_st_load_f32(st, "layernorm.weight", 1, shape, &w), fail);
    s = v2t_st_load_f32(st, "layernorm.bias", 1, shape, &b);
    if (s == V2T_OK)
        s = v2t_alloc((void **)&c->ln_weight, (size_t)(2 * dm) * sizeof(float), "corrector layernorm");
    if (s == V2T_OK) {
        memcpy(c->ln_weight, w, (size_t)dm * sizeof(float));
        memcpy(c->ln_weight + dm, b, (size_t)dm * sizeof(float));
        c->ln_bias = c->ln_weight + dm;
    }
    v2t_free(w);
    v2t_free(b);
    if (s != V2T_OK)
        goto fail;
    if (c->copy_gate) {
        const int64_t one[1] = {1};
        float *bias = NULL;
        V2T_CHECK(s, v2t_st_load_f32(st, "copy_gate.weight", 1, shape, &c->copy_w), fail);
        V2T_CHECK(s, v2t_st_load_f32(st, "copy_gate.bias", 1, one, &bias), fail);
        c->copy_b = bias[0];
        v2t_free(bias);
        /* the gate reads the final state before the output scaling; the decoder's normalised
         * state carries d_model^-0.5 when the embeddings are tied */
        if (t5->cfg.tie_word_embeddings)
            for (int64_t d = 0; d < dm; d++)
                c->copy_w[d] *= sqrtf((float)dm);
    }
    *out = c;
    return V2T_OK;
fail:
    v2t_corrector_free(c);
    return s;
}

void v2t_corrector_free(v2t_corrector *c)
{
    if (!c)
        return;
    v2t_embed_transform_release(&c->target);
    v2t_embed_transform_release(&c->difference);
    v2t_embed_transform_release(&c->hypothesis);
    v2t_free(c->ln_weight);
    v2t_free(c->copy_w);
    v2t_free(c);
}

int64_t v2t_corrector_length(const v2t_corrector *c, int64_t L) { return 4 + 3 * c->num_repeat_tokens + L; }

// ids: [B, L] (ld_ids), each row the decoder's start token then the hypothesis
v2t_status v2t_corrector_set_copy(const v2t_corrector *c, v2t_t5_session *s, const int32_t *ids, int64_t ld_ids,
                                  int64_t B, int64_t L)
{
    if (!c->copy_gate || L < 2)
        return V2T_OK;
    return v2t_t5_session_set_copy(s, ids + 1, ld_ids, B, L - 1, c->copy_w, c->copy_b);
}

// e: [B, D] (lde), h: [B, D] (ldh), ids: [B, L] (ld_ids) -> embeds: [B, S, dm], mask: [B, S], S = 4 + 3R + L
v2t_status v2t_corrector_inputs(const v2t_corrector *c, v2t_exec *ex, const float *e, int64_t lde, const float *h,
                                int64_t ldh, const int32_t *ids, int64_t ld_ids, int64_t B, int64_t L,
                                v2t_buffer *scratch, float *embeds, int32_t *mask)
{
    const v2t_t5_model *m = c->t5;
    const int64_t D = c->dim, R = c->num_repeat_tokens, dm = m->cfg.d_model, V = m->cfg.vocab_size;
    const int64_t S = v2t_corrector_length(c, L), ld = S * dm;
    const int32_t eos = m->cfg.eos_token_id, pad = m->cfg.pad_token_id;
    if (B < 1 || L < 0)
        return v2t_fail(V2T_ERR_VALUE, "corrector inputs: expected batch >= 1 and length >= 0, got %lld, %lld",
                        (long long)B, (long long)L);
    if (eos < 0 || eos >= V)
        return v2t_fail(V2T_ERR_VALUE, "corrector: eos_token_id %d is outside the vocabulary [0, %lld)", eos,
                        (long long)V);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < L; t++)
            if (ids[b * ld_ids + t] < 0 || ids[b * ld_ids + t] >= V)
                return v2t_fail(V2T_ERR_VALUE,
                                "hypothesis_input_ids: token id %d at [%lld, %lld] is outside the vocabulary [0, %lld)",
                                ids[b * ld_ids + t], (long long)b, (long long)t, (long long)V);
    size_t bytes;
    const int64_t RD = R * dm;
    V2T_TRY(v2t_mul_size((size_t)B, (size_t)(2 * D + RD) * sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(scratch, bytes, "corrector scratch"));
    float *diff = scratch->data, *hidden = diff + B * D, *tok = hidden + B * D;
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++)
            diff[b * D + d] = e[b * lde + d] - h[b * ldh + d];
    /* T1(e) at rows 1..R, T3(h) at R+2.., T2(e - h) at 2R+3.. (computed densely, then placed:
     * a strided destination would push oneDNN off its fast kernels) */
    const v2t_embed_transform *ts[3] = {&c->target, &c->hypothesis, &c->difference};
    const float *xs[3] = {e, h, diff};
    const int64_t lds[3] = {lde, ldh, D}, at[3] = {1, R + 2, 2 * R + 3};
    for (int k = 0; k < 3; k++) {
        V2T_TRY(v2t_embed_transform_forward(ts[k], ex, xs[k], lds[k], B, hidden, tok, RD));
        for (int64_t b = 0; b < B; b++)
            memcpy(embeds + b * ld + at[k] * dm, tok + b * RD, (size_t)RD * sizeof(float));
    }
    const float *sep = m->embed + (int64_t)eos * dm;
    const size_t row = (size_t)dm * sizeof(float);
    for (int64_t b = 0; b < B; b++) {
        float *x = embeds + b * ld;
        memcpy(x, sep, row);
        memcpy(x + (R + 1) * dm, sep, row);
        memcpy(x + (2 * R + 2) * dm, sep, row);
        memcpy(x + (3 * R + 3) * dm, sep, row);
        int32_t *mk = mask + b * S;
        for (int64_t t = 0; t < 4 + 3 * R; t++)
            mk[t] = 1;
        for (int64_t t = 0; t < L; t++) {
            const int32_t id = ids[b * ld_ids + t];
            memcpy(x + (4 + 3 * R + t) * dm, m->embed + (int64_t)id * dm, row);
            mk[4 + 3 * R + t] = id != pad;
        }
    }
    v2t_layernorm(embeds, dm, B * S, dm, c->ln_weight, c->ln_bias, V2T_CORRECTOR_LN_EPS, embeds, dm);
    return V2T_OK;
}
