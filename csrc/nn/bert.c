/* BERT encoder: loading (prefix detection, fused QKV, packed weights) and the forward pass.
 * See bert.h. */
#include "bert.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/interrupt.h"
#include "../io/safetensors.h"
#include "../ops/attention.h"
#include "../ops/norm.h"

void v2t_bert_default_config(v2t_bert_config *c)
{
    c->vocab_size = 30522;
    c->hidden_size = 768;
    c->num_layers = 12;
    c->num_heads = 12;
    c->intermediate_size = 3072;
    c->max_position = 512;
    c->type_vocab_size = 2;
    c->layer_norm_eps = 1e-12f;
    c->hidden_act = V2T_ACT_GELU_ERF;
    c->dtype = V2T_DT_F32;
}

static v2t_status check_config(const v2t_bert_config *c)
{
#define POSITIVE(f)                                                                                           \
    if (c->f <= 0 || c->f > (1 << 24))                                                                        \
        return v2t_fail(V2T_ERR_VALUE, "bert config: " #f " must be in [1, 2^24], got %lld", (long long)c->f);
    POSITIVE(vocab_size)
    POSITIVE(hidden_size)
    POSITIVE(num_layers)
    POSITIVE(num_heads)
    POSITIVE(intermediate_size)
    POSITIVE(max_position)
    POSITIVE(type_vocab_size)
#undef POSITIVE
    if (c->hidden_size % c->num_heads)
        return v2t_fail(V2T_ERR_VALUE, "bert config: hidden_size %lld is not a multiple of num_attention_heads %lld",
                        (long long)c->hidden_size, (long long)c->num_heads);
    if (!(c->layer_norm_eps > 0.f) || !isfinite(c->layer_norm_eps))
        return v2t_fail(V2T_ERR_VALUE, "bert config: layer_norm_eps must be positive, got %g",
                        (double)c->layer_norm_eps);
    if (c->hidden_act != V2T_ACT_GELU_ERF && c->hidden_act != V2T_ACT_GELU_TANH && c->hidden_act != V2T_ACT_RELU)
        return v2t_fail(V2T_ERR_UNSUPPORTED, "bert config: unsupported hidden_act code %d", (int)c->hidden_act);
    return V2T_OK;
}

/* ---- loading ---- */

typedef struct loader {
    const v2t_st *st;
    const char *prefix; /* "" or "bert." */
    char name[V2T_MAX_NAME];
} loader;

static const char *full_name(loader *L, const char *fmt, long long layer)
{
    char local[V2T_MAX_NAME];
    snprintf(local, sizeof local, fmt, layer);
    snprintf(L->name, sizeof L->name, "%s%s", L->prefix, local);
    return L->name;
}

static v2t_status load(loader *L, const char *fmt, long long layer, int ndim, int64_t d0, int64_t d1, float **out)
{
    const int64_t shape[2] = {d0, d1};
    return v2t_st_load_f32(L->st, full_name(L, fmt, layer), ndim, shape, out);
}

/* LayerNorm parameters: "<p>.weight"/"<p>.bias", or the older "<p>.gamma"/"<p>.beta". */
static v2t_status load_ln(loader *L, const char *fmt, long long layer, int64_t D, float **w, float **b)
{
    char base[V2T_MAX_NAME], wn[V2T_MAX_NAME + 8], bn[V2T_MAX_NAME + 8];
    snprintf(base, sizeof base, fmt, layer);
    snprintf(wn, sizeof wn, "%s%s.weight", L->prefix, base);
    snprintf(bn, sizeof bn, "%s%s.bias", L->prefix, base);
    if (!v2t_st_find(L->st, wn)) {
        char gn[V2T_MAX_NAME + 8];
        snprintf(gn, sizeof gn, "%s%s.gamma", L->prefix, base);
        if (v2t_st_find(L->st, gn)) {
            snprintf(wn, sizeof wn, "%s", gn);
            snprintf(bn, sizeof bn, "%s%s.beta", L->prefix, base);
        }
    }
    const int64_t shape[1] = {D};
    V2T_TRY(v2t_st_load_f32(L->st, wn, 1, shape, w));
    return v2t_st_load_f32(L->st, bn, 1, shape, b);
}

static v2t_status load_linear(loader *L, const char *stem, long long layer, int64_t in, int64_t out, v2t_act act,
                              int accumulate, v2t_dtype dt, v2t_linear *lin)
{
    char wf[V2T_MAX_NAME], bf[V2T_MAX_NAME];
    snprintf(wf, sizeof wf, "%s.weight", stem);
    snprintf(bf, sizeof bf, "%s.bias", stem);
    float *w = NULL, *b = NULL;
    v2t_status st;
    V2T_CHECK(st, load(L, wf, layer, 2, out, in, &w), done);
    V2T_CHECK(st, load(L, bf, layer, 1, out, 0, &b), done);
    st = v2t_linear_init(lin, w, b, in, out, act, accumulate, dt);
done:
    v2t_free(w);
    v2t_free(b);
    return st;
}

/* Query, key and value stacked into one [3D, D] layer. */
static v2t_status load_qkv(loader *L, long long layer, int64_t D, v2t_dtype dt, v2t_linear *lin)
{
    static const char *const parts[3] = {"query", "key", "value"};
    float *w = NULL, *b = NULL, *pw = NULL, *pb = NULL;
    v2t_status st;
    V2T_CHECK(st, v2t_alloc((void **)&w, (size_t)(3 * D * D) * sizeof(float), "fused QKV weights"), done);
    V2T_CHECK(st, v2t_alloc((void **)&b, (size_t)(3 * D) * sizeof(float), "fused QKV bias"), done);
    for (int k = 0; k < 3; k++) {
        char wf[96], bf[96];
        snprintf(wf, sizeof wf, "encoder.layer.%%lld.attention.self.%s.weight", parts[k]);
        snprintf(bf, sizeof bf, "encoder.layer.%%lld.attention.self.%s.bias", parts[k]);
        V2T_CHECK(st, load(L, wf, layer, 2, D, D, &pw), done);
        V2T_CHECK(st, load(L, bf, layer, 1, D, 0, &pb), done);
        memcpy(w + k * D * D, pw, (size_t)(D * D) * sizeof(float));
        memcpy(b + k * D, pb, (size_t)D * sizeof(float));
        v2t_free(pw);
        v2t_free(pb);
        pw = pb = NULL;
    }
    st = v2t_linear_init(lin, w, b, D, 3 * D, V2T_ACT_NONE, 0, dt);
done:
    v2t_free(w);
    v2t_free(b);
    v2t_free(pw);
    v2t_free(pb);
    return st;
}

static v2t_status load_all(v2t_bert *m, const v2t_st *st)
{
    const v2t_bert_config *c = &m->cfg;
    const int64_t D = c->hidden_size, I = c->intermediate_size;
    loader L = {st, "", {0}};
    if (!v2t_st_find(st, "embeddings.word_embeddings.weight")) {
        if (v2t_st_find(st, "bert.embeddings.word_embeddings.weight"))
            L.prefix = "bert.";
        else
            return v2t_fail(V2T_ERR_MISSING,
                            "%s: no tensor named 'embeddings.word_embeddings.weight' (nor "
                            "'bert.embeddings.word_embeddings.weight'): not a BERT checkpoint?",
                            st->path);
    }
    V2T_TRY(load(&L, "embeddings.word_embeddings.weight", 0, 2, c->vocab_size, D, &m->word));
    V2T_TRY(load(&L, "embeddings.position_embeddings.weight", 0, 2, c->max_position, D, &m->pos));
    V2T_TRY(load(&L, "embeddings.token_type_embeddings.weight", 0, 2, c->type_vocab_size, D, &m->type));
    V2T_TRY(load_ln(&L, "embeddings.LayerNorm", 0, D, &m->emb_ln_w, &m->emb_ln_b));
    V2T_TRY(v2t_calloc((void **)&m->layers, (size_t)c->num_layers * sizeof(v2t_bert_layer), "BERT layers"));
    for (int64_t l = 0; l < c->num_layers; l++) {
        v2t_bert_layer *ly = &m->layers[l];
        V2T_TRY(load_qkv(&L, l, D, c->dtype, &ly->qkv));
        V2T_TRY(load_linear(&L, "encoder.layer.%lld.attention.output.dense", l, D, D, V2T_ACT_NONE, 1, c->dtype,
                            &ly->attn_out));
        V2T_TRY(load_ln(&L, "encoder.layer.%lld.attention.output.LayerNorm", l, D, &ly->ln1_w, &ly->ln1_b));
        V2T_TRY(load_linear(&L, "encoder.layer.%lld.intermediate.dense", l, D, I, c->hidden_act, 0, c->dtype,
                            &ly->ffn_in));
        V2T_TRY(load_linear(&L, "encoder.layer.%lld.output.dense", l, I, D, V2T_ACT_NONE, 1, c->dtype,
                            &ly->ffn_out));
        V2T_TRY(load_ln(&L, "encoder.layer.%lld.output.LayerNorm", l, D, &ly->ln2_w, &ly->ln2_b));
    }
    return V2T_OK;
}

v2t_status v2t_bert_load(const char *path, const v2t_bert_config *cfg, v2t_bert **out)
{
    *out = NULL;
    V2T_TRY(check_config(cfg));
    v2t_st *st = NULL;
    V2T_TRY(v2t_st_open(path, &st));
    v2t_bert *m = NULL;
    v2t_status s = v2t_calloc((void **)&m, sizeof *m, "BERT model");
    if (s == V2T_OK) {
        m->cfg = *cfg;
        s = load_all(m, st);
    }
    v2t_st_close(st);
    if (s != V2T_OK) {
        v2t_bert_free(m);
        return s;
    }
    *out = m;
    return V2T_OK;
}

void v2t_bert_free(v2t_bert *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (int64_t l = 0; l < m->cfg.num_layers; l++) {
            v2t_bert_layer *ly = &m->layers[l];
            v2t_linear_release(&ly->qkv);
            v2t_linear_release(&ly->attn_out);
            v2t_linear_release(&ly->ffn_in);
            v2t_linear_release(&ly->ffn_out);
            v2t_free(ly->ln1_w);
            v2t_free(ly->ln1_b);
            v2t_free(ly->ln2_w);
            v2t_free(ly->ln2_b);
        }
        v2t_free(m->layers);
    }
    v2t_free(m->word);
    v2t_free(m->pos);
    v2t_free(m->type);
    v2t_free(m->emb_ln_w);
    v2t_free(m->emb_ln_b);
    v2t_free(m);
}

