/* vec2vec residual MLP. See resmlp.h. */
#include "resmlp.h"

#include <math.h>
#include <string.h>

#define NORM_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

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
    m->depth = depth;
    m->d_in = d_in;
    m->d_hidden = d_hidden;
    m->d_out = d_out;
    m->norm = norm;
    m->dropout = dropout;
    int64_t off = 0, soff = 0;
    for (int i = 0; i < depth; i++) {
        int last = i == depth - 1 && depth > 1;
        m->in_w[i] = i == 0 ? d_in : d_hidden;
        m->out_w[i] = depth == 1 ? d_out : (last ? d_out : d_hidden);
        int64_t o1 = last ? d_hidden : m->out_w[i];
        m->w_off[i] = off;
        off += o1 * m->in_w[i];
        m->b_off[i] = off;
        off += o1;
        if (last) {
            m->w2_off = off;
            off += d_out * d_hidden;
            m->b2_off = off;
            off += d_out;
        } else {
            m->g_off[i] = off;
            off += m->out_w[i];
            m->be_off[i] = off;
            off += m->out_w[i];
            m->s_off[i] = soff;
            soff += 2 * m->out_w[i];
        }
    }
    m->g_off[depth] = off;
    off += d_out;
    m->be_off[depth] = off;
    off += d_out;
    m->s_off[depth] = soff;
    soff += 2 * d_out;
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

void v2t_resmlp_default_init(const v2t_resmlp *m, v2t_rng *rng, float *params, float *stats)
{
    memset(params, 0, (size_t)m->n_params * sizeof(float));
    for (int i = 0; i < m->depth; i++) {
        int last = i == m->depth - 1 && m->depth > 1;
        int64_t o1 = last ? m->d_hidden : m->out_w[i];
        for (int64_t k = 0; k < o1 * m->in_w[i]; k++)
            params[m->w_off[i] + k] = 0.02f * gaussian(rng);
        if (last) {
            for (int64_t k = 0; k < m->d_out * m->d_hidden; k++)
                params[m->w2_off + k] = 0.02f * gaussian(rng);
        } else {
            for (int64_t k = 0; k < m->out_w[i]; k++)
                params[m->g_off[i] + k] = 1.f;
        }
    }
    for (int64_t k = 0; k < m->d_out; k++)
        params[m->g_off[m->depth] + k] = 1.f;
    for (int i = 0; i <= m->depth; i++) {
        int last = i == m->depth - 1 && m->depth > 1;
        if (last)
            continue;
        int64_t D = i == m->depth ? m->d_out : m->out_w[i];
        for (int64_t k = 0; k < D; k++) {
            stats[m->s_off[i] + k] = 0.f;
            stats[m->s_off[i] + D + k] = 1.f;
        }
    }
}

void v2t_resmlp_tape_release(v2t_resmlp_tape *t)
{
    v2t_buffer_release(&t->mem);
    memset(t, 0, sizeof *t);
}

static int64_t max_width(const v2t_resmlp *m) { return max64(max64(m->d_in, m->d_hidden), m->d_out); }

/* Lay out the tape for B rows. */
static v2t_status tape_layout(const v2t_resmlp *m, int64_t B, v2t_resmlp_tape *t)
{
    int64_t total = 0, mw = max_width(m);
    for (int i = 0; i < m->depth; i++) {
        int last = i == m->depth - 1 && m->depth > 1;
        int64_t o = last ? m->d_hidden : m->out_w[i];
        total += 3 * B * o + max64(B, o) + B * m->out_w[i] + 16 * 5;
    }
    total += B * m->d_hidden + B * m->d_out + max64(B, m->d_out) + B * m->d_out + 3 * B * mw + 16 * 6;
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
        int last = i == m->depth - 1 && m->depth > 1;
        int64_t o = last ? m->d_hidden : m->out_w[i];
        TAKE(t->z[i], B * o);
        TAKE(t->mask[i], B * o);
        TAKE(t->h[i], B * o);
        TAKE(t->inv[i], max64(B, o));
        TAKE(t->out[i], B * m->out_w[i]);
    }
    TAKE(t->s_last, B * m->d_hidden);
    TAKE(t->hat_out, B * m->d_out);
    TAKE(t->inv[m->depth], max64(B, m->d_out));
    TAKE(t->out[m->depth], B * m->d_out);
    TAKE(t->scratch, 3 * B * mw);
#undef TAKE
    t->B = B;
    return V2T_OK;
}

static void norm_forward(const v2t_resmlp *m, const float *params, float *stats, int training, int idx,
                         const float *a, int64_t B, int64_t D, float *y, float *xhat, float *inv)
{
    const float *g = params + m->g_off[idx], *be = params + m->be_off[idx];
    if (m->norm == V2T_NORM_LAYER) {
        v2t_layernorm_train(a, B, D, g, be, NORM_EPS, y, xhat, inv);
    } else if (training) {
        float *rm = stats ? stats + m->s_off[idx] : NULL, *rv = stats ? stats + m->s_off[idx] + D : NULL;
        v2t_batchnorm_train(a, B, D, g, be, NORM_EPS, BN_MOMENTUM, rm, rv, y, xhat, inv);
    } else {
        v2t_batchnorm_eval(a, B, D, g, be, NORM_EPS, stats + m->s_off[idx], stats + m->s_off[idx] + D, y);
    }
}

