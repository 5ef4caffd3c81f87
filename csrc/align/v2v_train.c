/* vec2vec training: one step (discriminators, generator losses, backward, Adam) and epochs.
 * See vec2vec.h for the recipe. */
#include "vec2vec.h"

#include <math.h>
#include <string.h>

#include "../core/interrupt.h"
#include "v2v_loss.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Tapes of one step: pass 1 (a1_1 .. b2_2), cycle pass (a1_2 .. b2_3) and the forward-only calls. */
enum {
    TP_A2_1 = 0, TP_T_1, TP_B2_1, TP_B1_1, /* y: A2, T, B2 (reconstruction), B1 (translation) */
    TP_A1_1, TP_T_2, TP_B2_2, TP_B1_2,     /* x: A1, T, B2 (translation), B1 (reconstruction) */
    TP_A1_2, TP_T_3, TP_B2_3,              /* F21(y): A1, T, B2 (back to Y) */
    TP_A2_2, TP_T_4, TP_B1_3,              /* F12(x): A2, T, B1 (back to X) */
    TP_SPARE                               /* forward-only cycle reconstructions */
};

/* Unit outputs of a step, each [B, d1] or [B, d2] with its norms [B] and gradient. */
enum { O_REC_Y = 0, O_T_YX, O_T_XY, O_REC_X, O_BACK_Y, O_BACK_X, O_N };

typedef struct step_buffers {
    float *zy, *ly, *zx, *lx;           /* pass 1 latents [B, dl] */
    float *zcx, *lcx, *zcy, *lcy;       /* cycle pass latents [B, dl] */
    float *out[O_N], *norm[O_N], *gout[O_N];
    float *junk;                        /* [B, max(d1, d2)] unused cycle reconstructions */
    float *gtmp;                        /* [B, max(d1, d2)] */
    float *gly, *glx, *gl, *gz;         /* [B, dl] */
    float *dcat, *score, *gscore, *gfake; /* discriminator input [2B, dmax], [2B], [2B], [B, dmax] */
    float *vsp;                         /* [3 B^2] */
} step_buffers;

static const int out_space[O_N] = {2, 1, 2, 1, 2, 1}; /* 1: X (d1), 2: Y (d2) */

static v2t_status layout(v2t_v2v_trainer *t, int64_t B, step_buffers *sb)
{
    const v2t_v2v_config *c = &t->m.cfg;
    const int64_t d1 = c->d1, d2 = c->d2, dl = c->d_latent, dm = max64(d1, d2), dd = max64(dm, dl);
    const int64_t total = 8 * B * dl + O_N * (2 * B * dm + B) + 2 * B * dm + 4 * B * dl +
                          2 * B * dd + 4 * B + B * dd + 3 * B * B + 64 * 40;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)total, sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&t->work, bytes, "vec2vec step buffers"));
    float *p = t->work.data;
#define TAKE(ptr, n)                                                                                          \
    do {                                                                                                      \
        (ptr) = p;                                                                                            \
        p += ((n) + 15) / 16 * 16;                                                                            \
    } while (0)
    TAKE(sb->zy, B * dl);
    TAKE(sb->ly, B * dl);
    TAKE(sb->zx, B * dl);
    TAKE(sb->lx, B * dl);
    TAKE(sb->zcx, B * dl);
    TAKE(sb->lcx, B * dl);
    TAKE(sb->zcy, B * dl);
    TAKE(sb->lcy, B * dl);
    for (int o = 0; o < O_N; o++) {
        const int64_t d = out_space[o] == 1 ? d1 : d2;
        TAKE(sb->out[o], B * d);
        TAKE(sb->gout[o], B * d);
        TAKE(sb->norm[o], B);
    }
    TAKE(sb->junk, B * dm);
    TAKE(sb->gtmp, B * dm);
    TAKE(sb->gly, B * dl);
    TAKE(sb->glx, B * dl);
    TAKE(sb->gl, B * dl);
    TAKE(sb->gz, B * dl);
    TAKE(sb->dcat, 2 * B * dd);
    TAKE(sb->score, 2 * B);
    TAKE(sb->gscore, 2 * B);
    TAKE(sb->gfake, B * dd);
    TAKE(sb->vsp, 3 * B * B);
#undef TAKE
    return V2T_OK;
}

