/* Streamed column means and cross products. See moments.h. */
#include "moments.h"

#include <string.h>

#include "../core/interrupt.h"

/* Rows per streamed chunk: large enough for full-speed matmuls, small enough that a centred
 * [4096, d1 + d2] chunk (18 MiB at 768 + 384) stays within L3 for the products that read it. */
#define CHUNK_ROWS 4096
/* Gram products run as a staircase of 128-column blocks (stair_products). Against 8192-row
 * chunks and a two-block split, at 100k x (768 + 384): 638-674 ms against 739-765 ms
 * (min-median of 6), 13 % fewer FLOPs. */
#define GRAM_STAIR_COLS 128

/* Columns per pass of the means: 2048 double accumulators (16 KiB) stay in L1, and embedding
 * widths up to 2048 are read in one sequential sweep (two narrower sweeps over the same rows
 * took 70 ms against 11.5 ms for one at 100k x 768: strided partial-row reads stall). */
#define MEAN_BLOCK 2048

// x: [n, d] (ldx) -> mean: [d]
void v2t_col_mean(const float *x, int64_t ldx, int64_t n, int64_t d, float *mean)
{
    double acc[MEAN_BLOCK];
    for (int64_t c0 = 0; c0 < d; c0 += MEAN_BLOCK) {
        int64_t w = d - c0 < MEAN_BLOCK ? d - c0 : MEAN_BLOCK;
        memset(acc, 0, (size_t)w * sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            const float *r = x + i * ldx + c0;
            for (int64_t j = 0; j < w; j++)
                acc[j] += r[j];
        }
        for (int64_t j = 0; j < w; j++)
            mean[c0 + j] = n ? (float)(acc[j] / (double)n) : 0.f;
    }
}

// src: [rows, d] (lds) -> dst: [rows, d] contiguous, dst = src - mean
static void centre_rows(const float *src, int64_t lds, int64_t rows, int64_t d, const float *mean, float *dst)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *s = src + i * lds;
        float *t = dst + i * d;
        for (int64_t j = 0; j < d; j++)
            t[j] = s[j] - mean[j];
    }
}

/* A chunk of rows [r0, r0 + rows) of x, centred into buf when mean is given, else in place. */
static const float *chunk_view(const float *x, int64_t ldx, const float *mean, int64_t r0, int64_t rows, int64_t d,
                               float *buf, int64_t *ld)
{
    if (!mean) {
        *ld = ldx;
        return x + r0 * ldx;
    }
    centre_rows(x + r0 * ldx, ldx, rows, d, mean, buf);
    *ld = d;
    return buf;
}

/* The Gram staircase over the columns of z (row stride ldz): with blocks of width hb, block
 * q < nb - 1 multiplies the rows [0, (q + 1) hb) of z^T by its columns, the last block all d1
 * rows by the columns [(nb - 1) hb, dz) (the rest of the [d1, d1] Gram and, when dz > d1, the
 * cross product with the columns after d1). o (row stride ldo) accumulates. */
static int64_t stair_width(int64_t d1) { return d1 >= 2 * GRAM_STAIR_COLS ? GRAM_STAIR_COLS : d1; }

static v2t_status stair_products(v2t_exec *ex, const float *z, int64_t ldz, int64_t rows, int64_t d1, int64_t dz,
                                 float *o, int64_t ldo)
{
    const int64_t hb = stair_width(d1), nb = (d1 + hb - 1) / hb;
    for (int64_t q = 0; q < nb; q++) {
        // o[0:m, c0:c1] += z[:, 0:m]^T z[:, c0:c1]
        const int64_t c0 = q * hb, c1 = q + 1 < nb ? c0 + hb : dz, m = q + 1 < nb ? c1 : d1;
        V2T_TRY(v2t_gemm(ex, 1, 0, m, c1 - c0, rows, 1.f, z, ldz, z + c0, ldz, 1.f, o + c0, ldo));
    }
    return V2T_OK;
}

/* Gram entry (i, j) from the staircase's accumulator: entries below the staircase were not
 * computed and are the mirrors of entries above it. */
static inline float stair_entry(const float *o, int64_t ldo, int64_t d1, int64_t i, int64_t j)
{
    const int64_t hb = stair_width(d1), nb = (d1 + hb - 1) / hb;
    const int64_t qj = j / hb < nb - 1 ? j / hb : nb - 1; /* block of column j */
    return i >= (qj + 1) * hb ? o[j * ldo + i] : o[i * ldo + j];
}

static v2t_status gram_symmetric(v2t_exec *ex, const float *x, int64_t ldx, const float *mx, int64_t d, int64_t n,
                                 float *out)
{
    float *buf = NULL;
    v2t_status s = V2T_OK;
    int64_t chunk = n < CHUNK_ROWS ? n : CHUNK_ROWS;
    if (mx)
        V2T_TRY(v2t_alloc((void **)&buf, (size_t)chunk * (size_t)d * sizeof(float), "centred row chunk"));
    memset(out, 0, (size_t)d * (size_t)d * sizeof(float));
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rows = n - r0 < chunk ? n - r0 : chunk, ld;
        const float *z = chunk_view(x, ldx, mx, r0, rows, d, buf, &ld);
        V2T_CHECK(s, stair_products(ex, z, ld, rows, d, d, out, d), done);
        V2T_CHECK(s, v2t_poll_interrupt(), done);
    }
    /* in place: an entry below the staircase reads one above it, which is never written */
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++)
            out[i * d + j] = stair_entry(out, d, d, i, j);
