/* _core.T5: a T5 encoder-decoder loaded from a safetensors file (config parsed in Python).
 *
 * Every array argument is validated here (dtype, ndim, batch sizes, id ranges, lengths,
 * finiteness) so the core only sees consistent shapes; the GIL is released around the work.
 */
#include "py_common.h"

#include <string.h>

#include "io/safetensors.h"
#include "nn/t5.h"

typedef struct {
    PyObject_HEAD
    v2t_t5_model *model;
} PyT5;

static PyTypeObject PyT5_Type;

static void t5_dealloc(PyT5 *self)
{
    v2t_t5_free(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int parse_act(const char *name, v2t_act *out)
{
    if (!strcmp(name, "relu"))
        *out = V2T_ACT_RELU;
    else if (!strcmp(name, "gelu"))
        *out = V2T_ACT_GELU_ERF;
    else if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh"))
        *out = V2T_ACT_GELU_TANH;
    else {
        PyErr_Format(PyExc_ValueError, "act: expected 'relu', 'gelu' or 'gelu_new', got '%s'", name);
        return -1;
    }
    return 0;
}

static int t5_init(PyT5 *self, PyObject *args, PyObject *kwds)
{
    V2T_PY_INIT_ONCE(self->model, "T5");
    static char *kwlist[] = {"path", "prefix", "vocab_size", "d_model", "d_kv", "num_heads", "d_ff", "num_layers",
                             "num_decoder_layers", "relative_attention_num_buckets",
                             "relative_attention_max_distance", "gated", "act", "tie_word_embeddings",
                             "layer_norm_epsilon", "decoder_start_token_id", "eos_token_id", "pad_token_id",
                             "max_length", "encoder_only", "dtype", NULL};
    v2t_t5_config cfg = v2t_t5_config_defaults();
    PyObject *path_obj = NULL;
    const char *prefix = "", *act = "relu", *dtype = "float32";
    long long vocab = cfg.vocab_size, d_model = cfg.d_model, d_kv = cfg.d_kv, heads = cfg.num_heads,
              d_ff = cfg.d_ff, layers = cfg.num_layers, dec_layers = -1,
              buckets = cfg.relative_attention_num_buckets, max_dist = cfg.relative_attention_max_distance,
              max_length = cfg.max_length;
    int gated = 0, tie = 1, encoder_only = 0;
    int start = cfg.decoder_start_token_id, eos = cfg.eos_token_id, pad = cfg.pad_token_id;
    float eps = cfg.layer_norm_epsilon;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|s$LLLLLLLLLpspfiiiLps", kwlist, PyUnicode_FSConverter,
                                     &path_obj, &prefix, &vocab, &d_model, &d_kv, &heads, &d_ff, &layers,
                                     &dec_layers, &buckets, &max_dist, &gated, &act, &tie, &eps, &start, &eos, &pad,
                                     &max_length, &encoder_only, &dtype))
        return -1;
    int rc = -1;
    if (strcmp(dtype, "float32") == 0) {
        cfg.dtype = V2T_DT_F32;
    } else if (strcmp(dtype, "bfloat16") == 0) {
        cfg.dtype = V2T_DT_BF16;
    } else {
        PyErr_Format(PyExc_ValueError, "dtype: expected 'float32' or 'bfloat16', got '%s'", dtype);
        goto exit;
    }
    if (parse_act(act, &cfg.act) < 0)
        goto exit;
    cfg.vocab_size = vocab;
    cfg.d_model = d_model;
    cfg.d_kv = d_kv;
    cfg.num_heads = heads;
    cfg.d_ff = d_ff;
    cfg.num_layers = layers;
    cfg.num_decoder_layers = dec_layers < 0 ? layers : dec_layers;
    cfg.relative_attention_num_buckets = buckets;
    cfg.relative_attention_max_distance = max_dist;
    cfg.gated = gated;
    cfg.tie_word_embeddings = tie;
    cfg.layer_norm_epsilon = eps;
    cfg.decoder_start_token_id = start;
    cfg.eos_token_id = eos;
    cfg.pad_token_id = pad;
    cfg.max_length = max_length;
    cfg.encoder_only = encoder_only;
    const char *path = PyBytes_AS_STRING(path_obj);
    v2t_t5_model *model = NULL;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_st *st = NULL;
    s = v2t_t5_config_check(&cfg);
    if (s == V2T_OK)
        s = v2t_st_open(path, &st);
    if (s == V2T_OK)
        s = v2t_t5_load(st, prefix, &cfg, &model);
    v2t_st_close(st);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    v2t_t5_free(self->model);
    self->model = model;
    rc = 0;
exit:
    Py_XDECREF(path_obj);
    return rc;
}

