/* T5 per-call state and the pieces shared by the encoder and decoder passes. */
#include <string.h>

#include "../ops/gated.h"
#include "../ops/norm.h"
#include "t5_internal.h"

static size_t stack_scratch(const v2t_t5_stack *st, size_t most)
{
    for (int64_t i = 0; i < st->num_layers; i++) {
        const v2t_linear *ls[] = {&st->blocks[i].qkv, &st->blocks[i].o,  &st->blocks[i].cross_q,
                                  &st->blocks[i].cross_o, &st->blocks[i].wi, &st->blocks[i].wo};
        for (size_t k = 0; k < sizeof ls / sizeof *ls; k++)
            most = ls[k]->scratch_bytes > most ? ls[k]->scratch_bytes : most;
    }
    return st->cross_kv.scratch_bytes > most ? st->cross_kv.scratch_bytes : most;
}

v2t_status v2t_t5_session_create(const v2t_t5_model *m, v2t_t5_session **out)
{
    *out = NULL;
    v2t_t5_session *s;
    V2T_TRY(v2t_calloc((void **)&s, sizeof *s, "T5 session"));
    s->m = m;
    v2t_status st = v2t_exec_init(&s->ex);
    /* the largest matmul scratchpad up front, so no decoder step grows it */
    size_t scratch = stack_scratch(&m->decoder, stack_scratch(&m->encoder, m->lm_head.scratch_bytes));
    if (st == V2T_OK)
        st = v2t_buffer_reserve(&s->ex.scratch, scratch ? scratch : 64, "matmul scratchpad");
    if (st != V2T_OK) {
        v2t_t5_session_free(s);
        return st;
    }
    *out = s;
    return V2T_OK;
}

void v2t_t5_session_free(v2t_t5_session *s)
{
    if (!s)
        return;
    v2t_exec_release(&s->ex);
    v2t_buffer *bufs[] = {&s->h,          &s->xn,       &s->qkv,      &s->attn,     &s->ff,
                          &s->scores,     &s->enc_bias, &s->ones,     &s->enc_states, &s->enc_mask,
                          &s->cross_kv,   &s->cross_raw, &s->self_kv,  &s->dec_bias, &s->reorder,
                          &s->runs,       &s->row_map,  &s->ids_c,    &s->share,    &s->copy_ids};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        v2t_buffer_release(bufs[i]);
    v2t_free(s);
}

static v2t_status reserve_floats(v2t_buffer *b, int64_t rows, int64_t cols, const char *what)
{
    size_t n;
    V2T_TRY(v2t_mul_size((size_t)rows, (size_t)cols, &n));
    V2T_TRY(v2t_mul_size(n, sizeof(float), &n));
    return v2t_buffer_reserve(b, n, what);
}

v2t_status v2t_t5_reserve_activations(v2t_t5_session *s, int64_t N)
{
    if (N <= s->act_rows)
        return V2T_OK;
    const v2t_t5_config *c = &s->m->cfg;
    const int64_t D = c->d_model, inner = s->m->inner;
    V2T_TRY(reserve_floats(&s->h, N, D, "T5 hidden states"));
    V2T_TRY(reserve_floats(&s->xn, N, D, "T5 normalised states"));
    V2T_TRY(reserve_floats(&s->qkv, N, 3 * inner, "T5 attention projections"));
    V2T_TRY(reserve_floats(&s->attn, N, inner, "T5 attention output"));
    V2T_TRY(reserve_floats(&s->ff, N, (c->gated ? 2 : 1) * c->d_ff, "T5 feed-forward hidden states"));
    s->act_rows = N;
    return V2T_OK;
}

// tab: [heads, 2R-1]; tab[h, (R-1) + rel] = rel_bias[bucket(rel), h]
void v2t_t5_bias_table(const v2t_t5_model *m, const v2t_t5_stack *st, int bidirectional, int64_t R, float *tab)
{
    const v2t_t5_config *c = &m->cfg;
    const int64_t H = c->num_heads, W = 2 * R - 1;
    for (int64_t rel = -(R - 1); rel <= R - 1; rel++) {
        const int64_t bucket = v2t_t5_relpos_bucket(rel, bidirectional, c->relative_attention_num_buckets,
                                                    c->relative_attention_max_distance);
        for (int64_t h = 0; h < H; h++)
            tab[h * W + (R - 1) + rel] = st->rel_bias[bucket * H + h];
    }
}

// h: [N, D] residual stream, updated in place
v2t_status v2t_t5_ffn(v2t_t5_session *s, const v2t_t5_block *b, float *h, int64_t N)
{
    const v2t_t5_config *c = &s->m->cfg;
    const int64_t D = c->d_model, F = c->d_ff;
    float *xn = s->xn.data, *ff = s->ff.data;
    v2t_rmsnorm(h, D, N, D, b->ln_ff, c->layer_norm_epsilon, xn, D);
    if (c->gated) {
        V2T_TRY(v2t_linear_forward(&b->wi, &s->ex, xn, D, N, ff, 2 * F));
        v2t_gated_act(c->act, ff, 2 * F, N, F, ff, 2 * F); /* act(a) * b written over a */
        return v2t_linear_forward(&b->wo, &s->ex, ff, 2 * F, N, h, D);
    }
    V2T_TRY(v2t_linear_forward(&b->wi, &s->ex, xn, D, N, ff, F));
    return v2t_linear_forward(&b->wo, &s->ex, ff, F, N, h, D);
}

// ids: [N], h: [N, D]
v2t_status v2t_t5_embed(const v2t_t5_model *m, const int32_t *ids, int64_t N, float *h, const char *what)
{
    const int64_t D = m->cfg.d_model, V = m->cfg.vocab_size;
    for (int64_t n = 0; n < N; n++) {
        if (ids[n] < 0 || ids[n] >= V)
            return v2t_fail(V2T_ERR_VALUE, "%s: token id %d at flat index %lld is outside the vocabulary [0, %lld)",
                            what, (int)ids[n], (long long)n, (long long)V);
        memcpy(h + n * D, m->embed + (int64_t)ids[n] * D, (size_t)D * sizeof(float));
    }
    return V2T_OK;
}
