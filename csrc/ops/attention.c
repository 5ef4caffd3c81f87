/* Attention kernel: scores, masked softmax, weighted sum, one (batch, head, query) at a time
 * with contiguous inner loops over head_dim and keys that the compiler vectorises; the
 * (batch, head) pairs are spread over OpenMP threads (never nested inside a oneDNN call).
 * Keys stored transposed (the decoder caches) get their scores vectorised over the keys, and
 * the queries that share keys (the beams of one example) run back to back.
 *
 * A masked key contributes exactly zero, as exp(s - FLT_MAX - max) underflows to zero in
 * transformers' float32 arithmetic, so it is skipped instead of exponentiated; when every key
 * of a query is masked, the additive mask makes all scores equal in float32 and the softmax is
 * uniform over all keys, which is reproduced explicitly. */
#include "attention.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static inline float dot(const float *a, const float *b, int64_t n)
{
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < n; d++)
        s += a[d] * b[d];
    return s;
}

static inline void axpy(float p, const float *v, float *o, int64_t n)
{
#pragma omp simd
    for (int64_t d = 0; d < n; d++)
        o[d] += p * v[d];
}

/* Scores against keys stored transposed ([head_dim, n], row stride kds): s[j] = <q, k_j>,
 * vectorised over the keys; each score sums four dimensions at a time in order
 * (s += q0*k0 + q1*k1 + q2*k2 + q3*k3), in registers for a block of m <= SB keys. */
#define SB 32
static inline void scores_block(const float *q, const float *kt, int64_t kds, int64_t hd, int64_t m, float *s)
{
    float acc[SB] = {0};
    int64_t d = 0;
    for (; d + 4 <= hd; d += 4) {
        const float q0 = q[d], q1 = q[d + 1], q2 = q[d + 2], q3 = q[d + 3];
        const float *k0 = kt + d * kds, *k1 = k0 + kds, *k2 = k1 + kds, *k3 = k2 + kds;
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            acc[j] += q0 * k0[j] + q1 * k1[j] + q2 * k2[j] + q3 * k3[j];
    }
    for (; d < hd; d++) {
        const float qd = q[d];
        const float *kd = kt + d * kds;
#pragma omp simd
        for (int64_t j = 0; j < m; j++)
            acc[j] += qd * kd[j];
    }
    memcpy(s, acc, (size_t)m * sizeof(float));
}

static void scores_transposed(const float *q, const float *kt, int64_t kds, int64_t hd, int64_t n, float *s)
{
    int64_t j0 = 0;
    for (; j0 + SB <= n; j0 += SB)
        scores_block(q, kt + j0, kds, hd, SB, s + j0);
    if (j0 < n)
        scores_block(q, kt + j0, kds, hd, n - j0, s + j0);
}

/* o[0:hd] = sum_j p[j] v_j in key order, skipping zero weights, with v_j read from `va` for
 * j < c and from `vb` for j >= c (the same row stride); 64-wide heads (T5, BERT) keep the sums
 * in registers. */
static void weighted_values_split(const float *p, const float *va, const float *vb, int64_t v_rs, int64_t c,
                                  int64_t n, int64_t hd, float *o)
{
    if (hd == 64) {
        float acc[64] = {0};
        for (int64_t j = 0; j < n; j++) {
            const float pj = p[j];
            if (pj == 0.f)
                continue;
            const float *vj = (j < c ? va : vb) + j * v_rs;
#pragma omp simd
            for (int64_t d = 0; d < 64; d++)
                acc[d] += pj * vj[d];
        }
        memcpy(o, acc, sizeof acc);
        return;
    }
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int64_t j = 0; j < n; j++)
        if (p[j] != 0.f)
            axpy(p[j], (j < c ? va : vb) + j * v_rs, o, hd);
}

/* Raw scores s[0:end) (masked keys' entries ignored) -> attention weights in place: scale,
 * position bias, masked softmax; masked keys get weight 0. Returns how many leading weights to
 * apply: `end`, or all `tk` (uniform) when every key is masked, as in float32 transformers. */
