/* Beam search: transformers' _beam_search with BeamSearchScorer (pinned version 4.46.3),
 * one eos id, no logits processors, do_sample=False.
 *
 * Per step and example (rows = example * beams + beam):
 *   scores[beam, v] = log_softmax(logits[row])[v] + beam_score[row]      (float32)
 *   the 2*beams best of the beams*vocab scores, torch.topk order (topk.h);
 *   walking them best first: an eos candidate among the first `beams` becomes a finished
 *   hypothesis (its tokens without the eos, normalised by the current length), a later eos is
 *   skipped, any other candidate extends its beam, until `beams` beams are filled;
 *   the example is done once its hypotheses cannot improve (hypotheses.h), after which its rows
 *   are fed pad with score 0 and retired from the decoder (when it has the hook).
 * Initial beam scores are 0 for beam 0 and -1e9 for the others, so the first step expands beam
 * 0 only. The search stops when every example is done or the sequences reach max_length; the
 * open beams of unfinished examples then join the hypotheses (normalised by their length
 * without the decoder start token) and the best num_return_sequences of each example are
 * returned, eos appended to those that ended with it.
 */
#include <math.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/interrupt.h"
#include "../ops/logsoftmax.h"
#include "../ops/topk.h"
#include "hypotheses.h"
#include "search.h"

typedef struct beam_state {
    float *logits;           /* [rows, V] */
    int32_t *seq, *seq_next; /* [rows, T] current sequences (double buffer) */
    int32_t *tokens;         /* [rows] next tokens */
    int32_t *parents;        /* [rows] row each next row continues */
    float *scores;           /* [rows] running sums of log-probabilities */
    float *next_scores;      /* [rows] */
    float *cand_values;      /* [2 * beams] */
    int32_t *cand_indices;   /* [2 * beams] flat beam * V + token */
    v2t_topk_item *work;     /* top-k scratch */
    int32_t *ranked;         /* [beams] */
    unsigned char *done;     /* [batch] */
    void *block;
} beam_state;

static size_t carve(size_t *off, size_t bytes)
{
    size_t at = *off;
    *off += (bytes + V2T_ALIGN - 1) / V2T_ALIGN * V2T_ALIGN;
    return at;
}

static v2t_status beam_state_init(beam_state *s, int64_t B, int64_t K, int64_t V, int64_t T)
{
    const size_t rows = (size_t)B * (size_t)K, C = 2 * (size_t)K;
    const size_t work = (size_t)v2t_topk_work_items(K * V, 2 * K);
    size_t off = 0;
    size_t o_logits = carve(&off, rows * (size_t)V * sizeof(float));
    size_t o_seq = carve(&off, rows * (size_t)T * sizeof(int32_t));
    size_t o_seq_next = carve(&off, rows * (size_t)T * sizeof(int32_t));
    size_t o_tokens = carve(&off, rows * sizeof(int32_t));
    size_t o_parents = carve(&off, rows * sizeof(int32_t));
    size_t o_scores = carve(&off, rows * sizeof(float));
    size_t o_next_scores = carve(&off, rows * sizeof(float));
    size_t o_cand_values = carve(&off, C * sizeof(float));
    size_t o_cand_indices = carve(&off, C * sizeof(int32_t));
    size_t o_work = carve(&off, work * sizeof(v2t_topk_item));
    size_t o_ranked = carve(&off, (size_t)K * sizeof(int32_t));
    size_t o_done = carve(&off, (size_t)B);
    memset(s, 0, sizeof *s);
    V2T_TRY(v2t_alloc(&s->block, off, "beam search buffers"));
    char *base = s->block;
    s->logits = (float *)(base + o_logits);
    s->seq = (int32_t *)(base + o_seq);
    s->seq_next = (int32_t *)(base + o_seq_next);
    s->tokens = (int32_t *)(base + o_tokens);
    s->parents = (int32_t *)(base + o_parents);
    s->scores = (float *)(base + o_scores);
    s->next_scores = (float *)(base + o_next_scores);
    s->cand_values = (float *)(base + o_cand_values);
    s->cand_indices = (int32_t *)(base + o_cand_indices);
    s->work = work ? (v2t_topk_item *)(base + o_work) : NULL;
    s->ranked = (int32_t *)(base + o_ranked);
    s->done = (unsigned char *)(base + o_done);
    return V2T_OK;
}

/* One step of BeamSearchScorer.process for example b whose scores rows are ready in logits.
 * cur = current sequence length (decoder start included). */
static v2t_status process_example(beam_state *s, v2t_hypotheses *h, const v2t_generate_config *cfg, int64_t b,
                                  int64_t K, int64_t V, int64_t T, int64_t cur)
{
    const int64_t C = 2 * K;
    v2t_topk(s->logits + b * K * V, K * V, C, s->cand_values, s->cand_indices, s->work);
    int64_t filled = 0;
    for (int64_t rank = 0; rank < C && filled < K; rank++) {
        const int32_t token = s->cand_indices[rank] % (int32_t)V;
        const int64_t src = b * K + s->cand_indices[rank] / (int32_t)V;
        if (cfg->eos_id >= 0 && token == cfg->eos_id) {
            if (rank >= K)
                continue; /* an eos outside the first `beams` candidates is dropped */
            v2t_hypotheses_add(h, b, s->seq + src * T, cur, (double)s->cand_values[rank], cur);
        } else {
            const int64_t r = b * K + filled++;
            s->next_scores[r] = s->cand_values[rank];
            s->tokens[r] = token;
            s->parents[r] = (int32_t)src;
        }
    }
    if (filled < K) /* unreachable with one eos id: at most `beams` candidates are eos */
        return v2t_fail(V2T_ERR_VALUE, "beam search: fewer than %lld non-eos candidates for example %lld",
                        (long long)K, (long long)b);
    s->done[b] = v2t_hypotheses_is_done(h, b, (double)s->cand_values[0], cur);
    return V2T_OK;
}

