/* MLP aligner forward, backward and training epochs. See mlp.h. */
#include "mlp.h"

#include <string.h>

#include "../core/interrupt.h"

/* Rows per block of an inference forward pass. */
#define FORWARD_BLOCK 4096

v2t_status v2t_mlp_shape_init(v2t_mlp_shape *s, int n_layers, const int64_t *widths)
{
    memset(s, 0, sizeof *s);
    if (n_layers < 1 || n_layers > V2T_MLP_MAX_LAYERS)
        return v2t_fail(V2T_ERR_VALUE, "MLP: expected 1 to %d dense layers, got %d", V2T_MLP_MAX_LAYERS, n_layers);
    s->n_layers = n_layers;
    int64_t off = 0;
    for (int l = 0; l <= n_layers; l++) {
        if (widths[l] <= 0)
            return v2t_fail(V2T_ERR_VALUE, "MLP: layer widths must be positive, width %d is %lld", l,
                            (long long)widths[l]);
        s->widths[l] = widths[l];
    }
    for (int l = 0; l < n_layers; l++) {
        s->w_off[l] = off;
        off += widths[l + 1] * widths[l];
        s->b_off[l] = off;
        off += widths[l + 1];
    }
    s->n_params = off;
    return V2T_OK;
}

static int64_t max_width(const v2t_mlp_shape *s)
{
    int64_t m = 0;
    for (int l = 0; l <= s->n_layers; l++)
        m = s->widths[l] > m ? s->widths[l] : m;
    return m;
}

/* wt: every layer's weight transposed to [in, out] at its offset (into ex's bf16 mirror of wt
 * in bf16 training, see train_ops.h). */
static void transpose_weights(const v2t_mlp_shape *s, const float *params, float *wt, v2t_exec *ex)
{
    for (int l = 0; l < s->n_layers; l++)
        v2t_transpose_weight(ex, params + s->w_off[l], s->widths[l + 1], s->widths[l], wt + s->w_off[l]);
}

/* Forward of B rows with every layer's output kept in `acts` (layer l at acts_off(l) * B).
 * wt: the transposed weights (see transpose_weights). */
static v2t_status forward_keep(const v2t_mlp_shape *s, const float *params, const float *wt, v2t_exec *ex,
                               const float *x, int64_t B, float *acts, float *y_out)
{
    const float *in = x;
    float *a = acts;
    for (int l = 0; l < s->n_layers; l++) {
        int64_t wi = s->widths[l], wo = s->widths[l + 1];
        int last = l == s->n_layers - 1;
        float *out = last && y_out ? y_out : a;
        V2T_TRY(v2t_dense_forward_t(ex, in, wi, B, wi, wt + s->w_off[l], params + s->b_off[l], wo, out, wo));
        if (!last)
            v2t_relu_inplace(out, B * wo);
        in = out;
        a += B * wo;
    }
    return V2T_OK;
}

v2t_status v2t_mlp_forward(const v2t_mlp_shape *s, const float *params, v2t_exec *ex, const float *x, int64_t n,
                           float *y)
{
    int64_t block = n < FORWARD_BLOCK ? n : FORWARD_BLOCK, total = 0;
    for (int l = 1; l <= s->n_layers; l++)
        total += s->widths[l];
    if (n == 0)
        return V2T_OK;
    float *acts = NULL, *wt = NULL;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)block * (size_t)total, sizeof(float), &bytes));
    V2T_TRY(v2t_alloc((void **)&acts, bytes, "MLP activations"));
    v2t_status st = v2t_alloc((void **)&wt, (size_t)s->n_params * sizeof(float), "MLP transposed weights");
    if (st == V2T_OK)
        transpose_weights(s, params, wt, NULL);
    const int64_t d_in = s->widths[0], d_out = s->widths[s->n_layers];
    for (int64_t r0 = 0; r0 < n && st == V2T_OK; r0 += block) {
        int64_t rows = n - r0 < block ? n - r0 : block;
        st = forward_keep(s, params, wt, ex, x + r0 * d_in, rows, acts, y + r0 * d_out);
    }
    v2t_free(acts);
    v2t_free(wt);
    return st;
}

