/* Local edit search: see edit.h. */
#include "edit.h"

#include <string.h>

#include "../core/alloc.h"
#include "../core/interrupt.h"
#include "../ops/topk.h"
#include "select.h"

int64_t v2t_edit_max_proposals(int64_t n, int64_t top_k)
{
    /* n substitution positions and n + 1 insertion positions of top_k each, n deletions */
    return (2 * n + 1) * top_k + n;
}

/* Write a candidate row: start, tokens, </s> when has_eos, pad up to width. */
static int64_t emit(int32_t *out, int64_t width, int32_t start, const int32_t *tok, int64_t n, int has_eos,
                    int32_t pad, int32_t eos)
{
    int64_t k = 0;
    out[k++] = start;
    memcpy(out + k, tok, (size_t)n * sizeof(int32_t));
    k += n;
    if (has_eos)
        out[k++] = eos;
    for (int64_t t = k; t < width; t++)
        out[t] = pad;
    return k;
}

int64_t v2t_edit_propose(const int32_t *row, int64_t n, int has_eos, const float *logits, int64_t V, int64_t top_k,
                         int32_t pad, int32_t eos, int64_t width, int32_t *top, void *work, int32_t *out,
                         int64_t *out_len)
{
    const int64_t kk = top_k + 3 < V ? top_k + 3 : V;
    const int32_t *tok = row + 1;
    float vals[64 + 3];
    for (int64_t p = 0; p <= n; p++)
        v2t_topk(logits + p * V, V, kk, vals, top + p * kk, (v2t_topk_item *)work);
    int64_t m = 0;
    int32_t scratch[1024];
    for (int64_t p = 1; p <= n + 1; p++) {
        const int32_t *cand = top + (p - 1) * kk;
        if (p <= n) { /* substitutions */
            int64_t got = 0;
            for (int64_t j = 0; j < kk && got < top_k; j++) {
                const int32_t v = cand[j];
                if (v == pad || v == eos || v == tok[p - 1])
                    continue;
                memcpy(scratch, tok, (size_t)n * sizeof(int32_t));
                scratch[p - 1] = v;
                out_len[m] = emit(out + m * width, width, row[0], scratch, n, has_eos, pad, eos);
                m++, got++;
            }
        }
        if (1 + (n + 1) + (has_eos ? 1 : 0) <= width) { /* insertions before t_p */
            int64_t got = 0;
            for (int64_t j = 0; j < kk && got < top_k; j++) {
                const int32_t v = cand[j];
                if (v == pad || v == eos)
                    continue;
                memcpy(scratch, tok, (size_t)(p - 1) * sizeof(int32_t));
                scratch[p - 1] = v;
                memcpy(scratch + p, tok + p - 1, (size_t)(n - (p - 1)) * sizeof(int32_t));
                out_len[m] = emit(out + m * width, width, row[0], scratch, n + 1, has_eos, pad, eos);
                m++, got++;
            }
        }
        if (p <= n && n >= 2) { /* deletion of t_p */
            memcpy(scratch, tok, (size_t)(p - 1) * sizeof(int32_t));
            memcpy(scratch + p - 1, tok + p, (size_t)(n - p) * sizeof(int32_t));
            out_len[m] = emit(out + m * width, width, row[0], scratch, n - 1, has_eos, pad, eos);
            m++;
        }
    }
    return m;
}

static v2t_status reserve(v2t_buffer *b, int64_t count, size_t elem, const char *what)
{
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)(count > 0 ? count : 1), elem, &bytes));
    return v2t_buffer_reserve(b, bytes, what);
}

typedef struct edit_state {
    const v2t_inverter *inv;
    const v2t_corrector *cor;
    const v2t_t5_model *m;
    const v2t_embed_ops *embed;
    const v2t_edit_config *cfg;
    const float *targets;
    int64_t D, W, V;
    int32_t pad, eos;
    v2t_exec ex;
    v2t_t5_session *sess;
    v2t_buffer tgt, hidden, hemb, hids, enc_in, enc_mask, scratch, dec, logits, top, work, cand, cand_len, cand_emb,
        cand_cos, owner, count;
} edit_state;

