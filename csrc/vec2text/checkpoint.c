#include "checkpoint.h"

// w: [vocab_size, d_model]
v2t_status v2t_t5_replace_lm_head(v2t_t5_model *m, const float *w)
{
    const v2t_t5_config *c = &m->cfg;
    if (c->encoder_only)
        return v2t_fail(V2T_ERR_VALUE, "lm_head: the T5 model was loaded encoder-only");
    v2t_linear l;
    V2T_TRY(v2t_linear_init(&l, w, NULL, c->d_model, c->vocab_size, V2T_ACT_NONE, 0, c->dtype));
    v2t_linear_release(&m->lm_head);
    m->lm_head = l;
    return V2T_OK;
}
