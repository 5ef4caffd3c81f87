/* The correction loop: see loop.h for the semantics it reproduces. */
#include "loop.h"

#include <string.h>
#include <time.h>

#include "../core/alloc.h"
#include "../core/interrupt.h"
#include "../decode/decode.h"
#include "edit.h"
#include "select.h"

v2t_loop_config v2t_loop_defaults(void)
{
    v2t_loop_config c = {
        .num_steps = -1,
        .sequence_beam_width = 0,
        .max_length = 128,
        .hypothesis_max_length = 32,
        .keep_best = 0,
        .stop_at_cosine = NAN,
        .embed_outputs = 0,
        .candidates = 0,
        .edit_rounds = 0,
        .edit_top_k = 4,
        .chunk = 0,
        .memory_budget = (size_t)2 << 30,
    };
    return c;
}

/* Hypotheses of every example: `beams` rows each, example-major. */
typedef struct hyps {
    int64_t beams;
    int32_t *ids; /* [N * b, W], pad after each row */
    int64_t *len; /* [N * b] */
    float *emb;   /* [N * b, D] */
    float *cos;   /* [N * b] */
} hyps;

typedef struct loop {
    const v2t_inverter *inv;
    const v2t_corrector *cor;
    const v2t_embed_ops *embed;
    const v2t_loop_observer *obs;
    const v2t_loop_config *cfg;
    const float *targets; /* [N, D] */
    int64_t N, D, W, b, nc, steps, chunk; /* nc: candidates per hypothesis and round */
    int keep_best;                        /* cfg->keep_best, or search */
    int32_t pad;
    v2t_exec ex;
    v2t_t5_session *inv_sess, *cor_sess;
    hyps cur, next;
    uint8_t *active;    /* [N] */
    int64_t *todo;      /* [N] indices of active examples */
    float *best_scores; /* [N] */
    int32_t *kb_ids;    /* keep_best: [N, W] */
    int64_t *kb_len;    /* [N] */
    float *kb_cos;      /* [N] */
    float *kb_emb;      /* [N, D] */
    int32_t *out_ids;   /* [N, out_w] */
    int64_t out_w;
    int64_t *out_len;
    float *out_cos;
    int64_t done, total; /* progress in example-rounds */
    /* per-chunk scratch, grown as needed */
    v2t_buffer tgt, hemb, hids, enc_in, enc_mask, gen_ids, gen_len, cand_ids, cand_emb, cand_cos, pick, hidden,
        corr_scratch;
} loop;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Charge the time since *t to one phase and restart the clock. */
enum { PH_TRANSFORMS, PH_ENCODER, PH_DECODING, PH_EMBEDDING, PH_SELECTION };

static void charge(loop *L, double *t, int phase)
{
    const double t1 = now(), dt = t1 - *t;
    v2t_loop_timings *tm = L->cfg->timings;
    *t = t1;
    if (!tm)
        return;
    switch (phase) {
    case PH_TRANSFORMS: tm->transforms += dt; break;
    case PH_ENCODER: tm->encoder += dt; break;
    case PH_DECODING: tm->decoding += dt; break;
    case PH_EMBEDDING: tm->embedding += dt; break;
    default: tm->selection += dt; break;
    }
}

