/* Training layers. See layers_train.h. */
#include "layers_train.h"

#include <math.h>
#include <string.h>

/* exp(x) without a library call, so loops over it vectorise: Cody-Waite range reduction
 * x = k ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial for e^r (Cephes' expf coefficients,
 * about 1 ulp), and 2^k put straight into the exponent bits. x is clamped to [-87, 88]; k is
 * rounded to nearest by adding and subtracting 1.5 * 2^23. */
static inline float exp_poly(float x)
{
    x = x < -87.f ? -87.f : x;
    x = x > 88.f ? 88.f : x;
    const float k = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
    const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    const int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

void v2t_silu(const float *x, float *y, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] / (1.f + exp_poly(-x[i]));
}

void v2t_silu_backward(const float *x, const float *dy, float *dx, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float s = 1.f / (1.f + exp_poly(-x[i]));
        dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
    }
}

/* Columns are handled in blocks of COLS: sums run row by row over a block (contiguous,
 * vectorisable), with the block's accumulators on the stack. Blocks are independent and split
 * over the OpenMP team; each column's arithmetic does not depend on the split. */
#define COLS 64

void v2t_batchnorm_train(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                         float momentum, float *running_mean, float *running_var, float *y, float *xhat,
                         float *inv_std)
{
#pragma omp parallel for schedule(static) if (B * D >= V2T_PAR_MIN)
    for (int64_t j0 = 0; j0 < D; j0 += COLS) {
        const int64_t w = D - j0 < COLS ? D - j0 : COLS;
        double mean[COLS] = {0}, var[COLS] = {0};
        float inv[COLS], mf[COLS];
        for (int64_t i = 0; i < B; i++) {
            const float *r = x + i * D + j0;
            for (int64_t j = 0; j < w; j++)
                mean[j] += r[j];
        }
        for (int64_t j = 0; j < w; j++)
            mean[j] /= (double)B;
        for (int64_t i = 0; i < B; i++) {
            const float *r = x + i * D + j0;
            for (int64_t j = 0; j < w; j++) {
                const double t = r[j] - mean[j];
                var[j] += t * t;
            }
        }
        for (int64_t j = 0; j < w; j++) {
            if (running_mean) {
                const double unbiased = B > 1 ? var[j] / (double)(B - 1) : var[j] / (double)B;
                running_mean[j0 + j] = (1.f - momentum) * running_mean[j0 + j] + momentum * (float)mean[j];
                running_var[j0 + j] = (1.f - momentum) * running_var[j0 + j] + momentum * (float)unbiased;
            }
            inv[j] = (float)(1.0 / sqrt(var[j] / (double)B + eps));
            mf[j] = (float)mean[j];
            if (inv_std)
                inv_std[j0 + j] = inv[j];
        }
        for (int64_t i = 0; i < B; i++) {
            const float *r = x + i * D + j0, *g = gamma + j0, *be = beta + j0;
            float *yr = y + i * D + j0, *hr = xhat ? xhat + i * D + j0 : NULL;
            for (int64_t j = 0; j < w; j++) {
                const float h = (r[j] - mf[j]) * inv[j];
                if (hr)
                    hr[j] = h;
                yr[j] = h * g[j] + be[j];
            }
        }
    }
}

void v2t_batchnorm_eval(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                        const float *running_mean, const float *running_var, float *y)
{
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < D; j++)
            y[i * D + j] = (x[i * D + j] - running_mean[j]) / sqrtf(running_var[j] + eps) * gamma[j] + beta[j];
}

void v2t_batchnorm_backward(const float *dy, const float *xhat, const float *inv_std, const float *gamma, int64_t B,
                            int64_t D, float *dx, float *dgamma, float *dbeta)
{
    // per column: s = sum_i dy, t = sum_i dy xhat;  dx = gamma inv (dy - (s + xhat t) / B)
#pragma omp parallel for schedule(static) if (B * D >= V2T_PAR_MIN)
    for (int64_t j0 = 0; j0 < D; j0 += COLS) {
        const int64_t w = D - j0 < COLS ? D - j0 : COLS;
        double s[COLS] = {0}, t[COLS] = {0};
        float k[COLS], c[COLS], e[COLS];
        for (int64_t i = 0; i < B; i++) {
            const float *g = dy + i * D + j0, *h = xhat + i * D + j0;
            for (int64_t j = 0; j < w; j++) {
                s[j] += g[j];
                t[j] += (double)g[j] * h[j];
            }
        }
        for (int64_t j = 0; j < w; j++) {
            dgamma[j0 + j] += (float)t[j];
            dbeta[j0 + j] += (float)s[j];
            k[j] = gamma[j0 + j] * inv_std[j0 + j];
            c[j] = (float)(s[j] / (double)B);
            e[j] = (float)(t[j] / (double)B);
        }
        for (int64_t i = 0; i < B; i++) {
            const float *g = dy + i * D + j0, *h = xhat + i * D + j0;
            float *o = dx + i * D + j0;
            for (int64_t j = 0; j < w; j++)
                o[j] = k[j] * (g[j] - c[j] - h[j] * e[j]);
        }
    }
}

