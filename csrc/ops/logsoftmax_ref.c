/* Naive reference for logsoftmax.c: libm expf and logf, one element at a time. */
#include <math.h>

#include "logsoftmax.h"

int v2t_log_softmax_add_ref(float *x, int64_t n, float add)
{
    float m = x[0];
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return -1;
        if (x[i] > m)
            m = x[i];
    }
    if (!isfinite(m))
        return -1;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += expf(x[i] - m);
    const float lse = logf((float)sum);
    for (int64_t i = 0; i < n; i++) {
        float shifted = x[i] - m;
        float logp = shifted - lse;
        x[i] = logp + add;
    }
    return 0;
}
