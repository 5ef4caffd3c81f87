/* BERT text normalisation on code points, as the reference BertNormalizer does it:
 *   clean_text            drop NUL, U+FFFD and control / format / private-use characters;
 *                         whitespace (tab, newline, Unicode spaces) becomes ' '
 *   handle_chinese_chars  a space on each side of every CJK ideograph
 *   strip_accents         canonical decomposition (NFD, with canonical reordering of
 *                         combining marks), then nonspacing marks dropped
 *   lowercase             per-character lowercase mapping (context-free: no final sigma)
 * in that order. Character data: unicode_tables.h.
 */
#ifndef V2T_TOKENIZE_NORMALIZE_H
#define V2T_TOKENIZE_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/alloc.h"
#include "../core/status.h"

typedef struct v2t_norm_opts {
    int clean_text;
    int handle_chinese_chars;
    int strip_accents;
    int lowercase;
} v2t_norm_opts;

/* Decode UTF-8 `s` (len bytes) into code points in `out` (grown as needed); *n = count.
 * Invalid UTF-8 (overlong forms, surrogates, truncated sequences) fails with V2T_ERR_VALUE
 * naming `what` and the byte offset. */
v2t_status v2t_utf8_decode(const char *s, size_t len, v2t_buffer *out, size_t *n, const char *what);

/* Append the UTF-8 encoding of cp to dst (room for 4 bytes); returns the bytes written. */
size_t v2t_utf8_put(uint32_t cp, char *dst);

/* in: [n] code points; out: grown to hold the result, *n_out = its length.
 * `pending` is scratch for runs of combining marks. */
v2t_status v2t_normalize(const v2t_norm_opts *o, const uint32_t *in, size_t n, v2t_buffer *out, size_t *n_out,
                         v2t_buffer *pending);

/* Naive reference: the same result, computed one pipeline stage at a time over whole
 * intermediate strings (clean, chinese, decompose, reorder, strip, lowercase). */
v2t_status v2t_normalize_ref(const v2t_norm_opts *o, const uint32_t *in, size_t n, v2t_buffer *out,
                             size_t *n_out);

#endif
