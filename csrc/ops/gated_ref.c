/* Naive reference for gated.c: textbook formulas in double precision. */
#include <math.h>

#include "gated.h"

static double act_ref(v2t_act act, double v)
{
    switch (act) {
    case V2T_ACT_RELU: return v > 0 ? v : 0;
    case V2T_ACT_GELU_ERF: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case V2T_ACT_GELU_TANH: return 0.5 * v * (1 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

// x: [M, 2F] (ldx), y: [M, F] (ldy), y may alias x
void v2t_gated_act_ref(v2t_act act, const float *x, int64_t ldx, int64_t M, int64_t F, float *y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t f = 0; f < F; f++) {
            const double a = x[m * ldx + f], b = x[m * ldx + F + f];
            y[m * ldy + f] = (float)(act_ref(act, a) * b);
        }
}
