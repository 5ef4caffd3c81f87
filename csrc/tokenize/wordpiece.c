/* WordPiece vocabulary, special-token matching, pre-tokenisation and greedy matching.
 * See wordpiece.h for the pipeline. */
#include "wordpiece.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../core/interrupt.h"
#include "unicode_tables.h"

/* Open-addressing hash table from token bytes to id. */
typedef struct slot {
    uint64_t hash;
    const char *key; /* NULL: empty */
    uint32_t len;
    int32_t id;
} slot;

typedef struct table {
    slot *slots;
    uint64_t mask;
    uint32_t max_len; /* longest key in bytes */
} table;

typedef struct special {
    uint32_t *cps;
    size_t n;
    int32_t id;
} special;

struct v2t_wordpiece {
    v2t_wordpiece_config cfg;
    char *pool;          /* every token, NUL-terminated, in id order */
    uint32_t *tok_off;   /* [vocab] offsets into pool */
    int32_t vocab;
    table whole;         /* every token */
    table cont;          /* tokens starting with the prefix, keyed without it */
    special spec[V2T_WP_MAX_SPECIAL];
    int num_special;
    int32_t cls, sep, pad, unk;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static v2t_status table_init(table *t, size_t count)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)count + 1)
        cap <<= 1;
    V2T_TRY(v2t_calloc((void **)&t->slots, cap * sizeof(slot), "vocabulary hash table"));
    t->mask = cap - 1;
    t->max_len = 0;
    return V2T_OK;
}

/* Insert or overwrite (a repeated token keeps its last id). */
static void table_put(table *t, const char *key, uint32_t len, int32_t id)
{
    uint64_t h = hash_bytes(key, len);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        slot *s = &t->slots[i];
        if (!s->key) {
            s->hash = h, s->key = key, s->len = len, s->id = id;
            if (len > t->max_len)
                t->max_len = len;
            return;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            s->id = id;
            return;
        }
    }
}

static int32_t table_get(const table *t, const char *key, size_t len)
{
    if (len > t->max_len)
        return -1;
    uint64_t h = hash_bytes(key, len);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const slot *s = &t->slots[i];
        if (!s->key)
            return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s->id;
    }
}

void v2t_wordpiece_default_config(v2t_wordpiece_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->norm.clean_text = 1;
    cfg->norm.handle_chinese_chars = 1;
    cfg->norm.strip_accents = 1;
    cfg->norm.lowercase = 1;
    cfg->max_input_chars_per_word = 100;
    cfg->unk_token = "[UNK]";
    cfg->cls_token = "[CLS]";
    cfg->sep_token = "[SEP]";
    cfg->pad_token = "[PAD]";
    cfg->continuing_prefix = "##";
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++)
        cfg->special[i] = specials[i];
    cfg->num_special = 5;
}

void v2t_wordpiece_free(v2t_wordpiece *wp)
{
    if (!wp)
        return;
    for (int i = 0; i < wp->num_special; i++)
        v2t_free(wp->spec[i].cps);
    v2t_free(wp->whole.slots);
    v2t_free(wp->cont.slots);
    v2t_free(wp->tok_off);
    v2t_free(wp->pool);
    v2t_free(wp);
}

static v2t_status required_id(const v2t_wordpiece *wp, const char *what, const char *tok, const char *src,
                              int32_t *id)
{
    if (!tok)
        return v2t_fail(V2T_ERR_VALUE, "wordpiece config: %s is not set", what);
    *id = v2t_wordpiece_token_id(wp, tok, strlen(tok));
    if (*id < 0)
        return v2t_fail(V2T_ERR_VALUE, "%s: the %s '%s' is not in the vocabulary", src, what, tok);
    return V2T_OK;
}

