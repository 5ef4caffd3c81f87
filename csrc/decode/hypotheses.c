#include "hypotheses.h"

#include <math.h>
#include <string.h>

#include "../core/alloc.h"

static size_t carve(size_t *off, size_t bytes)
{
    size_t at = *off;
    *off += (bytes + V2T_ALIGN - 1) / V2T_ALIGN * V2T_ALIGN;
    return at;
}

v2t_status v2t_hypotheses_init(v2t_hypotheses *h, int64_t batch, int64_t beams, int64_t max_length,
                               double length_penalty, int early_stopping)
{
    memset(h, 0, sizeof *h);
    size_t n = (size_t)batch * (size_t)beams, off = 0;
    size_t o_count = carve(&off, (size_t)batch * sizeof(int64_t));
    size_t o_worst = carve(&off, (size_t)batch * sizeof(double));
    size_t o_order = carve(&off, n * sizeof(int32_t));
    size_t o_score = carve(&off, n * sizeof(double));
    size_t o_length = carve(&off, n * sizeof(int64_t));
    size_t o_tokens = carve(&off, n * (size_t)max_length * sizeof(int32_t));
    V2T_TRY(v2t_alloc(&h->block, off, "beam search hypotheses"));
    char *base = h->block;
    h->count = (int64_t *)(base + o_count);
    h->worst = (double *)(base + o_worst);
    h->order = (int32_t *)(base + o_order);
    h->score = (double *)(base + o_score);
    h->length = (int64_t *)(base + o_length);
    h->tokens = (int32_t *)(base + o_tokens);
    h->batch = batch;
    h->beams = beams;
    h->max_length = max_length;
    h->length_penalty = length_penalty;
    h->early_stopping = early_stopping;
    for (int64_t b = 0; b < batch; b++) {
        h->count[b] = 0;
        h->worst[b] = 1e9;
    }
    return V2T_OK;
}

void v2t_hypotheses_release(v2t_hypotheses *h)
{
    v2t_free(h->block);
    memset(h, 0, sizeof *h);
}

static void store(v2t_hypotheses *h, int64_t b, int32_t slot, const int32_t *tokens, int64_t len, double score)
{
    int64_t at = b * h->beams + slot;
    h->score[at] = score;
    h->length[at] = len;
    memcpy(h->tokens + at * h->max_length, tokens, (size_t)len * sizeof(int32_t));
}

/* Python's tuple order on (score, list position). */
static int tuple_less(double s1, int64_t p1, double s2, int64_t p2) { return s1 < s2 || (s1 == s2 && p1 < p2); }

void v2t_hypotheses_add(v2t_hypotheses *h, int64_t b, const int32_t *tokens, int64_t len, double sum_logprobs,
                        int64_t generated_len)
{
    const int64_t K = h->beams;
    double score = sum_logprobs / pow((double)generated_len, h->length_penalty);
    int64_t n = h->count[b];
    int32_t *order = h->order + b * K;
    const double *scores = h->score + b * K;
    if (!(n < K || score > h->worst[b]))
        return;
    if (n < K) {
        /* Slots 0..n-1 are in use while the list has never overflowed. */
        order[n] = (int32_t)n;
        store(h, b, (int32_t)n, tokens, len, score);
        h->count[b] = n + 1;
        h->worst[b] = h->worst[b] < score ? h->worst[b] : score; /* Python's min(score, worst) */
        return;
    }
    /* The list holds K entries; with the new one at position K it overflows: drop the smallest
     * (score, position) and make the second smallest the new worst score. */
    int64_t first = -1, second = -1;
    for (int64_t p = 0; p <= K; p++) {
        double s = p < K ? scores[order[p]] : score;
        if (first < 0 || tuple_less(s, p, first < K ? scores[order[first]] : score, first)) {
            second = first;
            first = p;
        } else if (second < 0 || tuple_less(s, p, second < K ? scores[order[second]] : score, second)) {
            second = p;
        }
    }
    h->worst[b] = second < K ? scores[order[second]] : score;
    if (first == K)
        return; /* the new entry itself is the smallest */
    int32_t slot = order[first];
    memmove(order + first, order + first + 1, (size_t)(K - 1 - first) * sizeof(int32_t));
    order[K - 1] = slot;
    store(h, b, slot, tokens, len, score);
}

int v2t_hypotheses_is_done(const v2t_hypotheses *h, int64_t b, double best_sum_logprobs, int64_t gen_len)
{
    if (h->count[b] < h->beams)
        return 0;
    if (h->early_stopping == 1)
        return 1;
    int64_t denom_len = gen_len;
    if (h->early_stopping == 2 && h->length_penalty > 0.0)
        denom_len = h->max_length - 1; /* max_length minus the decoder start token */
    double highest = best_sum_logprobs / pow((double)denom_len, h->length_penalty);
    return h->worst[b] >= highest;
}

void v2t_hypotheses_rank(const v2t_hypotheses *h, int64_t b, int32_t *ranked)
{
    const int64_t K = h->beams, n = h->count[b];
    const int32_t *order = h->order + b * K;
    const double *scores = h->score + b * K;
    /* Selection sort of list positions: highest score first, among equal scores the later
     * position first; then positions are mapped to slots. */
    for (int64_t i = 0; i < n; i++)
        ranked[i] = (int32_t)i;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = i;
        for (int64_t j = i + 1; j < n; j++) {
            double sj = scores[order[ranked[j]]], sb = scores[order[ranked[best]]];
            if (sj > sb || (sj == sb && ranked[j] > ranked[best]))
                best = j;
        }
        int32_t t = ranked[i];
        ranked[i] = ranked[best];
        ranked[best] = t;
    }
    for (int64_t i = 0; i < n; i++)
        ranked[i] = order[ranked[i]];
}
