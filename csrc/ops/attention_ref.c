/* Naive reference for attention.c: double precision, scores kept per query. */
#include <float.h>
#include <math.h>

#include "../core/alloc.h"
#include "attention.h"

v2t_status v2t_attention_ref(const v2t_attn_args *a)
{
    const int64_t hd = a->head_dim, tk = a->tk, tq = a->tq;
    const int64_t khs = v2t_attn_key_hs(a), kds = v2t_attn_key_ds(a);
    double *s;
    V2T_TRY(v2t_alloc((void **)&s, (size_t)(tk + 1) * sizeof(double), "reference attention scores"));
    for (int64_t b = 0; b < a->batch; b++) {
        int64_t kb = b / a->kv_group;
        for (int64_t h = 0; h < a->heads; h++) {
            for (int64_t i = 0; i < tq; i++) {
                double mx = -INFINITY;
                for (int64_t j = 0; j < tk; j++) {
                    double v = 0;
                    for (int64_t d = 0; d < hd; d++)
                        v += (double)a->q[b * a->q_bs + i * a->q_rs + h * hd + d] *
                             (double)a->k[kb * a->k_bs + j * a->k_rs + h * khs + d * kds];
                    v *= a->scale;
                    if (a->pos_bias)
                        v += a->pos_bias[h * a->pb_hs + i * a->pb_rs + j];
                    int masked = a->mask && !a->mask[kb * a->mask_bs + j];
                    if (a->causal && j > i + (tk - tq))
                        masked = 1;
                    if (masked) /* float32 arithmetic, as the additive mask is applied in fp32 */
                        v = (double)((float)v + -FLT_MAX);
                    s[j] = v;
                    if (v > mx)
                        mx = v;
                }
                double sum = 0;
                for (int64_t j = 0; j < tk; j++) {
                    s[j] = exp(s[j] - mx);
                    sum += s[j];
                }
                for (int64_t d = 0; d < hd; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < tk; j++)
                        o += s[j] / sum * a->v[kb * a->v_bs + j * a->v_rs + h * hd + d];
                    a->out[b * a->o_bs + i * a->o_rs + h * hd + d] = (float)o;
                }
            }
        }
    }
    v2t_free(s);
    return V2T_OK;
}
