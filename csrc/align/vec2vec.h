/* vec2vec (Jha, Zhang, Shmatikov, Morris 2025): unsupervised translation between two embedding
 * spaces X (width d1) and Y (width d2), trained in C following the published code.
 *
 * Networks (residual MLPs, resmlp.h): input adapters A1: X -> latent, A2: Y -> latent, a shared
 * backbone T: latent -> latent, output adapters B1: latent -> X, B2: latent -> Y. Translations
 * and reconstructions are L2-normalised:
 *   F12(x) = L2(B2(T(A1(x))))   (X -> Y),  F21(y) = L2(B1(T(A2(y))))   (Y -> X),
 *   R1(x)  = L2(B1(T(A1(x)))),             R2(y)  = L2(B2(T(A2(y)))).
 * Discriminators (disc.h): D1 on X, D2 on Y, DL on the latent.
 *
 * One training step on unpaired unit batches x [B, d1], y [B, d2] (B rows each):
 *  1. forward (order as the published code, so BatchNorm running statistics match):
 *     y then x through adapters and backbone, each latent through B2 then B1;
 *  2. each discriminator takes one Adam step on the least-squares GAN loss with real -> 0,
 *     fake -> 1 (D1: x vs F21(y); D2: y vs F12(x); DL: T(A2(y)) vs T(A1(x))), then scores its
 *     fakes again for the generator term mean(D(fake)^2) / 2;
 *  3. cycle pass on the detached translations: F21(y) through A1, T, B1 (unused, running
 *     statistics only), B2; F12(x) through A2, T, B1, B2 (unused);
 *  4. generator loss
 *       w_rec      * (c(x, R1(x)) + c(y, R2(y))) / 2                     reconstruction
 *     + w_vsp      * (V(x, R1(x)) + V(y, R2(y))) / 2                     VSP
 *     + w_cc       * (c(x, F21(F12(x))) + c(y, F12(F21(y)))) / 2         cycle
 *     + w_cc_vsp   * (V(x, F21(F12(x))) + V(y, F12(F21(y)))) / 2         cycle VSP
 *     + w_gan      * (gen_D1 + gen_D2) + w_latent_gan * gen_DL
 *     with c and V from v2v_loss.h; gradients clipped to max_grad_norm (over all generator
 *     parameters; each discriminator separately); Adam with betas (beta1, beta2);
 *  5. learning rates follow a linear warm-up: update k (from 1) uses lr * min(1, (k-1)/warmup),
 *     as torch's LambdaLR does with the published lambda.
 *
 * Parameters: one flat generator array [A1 | A2 | T | B1 | B2] (each in resmlp.h's layout),
 * one flat statistics array in the same module order, and one flat discriminator array
 * [D1 | D2 | DL].
 */
#ifndef V2T_ALIGN_VEC2VEC_H
#define V2T_ALIGN_VEC2VEC_H

#include <stdint.h>

#include "disc.h"
#include "resmlp.h"

enum { V2T_V2V_A1 = 0, V2T_V2V_A2, V2T_V2V_T, V2T_V2V_B1, V2T_V2V_B2, V2T_V2V_NMOD };
enum { V2T_V2V_D1 = 0, V2T_V2V_D2, V2T_V2V_DL, V2T_V2V_NDISC };

/* Per-step metrics (generator losses are the unweighted terms). */
enum {
    V2T_V2V_M_LOSS = 0,    /* weighted generator loss */
    V2T_V2V_M_REC,         /* reconstruction 1 - cos */
    V2T_V2V_M_VSP,
    V2T_V2V_M_CC,          /* cycle 1 - cos */
    V2T_V2V_M_CC_VSP,
    V2T_V2V_M_GEN_X,       /* generator term of D1 (X space) */
    V2T_V2V_M_GEN_Y,       /* generator term of D2 (Y space) */
    V2T_V2V_M_GEN_LATENT,  /* generator term of DL */
    V2T_V2V_M_DISC_X,      /* discriminator losses before their update */
    V2T_V2V_M_DISC_Y,
    V2T_V2V_M_DISC_LATENT,
    V2T_V2V_M_GRAD_NORM,   /* generator gradient norm before clipping */
    V2T_V2V_NMETRICS
};

