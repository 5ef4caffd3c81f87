/* vec2vec residual MLP. See resmlp.h. */
#include "resmlp.h"

#include <math.h>
#include <string.h>

#define NORM_EPS 1e-5f
#define BN_MOMENTUM 0.1f

enum { BLOCK_FIRST = 0, BLOCK_MIDDLE = 1, BLOCK_LAST = 2 };

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int v2t_resmlp_block_kind(const v2t_resmlp *m, int i)
{
    if (i == 0)
        return BLOCK_FIRST;
    return i == m->depth - 1 ? BLOCK_LAST : BLOCK_MIDDLE;
}

v2t_status v2t_resmlp_init(v2t_resmlp *m, int depth, int64_t d_in, int64_t d_hidden, int64_t d_out,
                           v2t_norm_kind norm, float dropout)
{
    memset(m, 0, sizeof *m);
    if (depth < 1 || depth > V2T_RESMLP_MAX_DEPTH)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: depth must be 1..%d, got %d", V2T_RESMLP_MAX_DEPTH, depth);
    if (d_in <= 0 || d_hidden <= 0 || d_out <= 0)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: widths must be positive, got %lld, %lld, %lld",
                        (long long)d_in, (long long)d_hidden, (long long)d_out);
    if (!(dropout >= 0.f && dropout < 1.f))
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: dropout must be in [0, 1), got %g", dropout);
    if (norm != V2T_NORM_BATCH && norm != V2T_NORM_LAYER)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: norm must be 0 (batch) or 1 (layer), got %d", (int)norm);
    m->depth = depth;
    m->d_in = d_in;
    m->d_hidden = d_hidden;
    m->d_out = d_out;
    m->norm = norm;
    m->dropout = dropout;
    int64_t off = 0, soff = 0;
    for (int i = 0; i < depth; i++) {
        const int kind = v2t_resmlp_block_kind(m, i);
        m->in_w[i] = i == 0 ? d_in : d_hidden;
        m->out_w[i] = (depth == 1 || kind == BLOCK_LAST) ? d_out : d_hidden;
        const int64_t o1 = kind == BLOCK_LAST ? d_hidden : m->out_w[i];
        m->w_off[i] = off;
        off += o1 * m->in_w[i];
        m->b_off[i] = off;
        off += o1;
        if (kind == BLOCK_MIDDLE) {
            m->g_off[i] = off;
            off += d_hidden;
            m->be_off[i] = off;
            off += d_hidden;
            if (norm == V2T_NORM_BATCH) {
                m->s_off[i] = soff;
                soff += 2 * d_hidden;
            }
        } else if (kind == BLOCK_LAST) {
            m->w2_off = off;
            off += d_out * d_hidden;
            m->b2_off = off;
            off += d_out;
        }
    }
    m->n_params = off;
    m->n_stats = soff;
    return V2T_OK;
}

/* Standard normal by Box-Muller. */
static float gaussian(v2t_rng *rng)
{
    double u1 = v2t_rng_uniform(rng), u2 = v2t_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void kaiming(v2t_rng *rng, float *w, int64_t out, int64_t in)
{
    const float sd = (float)sqrt(2.0 / (double)in);
    for (int64_t k = 0; k < out * in; k++)
        w[k] = sd * gaussian(rng);
}

void v2t_resmlp_default_init(const v2t_resmlp *m, v2t_rng *rng, float *params, float *stats)
{
    memset(params, 0, (size_t)m->n_params * sizeof(float));
    const int64_t h = m->d_hidden;
    for (int i = 0; i < m->depth; i++) {
        const int kind = v2t_resmlp_block_kind(m, i);
        kaiming(rng, params + m->w_off[i], kind == BLOCK_LAST ? h : m->out_w[i], m->in_w[i]);
        if (kind == BLOCK_LAST)
            kaiming(rng, params + m->w2_off, m->d_out, h);
        if (kind != BLOCK_MIDDLE)
            continue;
        for (int64_t k = 0; k < h; k++) {
            params[m->g_off[i] + k] = m->norm == V2T_NORM_BATCH ? 1.f + 0.02f * gaussian(rng) : 1.f;
            params[m->be_off[i] + k] = m->norm == V2T_NORM_BATCH ? 0.02f * gaussian(rng) : 0.f;
        }
        if (m->norm == V2T_NORM_BATCH)
            for (int64_t k = 0; k < h; k++) {
                stats[m->s_off[i] + k] = 0.f;
                stats[m->s_off[i] + h + k] = 1.f;
            }
    }
}

void v2t_resmlp_tape_release(v2t_resmlp_tape *t)
{
    v2t_buffer_release(&t->mem);
    memset(t, 0, sizeof *t);
}

static int64_t max_width(const v2t_resmlp *m) { return max64(max64(m->d_in, m->d_hidden), m->d_out); }

/* Lay out the tape for B rows (reusing its memory when large enough). */
static v2t_status tape_layout(const v2t_resmlp *m, int64_t B, v2t_resmlp_tape *t)
{
    const int64_t h = m->d_hidden, mw = max_width(m);
    int64_t total = 0;
    for (int i = 0; i < m->depth; i++)
        total += 4 * B * max64(h, m->out_w[i]) + max64(B, h) + B * m->out_w[i] + 16 * 6;
    total += B * h + 3 * B * mw + 16 * 2;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)total, sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&t->mem, bytes, "residual MLP tape"));
    float *p = t->mem.data;
