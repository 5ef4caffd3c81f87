/* T5 decoder: source setup (cross-attention keys/values once per example), step-wise decoding
 * over a preallocated self-attention cache, and teacher forcing through the same pass. */
#include <stdlib.h>
#include <string.h>

#include "../ops/attention.h"
#include "../ops/norm.h"
#include "t5_internal.h"

static v2t_status need_decoder(const v2t_t5_model *m)
{
    if (m->cfg.encoder_only)
        return v2t_fail(V2T_ERR_VALUE, "T5 model was loaded encoder-only: it has no decoder");
    return V2T_OK;
}

/* Rows [n, W2] of one layer's fused (keys | values) -> a cache block: keys transposed per head
 * ([inner, stride], columns at0..at0+n-1), values [stride, inner] (rows at0..). */
static void scatter_kv(const float *src, int64_t src_rs, int64_t n, int64_t inner, int64_t stride, int64_t at0,
                       float *block)
{
    enum { TB = 64 }; /* rows per block: their cache lines stay in L1 while the keys are transposed */
    float *kt = block, *v = block + inner * stride;
    for (int64_t t0 = 0; t0 < n; t0 += TB) {
        const int64_t t1 = t0 + TB < n ? t0 + TB : n;
        for (int64_t f = 0; f < inner; f++) {
            float *dst = kt + f * stride + at0;
            for (int64_t t = t0; t < t1; t++)
                dst[t] = src[t * src_rs + f];
        }
    }
    for (int64_t t = 0; t < n; t++)
        memcpy(v + (at0 + t) * inner, src + t * src_rs + inner, (size_t)inner * sizeof(float));
}

// enc: [B, T, D]; mask: [B, T] or NULL -> cross_kv: [L, B, 2*inner*T], enc_mask: [B, T]
v2t_status v2t_t5_session_set_source(v2t_t5_session *s, const float *enc, const int32_t *mask, int64_t B, int64_t T,
                                     int64_t max_steps)
{
    const v2t_t5_model *m = s->m;
    const v2t_t5_config *c = &m->cfg;
    V2T_TRY(need_decoder(m));
    s->has_source = 0;
    s->has_copy = 0;
    s->started = 0;
    if (B <= 0 || T <= 0 || T > c->max_length)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder source: expected batch >= 1 and 1 <= length <= %lld, got [%lld, %lld]",
                        (long long)c->max_length, (long long)B, (long long)T);
    if (max_steps <= 0 || max_steps > c->max_length)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: max_steps must be in [1, %lld], got %lld",
                        (long long)c->max_length, (long long)max_steps);
    const int64_t L = m->decoder.num_layers, inner = m->inner, W2 = 2 * inner, KVW = L * W2, N = B * T;
    /* the fused projection runs a few examples at a time (about 2048 rows) into cross_raw */
    const int64_t chunk = T >= 2048 ? 1 : (2048 / T < B ? 2048 / T : B);
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)N, (size_t)KVW * sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&s->cross_kv, bytes, "T5 cross-attention keys/values"));
    V2T_TRY(v2t_mul_size((size_t)(chunk * T), (size_t)KVW * sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&s->cross_raw, bytes, "T5 cross-attention projection"));
    V2T_TRY(v2t_buffer_reserve(&s->enc_mask, (size_t)N * sizeof(int32_t), "T5 encoder mask"));
    int32_t *mk = s->enc_mask.data;
    for (int64_t n = 0; n < N; n++)
        mk[n] = mask ? (mask[n] != 0) : 1;
    float *raw = s->cross_raw.data, *ckv = s->cross_kv.data;
    for (int64_t e0 = 0; e0 < B; e0 += chunk) {
        const int64_t ne = B - e0 < chunk ? B - e0 : chunk;
        V2T_TRY(v2t_linear_forward(&m->decoder.cross_kv, &s->ex, enc + e0 * T * c->d_model, c->d_model, ne * T, raw,
                                   KVW));
        for (int64_t l = 0; l < L; l++)
            for (int64_t e = 0; e < ne; e++)
                scatter_kv(raw + e * T * KVW + l * W2, KVW, T, inner, T, 0, ckv + (l * B + e0 + e) * W2 * T);
    }
    s->batch = B;
    s->src_len = T;
    s->max_steps = max_steps;
    s->has_source = 1;
    return V2T_OK;
}

