/* Character data for BERT normalisation (generated into unicode_tables.c by
 * tools/gen_unicode_tables.py from the reference tokenizer; see that script for why).
 *
 * Per code point c: props = v2t_uc_props[v2t_uc_stage2[(v2t_uc_stage1[c >> 7] << 7) | (c & 127)]],
 * a set of V2T_UC_* flags. Sequences (canonical decompositions, lowercase mappings) live in
 * sorted key arrays with (offset, length) into a pool; nonzero canonical combining classes in
 * a sorted key/value array. Hangul syllables decompose algorithmically (not in the table).
 */
#ifndef V2T_TOKENIZE_UNICODE_TABLES_H
#define V2T_TOKENIZE_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

enum {
    V2T_UC_REMOVE = 1 << 0,  /* clean_text drops it: NUL, U+FFFD, control / format / private use */
    V2T_UC_SPACE = 1 << 1,   /* clean_text turns it into ' ' (tab, newline, Unicode spaces) */
    V2T_UC_CHINESE = 1 << 2, /* CJK ideograph: gets a space on each side */
    V2T_UC_MN = 1 << 3,      /* nonspacing mark: dropped when accents are stripped */
    V2T_UC_SPLIT = 1 << 4,   /* pre-tokenizer whitespace: ends a word and is dropped */
    V2T_UC_PUNCT = 1 << 5,   /* pre-tokenizer punctuation: a word of its own */
    V2T_UC_DECOMP = 1 << 6,  /* has a canonical decomposition in the table */
    V2T_UC_LOWER = 1 << 7,   /* has a lowercase mapping in the table */
    V2T_UC_CCC = 1 << 8,     /* nonzero canonical combining class */
};

#define V2T_UC_HANGUL_FIRST 0xAC00u
#define V2T_UC_HANGUL_LAST 0xD7A3u
/* Bounds the generator checks: a decomposition has at most 4 characters, a lowercase
 * mapping at most 2, so one input character yields at most 2 + 4 * 2 (with the two spaces
 * around an ideograph). */
#define V2T_UC_MAX_DECOMP 4
#define V2T_UC_MAX_LOWER 2
#define V2T_UC_MAX_EXPANSION (2 + V2T_UC_MAX_DECOMP * V2T_UC_MAX_LOWER)

extern const uint16_t v2t_uc_props[];
extern const uint8_t v2t_uc_stage1[8704];
extern const uint8_t v2t_uc_stage2[];

extern const int v2t_uc_decomp_count;
extern const uint32_t v2t_uc_decomp_key[];
extern const uint16_t v2t_uc_decomp_off[];
extern const uint8_t v2t_uc_decomp_len[];
extern const uint32_t v2t_uc_decomp_pool[];

extern const int v2t_uc_lower_count;
extern const uint32_t v2t_uc_lower_key[];
extern const uint16_t v2t_uc_lower_off[];
extern const uint8_t v2t_uc_lower_len[];
extern const uint32_t v2t_uc_lower_pool[];

extern const int v2t_uc_ccc_count;
extern const uint32_t v2t_uc_ccc_key[];
extern const uint8_t v2t_uc_ccc_val[];

/* Flags of code point c (c < 0x110000). */
static inline unsigned v2t_uc_flags(uint32_t c)
{
    return v2t_uc_props[v2t_uc_stage2[((uint32_t)v2t_uc_stage1[c >> 7] << 7) | (c & 127u)]];
}

/* Index of c in a sorted key array, or -1. */
static inline int v2t_uc_find(const uint32_t *keys, int count, uint32_t c)
{
    int lo = 0, hi = count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (keys[mid] < c)
            lo = mid + 1;
        else if (keys[mid] > c)
            hi = mid - 1;
        else
            return mid;
    }
    return -1;
}

/* Canonical decomposition of c (V2T_UC_DECOMP set): *seq points into the pool; returns its length. */
static inline int v2t_uc_decomp(uint32_t c, const uint32_t **seq)
{
    int i = v2t_uc_find(v2t_uc_decomp_key, v2t_uc_decomp_count, c);
    if (i < 0) {
        *seq = NULL;
        return 0;
    }
    *seq = v2t_uc_decomp_pool + v2t_uc_decomp_off[i];
    return v2t_uc_decomp_len[i];
}

/* Lowercase mapping of c (V2T_UC_LOWER set). */
static inline int v2t_uc_lower(uint32_t c, const uint32_t **seq)
{
    int i = v2t_uc_find(v2t_uc_lower_key, v2t_uc_lower_count, c);
    if (i < 0) {
        *seq = NULL;
        return 0;
    }
    *seq = v2t_uc_lower_pool + v2t_uc_lower_off[i];
    return v2t_uc_lower_len[i];
}

/* Canonical combining class of c (0 unless V2T_UC_CCC is set). */
static inline uint32_t v2t_uc_ccc(uint32_t c)
{
    int i = v2t_uc_find(v2t_uc_ccc_key, v2t_uc_ccc_count, c);
    return i < 0 ? 0u : v2t_uc_ccc_val[i];
}

/* Hangul syllable -> 2 or 3 conjoining jamo (Unicode's algorithmic decomposition). */
static inline int v2t_uc_hangul(uint32_t c, uint32_t jamo[3])
{
    uint32_t s = c - V2T_UC_HANGUL_FIRST;
    jamo[0] = 0x1100u + s / 588u;
    jamo[1] = 0x1161u + (s % 588u) / 28u;
    if (s % 28u) {
        jamo[2] = 0x11A7u + s % 28u;
        return 3;
    }
    return 2;
}

#endif
