/* vec2vec losses. See v2v_loss.h. */
#include "v2v_loss.h"

#include "train_ops.h"

#include <math.h>
#include <string.h>

#define COS_EPS 1e-8 /* norms are clamped to at least this, as torch.nn.functional.cosine_similarity */

double v2t_cos_loss(const float *e, const float *p, int64_t B, int64_t D, float weight, float *gp)
{
    double total = 0.0;
    for (int64_t i = 0; i < B; i++) {
        const float *er = e + i * D, *pr = p + i * D;
        double ee = 0.0, pp = 0.0, ep = 0.0;
        for (int64_t j = 0; j < D; j++) {
            ee += (double)er[j] * er[j];
            pp += (double)pr[j] * pr[j];
            ep += (double)er[j] * pr[j];
        }
        const double ne = fmax(sqrt(ee), COS_EPS), np_ = fmax(sqrt(pp), COS_EPS), c = ep / (ne * np_);
        total += c;
        if (gp) {
            // d(-c/B)/dp = -(e / (|e||p|) - c p / |p|^2) / B
            const double k = -(double)weight / (double)B, ke = k / (ne * np_), kp = -k * c / (np_ * np_);
            float *g = gp + i * D;
            for (int64_t j = 0; j < D; j++)
                g[j] += (float)(ke * er[j] + kp * pr[j]);
        }
    }
    return 1.0 - total / (double)B;
}

static inline float sign_of(float v) { return (float)((v > 0.f) - (v < 0.f)); }

v2t_status v2t_vsp_loss(v2t_exec *ex, const float *e, const float *p, int64_t B, int64_t D, float weight,
                        float *scratch, double *loss, float *gp)
{
    float *G = scratch, *S1 = scratch + B * B, *S2 = scratch + 2 * B * B;
    // G = E E^T, S1 = P P^T, S2 = P E^T
    V2T_TRY(v2t_gemm(ex, 0, 1, B, B, D, 1.f, e, D, e, D, 0.f, G, B));
    V2T_TRY(v2t_gemm(ex, 0, 1, B, B, D, 1.f, p, D, p, D, 0.f, S1, B));
    V2T_TRY(v2t_gemm(ex, 0, 1, B, B, D, 1.f, p, D, e, D, 0.f, S2, B));
    double l1 = 0.0, l2 = 0.0;
    for (int64_t k = 0; k < B * B; k++) {
        const float a = S1[k] - G[k], b = S2[k] - G[k];
        l1 += fabsf(a);
        l2 += fabsf(b);
        S1[k] = sign_of(a);
        S2[k] = sign_of(b);
    }
    const double n2 = (double)B * (double)B;
    *loss = (l1 + l2) / n2;
    if (!gp)
        return V2T_OK;
    // dV/dP = ((S1 + S1^T) P + S2 E) / B^2; G is free now and takes S1 + S1^T
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < B; j++)
            G[i * B + j] = S1[i * B + j] + S1[j * B + i];
    const float alpha = (float)((double)weight / n2);
    V2T_TRY(v2t_gemm(ex, 0, 0, B, D, B, alpha, G, B, p, D, 1.f, gp, D));
    V2T_TRY(v2t_gemm(ex, 0, 0, B, D, B, alpha, S2, B, e, D, 1.f, gp, D));
    return V2T_OK;
}

double v2t_lsgan_disc_loss(const float *d_real, const float *d_fake, int64_t B, float *g_real, float *g_fake)
{
    double lr = 0.0, lf = 0.0;
    for (int64_t i = 0; i < B; i++) {
        lr += (double)d_real[i] * d_real[i];
        lf += ((double)d_fake[i] - 1.0) * ((double)d_fake[i] - 1.0);
        g_real[i] = (float)(d_real[i] / (double)B);
        g_fake[i] = (float)((d_fake[i] - 1.0) / (double)B);
    }
    return 0.5 * (lr + lf) / (double)B;
}

double v2t_lsgan_gen_loss(const float *d_fake, int64_t B, float weight, float *g_fake)
{
    double l = 0.0;
    for (int64_t i = 0; i < B; i++) {
        l += (double)d_fake[i] * d_fake[i];
        g_fake[i] = (float)((double)weight * d_fake[i] / (double)B);
    }
    return 0.5 * l / (double)B;
}

double v2t_clip_grad_norm(float *g, int64_t n, double max_norm)
{
    // partial sums over fixed chunks, added in chunk order: the same result on any thread count.
    // Inside a chunk, LANES running sums (element i goes to sum i % LANES) keep the additions
    // independent, so they vectorise instead of waiting on one another. Chunks are dealt out one
    // at a time, so the ordered additions never wait for a whole share of another thread.
    enum { CHUNK = 1 << 16, LANES = 8 };
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
    double ss = 0.0;
#pragma omp parallel for schedule(static, 1) ordered if (n >= V2T_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * CHUNK, i1 = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        double lane[LANES] = {0};
        int64_t i = i0;
        for (; i + LANES <= i1; i += LANES)
            for (int k = 0; k < LANES; k++)
                lane[k] += (double)g[i + k] * g[i + k];
        for (; i < i1; i++)
            lane[(i - i0) % LANES] += (double)g[i] * g[i];
        const double part = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
#pragma omp ordered
        ss += part;
    }
    const double norm = sqrt(ss);
    if (max_norm > 0.0) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0)
#pragma omp parallel for schedule(static) if (n >= V2T_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                g[i] = (float)(g[i] * coef);
    }
    return norm;
}
