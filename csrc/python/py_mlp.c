/* _core.mlp_forward and _core.MLPTrainer: the MLP aligner's forward pass and its training
 * state (parameters, gradients, AdamW moments). vec2text_c/align.py drives the epochs. */
#include "py_common.h"

#include "align/mlp.h"

/* widths: a sequence of at least 2 positive ints -> n_layers, widths[] */
static int parse_widths(PyObject *obj, int *n_layers, int64_t *widths)
{
    PyObject *seq = PySequence_Fast(obj, "widths: expected a sequence of layer widths");
    if (!seq)
        return -1;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    if (k < 2 || k > V2T_MLP_MAX_LAYERS + 1) {
        PyErr_Format(PyExc_ValueError, "widths: expected 2 to %d widths (d_in, hidden..., d_out), got %zd",
                     V2T_MLP_MAX_LAYERS + 1, k);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        long long w = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (w == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (w <= 0) {
            PyErr_Format(PyExc_ValueError, "widths: every width must be positive, width %zd is %lld", i, w);
            Py_DECREF(seq);
            return -1;
        }
        widths[i] = w;
    }
    *n_layers = (int)k - 1;
    Py_DECREF(seq);
    return 0;
}

static PyArrayObject *params_array(PyObject *obj, const v2t_mlp_shape *s)
{
    PyArrayObject *p = v2t_py_float_array(obj, "params", 1, 1);
    if (p && PyArray_DIM(p, 0) != s->n_params) {
        PyErr_Format(PyExc_ValueError, "params: expected %lld values for these widths, got %s",
                     (long long)s->n_params, v2t_py_shape_str(p));
        Py_CLEAR(p);
    }
    return p;
}

static PyArrayObject *rows_array(PyObject *obj, const char *name, int64_t cols)
{
    PyArrayObject *a = v2t_py_float_array(obj, name, 2, 2);
    if (a && PyArray_DIM(a, 1) != cols) {
        PyErr_Format(PyExc_ValueError, "%s: expected %lld columns, got shape %s", name, (long long)cols,
                     v2t_py_shape_str(a));
        Py_CLEAR(a);
    }
    return a;
}

/* mlp_forward(widths, params, x[n, d_in]) -> [n, d_out] */
static PyObject *mlp_forward(PyObject *self, PyObject *args)
{
    PyObject *wo, *po, *xo, *result = NULL;
    PyArrayObject *p = NULL, *x = NULL, *y = NULL;
    int n_layers;
    int64_t widths[V2T_MLP_MAX_LAYERS + 1];
    v2t_mlp_shape shape;
    if (!PyArg_ParseTuple(args, "OOO", &wo, &po, &xo) || parse_widths(wo, &n_layers, widths) < 0)
        return NULL;
    v2t_status s = v2t_mlp_shape_init(&shape, n_layers, widths);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    if (!(p = params_array(po, &shape)) || !(x = rows_array(xo, "x", widths[0])))
        goto exit;
    npy_intp dims[2] = {PyArray_DIM(x, 0), widths[n_layers]};
    if (!(y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_mlp_forward(&shape, PyArray_DATA(p), &ex, PyArray_DATA(x), dims[0], PyArray_DATA(y));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)y;
    y = NULL;
exit:
    Py_XDECREF(p);
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

/* ---- MLPTrainer ---- */

typedef struct {
    PyObject_HEAD
    v2t_mlp_trainer t;
    int ready, busy;
} PyMLPTrainer;

static void trainer_dealloc(PyMLPTrainer *self)
{
    if (self->ready)
        v2t_mlp_trainer_release(&self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* MLPTrainer(widths, params, precision="float32") */
static int trainer_init(PyMLPTrainer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"widths", "params", "precision", NULL};
    PyObject *wo, *po, *prec = Py_None;
    int n_layers, bf16;
    int64_t widths[V2T_MLP_MAX_LAYERS + 1];
    v2t_mlp_shape shape;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "MLPTrainer: in use by another thread");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O", kwlist, &wo, &po, &prec) ||
        v2t_py_matmul_precision(prec, "MLPTrainer", &bf16) < 0 || parse_widths(wo, &n_layers, widths) < 0)
        return -1;
    v2t_status s = v2t_mlp_shape_init(&shape, n_layers, widths);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        return -1;
    }
    PyArrayObject *p = params_array(po, &shape);
    if (!p)
        return -1;
    if (v2t_py_check_finite(p, "params") < 0) {
        Py_DECREF(p);
        return -1;
    }
    if (self->ready)
        v2t_mlp_trainer_release(&self->t);
    self->ready = 0;
    s = v2t_mlp_trainer_init(&self->t, n_layers, widths, PyArray_DATA(p));
    Py_DECREF(p);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        return -1;
    }
    s = v2t_mlp_trainer_set_bf16(&self->t, bf16);
    if (s != V2T_OK) {
        v2t_mlp_trainer_release(&self->t);
        v2t_py_raise(s);
        return -1;
    }
    self->ready = 1;
    return 0;
}

static int trainer_enter(PyMLPTrainer *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "MLPTrainer: not initialised");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "MLPTrainer: in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static PyObject *flat_copy(const float *src, int64_t n)
{
    npy_intp dim = n;
    PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_FLOAT32);
    if (a)
        memcpy(PyArray_DATA(a), src, (size_t)n * sizeof(float));
    return (PyObject *)a;
}

