/* _core.Bert: the BERT encoder (csrc/nn/bert.h), and the pooling test hooks. */
#include "py_common.h"

#include <string.h>

#include "nn/bert.h"
#include "nn/pooling.h"

typedef struct {
    PyObject_HEAD
    v2t_bert *model;
} PyBert;

static void bert_dealloc(PyBert *self)
{
    v2t_bert_free(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int parse_act(const char *name, v2t_act *act)
{
    if (!strcmp(name, "gelu"))
        *act = V2T_ACT_GELU_ERF;
    else if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh"))
        *act = V2T_ACT_GELU_TANH;
    else if (!strcmp(name, "relu"))
        *act = V2T_ACT_RELU;
    else {
        PyErr_Format(PyExc_NotImplementedError,
                     "hidden_act: expected 'gelu', 'gelu_new', 'gelu_pytorch_tanh' or 'relu', got '%s'", name);
        return -1;
    }
    return 0;
}

static int bert_init(PyBert *self, PyObject *args, PyObject *kwds)
{
    V2T_PY_INIT_ONCE(self->model, "BertModel");
    static char *kwlist[] = {"path", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                             "intermediate_size", "max_position_embeddings", "type_vocab_size",
                             "layer_norm_eps", "hidden_act", NULL};
    PyObject *path_obj = NULL;
    v2t_bert_config cfg;
    v2t_bert_default_config(&cfg);
    long long vs = cfg.vocab_size, hs = cfg.hidden_size, nl = cfg.num_layers, nh = cfg.num_heads,
              is = cfg.intermediate_size, mp = cfg.max_position, tv = cfg.type_vocab_size;
    double eps = cfg.layer_norm_eps;
    const char *act = "gelu";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|$LLLLLLLds", kwlist, PyUnicode_FSConverter, &path_obj, &vs, &hs,
                                     &nl, &nh, &is, &mp, &tv, &eps, &act))
        return -1;
    int rc = -1;
    if (parse_act(act, &cfg.hidden_act) < 0)
        goto exit;
    cfg.vocab_size = vs, cfg.hidden_size = hs, cfg.num_layers = nl, cfg.num_heads = nh;
    cfg.intermediate_size = is, cfg.max_position = mp, cfg.type_vocab_size = tv;
    cfg.layer_norm_eps = (float)eps;
    const char *path = PyBytes_AS_STRING(path_obj);
    v2t_bert *m = NULL;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_bert_load(path, &cfg, &m);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    v2t_bert_free(self->model);
    self->model = m;
    rc = 0;
exit:
    Py_XDECREF(path_obj);
    return rc;
}

/* Convert input_ids and the optional mask / token type ids, checking they share one [B, T] shape. */
static int bert_inputs(PyObject *ids_o, PyObject *mask_o, PyObject *type_o, PyArrayObject **ids,
                       PyArrayObject **mask, PyArrayObject **types)
{
    if (!(*ids = v2t_py_ids_array(ids_o, "input_ids", 2, 2)))
        return -1;
    if (mask_o != Py_None && !(*mask = v2t_py_ids_array(mask_o, "attention_mask", 2, 2)))
        return -1;
    if (type_o != Py_None && !(*types = v2t_py_ids_array(type_o, "token_type_ids", 2, 2)))
        return -1;
    if (*mask && !PyArray_SAMESHAPE(*mask, *ids)) {
        char want[160]; /* v2t_py_shape_str reuses one buffer */
        snprintf(want, sizeof want, "%s", v2t_py_shape_str(*ids));
        PyErr_Format(PyExc_ValueError, "attention_mask: expected the shape of input_ids %s, got %s", want,
                     v2t_py_shape_str(*mask));
        return -1;
    }
    if (*types && !PyArray_SAMESHAPE(*types, *ids)) {
        char want[160]; /* v2t_py_shape_str reuses one buffer */
        snprintf(want, sizeof want, "%s", v2t_py_shape_str(*ids));
        PyErr_Format(PyExc_ValueError, "token_type_ids: expected the shape of input_ids %s, got %s", want,
                     v2t_py_shape_str(*types));
        return -1;
    }
    return 0;
}

static int bert_ready(PyBert *self)
{
    if (!self->model) {
        PyErr_SetString(PyExc_ValueError, "Bert object is not initialised");
        return 0;
    }
    return 1;
}

