/* float32 -> bfloat16 packing. See convert.h. */
#include "convert.h"

#include <string.h>

#include "../core/bf16.h"
#include "transpose.h"

/* The rounding of core/bf16.h written branch-free, so the loops below vectorise. */
static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

enum { TILE = V2T_TRANSPOSE_TILE, PAR_MIN = 1 << 16 /* elements below which one thread does it all */ };

void v2t_pack_bf16(const float *src, int64_t lds, int trans, int64_t rows, int64_t cols, uint16_t *dst)
{
    if (rows <= 0 || cols <= 0)
        return;
    const int par = rows * cols >= PAR_MIN;
    if (!trans) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t r = 0; r < rows; r++) {
            const float *s = src + r * lds;
            uint16_t *d = dst + r * cols;
            for (int64_t c = 0; c < cols; c++)
                d[c] = to_bf16(s[c]);
        }
        return;
    }
    /* transposed: each TILE x TILE block of src goes through registers into a local tile
     * (ops/transpose.h), whose rows are then rounded like the plain case */
    const int64_t row_tiles = (rows + TILE - 1) / TILE;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t rt = 0; rt < row_tiles; rt++) {
        float tile[TILE * TILE];
        const int64_t r0 = rt * TILE, nr = rows - r0 < TILE ? rows - r0 : TILE;
        for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
            const int64_t nc = cols - c0 < TILE ? cols - c0 : TILE;
            v2t_transpose_tile(src + c0 * lds + r0, lds, nc, nr, tile, TILE);
            for (int64_t r = 0; r < nr; r++) {
                const float *s = tile + r * TILE;
                uint16_t *d = dst + (r0 + r) * cols + c0;
                for (int64_t c = 0; c < nc; c++)
                    d[c] = to_bf16(s[c]);
            }
        }
    }
}

void v2t_pack_bf16_ref(const float *src, int64_t lds, int trans, int64_t rows, int64_t cols, uint16_t *dst)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            dst[r * cols + c] = v2t_f32_to_bf16(trans ? src[c * lds + r] : src[r * lds + c]);
}
