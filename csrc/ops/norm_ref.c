/* Naive references for norm.c in double precision. */
#include <math.h>

#include "norm.h"

void v2t_rmsnorm_ref(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, float eps, float *y,
                     int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        double ss = 0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[m * ldx + d] * x[m * ldx + d];
        double r = 1.0 / sqrt(ss / (double)D + eps);
        for (int64_t d = 0; d < D; d++)
            y[m * ldy + d] = (float)(w[d] * (x[m * ldx + d] * r));
    }
}

void v2t_layernorm_ref(const float *x, int64_t ldx, int64_t M, int64_t D, const float *w, const float *b,
                       float eps, float *y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        double mean = 0, var = 0;
        for (int64_t d = 0; d < D; d++)
            mean += x[m * ldx + d];
        mean /= (double)D;
        for (int64_t d = 0; d < D; d++)
            var += (x[m * ldx + d] - mean) * (x[m * ldx + d] - mean);
        var /= (double)D;
        double r = 1.0 / sqrt(var + eps);
        for (int64_t d = 0; d < D; d++)
            y[m * ldy + d] = (float)((x[m * ldx + d] - mean) * r * w[d] + b[d]);
    }
}