static v2t_status reserve(v2t_buffer *b, int64_t count, size_t elem, const char *what)
{
    size_t bytes;
    V2T_TRY(v2t_mul_size((size_t)(count > 0 ? count : 1), elem, &bytes));
    return v2t_buffer_reserve(b, bytes, what);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

double v2t_loop_bytes_per_example(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_loop_config *cfg)
{
    const v2t_t5_model *m = (cfg->num_steps >= 0 && cor) ? cor->t5 : inv->t5;
    const int64_t b = cfg->num_steps >= 0 && cfg->sequence_beam_width > 1 ? cfg->sequence_beam_width : 1;
    const int64_t nc = cfg->num_steps >= 0 && cfg->candidates > b ? cfg->candidates : b;
    const int64_t T = max64(cfg->max_length, cfg->hypothesis_max_length);
    const int64_t layers = m->decoder.num_layers, inner = m->inner, dm = m->cfg.d_model;
    const int64_t src = (cor ? 4 + 3 * cor->num_repeat_tokens : inv->num_repeat_tokens) + T;
    /* decoder rows: self-attention cache, logits; hypothesis rows: encoder activations and
     * cross-attention keys/values */
    const double dec_row = 4.0 * ((double)layers * T * 2 * inner + 2.0 * m->cfg.vocab_size + 2.0 * T);
    const double src_row = 4.0 * (double)src * ((double)layers * 2 * inner + 4.0 * dm + m->cfg.d_ff + 3.0 * inner);
    return (double)(b * nc) * dec_row + (double)b * src_row;
}

int64_t v2t_loop_chunk(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_loop_config *cfg, int64_t batch)
{
    if (batch < 1)
        return 1;
    int64_t chunk = cfg->chunk;
    if (chunk <= 0) {
        double fit = (double)cfg->memory_budget / v2t_loop_bytes_per_example(inv, cor, cfg);
        chunk = fit < 1 ? 1 : fit > 512 ? 512 : (int64_t)fit;
    }
    if (chunk >= batch)
        return batch;
    const int64_t n = (batch + chunk - 1) / chunk; /* balanced chunks */
    return (batch + n - 1) / n;
}

static v2t_status progress(loop *L, int64_t units)
{
    L->done += units;
    if (L->obs && L->obs->progress)
        V2T_TRY(L->obs->progress(L->obs->ctx, L->done, L->total));
    return v2t_poll_interrupt();
}

static v2t_status report(loop *L, int64_t round, int have_scores)
{
    if (!L->obs || !L->obs->round)
        return V2T_OK;
    v2t_loop_round r = {
        .round = round,
        .steps = L->steps,
        .batch = L->N,
        .beams = L->cur.beams,
        .width = L->W,
        .ids = L->cur.ids,
        .lengths = L->cur.len,
        .embeddings = L->cur.emb,
        .cosines = L->cur.cos,
        .best_scores = have_scores ? L->best_scores : NULL,
        .active = L->active,
    };
    if (L->steps == 0 && !L->cfg->embed_outputs) {
        r.embeddings = NULL;
        r.cosines = NULL;
    }
    return L->obs->round(L->obs->ctx, &r);
}

/* Re-embed rows [rows, width] of ids and score them against the targets of their examples:
 * row r belongs to example ex[r / per_example]. */
static v2t_status embed_and_score(loop *L, const int32_t *ids, int64_t rows, int64_t width, const int64_t *ex,
                                  int64_t per_example, float *emb, float *cos)
{
    double t = now();
    V2T_TRY(L->embed->embed(L->embed->ctx, ids, rows, width, emb));
    charge(L, &t, PH_EMBEDDING);
    for (int64_t r = 0; r < rows; r++)
        v2t_cosine_rows(emb + r * L->D, L->D, L->targets + ex[r / per_example] * L->D, 0, 1, L->D, cos + r);
    charge(L, &t, PH_SELECTION);
    return V2T_OK;
}

/* Copy a generated row (width gw, length n) into a hypothesis row of width W. */
static void put_row(loop *L, int32_t *dst, const int32_t *src, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(int32_t));
    for (int64_t t = n; t < L->W; t++)
        dst[t] = L->pad;
}

static void keep_best_update(loop *L, int64_t e, const int32_t *ids, int64_t n, const float *emb, float cos)
{
    if (!L->keep_best || !(cos > L->kb_cos[e]))
        return;
    L->kb_cos[e] = cos;
    L->kb_len[e] = n;
    put_row(L, L->kb_ids + e * L->W, ids, n);
    memcpy(L->kb_emb + e * L->D, emb, (size_t)L->D * sizeof(float));
}