/* ---- per-call state ---- */

v2t_status v2t_bert_state_init(v2t_bert_state *s)
{
    memset(s, 0, sizeof *s);
    V2T_TRY(v2t_exec_init(&s->ex));
    s->ready = 1;
    return V2T_OK;
}

void v2t_bert_state_release(v2t_bert_state *s)
{
    if (s->ready)
        v2t_exec_release(&s->ex);
    v2t_buffer_release(&s->hidden);
    v2t_buffer_release(&s->qkv);
    v2t_buffer_release(&s->ctx);
    v2t_buffer_release(&s->ffn);
    v2t_buffer_release(&s->attn);
    s->ready = 0;
}

/* ---- forward ---- */

static v2t_status check_inputs(const v2t_bert *m, const int32_t *ids, const int32_t *type_ids, const int32_t *mask,
                               int64_t B, int64_t T)
{
    const v2t_bert_config *c = &m->cfg;
    if (B < 0 || T < 0)
        return v2t_fail(V2T_ERR_VALUE, "input_ids: expected a non-negative shape, got [%lld, %lld]", (long long)B,
                        (long long)T);
    if (T > c->max_position)
        return v2t_fail(V2T_ERR_VALUE,
                        "input_ids: sequence length %lld exceeds the model's max_position_embeddings %lld",
                        (long long)T, (long long)c->max_position);
    for (int64_t i = 0; i < B * T; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return v2t_fail(V2T_ERR_VALUE, "input_ids[%lld, %lld] = %d is outside the vocabulary [0, %lld)",
                            (long long)(i / T), (long long)(i % T), ids[i], (long long)c->vocab_size);
        if (type_ids && (type_ids[i] < 0 || type_ids[i] >= c->type_vocab_size))
            return v2t_fail(V2T_ERR_VALUE, "token_type_ids[%lld, %lld] = %d is outside [0, %lld)",
                            (long long)(i / T), (long long)(i % T), type_ids[i], (long long)c->type_vocab_size);
        if (mask && mask[i] != 0 && mask[i] != 1)
            return v2t_fail(V2T_ERR_VALUE, "attention_mask[%lld, %lld] = %d: expected 0 or 1", (long long)(i / T),
                            (long long)(i % T), mask[i]);
    }
    return V2T_OK;
}

