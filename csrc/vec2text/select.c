#include "select.h"

#include <math.h>
#include <string.h>

#include "../core/alloc.h"

// a: [n, D] (lda), b: [n, D] (ldb; 0 = one row shared), out: [n]
void v2t_cosine_rows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t n, int64_t D, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *x = a + i * lda, *y = b + i * ldb;
        float xy = 0.f, xx = 0.f, yy = 0.f;
        for (int64_t d = 0; d < D; d++) {
            xy += x[d] * y[d];
            xx += x[d] * x[d];
            yy += y[d] * y[d];
        }
        float nx = sqrtf(xx), ny = sqrtf(yy);
        out[i] = xy / (fmaxf(nx, 1e-8f) * fmaxf(ny, 1e-8f));
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
    int64_t *order;
    V2T_TRY(v2t_alloc((void **)&order, (size_t)cands * sizeof(int64_t), "candidate order"));
    int64_t n_short = 0;
    for (int64_t b = 0; b < batch; b++) {
        const float *s = scores + b * cands;
        /* stable insertion sort by descending score: cands is small (beam width squared) */
        for (int64_t c = 0; c < cands; c++) {
            int64_t j = c;
            while (j > 0 && s[order[j - 1]] < s[c]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = c;
        }
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
            n_short++;
            for (int64_t q = got; q < keep; q++)
                dst[q] = dst[(q - got) % got];
        }
    }
    v2t_free(order);
    if (short_examples)
        *short_examples = n_short;
    return V2T_OK;
}

// scores: [batch, cands] -> out_idx: [batch]
void v2t_select_best(const float *scores, int64_t batch, int64_t cands, int64_t *out_idx)
{
    for (int64_t b = 0; b < batch; b++) {
        const float *s = scores + b * cands;
        int64_t best = 0;
        for (int64_t c = 1; c < cands; c++)
            if (s[c] > s[best])
                best = c;
        out_idx[b] = best;
    }
}
