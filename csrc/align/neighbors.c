/* Top-k neighbour means. See neighbors.h. */
#include "neighbors.h"

#include <math.h>
#include <string.h>

#include "../core/interrupt.h"

#define QUERY_BLOCK 256

void v2t_centre_normalise(const float *x, int64_t n, int64_t d, const float *mean, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        float *o = out + i * d;
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++) {
            float v = mean ? r[j] - mean[j] : r[j];
            o[j] = v;
            ss += (double)v * v;
        }
        float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.f;
        for (int64_t j = 0; j < d; j++)
            o[j] *= inv;
    }
}

/* A min-heap of (score, index) holding the k best seen so far; the root is the weakest. */
static void sift_down(float *hs, int64_t *hi, int64_t k, int64_t p)
{
    for (;;) {
        int64_t l = 2 * p + 1, r = l + 1, m = p;
        if (l < k && hs[l] < hs[m])
            m = l;
        if (r < k && hs[r] < hs[m])
            m = r;
        if (m == p)
            return;
        float ts = hs[p];
        hs[p] = hs[m];
        hs[m] = ts;
        int64_t ti = hi[p];
        hi[p] = hi[m];
        hi[m] = ti;
        p = m;
    }
}

// row: [nk] scores -> hi: [k] indices of the k largest, best first
static void top_k(const float *row, int64_t nk, int64_t k, float *hs, int64_t *hi)
{
    for (int64_t j = 0; j < k; j++) {
        hs[j] = row[j];
        hi[j] = j;
    }
    for (int64_t p = k / 2 - 1; p >= 0; p--)
        sift_down(hs, hi, k, p);
    for (int64_t j = k; j < nk; j++) {
        if (row[j] > hs[0]) {
            hs[0] = row[j];
            hi[0] = j;
            sift_down(hs, hi, k, 0);
        }
    }
    /* Heap sort in place: pop the weakest to the back, leaving best first. */
    for (int64_t end = k - 1; end > 0; end--) {
        float ts = hs[0];
        hs[0] = hs[end];
        hs[end] = ts;
        int64_t ti = hi[0];
        hi[0] = hi[end];
        hi[end] = ti;
        sift_down(hs, hi, end, 0);
    }
}

v2t_status v2t_topk_mean(v2t_exec *ex, const float *q, int64_t nq, const float *keys, int64_t nk, int64_t d,
                         const float *values, int64_t dv, int64_t k, float *out, int64_t *idx)
{
    if (k < 1 || k > nk)
        return v2t_fail(V2T_ERR_VALUE, "neighbours: expected 1 <= k <= %lld keys, got k=%lld", (long long)nk,
                        (long long)k);
    v2t_status s = V2T_OK;
    float *sim = NULL, *hs = NULL;
    int64_t *hi = NULL;
    double *acc = NULL;
    int64_t qb = nq < QUERY_BLOCK ? (nq > 0 ? nq : 1) : QUERY_BLOCK;
    V2T_CHECK(s, v2t_alloc((void **)&sim, (size_t)qb * (size_t)nk * sizeof(float), "neighbour scores"), done);
    V2T_CHECK(s, v2t_alloc((void **)&hs, (size_t)k * sizeof(float), "top-k heap"), done);
    V2T_CHECK(s, v2t_alloc((void **)&hi, (size_t)k * sizeof(int64_t), "top-k heap"), done);
    V2T_CHECK(s, v2t_alloc((void **)&acc, (size_t)dv * sizeof(double), "neighbour mean"), done);
    for (int64_t q0 = 0; q0 < nq; q0 += qb) {
        int64_t rows = nq - q0 < qb ? nq - q0 : qb;
        // sim: [rows, nk] = q[q0:q0+rows] keys^T
        V2T_CHECK(s, v2t_gemm(ex, 0, 1, rows, nk, d, 1.f, q + q0 * d, d, keys, d, 0.f, sim, nk), done);
        for (int64_t r = 0; r < rows; r++) {
            top_k(sim + r * nk, nk, k, hs, hi);
            memset(acc, 0, (size_t)dv * sizeof(double));
            for (int64_t m = 0; m < k; m++) {
                const float *v = values + hi[m] * dv;
                for (int64_t j = 0; j < dv; j++)
                    acc[j] += v[j];
            }
            float *o = out + (q0 + r) * dv;
            for (int64_t j = 0; j < dv; j++)
                o[j] = (float)(acc[j] / (double)k);
            if (idx)
                memcpy(idx + (q0 + r) * k, hi, (size_t)k * sizeof(int64_t));
        }
        V2T_CHECK(s, v2t_poll_interrupt(), done);
    }
done:
    v2t_free(sim);
    v2t_free(hs);
    v2t_free(hi);
    v2t_free(acc);
    return s;
}
