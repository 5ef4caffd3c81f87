/* The vec2vec losses with their gradients, and gradient clipping.
 *
 *   cosine loss   c(E, P) = 1 - mean_i cos(e_i, p_i)                 (reconstruction, cycle)
 *   VSP           V(E, P) = mean_ij |e_i.e_j - p_i.p_j| + mean_ij |e_i.e_j - p_i.e_j|
 *                 (vector space preservation; E are the true embeddings, P their images, both
 *                 unit rows in vec2vec; d|u|/du = sign(u), 0 at 0, as PyTorch)
 *   LSGAN         discriminator: (mean D(real)^2 + mean (D(fake) - 1)^2) / 2   (real -> 0, fake -> 1)
 *                 generator:     mean D(fake)^2 / 2
 *
 * Gradients are scaled by `weight` and accumulated (+=) into the caller's arrays, so weighted
 * loss terms sharing an output add up in place.
 */
#ifndef V2T_ALIGN_V2V_LOSS_H
#define V2T_ALIGN_V2V_LOSS_H

#include <stdint.h>

#include "../ops/gemm.h"

// e, p: [B, D] -> returns c(E, P); gp: [B, D] += weight * dc/dp (NULL: skipped)
double v2t_cos_loss(const float *e, const float *p, int64_t B, int64_t D, float weight, float *gp);

// e, p: [B, D]; scratch: [3 * B * B] -> *loss = V(E, P); gp: [B, D] += weight * dV/dp (NULL: skipped)
v2t_status v2t_vsp_loss(v2t_exec *ex, const float *e, const float *p, int64_t B, int64_t D, float weight,
                        float *scratch, double *loss, float *gp);

// d_real, d_fake: [B] discriminator scores -> discriminator loss; g_real, g_fake: [B] written
double v2t_lsgan_disc_loss(const float *d_real, const float *d_fake, int64_t B, float *g_real, float *g_fake);
// d_fake: [B] -> generator loss; g_fake: [B] written, times weight
double v2t_lsgan_gen_loss(const float *d_fake, int64_t B, float weight, float *g_fake);

// g: [n]. Scales g by min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_ does
// (max_norm <= 0: no clipping); returns the norm before clipping.
double v2t_clip_grad_norm(float *g, int64_t n, double max_norm);

#endif
