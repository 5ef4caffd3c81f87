/* Fuzz target: a T5 checkpoint as the C core meets it, a config (the fields config.json gives)
 * and a safetensors file, then, when it loads, an encoder pass and a generate() call with the
 * input's beam count and length.
 *
 * Input: a 40-byte config record, then the safetensors bytes. Record byte 0 selects how the
 * fields are read: bit 7 set, each field is a raw little-endian int64 of the record (the
 * config check must bound every value, 2^61 layers and wrapping products included); clear,
 * each is a small value from one byte, so that the fuzzer reaches loading and decoding with
 * shapes that match the seed files. */
#include <string.h>

#include "fuzz_common.h"
#include "core/alloc.h"
#include "core/status.h"
#include "decode/decode.h"
#include "io/safetensors.h"
#include "nn/t5.h"

#define RECORD 40
#define MAX_PARAMS (1 << 22) /* skip loading configs that need more floats than this */

static int64_t raw64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static void config_from(const uint8_t *r, v2t_t5_config *c)
{
    *c = v2t_t5_config_defaults();
    if (r[0] & 0x80) {
        const int k = r[1] % 8; /* which field gets the raw value (the others stay sane) */
        const int64_t v = raw64(r + 2);
        int64_t *fields[] = {&c->vocab_size, &c->d_model, &c->d_kv, &c->num_heads,
                             &c->d_ff, &c->num_layers, &c->num_decoder_layers, &c->max_length};
        *fields[k] = v;
        if (r[10] & 1)
            c->num_heads = raw64(r + 11), c->d_kv = raw64(r + 19);
    } else {
        c->vocab_size = 1 + r[1];
        c->d_model = 1 + r[2] % 32;
        c->d_kv = 1 + r[3] % 16;
        c->num_heads = 1 + r[4] % 4;
        c->d_ff = 1 + r[5] % 64;
        c->num_layers = r[6] % 4;
        c->num_decoder_layers = r[7] % 4;
        c->relative_attention_num_buckets = r[8] % 40;
        c->relative_attention_max_distance = r[9] % 80;
        c->gated = r[10] & 1;
        c->act = (v2t_act)(r[11] % 4);
        c->tie_word_embeddings = (r[12] >> 1) & 1;
        c->encoder_only = (r[12] >> 2) & 1;
        c->decoder_start_token_id = (int8_t)r[13];
        c->eos_token_id = (int8_t)r[14];
        c->pad_token_id = (int8_t)r[15];
        c->max_length = r[16] % 40;
        c->dtype = (v2t_dtype)(r[17] % 3);
        c->layer_norm_epsilon = (r[18] & 1) ? -1.0f : 1e-6f;
    }
}

static void run_model(const v2t_t5_model *m, const uint8_t *r)
{
    const v2t_t5_config *c = &m->cfg;
    v2t_t5_session *s = NULL;
    if (v2t_t5_session_create(m, &s) != V2T_OK)
        return;
    const int64_t B = 1 + r[20] % 3, T = 1 + r[21] % 6;
    int32_t ids[3 * 6];
    for (int64_t i = 0; i < B * T; i++)
        ids[i] = (int32_t)(r[22 + i % 18] % (c->vocab_size + 2)) - 1; /* out-of-range ids too */
    float *enc = malloc(sizeof(float) * (size_t)(B * T * c->d_model));
    if (enc == NULL)
        abort();
    (void)v2t_t5_encode(s, ids, NULL, NULL, B, T, enc);
    free(enc);
    if (!c->encoder_only && v2t_t5_session_encode_source(s, ids, NULL, NULL, B, T, 8) == V2T_OK) {
        v2t_decoder_ops ops = v2t_t5_decoder_ops(m);
        v2t_generate_config g = v2t_generate_defaults();
        g.max_length = r[38] % 10;
        g.num_beams = 1 + r[39] % 40;
        g.num_return_sequences = 1 + r[39] % 3;
        g.decoder_start_id = c->decoder_start_token_id, g.pad_id = c->pad_token_id, g.eos_id = c->eos_token_id;
        if (v2t_generate_check(&ops, B, &g) == V2T_OK) {
            const int64_t rows = B * g.num_return_sequences;
            int32_t *out = malloc(sizeof(int32_t) * (size_t)(rows * g.max_length));
            int64_t *lens = malloc(sizeof(int64_t) * (size_t)rows);
            float *scores = malloc(sizeof(float) * (size_t)rows);
            if (!out || !lens || !scores)
                abort();
            if (v2t_generate(&ops, s, B, &g, out, lens, scores) == V2T_OK)
                for (int64_t i = 0; i < rows; i++)
                    if (lens[i] < 1 || lens[i] > g.max_length)
                        abort();
            free(out), free(lens), free(scores);
        }
    }
    v2t_t5_session_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < RECORD)
        return 0;
    v2t_t5_config cfg;
    config_from(data, &cfg);
    if (v2t_t5_config_check(&cfg) != V2T_OK) {
        if (v2t_last_error()[0] == '\0')
            abort();
        return 0;
    }
    const int64_t inner = cfg.num_heads * cfg.d_kv;
    const int64_t per_block = 4 * inner * cfg.d_model + 3 * cfg.d_ff * cfg.d_model;
    const int64_t params = cfg.vocab_size * cfg.d_model * 2 + (cfg.num_layers + cfg.num_decoder_layers) * per_block;
    if (params > MAX_PARAMS)
        return 0; /* bounded by the check; too large to allocate per execution here */
    v2t_st *st = NULL;
    if (v2t_st_open(fuzz_as_file(data + RECORD, size - RECORD), &st) != V2T_OK)
        return 0;
    v2t_t5_model *m = NULL;
    if (v2t_t5_load(st, (data[19] & 1) ? "encoder_decoder." : "", &cfg, &m) == V2T_OK) {
        run_model(m, data);
        v2t_t5_free(m);
    } else if (m != NULL || v2t_last_error()[0] == '\0') {
        abort();
    }
    v2t_st_close(st);
    return 0;
}