void v2t_mlp_trainer_release(v2t_mlp_trainer *t)
{
    v2t_free(t->params);
    v2t_free(t->params_t);
    v2t_free(t->grads);
    v2t_free(t->adam_m);
    v2t_free(t->adam_v);
    v2t_free(t->acts);
    v2t_free(t->delta[0]);
    v2t_free(t->delta[1]);
    v2t_free(t->xb);
    v2t_free(t->yb);
    v2t_free(t->order);
    v2t_exec_release(&t->ex);
    memset(t, 0, sizeof *t);
}

v2t_status v2t_mlp_trainer_set_bf16(v2t_mlp_trainer *t, int on)
{
    const float *w[] = {t->params}, *wt[] = {t->params_t};
    const int64_t n[] = {t->shape.n_params};
    return v2t_train_set_bf16(&t->ex, on, "MLP trainer", 1, w, wt, n);
}

v2t_status v2t_mlp_trainer_init(v2t_mlp_trainer *t, int n_layers, const int64_t *widths, const float *params)
{
    memset(t, 0, sizeof *t);
    V2T_TRY(v2t_mlp_shape_init(&t->shape, n_layers, widths));
    size_t bytes = (size_t)t->shape.n_params * sizeof(float);
    v2t_status s = V2T_OK;
    V2T_CHECK(s, v2t_exec_init(&t->ex), fail);
    V2T_CHECK(s, v2t_alloc((void **)&t->params, bytes, "MLP parameters"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->params_t, bytes, "MLP transposed weights"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->grads, bytes, "MLP gradients"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->adam_m, bytes, "Adam first moments"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->adam_v, bytes, "Adam second moments"), fail);
    memcpy(t->params, params, bytes);
    transpose_weights(&t->shape, t->params, t->params_t, NULL);
    return V2T_OK;
fail:
    v2t_mlp_trainer_release(t);
    return s;
}

static v2t_status reserve_rows(v2t_mlp_trainer *t, int64_t rows)
{
    if (rows <= t->cap_rows)
        return V2T_OK;
    const v2t_mlp_shape *s = &t->shape;
    int64_t total = 0, mw = max_width(s);
    for (int l = 1; l <= s->n_layers; l++)
        total += s->widths[l];
    v2t_free(t->acts);
    v2t_free(t->delta[0]);
    v2t_free(t->delta[1]);
    v2t_free(t->xb);
    v2t_free(t->yb);
    t->acts = t->delta[0] = t->delta[1] = t->xb = t->yb = NULL;
    t->cap_rows = 0;
    const size_t r = (size_t)rows, f = sizeof(float);
    V2T_TRY(v2t_alloc((void **)&t->acts, r * (size_t)total * f, "MLP activations"));
    V2T_TRY(v2t_alloc((void **)&t->delta[0], r * (size_t)mw * f, "MLP gradients"));
    V2T_TRY(v2t_alloc((void **)&t->delta[1], r * (size_t)mw * f, "MLP gradients"));
    V2T_TRY(v2t_alloc((void **)&t->xb, r * (size_t)s->widths[0] * f, "MLP batch inputs"));
    V2T_TRY(v2t_alloc((void **)&t->yb, r * (size_t)s->widths[s->n_layers] * f, "MLP batch targets"));
    t->cap_rows = rows;
    return V2T_OK;
}

