/* float32 transpose. See transpose.h. */
#include "transpose.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

enum { T = V2T_TRANSPOSE_TILE, PAR_MIN = 1 << 15 /* elements below which one thread does it all */ };

#ifdef __AVX2__
/* o[j * ldo + i] = a[i * lda + j] for an 8 x 8 block: pairs of rows interleaved, then pairs of
 * pairs, then the 128-bit halves swapped into place. */
static inline void block8(const float *a, int64_t lda, float *o, int64_t ldo)
{
    __m256 r[8], t[8], s[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(a + i * lda);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);     /* a0 b0 c0 d0 | a4 b4 c4 d4 */
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE); /* column 1 | 5 */
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(o + j * ldo, _mm256_permute2f128_ps(s[j], s[j + 4], 0x20));
        _mm256_storeu_ps(o + (j + 4) * ldo, _mm256_permute2f128_ps(s[j], s[j + 4], 0x31));
    }
}
#endif

void v2t_transpose_tile(const float *a, int64_t lda, int64_t rows, int64_t cols, float *out, int64_t ldo)
{
#ifdef __AVX2__
    if (rows == T && cols == T) {
        for (int i = 0; i < T; i += 8)
            for (int j = 0; j < T; j += 8)
                block8(a + i * lda + j, lda, out + j * ldo + i, ldo);
        return;
    }
#endif
    for (int64_t j = 0; j < cols; j++)
        for (int64_t i = 0; i < rows; i++)
            out[j * ldo + i] = a[i * lda + j];
}

void v2t_transpose(const float *a, int64_t rows, int64_t cols, float *out)
{
    const int64_t row_tiles = (rows + T - 1) / T;
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t it = 0; it < row_tiles; it++) {
        const int64_t i0 = it * T, ni = rows - i0 < T ? rows - i0 : T;
        for (int64_t j0 = 0; j0 < cols; j0 += T) {
            const int64_t nj = cols - j0 < T ? cols - j0 : T;
            v2t_transpose_tile(a + i0 * cols + j0, cols, ni, nj, out + j0 * rows + i0, rows);
        }
    }
}

void v2t_transpose_ref(const float *a, int64_t rows, int64_t cols, float *out)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            out[j * rows + i] = a[i * cols + j];
}