static v2t_status build(v2t_wordpiece *wp, const char *vocab, size_t len, const char *what)
{
    const v2t_wordpiece_config *cfg = &wp->cfg;
    /* count lines: "a\nb\n" and "a\nb" both hold two tokens */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += vocab[i] == '\n';
    if (len > 0 && vocab[len - 1] != '\n')
        lines++;
    if (lines == 0)
        return v2t_fail(V2T_ERR_FORMAT, "%s: the vocabulary is empty", what);
    if (lines > INT32_MAX)
        return v2t_fail(V2T_ERR_FORMAT, "%s: %zu tokens is more than int32 ids allow", what, lines);
    if (memchr(vocab, '\0', len))
        return v2t_fail(V2T_ERR_FORMAT, "%s: the vocabulary contains a NUL byte at byte %zu", what,
                        (size_t)((const char *)memchr(vocab, '\0', len) - vocab));
    V2T_TRY(v2t_alloc((void **)&wp->pool, len + lines + 1, "vocabulary strings"));
    V2T_TRY(v2t_alloc((void **)&wp->tok_off, lines * sizeof(uint32_t), "vocabulary offsets"));
    if (len + lines + 1 > UINT32_MAX)
        return v2t_fail(V2T_ERR_FORMAT, "%s: the vocabulary is larger than 4 GiB", what);
    V2T_TRY(table_init(&wp->whole, lines));
    V2T_TRY(table_init(&wp->cont, lines));
    wp->vocab = (int32_t)lines;

    const size_t plen = strlen(cfg->continuing_prefix);
    size_t pos = 0, w = 0;
    for (size_t id = 0; id < lines; id++) {
        const char *nl = memchr(vocab + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - vocab) : len;
        size_t n = end - pos;
        if (n > 0 && vocab[pos + n - 1] == '\r')
            n--;
        char *tok = wp->pool + w;
        memcpy(tok, vocab + pos, n);
        tok[n] = '\0';
        wp->tok_off[id] = (uint32_t)w;
        w += n + 1;
        pos = end + 1;
        if (n == 0)
            continue;
        table_put(&wp->whole, tok, (uint32_t)n, (int32_t)id);
        if (plen > 0 && n > plen && memcmp(tok, cfg->continuing_prefix, plen) == 0)
            table_put(&wp->cont, tok + plen, (uint32_t)(n - plen), (int32_t)id);
    }

    V2T_TRY(required_id(wp, "unknown token", cfg->unk_token, what, &wp->unk));
    V2T_TRY(required_id(wp, "[CLS] token", cfg->cls_token, what, &wp->cls));
    V2T_TRY(required_id(wp, "[SEP] token", cfg->sep_token, what, &wp->sep));
    V2T_TRY(required_id(wp, "padding token", cfg->pad_token, what, &wp->pad));

    if (cfg->num_special < 0 || cfg->num_special > V2T_WP_MAX_SPECIAL)
        return v2t_fail(V2T_ERR_VALUE, "wordpiece config: num_special must be in [0, %d], got %d",
                        V2T_WP_MAX_SPECIAL, cfg->num_special);
    for (int i = 0; i < cfg->num_special; i++) {
        special *sp = &wp->spec[wp->num_special];
        const char *s = cfg->special[i];
        if (!s || !*s)
            return v2t_fail(V2T_ERR_VALUE, "wordpiece config: special token %d is empty", i);
        V2T_TRY(required_id(wp, "special token", s, what, &sp->id));
        v2t_buffer b = {0};
        size_t n = 0;
        v2t_status st = v2t_utf8_decode(s, strlen(s), &b, &n, "special token");
        if (st != V2T_OK) {
            v2t_buffer_release(&b);
            return st;
        }
        sp->cps = b.data;
        sp->n = n;
        wp->num_special++;
    }
    return V2T_OK;
}

v2t_status v2t_wordpiece_create(const char *vocab, size_t len, const char *what, const v2t_wordpiece_config *cfg,
                                v2t_wordpiece **out)
{
    *out = NULL;
    if (cfg->max_input_chars_per_word <= 0)
        return v2t_fail(V2T_ERR_VALUE, "wordpiece config: max_input_chars_per_word must be positive, got %d",
                        cfg->max_input_chars_per_word);
    if (!cfg->continuing_prefix)
        return v2t_fail(V2T_ERR_VALUE, "wordpiece config: continuing_prefix is not set");
    v2t_wordpiece *wp;
    V2T_TRY(v2t_calloc((void **)&wp, sizeof *wp, "wordpiece tokenizer"));
    wp->cfg = *cfg;
    v2t_status st = build(wp, vocab, len, what);
    if (st != V2T_OK) {
        v2t_wordpiece_free(wp);
        return st;
    }
    /* The config's strings belong to the caller: keep views into our own pool instead. */
    wp->cfg.unk_token = v2t_wordpiece_token(wp, wp->unk);
    wp->cfg.cls_token = v2t_wordpiece_token(wp, wp->cls);
    wp->cfg.sep_token = v2t_wordpiece_token(wp, wp->sep);
    wp->cfg.pad_token = v2t_wordpiece_token(wp, wp->pad);
    wp->cfg.continuing_prefix = NULL;
    for (int i = 0; i < wp->num_special; i++)
        wp->cfg.special[i] = v2t_wordpiece_token(wp, wp->spec[i].id);
    *out = wp;
    return V2T_OK;
}