v2t_status v2t_mlp_loss_grad(v2t_mlp_trainer *t, const float *x, const float *y, int64_t B, double *loss)
{
    const v2t_mlp_shape *s = &t->shape;
    const int L = s->n_layers;
    const int64_t d_out = s->widths[L];
    *loss = 0.0;
    if (B <= 0)
        return v2t_fail(V2T_ERR_VALUE, "MLP: a batch needs at least one row, got %lld", (long long)B);
    V2T_TRY(reserve_rows(t, B));
    V2T_TRY(forward_keep(s, t->params, t->params_t, &t->ex, x, B, t->acts, NULL));
    /* Layer l's output starts at acts + off[l] * B. */
    int64_t off[V2T_MLP_MAX_LAYERS + 1];
    off[0] = 0;
    for (int l = 1; l <= L; l++)
        off[l] = off[l - 1] + s->widths[l];
    const float *yhat = t->acts + off[L - 1] * B;
    /* d loss / d y_hat = 2 (y_hat - y) / (B d_out); the squares are summed in fixed chunks added
     * in chunk order, so the loss does not depend on the thread count (chunks are dealt out one at
     * a time, so the ordered additions never wait for a whole share of another thread) */
    enum { CHUNK = 1 << 14 };
    float *g = t->delta[0];
    const double scale = 2.0 / ((double)B * (double)d_out);
    const int64_t n = B * d_out, chunks = (n + CHUNK - 1) / CHUNK;
    double sq = 0.0;
#pragma omp parallel for schedule(static, 1) ordered if (n >= V2T_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i1 = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double part = 0.0;
        for (int64_t i = c * CHUNK; i < i1; i++) {
            double diff = (double)yhat[i] - (double)y[i];
            part += diff * diff;
            g[i] = (float)(scale * diff);
        }
#pragma omp ordered
        sq += part;
    }
    *loss = sq / ((double)B * (double)d_out);
    for (int l = L - 1; l >= 0; l--) {
        const int64_t wi = s->widths[l], wo = s->widths[l + 1];
        const float *in = l == 0 ? x : t->acts + off[l - 1] * B;
        float *gin = l == 0 ? NULL : t->delta[(L - l) & 1];
        V2T_TRY(v2t_dense_backward(&t->ex, in, wi, g, B, wi, wo, t->params + s->w_off[l], t->grads + s->w_off[l],
                                   t->grads + s->b_off[l], 0, gin, 0));
        if (gin) {
            v2t_relu_backward_inplace(in, gin, B * wi);
            g = gin;
        }
    }
    return V2T_OK;
}

v2t_status v2t_mlp_train_epoch(v2t_mlp_trainer *t, const float *x, const float *y, int64_t n, int64_t batch,
                               const v2t_adam_config *cfg, uint64_t seed, double *mean_loss)
{
    const v2t_mlp_shape *s = &t->shape;
    const int64_t d_in = s->widths[0], d_out = s->widths[s->n_layers];
    *mean_loss = 0.0;
    if (n <= 0 || batch <= 0)
        return v2t_fail(V2T_ERR_VALUE, "MLP: an epoch needs rows and a positive batch size, got %lld rows, batch %lld",
                        (long long)n, (long long)batch);
    if (batch > n)
        batch = n;
    V2T_TRY(reserve_rows(t, batch));
    if (t->order_len < n) {
        v2t_free(t->order);
        t->order = NULL;
        t->order_len = 0;
        V2T_TRY(v2t_alloc((void **)&t->order, (size_t)n * sizeof(int64_t), "row order"));
        t->order_len = n;
    }
    for (int64_t i = 0; i < n; i++)
        t->order[i] = i;
    v2t_rng rng;
    v2t_rng_seed(&rng, seed);
    v2t_rng_shuffle(&rng, t->order, n);
    double total = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += batch) {
        int64_t rows = n - b0 < batch ? n - b0 : batch;
        // the gather reads scattered rows (latency-bound): both threads fetch at once
#pragma omp parallel for schedule(static) if (rows * (d_in + d_out) >= V2T_PAR_MIN)
        for (int64_t i = 0; i < rows; i++) {
            int64_t r = t->order[b0 + i];
            memcpy(t->xb + i * d_in, x + r * d_in, (size_t)d_in * sizeof(float));
            memcpy(t->yb + i * d_out, y + r * d_out, (size_t)d_out * sizeof(float));
        }
        double loss;
        V2T_TRY(v2t_mlp_loss_grad(t, t->xb, t->yb, rows, &loss));
        t->step++;
        v2t_adamw_step(cfg, t->step, t->params, t->grads, t->adam_m, t->adam_v, s->n_params);
        transpose_weights(s, t->params, t->params_t, &t->ex);
        v2t_gemm_mirror_refresh(&t->ex, t->params, s->n_params);
        total += loss * (double)rows;
        V2T_TRY(v2t_poll_interrupt());
    }
    *mean_loss = total / (double)n;
    return V2T_OK;
}