static v2t_generate_config generate_config(const v2t_t5_model *m, int64_t max_length, int64_t beams)
{
    v2t_generate_config g = v2t_generate_defaults();
    g.max_length = max_length;
    g.num_beams = beams;
    g.num_return_sequences = beams;
    g.length_penalty = 1.0;
    g.early_stopping = V2T_EARLY_STOP_FALSE;
    g.decoder_start_id = m->cfg.decoder_start_token_id;
    g.pad_id = m->cfg.pad_token_id;
    g.eos_id = m->cfg.eos_token_id;
    return g;
}

/* Round 0: the inverter's greedy hypothesis for the examples ex[0..cb). */
static v2t_status inverter_chunk(loop *L, const int64_t *ex, int64_t cb, int64_t max_len, int need_embed)
{
    const v2t_inverter *inv = L->inv;
    const int64_t D = L->D, R = inv->num_repeat_tokens, dm = inv->t5->cfg.d_model;
    V2T_TRY(reserve(&L->tgt, cb * D, sizeof(float), "loop targets"));
    V2T_TRY(reserve(&L->hidden, cb * D, sizeof(float), "embedding transform hidden"));
    V2T_TRY(reserve(&L->enc_in, cb * R * dm, sizeof(float), "inverter encoder inputs"));
    V2T_TRY(reserve(&L->gen_ids, cb * max_len, sizeof(int32_t), "generated ids"));
    V2T_TRY(reserve(&L->gen_len, cb, sizeof(int64_t), "generated lengths"));
    float *tgt = L->tgt.data;
    double t = now();
    for (int64_t i = 0; i < cb; i++)
        memcpy(tgt + i * D, L->targets + ex[i] * D, (size_t)D * sizeof(float));
    V2T_TRY(v2t_inverter_inputs(inv, &L->ex, tgt, cb, L->hidden.data, L->enc_in.data));
    charge(L, &t, PH_TRANSFORMS);
    V2T_TRY(v2t_t5_session_encode_source(L->inv_sess, NULL, L->enc_in.data, NULL, cb, R, max_len));
    charge(L, &t, PH_ENCODER);
    const v2t_decoder_ops ops = v2t_t5_decoder_ops(inv->t5);
    const v2t_generate_config g = generate_config(inv->t5, max_len, 1);
    int32_t *gid = L->gen_ids.data;
    int64_t *glen = L->gen_len.data;
    V2T_TRY(v2t_generate(&ops, L->inv_sess, cb, &g, gid, glen, NULL));
    charge(L, &t, PH_DECODING);
    int64_t width = 1;
    for (int64_t i = 0; i < cb; i++) {
        put_row(L, L->cur.ids + ex[i] * L->W, gid + i * max_len, glen[i]);
        L->cur.len[ex[i]] = glen[i];
        width = max64(width, glen[i]);
    }
    if (!need_embed)
        return V2T_OK;
    /* compact [cb, width] copy for the embedder, results scattered to the examples' rows */
    V2T_TRY(reserve(&L->cand_ids, cb * width, sizeof(int32_t), "hypothesis ids"));
    V2T_TRY(reserve(&L->cand_emb, cb * D, sizeof(float), "hypothesis embeddings"));
    V2T_TRY(reserve(&L->cand_cos, cb, sizeof(float), "hypothesis cosines"));
    int32_t *cid = L->cand_ids.data;
    for (int64_t i = 0; i < cb; i++)
        memcpy(cid + i * width, L->cur.ids + ex[i] * L->W, (size_t)width * sizeof(int32_t));
    float *cemb = L->cand_emb.data, *ccos = L->cand_cos.data;
    V2T_TRY(embed_and_score(L, cid, cb, width, ex, 1, cemb, ccos));
    for (int64_t i = 0; i < cb; i++) {
        memcpy(L->cur.emb + ex[i] * D, cemb + i * D, (size_t)D * sizeof(float));
        L->cur.cos[ex[i]] = ccos[i];
    }
    return V2T_OK;
}