v2t_status v2t_wordpiece_load(const char *vocab_path, const v2t_wordpiece_config *cfg, v2t_wordpiece **out)
{
    *out = NULL;
    FILE *f = fopen(vocab_path, "rb");
    if (!f)
        return v2t_fail(V2T_ERR_IO, "%s: cannot open the vocabulary file (%s)", vocab_path, strerror(errno));
    v2t_status st = V2T_OK;
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = v2t_fail(V2T_ERR_IO, "%s: cannot read the vocabulary file", vocab_path);
        goto done;
    }
    V2T_CHECK(st, v2t_alloc((void **)&text, (size_t)size + 1, "vocabulary file"), done);
    if (fread(text, 1, (size_t)size, f) != (size_t)size) {
        st = v2t_fail(V2T_ERR_IO, "%s: short read of the vocabulary file", vocab_path);
        goto done;
    }
    st = v2t_wordpiece_create(text, (size_t)size, vocab_path, cfg, out);
done:
    fclose(f);
    v2t_free(text);
    return st;
}

int32_t v2t_wordpiece_vocab_size(const v2t_wordpiece *wp) { return wp->vocab; }

const char *v2t_wordpiece_token(const v2t_wordpiece *wp, int32_t id)
{
    if (id < 0 || id >= wp->vocab)
        return NULL;
    return wp->pool + wp->tok_off[id];
}

int32_t v2t_wordpiece_token_id(const v2t_wordpiece *wp, const char *token, size_t len)
{
    return len ? table_get(&wp->whole, token, len) : -1;
}

void v2t_wordpiece_special_ids(const v2t_wordpiece *wp, int32_t *cls, int32_t *sep, int32_t *pad, int32_t *unk)
{
    *cls = wp->cls, *sep = wp->sep, *pad = wp->pad, *unk = wp->unk;
}

void v2t_wp_scratch_release(v2t_wp_scratch *s)
{
    v2t_buffer_release(&s->cps);
    v2t_buffer_release(&s->norm);
    v2t_buffer_release(&s->pending);
    v2t_buffer_release(&s->word);
    v2t_buffer_release(&s->ids);
}

/* ---- growable id list (contents kept) ---- */

typedef struct idlist {
    v2t_buffer *buf;
    size_t n;
} idlist;

static v2t_status ids_room(idlist *l, size_t extra)
{
    size_t need = (l->n + extra) * sizeof(int32_t);
    if (need <= l->buf->bytes)
        return V2T_OK;
    size_t cap = l->buf->bytes ? l->buf->bytes : 256;
    while (cap < need)
        cap *= 2;
    void *p;
    V2T_TRY(v2t_alloc(&p, cap, "token ids"));
    if (l->n)
        memcpy(p, l->buf->data, l->n * sizeof(int32_t));
    v2t_free(l->buf->data);
    l->buf->data = p;
    l->buf->bytes = cap;
    return V2T_OK;
}

static v2t_status ids_push(idlist *l, int32_t id)
{
    V2T_TRY(ids_room(l, 1));
    ((int32_t *)l->buf->data)[l->n++] = id;
    return V2T_OK;
}

/* ---- one word -> pieces ---- */

// word: [nc] code points
static v2t_status word_pieces(const v2t_wordpiece *wp, v2t_wp_scratch *s, const uint32_t *word, size_t nc,
                              idlist *out)
{
    if (nc > (size_t)wp->cfg.max_input_chars_per_word)
        return ids_push(out, wp->unk);
    /* UTF-8 bytes of the word, then byte offsets of each character boundary */
    size_t bytes = 4 * nc + 1, offs = (nc + 1) * sizeof(uint32_t);
    V2T_TRY(v2t_buffer_reserve(&s->word, bytes + offs + 8, "word"));
    char *u = s->word.data;
    uint32_t *off = (uint32_t *)((char *)s->word.data + ((bytes + 7) & ~(size_t)7));
    uint32_t b = 0;
    for (size_t i = 0; i < nc; i++) {
        off[i] = b;
        b += (uint32_t)v2t_utf8_put(word[i], u + b);
    }
    off[nc] = b;

    const size_t first = out->n;
    size_t start = 0;
    while (start < nc) {
        const table *t = start == 0 ? &wp->whole : &wp->cont;
        int32_t id = -1;
        size_t end = nc;
        for (; end > start; end--) {
            size_t len = off[end] - off[start];
            if (len > t->max_len)
                continue;
            id = table_get(t, u + off[start], len);
            if (id >= 0)
                break;
        }
        if (id < 0) {
            out->n = first; /* the whole word is unknown */
            return ids_push(out, wp->unk);
        }
        V2T_TRY(ids_push(out, id));
        start = end;
    }
    return V2T_OK;
}

/* ---- one stretch of text between special tokens ---- */