static int t5_ready(PyT5 *self)
{
    if (!self->model) {
        PyErr_SetString(PyExc_ValueError, "T5 object is not loaded");
        return 0;
    }
    return 1;
}

/* ---- argument validation ---- */

/* Token ids [B, L]: 2-D integer array with every id in [0, vocab). */
static PyArrayObject *ids_arg(PyObject *obj, const char *name, int64_t vocab)
{
    PyArrayObject *a = v2t_py_ids_array(obj, name, 2, 2);
    if (!a)
        return NULL;
    const int32_t *v = PyArray_DATA(a);
    const npy_intp n = PyArray_SIZE(a), cols = PyArray_DIM(a, 1);
    for (npy_intp i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= vocab) {
            PyErr_Format(PyExc_ValueError, "%s: token id %d at [%lld, %lld] is outside the vocabulary [0, %lld)", name,
                         (int)v[i], (long long)(i / cols), (long long)(i % cols), (long long)vocab);
            Py_DECREF(a);
            return NULL;
        }
    }
    return a;
}

/* Hidden states [B, T, d_model]: float array, finite. */
static PyArrayObject *states_arg(PyObject *obj, const char *name, int64_t d_model)
{
    PyArrayObject *a = v2t_py_float_array(obj, name, 3, 3);
    if (!a)
        return NULL;
    if (PyArray_DIM(a, 2) != d_model) {
        PyErr_Format(PyExc_ValueError, "%s: expected shape [batch, length, %lld] (d_model), got %s", name,
                     (long long)d_model, v2t_py_shape_str(a));
        Py_DECREF(a);
        return NULL;
    }
    if (v2t_py_check_finite(a, name) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* Attention mask [B, T] of 0/1 (integers or booleans). */
static PyArrayObject *mask_arg(PyObject *obj, npy_intp B, npy_intp T, const char *batch_name)
{
    const char *name = "attention_mask";
    PyObject *src = obj;
    PyObject *cast = NULL;
    if (PyArray_Check(obj) && PyArray_TYPE((PyArrayObject *)obj) == NPY_BOOL) {
        cast = PyArray_Cast((PyArrayObject *)obj, NPY_INT32);
        if (!cast)
            return NULL;
        src = cast;
    } else if (!PyArray_Check(obj) && obj != Py_None) {
        /* torch tensors and other array-likes: look at the dtype NumPy gives them */
        PyObject *probe = PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
        if (probe && PyArray_TYPE((PyArrayObject *)probe) == NPY_BOOL) {
            cast = PyArray_Cast((PyArrayObject *)probe, NPY_INT32);
            Py_DECREF(probe);
            if (!cast)
                return NULL;
            src = cast;
        } else {
            Py_XDECREF(probe);
            PyErr_Clear();
        }
    }
    PyArrayObject *a = v2t_py_ids_array(src, name, 2, 2);
    Py_XDECREF(cast);
    if (!a)
        return NULL;
    if (PyArray_DIM(a, 0) != B || PyArray_DIM(a, 1) != T) {
        PyErr_Format(PyExc_ValueError, "%s: expected shape [%lld, %lld] to match %s, got %s", name, (long long)B,
                     (long long)T, batch_name, v2t_py_shape_str(a));
        Py_DECREF(a);
        return NULL;
    }
    const int32_t *v = PyArray_DATA(a);
    for (npy_intp i = 0; i < B * T; i++) {
        if (v[i] != 0 && v[i] != 1) {
            PyErr_Format(PyExc_ValueError, "%s: expected 0/1 values, got %d at [%lld, %lld]", name, (int)v[i],
                         (long long)(i / T), (long long)(i % T));
            Py_DECREF(a);
            return NULL;
        }
    }
    return a;
}

static int check_batch_and_length(PyArrayObject *a, const char *name, int64_t max_length)
{
    if (PyArray_DIM(a, 0) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: empty batch (shape %s); expected at least one sequence", name,
                     v2t_py_shape_str(a));
        return -1;
    }
    if (PyArray_DIM(a, 1) == 0) {
        PyErr_Format(PyExc_ValueError, "%s: empty sequences (shape %s); expected length >= 1", name,
                     v2t_py_shape_str(a));
        return -1;
    }
    if (PyArray_DIM(a, 1) > max_length) {
        PyErr_Format(PyExc_ValueError, "%s: sequence length %lld exceeds the model's maximum of %lld (max_length)",
                     name, (long long)PyArray_DIM(a, 1), (long long)max_length);
        return -1;
    }
    return 0;
}

/* The encoder side of a call: exactly one of input_ids / inputs_embeds / encoder_hidden_states,
 * and an optional mask. */
typedef struct source {
    PyArrayObject *ids, *embeds, *enc, *mask;
    npy_intp B, T;
    const char *name;
} source;

static void source_release(source *src)
{
    Py_XDECREF(src->ids);
    Py_XDECREF(src->embeds);
    Py_XDECREF(src->enc);
    Py_XDECREF(src->mask);
}

static int parse_source(const v2t_t5_model *m, PyObject *ids_o, PyObject *mask_o, PyObject *emb_o, PyObject *enc_o,
                        source *src)
{
    const v2t_t5_config *c = &m->cfg;
    memset(src, 0, sizeof *src);
    int given = (ids_o != Py_None) + (emb_o != Py_None) + (enc_o && enc_o != Py_None);
    if (given != 1) {
        PyErr_Format(PyExc_ValueError, "expected exactly one of input_ids, inputs_embeds%s; got %d",
                     enc_o ? ", encoder_hidden_states" : "", given);
        return -1;
    }
    PyArrayObject *a;
    if (ids_o != Py_None) {
        src->name = "input_ids";
        a = src->ids = ids_arg(ids_o, src->name, c->vocab_size);
    } else if (emb_o != Py_None) {
        src->name = "inputs_embeds";
        a = src->embeds = states_arg(emb_o, src->name, c->d_model);
    } else {
        src->name = "encoder_hidden_states";
        a = src->enc = states_arg(enc_o, src->name, c->d_model);
    }
    if (!a || check_batch_and_length(a, src->name, c->max_length) < 0)
        return -1;
    src->B = PyArray_DIM(a, 0);
    src->T = PyArray_DIM(a, 1);
    if (mask_o != Py_None && !(src->mask = mask_arg(mask_o, src->B, src->T, src->name)))
        return -1;
    return 0;
}

/* Decoder ids [B, L] with the batch of the source. */
static PyArrayObject *decoder_ids_arg(const v2t_t5_model *m, PyObject *obj, const char *name, const source *src)
{
    PyArrayObject *a = ids_arg(obj, name, m->cfg.vocab_size);
    if (!a)
        return NULL;
    if (check_batch_and_length(a, name, m->cfg.max_length) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    if (PyArray_DIM(a, 0) != src->B) {
        PyErr_Format(PyExc_ValueError, "%s: batch size %lld does not match %s batch size %lld", name,
                     (long long)PyArray_DIM(a, 0), src->name, (long long)src->B);
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

static int need_decoder(const v2t_t5_model *m)
{
    if (m->cfg.encoder_only) {
        PyErr_SetString(PyExc_ValueError, "this T5 model was loaded encoder-only (no decoder weights)");
        return -1;
    }
    return 0;
}

/* Core calls on a parsed source (GIL released by the caller). */
static v2t_status run_source(v2t_t5_session *sess, const source *src, int64_t max_steps)
{
    const int32_t *mask = src->mask ? PyArray_DATA(src->mask) : NULL;
    if (src->enc)
        return v2t_t5_session_set_source(sess, PyArray_DATA(src->enc), mask, src->B, src->T, max_steps);
    return v2t_t5_session_encode_source(sess, src->ids ? PyArray_DATA(src->ids) : NULL,
                                        src->embeds ? PyArray_DATA(src->embeds) : NULL, mask, src->B, src->T,
                                        max_steps);
}

/* ---- methods ---- */

static PyObject *t5_encode(PyT5 *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"input_ids", "attention_mask", "inputs_embeds", NULL};
    PyObject *ids_o = Py_None, *mask_o = Py_None, *emb_o = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOO", kwlist, &ids_o, &mask_o, &emb_o))
        return NULL;
    if (!t5_ready(self))
        return NULL;
    const v2t_t5_model *m = self->model;
    PyObject *result = NULL;
    PyArrayObject *out = NULL;
    source src;
    if (parse_source(m, ids_o, mask_o, emb_o, NULL, &src) < 0)
        goto exit;
    npy_intp dims[3] = {src.B, src.T, m->cfg.d_model};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(3, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_t5_session *sess = NULL;
    s = v2t_t5_session_create(m, &sess);
    if (s == V2T_OK)
        s = v2t_t5_encode(sess, src.ids ? PyArray_DATA(src.ids) : NULL, src.embeds ? PyArray_DATA(src.embeds) : NULL,
                          src.mask ? PyArray_DATA(src.mask) : NULL, src.B, src.T, PyArray_DATA(out));
    v2t_t5_session_free(sess);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    source_release(&src);
    Py_XDECREF(out);
    return result;
}

/* Teacher forcing in one causal pass, or (stepwise) one decoder step per position through
 * the KV cache. */
static v2t_status teacher_forced(v2t_t5_session *sess, const int32_t *dec, int64_t B, int64_t L, int64_t V,
                                 int stepwise, float *logits)
{
    if (!stepwise)
        return v2t_t5_decoder_logits(sess, dec, L, logits);
    int32_t *col = NULL;
    float *step_logits = NULL;
    v2t_status s = v2t_alloc((void **)&col, (size_t)B * sizeof(int32_t), "decoder step tokens");
    if (s == V2T_OK)
        s = v2t_alloc((void **)&step_logits, (size_t)(B * V) * sizeof(float), "decoder step logits");
    if (s == V2T_OK)
        s = v2t_t5_start(sess, B, 1);
    for (int64_t i = 0; s == V2T_OK && i < L; i++) {
        for (int64_t b = 0; b < B; b++)
            col[b] = dec[b * L + i];
        s = v2t_t5_step(sess, col, NULL, B, step_logits);
        for (int64_t b = 0; s == V2T_OK && b < B; b++)
            memcpy(logits + (b * L + i) * V, step_logits + b * V, (size_t)V * sizeof(float));
    }
    v2t_free(col);
    v2t_free(step_logits);
    return s;
}

static PyObject *t5_decoder_logits(PyT5 *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"decoder_input_ids", "input_ids", "attention_mask", "inputs_embeds",
                             "encoder_hidden_states", "stepwise", NULL};
    PyObject *dec_o, *ids_o = Py_None, *mask_o = Py_None, *emb_o = Py_None, *enc_o = Py_None;
    int stepwise = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOOOp", kwlist, &dec_o, &ids_o, &mask_o, &emb_o, &enc_o,
                                     &stepwise))
        return NULL;
    if (!t5_ready(self) || need_decoder(self->model) < 0)
        return NULL;
    const v2t_t5_model *m = self->model;
    PyObject *result = NULL;
    PyArrayObject *dec = NULL, *out = NULL;
    source src;
    if (parse_source(m, ids_o, mask_o, emb_o, enc_o, &src) < 0)
        goto exit;
    if (!(dec = decoder_ids_arg(m, dec_o, "decoder_input_ids", &src)))
        goto exit;
    const npy_intp B = src.B, L = PyArray_DIM(dec, 1), V = m->cfg.vocab_size;
    npy_intp dims[3] = {B, L, V};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(3, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_t5_session *sess = NULL;
    s = v2t_t5_session_create(m, &sess);
    if (s == V2T_OK)
        s = run_source(sess, &src, L);
    if (s == V2T_OK)
        s = teacher_forced(sess, PyArray_DATA(dec), B, L, V, stepwise, PyArray_DATA(out));
    v2t_t5_session_free(sess);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    source_release(&src);
    Py_XDECREF(dec);
    Py_XDECREF(out);
    return result;
}

/* decode_steps(tokens[S, B*beams], parents[S, B*beams] or None, beams, <source>) -> logits [S, B*beams, V]:
 * drives start/step like a search does (parents of step 0 are ignored). */
static PyObject *t5_decode_steps(PyT5 *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tokens", "parents", "beams", "input_ids", "attention_mask", "inputs_embeds",
                             "encoder_hidden_states", NULL};
    PyObject *tok_o, *par_o = Py_None, *ids_o = Py_None, *mask_o = Py_None, *emb_o = Py_None, *enc_o = Py_None;
    long long beams = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OLOOOO", kwlist, &tok_o, &par_o, &beams, &ids_o, &mask_o, &emb_o,
                                     &enc_o))
        return NULL;
    if (!t5_ready(self) || need_decoder(self->model) < 0)
        return NULL;
    const v2t_t5_model *m = self->model;
    PyObject *result = NULL;
    PyArrayObject *tok = NULL, *par = NULL, *out = NULL;
    source src;
    if (parse_source(m, ids_o, mask_o, emb_o, enc_o, &src) < 0)
        goto exit;
    if (beams < 1 || beams > 4096) {
        PyErr_Format(PyExc_ValueError, "beams: expected 1..4096, got %lld", beams);
        goto exit;
    }
    if (!(tok = ids_arg(tok_o, "tokens", m->cfg.vocab_size)))
        goto exit;
    const npy_intp S = PyArray_DIM(tok, 0), R = PyArray_DIM(tok, 1), V = m->cfg.vocab_size;
    if (R != src.B * beams || S < 1 || S > m->cfg.max_length) {
        PyErr_Format(PyExc_ValueError, "tokens: expected shape [steps in 1..%lld, %lld] (batch x beams), got %s",
                     (long long)m->cfg.max_length, (long long)(src.B * beams), v2t_py_shape_str(tok));
        goto exit;
    }
    if (par_o != Py_None) {
        if (!(par = v2t_py_ids_array(par_o, "parents", 2, 2)))
            goto exit;
        if (PyArray_DIM(par, 0) != S || PyArray_DIM(par, 1) != R) {
            PyErr_Format(PyExc_ValueError, "parents: expected shape %s like tokens, got %s", v2t_py_shape_str(tok),
                         v2t_py_shape_str(par));
            goto exit;
        }
    }
    npy_intp dims[3] = {S, R, V};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(3, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_t5_session *sess = NULL;
    s = v2t_t5_session_create(m, &sess);
    if (s == V2T_OK)
        s = run_source(sess, &src, S);
    if (s == V2T_OK)
        s = v2t_t5_start(sess, src.B, beams);
    const int32_t *t = PyArray_DATA(tok), *p = par ? PyArray_DATA(par) : NULL;
    float *o = PyArray_DATA(out);
    for (npy_intp i = 0; s == V2T_OK && i < S; i++)
        s = v2t_t5_step(sess, t + i * R, (p && i > 0) ? p + i * R : NULL, R, o + i * R * V);
    v2t_t5_session_free(sess);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    source_release(&src);
    Py_XDECREF(tok);
    Py_XDECREF(par);
    Py_XDECREF(out);
    return result;
}

