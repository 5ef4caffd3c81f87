#include "select.h"

#include <math.h>
#include <string.h>

#include "../core/alloc.h"
#include "../ops/topk.h"

/* Cosine as torch.nn.CosineSimilarity computes it: each vector divided by max(|x|, 1e-8),
 * then the dot product; accumulated in double. */
// a: [n, D] (lda), b: [n, D] (ldb; 0 = one row shared), out: [n]
void v2t_cosine_rows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t n, int64_t D, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *x = a + i * lda, *y = b + i * ldb;
        double xy = 0, xx = 0, yy = 0;
        for (int64_t d = 0; d < D; d++) {
            xy += (double)x[d] * y[d];
            xx += (double)x[d] * x[d];
            yy += (double)y[d] * y[d];
        }
        out[i] = (float)(xy / (fmax(sqrt(xx), 1e-8) * fmax(sqrt(yy), 1e-8)));
    }
}

static int rows_equal(const int32_t *a, const int32_t *b, int64_t len)
{
    return memcmp(a, b, (size_t)len * sizeof(int32_t)) == 0;
}

// scores: [batch, cands], ids: [batch, cands, len] -> out_idx: [batch, keep]
v2t_status v2t_select_distinct_topk(const float *scores, const int32_t *ids, int64_t batch, int64_t cands,
                                    int64_t len, int64_t keep, int64_t *out_idx, int64_t *short_examples)
{
    if (keep < 1 || cands < 1)
        return v2t_fail(V2T_ERR_VALUE, "select: need keep >= 1 and cands >= 1, got keep=%lld cands=%lld",
                        (long long)keep, (long long)cands);
    if (cands > INT32_MAX / 2)
        return v2t_fail(V2T_ERR_VALUE, "select: too many candidates (%lld)", (long long)cands);
    /* one allocation: sorted values, indices, top-k scratch */
    float *values;
    V2T_TRY(v2t_alloc((void **)&values, (size_t)cands * (sizeof(float) + sizeof(int32_t) + sizeof(v2t_topk_item)),
                      "candidate order"));
    int32_t *order = (int32_t *)(values + cands);
    v2t_topk_item *work = (v2t_topk_item *)(order + cands);
    int64_t n_short = 0;
    for (int64_t b = 0; b < batch; b++) {
        v2t_topk(scores + b * cands, cands, cands, values, order, work);
        int64_t *dst = out_idx + b * keep;
        int64_t got = 0;
        for (int64_t r = 0; r < cands && got < keep; r++) {
            const int32_t *row = ids + (b * cands + order[r]) * len;
            int dup = 0;
            for (int64_t q = 0; q < got && !dup; q++)
                dup = rows_equal(row, ids + (b * cands + dst[q]) * len, len);
            if (!dup)
                dst[got++] = order[r];
        }
        if (got < keep) {
            /* The reference fails here (ragged index lists); we repeat the distinct rows in order. */
            n_short++;
            for (int64_t q = got; q < keep; q++)
                dst[q] = dst[(q - got) % got];
        }
    }
    v2t_free(values);
    if (short_examples)
        *short_examples = n_short;
    return V2T_OK;
}

// scores: [batch, cands] -> out_idx: [batch]; NaN counts as the largest value, as in torch.argmax
void v2t_select_best(const float *scores, int64_t batch, int64_t cands, int64_t *out_idx)
{
    for (int64_t b = 0; b < batch; b++) {
        const float *s = scores + b * cands;
        int64_t best = 0;
        for (int64_t c = 1; c < cands && !isnan(s[best]); c++)
            if (s[c] > s[best] || isnan(s[c]))
                best = c;
        out_idx[b] = best;
    }
}