// ids: [B, H] (row stride ld) -> copy_ids: [B, max_steps]
v2t_status v2t_t5_session_set_copy(v2t_t5_session *s, const int32_t *ids, int64_t ld, int64_t B, int64_t H,
                                   const float *w, float b)
{
    if (!s->has_source)
        return v2t_fail(V2T_ERR_VALUE, "T5 copy gate: no source set for this session");
    if (B != s->batch || H < 0 || ld < H || !w)
        return v2t_fail(V2T_ERR_VALUE, "T5 copy gate: expected [%lld, H] ids with H >= 0, row stride >= H and "
                        "weights, got [%lld, %lld] with stride %lld", (long long)s->batch, (long long)B, (long long)H,
                        (long long)ld);
    const int64_t M = s->max_steps, V = s->m->cfg.vocab_size, n = H < M ? H : M;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)(B * M), sizeof(int32_t), &bytes));
    V2T_TRY(v2t_buffer_reserve(&s->copy_ids, bytes, "T5 copy gate ids"));
    int32_t *dst = s->copy_ids.data;
    memset(dst, 0, bytes);
    for (int64_t e = 0; e < B; e++)
        for (int64_t t = 0; t < n; t++) {
            const int32_t id = ids[e * ld + t];
            if (id < 0 || id >= V)
                return v2t_fail(V2T_ERR_VALUE, "T5 copy gate: expected token ids in [0, %lld), got %d at [%lld, %lld]",
                                (long long)V, (int)id, (long long)e, (long long)t);
            dst[e * M + t] = id;
        }
    s->copy_w = w;
    s->copy_b = b;
    s->has_copy = 1;
    return V2T_OK;
}

// ids: [B, T] or embeds: [B, T, D]; mask: [B, T] or NULL
v2t_status v2t_t5_session_encode_source(v2t_t5_session *s, const int32_t *ids, const float *embeds,
                                        const int32_t *mask, int64_t B, int64_t T, int64_t max_steps)
{
    V2T_TRY(need_decoder(s->m));
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)(B > 0 ? B : 0) * (size_t)(T > 0 ? T : 0), (size_t)s->m->cfg.d_model * sizeof(float),
                         &bytes));
    V2T_TRY(v2t_buffer_reserve(&s->enc_states, bytes, "T5 encoder states"));
    V2T_TRY(v2t_t5_encode(s, ids, embeds, mask, B, T, s->enc_states.data));
    return v2t_t5_session_set_source(s, s->enc_states.data, mask, B, T, max_steps);
}

