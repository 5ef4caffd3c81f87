/* Gated activation kernel: one pass per row, a and b read once. See gated.h. */
#include "gated.h"

#include <math.h>

/* 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline float gelu_tanh(float v)
{
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return v / (1.f + expf(-2.f * u));
}

static inline float gelu_erf(float v) { return 0.5f * v * (1.f + erff(v * 0.7071067811865476f)); }

// x: [M, 2F] (ldx), y: [M, F] (ldy), y may alias x
void v2t_gated_act(v2t_act act, const float *x, int64_t ldx, int64_t M, int64_t F, float *y, int64_t ldy)
{
    for (int64_t m = 0; m < M; m++) {
        const float *a = x + m * ldx, *b = a + F;
        float *o = y + m * ldy;
        switch (act) {
        case V2T_ACT_GELU_TANH:
            for (int64_t f = 0; f < F; f++)
                o[f] = gelu_tanh(a[f]) * b[f];
            break;
        case V2T_ACT_GELU_ERF:
            for (int64_t f = 0; f < F; f++)
                o[f] = gelu_erf(a[f]) * b[f];
            break;
        case V2T_ACT_RELU:
            for (int64_t f = 0; f < F; f++)
                o[f] = (a[f] > 0.f ? a[f] : 0.f) * b[f];
            break;
        default:
            for (int64_t f = 0; f < F; f++)
                o[f] = a[f] * b[f];
            break;
        }
    }
}