void v2t_v2v_trainer_release(v2t_v2v_trainer *t)
{
    v2t_free(t->params);
    v2t_free(t->params_t);
    v2t_free(t->dparams_t);
    v2t_free(t->grads);
    v2t_free(t->adam_m);
    v2t_free(t->adam_v);
    v2t_free(t->stats);
    v2t_free(t->dparams);
    v2t_free(t->dgrads);
    v2t_free(t->dadam_m);
    v2t_free(t->dadam_v);
    v2t_free(t->order_x);
    v2t_free(t->order_y);
    for (int k = 0; k < V2T_V2V_NTAPES; k++)
        v2t_resmlp_tape_release(&t->tape[k]);
    v2t_disc_tape_release(&t->dtape);
    v2t_buffer_release(&t->work);
    v2t_exec_release(&t->ex);
    memset(t, 0, sizeof *t);
}

static void refresh_transposed(v2t_v2v_trainer *t)
{
    const v2t_v2v_model *m = &t->m;
    for (int k = 0; k < V2T_V2V_NMOD; k++)
        v2t_resmlp_transpose_weights(&m->mod[k], t->params + m->p_off[k], t->params_t + m->p_off[k], &t->ex);
    v2t_gemm_mirror_refresh(&t->ex, t->params, m->n_params);
}

v2t_status v2t_v2v_trainer_set_bf16(v2t_v2v_trainer *t, int on)
{
    const float *w[] = {t->params, t->dparams}, *wt[] = {t->params_t, t->dparams_t};
    const int64_t n[] = {t->m.n_params, t->m.n_disc_params};
    return v2t_train_set_bf16(&t->ex, on, "vec2vec trainer", 2, w, wt, n);
}

v2t_status v2t_v2v_trainer_init(v2t_v2v_trainer *t, const v2t_v2v_config *c, uint64_t seed, const float *params,
                                const float *stats, const float *disc_params)
{
    memset(t, 0, sizeof *t);
    V2T_TRY(v2t_v2v_model_init(&t->m, c));
    const v2t_v2v_model *m = &t->m;
    const size_t f = sizeof(float), np = (size_t)m->n_params * f, ns = (size_t)(m->n_stats ? m->n_stats : 1) * f,
                 nd = (size_t)m->n_disc_params * f;
    v2t_status s = V2T_OK;
    V2T_CHECK(s, v2t_exec_init(&t->ex), fail);
    V2T_CHECK(s, v2t_alloc((void **)&t->params, np, "vec2vec parameters"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->params_t, np, "vec2vec transposed weights"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->dparams_t, nd, "discriminator transposed weights"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->grads, np, "vec2vec gradients"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->adam_m, np, "vec2vec Adam moments"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->adam_v, np, "vec2vec Adam moments"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->stats, ns, "vec2vec running statistics"), fail);
    V2T_CHECK(s, v2t_alloc((void **)&t->dparams, nd, "discriminator parameters"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->dgrads, nd, "discriminator gradients"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->dadam_m, nd, "discriminator Adam moments"), fail);
    V2T_CHECK(s, v2t_calloc((void **)&t->dadam_v, nd, "discriminator Adam moments"), fail);
    v2t_v2v_default_init(m, seed, t->params, t->stats, t->dparams);
    if (params)
        memcpy(t->params, params, np);
    if (stats && m->n_stats)
        memcpy(t->stats, stats, (size_t)m->n_stats * f);
    if (disc_params)
        memcpy(t->dparams, disc_params, nd);
    refresh_transposed(t);
    for (int k = 0; k < V2T_V2V_NDISC; k++)
        v2t_disc_transpose_weights(&m->disc[k], t->dparams + m->d_off[k], t->dparams_t + m->d_off[k], NULL);
    /* dropout masks draw from a stream of their own, derived from the seed */
    v2t_rng_seed(&t->rng, seed ^ 0x5deece66dULL);
    return V2T_OK;
fail:
    v2t_v2v_trainer_release(t);
    return s;
}

/* ---- pieces of a step ---- */

static v2t_status mod_fwd(v2t_v2v_trainer *t, int k, const float *x, int64_t B, int tape, float *y)
{
    const v2t_v2v_model *m = &t->m;
    return v2t_resmlp_forward(&m->mod[k], t->params + m->p_off[k], t->params_t + m->p_off[k], t->stats + m->s_off[k],
                              1, &t->rng, &t->ex, x, B, &t->tape[tape], y);
}

static v2t_status mod_bwd(v2t_v2v_trainer *t, int k, int tape, const float *dy, float *dx)
{
    const v2t_v2v_model *m = &t->m;
    return v2t_resmlp_backward(&m->mod[k], t->params + m->p_off[k], &t->ex, &t->tape[tape], dy,
                               t->grads + m->p_off[k], dx);
}

