/* Row cosines and retrieval ranks in chunks. See retrieval.h. */
#include "retrieval.h"

#include <math.h>
#include <string.h>

#include "../core/interrupt.h"

/* Query rows per block of the cosine matrix: the block is QUERY_BLOCK x chunk floats. */
#define QUERY_BLOCK 256

// p, t: [n, d] -> cos: [n]
void v2t_row_cosine(const float *p, const float *mp, const float *t, const float *mt, int64_t n, int64_t d,
                    float *cos)
{
    for (int64_t i = 0; i < n; i++) {
        const float *a = p + i * d, *b = t + i * d;
        double ab = 0.0, aa = 0.0, bb = 0.0;
        for (int64_t j = 0; j < d; j++) {
            double x = (double)a[j] - (mp ? mp[j] : 0.f), y = (double)b[j] - (mt ? mt[j] : 0.f);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        cos[i] = aa > 0.0 && bb > 0.0 ? (float)(ab / sqrt(aa * bb)) : 0.f;
    }
}

// src: [rows, d] -> dst: [rows, d], each row divided by its L2 norm (zero rows stay zero)
static void normalise_rows(const float *src, int64_t rows, int64_t d, float *dst)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *s = src + i * d;
        float *o = dst + i * d;
        double ss = 0.0;
        for (int64_t j = 0; j < d; j++)
            ss += (double)s[j] * s[j];
        float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.f;
        for (int64_t j = 0; j < d; j++)
            o[j] = s[j] * inv;
    }
}

// p, t: [n, d] -> rank, top1: [n]
v2t_status v2t_retrieval_ranks(v2t_exec *ex, const float *p, const float *t, int64_t n, int64_t d, int64_t chunk,
                               int64_t *rank, uint8_t *top1)
{
    if (chunk < 1)
        return v2t_fail(V2T_ERR_VALUE, "chunk_size: expected a positive number of rows, got %lld", (long long)chunk);
    if (n == 0)
        return V2T_OK;
    if (chunk > n)
        chunk = n;
    v2t_status s = V2T_OK;
    float *pn = NULL, *tn = NULL, *sim = NULL;
    int64_t qb = chunk < QUERY_BLOCK ? chunk : QUERY_BLOCK;
    V2T_CHECK(s, v2t_alloc((void **)&pn, (size_t)chunk * (size_t)d * sizeof(float), "normalised predictions"), done);
    V2T_CHECK(s, v2t_alloc((void **)&tn, (size_t)chunk * (size_t)d * sizeof(float), "normalised targets"), done);
    V2T_CHECK(s, v2t_alloc((void **)&sim, (size_t)qb * (size_t)chunk * sizeof(float), "cosine block"), done);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        int64_t m = n - c0 < chunk ? n - c0 : chunk;
        normalise_rows(p + c0 * d, m, d, pn);
        normalise_rows(t + c0 * d, m, d, tn);
        for (int64_t q0 = 0; q0 < m; q0 += qb) {
            int64_t rows = m - q0 < qb ? m - q0 : qb;
            // sim: [rows, m] = pn[q0:q0+rows] tn^T
            V2T_CHECK(s, v2t_gemm(ex, 0, 1, rows, m, d, 1.f, pn + q0 * d, d, tn, d, 0.f, sim, m), done);
            for (int64_t r = 0; r < rows; r++) {
                const float *row = sim + r * m;
                int64_t i = q0 + r;
                float own = row[i];
                int64_t above = 0, tie_before = 0;
                for (int64_t j = 0; j < m; j++) {
                    above += row[j] > own;
                    tie_before += (j < i) & (row[j] == own);
                }
                rank[c0 + i] = 1 + above;
                top1[c0 + i] = above == 0 && tie_before == 0;
            }
            V2T_CHECK(s, v2t_poll_interrupt(), done);
        }
    }
done:
    v2t_free(pn);
    v2t_free(tn);
    v2t_free(sim);
    return s;
}