static int64_t softmax_weights(float *s, int64_t end, int64_t tk, const int32_t *mask, const float *pb, float scale)
{
    float mx = -INFINITY;
    int64_t live = 0;
    for (int64_t j = 0; j < end; j++) {
        if (mask && !mask[j]) {
            s[j] = -INFINITY;
            continue;
        }
        float v = s[j] * scale;
        if (pb)
            v += pb[j];
        s[j] = v;
        mx = v > mx ? v : mx;
        live++;
    }
    if (live == 0) {
        for (int64_t j = 0; j < tk; j++)
            s[j] = 1.f / (float)tk;
        return tk;
    }
    float sum = 0.f;
    for (int64_t j = 0; j < end; j++) {
        if (s[j] == -INFINITY) {
            s[j] = 0.f;
            continue;
        }
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < end; j++)
        s[j] *= inv;
    return end;
}

// one (b, h): all queries; s: [tk] scores scratch
static void attend_head(const v2t_attn_args *a, int64_t b, int64_t h, float *s)
{
    const int64_t hd = a->head_dim, tk = a->tk, tq = a->tq;
    const int64_t kb = b / a->kv_group;
    const int64_t kds = v2t_attn_key_ds(a);
    const int32_t *mask = a->mask ? a->mask + kb * a->mask_bs : NULL;
    const float *kbase = a->k + kb * a->k_bs + h * v2t_attn_key_hs(a);
    const float *vbase = a->v + kb * a->v_bs + h * hd;
    /* positions [0, shared) come from the group's first row (identical values) */
    int64_t shared = 0;
    const float *kshare = kbase, *vshare = vbase;
    if (a->share_len && kds != 1) {
        const int64_t lead = b - b % a->share_group;
        const int64_t len = a->share_len[b * a->share_rs];
        shared = lead == b || len < 0 ? 0 : len;
        kshare = a->k + lead * a->k_bs + h * v2t_attn_key_hs(a);
        vshare = a->v + lead * a->v_bs + h * hd;
    }
    for (int64_t i = 0; i < tq; i++) {
        const float *q = a->q + b * a->q_bs + i * a->q_rs + h * hd;
        const float *pb = a->pos_bias ? a->pos_bias + h * a->pb_hs + i * a->pb_rs : NULL;
        const int64_t last = a->causal ? i + (tk - tq) : tk - 1;
        const int64_t end = last < tk ? last + 1 : tk;
        float *o = a->out + b * a->o_bs + i * a->o_rs + h * hd;
        if (kds != 1) {
            const int64_t c = shared < end ? shared : end;
            if (c > 0)
                scores_transposed(q, kshare, kds, hd, c, s);
            if (end > c)
                scores_transposed(q, kbase + c, kds, hd, end - c, s + c);
            const int64_t n = softmax_weights(s, end, tk, mask, pb, a->scale);
            weighted_values_split(s, vshare, vbase, a->v_rs, c < n ? c : n, n, hd, o);
            continue;
        }
        for (int64_t j = 0; j < end; j++)
            if (!mask || mask[j])
                s[j] = dot(q, kbase + j * a->k_rs, hd);
        const int64_t n = softmax_weights(s, end, tk, mask, pb, a->scale);
        weighted_values_split(s, vbase, vbase, a->v_rs, 0, n, hd, o);
    }
}

v2t_status v2t_attention(const v2t_attn_args *a, v2t_buffer *scratch)
{
    if (a->share_len && (a->kv_group != 1 || a->share_group < 1 || a->share_rs < 1))
        return v2t_fail(V2T_ERR_VALUE,
                        "attention: shared prefixes need kv_group 1, share_group >= 1 and share_rs >= 1, got %lld, "
                        "%lld and %lld",
                        (long long)a->kv_group, (long long)a->share_group, (long long)a->share_rs);
    const int64_t pairs = a->batch * a->heads;
    int nthreads = 1;
#ifdef _OPENMP
    nthreads = omp_get_max_threads();
    if (pairs < 2 || (int64_t)a->tq * a->tk * a->head_dim * pairs < 32768)
        nthreads = 1; /* too little work to wake the team */
#endif
    const size_t stride = (size_t)(a->tk + 16);
    V2T_TRY(v2t_buffer_reserve(scratch, stride * (size_t)nthreads * sizeof(float), "attention scores"));
    float *scores = scratch->data;
    /* pairs run (group, head, row in the group): the rows that share a head's keys and values
     * (cross-attention: the beams of one example; self-attention: their common prefix) follow
     * each other, so those stay in cache */
    const int64_t G = a->kv_group > 1 ? a->kv_group : (a->share_len ? a->share_group : 1);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (int64_t p = 0; p < pairs; p++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        const int64_t per_group = a->heads * G, r = p % per_group;
        attend_head(a, p / per_group * G + r % G, r / G, scores + (size_t)t * stride);
    }
    return V2T_OK;
}