#define TAKE(ptr, n)                                                                                          \
    do {                                                                                                      \
        (ptr) = p;                                                                                            \
        p += ((n) + 15) / 16 * 16;                                                                            \
    } while (0)
    for (int i = 0; i < m->depth; i++) {
        const int64_t o = max64(h, m->out_w[i]);
        TAKE(t->z[i], B * o);
        TAKE(t->hat[i], B * o);
        TAKE(t->mask[i], B * o);
        TAKE(t->inv[i], max64(B, h));
        TAKE(t->out[i], B * m->out_w[i]);
    }
    TAKE(t->s_last, B * h);
    TAKE(t->scratch, 3 * B * mw);
#undef TAKE
    t->B = B;
    return V2T_OK;
}

static void norm_forward(const v2t_resmlp *m, const float *params, float *stats, int training, int i,
                         const float *a, int64_t B, float *y, float *xhat, float *inv)
{
    const int64_t D = m->d_hidden;
    const float *g = params + m->g_off[i], *be = params + m->be_off[i];
    if (m->norm == V2T_NORM_LAYER) {
        v2t_layernorm_train(a, B, D, g, be, NORM_EPS, y, xhat, inv);
    } else if (training) {
        float *rm = stats ? stats + m->s_off[i] : NULL, *rv = stats ? stats + m->s_off[i] + D : NULL;
        v2t_batchnorm_train(a, B, D, g, be, NORM_EPS, BN_MOMENTUM, rm, rv, y, xhat, inv);
    } else {
        v2t_batchnorm_eval(a, B, D, g, be, NORM_EPS, stats + m->s_off[i], stats + m->s_off[i] + D, y);
    }
}

void v2t_resmlp_transpose_weights(const v2t_resmlp *m, const float *params, float *wt, v2t_exec *ex)
{
    for (int i = 0; i < m->depth; i++) {
        const int kind = v2t_resmlp_block_kind(m, i);
        const int64_t o1 = kind == BLOCK_LAST ? m->d_hidden : m->out_w[i];
        v2t_transpose_weight(ex, params + m->w_off[i], o1, m->in_w[i], wt + m->w_off[i]);
        if (kind == BLOCK_LAST)
            v2t_transpose_weight(ex, params + m->w2_off, m->d_out, m->d_hidden, wt + m->w2_off);
    }
}

/* y: [B, out] = x [B, in] W^T + b, W at offset w_off of params (or transposed in wt) */
static v2t_status linear(v2t_exec *ex, const float *params, const float *wt, int64_t w_off, int64_t b_off,
                         const float *x, int64_t B, int64_t in, int64_t out, float *y)
{
    if (wt)
        return v2t_dense_forward_t(ex, x, in, B, in, wt + w_off, params + b_off, out, y, out);
    return v2t_dense_forward(ex, x, in, B, in, params + w_off, params + b_off, out, y, out);
}

