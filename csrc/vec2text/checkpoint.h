/* Fix-ups vec2text checkpoints need after their T5 encoder-decoder is loaded.
 *
 * A vec2text checkpoint written with safetensors has no `encoder_decoder.lm_head.weight`: at
 * save time it aliased the shared embedding and was dropped. vec2text 0.0.13 (transformers
 * 4.46.3) builds the model from `model_name_or_path` first and then loads the checkpoint; the
 * tie between lm_head and the shared embedding does not survive that, so the logits come from
 * model_name_or_path's own lm_head while the token embeddings come from the checkpoint (the
 * d_model^-0.5 rescale of tied models stays). Reproducing the reference means loading the
 * lm_head from there.
 */
#ifndef V2T_VEC2TEXT_CHECKPOINT_H
#define V2T_VEC2TEXT_CHECKPOINT_H

#include "../nn/t5.h"

/* Replace m's lm_head with w: [vocab_size, d_model] (copied and packed). Only while no other
 * thread uses the model (right after loading). */
v2t_status v2t_t5_replace_lm_head(v2t_t5_model *m, const float *w);

#endif