/* forward(input_ids, attention_mask=None, token_type_ids=None) -> float32 [B, T, D]
 * embed(input_ids, attention_mask=None, token_type_ids=None, pooling='mean', normalize=False) -> [B, D] */
static PyObject *bert_run(PyBert *self, PyObject *args, PyObject *kwds, int pooled)
{
    static char *kwlist[] = {"input_ids", "attention_mask", "token_type_ids", "pooling", "normalize", NULL};
    static char *kwlist3[] = {"input_ids", "attention_mask", "token_type_ids", NULL};
    PyObject *ids_o, *mask_o = Py_None, *type_o = Py_None, *result = NULL;
    const char *pooling = "mean";
    int normalize = 0;
    PyArrayObject *ids = NULL, *mask = NULL, *types = NULL, *out = NULL;
    if (!bert_ready(self))
        return NULL;
    if (pooled) {
        if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOsp", kwlist, &ids_o, &mask_o, &type_o, &pooling,
                                         &normalize))
            return NULL;
    } else if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO", kwlist3, &ids_o, &mask_o, &type_o)) {
        return NULL;
    }
    v2t_pooling mode = V2T_POOL_MEAN;
    if (!strcmp(pooling, "cls"))
        mode = V2T_POOL_CLS;
    else if (strcmp(pooling, "mean")) {
        PyErr_Format(PyExc_ValueError, "pooling: expected 'mean' or 'cls', got '%s'", pooling);
        return NULL;
    }
    if (bert_inputs(ids_o, mask_o, type_o, &ids, &mask, &types) < 0)
        goto exit;
    const npy_intp B = PyArray_DIM(ids, 0), T = PyArray_DIM(ids, 1), D = self->model->cfg.hidden_size;
    npy_intp dims[3] = {B, pooled ? D : T, D};
    if (!(out = (PyArrayObject *)PyArray_ZEROS(pooled ? 2 : 3, dims, NPY_FLOAT32, 0)))
        goto exit;
    const int32_t *ip = PyArray_DATA(ids), *mp = mask ? PyArray_DATA(mask) : NULL,
                  *tp = types ? PyArray_DATA(types) : NULL;
    v2t_bert_state st;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_bert_state_init(&st);
    if (s == V2T_OK) {
        if (pooled)
            s = v2t_bert_embed(self->model, &st, ip, tp, mp, B, T, mode, normalize, PyArray_DATA(out));
        else
            s = v2t_bert_forward(self->model, &st, ip, tp, mp, B, T, PyArray_DATA(out));
    }
    v2t_bert_state_release(&st);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(ids);
    Py_XDECREF(mask);
    Py_XDECREF(types);
    Py_XDECREF(out);
    return result;
}

static PyObject *bert_forward(PyBert *self, PyObject *args, PyObject *kwds) { return bert_run(self, args, kwds, 0); }
static PyObject *bert_embed(PyBert *self, PyObject *args, PyObject *kwds) { return bert_run(self, args, kwds, 1); }

static PyObject *bert_get(PyBert *self, void *which)
{
    if (!bert_ready(self))
        return NULL;
    const v2t_bert_config *c = &self->model->cfg;
    switch ((intptr_t)which) {
    case 0: return PyLong_FromLongLong(c->hidden_size);
    case 1: return PyLong_FromLongLong(c->max_position);
    case 2: return PyLong_FromLongLong(c->vocab_size);
    case 3: return PyLong_FromLongLong(c->num_layers);
    default: return PyLong_FromLongLong(c->type_vocab_size);
    }
}

