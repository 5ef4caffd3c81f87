/* Forward and back substitution with a Cholesky factor. See cholesky.h. */
#include "cholesky.h"

// l: [d, d], b: [d, k]
v2t_status v2t_cholesky_solve(const double *l, int64_t d, double *b, int64_t k)
{
    for (int64_t i = 0; i < d; i++)
        if (!(l[i * d + i] > 0.0))
            return v2t_fail(V2T_ERR_VALUE, "Cholesky factor has a non-positive pivot %g at row %lld",
                            l[i * d + i], (long long)i);
    /* L Z = B: row i of Z = (b_i - sum_{j<i} L[i,j] z_j) / L[i,i]. */
    for (int64_t i = 0; i < d; i++) {
        double *bi = b + i * k;
        for (int64_t j = 0; j < i; j++) {
            const double lij = l[i * d + j];
            const double *bj = b + j * k;
            for (int64_t c = 0; c < k; c++)
                bi[c] -= lij * bj[c];
        }
        const double inv = 1.0 / l[i * d + i];
        for (int64_t c = 0; c < k; c++)
            bi[c] *= inv;
    }
    /* L^T X = Z: row i of X = (z_i - sum_{j>i} L[j,i] x_j) / L[i,i]. */
    for (int64_t i = d - 1; i >= 0; i--) {
        double *bi = b + i * k;
        for (int64_t j = i + 1; j < d; j++) {
            const double lji = l[j * d + i];
            const double *bj = b + j * k;
            for (int64_t c = 0; c < k; c++)
                bi[c] -= lji * bj[c];
        }
        const double inv = 1.0 / l[i * d + i];
        for (int64_t c = 0; c < k; c++)
            bi[c] *= inv;
    }
    return V2T_OK;
}
