/* Log-softmax on eight-lane vectors (vec8.h): the max, the NaN check and the exp sum keep 8
 * independent lanes, so nothing is reassociated beyond a fixed lane order, and exp is a
 * branch-free polynomial instead of a libm call. */
#include "logsoftmax.h"

#include <math.h>

#include "vec8.h"

enum { W = 8 };

/* exp(x) for x <= 0 (x - max), about 1 ulp: Cody-Waite reduction by ln 2 and the Cephes expf
 * polynomial on [-ln2/2, ln2/2]. Below -87.3 the result (under 2^-126) is flushed to 0, which
 * cannot change a sum that holds exp(0) = 1. */
static inline v2t_v8f exp_nonpositive(v2t_v8f x)
{
    const v2t_v8f lo = v2t_splat8(-87.3f);
    const v2t_v8i under = x < lo;
    const v2t_v8f xc = v2t_select8(under, lo, x);
    /* k = round(x / ln 2) through the 1.5 * 2^23 rounding constant */
    v2t_v8f k = (xc * v2t_splat8(1.44269504088896341f) + v2t_splat8(12582912.0f)) - v2t_splat8(12582912.0f);
    v2t_v8f r = xc - k * v2t_splat8(0.693359375f);
    r = r - k * v2t_splat8(-2.12194440e-4f);
    v2t_v8f p = v2t_splat8(1.9875691500e-4f);
    p = p * r + v2t_splat8(1.3981999507e-3f);
    p = p * r + v2t_splat8(8.3334519073e-3f);
    p = p * r + v2t_splat8(4.1665795894e-2f);
    p = p * r + v2t_splat8(1.6666665459e-1f);
    p = p * r + v2t_splat8(5.0000001201e-1f);
    v2t_v8f y = p * (r * r) + r + v2t_splat8(1.0f);
    v2t_v8i two_k = (__builtin_convertvector(k, v2t_v8i) + 127) << 23; /* bits of 2^k, k in [-126, 0] */
    return v2t_select8(under, v2t_splat8(0.0f), y * (v2t_v8f)two_k);
}

static float exp_nonpositive1(float x)
{
    float lanes[W] = {x};
    return exp_nonpositive(v2t_load8(lanes))[0];
}

int v2t_log_softmax_add(float *x, int64_t n, float add)
{
    v2t_v8f mx = v2t_splat8(x[0]);
    v2t_v8i nan = {0};
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        v2t_v8f v = v2t_load8(x + i);
        mx = v2t_select8(v > mx, v, mx);
        nan |= v != v;
    }
    float m = mx[0];
    int any_nan = v2t_any8(nan);
    for (int j = 1; j < W; j++)
        m = mx[j] > m ? mx[j] : m;
    for (; i < n; i++) {
        m = x[i] > m ? x[i] : m;
        any_nan |= x[i] != x[i];
    }
    if (any_nan || !isfinite(m))
        return -1;

    v2t_v4d acc_lo = {0}, acc_hi = {0};
    const v2t_v8f vm = v2t_splat8(m);
    for (i = 0; i + W <= n; i += W) {
        v2t_v4d lo, hi;
        v2t_widen8(exp_nonpositive(v2t_load8(x + i) - vm), &lo, &hi);
        acc_lo += lo;
        acc_hi += hi;
    }
    double sum = 0.0;
    for (int j = 0; j < 4; j++)
        sum += acc_lo[j];
    for (int j = 0; j < 4; j++)
        sum += acc_hi[j];
    for (; i < n; i++)
        sum += (double)exp_nonpositive1(x[i] - m);
    const float lse = logf((float)sum);
    for (i = 0; i < n; i++) {
        float shifted = x[i] - m;
        float logp = shifted - lse;
        x[i] = logp + add;
    }
    return 0;
}
