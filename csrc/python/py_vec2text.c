/* _core.Inverter, _core.Corrector and _core.invert: vec2text's models and correction loop.
 *
 * Inverter/Corrector add their embedding transforms to a _core.T5 object (the encoder-decoder
 * loaded from the same checkpoint with prefix "encoder_decoder."), which they keep alive.
 * invert() runs the whole loop with the GIL released; the re-embedding callback and the
 * observers take the GIL back for the time of a Python call. An exception raised by a
 * callback (KeyboardInterrupt included) stops the loop and is re-raised as is.
 */
#include "py_common.h"

#include <math.h>
#include <string.h>

#include "io/safetensors.h"
#include "vec2text/checkpoint.h"
#include "vec2text/loop.h"

/* ---- Inverter / Corrector ---- */

typedef struct {
    PyObject_HEAD
    PyObject *t5;          /* the _core.T5 holding the encoder-decoder */
    v2t_inverter *inv;     /* one of inv / cor is set */
    v2t_corrector *cor;
} PyV2TModel;

static PyTypeObject PyInverter_Type, PyCorrector_Type;

static void model_dealloc(PyV2TModel *self)
{
    v2t_inverter_free(self->inv);
    v2t_corrector_free(self->cor);
    Py_XDECREF(self->t5);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int model_init(PyV2TModel *self, PyObject *args, PyObject *kwds, int corrector)
{
    V2T_PY_INIT_ONCE(self->inv || self->cor, corrector ? "Corrector" : "Inverter");
    static char *kwlist[] = {"path", "t5", "num_repeat_tokens", "copy_gate", NULL};
    PyObject *path_obj = NULL, *t5_obj;
    long long nrep;
    int copy_gate = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&OL|$p", kwlist, PyUnicode_FSConverter, &path_obj, &t5_obj, &nrep,
                                     &copy_gate))
        return -1;
    if (copy_gate && !corrector) {
        PyErr_SetString(PyExc_ValueError, "copy_gate: only a corrector reads a hypothesis; an Inverter takes none");
        Py_XDECREF(path_obj);
        return -1;
    }
    int rc = -1;
    const v2t_t5_model *t5 = v2t_py_t5_model(t5_obj);
    if (!t5)
        goto exit;
    const char *path = PyBytes_AS_STRING(path_obj);
    v2t_inverter *inv = NULL;
    v2t_corrector *cor = NULL;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_st *st = NULL;
    s = v2t_st_open(path, &st);
    if (s == V2T_OK)
        s = corrector ? v2t_corrector_load(st, t5, nrep, copy_gate, &cor) : v2t_inverter_load(st, t5, nrep, &inv);
    v2t_st_close(st);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    v2t_inverter_free(self->inv);
    v2t_corrector_free(self->cor);
    Py_XSETREF(self->t5, Py_NewRef(t5_obj));
    self->inv = inv;
    self->cor = cor;
    rc = 0;
exit:
    Py_XDECREF(path_obj);
    return rc;
}

static int inverter_init(PyV2TModel *self, PyObject *args, PyObject *kwds) { return model_init(self, args, kwds, 0); }
static int corrector_init(PyV2TModel *self, PyObject *args, PyObject *kwds) { return model_init(self, args, kwds, 1); }

static int model_ready(PyV2TModel *self)
{
    if (!self->inv && !self->cor) {
        PyErr_SetString(PyExc_ValueError, "model is not loaded");
        return 0;
    }
    return 1;
}

static int64_t model_dim(PyV2TModel *m) { return m->inv ? m->inv->dim : m->cor->dim; }