void v2t_layernorm_train(const float *x, int64_t B, int64_t D, const float *gamma, const float *beta, float eps,
                         float *y, float *xhat, float *inv_std)
{
#pragma omp parallel for schedule(static) if (B * D >= V2T_PAR_MIN)
    for (int64_t i = 0; i < B; i++) {
        const float *r = x + i * D;
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < D; j++)
            mean += r[j];
        mean /= (double)D;
        for (int64_t j = 0; j < D; j++)
            var += (r[j] - mean) * (r[j] - mean);
        float inv = (float)(1.0 / sqrt(var / (double)D + eps));
        inv_std[i] = inv;
        for (int64_t j = 0; j < D; j++) {
            float h = (float)(r[j] - mean) * inv;
            xhat[i * D + j] = h;
            y[i * D + j] = h * gamma[j] + beta[j];
        }
    }
}

void v2t_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, const float *gamma, int64_t B,
                            int64_t D, float *dx, float *dgamma, float *dbeta)
{
    const int par = B * D >= V2T_PAR_MIN;
    // dx: rows are independent
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < B; i++) {
        const float *g = dy + i * D, *h = xhat + i * D;
        double mg = 0.0, mgh = 0.0;
        for (int64_t j = 0; j < D; j++) {
            double gj = (double)g[j] * gamma[j];
            mg += gj;
            mgh += gj * h[j];
        }
        mg /= (double)D;
        mgh /= (double)D;
        for (int64_t j = 0; j < D; j++)
            dx[i * D + j] = (float)(inv_std[i] * ((double)g[j] * gamma[j] - mg - h[j] * mgh));
    }
    // dgamma, dbeta: column sums, each column over the rows in order (column blocks over the team)
#pragma omp parallel for schedule(static) if (par)
    for (int64_t j0 = 0; j0 < D; j0 += COLS) {
        const int64_t j1 = j0 + COLS < D ? j0 + COLS : D;
        for (int64_t i = 0; i < B; i++) {
            const float *g = dy + i * D, *h = xhat + i * D;
            for (int64_t j = j0; j < j1; j++) {
                dgamma[j] += g[j] * h[j];
                dbeta[j] += g[j];
            }
        }
    }
}

#undef COLS

void v2t_dropout(const float *x, float p, v2t_rng *rng, float *mask, float *y, int64_t n)
{
    if (p <= 0.f) {
        for (int64_t i = 0; i < n; i++) {
            mask[i] = 1.f;
            y[i] = x[i];
        }
        return;
    }
    const float keep = 1.f / (1.f - p);
    // v2t_rng_uniform(rng) >= p  <=>  (draw >> 11) >= p 2^53 (exact: a power-of-two scaling), so
    // the masks are those of the uniform draws without the conversions
    const uint64_t threshold = (uint64_t)ceil((double)p * 0x1.0p53);
    for (int64_t i = 0; i < n; i++)
        mask[i] = (v2t_rng_next(rng) >> 11) >= threshold ? keep : 0.f;
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * mask[i];
}

void v2t_residual_add(const float *x, int64_t Dx, float *y, int64_t Dy, int64_t B)
{
    const int64_t w = Dx < Dy ? Dx : Dy;
#pragma omp parallel for schedule(static) if (B * w >= V2T_PAR_MIN)
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < w; j++)
            y[i * Dy + j] += x[i * Dx + j];
}

void v2t_residual_backward(const float *dy, int64_t Dy, float *dx, int64_t Dx, int64_t B)
{
    const int64_t w = Dx < Dy ? Dx : Dy;
#pragma omp parallel for schedule(static) if (B * w >= V2T_PAR_MIN)
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < w; j++)
            dx[i * Dx + j] += dy[i * Dy + j];
}

void v2t_l2_rows(const float *x, int64_t B, int64_t D, float *y, float *norms)
{
#pragma omp parallel for schedule(static) if (B * D >= V2T_PAR_MIN)
    for (int64_t i = 0; i < B; i++) {
        double ss = 0.0;
        for (int64_t j = 0; j < D; j++)
            ss += (double)x[i * D + j] * x[i * D + j];
        float nrm = (float)sqrt(ss);
        norms[i] = nrm;
        float inv = nrm > 0.f ? 1.f / nrm : 0.f;
        for (int64_t j = 0; j < D; j++)
            y[i * D + j] = x[i * D + j] * inv;
    }
}

void v2t_l2_rows_backward(const float *y, const float *dy, const float *norms, int64_t B, int64_t D, float *dx)
{
#pragma omp parallel for schedule(static) if (B * D >= V2T_PAR_MIN)
    for (int64_t i = 0; i < B; i++) {
        double dot = 0.0;
        for (int64_t j = 0; j < D; j++)
            dot += (double)y[i * D + j] * dy[i * D + j];
        float inv = norms[i] > 0.f ? 1.f / norms[i] : 0.f;
        for (int64_t j = 0; j < D; j++)
            dx[i * D + j] = (float)((dy[i * D + j] - y[i * D + j] * dot) * inv);
    }
}