static v2t_status segment(const v2t_wordpiece *wp, v2t_wp_scratch *s, const uint32_t *cps, size_t n, idlist *out)
{
    if (n == 0)
        return V2T_OK;
    size_t m;
    V2T_TRY(v2t_normalize(&wp->cfg.norm, cps, n, &s->norm, &m, &s->pending));
    const uint32_t *x = s->norm.data;
    size_t w0 = 0; /* start of the current word */
    for (size_t i = 0; i < m; i++) {
        unsigned f = v2t_uc_flags(x[i]);
        if (f & (V2T_UC_SPLIT | V2T_UC_PUNCT)) {
            if (i > w0)
                V2T_TRY(word_pieces(wp, s, x + w0, i - w0, out));
            if (f & V2T_UC_PUNCT)
                V2T_TRY(word_pieces(wp, s, x + i, 1, out));
            w0 = i + 1;
        }
    }
    if (m > w0)
        V2T_TRY(word_pieces(wp, s, x + w0, m - w0, out));
    return V2T_OK;
}

/* Leftmost-longest special token starting at cps[i], or -1. */
static int match_special(const v2t_wordpiece *wp, const uint32_t *cps, size_t n, size_t i)
{
    int best = -1;
    size_t best_len = 0;
    for (int k = 0; k < wp->num_special; k++) {
        const special *sp = &wp->spec[k];
        if (sp->n > n - i || sp->n <= best_len || cps[i] != sp->cps[0])
            continue;
        if (memcmp(cps + i, sp->cps, sp->n * sizeof(uint32_t)) == 0)
            best = k, best_len = sp->n;
    }
    return best;
}

static v2t_status tokenize_into(const v2t_wordpiece *wp, v2t_wp_scratch *s, const char *text, size_t len,
                                const char *what, idlist *out)
{
    size_t n;
    V2T_TRY(v2t_utf8_decode(text, len, &s->cps, &n, what));
    const uint32_t *cps = s->cps.data;
    size_t seg = 0;
    for (size_t i = 0; i < n;) {
        int k = wp->num_special ? match_special(wp, cps, n, i) : -1;
        if (k < 0) {
            i++;
            continue;
        }
        V2T_TRY(segment(wp, s, cps + seg, i - seg, out));
        V2T_TRY(ids_push(out, wp->spec[k].id));
        i += wp->spec[k].n;
        seg = i;
    }
    return segment(wp, s, cps + seg, n - seg, out);
}

v2t_status v2t_wordpiece_tokenize(const v2t_wordpiece *wp, v2t_wp_scratch *s, const char *text, size_t len,
                                  const char *what, const int32_t **ids, size_t *n)
{
    idlist out = {&s->ids, 0};
    V2T_TRY(tokenize_into(wp, s, text, len, what, &out));
    *ids = s->ids.data;
    *n = out.n;
    return V2T_OK;
}

// texts: [n] UTF-8 strings (lens bytes) -> flat ids, offsets: [n + 1]
v2t_status v2t_wordpiece_encode_batch(const v2t_wordpiece *wp, const char *const *texts, const size_t *lens,
                                      int64_t n, int64_t max_length, int add_special, v2t_buffer *flat,
                                      int64_t *offsets)
{
    const int64_t extra = add_special ? 2 : 0;
    if (max_length > 0 && max_length < extra)
        return v2t_fail(V2T_ERR_VALUE, "max_length: expected at least %lld (room for [CLS] and [SEP]), got %lld",
                        (long long)extra, (long long)max_length);
    v2t_wp_scratch s = {0};
    idlist all = {flat, 0};
    v2t_status st = V2T_OK;
    char what[48];
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((i & 255) == 255)
            V2T_CHECK(st, v2t_poll_interrupt(), done);
        snprintf(what, sizeof what, "texts[%lld]", (long long)i);
        idlist one = {&s.ids, 0};
        V2T_CHECK(st, tokenize_into(wp, &s, texts[i], lens[i], what, &one), done);
        size_t keep = one.n;
        if (max_length > 0 && (int64_t)keep > max_length - extra)
            keep = (size_t)(max_length - extra);
        V2T_CHECK(st, ids_room(&all, keep + 2), done);
        int32_t *dst = (int32_t *)flat->data + all.n;
        if (add_special)
            *dst++ = wp->cls;
        if (keep) /* an empty text has no ids buffer yet: memcpy from NULL is undefined even for 0 bytes */
            memcpy(dst, s.ids.data, keep * sizeof(int32_t));
        dst += keep;
        if (add_special)
            *dst++ = wp->sep;
        all.n += keep + (size_t)extra;
        offsets[i + 1] = (int64_t)all.n;
    }
done:
    v2t_wp_scratch_release(&s);
    return st;
}