/* tokens of a hypothesis row: n (without start and </s>) and whether it ends with </s> */
static int64_t content(const edit_state *S, const int32_t *row, int64_t len, int *has_eos)
{
    *has_eos = len >= 2 && row[len - 1] == S->eos;
    return len - 1 - (*has_eos ? 1 : 0);
}

/* The teacher-forced logits [cb, Lt, V] of the examples ex[0..cb) under the model. */
static v2t_status read_logits(edit_state *S, const int64_t *ex, int64_t cb, const int32_t *ids, const int64_t *len,
                              const float *emb, int64_t *Lt_out)
{
    const int64_t D = S->D, W = S->W, dm = S->m->cfg.d_model;
    int64_t Lt = 1;
    for (int64_t i = 0; i < cb; i++) {
        int eos;
        const int64_t n = content(S, ids + ex[i] * W, len[ex[i]], &eos);
        if (n + 1 > Lt)
            Lt = n + 1;
    }
    V2T_TRY(reserve(&S->tgt, cb * D, sizeof(float), "edit targets"));
    float *tgt = S->tgt.data;
    for (int64_t i = 0; i < cb; i++)
        memcpy(tgt + i * D, S->targets + ex[i] * D, (size_t)D * sizeof(float));
    if (S->cor) {
        /* hypothesis ids as the loop gives them to the corrector: rows cut to the longest */
        int64_t Lmax = 1;
        for (int64_t i = 0; i < cb; i++)
            Lmax = len[ex[i]] > Lmax ? len[ex[i]] : Lmax;
        const int64_t Ssrc = v2t_corrector_length(S->cor, Lmax);
        V2T_TRY(reserve(&S->hemb, cb * D, sizeof(float), "edit hypothesis embeddings"));
        V2T_TRY(reserve(&S->hids, cb * Lmax, sizeof(int32_t), "edit hypothesis ids"));
        V2T_TRY(reserve(&S->enc_in, cb * Ssrc * dm, sizeof(float), "edit corrector inputs"));
        V2T_TRY(reserve(&S->enc_mask, cb * Ssrc, sizeof(int32_t), "edit corrector mask"));
        float *hemb = S->hemb.data;
        int32_t *hids = S->hids.data;
        for (int64_t i = 0; i < cb; i++) {
            memcpy(hemb + i * D, emb + ex[i] * D, (size_t)D * sizeof(float));
            memcpy(hids + i * Lmax, ids + ex[i] * W, (size_t)Lmax * sizeof(int32_t));
        }
        V2T_TRY(v2t_corrector_inputs(S->cor, &S->ex, tgt, D, hemb, D, hids, Lmax, cb, Lmax, &S->scratch,
                                     S->enc_in.data, S->enc_mask.data));
        V2T_TRY(v2t_t5_session_encode_source(S->sess, NULL, S->enc_in.data, S->enc_mask.data, cb, Ssrc, Lt));
        V2T_TRY(v2t_corrector_set_copy(S->cor, S->sess, hids, Lmax, cb, Lmax));
    } else {
        const int64_t R = S->inv->num_repeat_tokens;
        V2T_TRY(reserve(&S->hidden, cb * D, sizeof(float), "edit transform hidden"));
        V2T_TRY(reserve(&S->enc_in, cb * R * dm, sizeof(float), "edit inverter inputs"));
        V2T_TRY(v2t_inverter_inputs(S->inv, &S->ex, tgt, cb, S->hidden.data, S->enc_in.data));
        V2T_TRY(v2t_t5_session_encode_source(S->sess, NULL, S->enc_in.data, NULL, cb, R, Lt));
    }
    V2T_TRY(reserve(&S->dec, cb * Lt, sizeof(int32_t), "edit decoder ids"));
    V2T_TRY(reserve(&S->logits, cb * Lt * S->V, sizeof(float), "edit logits"));
    int32_t *dec = S->dec.data;
    for (int64_t i = 0; i < cb; i++) {
        int eos;
        const int32_t *row = ids + ex[i] * W;
        const int64_t n = content(S, row, len[ex[i]], &eos);
        for (int64_t t = 0; t < Lt; t++)
            dec[i * Lt + t] = t <= n ? row[t] : S->pad;
    }
    V2T_TRY(v2t_t5_decoder_logits(S->sess, dec, Lt, S->logits.data));
    *Lt_out = Lt;
    return V2T_OK;
}

