/* T5 configuration: defaults, validation, relative position buckets. */
#include <math.h>

#include "t5.h"

v2t_t5_config v2t_t5_config_defaults(void)
{
    return (v2t_t5_config){
        .vocab_size = 32128, .d_model = 512, .d_kv = 64, .num_heads = 8, .d_ff = 2048,
        .num_layers = 6, .num_decoder_layers = 6,
        .relative_attention_num_buckets = 32, .relative_attention_max_distance = 128,
        .gated = 0, .act = V2T_ACT_RELU, .tie_word_embeddings = 1, .layer_norm_epsilon = 1e-6f,
        .decoder_start_token_id = 0, .eos_token_id = 1, .pad_token_id = 0,
        .max_length = 512, .encoder_only = 0, .dtype = V2T_DT_F32,
    };
}

#define POSITIVE(field)                                                                                   \
    do {                                                                                                  \
        if (c->field <= 0)                                                                                \
            return v2t_fail(V2T_ERR_VALUE, "T5 config: " #field " must be positive, got %lld",            \
                            (long long)c->field);                                                         \
    } while (0)

#define TOKEN(field)                                                                                      \
    do {                                                                                                  \
        if (c->field < 0 || c->field >= c->vocab_size)                                                   \
            return v2t_fail(V2T_ERR_VALUE, "T5 config: " #field " must be in [0, vocab_size=%lld), got %d", \
                            (long long)c->vocab_size, (int)c->field);                                     \
    } while (0)

/* Upper bounds far above any published T5 (t5-11b: d_model 1024, d_ff 65536, 128 heads of 128,
 * 24 layers), so that every size product below stays far inside int64 and size_t. */
#define AT_MOST(field, limit)                                                                             \
    do {                                                                                                  \
        if (c->field > (limit))                                                                           \
            return v2t_fail(V2T_ERR_VALUE, "T5 config: " #field " must be at most %lld, got %lld",        \
                            (long long)(limit), (long long)c->field);                                     \
    } while (0)

v2t_status v2t_t5_config_check(const v2t_t5_config *c)
{
    AT_MOST(vocab_size, 1 << 24);
    AT_MOST(d_model, 1 << 16);
    AT_MOST(d_kv, 1 << 12);
    AT_MOST(num_heads, 1 << 12);
    AT_MOST(d_ff, 1 << 18);
    AT_MOST(num_layers, 1 << 10);
    AT_MOST(num_decoder_layers, 1 << 10);
    AT_MOST(relative_attention_num_buckets, 1 << 12);
    AT_MOST(relative_attention_max_distance, 1 << 20);
    AT_MOST(max_length, 1 << 20);
    if (c->d_kv > 0 && c->num_heads > 0 && c->d_kv * c->num_heads > (1 << 18))
        return v2t_fail(V2T_ERR_VALUE, "T5 config: num_heads * d_kv must be at most %d, got %lld * %lld", 1 << 18,
                        (long long)c->num_heads, (long long)c->d_kv);
    POSITIVE(vocab_size);
    POSITIVE(d_model);
    POSITIVE(d_kv);
    POSITIVE(num_heads);
    POSITIVE(d_ff);
    POSITIVE(num_layers);
    POSITIVE(max_length);
    if (!c->encoder_only)
        POSITIVE(num_decoder_layers);
    if (c->vocab_size > INT32_MAX)
        return v2t_fail(V2T_ERR_VALUE, "T5 config: vocab_size %lld does not fit int32 ids", (long long)c->vocab_size);
    if (c->relative_attention_num_buckets < 4)
        return v2t_fail(V2T_ERR_VALUE, "T5 config: relative_attention_num_buckets must be >= 4, got %lld",
                        (long long)c->relative_attention_num_buckets);
    if (c->relative_attention_max_distance <= c->relative_attention_num_buckets / 2)
        return v2t_fail(V2T_ERR_VALUE,
                        "T5 config: relative_attention_max_distance must exceed num_buckets/2 = %lld, got %lld",
                        (long long)(c->relative_attention_num_buckets / 2),
                        (long long)c->relative_attention_max_distance);
    if (c->act != V2T_ACT_RELU && c->act != V2T_ACT_GELU_TANH && c->act != V2T_ACT_GELU_ERF)
        return v2t_fail(V2T_ERR_VALUE, "T5 config: act must be relu, gelu or gelu_new, got code %d", (int)c->act);
    if (!(c->layer_norm_epsilon >= 0.f) || !isfinite(c->layer_norm_epsilon))
        return v2t_fail(V2T_ERR_VALUE, "T5 config: layer_norm_epsilon must be finite and >= 0, got %g",
                        (double)c->layer_norm_epsilon);
    TOKEN(decoder_start_token_id);
    TOKEN(eos_token_id);
    TOKEN(pad_token_id);
    if (c->dtype != V2T_DT_F32 && c->dtype != V2T_DT_BF16)
        return v2t_fail(V2T_ERR_VALUE, "T5 config: unknown weight dtype %d", (int)c->dtype);
    return V2T_OK;
}

/* Relative position (memory - query) to bucket, computed as transformers does: exact buckets
 * below max_exact, then logarithmic bins up to max_distance, the log term in float32 and
 * truncated toward zero. Bidirectional: half the buckets for positive offsets. */
int64_t v2t_t5_relpos_bucket(int64_t rel, int bidirectional, int64_t num_buckets, int64_t max_distance)
{
    int64_t bucket = 0;
    if (bidirectional) {
        num_buckets /= 2;
        if (rel > 0)
            bucket += num_buckets;
        rel = rel < 0 ? -rel : rel;
    } else {
        rel = rel < 0 ? -rel : 0;
    }
    const int64_t max_exact = num_buckets / 2;
    if (rel < max_exact)
        return bucket + rel;
    const float ratio = (float)rel / (float)max_exact;
    const float scaled = logf(ratio) / (float)log((double)max_distance / (double)max_exact) *
                         (float)(num_buckets - max_exact);
    int64_t large = max_exact + (int64_t)scaled;
    if (large > num_buckets - 1)
        large = num_buckets - 1;
    return bucket + large;
}
