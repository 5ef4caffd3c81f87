/* vec2vec discriminator. See disc.h. */
#include "disc.h"

#include <math.h>
#include <string.h>

#include "layers_train.h"

#define LN_EPS 1e-5f

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

v2t_status v2t_disc_init(v2t_disc *d, int depth, int64_t d_in, int64_t width)
{
    memset(d, 0, sizeof *d);
    if (depth < 1 || depth > V2T_DISC_MAX_DEPTH)
        return v2t_fail(V2T_ERR_VALUE, "discriminator: depth must be 1..%d, got %d", V2T_DISC_MAX_DEPTH, depth);
    if (d_in <= 0 || width <= 0)
        return v2t_fail(V2T_ERR_VALUE, "discriminator: widths must be positive, got input %lld, width %lld",
                        (long long)d_in, (long long)width);
    d->depth = depth;
    d->d_in = d_in;
    d->width = width;
    int64_t off = 0;
    for (int k = 0; k < depth; k++) {
        const int64_t in = k == 0 ? d_in : width, out = k == depth - 1 ? 1 : width;
        d->w_off[k] = off;
        off += in * out;
        d->b_off[k] = off;
        off += out;
        if (k > 0 && k < depth - 1) {
            d->g_off[k] = off;
            off += width;
            d->be_off[k] = off;
            off += width;
        }
    }
    d->n_params = off;
    return V2T_OK;
}

static float gaussian(v2t_rng *rng)
{
    double u1 = v2t_rng_uniform(rng), u2 = v2t_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void v2t_disc_default_init(const v2t_disc *d, v2t_rng *rng, float *params)
{
    memset(params, 0, (size_t)d->n_params * sizeof(float));
    for (int k = 0; k < d->depth; k++) {
        const int64_t in = k == 0 ? d->d_in : d->width, out = k == d->depth - 1 ? 1 : d->width;
        const float sd = (float)sqrt(2.0 / (double)in);
        for (int64_t i = 0; i < in * out; i++)
            params[d->w_off[k] + i] = sd * gaussian(rng);
        if (k > 0 && k < d->depth - 1)
            for (int64_t i = 0; i < d->width; i++)
                params[d->g_off[k] + i] = 1.f;
    }
}

void v2t_disc_tape_release(v2t_disc_tape *t)
{
    v2t_buffer_release(&t->mem);
    memset(t, 0, sizeof *t);
}

static v2t_status tape_layout(const v2t_disc *d, int64_t B, v2t_disc_tape *t)
{
    const int64_t W = d->width, mw = max64(W, d->d_in);
    const int64_t total = (int64_t)d->depth * (3 * B * W + max64(B, 1) + 64) + 2 * B * mw + 2 * W + 32;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)total, sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&t->mem, bytes, "discriminator tape"));
    float *p = t->mem.data;
#define TAKE(ptr, n)                                                                                          \
    do {                                                                                                      \
        (ptr) = p;                                                                                            \
        p += ((n) + 15) / 16 * 16;                                                                            \
    } while (0)
    for (int k = 0; k < d->depth - 1; k++) {
        TAKE(t->h[k], B * W);
        TAKE(t->a[k], B * W);
        TAKE(t->hat[k], B * W);
        TAKE(t->inv[k], B);
    }
    TAKE(t->scratch, 2 * B * mw + 2 * W);
#undef TAKE
    t->B = B;
    return V2T_OK;
}

void v2t_disc_transpose_weights(const v2t_disc *d, const float *params, float *wt, v2t_exec *ex)
{
    for (int k = 0; k < d->depth; k++) {
        const int64_t in = k == 0 ? d->d_in : d->width, out = k == d->depth - 1 ? 1 : d->width;
        v2t_transpose_weight(ex, params + d->w_off[k], out, in, wt + d->w_off[k]);
    }
}

static v2t_status linear(v2t_exec *ex, const v2t_disc *d, const float *params, const float *wt, int k,
                         const float *x, int64_t B, int64_t in, int64_t out, float *y)
{
    if (wt)
        return v2t_dense_forward_t(ex, x, in, B, in, wt + d->w_off[k], params + d->b_off[k], out, y, out);
    return v2t_dense_forward(ex, x, in, B, in, params + d->w_off[k], params + d->b_off[k], out, y, out);
}

v2t_status v2t_disc_forward(const v2t_disc *d, const float *params, const float *wt, v2t_exec *ex, const float *x,
                            int64_t B, v2t_disc_tape *t, float *score)
{
    if (B <= 0)
        return v2t_fail(V2T_ERR_VALUE, "discriminator: a batch needs at least one row, got %lld", (long long)B);
    V2T_TRY(tape_layout(d, B, t));
    t->x = x;
    const int64_t W = d->width, L = d->depth - 1;
    const float *in = x;
    int64_t iw = d->d_in;
    for (int k = 0; k < L; k++) {
        float *z = k == 0 ? t->h[0] : t->scratch;
        V2T_TRY(linear(ex, d, params, wt, k, in, B, iw, W, z));
        if (k > 0)
            v2t_layernorm_train(z, B, W, params + d->g_off[k], params + d->be_off[k], LN_EPS, t->h[k], t->hat[k],
                                t->inv[k]);
        v2t_silu(t->h[k], t->a[k], B * W);
        in = t->a[k];
        iw = W;
    }
    return linear(ex, d, params, wt, (int)L, in, B, iw, 1, score);
}

v2t_status v2t_disc_backward(const v2t_disc *d, const float *params, v2t_exec *ex, v2t_disc_tape *t,
                             const float *dscore, float *grads, float *dx)
{
    const int64_t B = t->B, W = d->width, L = d->depth - 1;
    float *g = t->scratch, *gz = t->scratch + B * max64(W, d->d_in);
    float *dgam = gz + B * max64(W, d->d_in), *dbet = dgam + W;
    for (int k = L; k >= 0; k--) {
        const float *in = k == 0 ? t->x : t->a[k - 1];
        const int64_t iw = k == 0 ? d->d_in : W, ow = k == L ? 1 : W;
        const float *dy = k == L ? dscore : gz;
        float *gin = k == 0 ? dx : g;
        if (grads)
            V2T_TRY(v2t_dense_backward(ex, in, iw, dy, B, iw, ow, params + d->w_off[k], grads + d->w_off[k],
                                       grads + d->b_off[k], 1, gin, 0));
        else if (gin)
            // dx only: [B, in] = dy [B, out] W [out, in]
            V2T_TRY(v2t_gemm(ex, 0, 0, B, iw, ow, 1.f, dy, ow, params + d->w_off[k], iw, 0.f, gin, iw));
        if (k == 0)
            break;
        // g: gradient at a[k-1] = silu(h[k-1]); through SiLU, then LayerNorm when k-1 is a middle layer
        v2t_silu_backward(t->h[k - 1], g, g, B * W);
        if (k - 1 > 0) {
            float *dg = grads ? grads + d->g_off[k - 1] : dgam, *db = grads ? grads + d->be_off[k - 1] : dbet;
            v2t_layernorm_backward(g, t->hat[k - 1], t->inv[k - 1], params + d->g_off[k - 1], B, W, gz, dg, db);
        } else {
            memcpy(gz, g, (size_t)(B * W) * sizeof(float));
        }
    }
    return V2T_OK;
}
