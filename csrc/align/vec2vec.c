/* vec2vec model: configuration, shapes, initialisation and inference. See vec2vec.h;
 * training is in v2v_train.c. */
#include "vec2vec.h"

#include <string.h>

/* Rows per block of an inference pass. */
#define TRANSLATE_BLOCK 1024

void v2t_v2v_config_default(v2t_v2v_config *c, int64_t d1, int64_t d2)
{
    *c = (v2t_v2v_config){
        .d1 = d1, .d2 = d2, .d_latent = 1024, .d_hidden = 1024, .d_backbone = 1024,
        .adapter_depth = 3, .backbone_depth = 4, .disc_depth = 5, .disc_width = 1024,
        .norm = V2T_NORM_BATCH, .dropout = 0.1f,
        .w_rec = 1.f, .w_vsp = 1.f, .w_cc = 10.f, .w_cc_vsp = 10.f, .w_gan = 1.f, .w_latent_gan = 1.f,
        .lr_gen = 2e-5f, .lr_disc = 1e-5f, .beta1 = 0.5f, .beta2 = 0.999f, .eps_gen = 1e-8f, .eps_disc = 6.25e-10f,
        .warmup = 2000, .max_grad_norm = 1000.f,
    };
}

v2t_status v2t_v2v_model_init(v2t_v2v_model *m, const v2t_v2v_config *c)
{
    memset(m, 0, sizeof *m);
    if (c->warmup < 0)
        return v2t_fail(V2T_ERR_VALUE, "vec2vec: warmup must be >= 0, got %lld", (long long)c->warmup);
    if (!(c->lr_gen >= 0.f) || !(c->lr_disc >= 0.f) || !(c->beta1 >= 0.f && c->beta1 < 1.f) ||
        !(c->beta2 >= 0.f && c->beta2 < 1.f) || !(c->eps_gen > 0.f) || !(c->eps_disc > 0.f))
        return v2t_fail(V2T_ERR_VALUE,
                        "vec2vec: optimiser settings out of range (lr_gen %g, lr_disc %g, betas %g, %g, eps %g, %g)",
                        c->lr_gen, c->lr_disc, c->beta1, c->beta2, c->eps_gen, c->eps_disc);
    const float w[6] = {c->w_rec, c->w_vsp, c->w_cc, c->w_cc_vsp, c->w_gan, c->w_latent_gan};
    for (int i = 0; i < 6; i++)
        if (!(w[i] >= 0.f))
            return v2t_fail(V2T_ERR_VALUE, "vec2vec: loss weights must be >= 0, weight %d is %g", i,
                            w[i]);
    m->cfg = *c;
    const int64_t dims[2] = {c->d1, c->d2};
    for (int s = 0; s < 2; s++) {
        V2T_TRY(v2t_resmlp_init(&m->mod[V2T_V2V_A1 + s], c->adapter_depth, dims[s], c->d_hidden, c->d_latent, c->norm,
                                c->dropout));
        V2T_TRY(v2t_resmlp_init(&m->mod[V2T_V2V_B1 + s], c->adapter_depth, c->d_latent, c->d_hidden, dims[s], c->norm,
                                c->dropout));
    }
    V2T_TRY(v2t_resmlp_init(&m->mod[V2T_V2V_T], c->backbone_depth, c->d_latent, c->d_backbone, c->d_latent, c->norm,
                            c->dropout));
    for (int k = 0; k < V2T_V2V_NMOD; k++) {
        m->p_off[k] = m->n_params;
        m->s_off[k] = m->n_stats;
        m->n_params += m->mod[k].n_params;
        m->n_stats += m->mod[k].n_stats;
    }
    const int64_t ddims[3] = {c->d1, c->d2, c->d_latent};
    for (int k = 0; k < V2T_V2V_NDISC; k++) {
        V2T_TRY(v2t_disc_init(&m->disc[k], c->disc_depth, ddims[k], c->disc_width));
        m->d_off[k] = m->n_disc_params;
        m->n_disc_params += m->disc[k].n_params;
    }
    return V2T_OK;
}

void v2t_v2v_default_init(const v2t_v2v_model *m, uint64_t seed, float *params, float *stats, float *disc_params)
{
    v2t_rng rng;
    v2t_rng_seed(&rng, seed);
    for (int k = 0; k < V2T_V2V_NMOD; k++)
        v2t_resmlp_default_init(&m->mod[k], &rng, params + m->p_off[k], stats + m->s_off[k]);
    for (int k = 0; k < V2T_V2V_NDISC; k++)
        v2t_disc_default_init(&m->disc[k], &rng, disc_params + m->d_off[k]);
}

v2t_status v2t_v2v_translate(const v2t_v2v_model *m, const float *params, const float *stats, int direction,
                             v2t_exec *ex, const float *x, int64_t n, float *y)
{
    const int a = direction ? V2T_V2V_A2 : V2T_V2V_A1, b = direction ? V2T_V2V_B1 : V2T_V2V_B2;
    const int64_t d_in = m->mod[a].d_in, d_out = m->mod[b].d_out, dl = m->cfg.d_latent;
    if (n <= 0)
        return V2T_OK;
    const int64_t block = n < TRANSLATE_BLOCK ? n : TRANSLATE_BLOCK;
    float *z = NULL, *l = NULL, *norms = NULL, *wt = NULL;
    v2t_resmlp_tape tape = {0};
    v2t_status s = V2T_OK;
    V2T_CHECK(s, v2t_alloc((void **)&z, (size_t)(block * dl) * sizeof(float), "vec2vec latents"), done);
    V2T_CHECK(s, v2t_alloc((void **)&l, (size_t)(block * dl) * sizeof(float), "vec2vec latents"), done);
    V2T_CHECK(s, v2t_alloc((void **)&norms, (size_t)block * sizeof(float), "vec2vec norms"), done);
    V2T_CHECK(s, v2t_calloc((void **)&wt, (size_t)m->n_params * sizeof(float), "vec2vec transposed weights"), done);
    const int used[3] = {a, V2T_V2V_T, b};
    for (int k = 0; k < 3; k++)
        v2t_resmlp_transpose_weights(&m->mod[used[k]], params + m->p_off[used[k]], wt + m->p_off[used[k]], NULL);
    float *st = (float *)stats; /* inference only reads the running statistics */
    for (int64_t r0 = 0; r0 < n; r0 += block) {
        const int64_t rows = n - r0 < block ? n - r0 : block;
        const float *in = x + r0 * d_in;
        float *outs[3] = {z, l, y + r0 * d_out};
        for (int k = 0; k < 3; k++) {
            const int64_t po = m->p_off[used[k]];
            V2T_CHECK(s, v2t_resmlp_forward(&m->mod[used[k]], params + po, wt + po, st + m->s_off[used[k]], 0, NULL,
                                            ex, in, rows, &tape, outs[k]), done);
            in = outs[k];
        }
        float *out = outs[2];
        v2t_l2_rows(out, rows, d_out, out, norms);
    }
done:
    v2t_resmlp_tape_release(&tape);
    v2t_free(z);
    v2t_free(l);
    v2t_free(norms);
    v2t_free(wt);
    return s;
}