/* One latent through an output adapter, then L2 rows. */
static v2t_status project(v2t_v2v_trainer *t, int k, const float *l, int64_t B, int tape, float *out, float *norms)
{
    V2T_TRY(mod_fwd(t, k, l, B, tape, out));
    v2t_l2_rows(out, B, t->m.mod[k].d_out, out, norms);
    return V2T_OK;
}

static void add_to(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* Update learning rate at update number k (from 1): linear warm-up, then constant. */
static float warm_lr(float lr, int64_t k, int64_t warmup)
{
    if (warmup <= 0 || k - 1 >= warmup)
        return lr;
    return (float)((double)lr * (double)(k - 1) / (double)warmup);
}

/* Discriminator k: one update on (real, fake), then the generator term on fake with the updated
 * discriminator; gfake [B, d] receives weight * d gen / d fake. */
static v2t_status gan_step(v2t_v2v_trainer *t, int k, const float *real, const float *fake, int64_t B, float weight,
                           int update, step_buffers *sb, double *disc_loss, double *gen_loss)
{
    const v2t_v2v_model *m = &t->m;
    const v2t_disc *d = &m->disc[k];
    const int64_t dim = d->d_in;
    float *p = t->dparams + m->d_off[k], *pt = t->dparams_t + m->d_off[k], *g = t->dgrads + m->d_off[k];
    // real and fake rows share one pass (LayerNorm is per row)
    memcpy(sb->dcat, real, (size_t)(B * dim) * sizeof(float));
    memcpy(sb->dcat + B * dim, fake, (size_t)(B * dim) * sizeof(float));
    V2T_TRY(v2t_disc_forward(d, p, pt, &t->ex, sb->dcat, 2 * B, &t->dtape, sb->score));
    *disc_loss = v2t_lsgan_disc_loss(sb->score, sb->score + B, B, sb->gscore, sb->gscore + B);
    memset(g, 0, (size_t)d->n_params * sizeof(float));
    V2T_TRY(v2t_disc_backward(d, p, &t->ex, &t->dtape, sb->gscore, g, NULL));
    v2t_clip_grad_norm(g, d->n_params, m->cfg.max_grad_norm);
    if (update) {
        const v2t_v2v_config *c = &m->cfg;
        v2t_adam_config ac = {warm_lr(c->lr_disc, t->disc_step + 1, c->warmup), c->beta1, c->beta2, c->eps_disc, 0.f};
        v2t_adamw_step(&ac, t->disc_step + 1, p, g, t->dadam_m + m->d_off[k], t->dadam_v + m->d_off[k], d->n_params);
        v2t_disc_transpose_weights(d, p, pt, &t->ex);
        v2t_gemm_mirror_refresh(&t->ex, p, d->n_params);
    }
    // generator term with the (updated) discriminator: gradient to the fake rows only
    V2T_TRY(v2t_disc_forward(d, p, pt, &t->ex, fake, B, &t->dtape, sb->score));
    *gen_loss = v2t_lsgan_gen_loss(sb->score, B, weight, sb->gscore);
    return v2t_disc_backward(d, p, &t->ex, &t->dtape, sb->gscore, NULL, sb->gfake);
}

v2t_status v2t_v2v_step(v2t_v2v_trainer *t, const float *x, const float *y, int64_t B, int update_disc,
                        int update_gen, double *metrics)
{
    const v2t_v2v_model *m = &t->m;
    const v2t_v2v_config *c = &m->cfg;
    const int64_t d1 = c->d1, d2 = c->d2, dl = c->d_latent;
    for (int i = 0; i < V2T_V2V_NMETRICS; i++)
        metrics[i] = 0.0;
    if (B < 2)
        return v2t_fail(V2T_ERR_VALUE, "vec2vec: a training batch needs at least 2 rows (BatchNorm), got %lld",
                        (long long)B);
    step_buffers sb;
    V2T_TRY(layout(t, B, &sb));
    const int cycle = c->w_cc > 0.f || c->w_cc_vsp > 0.f;

    /* 1. forward, pass 1 */
    V2T_TRY(mod_fwd(t, V2T_V2V_A2, y, B, TP_A2_1, sb.zy));
    V2T_TRY(mod_fwd(t, V2T_V2V_T, sb.zy, B, TP_T_1, sb.ly));
    V2T_TRY(project(t, V2T_V2V_B2, sb.ly, B, TP_B2_1, sb.out[O_REC_Y], sb.norm[O_REC_Y]));
    V2T_TRY(project(t, V2T_V2V_B1, sb.ly, B, TP_B1_1, sb.out[O_T_YX], sb.norm[O_T_YX]));
    V2T_TRY(mod_fwd(t, V2T_V2V_A1, x, B, TP_A1_1, sb.zx));
    V2T_TRY(mod_fwd(t, V2T_V2V_T, sb.zx, B, TP_T_2, sb.lx));
    V2T_TRY(project(t, V2T_V2V_B2, sb.lx, B, TP_B2_2, sb.out[O_T_XY], sb.norm[O_T_XY]));
    V2T_TRY(project(t, V2T_V2V_B1, sb.lx, B, TP_B1_2, sb.out[O_REC_X], sb.norm[O_REC_X]));
    for (int o = 0; o < O_N; o++)
        memset(sb.gout[o], 0, (size_t)(B * (out_space[o] == 1 ? d1 : d2)) * sizeof(float));
    memset(sb.glx, 0, (size_t)(B * dl) * sizeof(float));

    /* 2. discriminators, and the generator's adversarial gradients */
    if (c->w_gan > 0.f) {
        V2T_TRY(gan_step(t, V2T_V2V_D1, x, sb.out[O_T_YX], B, c->w_gan, update_disc, &sb,
                         &metrics[V2T_V2V_M_DISC_X], &metrics[V2T_V2V_M_GEN_X]));
        add_to(sb.gout[O_T_YX], sb.gfake, B * d1);
        V2T_TRY(gan_step(t, V2T_V2V_D2, y, sb.out[O_T_XY], B, c->w_gan, update_disc, &sb,
                         &metrics[V2T_V2V_M_DISC_Y], &metrics[V2T_V2V_M_GEN_Y]));
        add_to(sb.gout[O_T_XY], sb.gfake, B * d2);
    }
    if (c->w_latent_gan > 0.f) {
        V2T_TRY(gan_step(t, V2T_V2V_DL, sb.ly, sb.lx, B, c->w_latent_gan, update_disc, &sb,
                         &metrics[V2T_V2V_M_DISC_LATENT], &metrics[V2T_V2V_M_GEN_LATENT]));
        add_to(sb.glx, sb.gfake, B * dl);
    }
    if (update_disc && (c->w_gan > 0.f || c->w_latent_gan > 0.f))
        t->disc_step++;

    /* 3. cycle pass on the detached translations */
    if (cycle) {
        V2T_TRY(mod_fwd(t, V2T_V2V_A1, sb.out[O_T_YX], B, TP_A1_2, sb.zcx));
        V2T_TRY(mod_fwd(t, V2T_V2V_T, sb.zcx, B, TP_T_3, sb.lcx));
        if (c->norm == V2T_NORM_BATCH) /* only moves B1's running statistics, as the published pass does */
            V2T_TRY(mod_fwd(t, V2T_V2V_B1, sb.lcx, B, TP_SPARE, sb.junk));
        V2T_TRY(project(t, V2T_V2V_B2, sb.lcx, B, TP_B2_3, sb.out[O_BACK_Y], sb.norm[O_BACK_Y]));
        V2T_TRY(mod_fwd(t, V2T_V2V_A2, sb.out[O_T_XY], B, TP_A2_2, sb.zcy));
        V2T_TRY(mod_fwd(t, V2T_V2V_T, sb.zcy, B, TP_T_4, sb.lcy));
        V2T_TRY(project(t, V2T_V2V_B1, sb.lcy, B, TP_B1_3, sb.out[O_BACK_X], sb.norm[O_BACK_X]));
        if (c->norm == V2T_NORM_BATCH)
            V2T_TRY(mod_fwd(t, V2T_V2V_B2, sb.lcy, B, TP_SPARE, sb.junk));
    }

    /* 4. generator losses and their gradients at the unit outputs */
    const float hr = 0.5f * c->w_rec, hv = 0.5f * c->w_vsp, hc = 0.5f * c->w_cc, hcv = 0.5f * c->w_cc_vsp;
    double v;
    metrics[V2T_V2V_M_REC] = 0.5 * (v2t_cos_loss(y, sb.out[O_REC_Y], B, d2, hr, hr > 0.f ? sb.gout[O_REC_Y] : NULL) +
                                    v2t_cos_loss(x, sb.out[O_REC_X], B, d1, hr, hr > 0.f ? sb.gout[O_REC_X] : NULL));
    V2T_TRY(v2t_vsp_loss(&t->ex, y, sb.out[O_REC_Y], B, d2, hv, sb.vsp, &v, hv > 0.f ? sb.gout[O_REC_Y] : NULL));
    metrics[V2T_V2V_M_VSP] = 0.5 * v;
    V2T_TRY(v2t_vsp_loss(&t->ex, x, sb.out[O_REC_X], B, d1, hv, sb.vsp, &v, hv > 0.f ? sb.gout[O_REC_X] : NULL));
    metrics[V2T_V2V_M_VSP] += 0.5 * v;
    if (cycle) {
        metrics[V2T_V2V_M_CC] =
            0.5 * (v2t_cos_loss(y, sb.out[O_BACK_Y], B, d2, hc, hc > 0.f ? sb.gout[O_BACK_Y] : NULL) +
                   v2t_cos_loss(x, sb.out[O_BACK_X], B, d1, hc, hc > 0.f ? sb.gout[O_BACK_X] : NULL));
        V2T_TRY(v2t_vsp_loss(&t->ex, y, sb.out[O_BACK_Y], B, d2, hcv, sb.vsp, &v,
                             hcv > 0.f ? sb.gout[O_BACK_Y] : NULL));
        metrics[V2T_V2V_M_CC_VSP] = 0.5 * v;
        V2T_TRY(v2t_vsp_loss(&t->ex, x, sb.out[O_BACK_X], B, d1, hcv, sb.vsp, &v,
                             hcv > 0.f ? sb.gout[O_BACK_X] : NULL));
        metrics[V2T_V2V_M_CC_VSP] += 0.5 * v;
    }
    metrics[V2T_V2V_M_LOSS] = c->w_rec * metrics[V2T_V2V_M_REC] + c->w_vsp * metrics[V2T_V2V_M_VSP] +
                              c->w_cc * metrics[V2T_V2V_M_CC] + c->w_cc_vsp * metrics[V2T_V2V_M_CC_VSP] +
                              c->w_gan * (metrics[V2T_V2V_M_GEN_X] + metrics[V2T_V2V_M_GEN_Y]) +
                              c->w_latent_gan * metrics[V2T_V2V_M_GEN_LATENT];

    /* 5. backward: unit outputs -> output adapters -> backbone -> input adapters */
    memset(t->grads, 0, (size_t)m->n_params * sizeof(float));
#define OUT_BACK(o, k, tape, dl_dst)                                                                          \
    do {                                                                                                      \
        v2t_l2_rows_backward(sb.out[o], sb.gout[o], sb.norm[o], B, m->mod[k].d_out, sb.gtmp);                \
        V2T_TRY(mod_bwd(t, k, tape, sb.gtmp, (dl_dst)));                                                     \
    } while (0)
    if (cycle) {
        OUT_BACK(O_BACK_Y, V2T_V2V_B2, TP_B2_3, sb.gl);
        V2T_TRY(mod_bwd(t, V2T_V2V_T, TP_T_3, sb.gl, sb.gz));
        V2T_TRY(mod_bwd(t, V2T_V2V_A1, TP_A1_2, sb.gz, NULL));
        OUT_BACK(O_BACK_X, V2T_V2V_B1, TP_B1_3, sb.gl);
        V2T_TRY(mod_bwd(t, V2T_V2V_T, TP_T_4, sb.gl, sb.gz));
        V2T_TRY(mod_bwd(t, V2T_V2V_A2, TP_A2_2, sb.gz, NULL));
    }
    OUT_BACK(O_REC_Y, V2T_V2V_B2, TP_B2_1, sb.gly);
    OUT_BACK(O_T_YX, V2T_V2V_B1, TP_B1_1, sb.gl);
    add_to(sb.gly, sb.gl, B * dl);
    V2T_TRY(mod_bwd(t, V2T_V2V_T, TP_T_1, sb.gly, sb.gz));
    V2T_TRY(mod_bwd(t, V2T_V2V_A2, TP_A2_1, sb.gz, NULL));
    OUT_BACK(O_T_XY, V2T_V2V_B2, TP_B2_2, sb.gl);
    add_to(sb.glx, sb.gl, B * dl);
    OUT_BACK(O_REC_X, V2T_V2V_B1, TP_B1_2, sb.gl);
    add_to(sb.glx, sb.gl, B * dl);
    V2T_TRY(mod_bwd(t, V2T_V2V_T, TP_T_2, sb.glx, sb.gz));
    V2T_TRY(mod_bwd(t, V2T_V2V_A1, TP_A1_1, sb.gz, NULL));
#undef OUT_BACK

    /* 6. clip (the norm before clipping is the reported one) and update */
    metrics[V2T_V2V_M_GRAD_NORM] = v2t_clip_grad_norm(t->grads, m->n_params, update_gen ? c->max_grad_norm : 0.0);
    if (update_gen) {
        t->step++;
        v2t_adam_config ac = {warm_lr(c->lr_gen, t->step, c->warmup), c->beta1, c->beta2, c->eps_gen, 0.f};
        v2t_adamw_step(&ac, t->step, t->params, t->grads, t->adam_m, t->adam_v, m->n_params);
        refresh_transposed(t);
    }
    return V2T_OK;
}

static v2t_status reserve_order(int64_t **order, int64_t *len, int64_t n)
{
    if (*len >= n)
        return V2T_OK;
    v2t_free(*order);
    *order = NULL;
    *len = 0;
    V2T_TRY(v2t_alloc((void **)order, (size_t)n * sizeof(int64_t), "row order"));
    *len = n;
    return V2T_OK;
}

v2t_status v2t_v2v_train_epoch(v2t_v2v_trainer *t, const float *X, int64_t nx, const float *Y, int64_t ny,
                               int64_t batch, uint64_t seed, int64_t max_steps, double *mean_metrics,
                               int64_t *steps_done)
{
    const int64_t d1 = t->m.cfg.d1, d2 = t->m.cfg.d2;
    *steps_done = 0;
    for (int i = 0; i < V2T_V2V_NMETRICS; i++)
        mean_metrics[i] = 0.0;
    if (batch < 2)
        return v2t_fail(V2T_ERR_VALUE, "vec2vec: batch_size must be at least 2, got %lld", (long long)batch);
    const int64_t steps_all = (nx < ny ? nx : ny) / batch;
    if (steps_all < 1)
        return v2t_fail(V2T_ERR_VALUE, "vec2vec: an epoch needs at least one full batch of %lld rows in each space, "
                                       "got %lld rows of X and %lld rows of Y", (long long)batch, (long long)nx,
                        (long long)ny);
    const int64_t steps = max_steps > 0 && max_steps < steps_all ? max_steps : steps_all;
    V2T_TRY(reserve_order(&t->order_x, &t->order_x_len, nx));
    V2T_TRY(reserve_order(&t->order_y, &t->order_y_len, ny));
    for (int64_t i = 0; i < nx; i++)
        t->order_x[i] = i;
    for (int64_t i = 0; i < ny; i++)
        t->order_y[i] = i;
    v2t_rng rng;
    v2t_rng_seed(&rng, seed);
    v2t_rng_shuffle(&rng, t->order_x, nx);
    v2t_rng_shuffle(&rng, t->order_y, ny);
    float *xb = NULL, *yb = NULL;
    v2t_status s = V2T_OK;
    V2T_CHECK(s, v2t_alloc((void **)&xb, (size_t)(batch * d1) * sizeof(float), "vec2vec batch"), done);
    V2T_CHECK(s, v2t_alloc((void **)&yb, (size_t)(batch * d2) * sizeof(float), "vec2vec batch"), done);
    double metrics[V2T_V2V_NMETRICS];
    for (int64_t st = 0; st < steps; st++) {
#pragma omp parallel for schedule(static) if (batch * (d1 + d2) >= V2T_PAR_MIN)
        for (int64_t i = 0; i < batch; i++) {
            memcpy(xb + i * d1, X + t->order_x[st * batch + i] * d1, (size_t)d1 * sizeof(float));
            memcpy(yb + i * d2, Y + t->order_y[st * batch + i] * d2, (size_t)d2 * sizeof(float));
        }
        V2T_CHECK(s, v2t_v2v_step(t, xb, yb, batch, 1, 1, metrics), done);
        for (int i = 0; i < V2T_V2V_NMETRICS; i++)
            mean_metrics[i] += metrics[i];
        (*steps_done)++;
        V2T_CHECK(s, v2t_poll_interrupt(), done);
    }
    for (int i = 0; i < V2T_V2V_NMETRICS; i++)
        mean_metrics[i] /= (double)*steps_done;
done:
    v2t_free(xb);
    v2t_free(yb);
    return s;
}
