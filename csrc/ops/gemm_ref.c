/* Naive reference for gemm.c: triple loop with double accumulation. */
#include "gemm.h"

// op(A): [M, K], op(B): [K, N], C: [M, N] (row strides lda, ldb, ldc)
void v2t_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double a = trans_a ? A[k * lda + m] : A[m * lda + k];
                double b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
                acc += a * b;
            }
            double old = beta != 0.f ? (double)beta * C[m * ldc + n] : 0.0;
            C[m * ldc + n] = (float)(alpha * acc + old);
        }
    }
}