static v2t_status reserve(v2t_buffer *b, int64_t rows, int64_t cols, const char *what)
{
    size_t n;
    V2T_TRY(v2t_mul_size((size_t)rows, (size_t)cols, &n));
    V2T_TRY(v2t_mul_size(n, sizeof(float), &n));
    return v2t_buffer_reserve(b, n ? n : sizeof(float), what);
}

/* The linear layers run over the rows in slabs of at most BERT_SLAB rows, the last slab rounded
 * up to a multiple of BERT_ROW_ALIGN (the activation buffers have room for those extra rows,
 * which are computed and ignored). oneDNN keeps one primitive per row count, so this bounds
 * the row counts a model ever sees to BERT_SLAB / BERT_ROW_ALIGN, however many batch shapes
 * an embedder meets. */
#define BERT_SLAB 256
#define BERT_ROW_ALIGN 16

static int64_t padded_rows(int64_t M) { return (M + BERT_ROW_ALIGN - 1) / BERT_ROW_ALIGN * BERT_ROW_ALIGN; }

// x: [M, in] (row stride ldx) -> y: [M, out] (ldy); rows up to padded_rows(M) must exist
static v2t_status linear_rows(const v2t_linear *l, v2t_exec *ex, const float *x, int64_t ldx, int64_t M, float *y,
                              int64_t ldy)
{
    for (int64_t r = 0; r < M; r += BERT_SLAB) {
        const int64_t n = M - r < BERT_SLAB ? padded_rows(M - r) : BERT_SLAB;
        V2T_TRY(v2t_linear_forward(l, ex, x + r * ldx, ldx, n, y + r * ldy, ldy));
    }
    return V2T_OK;
}