/* One edit round over ex[0..cb): proposals, embeddings, acceptance. improved[i] = 1 when
 * example ex[i] changed. */
static v2t_status edit_chunk(edit_state *S, const int64_t *ex, int64_t cb, int32_t *ids, int64_t *len, float *emb,
                             float *cos, int64_t *accepted, uint8_t *improved)
{
    const int64_t D = S->D, W = S->W, V = S->V, k = S->cfg->top_k, kk = k + 3 < V ? k + 3 : V;
    int64_t Lt;
    V2T_TRY(read_logits(S, ex, cb, ids, len, emb, &Lt));
    int64_t total = 0;
    for (int64_t i = 0; i < cb; i++) {
        int eos;
        total += v2t_edit_max_proposals(content(S, ids + ex[i] * W, len[ex[i]], &eos), k);
    }
    V2T_TRY(reserve(&S->cand, total * W, sizeof(int32_t), "edit proposals"));
    V2T_TRY(reserve(&S->cand_len, total, sizeof(int64_t), "edit proposal lengths"));
    V2T_TRY(reserve(&S->owner, total, sizeof(int64_t), "edit proposal owners"));
    V2T_TRY(reserve(&S->count, cb, sizeof(int64_t), "edit proposal counts"));
    V2T_TRY(reserve(&S->top, Lt * kk, sizeof(int32_t), "edit top-k"));
    V2T_TRY(reserve(&S->work, v2t_topk_work_items(V, kk) + 1, sizeof(v2t_topk_item), "edit top-k scratch"));
    int32_t *cand = S->cand.data;
    int64_t *clen = S->cand_len.data, *owner = S->owner.data, *count = S->count.data;
    int64_t m = 0, width = 1;
    for (int64_t i = 0; i < cb; i++) {
        int eos;
        const int32_t *row = ids + ex[i] * W;
        const int64_t n = content(S, row, len[ex[i]], &eos);
        const int64_t got = v2t_edit_propose(row, n, eos, (const float *)S->logits.data + i * Lt * V, V, k, S->pad,
                                             S->eos, W, S->top.data, S->work.data, cand + m * W, clen + m);
        for (int64_t j = 0; j < got; j++) {
            owner[m + j] = i;
            width = clen[m + j] > width ? clen[m + j] : width;
        }
        count[i] = got;
        m += got;
    }
    if (m == 0) {
        memset(improved, 0, (size_t)cb);
        return V2T_OK;
    }
    /* compact [m, width] for the embedder (rows are already padded to W) */
    if (width < W)
        for (int64_t r = 1; r < m; r++)
            memmove(cand + r * width, cand + r * W, (size_t)width * sizeof(int32_t));
    V2T_TRY(reserve(&S->cand_emb, m * D, sizeof(float), "edit proposal embeddings"));
    V2T_TRY(reserve(&S->cand_cos, m, sizeof(float), "edit proposal cosines"));
    float *cemb = S->cand_emb.data, *ccos = S->cand_cos.data;
    V2T_TRY(S->embed->embed(S->embed->ctx, cand, m, width, cemb));
    for (int64_t r = 0; r < m; r++)
        v2t_cosine_rows(cemb + r * D, D, S->targets + ex[owner[r]] * D, 0, 1, D, ccos + r);
    int64_t r0 = 0;
    for (int64_t i = 0; i < cb; i++) {
        const int64_t e = ex[i];
        int64_t best = -1;
        float top = cos[e];
        for (int64_t j = 0; j < count[i]; j++)
            if (ccos[r0 + j] > top || (isnan(top) && !isnan(ccos[r0 + j]))) {
                top = ccos[r0 + j];
                best = r0 + j;
            }
        improved[i] = best >= 0;
        if (best >= 0) {
            int32_t *dst = ids + e * W;
            memcpy(dst, cand + best * width, (size_t)clen[best] * sizeof(int32_t));
            for (int64_t t = clen[best]; t < W; t++)
                dst[t] = S->pad;
            len[e] = clen[best];
            memcpy(emb + e * D, cemb + best * D, (size_t)D * sizeof(float));
            cos[e] = ccos[best];
            if (accepted)
                accepted[e]++;
        }
        r0 += count[i];
    }
    return V2T_OK;
}