/* One correction round for the examples ex[0..cb): cur -> next (next.beams rows each). */
static v2t_status corrector_chunk(loop *L, const int64_t *ex, int64_t cb, int last)
{
    const v2t_corrector *cor = L->cor;
    const v2t_t5_model *m = cor->t5;
    const int64_t D = L->D, W = L->W, b = L->b, nc = L->nc, bc = L->cur.beams, nb = L->next.beams;
    const int64_t rows_h = cb * bc, rows_c = rows_h * nc, T = L->cfg->max_length, dm = m->cfg.d_model;
    int64_t Lh = 1;
    for (int64_t i = 0; i < cb; i++)
        for (int64_t j = 0; j < bc; j++)
            Lh = max64(Lh, L->cur.len[ex[i] * bc + j]);
    const int64_t S = v2t_corrector_length(cor, Lh);
    V2T_TRY(reserve(&L->tgt, rows_h * D, sizeof(float), "loop targets"));
    V2T_TRY(reserve(&L->hemb, rows_h * D, sizeof(float), "hypothesis embeddings"));
    V2T_TRY(reserve(&L->hids, rows_h * Lh, sizeof(int32_t), "hypothesis ids"));
    V2T_TRY(reserve(&L->enc_in, rows_h * S * dm, sizeof(float), "corrector encoder inputs"));
    V2T_TRY(reserve(&L->enc_mask, rows_h * S, sizeof(int32_t), "corrector encoder mask"));
    V2T_TRY(reserve(&L->gen_ids, rows_c * T, sizeof(int32_t), "generated ids"));
    V2T_TRY(reserve(&L->gen_len, rows_c, sizeof(int64_t), "generated lengths"));
    V2T_TRY(reserve(&L->cand_emb, rows_c * D, sizeof(float), "candidate embeddings"));
    V2T_TRY(reserve(&L->cand_cos, rows_c, sizeof(float), "candidate cosines"));
    V2T_TRY(reserve(&L->pick, cb * b, sizeof(int64_t), "selected candidates"));
    float *tgt = L->tgt.data, *hemb = L->hemb.data;
    int32_t *hids = L->hids.data;
    double t = now();
    for (int64_t i = 0; i < cb; i++)
        for (int64_t j = 0; j < bc; j++) {
            const int64_t r = i * bc + j, src = ex[i] * bc + j;
            memcpy(tgt + r * D, L->targets + ex[i] * D, (size_t)D * sizeof(float));
            memcpy(hemb + r * D, L->cur.emb + src * D, (size_t)D * sizeof(float));
            memcpy(hids + r * Lh, L->cur.ids + src * W, (size_t)Lh * sizeof(int32_t));
        }
    V2T_TRY(v2t_corrector_inputs(cor, &L->ex, tgt, D, hemb, D, hids, Lh, rows_h, Lh, &L->corr_scratch, L->enc_in.data,
                                 L->enc_mask.data));
    charge(L, &t, PH_TRANSFORMS);
    V2T_TRY(v2t_t5_session_encode_source(L->cor_sess, NULL, L->enc_in.data, L->enc_mask.data, rows_h, S, T));
    V2T_TRY(v2t_corrector_set_copy(cor, L->cor_sess, hids, Lh, rows_h, Lh));
    charge(L, &t, PH_ENCODER);
    const v2t_decoder_ops ops = v2t_t5_decoder_ops(m);
    const v2t_generate_config g = generate_config(m, T, nc);
    int32_t *gid = L->gen_ids.data;
    int64_t *glen = L->gen_len.data;
    V2T_TRY(v2t_generate(&ops, L->cor_sess, rows_h, &g, gid, glen, NULL));
    charge(L, &t, PH_DECODING);

    /* candidates, trimmed to the longest: [rows_c, wc] */
    int64_t wc = 1;
    for (int64_t r = 0; r < rows_c; r++)
        wc = max64(wc, glen[r]);
    V2T_TRY(reserve(&L->cand_ids, rows_c * wc, sizeof(int32_t), "candidate ids"));
    int32_t *cid = L->cand_ids.data;
    for (int64_t r = 0; r < rows_c; r++)
        memcpy(cid + r * wc, gid + r * T, (size_t)wc * sizeof(int32_t));
    float *cemb = L->cand_emb.data, *ccos = L->cand_cos.data;
    const int64_t per = bc * nc; /* candidates per example */
    charge(L, &t, PH_SELECTION);
    V2T_TRY(embed_and_score(L, cid, rows_c, wc, ex, per, cemb, ccos));
    t = now();

    int64_t *pick = L->pick.data;
    for (int64_t i = 0; i < cb; i++) {
        const int64_t e = ex[i], c0 = i * per;
        float top = ccos[c0];
        for (int64_t c = 1; c < per; c++)
            if (ccos[c0 + c] > top || isnan(ccos[c0 + c]))
                top = ccos[c0 + c];
        L->best_scores[e] = top;
        for (int64_t c = 0; c < per; c++)
            keep_best_update(L, e, cid + (c0 + c) * wc, glen[c0 + c], cemb + (c0 + c) * D, ccos[c0 + c]);
        if (per == 1)
            pick[i * b] = 0;
        else if (last || nb == 1)
            v2t_select_best(ccos + c0, 1, per, pick + i * b);
        else {
            int64_t short_examples = 0;
            V2T_TRY(v2t_select_distinct_topk(ccos + c0, cid + c0 * wc, 1, per, wc, b, pick + i * b, &short_examples));
        }
        for (int64_t k = 0; k < nb; k++) {
            const int64_t c = c0 + pick[i * b + k], dst = e * nb + k;
            put_row(L, L->next.ids + dst * W, gid + c * T, glen[c]);
            L->next.len[dst] = glen[c];
            memcpy(L->next.emb + dst * D, cemb + c * D, (size_t)D * sizeof(float));
            L->next.cos[dst] = ccos[c];
        }
    }
    charge(L, &t, PH_SELECTION);
    return V2T_OK;
}