/* Embeddings [B, D]: float, finite, non-empty, D as the model expects. */
static PyArrayObject *embeddings_arg(PyObject *obj, const char *name, int64_t D, const char *who)
{
    PyArrayObject *a = v2t_py_float_array(obj, name, 2, 2);
    if (!a)
        return NULL;
    if (PyArray_DIM(a, 0) < 1 || PyArray_DIM(a, 1) != D) {
        PyErr_Format(PyExc_ValueError, "%s: expected shape [batch >= 1, %lld] (the %s's embedding dimension), got %s",
                     name, (long long)D, who, v2t_py_shape_str(a));
        Py_DECREF(a);
        return NULL;
    }
    if (v2t_py_check_finite(a, name) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* Inverter.inputs(embeddings [B, D]) -> [B, R, d_model] */
static PyObject *inverter_inputs(PyV2TModel *self, PyObject *arg)
{
    if (!model_ready(self))
        return NULL;
    const v2t_inverter *inv = self->inv;
    PyArrayObject *e = embeddings_arg(arg, "embeddings", inv->dim, "inverter");
    if (!e)
        return NULL;
    const npy_intp B = PyArray_DIM(e, 0);
    npy_intp dims[3] = {B, inv->num_repeat_tokens, inv->t5->cfg.d_model};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(3, dims, NPY_FLOAT32);
    if (!out) {
        Py_DECREF(e);
        return NULL;
    }
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    float *hidden = NULL;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK)
        s = v2t_alloc((void **)&hidden, (size_t)(B * inv->dim) * sizeof(float), "inverter hidden");
    if (s == V2T_OK)
        s = v2t_inverter_inputs(inv, &ex, PyArray_DATA(e), B, hidden, PyArray_DATA(out));
    v2t_free(hidden);
    v2t_exec_release(&ex);
    Py_END_ALLOW_THREADS
    Py_DECREF(e);
    if (s != V2T_OK) {
        Py_DECREF(out);
        return v2t_py_raise(s);
    }
    return (PyObject *)out;
}

/* Corrector.inputs(embeddings [B, D], hypothesis_embeddings [B, D], hypothesis_ids [B, L])
 * -> (inputs_embeds [B, 4+3R+L, d_model], attention_mask int32 [B, 4+3R+L]) */
static PyObject *corrector_inputs(PyV2TModel *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"embeddings", "hypothesis_embeddings", "hypothesis_ids", NULL};
    PyObject *eo, *ho, *io;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO", kwlist, &eo, &ho, &io))
        return NULL;
    if (!model_ready(self))
        return NULL;
    const v2t_corrector *c = self->cor;
    PyObject *result = NULL;
    PyArrayObject *e = NULL, *h = NULL, *ids = NULL, *emb = NULL, *mask = NULL;
    if (!(e = embeddings_arg(eo, "embeddings", c->dim, "corrector")) ||
        !(h = embeddings_arg(ho, "hypothesis_embeddings", c->dim, "corrector")) ||
        !(ids = v2t_py_ids_array(io, "hypothesis_ids", 2, 2)))
        goto exit;
    const npy_intp B = PyArray_DIM(e, 0), L = PyArray_DIM(ids, 1);
    if (PyArray_DIM(h, 0) != B || PyArray_DIM(ids, 0) != B) {
        PyErr_Format(PyExc_ValueError, "hypothesis_embeddings / hypothesis_ids: expected batch %lld like embeddings, "
                     "got %lld / %lld", (long long)B, (long long)PyArray_DIM(h, 0), (long long)PyArray_DIM(ids, 0));
        goto exit;
    }
    const int64_t S = v2t_corrector_length(c, L);
    if (S > c->t5->cfg.max_length) {
        PyErr_Format(PyExc_ValueError, "hypothesis_ids: %lld tokens make %lld encoder positions, more than the T5 "
                     "model's max_length %lld", (long long)L, (long long)S, (long long)c->t5->cfg.max_length);
        goto exit;
    }
    npy_intp d3[3] = {B, S, c->t5->cfg.d_model}, d2[2] = {B, S};
    if (!(emb = (PyArrayObject *)PyArray_SimpleNew(3, d3, NPY_FLOAT32)) ||
        !(mask = (PyArrayObject *)PyArray_SimpleNew(2, d2, NPY_INT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    v2t_buffer scratch = {0};
    s = v2t_exec_init(&ex);
    if (s == V2T_OK)
        s = v2t_corrector_inputs(c, &ex, PyArray_DATA(e), c->dim, PyArray_DATA(h), c->dim, PyArray_DATA(ids), L, B, L,
                                 &scratch, PyArray_DATA(emb), PyArray_DATA(mask));
    v2t_buffer_release(&scratch);
    v2t_exec_release(&ex);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(OO)", emb, mask);
exit:
    Py_XDECREF(e);
    Py_XDECREF(h);
    Py_XDECREF(ids);
    Py_XDECREF(emb);
    Py_XDECREF(mask);
    return result;
}

static PyObject *model_get(PyV2TModel *self, void *which)
{
    if (!model_ready(self))
        return NULL;
    const v2t_t5_model *t5 = self->inv ? self->inv->t5 : self->cor->t5;
    switch ((intptr_t)which) {
    case 0: return PyLong_FromLongLong(model_dim(self));
    case 1: return PyLong_FromLongLong(self->inv ? self->inv->num_repeat_tokens : self->cor->num_repeat_tokens);
    case 2: return PyLong_FromLongLong(t5->cfg.d_model);
    case 4: return PyBool_FromLong(self->cor ? self->cor->copy_gate : 0);
    default: return Py_NewRef(self->t5);
    }
}

static PyGetSetDef model_getset[] = {
    {"dim", (getter)model_get, NULL, "embedding dimension D", (void *)0},
    {"num_repeat_tokens", (getter)model_get, NULL, "pseudo-tokens per embedding transform", (void *)1},
    {"d_model", (getter)model_get, NULL, "the T5 model's hidden size", (void *)2},
    {"t5", (getter)model_get, NULL, "the _core.T5 encoder-decoder", (void *)3},
    {"copy_gate", (getter)model_get, NULL,
     "whether a learnt bonus for the hypothesis' token is added at each decoder step (a corrector's option; "
     "False for vec2text's models and every inverter)", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef inverter_methods[] = {
    {"inputs", (PyCFunction)inverter_inputs, METH_O,
     "inputs(embeddings [B, D]) -> float32 [B, R, d_model]: the T5 encoder inputs (embedding_transform, reshaped)."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef corrector_methods[] = {
    {"inputs", (PyCFunction)(void (*)(void))corrector_inputs, METH_VARARGS | METH_KEYWORDS,
     "inputs(embeddings, hypothesis_embeddings, hypothesis_ids) -> (inputs_embeds [B, 4+3R+L, d_model], "
     "attention_mask int32 [B, 4+3R+L]): the LayerNorm'd T5 encoder inputs."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PyInverter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.Inverter",
    .tp_basicsize = sizeof(PyV2TModel),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Inverter(path, t5, num_repeat_tokens): vec2text InversionModel's embedding transform over a _core.T5.",
    .tp_methods = inverter_methods,
    .tp_getset = model_getset,
    .tp_init = (initproc)inverter_init,
    .tp_new = PyType_GenericNew,
};

static PyTypeObject PyCorrector_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.Corrector",
    .tp_basicsize = sizeof(PyV2TModel),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Corrector(path, t5, num_repeat_tokens): vec2text CorrectorEncoderModel's transforms and LayerNorm "
              "over a _core.T5.",
    .tp_methods = corrector_methods,
    .tp_getset = model_getset,
    .tp_init = (initproc)corrector_init,
    .tp_new = PyType_GenericNew,
};

/* ---- the loop ---- */

typedef struct loop_ctx {
    PyObject *embed, *on_round, *on_progress;
    int64_t dim;
    PyObject *exc_type, *exc_value, *exc_tb; /* the first exception a callback raised */
} loop_ctx;

/* Called with the GIL held after a Python call failed: keep the exception for the binding. */
static v2t_status keep_exception(loop_ctx *c, const char *what)
{
    if (!c->exc_type)
        PyErr_Fetch(&c->exc_type, &c->exc_value, &c->exc_tb);
    else
        PyErr_Clear();
    return v2t_fail(V2T_ERR_BACKEND, "%s raised an exception", what);
}

static v2t_status py_embed(void *ctx, const int32_t *ids, int64_t rows, int64_t width, float *out)
{
    loop_ctx *c = ctx;
    v2t_status s = V2T_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    npy_intp dims[2] = {rows, width};
    PyObject *arr = PyArray_SimpleNew(2, dims, NPY_INT32), *res = NULL;
    PyArrayObject *a = NULL;
    if (!arr)
        goto fail;
    memcpy(PyArray_DATA((PyArrayObject *)arr), ids, (size_t)(rows * width) * sizeof(int32_t));
    if (!(res = PyObject_CallOneArg(c->embed, arr)))
        goto fail;
    if (!(a = v2t_py_float_array(res, "embedder output", 2, 2)))
        goto fail;
    if (PyArray_DIM(a, 0) != rows || PyArray_DIM(a, 1) != c->dim) {
        PyErr_Format(PyExc_ValueError, "embedder output: expected shape [%lld, %lld] (one %lld-dimensional embedding "
                     "per text), got %s", (long long)rows, (long long)c->dim, (long long)c->dim, v2t_py_shape_str(a));
        goto fail;
    }
    if (v2t_py_check_finite(a, "embedder output") < 0)
        goto fail;
    memcpy(out, PyArray_DATA(a), (size_t)(rows * c->dim) * sizeof(float));
    goto done;
fail:
    s = keep_exception(c, "the embedder");
done:
    Py_XDECREF(arr);
    Py_XDECREF(res);
    Py_XDECREF(a);
    PyGILState_Release(g);
    return s;
}

static PyObject *copy_array(int nd, npy_intp *dims, int type, const void *src, size_t elem)
{
    if (!src)
        Py_RETURN_NONE;
    PyObject *a = PyArray_SimpleNew(nd, dims, type);
    if (a) {
        size_t n = elem;
        for (int i = 0; i < nd; i++)
            n *= (size_t)dims[i];
        memcpy(PyArray_DATA((PyArrayObject *)a), src, n);
    }
    return a;
}

static v2t_status py_round(void *ctx, const v2t_loop_round *r)
{
    loop_ctx *c = ctx;
    if (c->on_round == Py_None)
        return V2T_OK;
    v2t_status s = V2T_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    const npy_intp rows = r->batch * r->beams;
    npy_intp d_ids[2] = {rows, r->width}, d_rows[1] = {rows}, d_emb[2] = {rows, c->dim}, d_b[1] = {r->batch};
    PyObject *ids = copy_array(2, d_ids, NPY_INT32, r->ids, sizeof(int32_t));
    PyObject *len = copy_array(1, d_rows, NPY_INT64, r->lengths, sizeof(int64_t));
    PyObject *emb = copy_array(2, d_emb, NPY_FLOAT32, r->embeddings, sizeof(float));
    PyObject *cos = copy_array(1, d_rows, NPY_FLOAT32, r->cosines, sizeof(float));
    PyObject *best = copy_array(1, d_b, NPY_FLOAT32, r->best_scores, sizeof(float));
    PyObject *act = copy_array(1, d_b, NPY_BOOL, r->active, 1);
    PyObject *res = NULL;
    if (ids && len && emb && cos && best && act)
        res = PyObject_CallFunction(c->on_round, "LLOOOOOO", (long long)r->round, (long long)r->beams, ids, len, emb,
                                    cos, best, act);
    if (!res)
        s = keep_exception(c, "the round callback");
    Py_XDECREF(ids);
    Py_XDECREF(len);
    Py_XDECREF(emb);
    Py_XDECREF(cos);
    Py_XDECREF(best);
    Py_XDECREF(act);
    Py_XDECREF(res);
    PyGILState_Release(g);
    return s;
}

static v2t_status py_progress(void *ctx, int64_t done, int64_t total)
{
    loop_ctx *c = ctx;
    if (c->on_progress == Py_None)
        return V2T_OK;
    v2t_status s = V2T_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *res = PyObject_CallFunction(c->on_progress, "LL", (long long)done, (long long)total);
    if (!res)
        s = keep_exception(c, "the progress callback");
    Py_XDECREF(res);
    PyGILState_Release(g);
    return s;
}

static int check_callable(PyObject *o, const char *name, int allow_none)
{
    if ((allow_none && o == Py_None) || PyCallable_Check(o))
        return 0;
    PyErr_Format(PyExc_TypeError, "%s: expected a callable%s, got %.100s", name, allow_none ? " or None" : "",
                 Py_TYPE(o)->tp_name);
    return -1;
}

/* invert(inverter, corrector, embeddings, embed, *, num_steps=None, sequence_beam_width=0,
 *        max_length=128, hypothesis_max_length=32, keep_best=False, stop_at_cosine=None,
 *        embed_outputs=False, batch_size=0, memory_budget=2 GiB, on_round=None, on_progress=None)
 * -> (ids int32 [B, W], lengths int64 [B], cosines float32 [B]) */
static PyObject *py_invert(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"inverter", "corrector", "embeddings", "embed", "num_steps", "sequence_beam_width",
                             "max_length", "hypothesis_max_length", "keep_best", "stop_at_cosine", "embed_outputs",
                             "batch_size", "memory_budget", "on_round", "on_progress", "timings", "candidates",
                             "edit_rounds", "edit_top_k", NULL};
    PyObject *inv_o, *cor_o, *emb_o, *embed_o, *steps_o = Py_None, *stop_o = Py_None;
    loop_ctx ctx = {.on_round = Py_None, .on_progress = Py_None};
    v2t_loop_config cfg = v2t_loop_defaults();
    long long beam = 0, max_len = cfg.max_length, hyp_len = cfg.hypothesis_max_length, chunk = 0,
              budget = (long long)cfg.memory_budget, candidates = 0, edit_rounds = 0, edit_top_k = cfg.edit_top_k;
    int keep_best = 0, embed_outputs = 0, want_timings = 0;
    v2t_loop_timings timings = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO|$OLLLpOpLLOOpLLL", kwlist, &PyInverter_Type, &inv_o, &cor_o,
                                     &emb_o, &embed_o, &steps_o, &beam, &max_len, &hyp_len, &keep_best, &stop_o,
                                     &embed_outputs, &chunk, &budget, &ctx.on_round, &ctx.on_progress,
                                     &want_timings, &candidates, &edit_rounds, &edit_top_k))
        return NULL;
    PyV2TModel *inv_m = (PyV2TModel *)inv_o;
    if (!model_ready(inv_m))
        return NULL;
    const v2t_corrector *cor = NULL;
    if (cor_o != Py_None) {
        if (!PyObject_TypeCheck(cor_o, &PyCorrector_Type)) {
            PyErr_Format(PyExc_TypeError, "corrector: expected a vec2text_c._core.Corrector or None, got %.100s",
                         Py_TYPE(cor_o)->tp_name);
            return NULL;
        }
        if (!model_ready((PyV2TModel *)cor_o))
            return NULL;
        cor = ((PyV2TModel *)cor_o)->cor;
    }
    if (check_callable(embed_o, "embed", 0) < 0 || check_callable(ctx.on_round, "on_round", 1) < 0 ||
        check_callable(ctx.on_progress, "on_progress", 1) < 0)
        return NULL;
    if (steps_o == Py_None)
        cfg.num_steps = -1;
    else {
        long long n = PyLong_AsLongLong(steps_o);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (n < 0 || n > 100000) {
            PyErr_Format(PyExc_ValueError, "num_steps: expected None or an int in [0, 100000], got %lld", n);
            return NULL;
        }
        cfg.num_steps = n;
    }
    if (stop_o != Py_None) {
        double v = PyFloat_AsDouble(stop_o);
        if (v == -1.0 && PyErr_Occurred())
            return NULL;
        if (isnan(v)) {
            PyErr_SetString(PyExc_ValueError, "stop_at_cosine: expected a number or None, got NaN");
            return NULL;
        }
        cfg.stop_at_cosine = (float)v;
    }
    if (chunk < 0 || budget < 1) {
        PyErr_Format(PyExc_ValueError, "batch_size / memory_budget: expected >= 0 / >= 1, got %lld / %lld", chunk,
                     budget);
        return NULL;
    }
    cfg.sequence_beam_width = beam;
    cfg.max_length = max_len;
    cfg.hypothesis_max_length = hyp_len;
    cfg.keep_best = keep_best;
    cfg.embed_outputs = embed_outputs;
    cfg.candidates = candidates;
    cfg.edit_rounds = edit_rounds;
    cfg.edit_top_k = edit_top_k;
    cfg.chunk = chunk;
    cfg.memory_budget = (size_t)budget;
    cfg.timings = want_timings ? &timings : NULL;
    ctx.embed = embed_o;
    ctx.dim = inv_m->inv->dim;

    PyObject *result = NULL;
    PyArrayObject *e = NULL, *ids = NULL, *lens = NULL, *cos = NULL;
    if (!(e = embeddings_arg(emb_o, "embeddings", ctx.dim, "inverter")))
        goto exit;
    const npy_intp B = PyArray_DIM(e, 0), W = max_len > hyp_len ? max_len : hyp_len;
    if (W < 2 || W > (1 << 20)) {
        PyErr_Format(PyExc_ValueError, "max_length: expected 2..%d, got %lld", 1 << 20, (long long)W);
        goto exit;
    }
    if (chunk > 0) {
        /* an explicit batch_size is obeyed; say so when it goes past the memory budget that the
         * automatic choice keeps to */
        const npy_intp used = chunk < B ? (npy_intp)chunk : B;
        const double need = (double)used * v2t_loop_bytes_per_example(inv_m->inv, cor, &cfg);
        if (need > (double)cfg.memory_budget) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "batch_size=%lld needs about %.1f GiB of decoder state per batch, above the %.1f GiB budget "
                     "that batch_size=None keeps to; lower it if memory runs short",
                     chunk, need / (1 << 30), (double)cfg.memory_budget / (1 << 30));
            if (PyErr_WarnEx(PyExc_RuntimeWarning, msg, 1) < 0)
                goto exit;
        }
    }
    npy_intp d2[2] = {B, W}, d1[1] = {B};
    if (!(ids = (PyArrayObject *)PyArray_SimpleNew(2, d2, NPY_INT32)) ||
        !(lens = (PyArrayObject *)PyArray_SimpleNew(1, d1, NPY_INT64)) ||
        !(cos = (PyArrayObject *)PyArray_SimpleNew(1, d1, NPY_FLOAT32)))
        goto exit;
    v2t_embed_ops ops = {.embed = py_embed, .ctx = &ctx, .dim = ctx.dim};
    v2t_loop_observer obs = {.round = py_round, .progress = py_progress, .ctx = &ctx};
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_invert(inv_m->inv, cor, &ops, &obs, &cfg, PyArray_DATA(e), B, PyArray_DATA(ids), W, PyArray_DATA(lens),
                   PyArray_DATA(cos));
    Py_END_ALLOW_THREADS
    if (ctx.exc_type) {
        PyErr_Restore(ctx.exc_type, ctx.exc_value, ctx.exc_tb);
        ctx.exc_type = ctx.exc_value = ctx.exc_tb = NULL;
        goto exit;
    }
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    if (want_timings)
        result = Py_BuildValue("(OOO{sdsdsdsdsd})", ids, lens, cos, "transforms", timings.transforms, "encoder",
                               timings.encoder, "decoding", timings.decoding, "embedding", timings.embedding,
                               "selection", timings.selection);
    else
        result = Py_BuildValue("(OOO)", ids, lens, cos);
exit:
    Py_XDECREF(ctx.exc_type);
    Py_XDECREF(ctx.exc_value);
    Py_XDECREF(ctx.exc_tb);
    Py_XDECREF(e);
    Py_XDECREF(ids);
    Py_XDECREF(lens);
    Py_XDECREF(cos);
    return result;
}

/* t5_replace_lm_head(t5, path, name): lm_head := tensor `name` [vocab, d_model] of safetensors `path`. */
static PyObject *py_t5_replace_lm_head(PyObject *self, PyObject *args)
{
    PyObject *t5_obj, *path_obj = NULL;
    const char *name;
    if (!PyArg_ParseTuple(args, "OO&s", &t5_obj, PyUnicode_FSConverter, &path_obj, &name))
        return NULL;
    PyObject *result = NULL;
    v2t_t5_model *m = v2t_py_t5_model(t5_obj);
    if (!m)
        goto exit;
    const char *path = PyBytes_AS_STRING(path_obj);
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_st *st = NULL;
    float *w = NULL;
    const int64_t shape[2] = {m->cfg.vocab_size, m->cfg.d_model};
    s = v2t_st_open(path, &st);
    if (s == V2T_OK)
        s = v2t_st_load_f32(st, name, 2, shape, &w);
    if (s == V2T_OK)
        s = v2t_t5_replace_lm_head(m, w);
    v2t_free(w);
    v2t_st_close(st);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_NewRef(Py_None);
exit:
    Py_XDECREF(path_obj);
    return result;
}

static PyMethodDef vec2text_functions[] = {
    {"invert", (PyCFunction)(void (*)(void))py_invert, METH_VARARGS | METH_KEYWORDS,
     "invert(inverter, corrector, embeddings, embed, *, num_steps=None, sequence_beam_width=0, max_length=128, "
     "hypothesis_max_length=32, keep_best=False, stop_at_cosine=None, embed_outputs=False, batch_size=0, "
     "candidates=0, edit_rounds=0, edit_top_k=4, "
     "memory_budget=2**31, on_round=None, on_progress=None, timings=False) -> (ids int32 [B, W], lengths int64 [B], "
     "cosines float32 [B][, seconds per phase]): the vec2text correction loop (GIL released)."},
    {"t5_replace_lm_head", py_t5_replace_lm_head, METH_VARARGS,
     "t5_replace_lm_head(t5, path, name): use tensor `name` [vocab, d_model] of the safetensors file `path` as the "
     "T5 model's lm_head (only right after loading, before the model is used)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_vec2text(PyObject *m)
{
    if (PyType_Ready(&PyInverter_Type) < 0 || PyType_Ready(&PyCorrector_Type) < 0)
        return -1;
    Py_INCREF(&PyInverter_Type);
    if (PyModule_AddObject(m, "Inverter", (PyObject *)&PyInverter_Type) < 0) {
        Py_DECREF(&PyInverter_Type);
        return -1;
    }
    Py_INCREF(&PyCorrector_Type);
    if (PyModule_AddObject(m, "Corrector", (PyObject *)&PyCorrector_Type) < 0) {
        Py_DECREF(&PyCorrector_Type);
        return -1;
    }
    if (PyModule_AddFunctions(m, vec2text_functions) < 0)
        return -1;
    return v2t_py_init_vec2text_hooks(m);
}