v2t_status v2t_edit_search(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_embed_ops *embed,
                           const v2t_edit_config *cfg, const float *targets, const int64_t *todo, int64_t n,
                           int32_t *ids, int64_t W, int64_t *len, float *emb, float *cos, int64_t *accepted)
{
    if (!embed || !embed->embed || !cfg || (!inv && !cor))
        return v2t_fail(V2T_ERR_VALUE, "edit search: model, embed ops and config must not be NULL");
    if (cfg->rounds < 0 || cfg->top_k < 1 || cfg->top_k > 64 || cfg->chunk < 1)
        return v2t_fail(V2T_ERR_VALUE, "edit search: expected rounds >= 0, top_k in 1..64, chunk >= 1; got %lld, %lld, %lld",
                        (long long)cfg->rounds, (long long)cfg->top_k, (long long)cfg->chunk);
    if (W > 1024)
        return v2t_fail(V2T_ERR_VALUE, "edit search: hypotheses of up to 1024 tokens, got width %lld", (long long)W);
    if (cfg->rounds == 0 || n == 0)
        return V2T_OK;
    edit_state S;
    memset(&S, 0, sizeof S);
    S.inv = inv;
    S.cor = cor;
    S.m = cor ? cor->t5 : inv->t5;
    S.embed = embed;
    S.cfg = cfg;
    S.targets = targets;
    S.D = cor ? cor->dim : inv->dim;
    S.W = W;
    S.V = S.m->cfg.vocab_size;
    S.pad = (int32_t)S.m->cfg.pad_token_id;
    S.eos = (int32_t)S.m->cfg.eos_token_id;
    int64_t *live = NULL;
    uint8_t *improved = NULL;
    v2t_status s;
    V2T_CHECK(s, v2t_exec_init(&S.ex), done);
    V2T_CHECK(s, v2t_t5_session_create(S.m, &S.sess), done);
    V2T_CHECK(s, v2t_alloc((void **)&live, (size_t)n * sizeof(int64_t), "edit examples"), done);
    V2T_CHECK(s, v2t_alloc((void **)&improved, (size_t)n, "edit flags"), done);
    memcpy(live, todo, (size_t)n * sizeof(int64_t));
    int64_t nlive = n;
    for (int64_t r = 0; r < cfg->rounds && nlive > 0; r++) {
        for (int64_t s0 = 0; s0 < nlive; s0 += cfg->chunk) {
            const int64_t cb = nlive - s0 < cfg->chunk ? nlive - s0 : cfg->chunk;
            V2T_CHECK(s, edit_chunk(&S, live + s0, cb, ids, len, emb, cos, accepted, improved + s0), done);
            V2T_CHECK(s, v2t_poll_interrupt(), done);
        }
        int64_t k = 0;
        for (int64_t i = 0; i < nlive; i++)
            if (improved[i])
                live[k++] = live[i];
        nlive = k;
    }
    s = V2T_OK;
done:
    v2t_free(live);
    v2t_free(improved);
    v2t_t5_session_free(S.sess);
    v2t_exec_release(&S.ex);
    v2t_buffer *bufs[] = {&S.tgt,   &S.hidden, &S.hemb, &S.hids, &S.enc_in,   &S.enc_mask,  &S.scratch, &S.dec, &S.logits,
                          &S.top,   &S.work,   &S.cand, &S.cand_len, &S.cand_emb, &S.cand_cos, &S.owner, &S.count};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        v2t_buffer_release(bufs[i]);
    return s;
}
