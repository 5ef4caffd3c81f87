/* Multi-head attention over row-major activations with heads interleaved in the feature
 * dimension (feature = head * head_dim + d), as transformers lays them out.
 *
 * For batch b, head h, query i:
 *   s_j = scale * <q[b,i,h,:], k[b',j,h,:]> + pos_bias[h,i,j] + (mask[b',j] ? 0 : FLT_LOWEST)
 *   (j > i + (Tk - Tq) also gets FLT_LOWEST when causal)
 *   out[b,i,h,:] = sum_j softmax(s)_j v[b',j,h,:]
 * where b' = b / kv_group (cross-attention keys shared by the beams of one example).
 * FLT_LOWEST is float32's lowest finite value, added exactly as transformers adds its
 * additive mask (so a fully masked row gives a uniform softmax, not NaN). Softmax in fp32.
 */
#ifndef V2T_OPS_ATTENTION_H
#define V2T_OPS_ATTENTION_H

#include <stdint.h>

#include "../core/alloc.h"
#include "../core/status.h"

typedef struct v2t_attn_args {
    int64_t batch, heads, head_dim, tq, tk;
    int64_t kv_group;     /* >= 1: query batch b reads keys/values/mask of batch b / kv_group */
    float scale;          /* 1/sqrt(head_dim) for BERT, 1 for T5 */
    int causal;
    /* q: [batch, tq, heads*head_dim]: element (b,i,h,d) at q[b*q_bs + i*q_rs + h*head_dim + d] */
    const float *q; int64_t q_bs, q_rs;
    /* keys: element (b',j,h,d) at k[b'*k_bs + j*k_rs + h*k_hs + d*k_ds]; k_hs = k_ds = 0 means
     * the row-major layout above (k_hs = head_dim, k_ds = 1). With k_ds != 1 the keys of a head
     * are taken as stored transposed, [head_dim, tk] with k_rs = 1 (the decoder's caches), and the
     * fast kernel computes a query's scores for all keys at once, vectorised over the keys. */
    const float *k; int64_t k_bs, k_rs, k_hs, k_ds;
    const float *v; int64_t v_bs, v_rs; /* [batch/kv_group, tk, heads*head_dim] */
    const float *pos_bias; /* [heads, tq, tk] row-major, shared by the batch, or NULL.
                              Query row i reads pos_bias[h*pb_hs + i*pb_rs + j]. */
    int64_t pb_hs, pb_rs;
    const int32_t *mask;   /* [batch/kv_group, tk] (row stride mask_bs), 1 = attend, or NULL */
    int64_t mask_bs;
    float *out; int64_t o_bs, o_rs; /* [batch, tq, heads*head_dim] */
    /* Shared prefixes (optional; kv_group must be 1): rows come in groups of share_group (the
     * beams of one example) and the keys and values of row b at positions j < share_len[b *
     * share_rs] are bitwise equal to those of its group's first row (they were copied from one
     * ancestor). The
     * fast kernel then reads them from the first row, which the group's queries have just
     * brought into cache, and runs the work as (group, head, row). The results are identical to
     * reading each row's own copy; the reference kernel ignores these fields. */
    const int64_t *share_len; int64_t share_rs, share_group;
} v2t_attn_args;

/* The key layout's head and dimension strides, defaults resolved. */
static inline int64_t v2t_attn_key_hs(const v2t_attn_args *a) { return a->k_hs || a->k_ds ? a->k_hs : a->head_dim; }
static inline int64_t v2t_attn_key_ds(const v2t_attn_args *a) { return a->k_hs || a->k_ds ? a->k_ds : 1; }

/* Fast kernel; `scratch` is grown to hold the score rows. */
v2t_status v2t_attention(const v2t_attn_args *a, v2t_buffer *scratch);

/* Naive reference (double accumulation). */
v2t_status v2t_attention_ref(const v2t_attn_args *a);

#endif
