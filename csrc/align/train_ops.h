/* Building blocks for training aligners in C: a seeded random generator, dense layers with
 * their backward pass (every product on oneDNN through ops/gemm.h), element-wise activations
 * and the AdamW update with PyTorch's semantics.
 *
 * Layouts follow PyTorch: a dense layer's weight is [out, in] row-major, y = x W^T + b.
 */
#ifndef V2T_ALIGN_TRAIN_OPS_H
#define V2T_ALIGN_TRAIN_OPS_H

#include <stdint.h>

#include "../ops/gemm.h"
#include "../ops/transpose.h" /* v2t_transpose, for the transposed weight copies */

/* Element-wise loops over at least this many elements split over the OpenMP team (oneDNN's
 * threads); smaller ones stay on the calling thread, where waking the team costs more than it
 * saves. Only loops whose elements are independent are split, so results do not depend on the
 * number of threads. */
#define V2T_PAR_MIN 32768

/* ---- random numbers (xoshiro256**, seeded through splitmix64) ---- */
typedef struct v2t_rng {
    uint64_t s[4];
} v2t_rng;

void v2t_rng_seed(v2t_rng *r, uint64_t seed);
static inline uint64_t v2t_rng_next(v2t_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3] << 45 | s[3] >> 19;
    return result;
}
/* Uniform in [0, 1) with 53 random bits. */
double v2t_rng_uniform(v2t_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t v2t_rng_below(v2t_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void v2t_rng_shuffle(v2t_rng *r, int64_t *idx, int64_t n);

/* ---- dense layers ---- */

// x: [B, in] (ldx), w: [out, in], b: [out] or NULL -> y: [B, out] (ldy) = x w^T + b
v2t_status v2t_dense_forward(v2t_exec *ex, const float *x, int64_t ldx, int64_t B, int64_t in, const float *w,
                             const float *b, int64_t out, float *y, int64_t ldy);

// x: [B, in] (ldx), wt: [in, out] (the weight stored transposed), b: [out] or NULL -> y: [B, out] (ldy)
// (a plain-layout product: oneDNN runs it faster than reading w [out, in] through swapped strides)
v2t_status v2t_dense_forward_t(v2t_exec *ex, const float *x, int64_t ldx, int64_t B, int64_t in, const float *wt,
                               const float *b, int64_t out, float *y, int64_t ldy);

// wt: [in, out] = w [out, in]^T, the copy forward products read. In bf16 training (ex given, with
// a mirror registered over wt, see ops/gemm.h) the copy goes straight into that mirror, rounded,
// and wt itself is left as it is: every product that reads wt then reads the mirror.
void v2t_transpose_weight(v2t_exec *ex, const float *w, int64_t out, int64_t in, float *wt);

// bf16 training for a trainer's execution state (who names the trainer in errors): products in
// bf16 (ops/gemm.h), and each of the count weight regions w[i] and its transposed copy wt[i]
// (n[i] floats each) mirrored. The forward products read wt, the input-gradient products w; from
// here on updates write the transposed copies into their mirrors only (v2t_transpose_weight).
// One-way: turning it off once on is an error (the fp32 transposes are no longer current).
v2t_status v2t_train_set_bf16(v2t_exec *ex, int on, const char *who, int count, const float *const w[],
                              const float *const wt[], const int64_t n[]);

// x: [B, in] (ldx), dy: [B, out], w: [out, in]
//   -> dw: [out, in] = dy^T x (+= when accumulate), db: [out] = sum_rows dy (+= when accumulate; NULL: skip),
//      dx: [B, in] = dy w (NULL: skip; += when accumulate_dx)
v2t_status v2t_dense_backward(v2t_exec *ex, const float *x, int64_t ldx, const float *dy, int64_t B, int64_t in,
                              int64_t out, const float *w, float *dw, float *db, int accumulate, float *dx,
                              int accumulate_dx);

// x: [n] -> in place max(x, 0)
void v2t_relu_inplace(float *x, int64_t n);
// a: [n] (the ReLU output), g: [n] -> g *= (a > 0)
void v2t_relu_backward_inplace(const float *a, float *g, int64_t n);

/* ---- AdamW (torch.optim.AdamW) ---- */
typedef struct v2t_adam_config {
    float lr, beta1, beta2, eps, weight_decay;
} v2t_adam_config;

// p, g, m, v: [n]; step >= 1 is the number of this update (bias correction)
//   p *= 1 - lr * weight_decay;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
void v2t_adamw_step(const v2t_adam_config *cfg, int64_t step, float *p, const float *g, float *m, float *v,
                    int64_t n);

#endif
