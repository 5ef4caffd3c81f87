/* Loading a T5 checkpoint into prepacked oneDNN layers. See t5.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/alloc.h"
#include "t5.h"

typedef struct loader {
    const v2t_st *st;
    const char *prefix;
    const v2t_t5_config *cfg;
    v2t_buffer tmp; /* unpacked weights on their way into a v2t_linear */
} loader;

/* Find "<prefix><name>" and copy it as f32 into dst after checking its shape. */
static v2t_status read_named(loader *ld, const char *name, int ndim, const int64_t *shape, float *dst)
{
    char full[V2T_MAX_NAME + 256];
    snprintf(full, sizeof full, "%s%s", ld->prefix, name);
    const v2t_st_tensor *t = v2t_st_find(ld->st, full);
    if (!t)
        return v2t_fail(V2T_ERR_MISSING, "%s: checkpoint is missing tensor '%s', which the T5 config needs",
                        ld->st->path, full);
    V2T_TRY(v2t_st_read_f32(ld->st, t, ndim, shape, dst));
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return v2t_st_check_finite(ld->st, t, dst, n);
}

/* read_named with a printf-style name. */
static v2t_status read_fmt(loader *ld, int ndim, const int64_t *shape, float *dst, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static v2t_status read_fmt(loader *ld, int ndim, const int64_t *shape, float *dst, const char *fmt, ...)
{
    char name[V2T_MAX_NAME + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return read_named(ld, name, ndim, shape, dst);
}

static v2t_status tmp_floats(loader *ld, int64_t n, float **out)
{
    V2T_TRY(v2t_buffer_reserve(&ld->tmp, (size_t)n * sizeof(float), "unpacked T5 weights"));
    *out = ld->tmp.data;
    return V2T_OK;
}

/* A linear layer made of `parts` row blocks of [rows, in], each read from "<base>.<suffix>.weight". */
static v2t_status load_linear(loader *ld, v2t_linear *l, const char *base, const char *const *suffixes, int parts,
                              int64_t rows, int64_t in, v2t_act act, int accumulate)
{
    float *w;
    V2T_TRY(tmp_floats(ld, parts * rows * in, &w));
    const int64_t shape[2] = {rows, in};
    for (int p = 0; p < parts; p++)
        V2T_TRY(read_fmt(ld, 2, shape, w + p * rows * in, "%s.%s.weight", base, suffixes[p]));
    return v2t_linear_init(l, w, NULL, in, parts * rows, act, accumulate, ld->cfg->dtype);
}

static v2t_status load_block(loader *ld, const char *stack, int64_t i, int decoder, v2t_t5_block *b, float **pool)
{
    const v2t_t5_config *c = ld->cfg;
    const int64_t D = c->d_model, inner = c->num_heads * c->d_kv, F = c->d_ff;
    const int64_t dshape[1] = {D};
    char base[256];
    static const char *const qkv[3] = {"q", "k", "v"}, *const o[1] = {"o"}, *const q[1] = {"q"};
    static const char *const wi[1] = {"wi"}, *const wi_gated[2] = {"wi_0", "wi_1"}, *const wo[1] = {"wo"};

    float *ln = *pool;
    V2T_TRY(read_fmt(ld, 1, dshape, ln, "%s.block.%lld.layer.0.layer_norm.weight", stack, (long long)i));
    b->ln_self = ln;
    ln += D;
    snprintf(base, sizeof base, "%s.block.%lld.layer.0.SelfAttention", stack, (long long)i);
    V2T_TRY(load_linear(ld, &b->qkv, base, qkv, 3, inner, D, V2T_ACT_NONE, 0));
    V2T_TRY(load_linear(ld, &b->o, base, o, 1, D, inner, V2T_ACT_NONE, 1));

    int ff_layer = 1;
    if (decoder) {
        V2T_TRY(read_fmt(ld, 1, dshape, ln, "%s.block.%lld.layer.1.layer_norm.weight", stack, (long long)i));
        b->ln_cross = ln;
        ln += D;
        snprintf(base, sizeof base, "%s.block.%lld.layer.1.EncDecAttention", stack, (long long)i);
        V2T_TRY(load_linear(ld, &b->cross_q, base, q, 1, inner, D, V2T_ACT_NONE, 0));
        V2T_TRY(load_linear(ld, &b->cross_o, base, o, 1, D, inner, V2T_ACT_NONE, 1));
        ff_layer = 2;
    }
    V2T_TRY(read_fmt(ld, 1, dshape, ln, "%s.block.%lld.layer.%d.layer_norm.weight", stack, (long long)i, ff_layer));
    b->ln_ff = ln;
    ln += D;
    snprintf(base, sizeof base, "%s.block.%lld.layer.%d.DenseReluDense", stack, (long long)i, ff_layer);
    if (c->gated)
        V2T_TRY(load_linear(ld, &b->wi, base, wi_gated, 2, F, D, V2T_ACT_NONE, 0));
    else
        V2T_TRY(load_linear(ld, &b->wi, base, wi, 1, F, D, c->act, 0));
    V2T_TRY(load_linear(ld, &b->wo, base, wo, 1, D, F, V2T_ACT_NONE, 1));
    *pool = ln;
    return V2T_OK;
}

/* Cross-attention K and V of every decoder block stacked into one [L * 2 * inner, D] matmul:
 * rows (l, 0, :) = block l's k, rows (l, 1, :) = its v. */
static v2t_status load_cross_kv(loader *ld, v2t_t5_stack *s)
{
    const v2t_t5_config *c = ld->cfg;
    const int64_t D = c->d_model, inner = c->num_heads * c->d_kv, L = s->num_layers;
    const int64_t shape[2] = {inner, D};
    float *w;
    V2T_TRY(tmp_floats(ld, L * 2 * inner * D, &w));
    for (int64_t l = 0; l < L; l++) {
        V2T_TRY(read_fmt(ld, 2, shape, w + (2 * l) * inner * D, "decoder.block.%lld.layer.1.EncDecAttention.k.weight",
                         (long long)l));
        V2T_TRY(read_fmt(ld, 2, shape, w + (2 * l + 1) * inner * D,
                         "decoder.block.%lld.layer.1.EncDecAttention.v.weight", (long long)l));
    }
    return v2t_linear_init(&s->cross_kv, w, NULL, D, L * 2 * inner, V2T_ACT_NONE, 0, c->dtype);
}

static v2t_status load_stack(loader *ld, const char *name, int64_t L, int decoder, v2t_t5_stack *s, float **pool)
{
    const v2t_t5_config *c = ld->cfg;
    s->num_layers = L;
    V2T_TRY(v2t_calloc((void **)&s->blocks, (size_t)L * sizeof *s->blocks, "T5 blocks"));
    const int64_t bshape[2] = {c->relative_attention_num_buckets, c->num_heads};
    V2T_TRY(read_fmt(ld, 2, bshape, *pool, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", name));
    s->rel_bias = *pool;
    *pool += bshape[0] * bshape[1];
    for (int64_t i = 0; i < L; i++)
        V2T_TRY(load_block(ld, name, i, decoder, &s->blocks[i], pool));
    const int64_t dshape[1] = {c->d_model};
    V2T_TRY(read_fmt(ld, 1, dshape, *pool, "%s.final_layer_norm.weight", name));
    s->final_ln = *pool;
    *pool += c->d_model;
    if (decoder)
        V2T_TRY(load_cross_kv(ld, s));
    return V2T_OK;
}

/* The shared embedding: `shared.weight`, or one of its tied copies when a save kept only that. */
static v2t_status load_embedding(loader *ld, float *dst)
{
    const v2t_t5_config *c = ld->cfg;
    const int64_t shape[2] = {c->vocab_size, c->d_model};
    static const char *const names[3] = {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"};
    char full[V2T_MAX_NAME + 256];
    for (int i = 0; i < 3; i++) {
        snprintf(full, sizeof full, "%s%s", ld->prefix, names[i]);
        if (v2t_st_find(ld->st, full))
            return read_named(ld, names[i], 2, shape, dst);
    }
    return v2t_fail(V2T_ERR_MISSING, "%s: checkpoint is missing tensor '%sshared.weight' (the token embedding)",
                    ld->st->path, ld->prefix);
}

static void release_stack(v2t_t5_stack *s)
{
    if (s->blocks) {
        for (int64_t i = 0; i < s->num_layers; i++) {
            v2t_t5_block *b = &s->blocks[i];
            v2t_linear_release(&b->qkv);
            v2t_linear_release(&b->o);
            v2t_linear_release(&b->cross_q);
            v2t_linear_release(&b->cross_o);
            v2t_linear_release(&b->wi);
            v2t_linear_release(&b->wo);
        }
        v2t_free(s->blocks);
    }
    v2t_linear_release(&s->cross_kv);
    memset(s, 0, sizeof *s);
}

void v2t_t5_free(v2t_t5_model *m)
{
    if (!m)
        return;
    release_stack(&m->encoder);
    release_stack(&m->decoder);
    v2t_linear_release(&m->lm_head);
    v2t_free(m->params);
    v2t_free(m);
}

static v2t_status load_all(loader *ld, v2t_t5_model *m)
{
    const v2t_t5_config *c = ld->cfg;
    const int64_t D = c->d_model, H = c->num_heads, NB = c->relative_attention_num_buckets;
    const int64_t Le = c->num_layers, Ld = c->encoder_only ? 0 : c->num_decoder_layers;
    /* params: embedding, encoder (bias table, 2 norms a block, final norm),
     * decoder (bias table, 3 norms a block, final norm, logits norm) */
    int64_t n = c->vocab_size * D + NB * H + Le * 2 * D + D;
    if (Ld)
        n += NB * H + Ld * 3 * D + 2 * D;
    V2T_TRY(v2t_alloc((void **)&m->params, (size_t)n * sizeof(float), "T5 parameters"));
    float *pool = m->params;
    V2T_TRY(load_embedding(ld, pool));
    m->embed = pool;
    pool += c->vocab_size * D;
    V2T_TRY(load_stack(ld, "encoder", Le, 0, &m->encoder, &pool));
    if (!Ld)
        return V2T_OK;
    V2T_TRY(load_stack(ld, "decoder", Ld, 1, &m->decoder, &pool));
    /* Fold the tied-embedding rescale into a copy of the final norm weight used for logits. */
    const float scale = c->tie_word_embeddings ? (float)pow((double)D, -0.5) : 1.f;
    for (int64_t d = 0; d < D; d++)
        pool[d] = m->decoder.final_ln[d] * scale;
    m->logits_ln = pool;
    pool += D;
    if (c->tie_word_embeddings)
        return v2t_linear_init(&m->lm_head, m->embed, NULL, D, c->vocab_size, V2T_ACT_NONE, 0, c->dtype);
    float *w;
    V2T_TRY(tmp_floats(ld, c->vocab_size * D, &w));
    const int64_t shape[2] = {c->vocab_size, D};
    V2T_TRY(read_named(ld, "lm_head.weight", 2, shape, w));
    return v2t_linear_init(&m->lm_head, w, NULL, D, c->vocab_size, V2T_ACT_NONE, 0, c->dtype);
}

v2t_status v2t_t5_load(const v2t_st *st, const char *prefix, const v2t_t5_config *cfg, v2t_t5_model **out)
{
    *out = NULL;
    V2T_TRY(v2t_t5_config_check(cfg));
    if (!prefix)
        prefix = "";
    if (strlen(prefix) > 200)
        return v2t_fail(V2T_ERR_VALUE, "T5 load: tensor name prefix is longer than 200 characters");
    v2t_t5_model *m;
    V2T_TRY(v2t_calloc((void **)&m, sizeof *m, "T5 model"));
    m->cfg = *cfg;
    m->inner = cfg->num_heads * cfg->d_kv;
    loader ld = {.st = st, .prefix = prefix, .cfg = &m->cfg};
    v2t_status s = load_all(&ld, m);
    v2t_buffer_release(&ld.tmp);
    if (s != V2T_OK) {
        v2t_t5_free(m);
        return s;
    }
    *out = m;
    return V2T_OK;
}
