/* Naive references for pooling.c: double accumulation, one output element at a time. */
#include <math.h>

#include "pooling.h"

// h: [B, T, D], mask: [B, T] or NULL -> out: [B, D]
void v2t_pool_ref(v2t_pooling mode, const float *h, const int32_t *mask, int64_t B, int64_t T, int64_t D,
                  float *out)
{
    for (int64_t b = 0; b < B; b++) {
        for (int64_t d = 0; d < D; d++) {
            if (mode == V2T_POOL_CLS) {
                out[b * D + d] = T > 0 ? h[(b * T) * D + d] : 0.f;
                continue;
            }
            double sum = 0.0, count = 0.0;
            for (int64_t t = 0; t < T; t++) {
                double m = mask ? (mask[b * T + t] != 0) : 1.0;
                sum += m * h[(b * T + t) * D + d];
                count += m;
            }
            out[b * D + d] = (float)(sum / fmax(count, 1e-9));
        }
    }
}

// x: [N, D] in place
void v2t_l2_normalize_ref(float *x, int64_t N, int64_t D)
{
    for (int64_t i = 0; i < N; i++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[i * D + d] * x[i * D + d];
        double norm = fmax(sqrt(ss), 1e-12);
        for (int64_t d = 0; d < D; d++)
            x[i * D + d] = (float)(x[i * D + d] / norm);
    }
}
