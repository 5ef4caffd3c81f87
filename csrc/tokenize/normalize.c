/* BERT normalisation in one pass: see normalize.h. The reference (normalize_ref.c) runs the
 * stages one after the other over whole strings. */
#include "normalize.h"

#include <string.h>

#include "unicode_tables.h"

v2t_status v2t_utf8_decode(const char *s, size_t len, v2t_buffer *out, size_t *n, const char *what)
{
    V2T_TRY(v2t_buffer_reserve(out, (len + 1) * sizeof(uint32_t), "decoded text"));
    uint32_t *cp = out->data;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            cp[k++] = c;
            i++;
            continue;
        }
        int extra;
        uint32_t v, min;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, v = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, v = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, v = c & 0x07, min = 0x10000;
        } else {
            return v2t_fail(V2T_ERR_VALUE, "%s: invalid UTF-8 lead byte 0x%02X at byte %zu", what, c, i);
        }
        if ((size_t)extra > len - i - 1)
            return v2t_fail(V2T_ERR_VALUE, "%s: truncated UTF-8 sequence at byte %zu", what, i);
        for (int j = 1; j <= extra; j++) {
            unsigned b = p[i + (size_t)j];
            if ((b & 0xC0) != 0x80)
                return v2t_fail(V2T_ERR_VALUE, "%s: invalid UTF-8 continuation byte 0x%02X at byte %zu", what, b,
                                i + (size_t)j);
            v = (v << 6) | (b & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return v2t_fail(V2T_ERR_VALUE, "%s: invalid UTF-8 (overlong, surrogate or out of range) at byte %zu",
                            what, i);
        cp[k++] = v;
        i += (size_t)extra + 1;
    }
    *n = k;
    return V2T_OK;
}

size_t v2t_utf8_put(uint32_t cp, char *dst)
{
    unsigned char *d = (unsigned char *)dst;
    if (cp < 0x80) {
        d[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (unsigned char)(0xC0 | (cp >> 6));
        d[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xE0 | (cp >> 12));
        d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (unsigned char)(0xF0 | (cp >> 18));
    d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A combining mark waiting for the end of its run: (class, code point). */
typedef struct mark {
    uint32_t ccc, cp;
} mark;

typedef struct sink {
    const v2t_norm_opts *o;
    uint32_t *out;
    size_t n;
    mark *run;
    size_t nrun;
} sink;

static void put_lower(sink *s, uint32_t c)
{
    if (s->o->lowercase && (v2t_uc_flags(c) & V2T_UC_LOWER)) {
        const uint32_t *seq;
        int len = v2t_uc_lower(c, &seq);
        for (int i = 0; i < len; i++)
            s->out[s->n++] = seq[i];
    } else {
        s->out[s->n++] = c;
    }
}

/* Emit the pending run of marks in canonical order (stable by combining class). */
static void flush(sink *s)
{
    mark *r = s->run;
    size_t n = s->nrun;
    if (n > 1) {
        /* Insertion sort: stable, and runs of several marks are short in real text. For long
         * adversarial runs a counting pass keeps it linear. */
        if (n <= 32) {
            for (size_t i = 1; i < n; i++) {
                mark m = r[i];
                size_t j = i;
                while (j > 0 && r[j - 1].ccc > m.ccc) {
                    r[j] = r[j - 1];
                    j--;
                }
                r[j] = m;
            }
            for (size_t i = 0; i < n; i++)
                put_lower(s, r[i].cp);
        } else {
            for (uint32_t k = 1; k < 256; k++)
                for (size_t i = 0; i < n; i++)
                    if (r[i].ccc == k)
                        put_lower(s, r[i].cp);
        }
    } else if (n == 1) {
        put_lower(s, r[0].cp);
    }
    s->nrun = 0;
}

/* One fully decomposed character after clean-up: reorder, strip, lowercase. */
static void emit(sink *s, uint32_t c)
{
    unsigned f = v2t_uc_flags(c);
    if (!s->o->strip_accents) {
        put_lower(s, c);
        return;
    }
    if (f & V2T_UC_CCC) {
        if (!(f & V2T_UC_MN)) {
            s->run[s->nrun].ccc = v2t_uc_ccc(c);
            s->run[s->nrun++].cp = c;
        }
        return;
    }
    flush(s);
    if (!(f & V2T_UC_MN))
        put_lower(s, c);
}

static void emit_decomposed(sink *s, uint32_t c, unsigned f)
{
    if (!s->o->strip_accents) {
        emit(s, c);
        return;
    }
    if (c >= V2T_UC_HANGUL_FIRST && c <= V2T_UC_HANGUL_LAST) {
        uint32_t jamo[3];
        int k = v2t_uc_hangul(c, jamo);
        for (int i = 0; i < k; i++)
            emit(s, jamo[i]);
    } else if (f & V2T_UC_DECOMP) {
        const uint32_t *seq;
        int len = v2t_uc_decomp(c, &seq);
        for (int i = 0; i < len; i++)
            emit(s, seq[i]);
    } else {
        emit(s, c);
    }
}

// in: [n] code points -> out: [*n_out] code points
v2t_status v2t_normalize(const v2t_norm_opts *o, const uint32_t *in, size_t n, v2t_buffer *out, size_t *n_out,
                         v2t_buffer *pending)
{
    /* Each input character yields at most V2T_UC_MAX_EXPANSION output characters. */
    size_t cap;
    V2T_TRY(v2t_mul_size(n + 1, V2T_UC_MAX_EXPANSION * sizeof(uint32_t), &cap));
    V2T_TRY(v2t_buffer_reserve(out, cap, "normalized text"));
    V2T_TRY(v2t_mul_size(n + 1, V2T_UC_MAX_DECOMP * sizeof(mark), &cap));
    V2T_TRY(v2t_buffer_reserve(pending, cap, "combining marks"));
    sink s = {o, out->data, 0, pending->data, 0};
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        unsigned f = v2t_uc_flags(c);
        if (o->clean_text && (f & V2T_UC_REMOVE))
            continue;
        if (o->clean_text && (f & V2T_UC_SPACE)) {
            emit(&s, ' ');
            continue;
        }
        const int pad = o->handle_chinese_chars && (f & V2T_UC_CHINESE);
        if (pad)
            emit(&s, ' ');
        emit_decomposed(&s, c, f);
        if (pad)
            emit(&s, ' ');
    }
    flush(&s);
    *n_out = s.n;
    return V2T_OK;
}