/* generate(input_ids=None, attention_mask=None, inputs_embeds=None, encoder_hidden_states=None,
 *          max_length=20, num_beams=1, num_return_sequences=1, length_penalty=1.0,
 *          early_stopping=False) -> (ids int64 [B * num_return_sequences, L], scores float32 or None):
 * transformers' generate (greedy / beam search, decoder start, eos and pad ids from the config). */
static PyObject *t5_generate(PyT5 *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"input_ids", "attention_mask", "inputs_embeds", "encoder_hidden_states", "max_length",
                             "num_beams", "num_return_sequences", "length_penalty", "early_stopping", NULL};
    PyObject *ids_o = Py_None, *mask_o = Py_None, *emb_o = Py_None, *enc_o = Py_None, *es_o = Py_False;
    long long max_length = 20, num_beams = 1, nrs = 1;
    double length_penalty = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOOLLLdO", kwlist, &ids_o, &mask_o, &emb_o, &enc_o, &max_length,
                                     &num_beams, &nrs, &length_penalty, &es_o))
        return NULL;
    if (!t5_ready(self) || need_decoder(self->model) < 0)
        return NULL;
    const v2t_t5_model *m = self->model;
    PyObject *result = NULL, *ids = NULL, *scores = NULL;
    int32_t *out = NULL;
    int64_t *lengths = NULL;
    source src;
    if (parse_source(m, ids_o, mask_o, emb_o, enc_o, &src) < 0)
        goto exit;
    v2t_generate_config cfg = v2t_generate_defaults();
    cfg.max_length = max_length;
    cfg.num_beams = num_beams;
    cfg.num_return_sequences = nrs;
    cfg.length_penalty = length_penalty;
    cfg.decoder_start_id = m->cfg.decoder_start_token_id;
    cfg.eos_id = m->cfg.eos_token_id;
    cfg.pad_id = m->cfg.pad_token_id;
    if (v2t_py_early_stopping(es_o, &cfg.early_stopping) < 0)
        goto exit;
    v2t_decoder_ops ops = v2t_t5_decoder_ops(m);
    v2t_status s = v2t_generate_check(&ops, src.B, &cfg);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    if (max_length - 1 > m->cfg.max_length) {
        PyErr_Format(PyExc_ValueError,
                     "max_length: expected at most %lld (the model's max_length plus the decoder start token), got %lld",
                     (long long)m->cfg.max_length + 1, max_length);
        goto exit;
    }
    const int64_t n = src.B * nrs;
    size_t id_bytes;
    if (v2t_mul_size((size_t)n * sizeof(int32_t), (size_t)max_length, &id_bytes) != V2T_OK ||
        v2t_alloc((void **)&out, id_bytes, "generated ids") != V2T_OK ||
        v2t_alloc((void **)&lengths, (size_t)n * sizeof(int64_t), "generated lengths") != V2T_OK) {
        PyErr_Format(PyExc_MemoryError, "generate: cannot allocate %lld x %lld ids", (long long)n, max_length);
        goto exit;
    }
    if (num_beams > 1) {
        npy_intp dims[1] = {(npy_intp)n};
        if (!(scores = PyArray_ZEROS(1, dims, NPY_FLOAT32, 0)))
            goto exit;
    }
    float *score_ptr = scores ? PyArray_DATA((PyArrayObject *)scores) : NULL;
    Py_BEGIN_ALLOW_THREADS
    v2t_t5_session *sess = NULL;
    s = v2t_t5_session_create(m, &sess);
    if (s == V2T_OK)
        s = run_source(sess, &src, max_length - 1);
    if (s == V2T_OK)
        s = v2t_generate(&ops, sess, src.B, &cfg, out, lengths, score_ptr);
    v2t_t5_session_free(sess);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    if (!(ids = v2t_py_generated_ids(out, lengths, n, max_length)))
        goto exit;
    result = PyTuple_Pack(2, ids, scores ? scores : Py_None);
