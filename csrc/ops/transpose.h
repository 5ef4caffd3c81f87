/* Out-of-place float32 transpose: out [cols, rows] = a [rows, cols]^T, both dense row-major.
 *
 * The training code keeps each weight twice, as stored ([out, in], the order the checkpoints
 * and the PyTorch twin use) and transposed ([in, out], the operand layout oneDNN's matmul runs
 * fastest on), and re-transposes after every update. v2t_transpose walks 32 x 32 tiles split
 * over the OpenMP team and moves each 8 x 8 block through AVX2 registers (eight loads, eight
 * stores of a full row each); tiles cut by the matrix edge go element by element.
 * v2t_transpose_ref is the naive loop it is tested against (the results are bit-identical:
 * a transpose only moves values).
 *
 * v2t_transpose_tile copies one tile of at most 32 x 32 into a caller buffer with row stride
 * ldo; the bf16 packing kernel uses it to read transposed sources row by row.
 */
#ifndef V2T_OPS_TRANSPOSE_H
#define V2T_OPS_TRANSPOSE_H

#include <stdint.h>

enum { V2T_TRANSPOSE_TILE = 32 };

void v2t_transpose(const float *a, int64_t rows, int64_t cols, float *out);
void v2t_transpose_ref(const float *a, int64_t rows, int64_t cols, float *out);

/* out[j * ldo + i] = a[i * lda + j] for i < rows, j < cols (rows, cols <= V2T_TRANSPOSE_TILE) */
void v2t_transpose_tile(const float *a, int64_t lda, int64_t rows, int64_t cols, float *out, int64_t ldo);

#endif
