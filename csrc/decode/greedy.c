/* Greedy search: transformers' _sample with do_sample=False (pinned version 4.46.3).
 * Every row is stepped until all rows have finished; the next token is the first argmax of the
 * raw logits (no processors, no softmax needed); a row that has finished (eos produced, when an
 * eos id is set) is fed and given pad_id from then on; the search stops when every row has
 * finished or the sequences reach max_length. Finished rows are retired from the decoder (when
 * it has the hook) so that it stops computing them. */
#include <math.h>
#include <string.h>

#include "../core/alloc.h"
#include "../core/interrupt.h"
#include "../ops/topk.h"
#include "search.h"

v2t_status v2t_greedy_search(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                             int32_t *out_ids, int64_t *out_lengths)
{
    const int64_t B = batch, V = ops->vocab, T = cfg->max_length;
    const int has_eos = cfg->eos_id >= 0;
    const size_t logits_bytes = (size_t)B * (size_t)V * sizeof(float);
    const size_t tokens_off = (logits_bytes + 63) / 64 * 64;
    v2t_status st;
    void *block = NULL;
    V2T_TRY(v2t_alloc(&block, tokens_off + (size_t)B * (sizeof(int32_t) + 2), "greedy search buffers"));
    float *logits = block;                                        /* [B, V] */
    int32_t *tokens = (int32_t *)((char *)block + tokens_off);    /* [B] newest token of each row */
    unsigned char *unfinished = (unsigned char *)(tokens + B);    /* [B] */
    unsigned char *done_rows = unfinished + B;                    /* [B] = !unfinished */

    for (int64_t r = 0; r < B; r++) {
        int32_t *row = out_ids + r * T;
        row[0] = cfg->decoder_start_id;
        for (int64_t t = 1; t < T; t++)
            row[t] = cfg->pad_id;
        tokens[r] = cfg->decoder_start_id;
        unfinished[r] = 1;
        done_rows[r] = 0;
        out_lengths[r] = T;
    }
    V2T_CHECK(st, ops->start(ctx, B, 1), done);
    int64_t len = 1, left = B;
    while (left > 0) {
        V2T_CHECK(st, v2t_poll_interrupt(), done);
        V2T_CHECK(st, ops->step(ctx, tokens, NULL, B, logits), done);
        for (int64_t r = 0; r < B; r++) {
            int32_t next = cfg->pad_id;
            if (unfinished[r]) {
                const float *row = logits + r * V;
                int64_t best = v2t_argmax(row, V);
                if (isnan(row[best])) {
                    st = v2t_fail(V2T_ERR_VALUE, "decoder logits: NaN in row %lld at generation step %lld",
                                  (long long)r, (long long)len);
                    goto done;
                }
                next = (int32_t)best;
            }
            out_ids[r * T + len] = next;
            tokens[r] = next;
        }
        len++;
        int64_t ended = 0;
        for (int64_t r = 0; r < B; r++) {
            if (unfinished[r] && ((has_eos && tokens[r] == cfg->eos_id) || len >= T)) {
                unfinished[r] = 0;
                done_rows[r] = 1;
                out_lengths[r] = len;
                left--;
                ended++;
            }
        }
        if (ended && left > 0 && ops->retire)
            V2T_CHECK(st, ops->retire(ctx, done_rows), done);
    }
    st = V2T_OK;
done:
    v2t_free(block);
    return st;
}
