/* vec2text's InversionModel: embedding -> pseudo-token sequence -> T5 encoder-decoder.
 *
 *   e [B, D] --embedding_transform--> [B, R * d_model] --reshape--> [B, R, d_model]
 *   --> T5 encoder (inputs_embeds, all-ones mask) --> greedy decoding (see loop.h)
 *
 * The T5 model is loaded separately (tensors `encoder_decoder.*` of the same checkpoint) and
 * shared, not owned: the inverter only adds the transform (`embedding_transform.{0,3}.*`).
 * Immutable after load.
 */
#ifndef V2T_VEC2TEXT_INVERTER_H
#define V2T_VEC2TEXT_INVERTER_H

#include <stdint.h>

#include "../nn/t5.h"
#include "transform.h"

typedef struct v2t_inverter {
    int64_t dim;               /* D, the embedder's dimension */
    int64_t num_repeat_tokens; /* R */
    const v2t_t5_model *t5;    /* borrowed; must outlive the inverter */
    v2t_embed_transform transform;
} v2t_inverter;

/* Load the transform from `st` (D read off `embedding_transform.0.weight`); the T5 model must
 * have a decoder and d_model matching the transform's output of R * d_model. */
v2t_status v2t_inverter_load(const v2t_st *st, const v2t_t5_model *t5, int64_t num_repeat_tokens,
                             v2t_inverter **out);
void v2t_inverter_free(v2t_inverter *inv);

/* The T5 encoder inputs: e [B, D] -> out [B, R, d_model]; hidden: scratch [B, D]. */
v2t_status v2t_inverter_inputs(const v2t_inverter *inv, v2t_exec *ex, const float *e, int64_t B, float *hidden,
                               float *out);

#endif