typedef struct v2t_v2v_config {
    int64_t d1, d2;           /* widths of the two embedding spaces */
    int64_t d_latent;         /* adapters' output / backbone width (published: 1024) */
    int64_t d_hidden;         /* adapters' hidden width (1024) */
    int64_t d_backbone;       /* backbone hidden width (1024) */
    int adapter_depth;        /* 3 */
    int backbone_depth;       /* 4 */
    int disc_depth;           /* 5 */
    int64_t disc_width;       /* 1024 */
    v2t_norm_kind norm;       /* BatchNorm */
    float dropout;            /* 0.1 */
    float w_rec, w_vsp, w_cc, w_cc_vsp, w_gan, w_latent_gan; /* 1, 1, 10, 10, 1, 1 */
    float lr_gen, lr_disc;    /* 2e-5, 1e-5 */
    float beta1, beta2;       /* 0.5, 0.999 */
    float eps_gen, eps_disc;  /* 1e-8, 6.25e-10 */
    int64_t warmup;           /* 2000 updates */
    float max_grad_norm;      /* 1000; <= 0: no clipping */
} v2t_v2v_config;

/* The published defaults for spaces of widths d1, d2. */
void v2t_v2v_config_default(v2t_v2v_config *c, int64_t d1, int64_t d2);

typedef struct v2t_v2v_model {
    v2t_v2v_config cfg;
    v2t_resmlp mod[V2T_V2V_NMOD];
    int64_t p_off[V2T_V2V_NMOD], s_off[V2T_V2V_NMOD];
    int64_t n_params, n_stats;
    v2t_disc disc[V2T_V2V_NDISC];
    int64_t d_off[V2T_V2V_NDISC];
    int64_t n_disc_params;
} v2t_v2v_model;

/* Shapes and offsets from the config (checked). */
v2t_status v2t_v2v_model_init(v2t_v2v_model *m, const v2t_v2v_config *c);

/* Fresh parameters from `seed`: params [n_params], stats [n_stats], disc_params [n_disc_params]. */
void v2t_v2v_default_init(const v2t_v2v_model *m, uint64_t seed, float *params, float *stats, float *disc_params);

// Inference (running statistics, no dropout). direction 0: x [n, d1] -> y [n, d2] (F12);
// direction 1: x [n, d2] -> y [n, d1] (F21). Rows go through in blocks.
v2t_status v2t_v2v_translate(const v2t_v2v_model *m, const float *params, const float *stats, int direction,
                             v2t_exec *ex, const float *x, int64_t n, float *y);

#define V2T_V2V_NTAPES 15

typedef struct v2t_v2v_trainer {
    v2t_v2v_model m;
    float *params, *grads, *adam_m, *adam_v; /* [n_params] */
    float *params_t;                         /* [n_params] Linear weights transposed (plain-layout products);
                                                in bf16 training only its mirror is kept current */
    float *stats;                            /* [n_stats] */
    float *dparams, *dgrads, *dadam_m, *dadam_v; /* [n_disc_params] */
    float *dparams_t;                            /* [n_disc_params] transposed weights (as params_t) */
    int64_t step;                            /* generator updates done */
    int64_t disc_step;                       /* discriminator updates done */
    v2t_rng rng;                             /* dropout masks */
    v2t_exec ex;
    /* per-batch workspace, sized for cap_rows rows */
    int64_t cap_rows;
    v2t_buffer work;
    v2t_resmlp_tape tape[V2T_V2V_NTAPES];
    v2t_disc_tape dtape;
    int64_t *order_x, *order_y;
    int64_t order_x_len, order_y_len;
} v2t_v2v_trainer;

// params, stats, disc_params: initial values (copied); NULL: fresh ones from seed
v2t_status v2t_v2v_trainer_init(v2t_v2v_trainer *t, const v2t_v2v_config *c, uint64_t seed, const float *params,
                                const float *stats, const float *disc_params);
void v2t_v2v_trainer_release(v2t_v2v_trainer *t);

/* on: matmuls in bf16 (ops/gemm.h), the weights of all networks read from bf16 mirrors that
 * every update refreshes. Once on, it stays on (turning it off is an error). */
v2t_status v2t_v2v_trainer_set_bf16(v2t_v2v_trainer *t, int on);

// x: [B, d1], y: [B, d2] unpaired batches -> metrics: [V2T_V2V_NMETRICS]. update_disc / update_gen
// choose whether the optimisers step; t->grads and t->dgrads keep this step's gradients (each
// clipped to max_grad_norm; the generator's only when update_gen).
v2t_status v2t_v2v_step(v2t_v2v_trainer *t, const float *x, const float *y, int64_t B, int update_disc,
                        int update_gen, double *metrics);

// X: [nx, d1], Y: [ny, d2]: one pass with both orders shuffled by `seed`, min(nx, ny) / batch steps
// (a short last batch is dropped), at most max_steps (<= 0: no limit). mean_metrics: per-step means;
// *steps_done: steps taken.
v2t_status v2t_v2v_train_epoch(v2t_v2v_trainer *t, const float *X, int64_t nx, const float *Y, int64_t ny,
                               int64_t batch, uint64_t seed, int64_t max_steps, double *mean_metrics,
                               int64_t *steps_done);

#endif