/* Write the best num_return_sequences hypotheses of every example. */
static void write_results(beam_state *s, const v2t_hypotheses *h, const v2t_generate_config *cfg, int64_t B,
                          int64_t K, int64_t T, int32_t *out_ids, int64_t *out_lengths, float *out_scores)
{
    const int64_t R = cfg->num_return_sequences;
    for (int64_t b = 0; b < B; b++) {
        v2t_hypotheses_rank(h, b, s->ranked);
        for (int64_t j = 0; j < R; j++) {
            const int64_t slot = b * K + s->ranked[j], o = b * R + j;
            const int64_t len = h->length[slot];
            int32_t *row = out_ids + o * T;
            memcpy(row, h->tokens + slot * T, (size_t)len * sizeof(int32_t));
            int64_t valid = len;
            if (len < T) /* only hypotheses that ended with eos are shorter than max_length */
                row[valid++] = cfg->eos_id;
            for (int64_t t = valid; t < T; t++)
                row[t] = cfg->pad_id;
            out_lengths[o] = valid;
            if (out_scores)
                out_scores[o] = (float)h->score[slot];
        }
    }
}

v2t_status v2t_beam_search(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                           int32_t *out_ids, int64_t *out_lengths, float *out_scores)
{
    const int64_t B = batch, K = cfg->num_beams, V = ops->vocab, T = cfg->max_length, rows = B * K;
    beam_state s;
    v2t_hypotheses h;
    v2t_status st;
    memset(&h, 0, sizeof h);
    V2T_TRY(beam_state_init(&s, B, K, V, T));
    V2T_CHECK(st, v2t_hypotheses_init(&h, B, K, T, cfg->length_penalty, cfg->early_stopping), done);
    for (int64_t r = 0; r < rows; r++) {
        s.seq[r * T] = cfg->decoder_start_id;
        s.tokens[r] = cfg->decoder_start_id;
        s.scores[r] = r % K == 0 ? 0.0f : -1e9f;
    }
    memset(s.done, 0, (size_t)B);
    V2T_CHECK(st, ops->start(ctx, B, K), done);
    int64_t retired = 0;
    for (int64_t cur = 1;;) {
        V2T_CHECK(st, v2t_poll_interrupt(), done);
        V2T_CHECK(st, ops->step(ctx, s.tokens, cur == 1 ? NULL : s.parents, rows, s.logits), done);
        for (int64_t b = 0; b < B; b++) {
            if (s.done[b]) {
                for (int64_t r = b * K; r < (b + 1) * K; r++) {
                    s.next_scores[r] = 0.0f;
                    s.tokens[r] = cfg->pad_id;
                    s.parents[r] = (int32_t)r;
                }
                continue;
            }
            for (int64_t r = b * K; r < (b + 1) * K; r++) {
                if (v2t_log_softmax_add(s.logits + r * V, V, s.scores[r]) < 0) {
                    st = v2t_fail(V2T_ERR_VALUE,
                                  "decoder logits: row %lld at generation step %lld holds NaN or has no finite "
                                  "maximum",
                                  (long long)r, (long long)cur);
                    goto done;
                }
            }
            V2T_CHECK(st, process_example(&s, &h, cfg, b, K, V, T, cur), done);
        }
        for (int64_t r = 0; r < rows; r++) {
            memcpy(s.seq_next + r * T, s.seq + (int64_t)s.parents[r] * T, (size_t)cur * sizeof(int32_t));
            s.seq_next[r * T + cur] = s.tokens[r];
        }
        int32_t *t32 = s.seq;
        s.seq = s.seq_next;
        s.seq_next = t32;
        float *tf = s.scores;
        s.scores = s.next_scores;
        s.next_scores = tf;
        cur++;
        int64_t finished = 0;
        for (int64_t b = 0; b < B; b++)
            finished += s.done[b];
        if (finished > retired && finished < B && cur < T && ops->retire) {
            V2T_CHECK(st, ops->retire(ctx, s.done), done);
            retired = finished;
        }
        if (finished == B || cur >= T) {
            /* finalize: open beams of unfinished examples join their hypotheses */
            for (int64_t b = 0; b < B; b++)
                if (!s.done[b])
                    for (int64_t r = b * K; r < (b + 1) * K; r++)
                        v2t_hypotheses_add(&h, b, s.seq + r * T, cur, (double)s.scores[r], cur - 1);
            break;
        }
    }
    write_results(&s, &h, cfg, B, K, T, out_ids, out_lengths, out_scores);
    st = V2T_OK;
done:
    v2t_hypotheses_release(&h);
    v2t_free(s.block);
    return st;
}
