/* General matrix product on oneDNN, for activations-by-activations products (Gram matrices,
 * gradients, similarity matrices) where neither operand is a prepacked weight:
 *
 *   C = alpha * op(A) op(B) + beta * C,   op(X) = X or X^T
 *
 * A, B, C are row-major with leading dimensions (row strides) lda, ldb, ldc; a transposed
 * operand is read through swapped strides, never copied. M, N, K and the strides are runtime
 * values, so one primitive serves every shape of its class (transposes, beta); primitives are
 * kept in a process-wide cache. alpha is passed at run time. The scratchpad comes from the
 * caller's v2t_exec, so threads may run products at once, each with its own v2t_exec.
 *
 * Mixed precision: when ex->gemm_bf16 is set, op(A) and op(B) are rounded to bf16 (nearest
 * even) into dense copies held by the v2t_exec and the product runs bf16 x bf16 with f32
 * accumulation and an f32 C (AVX512-BF16 / AMX: about twice the f32 rate). The copies are
 * written untransposed, so such products run as the plain case. alpha and beta stay f32.
 * It is an error on a CPU without bf16 matmul support (v2t_gemm_bf16_supported says).
 *
 * Weight mirrors: a trainer multiplies by the same weights many times between two updates.
 * It registers each float32 region that holds weights with v2t_gemm_mirror_add, which keeps a
 * bf16 copy of the region element for element, and calls v2t_gemm_mirror_refresh on the part
 * an update changed. A bf16 product whose B operand lies inside a registered region reads the
 * mirror (same offsets, strides and transpose) instead of packing B again. The operand values
 * are the same either way; for a dense untransposed B (the only kind the trainers pass) the
 * layout is too, so the product is bit-identical to packing it (a transposed B may run another
 * oneDNN kernel). A stale mirror is the caller's bug: the trainers' tests compare a trained
 * trainer against a fresh one built from its parameters.
 */
#ifndef V2T_OPS_GEMM_H
#define V2T_OPS_GEMM_H

#include <stdint.h>

#include "linear.h"

// op(A): [M, K], op(B): [K, N], C: [M, N] row-major.
// trans_a = 0: A is [M, K] with row stride lda >= K; trans_a = 1: A is [K, M], lda >= M.
// trans_b = 0: B is [K, N] with row stride ldb >= N; trans_b = 1: B is [N, K], ldb >= K.
// C is [M, N] with row stride ldc >= N. With beta == 0, C is written without being read.
v2t_status v2t_gemm(v2t_exec *ex, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Registers [base, base + n) (at most V2T_EXEC_MAX_MIRRORS regions per v2t_exec) and fills its
 * mirror. The region must stay allocated while ex uses it; v2t_exec_release frees the mirrors. */
v2t_status v2t_gemm_mirror_add(v2t_exec *ex, const float *base, int64_t n);

/* The mirror of [p, p + n) when one registered region holds all of it (writable: a trainer may
 * fill it directly, see align/train_ops.h v2t_transpose_weight); NULL otherwise. */
uint16_t *v2t_gemm_mirror_of(v2t_exec *ex, const float *p, int64_t n);

/* Re-rounds [p, p + n) into the mirror of the region that holds it; nothing when none does. */
void v2t_gemm_mirror_refresh(v2t_exec *ex, const float *p, int64_t n);

/* 1 when oneDNN runs bf16 matmuls natively on this CPU (AVX512-BF16 or AMX). */
int v2t_gemm_bf16_supported(void);

/* Naive reference with double accumulation: same contract. */
void v2t_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
