/* Lloyd's k-means with greedy k-means++ seeding, for the unsupervised aligners.
 *
 * Squared Euclidean distances come from one oneDNN product per block of rows
 * (|x - c|^2 = |x|^2 - 2 x.c + |c|^2); assignment, centroid sums and the seeding are plain
 * loops. A cluster left empty is re-seeded with the row farthest from its centroid.
 */
#ifndef V2T_ALIGN_KMEANS_H
#define V2T_ALIGN_KMEANS_H

#include <stdint.h>

#include "../ops/gemm.h"

typedef struct v2t_kmeans_config {
    int64_t k;        /* clusters, 1 <= k <= n */
    int max_iter;     /* Lloyd iterations at most */
    double tol;       /* stop when the summed squared centroid shift falls below tol * mean variance */
    uint64_t seed;    /* k-means++ seeding */
    int use_init;     /* 1: start from the centroids passed in (no seeding) */
} v2t_kmeans_config;

// x: [n, d] row-major; centroids: [k, d] (input when use_init, output always); assign: [n] or NULL
// -> *inertia = sum of squared distances of rows to their centroid; *iters = Lloyd iterations run
v2t_status v2t_kmeans(v2t_exec *ex, const float *x, int64_t n, int64_t d, const v2t_kmeans_config *cfg,
                      float *centroids, int32_t *assign, double *inertia, int *iters);

// x: [n, d], c: [k, d] -> assign: [n] index of the nearest centroid, dist: [n] squared distance (or NULL)
v2t_status v2t_nearest_centroid(v2t_exec *ex, const float *x, int64_t n, int64_t d, const float *c, int64_t k,
                                int32_t *assign, float *dist);

#endif