v2t_status v2t_t5_start(void *session, int64_t batch, int64_t beams)
{
    v2t_t5_session *s = session;
    const v2t_t5_model *m = s->m;
    const v2t_t5_config *c = &m->cfg;
    s->started = 0;
    if (!s->has_source)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: no source set for this session");
    if (batch != s->batch || beams < 1)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder start: expected batch %lld and beams >= 1, got batch %lld beams %lld",
                        (long long)s->batch, (long long)batch, (long long)beams);
    const int64_t rows = batch * beams, M = s->max_steps, L = m->decoder.num_layers, W2 = 2 * m->inner;
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)(L * rows), (size_t)(M * W2) * sizeof(float), &bytes));
    V2T_TRY(v2t_buffer_reserve(&s->self_kv, bytes, "T5 self-attention cache"));
    /* the saved rows, then one flag byte per beam for "is a source" and one for "is overwritten";
     * before them, reorder_cache builds the new [beams, beams] ancestry table in the same buffer,
     * which is the larger of the two when beams are many and steps few */
    size_t saved, table;
    V2T_TRY(v2t_mul_size((size_t)beams, (size_t)(M * W2) * sizeof(float), &saved));
    V2T_TRY(v2t_mul_size((size_t)beams, (size_t)beams * sizeof(int64_t), &table));
    saved += 2 * (size_t)beams;
    V2T_TRY(v2t_buffer_reserve(&s->reorder, saved > table ? saved : table, "T5 beam reorder buffer"));
    V2T_TRY(v2t_buffer_reserve(&s->dec_bias, (size_t)(c->num_heads * (2 * M - 1)) * sizeof(float),
                               "T5 decoder position bias"));
    const int64_t longest = M > s->src_len ? M : s->src_len;
    V2T_TRY(v2t_buffer_reserve(&s->scores, (size_t)(longest + 16) * sizeof(float), "attention scores"));
    V2T_TRY(v2t_t5_reserve_activations(s, rows));
    V2T_TRY(v2t_buffer_reserve(&s->runs, (size_t)(2 * batch) * sizeof(int64_t), "T5 active examples"));
    V2T_TRY(v2t_buffer_reserve(&s->row_map, (size_t)rows * sizeof(int32_t), "T5 active rows"));
    V2T_TRY(v2t_buffer_reserve(&s->ids_c, (size_t)rows * sizeof(int32_t), "T5 active tokens"));
    V2T_TRY(v2t_buffer_reserve(&s->share, (size_t)(rows * beams) * sizeof(int64_t), "T5 beam ancestry"));
    memset(s->share.data, 0, (size_t)(rows * beams) * sizeof(int64_t));
    v2t_t5_bias_table(m, &m->decoder, 0, M, s->dec_bias.data);
    s->beams = beams;
    s->rows = rows;
    s->pos = 0;
    const char *keep = getenv("VEC2TEXT_C_KEEP_FINISHED");
    s->drop_finished = !(keep && keep[0] && keep[0] != '0');
    const char *own = getenv("VEC2TEXT_C_OWN_CACHE_ROWS");
    s->share_prefix = !(own && own[0] && own[0] != '0');
    s->n_active = batch;
    s->n_runs = 1;
    int64_t *runs = s->runs.data;
    runs[0] = 0;
    runs[1] = batch;
    s->started = 1;
    return V2T_OK;
}

// done: [batch]
v2t_status v2t_t5_retire(void *session, const unsigned char *done)
{
    v2t_t5_session *s = session;
    if (!s->started)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder retire: start() was not called");
    if (!s->drop_finished)
        return V2T_OK;
    int64_t *runs = s->runs.data;
    int32_t *map = s->row_map.data;
    int64_t n_runs = 0, active = 0, rc = 0;
    for (int64_t e = 0; e < s->batch; e++) {
        if (done[e])
            continue;
        if (n_runs > 0 && runs[2 * (n_runs - 1)] + runs[2 * (n_runs - 1) + 1] == e) {
            runs[2 * (n_runs - 1) + 1]++;
        } else {
            runs[2 * n_runs] = e;
            runs[2 * n_runs + 1] = 1;
            n_runs++;
        }
        for (int64_t k = 0; k < s->beams; k++)
            map[rc++] = (int32_t)(e * s->beams + k);
        active++;
    }
    if (active == 0) /* nothing left to compute: keep the last set (the search is ending) */
        return V2T_OK;
    s->n_runs = n_runs;
    s->n_active = active;
    return V2T_OK;
}

/* Row r of the cache continues row parents[r] (same example). Per example whose beams changed,
 * the rows that are parents of a changed row are saved to the reorder buffer (their first `pos`
 * positions: keys [inner, pos], values [pos, inner]), then copied into the changed rows, layer
 * by layer. */