exit:
    source_release(&src);
    v2t_free(out);
    v2t_free(lengths);
    Py_XDECREF(ids);
    Py_XDECREF(scores);
    return PyErr_Occurred() ? NULL : result;
}

static PyObject *t5_get_int(PyT5 *self, void *which)
{
    if (!t5_ready(self))
        return NULL;
    const v2t_t5_config *c = &self->model->cfg;
    switch ((intptr_t)which) {
    case 0: return PyLong_FromLongLong(c->vocab_size);
    case 1: return PyLong_FromLongLong(c->d_model);
    case 2: return PyLong_FromLongLong(c->max_length);
    default: return PyBool_FromLong(c->encoder_only);
    }
}

static PyMethodDef t5_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))t5_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(input_ids=None, attention_mask=None, inputs_embeds=None) -> float32 [B, T, d_model]"},
    {"decoder_logits", (PyCFunction)(void (*)(void))t5_decoder_logits, METH_VARARGS | METH_KEYWORDS,
     "decoder_logits(decoder_input_ids, input_ids=None, attention_mask=None, inputs_embeds=None, "
     "encoder_hidden_states=None, stepwise=False) -> float32 [B, L, vocab]"},
    {"decode_steps", (PyCFunction)(void (*)(void))t5_decode_steps, METH_VARARGS | METH_KEYWORDS,
     "decode_steps(tokens, parents=None, beams=1, input_ids=None, attention_mask=None, inputs_embeds=None, "
     "encoder_hidden_states=None) -> float32 [S, B*beams, vocab]: the step path as a search drives it."},
    {"generate", (PyCFunction)(void (*)(void))t5_generate, METH_VARARGS | METH_KEYWORDS,
     "generate(input_ids=None, attention_mask=None, inputs_embeds=None, encoder_hidden_states=None, "
     "max_length=20, num_beams=1, num_return_sequences=1, length_penalty=1.0, early_stopping=False) -> "
     "(ids int64 [B * num_return_sequences, L], sequence scores float32 [B * num_return_sequences] or None "
     "for greedy): transformers' generate, GIL released."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef t5_getset[] = {
    {"vocab_size", (getter)t5_get_int, NULL, "vocabulary size", (void *)0},
    {"d_model", (getter)t5_get_int, NULL, "hidden size", (void *)1},
    {"max_length", (getter)t5_get_int, NULL, "longest accepted sequence", (void *)2},
    {"encoder_only", (getter)t5_get_int, NULL, "loaded without the decoder", (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyT5_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.T5",
    .tp_basicsize = sizeof(PyT5),
    .tp_dealloc = (destructor)t5_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "T5(path, prefix='', **config): T5 weights from a safetensors file, prepacked for oneDNN.",
    .tp_methods = t5_methods,
    .tp_getset = t5_getset,
    .tp_init = (initproc)t5_init,
    .tp_new = PyType_GenericNew,
};

v2t_t5_model *v2t_py_t5_model(PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, &PyT5_Type)) {
        PyErr_Format(PyExc_TypeError, "expected a vec2text_c._core.T5, got %.100s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyT5 *t = (PyT5 *)obj;
    return t5_ready(t) ? t->model : NULL;
}

int v2t_py_init_t5(PyObject *m)
{
    if (PyType_Ready(&PyT5_Type) < 0)
        return -1;
    Py_INCREF(&PyT5_Type);
    if (PyModule_AddObject(m, "T5", (PyObject *)&PyT5_Type) < 0) {
        Py_DECREF(&PyT5_Type);
        return -1;
    }
    return v2t_py_init_t5_hooks(m);
}
