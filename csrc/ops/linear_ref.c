/* Naive reference for linear.c: triple loop with double accumulation. */
#include <math.h>

#include "linear.h"

float v2t_act_apply(v2t_act act, float v)
{
    switch (act) {
    case V2T_ACT_RELU:
        return v > 0.f ? v : 0.f;
    case V2T_ACT_GELU_ERF:
        return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    case V2T_ACT_GELU_TANH:
        return 0.5f * v * (1.f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    default:
        return v;
    }
}

// x: [M, in] (row stride ldx), w: [out, in], b: [out], y: [M, out] (row stride ldy)
void v2t_linear_ref(const float *w, const float *b, int64_t in, int64_t out, v2t_act act, int accumulate,
                    const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t k = 0; k < in; k++)
                acc += (double)x[m * ldx + k] * (double)w[o * in + k];
            float v = v2t_act_apply(act, (float)acc);
            y[m * ldy + o] = accumulate ? y[m * ldy + o] + v : v;
        }
    }
}
