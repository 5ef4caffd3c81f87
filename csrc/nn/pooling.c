/* Pooling and L2 normalisation (see pooling.h); references in pooling_ref.c. */
#include "pooling.h"

#include <math.h>
#include <string.h>

// h: [B, T, D], mask: [B, T] or NULL -> out: [B, D]
void v2t_pool(v2t_pooling mode, const float *h, const int32_t *mask, int64_t B, int64_t T, int64_t D, float *out)
{
    for (int64_t b = 0; b < B; b++) {
        float *o = out + b * D;
        const float *hb = h + b * T * D;
        if (mode == V2T_POOL_CLS) {
            if (T > 0)
                memcpy(o, hb, (size_t)D * sizeof(float));
            else
                memset(o, 0, (size_t)D * sizeof(float));
            continue;
        }
        memset(o, 0, (size_t)D * sizeof(float));
        float count = 0.f;
        for (int64_t t = 0; t < T; t++) {
            if (mask && !mask[b * T + t])
                continue;
            const float *row = hb + t * D;
            for (int64_t d = 0; d < D; d++)
                o[d] += row[d];
            count += 1.f;
        }
        const float div = count > 1e-9f ? count : 1e-9f;
        for (int64_t d = 0; d < D; d++)
            o[d] /= div;
    }
}

// x: [N, D] in place
void v2t_l2_normalize(float *x, int64_t N, int64_t D)
{
    for (int64_t i = 0; i < N; i++) {
        float *r = x + i * D;
        float ss = 0.f;
        for (int64_t d = 0; d < D; d++)
            ss += r[d] * r[d];
        float norm = sqrtf(ss);
        const float inv = 1.f / (norm > 1e-12f ? norm : 1e-12f);
        for (int64_t d = 0; d < D; d++)
            r[d] *= inv;
    }
}
