/* k-means. See kmeans.h. */
#include "kmeans.h"

#include <float.h>
#include <string.h>

#include "../core/interrupt.h"
#include "train_ops.h"

/* Rows per block of the distance product: the block is BLOCK x k floats. */
#define BLOCK 1024

static double sqnorm(const float *v, int64_t d)
{
    double s = 0.0;
    for (int64_t j = 0; j < d; j++)
        s += (double)v[j] * v[j];
    return s;
}

// x: [n, d], c: [k, d] -> assign: [n], dist: [n]
v2t_status v2t_nearest_centroid(v2t_exec *ex, const float *x, int64_t n, int64_t d, const float *c, int64_t k,
                                int32_t *assign, float *dist)
{
    float *dots = NULL, *cn = NULL;
    int64_t block = n < BLOCK ? n : BLOCK;
    v2t_status s = V2T_OK;
    if (n == 0)
        return V2T_OK;
    V2T_CHECK(s, v2t_alloc((void **)&dots, (size_t)block * (size_t)k * sizeof(float), "k-means distances"), done);
    V2T_CHECK(s, v2t_alloc((void **)&cn, (size_t)k * sizeof(float), "centroid norms"), done);
    for (int64_t j = 0; j < k; j++)
        cn[j] = (float)sqnorm(c + j * d, d);
    for (int64_t r0 = 0; r0 < n; r0 += block) {
        int64_t rows = n - r0 < block ? n - r0 : block;
        // dots: [rows, k] = x[r0:r0+rows] c^T
        V2T_CHECK(s, v2t_gemm(ex, 0, 1, rows, k, d, 1.f, x + r0 * d, d, c, d, 0.f, dots, k), done);
        for (int64_t i = 0; i < rows; i++) {
            const float *row = dots + i * k;
            float best = FLT_MAX;
            int32_t arg = 0;
            for (int64_t j = 0; j < k; j++) {
                float v = cn[j] - 2.f * row[j];
                if (v < best) {
                    best = v;
                    arg = (int32_t)j;
                }
            }
            assign[r0 + i] = arg;
            if (dist) {
                float dd = best + (float)sqnorm(x + (r0 + i) * d, d);
                dist[r0 + i] = dd > 0.f ? dd : 0.f;
            }
        }
    }
done:
    v2t_free(dots);
    v2t_free(cn);
    return s;
}

/* Squared distances of every row to centroid c, folded into mind (running minimum) when
 * fold is set, else written to out; returns the summed potential. */
static double distances_to(const float *x, int64_t n, int64_t d, const float *c, const double *mind, double *out)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float s = 0.f;
        for (int64_t j = 0; j < d; j++) {
            float t = xi[j] - c[j];
            s += t * t;
        }
        double v = mind && mind[i] < s ? mind[i] : s;
        out[i] = v;
        total += v;
    }
    return total;
}

static int64_t sample_by_weight(v2t_rng *rng, const double *w, int64_t n, double total)
{
    if (!(total > 0.0))
        return (int64_t)v2t_rng_below(rng, (uint64_t)n);
    double r = v2t_rng_uniform(rng) * total, acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        acc += w[i];
        if (acc > r)
            return i;
    }
    return n - 1;
}

/* Greedy k-means++ (as scikit-learn seeds): the first centroid uniformly; then, 2 + ln(k)
 * candidates drawn with probability proportional to the squared distance to the nearest
 * centroid so far, keeping the candidate that lowers the total potential most.
 * mind, trial: [n] scratch. */
static void seed_plus_plus(const float *x, int64_t n, int64_t d, int64_t k, v2t_rng *rng, float *c, double *mind,
                           double *trial)
{
    int64_t first = (int64_t)v2t_rng_below(rng, (uint64_t)n);
    memcpy(c, x + first * d, (size_t)d * sizeof(float));
    double total = distances_to(x, n, d, c, NULL, mind);
    int tries = 2;
    for (int64_t kk = k; kk > 1; kk /= 3)
        tries++; /* about 2 + ln k */
    for (int64_t m = 1; m < k; m++) {
        int64_t best = -1;
        double best_total = 0.0;
        for (int t = 0; t < tries; t++) {
            int64_t cand = sample_by_weight(rng, mind, n, total);
            double pot = distances_to(x, n, d, x + cand * d, mind, trial);
            if (best < 0 || pot < best_total) {
                best = cand;
                best_total = pot;
            }
        }
        memcpy(c + m * d, x + best * d, (size_t)d * sizeof(float));
        total = distances_to(x, n, d, c + m * d, mind, mind);
    }
}

