/* Linear layers: y = act(x W^T + b) [+ y], every matmul through oneDNN.
 *
 * Weights arrive in PyTorch's [out, in] row-major layout and are reordered once, at
 * init, into the layout oneDNN's matmul asks for (format_tag_any). The matmul primitive is
 * created with a runtime row count M, so one primitive serves every batch size; primitives
 * are shared between layers of the same shape through a process-wide cache.
 * A v2t_linear is immutable after init and may be used from many threads at once, each
 * with its own v2t_exec (stream + scratchpad).
 */
#ifndef V2T_OPS_LINEAR_H
#define V2T_OPS_LINEAR_H

#include <stdint.h>

#include "../core/alloc.h"
#include "../core/status.h"

typedef enum v2t_act {
    V2T_ACT_NONE = 0,
    V2T_ACT_RELU = 1,
    V2T_ACT_GELU_ERF = 2,  /* BERT "gelu" */
    V2T_ACT_GELU_TANH = 3, /* T5 v1.1 "gelu_new" */
} v2t_act;

/* Storage/compute dtype of the weights. Activations stay f32 at the interface. */
typedef enum v2t_dtype { V2T_DT_F32 = 0, V2T_DT_BF16 = 1 } v2t_dtype;

/* A bf16 copy of a float32 region that holds weights, element for element (see gemm.h). */
typedef struct v2t_bf16_mirror {
    const float *base;
    int64_t n;
    uint16_t *bf16; /* [n], owned */
} v2t_bf16_mirror;

enum { V2T_EXEC_MAX_MIRRORS = 4 };

/* Per-thread execution state: a oneDNN stream and a scratchpad. */
typedef struct v2t_exec {
    void *stream; /* dnnl_stream_t */
    v2t_buffer scratch;
    v2t_buffer stage_in, stage_out; /* contiguous copies of strided operands (see linear.c) */
    int gemm_bf16;                  /* 1: v2t_gemm rounds its operands to bf16 (see gemm.h); init sets 0 */
    v2t_buffer pack_a, pack_b;      /* v2t_gemm's bf16 copies of its operands */
    v2t_bf16_mirror mirror[V2T_EXEC_MAX_MIRRORS]; /* v2t_gemm_mirror_add's regions */
    int n_mirrors;
    double gemm_flops;              /* 2 M N K summed over this state's v2t_gemm calls (benchmarks read it) */
} v2t_exec;

v2t_status v2t_exec_init(v2t_exec *ex);
void v2t_exec_release(v2t_exec *ex);

typedef struct v2t_linear {
    int64_t in, out;
    v2t_act act;
    int accumulate;    /* 1: y += act(x W^T + b) (residual add fused as a sum post-op) */
    v2t_dtype dtype;
    void *prim;        /* the shared cache entry (primitive + packed layout), owned by the cache */
    void *weights;     /* packed weights, owned */
    float *bias;       /* [out] or NULL, owned */
    size_t scratch_bytes;
} v2t_linear;

/* w: [out, in] row-major; b: [out] or NULL. Copies and packs; w and b may be freed after. */
v2t_status v2t_linear_init(v2t_linear *l, const float *w, const float *b, int64_t in, int64_t out, v2t_act act,
                           int accumulate, v2t_dtype dtype);
void v2t_linear_release(v2t_linear *l);

/* x: [M, in] with row stride ldx; y: [M, out] with row stride ldy. M may be 0. */
v2t_status v2t_linear_forward(const v2t_linear *l, v2t_exec *ex, const float *x, int64_t ldx, int64_t M, float *y,
                              int64_t ldy);

/* Naive reference: same contract, w given as plain [out, in]. */
void v2t_linear_ref(const float *w, const float *b, int64_t in, int64_t out, v2t_act act, int accumulate,
                    const float *x, int64_t ldx, int64_t M, float *y, int64_t ldy);

/* Scalar activations shared by the reference kernels. */
float v2t_act_apply(v2t_act act, float v);

#endif