// parents: [rows]; self_kv: [L, rows, 2*inner*max_steps]
static v2t_status reorder_cache(v2t_t5_session *s, const int32_t *parents)
{
    const int64_t beams = s->beams, L = s->m->decoder.num_layers, inner = s->m->inner, M = s->max_steps;
    const int64_t block = 2 * inner * M, pos = s->pos, saved = 2 * inner * pos;
    float *tmp = s->reorder.data;
    unsigned char *need = (unsigned char *)(tmp + beams * block), *changed = need + beams;
    for (int64_t e = 0; e < s->batch; e++) {
        const int32_t *p = parents + e * beams;
        for (int64_t k = 0; k < beams; k++) {
            if (p[k] < e * beams || p[k] >= (e + 1) * beams)
                return v2t_fail(V2T_ERR_VALUE,
                                "T5 decoder step: parents[%lld] = %d is not a row of example %lld (rows %lld..%lld)",
                                (long long)(e * beams + k), (int)p[k], (long long)e, (long long)(e * beams),
                                (long long)((e + 1) * beams - 1));
        }
        /* ancestry: rows with one parent share all `pos` copied positions, others what their
         * parents shared (the new table is built in the reorder buffer, unused until below) */
        int64_t *sh = (int64_t *)s->share.data + e * beams * beams, *nsh = (int64_t *)tmp;
        for (int64_t r = 0; r < beams; r++)
            for (int64_t q = 0; q < beams; q++) {
                const int64_t pr = p[r] - e * beams, pq = p[q] - e * beams;
                nsh[r * beams + q] = pr == pq ? pos : sh[pr * beams + pq];
            }
        memcpy(sh, nsh, (size_t)(beams * beams) * sizeof(int64_t));
        if (pos == 0)
            continue;
        memset(need, 0, 2 * (size_t)beams);
        int any = 0;
        for (int64_t k = 0; k < beams; k++) {
            const int64_t src = p[k] - e * beams;
            if (src != k) {
                need[src] = 1;
                changed[k] = 1;
                any = 1;
            }
        }
        if (!any)
            continue;
        for (int64_t l = 0; l < L; l++) {
            float *rows = (float *)s->self_kv.data + (l * s->rows + e * beams) * block;
            for (int64_t k = 0; k < beams; k++) {
                if (!need[k])
                    continue;
                const float *kt = rows + k * block, *v = kt + inner * M;
                float *t = tmp + k * saved;
                for (int64_t f = 0; f < inner; f++)
                    memcpy(t + f * pos, kt + f * M, (size_t)pos * sizeof(float));
                memcpy(t + inner * pos, v, (size_t)(pos * inner) * sizeof(float));
            }
            for (int64_t k = 0; k < beams; k++) {
                if (!changed[k])
                    continue;
                float *kt = rows + k * block, *v = kt + inner * M;
                const float *t = tmp + (p[k] - e * beams) * saved;
                for (int64_t f = 0; f < inner; f++)
                    memcpy(kt + f * M, t + f * pos, (size_t)pos * sizeof(float));
                memcpy(v, t + inner * pos, (size_t)(pos * inner) * sizeof(float));
            }
        }
    }
    return V2T_OK;
}

/* The decoder over `tq` new positions of every row: ids [rows, tq] at positions pos..pos+tq-1;
 * logits [rows, tq, vocab]. */
