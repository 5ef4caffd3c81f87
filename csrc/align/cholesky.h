/* Triangular solves for a Cholesky factor computed by LAPACK (numpy.linalg.cholesky):
 * the linear aligners solve (A) X = B with A = L L^T without ever forming an inverse.
 * Double precision; the right-hand sides are rows of B, so the inner loops run along rows. */
#ifndef V2T_ALIGN_CHOLESKY_H
#define V2T_ALIGN_CHOLESKY_H

#include <stdint.h>

#include "../core/status.h"

// l: [d, d] lower triangular (row-major, upper part ignored); b: [d, k] -> overwritten by X with L L^T X = B
v2t_status v2t_cholesky_solve(const double *l, int64_t d, double *b, int64_t k);

#endif