static void finish_example(loop *L, int64_t e)
{
    /* the example's current best hypothesis is its row 0 (the single or first-ranked row) */
    const int64_t src = e * L->cur.beams;
    L->active[e] = 0;
    const int32_t *ids = L->cur.ids + src * L->W;
    int64_t n = L->cur.len[src];
    float cos = L->cur.cos[src];
    if (L->keep_best && (L->steps > 0 || L->cfg->edit_rounds > 0)) {
        ids = L->kb_ids + e * L->W;
        n = L->kb_len[e];
        cos = L->kb_cos[e];
    }
    int32_t *dst = L->out_ids + e * L->out_w;
    memcpy(dst, ids, (size_t)n * sizeof(int32_t));
    for (int64_t t = n; t < L->out_w; t++)
        dst[t] = L->pad;
    L->out_len[e] = n;
    if (L->out_cos)
        L->out_cos[e] = (L->steps > 0 || L->cfg->embed_outputs || L->cfg->edit_rounds > 0) ? cos : NAN;
}

/* Examples whose best hypothesis reached stop_at_cosine leave the loop. */
static v2t_status stop_reached(loop *L, int64_t rounds_left)
{
    const float thr = L->cfg->stop_at_cosine;
    if (isnan(thr))
        return V2T_OK;
    int64_t stopped = 0;
    for (int64_t e = 0; e < L->N; e++)
        if (L->active[e] && L->cur.cos[e * L->cur.beams] >= thr) {
            finish_example(L, e);
            stopped++;
        }
    return stopped && rounds_left ? progress(L, stopped * rounds_left) : V2T_OK;
}

static int64_t active_list(loop *L)
{
    int64_t n = 0;
    for (int64_t e = 0; e < L->N; e++)
        if (L->active[e])
            L->todo[n++] = e;
    return n;
}