v2t_status v2t_resmlp_forward(const v2t_resmlp *m, const float *params, const float *wt, float *stats, int training,
                              v2t_rng *rng, v2t_exec *ex, const float *x, int64_t B, v2t_resmlp_tape *tape,
                              float *y)
{
    if (B <= 0)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: a batch needs at least one row, got %lld", (long long)B);
    if (!training && m->norm == V2T_NORM_BATCH && m->n_stats > 0 && !stats)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: inference with BatchNorm needs running statistics");
    const float p = training ? m->dropout : 0.f;
    if (p > 0.f && !rng)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: training with dropout needs a random generator");
    v2t_resmlp_tape local = {0};
    v2t_resmlp_tape *t = tape ? tape : &local;
    V2T_TRY(tape_layout(m, B, t));
    t->x = x;
    const int64_t h = m->d_hidden;
    const float *in = x;
    v2t_status s = V2T_OK;
    for (int i = 0; i < m->depth; i++) {
        const int kind = v2t_resmlp_block_kind(m, i);
        const int64_t iw = m->in_w[i], ow = m->out_w[i];
        float *out = i == m->depth - 1 ? y : t->out[i];
        if (kind == BLOCK_FIRST) {
            // out = silu(in W^T + b)
            V2T_CHECK(s, linear(ex, params, wt, m->w_off[i], m->b_off[i], in, B, iw, ow, t->z[i]), done);
            v2t_silu(t->z[i], out, B * ow);
        } else if (kind == BLOCK_MIDDLE) {
            // out = dropout(norm(silu(in W^T + b)))
            V2T_CHECK(s, linear(ex, params, wt, m->w_off[i], m->b_off[i], in, B, iw, h, t->z[i]), done);
            float *a = t->scratch;
            v2t_silu(t->z[i], a, B * h);
            norm_forward(m, params, stats, training, i, a, B, out, t->hat[i], t->inv[i]);
            v2t_dropout(out, p, rng, t->mask[i], out, B * h);
        } else {
            // out = silu(dropout(in W1^T + b1)) W2^T + b2
            V2T_CHECK(s, linear(ex, params, wt, m->w_off[i], m->b_off[i], in, B, iw, h, t->z[i]), done);
            v2t_dropout(t->z[i], p, rng, t->mask[i], t->hat[i], B * h);
            v2t_silu(t->hat[i], t->s_last, B * h);
            V2T_CHECK(s, linear(ex, params, wt, m->w2_off, m->b2_off, t->s_last, B, h, ow, out), done);
        }
        v2t_residual_add(in, iw, out, ow, B);
        in = out;
    }
done:
    if (!tape)
        v2t_resmlp_tape_release(&local);
    return s;
}

v2t_status v2t_resmlp_backward(const v2t_resmlp *m, const float *params, v2t_exec *ex, v2t_resmlp_tape *t,
                               const float *dy, float *grads, float *dx)
{
    const int64_t B = t->B, h = m->d_hidden, mw = max_width(m);
    float *gcur = t->scratch, *gin = t->scratch + B * mw, *tmp = t->scratch + 2 * B * mw;
    memcpy(gcur, dy, (size_t)(B * m->d_out) * sizeof(float));
    for (int i = m->depth - 1; i >= 0; i--) {
        const int kind = v2t_resmlp_block_kind(m, i);
        const int64_t iw = m->in_w[i], ow = m->out_w[i];
        const float *in = i == 0 ? t->x : t->out[i - 1];
        const int want_dx = i > 0 || dx;
        // the residual passes the output gradient straight to the input
        memset(gin, 0, (size_t)(B * iw) * sizeof(float));
        v2t_residual_backward(gcur, ow, gin, iw, B);
        if (kind == BLOCK_FIRST) {
            v2t_silu_backward(t->z[i], gcur, tmp, B * ow);
            V2T_TRY(v2t_dense_backward(ex, in, iw, tmp, B, iw, ow, params + m->w_off[i], grads + m->w_off[i],
                                       grads + m->b_off[i], 1, want_dx ? gin : NULL, 1));
        } else if (kind == BLOCK_MIDDLE) {
#pragma omp parallel for schedule(static) if (B * h >= V2T_PAR_MIN)
            for (int64_t k = 0; k < B * h; k++)
                gcur[k] *= t->mask[i][k];
            float *dg = grads + m->g_off[i], *db = grads + m->be_off[i];
            const float *g = params + m->g_off[i];
            if (m->norm == V2T_NORM_LAYER)
                v2t_layernorm_backward(gcur, t->hat[i], t->inv[i], g, B, h, tmp, dg, db);
            else
                v2t_batchnorm_backward(gcur, t->hat[i], t->inv[i], g, B, h, tmp, dg, db);
            v2t_silu_backward(t->z[i], tmp, tmp, B * h);
            V2T_TRY(v2t_dense_backward(ex, in, iw, tmp, B, iw, h, params + m->w_off[i], grads + m->w_off[i],
                                       grads + m->b_off[i], 1, want_dx ? gin : NULL, 1));
        } else {
            V2T_TRY(v2t_dense_backward(ex, t->s_last, h, gcur, B, h, ow, params + m->w2_off, grads + m->w2_off,
                                       grads + m->b2_off, 1, tmp, 0));
            v2t_silu_backward(t->hat[i], tmp, tmp, B * h);
#pragma omp parallel for schedule(static) if (B * h >= V2T_PAR_MIN)
            for (int64_t k = 0; k < B * h; k++)
                tmp[k] *= t->mask[i][k];
            V2T_TRY(v2t_dense_backward(ex, in, iw, tmp, B, iw, h, params + m->w_off[i], grads + m->w_off[i],
                                       grads + m->b_off[i], 1, want_dx ? gin : NULL, 1));
        }
        float *sw = gcur;
        gcur = gin;
        gin = sw;
    }
    if (dx)
        memcpy(dx, gcur, (size_t)(B * m->d_in) * sizeof(float));
    return V2T_OK;
}
