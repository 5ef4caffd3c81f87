/* vec2text's embedding transform: the MLP that turns one embedding into a sequence of
 * pseudo-token vectors for a T5 encoder.
 *
 *   Linear(D, D) -> Dropout (identity at inference) -> GELU(erf) -> Linear(D, R * d_model)
 *
 * Keys `<prefix>0.weight` [D, D], `<prefix>0.bias` [D], `<prefix>3.weight` [R*d_model, D],
 * `<prefix>3.bias` [R*d_model] (PyTorch nn.Sequential indices). The GELU is fused into the
 * first matmul as a oneDNN post-op. Immutable after load.
 */
#ifndef V2T_VEC2TEXT_TRANSFORM_H
#define V2T_VEC2TEXT_TRANSFORM_H

#include <stdint.h>

#include "../core/status.h"
#include "../io/safetensors.h"
#include "../ops/linear.h"

typedef struct v2t_embed_transform {
    int64_t dim;      /* D: the embedder's dimension */
    int64_t out_dim;  /* R * d_model */
    v2t_linear first; /* [D, D] with GELU(erf) fused */
    v2t_linear last;  /* [R*d_model, D] */
} v2t_embed_transform;

/* The embedding dimension D of the transform stored under `prefix` (from `<prefix>0.weight`),
 * or V2T_ERR_MISSING naming the tensor. */
v2t_status v2t_embed_transform_dim(const v2t_st *st, const char *prefix, int64_t *dim);

/* Load and pack; out_dim = R * d_model is checked against the file. */
v2t_status v2t_embed_transform_load(const v2t_st *st, const char *prefix, int64_t dim, int64_t out_dim,
                                    v2t_embed_transform *out);
void v2t_embed_transform_release(v2t_embed_transform *t);

/* x: [B, D] (row stride ldx) -> y: [B, R*d_model] (row stride ldy); hidden: scratch [B, D]. */
v2t_status v2t_embed_transform_forward(const v2t_embed_transform *t, v2t_exec *ex, const float *x, int64_t ldx,
                                       int64_t B, float *hidden, float *y, int64_t ldy);

#endif