static void norm_backward(const v2t_resmlp *m, const float *params, int idx, const float *dy, const float *xhat,
                          const float *inv, int64_t B, int64_t D, float *dx, float *grads)
{
    const float *g = params + m->g_off[idx];
    float *dg = grads + m->g_off[idx], *db = grads + m->be_off[idx];
    if (m->norm == V2T_NORM_LAYER)
        v2t_layernorm_backward(dy, xhat, inv, g, B, D, dx, dg, db);
    else
        v2t_batchnorm_backward(dy, xhat, inv, g, B, D, dx, dg, db);
}

v2t_status v2t_resmlp_forward(const v2t_resmlp *m, const float *params, float *stats, int training, v2t_rng *rng,
                              v2t_exec *ex, const float *x, int64_t B, v2t_resmlp_tape *tape, float *y)
{
    if (B <= 0)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: a batch needs at least one row, got %lld", (long long)B);
    if (!training && m->norm == V2T_NORM_BATCH && !stats)
        return v2t_fail(V2T_ERR_VALUE, "residual MLP: inference with BatchNorm needs running statistics");
    v2t_resmlp_tape local = {0};
    v2t_resmlp_tape *t = tape ? tape : &local;
    V2T_TRY(tape_layout(m, B, t));
    t->x = x;
    const float p = training ? m->dropout : 0.f;
    const float *in = x;
    v2t_status s = V2T_OK;
    for (int i = 0; i < m->depth; i++) {
        int last = i == m->depth - 1 && m->depth > 1;
        const int64_t iw = m->in_w[i], ow = m->out_w[i];
        if (!last) {
            // z = in W^T + b; a = dropout(silu(z)); out = norm(a) + residual(in)
            V2T_CHECK(s, v2t_dense_forward(ex, in, iw, B, iw, params + m->w_off[i], params + m->b_off[i], ow, t->z[i], ow),
                      done);
            float *a = t->scratch;
            v2t_silu(t->z[i], a, B * ow);
            v2t_dropout(a, p, rng, t->mask[i], a, B * ow);
            norm_forward(m, params, stats, training, i, a, B, ow, t->out[i], t->h[i], t->inv[i]);
        } else {
            const int64_t h = m->d_hidden;
            // z = in W1^T + b1; h = dropout(z); s = silu(h); out = s W2^T + b2 + residual(in)
            V2T_CHECK(s, v2t_dense_forward(ex, in, iw, B, iw, params + m->w_off[i], params + m->b_off[i], h, t->z[i], h),
                      done);
            v2t_dropout(t->z[i], p, rng, t->mask[i], t->h[i], B * h);
            v2t_silu(t->h[i], t->s_last, B * h);
            V2T_CHECK(s, v2t_dense_forward(ex, t->s_last, h, B, h, params + m->w2_off, params + m->b2_off, ow,
                                           t->out[i], ow),
                      done);
        }
        v2t_residual_add(in, iw, t->out[i], ow, B);
        in = t->out[i];
    }
    // y = norm_out(x) + x
    norm_forward(m, params, stats, training, m->depth, in, B, m->d_out, y, t->hat_out, t->inv[m->depth]);
    for (int64_t k = 0; k < B * m->d_out; k++)
        y[k] += in[k];
done:
    if (!tape)
        v2t_resmlp_tape_release(&local);
    return s;
}

v2t_status v2t_resmlp_backward(const v2t_resmlp *m, const float *params, v2t_exec *ex, v2t_resmlp_tape *t,
                               const float *dy, float *grads, float *dx)
{
    const int64_t B = t->B, mw = max_width(m);
    float *gcur = t->scratch, *gin = t->scratch + B * mw, *tmp = t->scratch + 2 * B * mw;
    // output: x_pre -> norm_out(x_pre) + x_pre
    norm_backward(m, params, m->depth, dy, t->hat_out, t->inv[m->depth], B, m->d_out, gcur, grads);
    for (int64_t k = 0; k < B * m->d_out; k++)
        gcur[k] += dy[k];
    for (int i = m->depth - 1; i >= 0; i--) {
        int last = i == m->depth - 1 && m->depth > 1;
        const int64_t iw = m->in_w[i], ow = m->out_w[i];
        const float *in = i == 0 ? t->x : t->out[i - 1];
        memset(gin, 0, (size_t)(B * iw) * sizeof(float));
        v2t_residual_backward(gcur, ow, gin, iw, B);
        if (!last) {
            norm_backward(m, params, i, gcur, t->h[i], t->inv[i], B, ow, tmp, grads);
            for (int64_t k = 0; k < B * ow; k++)
                tmp[k] *= t->mask[i][k];
            v2t_silu_backward(t->z[i], tmp, tmp, B * ow);
            V2T_TRY(v2t_dense_backward(ex, in, iw, tmp, B, iw, ow, params + m->w_off[i], grads + m->w_off[i],
                                       grads + m->b_off[i], 1, (i > 0 || dx) ? gin : NULL, 1));
        } else {
            const int64_t h = m->d_hidden;
            V2T_TRY(v2t_dense_backward(ex, t->s_last, h, gcur, B, h, ow, params + m->w2_off, grads + m->w2_off,
                                       grads + m->b2_off, 1, tmp, 0));
            v2t_silu_backward(t->h[i], tmp, tmp, B * h);
            for (int64_t k = 0; k < B * h; k++)
                tmp[k] *= t->mask[i][k];
            V2T_TRY(v2t_dense_backward(ex, in, iw, tmp, B, iw, h, params + m->w_off[i], grads + m->w_off[i],
                                       grads + m->b_off[i], 1, (i > 0 || dx) ? gin : NULL, 1));
        }
        float *sw = gcur;
        gcur = gin;
        gin = sw;
    }
    if (dx)
        memcpy(dx, gcur, (size_t)(B * m->d_in) * sizeof(float));
    return V2T_OK;
}
