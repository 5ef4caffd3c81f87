/* Internal to decode/: the two searches behind v2t_generate, called after validation. */
#ifndef V2T_DECODE_SEARCH_H
#define V2T_DECODE_SEARCH_H

#include "decode.h"

v2t_status v2t_greedy_search(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                             int32_t *out_ids, int64_t *out_lengths);

v2t_status v2t_beam_search(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                           int32_t *out_ids, int64_t *out_lengths, float *out_scores);

#endif
