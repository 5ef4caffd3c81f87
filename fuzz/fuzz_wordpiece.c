/* Fuzz target: the WordPiece vocabulary reader and tokenizer (the tokenizer files the C core
 * reads: vocab.txt, and the text it is given). The input is a vocabulary, then a NUL byte,
 * then a text; the vocabulary is built with the BERT defaults (its special tokens must be in
 * it) and, when it loads, the text is tokenized and encoded with [CLS]/[SEP] at two lengths. */
#include <string.h>

#include "fuzz_common.h"
#include "core/alloc.h"
#include "core/status.h"
#include "tokenize/wordpiece.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    const size_t vlen = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : "";
    const size_t tlen = nul ? size - vlen - 1 : 0;

    v2t_wordpiece_config cfg;
    v2t_wordpiece_default_config(&cfg);
    if (size > 0)
        cfg.norm.lowercase = data[size - 1] & 1; /* cased and uncased vocabularies */
    v2t_wordpiece *wp = NULL;
    if (v2t_wordpiece_create((const char *)data, vlen, "fuzz vocab", &cfg, &wp) != V2T_OK) {
        if (wp != NULL || v2t_last_error()[0] == '\0')
            abort();
        return 0;
    }
    const int32_t V = v2t_wordpiece_vocab_size(wp);
    v2t_wp_scratch s = {0};
    const int32_t *ids = NULL;
    size_t n = 0;
    if (v2t_wordpiece_tokenize(wp, &s, text, tlen, "fuzz text", &ids, &n) == V2T_OK) {
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= V)
                abort(); /* every id names a vocabulary entry */
            const char *tok = v2t_wordpiece_token(wp, ids[i]);
            if (tok == NULL)
                abort();
        }
    }
    const char *texts[2] = {text, text};
    const size_t lens[2] = {tlen, tlen / 2};
    int64_t offsets[3];
    v2t_buffer flat = {0};
    for (int64_t max_length = 0; max_length <= 8; max_length += 8)
        if (v2t_wordpiece_encode_batch(wp, texts, lens, 2, max_length, 1, &flat, offsets) == V2T_OK)
            if (offsets[0] != 0 || offsets[1] < offsets[0] || offsets[2] < offsets[1] ||
                (max_length > 0 && offsets[1] - offsets[0] > max_length))
                abort();
    v2t_buffer_release(&flat);
    v2t_wp_scratch_release(&s);
    v2t_wordpiece_free(wp);
    return 0;
}
