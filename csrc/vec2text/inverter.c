#include "inverter.h"

#include "../core/alloc.h"

v2t_status v2t_inverter_load(const v2t_st *st, const v2t_t5_model *t5, int64_t num_repeat_tokens,
                             v2t_inverter **out)
{
    *out = NULL;
    if (t5->cfg.encoder_only)
        return v2t_fail(V2T_ERR_VALUE, "inverter: the T5 model was loaded encoder-only; the inverter needs its decoder");
    if (num_repeat_tokens < 1 || num_repeat_tokens > 4096)
        return v2t_fail(V2T_ERR_VALUE, "inverter: num_repeat_tokens must be in [1, 4096], got %lld",
                        (long long)num_repeat_tokens);
    if (num_repeat_tokens > t5->cfg.max_length)
        return v2t_fail(V2T_ERR_VALUE, "inverter: num_repeat_tokens %lld exceeds the T5 model's max_length %lld",
                        (long long)num_repeat_tokens, (long long)t5->cfg.max_length);
    int64_t dim;
    V2T_TRY(v2t_embed_transform_dim(st, "embedding_transform.", &dim));
    v2t_inverter *inv;
    V2T_TRY(v2t_calloc((void **)&inv, sizeof *inv, "inverter"));
    inv->dim = dim;
    inv->num_repeat_tokens = num_repeat_tokens;
    inv->t5 = t5;
    v2t_status s = v2t_embed_transform_load(st, "embedding_transform.", dim, num_repeat_tokens * t5->cfg.d_model,
                                            &inv->transform);
    if (s != V2T_OK) {
        v2t_free(inv);
        return s;
    }
    *out = inv;
    return V2T_OK;
}

void v2t_inverter_free(v2t_inverter *inv)
{
    if (!inv)
        return;
    v2t_embed_transform_release(&inv->transform);
    v2t_free(inv);
}

// e: [B, D], hidden: [B, D] -> out: [B, R, d_model]
v2t_status v2t_inverter_inputs(const v2t_inverter *inv, v2t_exec *ex, const float *e, int64_t B, float *hidden,
                               float *out)
{
    return v2t_embed_transform_forward(&inv->transform, ex, e, inv->dim, B, hidden, out, inv->transform.out_dim);
}
