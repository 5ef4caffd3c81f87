/* BERT WordPiece tokenisation, as the reference fast tokenizer of a BERT checkpoint does it:
 *
 *   1. special tokens (e.g. "[CLS]", "[SEP]") written in the text are matched verbatim on the
 *      raw text, leftmost-longest, and become their own ids;
 *   2. each stretch between them is normalised (normalize.h: clean-up, CJK spacing, accent
 *      stripping, lowercasing);
 *   3. pre-tokenised: split at whitespace, every punctuation character a word of its own
 *      (BERT's punctuation: the ASCII symbol ranges and the Unicode P* categories);
 *   4. each word -> greedy longest-match-first WordPiece, continuation pieces carrying the
 *      "##" prefix; a word longer than max_input_chars_per_word characters, or one that
 *      cannot be covered by pieces, becomes the single unknown token.
 * Encoding adds [CLS] ... [SEP] and truncates the middle to max_length - 2 ids.
 *
 * A v2t_wordpiece is immutable after creation; every call takes its own v2t_wp_scratch, so
 * threads may share one tokenizer.
 */
#ifndef V2T_TOKENIZE_WORDPIECE_H
#define V2T_TOKENIZE_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/alloc.h"
#include "../core/status.h"
#include "normalize.h"

#define V2T_WP_MAX_SPECIAL 64

typedef struct v2t_wordpiece_config {
    v2t_norm_opts norm;            /* defaults: all four on (BERT uncased) */
    int max_input_chars_per_word;  /* 100 */
    const char *unk_token;         /* "[UNK]" */
    const char *cls_token;         /* "[CLS]" */
    const char *sep_token;         /* "[SEP]" */
    const char *pad_token;         /* "[PAD]" */
    const char *continuing_prefix; /* "##" */
    /* Strings matched verbatim in text (special tokens); each must be in the vocabulary.
     * Defaults: the five BERT specials. */
    const char *special[V2T_WP_MAX_SPECIAL];
    int num_special;
} v2t_wordpiece_config;

typedef struct v2t_wordpiece v2t_wordpiece;

/* Per-call scratch (grown on demand, released with v2t_wp_scratch_release). */
typedef struct v2t_wp_scratch {
    v2t_buffer cps, norm, pending, word, ids;
} v2t_wp_scratch;

void v2t_wordpiece_default_config(v2t_wordpiece_config *cfg);

/* vocab: the text of a vocab.txt (one token per line, line i = id i; a trailing "\r" is
 * dropped; a repeated token keeps its last id). `what` names the source in messages. */
v2t_status v2t_wordpiece_create(const char *vocab, size_t len, const char *what, const v2t_wordpiece_config *cfg,
                                v2t_wordpiece **out);
/* Same, reading the vocabulary from a file. */
v2t_status v2t_wordpiece_load(const char *vocab_path, const v2t_wordpiece_config *cfg, v2t_wordpiece **out);
void v2t_wordpiece_free(v2t_wordpiece *wp);

int32_t v2t_wordpiece_vocab_size(const v2t_wordpiece *wp);
/* The token text of id (NUL-terminated), or NULL when out of range. */
const char *v2t_wordpiece_token(const v2t_wordpiece *wp, int32_t id);
/* The id of a token, or -1. */
int32_t v2t_wordpiece_token_id(const v2t_wordpiece *wp, const char *token, size_t len);
/* Ids of the [CLS], [SEP], [PAD], [UNK] tokens. */
void v2t_wordpiece_special_ids(const v2t_wordpiece *wp, int32_t *cls, int32_t *sep, int32_t *pad, int32_t *unk);

void v2t_wp_scratch_release(v2t_wp_scratch *s);

/* Token ids of one UTF-8 text, without [CLS]/[SEP]; *ids points into the scratch (valid until
 * its next use), *n = count. `what` names the text in error messages. */
v2t_status v2t_wordpiece_tokenize(const v2t_wordpiece *wp, v2t_wp_scratch *s, const char *text, size_t len,
                                  const char *what, const int32_t **ids, size_t *n);

/* Encode n texts: [CLS] ids [SEP] (add_special) with the ids cut to max_length - 2
 * (max_length - 0 without specials; max_length <= 0: no truncation).
 * Ragged output: ids of text i are flat[offsets[i] .. offsets[i+1]); `flat` is grown;
 * offsets: [n + 1] caller-allocated. */
v2t_status v2t_wordpiece_encode_batch(const v2t_wordpiece *wp, const char *const *texts, const size_t *lens,
                                      int64_t n, int64_t max_length, int add_special, v2t_buffer *flat,
                                      int64_t *offsets);

#endif
