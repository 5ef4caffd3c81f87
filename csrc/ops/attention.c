/* Attention kernel: scores, masked softmax, weighted sum, one (batch, head, query) at a time
 * with contiguous inner loops over head_dim and keys that the compiler vectorises. */
#include "attention.h"

#include <float.h>
#include <math.h>
#include <string.h>

static inline float dot(const float *a, const float *b, int64_t n)
{
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < n; d++)
        s += a[d] * b[d];
    return s;
}

// scores: [tk] scratch per (b, h, i)
v2t_status v2t_attention(const v2t_attn_args *a, v2t_buffer *scratch)
{
    const int64_t hd = a->head_dim, tk = a->tk, tq = a->tq;
    V2T_TRY(v2t_buffer_reserve(scratch, (size_t)(tk + 16) * sizeof(float), "attention scores"));
    float *s = scratch->data;
    const float lowest = -FLT_MAX;
    for (int64_t b = 0; b < a->batch; b++) {
        const int64_t kb = b / a->kv_group;
        const int32_t *mask = a->mask ? a->mask + kb * a->mask_bs : NULL;
        for (int64_t h = 0; h < a->heads; h++) {
            for (int64_t i = 0; i < tq; i++) {
                const float *q = a->q + b * a->q_bs + i * a->q_rs + h * hd;
                const float *pb = a->pos_bias ? a->pos_bias + h * a->pb_hs + i * a->pb_rs : NULL;
                const int64_t last = a->causal ? i + (tk - tq) : tk - 1;
                float mx = -INFINITY;
                for (int64_t j = 0; j < tk; j++) {
                    const float *k = a->k + kb * a->k_bs + j * a->k_rs + h * hd;
                    float v = dot(q, k, hd) * a->scale;
                    if (pb)
                        v += pb[j];
                    if ((mask && !mask[j]) || j > last)
                        v += lowest;
                    s[j] = v;
                    mx = v > mx ? v : mx;
                }
                float sum = 0.f;
#pragma omp simd reduction(+ : sum)
                for (int64_t j = 0; j < tk; j++) {
                    s[j] = expf(s[j] - mx);
                    sum += s[j];
                }
                const float inv = 1.f / sum;
                float *o = a->out + b * a->o_bs + i * a->o_rs + h * hd;
                memset(o, 0, (size_t)hd * sizeof(float));
                for (int64_t j = 0; j < tk; j++) {
                    const float p = s[j] * inv;
                    const float *v = a->v + kb * a->v_bs + j * a->v_rs + h * hd;
                    for (int64_t d = 0; d < hd; d++)
                        o[d] += p * v[d];
                }
            }
        }
    }
    return V2T_OK;
}
