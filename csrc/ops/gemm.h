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

/* Naive reference with double accumulation: same contract. */
void v2t_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

#endif