done:
    v2t_free(buf);
    return s;
}

// out: [d1, d2] = (x - mx)^T (y - my)
v2t_status v2t_cross_product(v2t_exec *ex, const float *x, int64_t ldx, const float *mx, int64_t d1, const float *y,
                             int64_t ldy, const float *my, int64_t d2, int64_t n, float *out)
{
    if (x == y && ldx == ldy && d1 == d2 && mx == my)
        return gram_symmetric(ex, x, ldx, mx, d1, n, out);
    if (n == 0) {
        memset(out, 0, (size_t)d1 * (size_t)d2 * sizeof(float));
        return V2T_OK;
    }
    float *bx = NULL, *by = NULL;
    v2t_status s = V2T_OK;
    int64_t chunk = n < CHUNK_ROWS ? n : CHUNK_ROWS;
    if (mx)
        V2T_CHECK(s, v2t_alloc((void **)&bx, (size_t)chunk * (size_t)d1 * sizeof(float), "centred row chunk"), done);
    if (my)
        V2T_CHECK(s, v2t_alloc((void **)&by, (size_t)chunk * (size_t)d2 * sizeof(float), "centred row chunk"), done);
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rows = n - r0 < chunk ? n - r0 : chunk, lx, ly;
        const float *zx = chunk_view(x, ldx, mx, r0, rows, d1, bx, &lx);
        const float *zy = chunk_view(y, ldy, my, r0, rows, d2, by, &ly);
        V2T_CHECK(s, v2t_gemm(ex, 1, 0, d1, d2, rows, 1.f, zx, lx, zy, ly, r0 ? 1.f : 0.f, out, d2), done);
        V2T_CHECK(s, v2t_poll_interrupt(), done);
    }
done:
    v2t_free(bx);
    v2t_free(by);
    return s;
}

// gram: [d1, d1], cross: [d1, d2]
v2t_status v2t_gram_and_cross(v2t_exec *ex, const float *x, const float *mx, int64_t d1, const float *y,
                              const float *my, int64_t d2, int64_t n, float *gram, float *cross)
{
    const int64_t dz = d1 + d2;
    const int64_t chunk = n < CHUNK_ROWS ? (n > 0 ? n : 1) : CHUNK_ROWS;
    float *z = NULL, *o = NULL;
    v2t_status s = V2T_OK;
    V2T_CHECK(s, v2t_alloc((void **)&z, (size_t)chunk * (size_t)dz * sizeof(float), "centred row chunk"), done);
    V2T_CHECK(s, v2t_calloc((void **)&o, (size_t)d1 * (size_t)dz * sizeof(float), "moment accumulator"), done);
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        for (int64_t i = 0; i < rows; i++) {
            const float *xr = x + (r0 + i) * d1, *yr = y + (r0 + i) * d2;
            float *zr = z + i * dz;
            for (int64_t j = 0; j < d1; j++)
                zr[j] = mx ? xr[j] - mx[j] : xr[j];
            for (int64_t j = 0; j < d2; j++)
                zr[d1 + j] = my ? yr[j] - my[j] : yr[j];
        }
        V2T_CHECK(s, stair_products(ex, z, dz, rows, d1, dz, o, dz), done);
        V2T_CHECK(s, v2t_poll_interrupt(), done);
    }
    for (int64_t i = 0; i < d1; i++) {
        for (int64_t j = 0; j < d1; j++)
            gram[i * d1 + j] = stair_entry(o, dz, d1, i, j);
        memcpy(cross + i * d2, o + i * dz + d1, (size_t)d2 * sizeof(float));
    }
done:
    v2t_free(z);
    v2t_free(o);
    return s;
}

// out: [n, n] = (x - mx)(x - mx)^T
v2t_status v2t_row_gram(v2t_exec *ex, const float *x, int64_t ldx, const float *mx, int64_t n, int64_t d, float *out)
{
    float *buf = NULL;
    int64_t ld = ldx;
    const float *z = x;
    if (mx) {
        size_t bytes;
        V2T_TRY(v2t_mul_size((size_t)n * (size_t)d, sizeof(float), &bytes));
        V2T_TRY(v2t_alloc((void **)&buf, bytes, "centred rows"));
        centre_rows(x, ldx, n, d, mx, buf);
        z = buf;
        ld = d;
    }
    v2t_status s = v2t_gemm(ex, 0, 1, n, n, d, 1.f, z, ld, z, ld, 0.f, out, n);
    v2t_free(buf);
    return s;
}

// y: [n, d2] = x [n, d1] w [d1, d2] + b [d2]
v2t_status v2t_affine(v2t_exec *ex, const float *x, int64_t ldx, int64_t n, int64_t d1, const float *w,
                      const float *b, int64_t d2, float *y)
{
    if (b)
        for (int64_t i = 0; i < n; i++)
            memcpy(y + i * d2, b, (size_t)d2 * sizeof(float));
    return v2t_gemm(ex, 0, 0, n, d2, d1, 1.f, x, ldx, w, d2, b ? 1.f : 0.f, y, d2);
}
