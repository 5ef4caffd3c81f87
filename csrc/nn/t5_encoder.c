/* T5 encoder forward: every row of the batch through each matmul at once. */
#include <string.h>

#include "../ops/attention.h"
#include "../ops/norm.h"
#include "t5_internal.h"

static v2t_status check_shape(const v2t_t5_model *m, int64_t B, int64_t T)
{
    if (B < 0 || T <= 0)
        return v2t_fail(V2T_ERR_VALUE, "T5 encoder: expected batch >= 0 and length >= 1, got [%lld, %lld]",
                        (long long)B, (long long)T);
    if (T > m->cfg.max_length)
        return v2t_fail(V2T_ERR_VALUE, "T5 encoder: input length %lld exceeds the model's maximum %lld",
                        (long long)T, (long long)m->cfg.max_length);
    return V2T_OK;
}

// ids: [B, T] int32 or embeds: [B, T, D]; mask: [B, T] or NULL; out: [B, T, D]
v2t_status v2t_t5_encode(v2t_t5_session *s, const int32_t *ids, const float *embeds, const int32_t *mask, int64_t B,
                         int64_t T, float *out)
{
    const v2t_t5_model *m = s->m;
    const v2t_t5_config *c = &m->cfg;
    const int64_t D = c->d_model, H = c->num_heads, inner = m->inner, N = B * T, W = 2 * T - 1;
    V2T_TRY(check_shape(m, B, T));
    if (!ids == !embeds)
        return v2t_fail(V2T_ERR_VALUE, "T5 encoder: give exactly one of input ids and input embeddings");
    if (N == 0)
        return V2T_OK;
    V2T_TRY(v2t_t5_reserve_activations(s, N));
    V2T_TRY(v2t_buffer_reserve(&s->enc_bias, (size_t)(H * W) * sizeof(float), "T5 encoder position bias"));
    if (!mask) {
        V2T_TRY(v2t_buffer_reserve(&s->ones, (size_t)N * sizeof(int32_t), "T5 attention mask"));
        int32_t *ones = s->ones.data;
        for (int64_t n = 0; n < N; n++)
            ones[n] = 1;
        mask = ones;
    }
    float *h = out; /* the residual stream lives in the output */
    if (ids)
        V2T_TRY(v2t_t5_embed(m, ids, N, h, "input_ids"));
    else
        memcpy(h, embeds, (size_t)(N * D) * sizeof(float));
    float *bias = s->enc_bias.data;
    v2t_t5_bias_table(m, &m->encoder, 1, T, bias);
    float *xn = s->xn.data, *qkv = s->qkv.data, *attn = s->attn.data;
    for (int64_t l = 0; l < m->encoder.num_layers; l++) {
        const v2t_t5_block *b = &m->encoder.blocks[l];
        v2t_rmsnorm(h, D, N, D, b->ln_self, c->layer_norm_epsilon, xn, D);
        V2T_TRY(v2t_linear_forward(&b->qkv, &s->ex, xn, D, N, qkv, 3 * inner));
        v2t_attn_args a = {
            .batch = B, .heads = H, .head_dim = c->d_kv, .tq = T, .tk = T, .kv_group = 1, .scale = 1.f,
            .causal = 0,
            .q = qkv, .q_bs = T * 3 * inner, .q_rs = 3 * inner,
            .k = qkv + inner, .k_bs = T * 3 * inner, .k_rs = 3 * inner,
            .v = qkv + 2 * inner, .v_bs = T * 3 * inner, .v_rs = 3 * inner,
            /* row i reads tab[h, (T-1) - i + j]: the bias of offset j - i */
            .pos_bias = bias + (T - 1), .pb_hs = W, .pb_rs = -1,
            .mask = mask, .mask_bs = T,
            .out = attn, .o_bs = T * inner, .o_rs = inner,
        };
        V2T_TRY(v2t_attention(&a, &s->scores));
        V2T_TRY(v2t_linear_forward(&b->o, &s->ex, attn, inner, N, h, D));
        V2T_TRY(v2t_t5_ffn(s, b, h, N));
    }
    v2t_rmsnorm(h, D, N, D, m->encoder.final_ln, c->layer_norm_epsilon, out, D);
    return V2T_OK;
}