// ids: [rows, tq]; logits: [rows, tq, V]; self_kv gains positions pos..pos+tq-1
static v2t_status decoder_pass(v2t_t5_session *s, const int32_t *ids, int64_t tq, float *logits)
{
    const v2t_t5_model *m = s->m;
    const v2t_t5_config *c = &m->cfg;
    const int64_t D = c->d_model, H = c->num_heads, inner = m->inner, W2 = 2 * inner;
    const int64_t all_rows = s->rows, M = s->max_steps, pos = s->pos, tk = pos + tq, beams = s->beams;
    const int64_t T = s->src_len, V = c->vocab_size, hd = c->d_kv, block = W2 * M, cblock = W2 * T;
    if (tk > M)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: %lld positions requested but only %lld were reserved",
                        (long long)tk, (long long)M);
    /* only the rows of active examples are computed ("computed rows", in example order); the
     * caches keep the full-batch layout, so attention runs once per run of active examples */
    const int compact = s->n_active < s->batch;
    if (compact && tq != 1)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: a pass over %lld positions after examples were retired",
                        (long long)tq);
    const int64_t rows = compact ? s->n_active * beams : all_rows, N = rows * tq;
    const int64_t *runs = s->runs.data;
    const int32_t *map = s->row_map.data;
    if (compact) {
        int32_t *ic = s->ids_c.data;
        for (int64_t r = 0; r < rows; r++)
            ic[r] = ids[map[r]];
        ids = ic;
    }
    V2T_TRY(v2t_t5_reserve_activations(s, N));
    float *h = s->h.data, *xn = s->xn.data, *qkv = s->qkv.data, *attn = s->attn.data;
    V2T_TRY(v2t_t5_embed(m, ids, N, h, "decoder_input_ids"));
    for (int64_t l = 0; l < m->decoder.num_layers; l++) {
        const v2t_t5_block *b = &m->decoder.blocks[l];
        float *cache = (float *)s->self_kv.data + l * all_rows * block;
        /* causal self-attention over the cache */
        v2t_rmsnorm(h, D, N, D, b->ln_self, c->layer_norm_epsilon, xn, D);
        V2T_TRY(v2t_linear_forward(&b->qkv, &s->ex, xn, D, N, qkv, 3 * inner));
        for (int64_t r = 0; r < rows; r++) {
            const int64_t full = compact ? map[r] : r;
            scatter_kv(qkv + r * tq * 3 * inner + inner, 3 * inner, tq, inner, M, pos, cache + full * block);
        }
        for (int64_t k = 0, rc = 0; k < s->n_runs; rc += runs[2 * k + 1] * beams, k++) {
            const int64_t rf = runs[2 * k] * beams, nr = runs[2 * k + 1] * beams;
            v2t_attn_args sa = {
                .batch = nr, .heads = H, .head_dim = c->d_kv, .tq = tq, .tk = tk, .kv_group = 1, .scale = 1.f,
                .causal = 1,
                .q = qkv + rc * tq * 3 * inner, .q_bs = tq * 3 * inner, .q_rs = 3 * inner,
                .k = cache + rf * block, .k_bs = block, .k_rs = 1, .k_hs = hd * M, .k_ds = M,
                .v = cache + rf * block + inner * M, .v_bs = block, .v_rs = inner,
                /* query row i sits at position pos+i: it reads tab[h, (M-1) - pos - i + j] (offset j - pos - i) */
                .pos_bias = (const float *)s->dec_bias.data + (M - 1) - pos, .pb_hs = 2 * M - 1, .pb_rs = -1,
                .mask = NULL, .mask_bs = 0,
                .out = attn + rc * tq * inner, .o_bs = tq * inner, .o_rs = inner,
                /* row r's shared positions: share[r, 0] (the table is [rows, beams]) */
                .share_len = beams > 1 && s->share_prefix ? (const int64_t *)s->share.data + rf * beams : NULL,
                .share_rs = beams, .share_group = beams,
            };
            V2T_TRY(v2t_attention(&sa, &s->scores));
        }
        V2T_TRY(v2t_linear_forward(&b->o, &s->ex, attn, inner, N, h, D));
        /* cross-attention: the beams of an example share its keys/values */
        v2t_rmsnorm(h, D, N, D, b->ln_cross, c->layer_norm_epsilon, xn, D);
        V2T_TRY(v2t_linear_forward(&b->cross_q, &s->ex, xn, D, N, qkv, inner));
        const float *ckv = (const float *)s->cross_kv.data + l * s->batch * cblock;
        for (int64_t k = 0, rc = 0; k < s->n_runs; rc += runs[2 * k + 1] * beams, k++) {
            const int64_t e0 = runs[2 * k], nr = runs[2 * k + 1] * beams;
            v2t_attn_args ca = {
                .batch = nr, .heads = H, .head_dim = c->d_kv, .tq = tq, .tk = T, .kv_group = beams, .scale = 1.f,
                .causal = 0,
                .q = qkv + rc * tq * inner, .q_bs = tq * inner, .q_rs = inner,
                .k = ckv + e0 * cblock, .k_bs = cblock, .k_rs = 1, .k_hs = hd * T, .k_ds = T,
                .v = ckv + e0 * cblock + inner * T, .v_bs = cblock, .v_rs = inner,
                .pos_bias = NULL,
                .mask = (const int32_t *)s->enc_mask.data + e0 * T, .mask_bs = T,
                .out = attn + rc * tq * inner, .o_bs = tq * inner, .o_rs = inner,
            };
            V2T_TRY(v2t_attention(&ca, &s->scores));
        }
        V2T_TRY(v2t_linear_forward(&b->cross_o, &s->ex, attn, inner, N, h, D));
        V2T_TRY(v2t_t5_ffn(s, b, h, N));
    }
    v2t_rmsnorm(h, D, N, D, m->logits_ln, c->layer_norm_epsilon, xn, D);
    V2T_TRY(v2t_linear_forward(&m->lm_head, &s->ex, xn, D, N, logits, V));
    if (s->has_copy) /* the copy gate: each position's hypothesis token gains w . x + b */
        for (int64_t r = 0; r < rows; r++) {
            const int32_t *cid = (const int32_t *)s->copy_ids.data + ((compact ? map[r] : r) / beams) * M;
            for (int64_t i = 0; i < tq; i++) {
                const int32_t id = cid[pos + i];
                if (id) {
                    const float *x = xn + (r * tq + i) * D;
                    float g = s->copy_b;
                    for (int64_t d = 0; d < D; d++)
                        g += s->copy_w[d] * x[d];
                    logits[(r * tq + i) * V + id] += g;
                }
            }
        }
    /* computed row r belongs at full row map[r] >= r: move from the last, so nothing unread is overwritten */
    if (compact)
        for (int64_t r = rows - 1; r >= 0; r--)
            if (map[r] != r)
                memcpy(logits + (int64_t)map[r] * V, logits + r * V, (size_t)V * sizeof(float));
    s->pos = tk;
    return V2T_OK;
}

