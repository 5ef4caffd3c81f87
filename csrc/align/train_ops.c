/* Training building blocks. See train_ops.h. */
#include "train_ops.h"

#include "../ops/convert.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void v2t_rng_seed(v2t_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

double v2t_rng_uniform(v2t_rng *r) { return (double)(v2t_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t v2t_rng_below(v2t_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do
        x = v2t_rng_next(r);
    while (x >= limit);
    return x % n;
}

void v2t_rng_shuffle(v2t_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)v2t_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

// y: [B, out] = x [B, in] w[out, in]^T + b
v2t_status v2t_dense_forward(v2t_exec *ex, const float *x, int64_t ldx, int64_t B, int64_t in, const float *w,
                             const float *b, int64_t out, float *y, int64_t ldy)
{
    if (b)
        for (int64_t i = 0; i < B; i++)
            memcpy(y + i * ldy, b, (size_t)out * sizeof(float));
    return v2t_gemm(ex, 0, 1, B, out, in, 1.f, x, ldx, w, in, b ? 1.f : 0.f, y, ldy);
}

v2t_status v2t_dense_forward_t(v2t_exec *ex, const float *x, int64_t ldx, int64_t B, int64_t in, const float *wt,
                               const float *b, int64_t out, float *y, int64_t ldy)
{
    if (b)
        for (int64_t i = 0; i < B; i++)
            memcpy(y + i * ldy, b, (size_t)out * sizeof(float));
    return v2t_gemm(ex, 0, 0, B, out, in, 1.f, x, ldx, wt, out, b ? 1.f : 0.f, y, ldy);
}

v2t_status v2t_train_set_bf16(v2t_exec *ex, int on, const char *who, int count, const float *const w[],
                              const float *const wt[], const int64_t n[])
{
    if (ex->n_mirrors)
        return on ? V2T_OK : v2t_fail(V2T_ERR_VALUE, "%s: bf16 cannot be turned off once on", who);
    ex->gemm_bf16 = on != 0;
    for (int i = 0; on && i < count; i++) {
        V2T_TRY(v2t_gemm_mirror_add(ex, w[i], n[i]));
        V2T_TRY(v2t_gemm_mirror_add(ex, wt[i], n[i]));
    }
    return V2T_OK;
}

void v2t_transpose_weight(v2t_exec *ex, const float *w, int64_t out, int64_t in, float *wt)
{
    uint16_t *mirror = ex && ex->gemm_bf16 ? v2t_gemm_mirror_of(ex, wt, out * in) : NULL;
    if (mirror)
        v2t_pack_bf16(w, in, 1, in, out, mirror);
    else
        v2t_transpose(w, out, in, wt);
}

v2t_status v2t_dense_backward(v2t_exec *ex, const float *x, int64_t ldx, const float *dy, int64_t B, int64_t in,
                              int64_t out, const float *w, float *dw, float *db, int accumulate, float *dx,
                              int accumulate_dx)
{
    // dw: [out, in] = dy^T [out, B] x [B, in]
    V2T_TRY(v2t_gemm(ex, 1, 0, out, in, B, 1.f, dy, out, x, ldx, accumulate ? 1.f : 0.f, dw, in));
    if (db) {
        // column sums over the rows in order, column blocks over the team
        enum { COLS = 64 };
        if (!accumulate)
            memset(db, 0, (size_t)out * sizeof(float));
#pragma omp parallel for schedule(static) if (B * out >= V2T_PAR_MIN)
        for (int64_t o0 = 0; o0 < out; o0 += COLS) {
            const int64_t o1 = o0 + COLS < out ? o0 + COLS : out;
            for (int64_t i = 0; i < B; i++) {
                const float *r = dy + i * out;
                for (int64_t o = o0; o < o1; o++)
                    db[o] += r[o];
            }
        }
    }
    // dx: [B, in] = dy [B, out] w [out, in]
    if (dx)
        V2T_TRY(v2t_gemm(ex, 0, 0, B, in, out, 1.f, dy, out, w, in, accumulate_dx ? 1.f : 0.f, dx, in));
    return V2T_OK;
}

void v2t_relu_inplace(float *x, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] > 0.f ? x[i] : 0.f;
}

void v2t_relu_backward_inplace(const float *a, float *g, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        g[i] = a[i] > 0.f ? g[i] : 0.f;
}

void v2t_adamw_step(const v2t_adam_config *cfg, int64_t step, float *p, const float *g, float *m, float *v,
                    int64_t n)
{
    const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps;
    const float decay = 1.f - cfg->lr * cfg->weight_decay;
    const double bc1 = 1.0 - pow((double)b1, (double)step), bc2 = 1.0 - pow((double)b2, (double)step);
    const float step_size = (float)(cfg->lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + (1.f - b1) * gi;
        v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
        float denom = sqrtf(v[i]) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * m[i] / denom;
    }
}
