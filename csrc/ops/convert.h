/* float32 -> bfloat16 packing for matmul operands.
 *
 * v2t_pack_bf16 rounds every element to nearest even (core/bf16.h's rule, NaN kept quiet) and
 * writes op(src) densely: the result is [rows, cols] row-major with row stride cols.
 *   trans = 0: src is [rows, cols] with row stride lds >= cols
 *   trans = 1: src is [cols, rows] with row stride lds >= rows (read through, written transposed)
 * The fast kernel splits the rows over the OpenMP team; v2t_pack_bf16_ref is the naive loop it
 * is tested against (bit-identical results).
 */
#ifndef V2T_OPS_CONVERT_H
#define V2T_OPS_CONVERT_H

#include <stdint.h>

void v2t_pack_bf16(const float *src, int64_t lds, int trans, int64_t rows, int64_t cols, uint16_t *dst);
void v2t_pack_bf16_ref(const float *src, int64_t lds, int trans, int64_t rows, int64_t cols, uint16_t *dst);

#endif
