/* Naive reference for the cosine kernel, in double precision. */
#include <math.h>

#include "select.h"

void v2t_cosine_rows_ref(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t n, int64_t D, float *out)
{
    for (int64_t i = 0; i < n; i++) {
        double xy = 0, xx = 0, yy = 0;
        for (int64_t d = 0; d < D; d++) {
            double x = a[i * lda + d], y = b[i * ldb + d];
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        out[i] = (float)(xy / (fmax(sqrt(xx), 1e-8) * fmax(sqrt(yy), 1e-8)));
    }
}