static v2t_status check(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_embed_ops *embed,
                        const v2t_loop_config *cfg, int64_t batch, int64_t out_width)
{
    if (!inv || !embed || !embed->embed || !cfg)
        return v2t_fail(V2T_ERR_VALUE, "invert: inverter, embed ops and config must not be NULL");
    if (batch < 1)
        return v2t_fail(V2T_ERR_VALUE, "embeddings: expected at least one embedding, got %lld", (long long)batch);
    if (cfg->sequence_beam_width < 0 || cfg->sequence_beam_width > 64)
        return v2t_fail(V2T_ERR_VALUE, "sequence_beam_width: expected 0..64, got %lld",
                        (long long)cfg->sequence_beam_width);
    if (cfg->candidates < 0 || cfg->candidates > 64)
        return v2t_fail(V2T_ERR_VALUE, "candidates: expected 0..64, got %lld", (long long)cfg->candidates);
    if (cfg->edit_rounds < 0 || cfg->edit_rounds > 10000)
        return v2t_fail(V2T_ERR_VALUE, "edit_rounds: expected 0..10000, got %lld", (long long)cfg->edit_rounds);
    if (cfg->edit_top_k < 1 || cfg->edit_top_k > 64)
        return v2t_fail(V2T_ERR_VALUE, "edit_top_k: expected 1..64, got %lld", (long long)cfg->edit_top_k);
    if (cfg->num_steps < 0 && cfg->sequence_beam_width != 0)
        return v2t_fail(V2T_ERR_VALUE,
                        "sequence_beam_width: must be 0 when num_steps is None (the inverter alone has no "
                        "sequence-level beam search), got %lld",
                        (long long)cfg->sequence_beam_width);
    if (cfg->num_steps >= 0 && !cor)
        return v2t_fail(V2T_ERR_VALUE, "num_steps: correction rounds need a corrector");
    const int64_t lim = inv->t5->cfg.max_length;
    if (cfg->max_length < 2 || cfg->max_length > lim || cfg->hypothesis_max_length < 2 ||
        cfg->hypothesis_max_length > lim)
        return v2t_fail(V2T_ERR_VALUE, "max_length / hypothesis_max_length: expected 2..%lld, got %lld / %lld",
                        (long long)lim, (long long)cfg->max_length, (long long)cfg->hypothesis_max_length);
    if (out_width < max64(cfg->max_length, cfg->hypothesis_max_length))
        return v2t_fail(V2T_ERR_VALUE, "invert: out_width %lld < max_length %lld", (long long)out_width,
                        (long long)max64(cfg->max_length, cfg->hypothesis_max_length));
    if (embed->dim != inv->dim)
        return v2t_fail(V2T_ERR_VALUE, "embedder: gives %lld-dimensional embeddings, the inverter expects %lld",
                        (long long)embed->dim, (long long)inv->dim);
    if (cor) {
        if (cor->dim != inv->dim)
            return v2t_fail(V2T_ERR_VALUE, "corrector: expects %lld-dimensional embeddings, the inverter %lld",
                            (long long)cor->dim, (long long)inv->dim);
        if (cfg->num_steps >= 0 && cor->t5->cfg.max_length < v2t_corrector_length(cor, cfg->max_length))
            return v2t_fail(V2T_ERR_VALUE, "corrector: its T5 model accepts %lld positions, a round needs %lld",
                            (long long)cor->t5->cfg.max_length, (long long)v2t_corrector_length(cor, cfg->max_length));
    }
    return V2T_OK;
}

static v2t_status alloc_hyps(hyps *h, int64_t rows, int64_t W, int64_t D)
{
    V2T_TRY(v2t_alloc((void **)&h->ids, (size_t)(rows * W) * sizeof(int32_t), "hypothesis ids"));
    V2T_TRY(v2t_calloc((void **)&h->len, (size_t)rows * sizeof(int64_t), "hypothesis lengths"));
    V2T_TRY(v2t_calloc((void **)&h->emb, (size_t)(rows * D) * sizeof(float), "hypothesis embeddings"));
    V2T_TRY(v2t_alloc((void **)&h->cos, (size_t)rows * sizeof(float), "hypothesis cosines"));
    for (int64_t r = 0; r < rows; r++)
        h->cos[r] = NAN;
    return V2T_OK;
}

static void free_hyps(hyps *h)
{
    v2t_free(h->ids);
    v2t_free(h->len);
    v2t_free(h->emb);
    v2t_free(h->cos);
}

