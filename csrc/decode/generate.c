/* v2t_generate: defaults, argument validation (transformers' own checks included), dispatch. */
#include "decode.h"

#include <math.h>

#include "search.h"

v2t_generate_config v2t_generate_defaults(void)
{
    v2t_generate_config c = {
        .max_length = 20,
        .num_beams = 1,
        .num_return_sequences = 1,
        .length_penalty = 1.0,
        .early_stopping = V2T_EARLY_STOP_FALSE,
        .decoder_start_id = 0,
        .pad_id = 0,
        .eos_id = 1,
    };
    return c;
}

static v2t_status check_id(const char *name, int32_t id, int64_t vocab)
{
    if (id < 0 || id >= vocab)
        return v2t_fail(V2T_ERR_VALUE, "%s: expected a token id in [0, %lld) (the decoder's vocabulary), got %d", name,
                        (long long)vocab, id);
    return V2T_OK;
}

v2t_status v2t_generate_check(const v2t_decoder_ops *ops, int64_t batch, const v2t_generate_config *cfg)
{
    if (!ops || !ops->start || !ops->step)
        return v2t_fail(V2T_ERR_VALUE, "generate: decoder ops must provide start and step");
    if (!cfg)
        return v2t_fail(V2T_ERR_VALUE, "generate: config must not be NULL");
    const int64_t V = ops->vocab, K = cfg->num_beams, T = cfg->max_length;
    if (batch < 1)
        return v2t_fail(V2T_ERR_VALUE, "batch: expected at least one example, got %lld", (long long)batch);
    if (T < 2)
        return v2t_fail(V2T_ERR_VALUE,
                        "max_length: expected >= 2 (it counts the decoder start token, so 1 leaves no room to "
                        "generate; transformers rejects it too), got %lld",
                        (long long)T);
    if (K < 1)
        return v2t_fail(V2T_ERR_VALUE, "num_beams: expected >= 1, got %lld", (long long)K);
    if (cfg->num_return_sequences < 1)
        return v2t_fail(V2T_ERR_VALUE, "num_return_sequences: expected >= 1, got %lld",
                        (long long)cfg->num_return_sequences);
    if (K == 1 && cfg->num_return_sequences != 1)
        return v2t_fail(V2T_ERR_VALUE,
                        "num_return_sequences: greedy search (num_beams=1) returns one sequence per example, got %lld",
                        (long long)cfg->num_return_sequences);
    if (cfg->num_return_sequences > K)
        return v2t_fail(V2T_ERR_VALUE, "num_return_sequences: expected <= num_beams (%lld), got %lld", (long long)K,
                        (long long)cfg->num_return_sequences);
    if (!isfinite(cfg->length_penalty))
        return v2t_fail(V2T_ERR_VALUE, "length_penalty: expected a finite number, got %g", cfg->length_penalty);
    if (cfg->early_stopping < V2T_EARLY_STOP_FALSE || cfg->early_stopping > V2T_EARLY_STOP_NEVER)
        return v2t_fail(V2T_ERR_VALUE, "early_stopping: expected 0 (False), 1 (True) or 2 (\"never\"), got %d",
                        cfg->early_stopping);
    if (V < (K > 1 ? 2 : 1))
        return v2t_fail(V2T_ERR_VALUE, "vocab: expected at least %d tokens for %s, got %lld", K > 1 ? 2 : 1,
                        K > 1 ? "beam search" : "greedy search", (long long)V);
    /* Sizes: rows x vocab logits and beams x vocab top-k candidates (int32 indices). */
    if (K > INT32_MAX / 2 || V > INT32_MAX / K || batch > INT64_MAX / K || batch * K > INT32_MAX ||
        batch * K > (INT64_MAX / 8) / V || batch * K > (INT64_MAX / 8) / T)
        return v2t_fail(V2T_ERR_VALUE, "generate: batch (%lld) x num_beams (%lld) x vocab (%lld) / max_length (%lld) "
                        "is too large", (long long)batch, (long long)K, (long long)V, (long long)T);
    V2T_TRY(check_id("decoder_start_token_id", cfg->decoder_start_id, V));
    V2T_TRY(check_id("pad_token_id", cfg->pad_id, V));
    if (cfg->eos_id >= V)
        return v2t_fail(V2T_ERR_VALUE, "eos_token_id: expected a token id in [0, %lld) or none, got %d", (long long)V,
                        cfg->eos_id);
    return V2T_OK;
}

v2t_status v2t_generate(const v2t_decoder_ops *ops, void *ctx, int64_t batch, const v2t_generate_config *cfg,
                        int32_t *out_ids, int64_t *out_lengths, float *out_scores)
{
    V2T_TRY(v2t_generate_check(ops, batch, cfg));
    if (!out_ids || !out_lengths)
        return v2t_fail(V2T_ERR_VALUE, "generate: out_ids and out_lengths must not be NULL");
    if (cfg->num_beams == 1)
        return v2t_greedy_search(ops, ctx, batch, cfg, out_ids, out_lengths);
    return v2t_beam_search(ops, ctx, batch, cfg, out_ids, out_lengths, out_scores);
}