v2t_status v2t_kmeans(v2t_exec *ex, const float *x, int64_t n, int64_t d, const v2t_kmeans_config *cfg,
                      float *centroids, int32_t *assign, double *inertia, int *iters)
{
    const int64_t k = cfg->k;
    *inertia = 0.0;
    *iters = 0;
    if (k < 1 || k > n)
        return v2t_fail(V2T_ERR_VALUE, "k-means: expected 1 <= clusters <= rows, got %lld clusters for %lld rows",
                        (long long)k, (long long)n);
    v2t_status s = V2T_OK;
    int32_t *own = NULL, *a = assign;
    float *dist = NULL;
    double *sums = NULL, *mind = NULL, *var_mean = NULL;
    int64_t *counts = NULL;
    if (!a)
        V2T_CHECK(s, v2t_alloc((void **)&own, (size_t)n * sizeof(int32_t), "k-means assignments"), done);
    a = a ? a : own;
    V2T_CHECK(s, v2t_alloc((void **)&dist, (size_t)n * sizeof(float), "k-means distances"), done);
    V2T_CHECK(s, v2t_alloc((void **)&sums, (size_t)k * (size_t)d * sizeof(double), "centroid sums"), done);
    V2T_CHECK(s, v2t_alloc((void **)&counts, (size_t)k * sizeof(int64_t), "cluster sizes"), done);
    V2T_CHECK(s, v2t_calloc((void **)&var_mean, (size_t)d * sizeof(double), "column means"), done);
    /* Tolerance scale: the mean per-column variance of x (as scikit-learn does). */
    double var = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            var_mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++)
        var_mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            double t = x[i * d + j] - var_mean[j];
            var += t * t;
        }
    const double tol = cfg->tol * var / ((double)n * (double)d);
    if (!cfg->use_init) {
        v2t_rng rng;
        v2t_rng_seed(&rng, cfg->seed);
        V2T_CHECK(s, v2t_alloc((void **)&mind, 2 * (size_t)n * sizeof(double), "k-means++ distances"), done);
        seed_plus_plus(x, n, d, k, &rng, centroids, mind, mind + n);
    }
    for (int it = 0; it < cfg->max_iter; it++) {
        V2T_CHECK(s, v2t_nearest_centroid(ex, x, n, d, centroids, k, a, dist), done);
        memset(sums, 0, (size_t)k * (size_t)d * sizeof(double));
        memset(counts, 0, (size_t)k * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) {
            double *sr = sums + (int64_t)a[i] * d;
            const float *xi = x + i * d;
            for (int64_t j = 0; j < d; j++)
                sr[j] += xi[j];
            counts[a[i]]++;
        }
        double shift = 0.0;
        for (int64_t c = 0; c < k; c++) {
            float *cc = centroids + c * d;
            if (counts[c] == 0) {
                /* Re-seed an empty cluster with the row farthest from its centroid. */
                int64_t far = 0;
                for (int64_t i = 1; i < n; i++)
                    if (dist[i] > dist[far])
                        far = i;
                dist[far] = 0.f;
                for (int64_t j = 0; j < d; j++) {
                    double t = x[far * d + j] - cc[j];
                    shift += t * t;
                    cc[j] = x[far * d + j];
                }
                continue;
            }
            const double inv = 1.0 / (double)counts[c];
            for (int64_t j = 0; j < d; j++) {
                float v = (float)(sums[c * d + j] * inv);
                double t = (double)v - cc[j];
                shift += t * t;
                cc[j] = v;
            }
        }
        *iters = it + 1;
        V2T_CHECK(s, v2t_poll_interrupt(), done);
        if (shift <= tol)
            break;
    }
    V2T_CHECK(s, v2t_nearest_centroid(ex, x, n, d, centroids, k, a, dist), done);
    for (int64_t i = 0; i < n; i++)
        *inertia += dist[i];
done:
    v2t_free(own);
    v2t_free(dist);
    v2t_free(sums);
    v2t_free(counts);
    v2t_free(mind);
    v2t_free(var_mean);
    return s;
}
