/* Naive reference for v2t_normalize: each stage over the whole string, canonical ordering by
 * the textbook pairwise exchange (swap adjacent marks while ccc(a) > ccc(b) > 0). */
#include <string.h>

#include "normalize.h"
#include "unicode_tables.h"

static v2t_status grow(v2t_buffer *b, size_t count)
{
    size_t bytes;
    V2T_TRY(v2t_mul_size(count + 1, sizeof(uint32_t), &bytes));
    return v2t_buffer_reserve(b, bytes, "reference normalisation");
}

// in: [n] -> out: [*n_out]
v2t_status v2t_normalize_ref(const v2t_norm_opts *o, const uint32_t *in, size_t n, v2t_buffer *out, size_t *n_out)
{
    v2t_buffer a = {0}, b = {0};
    v2t_status st;
    size_t na = 0, nb = 0;
    /* 3n after padding ideographs, at most V2T_UC_MAX_DECOMP times that after decomposing */
    V2T_CHECK(st, grow(&a, 3 * V2T_UC_MAX_DECOMP * n), done);
    V2T_CHECK(st, grow(&b, 3 * V2T_UC_MAX_DECOMP * n), done);
    uint32_t *x = a.data, *y = b.data;

    /* clean_text + handle_chinese_chars */
    for (size_t i = 0; i < n; i++) {
        unsigned f = v2t_uc_flags(in[i]);
        if (o->clean_text && (f & V2T_UC_REMOVE))
            continue;
        if (o->clean_text && (f & V2T_UC_SPACE)) {
            x[na++] = ' ';
        } else if (o->handle_chinese_chars && (f & V2T_UC_CHINESE)) {
            x[na++] = ' ';
            x[na++] = in[i];
            x[na++] = ' ';
        } else {
            x[na++] = in[i];
        }
    }
    if (o->strip_accents) {
        /* decompose */
        for (size_t i = 0; i < na; i++) {
            uint32_t c = x[i];
            if (c >= V2T_UC_HANGUL_FIRST && c <= V2T_UC_HANGUL_LAST) {
                nb += (size_t)v2t_uc_hangul(c, y + nb);
            } else if (v2t_uc_flags(c) & V2T_UC_DECOMP) {
                const uint32_t *seq;
                int len = v2t_uc_decomp(c, &seq);
                memcpy(y + nb, seq, (size_t)len * sizeof(uint32_t));
                nb += (size_t)len;
            } else {
                y[nb++] = c;
            }
        }
        /* canonical ordering */
        for (int swapped = 1; swapped;) {
            swapped = 0;
            for (size_t i = 0; i + 1 < nb; i++) {
                uint32_t ca = v2t_uc_ccc(y[i]), cb = v2t_uc_ccc(y[i + 1]);
                if (cb != 0 && ca > cb) {
                    uint32_t t = y[i];
                    y[i] = y[i + 1];
                    y[i + 1] = t;
                    swapped = 1;
                }
            }
        }
        /* strip nonspacing marks */
        na = 0;
        for (size_t i = 0; i < nb; i++)
            if (!(v2t_uc_flags(y[i]) & V2T_UC_MN))
                x[na++] = y[i];
    }
    /* lowercase */
    V2T_CHECK(st, grow(out, V2T_UC_MAX_LOWER * na), done);
    uint32_t *z = out->data;
    size_t nz = 0;
    for (size_t i = 0; i < na; i++) {
        if (o->lowercase && (v2t_uc_flags(x[i]) & V2T_UC_LOWER)) {
            const uint32_t *seq;
            int len = v2t_uc_lower(x[i], &seq);
            for (int k = 0; k < len; k++)
                z[nz++] = seq[k];
        } else {
            z[nz++] = x[i];
        }
    }
    *n_out = nz;
    st = V2T_OK;
done:
    v2t_buffer_release(&a);
    v2t_buffer_release(&b);
    return st;
}