static PyObject *trainer_params(PyMLPTrainer *self, PyObject *Py_UNUSED(ignored))
{
    if (trainer_enter(self) < 0)
        return NULL;
    PyObject *r = flat_copy(self->t.params, self->t.shape.n_params);
    self->busy = 0;
    return r;
}

/* loss_and_grad(x[B, d_in], y[B, d_out]) -> (loss, grads[n_params]) */
static PyObject *trainer_loss_and_grad(PyMLPTrainer *self, PyObject *args)
{
    PyObject *xo, *yo, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL;
    if (!PyArg_ParseTuple(args, "OO", &xo, &yo) || trainer_enter(self) < 0)
        return NULL;
    const v2t_mlp_shape *sh = &self->t.shape;
    if (!(x = rows_array(xo, "x", sh->widths[0])) || !(y = rows_array(yo, "y", sh->widths[sh->n_layers])))
        goto exit;
    if (PyArray_DIM(x, 0) != PyArray_DIM(y, 0)) {
        PyErr_Format(PyExc_ValueError, "y: expected %lld rows like x, got shape %s", (long long)PyArray_DIM(x, 0),
                     v2t_py_shape_str(y));
        goto exit;
    }
    double loss;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_mlp_loss_grad(&self->t, PyArray_DATA(x), PyArray_DATA(y), PyArray_DIM(x, 0), &loss);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(dN)", loss, flat_copy(self->t.grads, sh->n_params));
exit:
    self->busy = 0;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

/* train_epoch(x, y, batch_size, lr, weight_decay, beta1, beta2, eps, seed) -> mean loss */
static PyObject *trainer_train_epoch(PyMLPTrainer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "y", "batch_size", "lr", "weight_decay", "beta1", "beta2", "eps", "seed", NULL};
    PyObject *xo, *yo, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL;
    Py_ssize_t batch;
    unsigned long long seed;
    v2t_adam_config cfg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOnfffffK", kwlist, &xo, &yo, &batch, &cfg.lr, &cfg.weight_decay,
                                     &cfg.beta1, &cfg.beta2, &cfg.eps, &seed) ||
        trainer_enter(self) < 0)
        return NULL;
    const v2t_mlp_shape *sh = &self->t.shape;
    if (!(x = rows_array(xo, "x", sh->widths[0])) || !(y = rows_array(yo, "y", sh->widths[sh->n_layers])))
        goto exit;
    if (PyArray_DIM(x, 0) != PyArray_DIM(y, 0)) {
        PyErr_Format(PyExc_ValueError, "y: expected %lld rows like x, got shape %s", (long long)PyArray_DIM(x, 0),
                     v2t_py_shape_str(y));
        goto exit;
    }
    double loss;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_mlp_train_epoch(&self->t, PyArray_DATA(x), PyArray_DATA(y), PyArray_DIM(x, 0), batch, &cfg, seed, &loss);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = PyFloat_FromDouble(loss);
exit:
    self->busy = 0;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

static PyObject *trainer_get_step(PyMLPTrainer *self, void *closure)
{
    return PyLong_FromLongLong(self->ready ? self->t.step : 0);
}

static PyObject *trainer_get_flops(PyMLPTrainer *self, void *closure)
{
    return PyFloat_FromDouble(self->ready ? self->t.ex.gemm_flops : 0.0);
}

static PyMethodDef trainer_methods[] = {
    {"params", (PyCFunction)trainer_params, METH_NOARGS, "A copy of the flat parameter array."},
    {"loss_and_grad", (PyCFunction)trainer_loss_and_grad, METH_VARARGS,
     "(mean squared error, flat gradient) on one batch, without updating."},
    {"train_epoch", (PyCFunction)(void (*)(void))trainer_train_epoch, METH_VARARGS | METH_KEYWORDS,
     "One shuffled pass with an AdamW update per batch; returns the mean training loss."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef trainer_getset[] = {
    {"step", (getter)trainer_get_step, NULL, "AdamW updates done so far.", NULL},
    {"matmul_flops", (getter)trainer_get_flops, NULL, "Floating-point operations of all matmuls so far (2 M N K each).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MLPTrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.MLPTrainer",
    .tp_basicsize = sizeof(PyMLPTrainer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "MLPTrainer(widths, params): training state of an MLP aligner (C core).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)trainer_init,
    .tp_dealloc = (destructor)trainer_dealloc,
    .tp_methods = trainer_methods,
    .tp_getset = trainer_getset,
};

static PyMethodDef mlp_methods[] = {
    {"mlp_forward", mlp_forward, METH_VARARGS, "mlp_forward(widths, params, x): the MLP aligner's output."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_mlp(PyObject *m)
{
    if (PyType_Ready(&MLPTrainerType) < 0)
        return -1;
    Py_INCREF(&MLPTrainerType);
    if (PyModule_AddObject(m, "MLPTrainer", (PyObject *)&MLPTrainerType) < 0) {
        Py_DECREF(&MLPTrainerType);
        return -1;
    }
    return PyModule_AddFunctions(m, mlp_methods);
}