static v2t_status run(loop *L)
{
    const v2t_loop_config *cfg = L->cfg;
    const int64_t N = L->N, b = L->b, W = L->W;
    for (int64_t e = 0; e < N; e++)
        L->active[e] = 1;
    L->total = N * (L->steps + 1);

    /* round 0: the inverter */
    const int need_embed = L->steps > 0 || cfg->embed_outputs || cfg->edit_rounds > 0;
    const int64_t max0 = L->steps > 0 ? cfg->hypothesis_max_length : cfg->max_length;
    L->cur.beams = 1;
    int64_t n = active_list(L);
    for (int64_t s = 0; s < n; s += L->chunk) {
        const int64_t cb = n - s < L->chunk ? n - s : L->chunk;
        V2T_TRY(inverter_chunk(L, L->todo + s, cb, max0, need_embed));
        V2T_TRY(progress(L, cb));
    }
    if (L->keep_best)
        for (int64_t e = 0; e < N; e++) {
            L->kb_cos[e] = -INFINITY;
            keep_best_update(L, e, L->cur.ids + e * W, L->cur.len[e], L->cur.emb + e * L->D, L->cur.cos[e]);
            if (L->kb_cos[e] == -INFINITY) { /* NaN cosine: still keep the hypothesis */
                L->kb_len[e] = L->cur.len[e];
                memcpy(L->kb_ids + e * W, L->cur.ids + e * W, (size_t)W * sizeof(int32_t));
                memcpy(L->kb_emb + e * L->D, L->cur.emb + e * L->D, (size_t)L->D * sizeof(float));
                L->kb_cos[e] = L->cur.cos[e];
            }
        }
    V2T_TRY(report(L, 0, 0));
    if (L->steps > 0)
        V2T_TRY(stop_reached(L, L->steps));

    /* correction rounds */
    for (int64_t r = 1; r <= L->steps; r++) {
        const int last = r == L->steps;
        L->next.beams = (b == 1 || last) ? 1 : b;
        n = active_list(L);
        for (int64_t s = 0; s < n; s += L->chunk) {
            const int64_t cb = n - s < L->chunk ? n - s : L->chunk;
            V2T_TRY(corrector_chunk(L, L->todo + s, cb, last));
            V2T_TRY(progress(L, cb));
        }
        /* stopped examples keep their last hypothesis in every row (for observers) */
        for (int64_t e = 0; e < N; e++) {
            if (L->active[e])
                continue;
            for (int64_t k = 0; k < L->next.beams; k++) {
                const int64_t src = e * L->cur.beams, dst = e * L->next.beams + k;
                memcpy(L->next.ids + dst * W, L->cur.ids + src * W, (size_t)W * sizeof(int32_t));
                L->next.len[dst] = L->cur.len[src];
                memcpy(L->next.emb + dst * L->D, L->cur.emb + src * L->D, (size_t)L->D * sizeof(float));
                L->next.cos[dst] = L->cur.cos[src];
            }
        }
        hyps t = L->cur;
        L->cur = L->next;
        L->next = t;
        V2T_TRY(report(L, r, b > 1));
        if (!last)
            V2T_TRY(stop_reached(L, L->steps - r));
    }
    if (cfg->edit_rounds > 0) {
        /* the local edit search on each active example's best hypothesis */
        n = active_list(L);
        const v2t_edit_config ec = {.rounds = cfg->edit_rounds, .top_k = cfg->edit_top_k,
                                    .chunk = L->chunk < 32 ? L->chunk : 32};
        V2T_TRY(v2t_edit_search(L->inv, L->cor, L->embed, &ec, L->targets, L->todo, n, L->kb_ids, W, L->kb_len,
                                L->kb_emb, L->kb_cos, NULL));
    }
    for (int64_t e = 0; e < N; e++)
        if (L->active[e])
            finish_example(L, e);
    return V2T_OK;
}