// tokens, parents: [rows]; logits: [rows, V]
v2t_status v2t_t5_step(void *session, const int32_t *tokens, const int32_t *parents, int64_t rows, float *logits)
{
    v2t_t5_session *s = session;
    if (!s->started)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder step: start() was not called");
    if (rows != s->rows)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder step: expected %lld rows (batch x beams), got %lld",
                        (long long)s->rows, (long long)rows);
    if (parents)
        V2T_TRY(reorder_cache(s, parents));
    return decoder_pass(s, tokens, 1, logits);
}

// dec_ids: [B, L]; logits: [B, L, V]
v2t_status v2t_t5_decoder_logits(v2t_t5_session *s, const int32_t *dec_ids, int64_t L, float *logits)
{
    if (!s->has_source)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: no source set for this session");
    if (L <= 0 || L > s->max_steps)
        return v2t_fail(V2T_ERR_VALUE, "T5 decoder: decoder length must be in [1, %lld], got %lld",
                        (long long)s->max_steps, (long long)L);
    V2T_TRY(v2t_t5_start(s, s->batch, 1));
    return decoder_pass(s, dec_ids, L, logits);
}

v2t_decoder_ops v2t_t5_decoder_ops(const v2t_t5_model *m)
{
    return (v2t_decoder_ops){
        .start = v2t_t5_start, .step = v2t_t5_step, .vocab = m->cfg.vocab_size, .retire = v2t_t5_retire};
}