// ids, type_ids, mask: [B, T] -> s->hidden: [B, T, D] (plus padding rows)
static v2t_status encode(const v2t_bert *m, v2t_bert_state *s, const int32_t *ids, const int32_t *type_ids,
                         const int32_t *mask, int64_t B, int64_t T)
{
    const v2t_bert_config *c = &m->cfg;
    const int64_t D = c->hidden_size, I = c->intermediate_size, M = B * T, Mp = padded_rows(M);
    if (!s->ready)
        return v2t_fail(V2T_ERR_VALUE, "bert state: not initialised");
    V2T_TRY(check_inputs(m, ids, type_ids, mask, B, T));
    V2T_TRY(reserve(&s->hidden, Mp, D, "BERT hidden states"));
    if (M == 0)
        return V2T_OK;
    V2T_TRY(reserve(&s->qkv, Mp, 3 * D, "BERT query/key/value"));
    V2T_TRY(reserve(&s->ctx, Mp, D, "BERT attention output"));
    V2T_TRY(reserve(&s->ffn, Mp, I, "BERT feed-forward activations"));
    float *h = s->hidden.data, *qkv = s->qkv.data, *ctx = s->ctx.data, *ffn = s->ffn.data;
    /* padding rows start finite; attention never writes ctx's */
    memset(h + M * D, 0, (size_t)((Mp - M) * D) * sizeof(float));
    memset(ctx + M * D, 0, (size_t)((Mp - M) * D) * sizeof(float));

    /* embeddings: (word + token type) + position, then LayerNorm */
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) {
            const int64_t i = b * T + t;
            const float *we = m->word + (int64_t)ids[i] * D;
            const float *te = m->type + (type_ids ? (int64_t)type_ids[i] : 0) * D;
            const float *pe = m->pos + t * D;
            float *row = h + i * D;
            for (int64_t d = 0; d < D; d++)
                row[d] = (we[d] + te[d]) + pe[d];
        }
    }
    v2t_layernorm(h, D, M, D, m->emb_ln_w, m->emb_ln_b, c->layer_norm_eps, h, D);

    const int64_t H = c->num_heads, hd = D / H;
    v2t_attn_args a = {
        .batch = B, .heads = H, .head_dim = hd, .tq = T, .tk = T, .kv_group = 1,
        .scale = 1.f / sqrtf((float)hd), .causal = 0,
        .q = qkv, .q_bs = T * 3 * D, .q_rs = 3 * D,
        .k = qkv + D, .k_bs = T * 3 * D, .k_rs = 3 * D,
        .v = qkv + 2 * D, .v_bs = T * 3 * D, .v_rs = 3 * D,
        .pos_bias = NULL, .mask = mask, .mask_bs = T,
        .out = ctx, .o_bs = T * D, .o_rs = D,
    };
    for (int64_t l = 0; l < c->num_layers; l++) {
        const v2t_bert_layer *ly = &m->layers[l];
        V2T_TRY(v2t_poll_interrupt());
        V2T_TRY(linear_rows(&ly->qkv, &s->ex, h, D, M, qkv, 3 * D));
        V2T_TRY(v2t_attention(&a, &s->attn));
        V2T_TRY(linear_rows(&ly->attn_out, &s->ex, ctx, D, M, h, D)); /* h += ... */
        v2t_layernorm(h, D, M, D, ly->ln1_w, ly->ln1_b, c->layer_norm_eps, h, D);
        V2T_TRY(linear_rows(&ly->ffn_in, &s->ex, h, D, M, ffn, I));
        V2T_TRY(linear_rows(&ly->ffn_out, &s->ex, ffn, I, M, h, D)); /* h += ... */
        v2t_layernorm(h, D, M, D, ly->ln2_w, ly->ln2_b, c->layer_norm_eps, h, D);
    }
    return V2T_OK;
}

v2t_status v2t_bert_forward(const v2t_bert *m, v2t_bert_state *s, const int32_t *ids, const int32_t *type_ids,
                            const int32_t *mask, int64_t B, int64_t T, float *out)
{
    V2T_TRY(encode(m, s, ids, type_ids, mask, B, T));
    if (B * T > 0)
        memcpy(out, s->hidden.data, (size_t)(B * T * m->cfg.hidden_size) * sizeof(float));
    return V2T_OK;
}

v2t_status v2t_bert_embed(const v2t_bert *m, v2t_bert_state *s, const int32_t *ids, const int32_t *type_ids,
                          const int32_t *mask, int64_t B, int64_t T, v2t_pooling pooling, int normalize,
                          float *out)
{
    const int64_t D = m->cfg.hidden_size;
    if (pooling != V2T_POOL_MEAN && pooling != V2T_POOL_CLS)
        return v2t_fail(V2T_ERR_VALUE, "pooling: expected mean (0) or cls (1), got %d", (int)pooling);
    V2T_TRY(encode(m, s, ids, type_ids, mask, B, T));
    v2t_pool(pooling, s->hidden.data, mask, B, T, D, out);
    if (normalize)
        v2t_l2_normalize(out, B, D);
    return V2T_OK;
}
