#include "norm.h"

#include <math.h>

// x: [M, D] (ldx), w: [D], y: [M, D] (ldy)
void v2t_rmsnorm(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, float eps, float *y,
                 int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * ldx;
        float *yr = y + m * ldy;
        float ss = 0.f;
#pragma omp simd reduction(+ : ss)
        for (int64_t d = 0; d < D; d++)
            ss += xr[d] * xr[d];
        const float r = 1.f / sqrtf(ss / (float)D + eps);
        for (int64_t d = 0; d < D; d++)
            yr[d] = w[d] * (xr[d] * r);
    }
}

// x: [M, D] (ldx), w, b: [D], y: [M, D] (ldy)
void v2t_layernorm(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, const float *b, float eps,
                   float *y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        const float *xr = x + m * ldx;
        float *yr = y + m * ldy;
        float mean = 0.f;
#pragma omp simd reduction(+ : mean)
        for (int64_t d = 0; d < D; d++)
            mean += xr[d];
        mean /= (float)D;
        float var = 0.f;
#pragma omp simd reduction(+ : var)
        for (int64_t d = 0; d < D; d++)
            var += (xr[d] - mean) * (xr[d] - mean);
        var /= (float)D;
        const float r = 1.f / sqrtf(var + eps);
        for (int64_t d = 0; d < D; d++)
            yr[d] = (xr[d] - mean) * r * w[d] + b[d];
    }
}