v2t_status v2t_invert(const v2t_inverter *inv, const v2t_corrector *cor, const v2t_embed_ops *embed,
                      const v2t_loop_observer *obs, const v2t_loop_config *cfg, const float *targets, int64_t batch,
                      int32_t *out_ids, int64_t out_width, int64_t *out_lengths, float *out_cosines)
{
    V2T_TRY(check(inv, cor, embed, cfg, batch, out_width));
    loop L;
    memset(&L, 0, sizeof L);
    L.inv = inv;
    L.cor = cfg->num_steps >= 0 ? cor : NULL;
    L.embed = embed;
    L.obs = obs;
    L.cfg = cfg;
    L.targets = targets;
    L.N = batch;
    L.D = inv->dim;
    L.W = max64(cfg->max_length, cfg->hypothesis_max_length);
    L.steps = cfg->num_steps < 0 ? 0 : (cfg->num_steps ? cfg->num_steps : 1);
    L.b = L.steps > 0 && cfg->sequence_beam_width > 1 ? cfg->sequence_beam_width : 1;
    L.nc = L.steps > 0 && cfg->candidates > L.b ? cfg->candidates : L.b;
    L.keep_best = cfg->keep_best || cfg->candidates > 0 || cfg->edit_rounds > 0;
    L.chunk = v2t_loop_chunk(inv, L.cor, cfg, batch);
    L.pad = inv->t5->cfg.pad_token_id;
    L.out_ids = out_ids;
    L.out_w = out_width;
    L.out_len = out_lengths;
    L.out_cos = out_cosines;
    const int64_t rows = batch * L.b;
    v2t_status s;
    V2T_CHECK(s, v2t_exec_init(&L.ex), done);
    V2T_CHECK(s, v2t_t5_session_create(inv->t5, &L.inv_sess), done);
    if (L.cor)
        V2T_CHECK(s, v2t_t5_session_create(L.cor->t5, &L.cor_sess), done);
    V2T_CHECK(s, alloc_hyps(&L.cur, rows, L.W, L.D), done);
    V2T_CHECK(s, alloc_hyps(&L.next, rows, L.W, L.D), done);
    V2T_CHECK(s, v2t_alloc((void **)&L.active, (size_t)batch, "active examples"), done);
    V2T_CHECK(s, v2t_alloc((void **)&L.todo, (size_t)batch * sizeof(int64_t), "active example list"), done);
    V2T_CHECK(s, v2t_alloc((void **)&L.best_scores, (size_t)batch * sizeof(float), "best scores"), done);
    if (L.keep_best) {
        V2T_CHECK(s, v2t_alloc((void **)&L.kb_ids, (size_t)(batch * L.W) * sizeof(int32_t), "best hypotheses"), done);
        V2T_CHECK(s, v2t_calloc((void **)&L.kb_emb, (size_t)(batch * L.D) * sizeof(float), "best embeddings"), done);
        V2T_CHECK(s, v2t_alloc((void **)&L.kb_len, (size_t)batch * sizeof(int64_t), "best lengths"), done);
        V2T_CHECK(s, v2t_alloc((void **)&L.kb_cos, (size_t)batch * sizeof(float), "best cosines"), done);
    }
    s = run(&L);
done:
    v2t_t5_session_free(L.inv_sess);
    v2t_t5_session_free(L.cor_sess);
    v2t_exec_release(&L.ex);
    free_hyps(&L.cur);
    free_hyps(&L.next);
    v2t_free(L.active);
    v2t_free(L.todo);
    v2t_free(L.best_scores);
    v2t_free(L.kb_ids);
    v2t_free(L.kb_len);
    v2t_free(L.kb_cos);
    v2t_free(L.kb_emb);
    v2t_buffer *bufs[] = {&L.tgt,      &L.hemb,     &L.hids,     &L.enc_in, &L.enc_mask,
                          &L.gen_ids,  &L.gen_len,  &L.cand_ids, &L.cand_emb, &L.cand_cos,
                          &L.pick,     &L.hidden,   &L.corr_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        v2t_buffer_release(bufs[i]);
    return s;
}