static PyMethodDef bert_methods[] = {
    {"forward", (PyCFunction)(void (*)(void))bert_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(input_ids, attention_mask=None, token_type_ids=None) -> float32 [B, T, hidden_size]."},
    {"embed", (PyCFunction)(void (*)(void))bert_embed, METH_VARARGS | METH_KEYWORDS,
     "embed(input_ids, attention_mask=None, token_type_ids=None, pooling='mean', normalize=False)"
     " -> float32 [B, hidden_size]."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef bert_getset[] = {
    {"hidden_size", (getter)bert_get, NULL, "Width of the hidden states.", (void *)0},
    {"max_position_embeddings", (getter)bert_get, NULL, "Longest sequence the model accepts.", (void *)1},
    {"vocab_size", (getter)bert_get, NULL, "Rows of the word embedding table.", (void *)2},
    {"num_hidden_layers", (getter)bert_get, NULL, "Number of encoder layers.", (void *)3},
    {"type_vocab_size", (getter)bert_get, NULL, "Number of token types.", (void *)4},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyBert_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.Bert",
    .tp_basicsize = sizeof(PyBert),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bert(path, *, vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,\n"
              "     max_position_embeddings, type_vocab_size, layer_norm_eps, hidden_act='gelu')\n"
              "BERT encoder over a safetensors checkpoint (immutable; calls release the GIL).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)bert_init,
    .tp_dealloc = (destructor)bert_dealloc,
    .tp_methods = bert_methods,
    .tp_getset = bert_getset,
};

/* kernel_pool(h[B,T,D], mask[B,T]=None, mode='mean', reference=False) -> [B, D] */
static PyObject *kernel_pool(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"h", "mask", "mode", "reference", NULL};
    PyObject *ho, *mo = Py_None, *result = NULL;
    const char *mode = "mean";
    int reference = 0;
    PyArrayObject *h = NULL, *mask = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Osp", kwlist, &ho, &mo, &mode, &reference))
        return NULL;
    v2t_pooling pm = !strcmp(mode, "cls") ? V2T_POOL_CLS : V2T_POOL_MEAN;
    if (strcmp(mode, "cls") && strcmp(mode, "mean")) {
        PyErr_Format(PyExc_ValueError, "mode: expected 'mean' or 'cls', got '%s'", mode);
        return NULL;
    }
    if (!(h = v2t_py_float_array(ho, "h", 3, 3)))
        goto exit;
    if (mo != Py_None && !(mask = v2t_py_ids_array(mo, "mask", 2, 2)))
        goto exit;
    npy_intp B = PyArray_DIM(h, 0), T = PyArray_DIM(h, 1), D = PyArray_DIM(h, 2);
    if (mask && (PyArray_DIM(mask, 0) != B || PyArray_DIM(mask, 1) != T)) {
        PyErr_Format(PyExc_ValueError, "mask: expected shape [%lld, %lld], got %s", (long long)B, (long long)T,
                     v2t_py_shape_str(mask));
        goto exit;
    }
    npy_intp dims[2] = {B, D};
    if (!(out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0)))
        goto exit;
    const int32_t *mp = mask ? PyArray_DATA(mask) : NULL;
    Py_BEGIN_ALLOW_THREADS
    (reference ? v2t_pool_ref : v2t_pool)(pm, PyArray_DATA(h), mp, B, T, D, PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(h);
    Py_XDECREF(mask);
    Py_XDECREF(out);
    return result;
}

/* kernel_l2_normalize(x[N,D], reference=False) -> normalised copy */
static PyObject *kernel_l2_normalize(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "reference", NULL};
    PyObject *xo;
    int reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p", kwlist, &xo, &reference))
        return NULL;
    PyArrayObject *x = v2t_py_float_array(xo, "x", 2, 2);
    if (!x)
        return NULL;
    PyArrayObject *y = (PyArrayObject *)PyArray_NewCopy(x, NPY_CORDER);
    Py_DECREF(x);
    if (!y)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    (reference ? v2t_l2_normalize_ref : v2t_l2_normalize)(PyArray_DATA(y), PyArray_DIM(y, 0), PyArray_DIM(y, 1));
    Py_END_ALLOW_THREADS
    return (PyObject *)y;
}

static PyMethodDef module_functions[] = {
    {"kernel_pool", (PyCFunction)(void (*)(void))kernel_pool, METH_VARARGS | METH_KEYWORDS,
     "kernel_pool(h, mask=None, mode='mean', reference=False) -> [B, D] (test hook)."},
    {"kernel_l2_normalize", (PyCFunction)(void (*)(void))kernel_l2_normalize, METH_VARARGS | METH_KEYWORDS,
     "kernel_l2_normalize(x, reference=False) -> normalised copy (test hook)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_bert(PyObject *m)
{
    if (PyModule_AddFunctions(m, module_functions) < 0)
        return -1;
    if (PyType_Ready(&PyBert_Type) < 0)
        return -1;
    Py_INCREF(&PyBert_Type);
    if (PyModule_AddObject(m, "Bert", (PyObject *)&PyBert_Type) < 0) {
        Py_DECREF(&PyBert_Type);
        return -1;
    }
    return 0;
}
