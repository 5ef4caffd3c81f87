/* _core.Vec2VecTrainer, _core.vec2vec_translate and _core.vec2vec_sizes: the vec2vec trainer's
 * state and its inference pass. vec2text_c/_align_vec2vec.py drives the epochs. The network
 * settings travel as a dict whose keys are the fields of v2t_v2v_config. */
#include "py_common.h"

#include <stddef.h>

#include "align/vec2vec.h"

static const char *const metric_names[V2T_V2V_NMETRICS] = {
    "loss", "rec", "vsp", "cc", "cc_vsp", "gen_x", "gen_y", "gen_latent", "disc_x", "disc_y", "disc_latent",
    "grad_norm",
};

/* config dict -> v2t_v2v_config (d1 and d2 required, the rest default as published) */
static int parse_config(PyObject *dict, v2t_v2v_config *c)
{
    if (!PyDict_Check(dict)) {
        PyErr_Format(PyExc_TypeError, "config: expected a dict, got %s", Py_TYPE(dict)->tp_name);
        return -1;
    }
    PyObject *d1o = PyDict_GetItemString(dict, "d1"), *d2o = PyDict_GetItemString(dict, "d2");
    if (!d1o || !d2o) {
        PyErr_SetString(PyExc_ValueError, "config: 'd1' and 'd2' (the two embedding widths) are required");
        return -1;
    }
    long long d1 = PyLong_AsLongLong(d1o), d2 = PyLong_AsLongLong(d2o);
    if (PyErr_Occurred())
        return -1;
    if (d1 < 1 || d2 < 1) {
        PyErr_Format(PyExc_ValueError, "config: widths d1, d2 must be positive, got %lld, %lld", d1, d2);
        return -1;
    }
    v2t_v2v_config_default(c, d1, d2);
    static const struct {
        const char *name;
        char kind; /* 'l' int64, 'i' int, 'f' float */
        size_t off;
    } fields[] = {
        {"d_latent", 'l', offsetof(v2t_v2v_config, d_latent)},
        {"d_hidden", 'l', offsetof(v2t_v2v_config, d_hidden)},
        {"d_backbone", 'l', offsetof(v2t_v2v_config, d_backbone)},
        {"adapter_depth", 'i', offsetof(v2t_v2v_config, adapter_depth)},
        {"backbone_depth", 'i', offsetof(v2t_v2v_config, backbone_depth)},
        {"disc_depth", 'i', offsetof(v2t_v2v_config, disc_depth)},
        {"disc_width", 'l', offsetof(v2t_v2v_config, disc_width)},
        {"norm", 'i', offsetof(v2t_v2v_config, norm)},
        {"dropout", 'f', offsetof(v2t_v2v_config, dropout)},
        {"w_rec", 'f', offsetof(v2t_v2v_config, w_rec)},
        {"w_vsp", 'f', offsetof(v2t_v2v_config, w_vsp)},
        {"w_cc", 'f', offsetof(v2t_v2v_config, w_cc)},
        {"w_cc_vsp", 'f', offsetof(v2t_v2v_config, w_cc_vsp)},
        {"w_gan", 'f', offsetof(v2t_v2v_config, w_gan)},
        {"w_latent_gan", 'f', offsetof(v2t_v2v_config, w_latent_gan)},
        {"lr_gen", 'f', offsetof(v2t_v2v_config, lr_gen)},
        {"lr_disc", 'f', offsetof(v2t_v2v_config, lr_disc)},
        {"beta1", 'f', offsetof(v2t_v2v_config, beta1)},
        {"beta2", 'f', offsetof(v2t_v2v_config, beta2)},
        {"eps_gen", 'f', offsetof(v2t_v2v_config, eps_gen)},
        {"eps_disc", 'f', offsetof(v2t_v2v_config, eps_disc)},
        {"warmup", 'l', offsetof(v2t_v2v_config, warmup)},
        {"max_grad_norm", 'f', offsetof(v2t_v2v_config, max_grad_norm)},
    };
    const size_t nf = sizeof fields / sizeof fields[0];
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &val)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!name) {
            PyErr_SetString(PyExc_TypeError, "config: keys must be strings");
            return -1;
        }
        if (!strcmp(name, "d1") || !strcmp(name, "d2"))
            continue;
        size_t i = 0;
        while (i < nf && strcmp(fields[i].name, name))
            i++;
        if (i == nf) {
            PyErr_Format(PyExc_ValueError, "config: unknown setting %R", key);
            return -1;
        }
        char *dst = (char *)c + fields[i].off;
        if (fields[i].kind == 'f') {
            double v = PyFloat_AsDouble(val);
            if (v == -1.0 && PyErr_Occurred())
                return -1;
            *(float *)dst = (float)v;
        } else {
            long long v = PyLong_AsLongLong(val);
            if (v == -1 && PyErr_Occurred())
                return -1;
            if (fields[i].kind == 'i') {
                if (v < -1000000 || v > 1000000) {
                    PyErr_Format(PyExc_ValueError, "config: %s out of range: %lld", name, v);
                    return -1;
                }
                *(int *)dst = (int)v;
            } else {
                *(int64_t *)dst = v;
            }
        }
    }
    return 0;
}

static int model_from(PyObject *dict, v2t_v2v_model *m)
{
    v2t_v2v_config c;
    if (parse_config(dict, &c) < 0)
        return -1;
    v2t_status s = v2t_v2v_model_init(m, &c);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        return -1;
    }
    return 0;
}

static PyArrayObject *flat_array(PyObject *obj, const char *name, int64_t n)
{
    PyArrayObject *a = v2t_py_float_array(obj, name, 1, 1);
    if (a && PyArray_DIM(a, 0) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %lld values for this configuration, got %s", name, (long long)n,
                     v2t_py_shape_str(a));
        Py_CLEAR(a);
    }
    if (a && v2t_py_check_finite(a, name) < 0)
        Py_CLEAR(a);
    return a;
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

/* vec2vec_sizes(config) -> dict: n_params, n_stats, n_disc_params and per module
 * (A1, A2, T, B1, B2, D1, D2, DL) its (offset, count) in the flat arrays */
static PyObject *vec2vec_sizes(PyObject *self, PyObject *args)
{
    PyObject *cfg;
    if (!PyArg_ParseTuple(args, "O", &cfg))
        return NULL;
    v2t_v2v_model m;
    if (model_from(cfg, &m) < 0)
        return NULL;
    static const char *const mods[V2T_V2V_NMOD] = {"A1", "A2", "T", "B1", "B2"};
    static const char *const discs[V2T_V2V_NDISC] = {"D1", "D2", "DL"};
    PyObject *d = Py_BuildValue("{s:L,s:L,s:L}", "n_params", (long long)m.n_params, "n_stats", (long long)m.n_stats,
                                "n_disc_params", (long long)m.n_disc_params);
    for (int k = 0; d && k < V2T_V2V_NMOD; k++) {
        PyObject *v = Py_BuildValue("(LLLL)", (long long)m.p_off[k], (long long)m.mod[k].n_params,
                                    (long long)m.s_off[k], (long long)m.mod[k].n_stats);
        if (!v || PyDict_SetItemString(d, mods[k], v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    for (int k = 0; d && k < V2T_V2V_NDISC; k++) {
        PyObject *v = Py_BuildValue("(LL)", (long long)m.d_off[k], (long long)m.disc[k].n_params);
        if (!v || PyDict_SetItemString(d, discs[k], v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* vec2vec_translate(config, params, stats, x, direction) -> [n, d_out]; direction 0: X -> Y, 1: Y -> X */
static PyObject *vec2vec_translate(PyObject *self, PyObject *args)
{
    PyObject *cfg, *po, *so, *xo, *result = NULL;
    PyArrayObject *p = NULL, *st = NULL, *x = NULL, *y = NULL;
    int direction;
    if (!PyArg_ParseTuple(args, "OOOOp", &cfg, &po, &so, &xo, &direction))
        return NULL;
    v2t_v2v_model m;
    if (model_from(cfg, &m) < 0)
        return NULL;
    const int64_t d_in = direction ? m.cfg.d2 : m.cfg.d1, d_out = direction ? m.cfg.d1 : m.cfg.d2;
    if (!(p = flat_array(po, "params", m.n_params)) || !(st = flat_array(so, "stats", m.n_stats)) ||
        !(x = rows_array(xo, "x", d_in)))
        goto exit;
    npy_intp dims[2] = {PyArray_DIM(x, 0), d_out};
    if (!(y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_v2v_translate(&m, PyArray_DATA(p), PyArray_DATA(st), direction, &ex, PyArray_DATA(x), dims[0],
                              PyArray_DATA(y));
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
    Py_XDECREF(st);
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

/* ---- Vec2VecTrainer ---- */

typedef struct {
    PyObject_HEAD
    v2t_v2v_trainer t;
    int ready, busy;
} PyV2VTrainer;

static void trainer_dealloc(PyV2VTrainer *self)
{
    if (self->ready)
        v2t_v2v_trainer_release(&self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Vec2VecTrainer(config, seed=0, params=None, stats=None, disc_params=None, precision="float32") */
static int trainer_init(PyV2VTrainer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "seed", "params", "stats", "disc_params", "precision", NULL};
    PyObject *cfg, *po = Py_None, *so = Py_None, *dpo = Py_None, *prec = Py_None;
    int bf16;
    unsigned long long seed = 0;
    PyArrayObject *p = NULL, *st = NULL, *dp = NULL;
    int rc = -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Vec2VecTrainer: in use by another thread");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|KOOOO", kwlist, &cfg, &seed, &po, &so, &dpo, &prec) ||
        v2t_py_matmul_precision(prec, "Vec2VecTrainer", &bf16) < 0)
        return -1;
    v2t_v2v_model m;
    if (model_from(cfg, &m) < 0)
        return -1;
    if ((po != Py_None && !(p = flat_array(po, "params", m.n_params))) ||
        (so != Py_None && !(st = flat_array(so, "stats", m.n_stats))) ||
        (dpo != Py_None && !(dp = flat_array(dpo, "disc_params", m.n_disc_params))))
        goto exit;
    if (self->ready)
        v2t_v2v_trainer_release(&self->t);
    self->ready = 0;
    v2t_status s = v2t_v2v_trainer_init(&self->t, &m.cfg, seed, p ? PyArray_DATA(p) : NULL,
                                        st ? PyArray_DATA(st) : NULL, dp ? PyArray_DATA(dp) : NULL);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    s = v2t_v2v_trainer_set_bf16(&self->t, bf16);
    if (s != V2T_OK) {
        v2t_v2v_trainer_release(&self->t);
        v2t_py_raise(s);
        goto exit;
    }
    self->ready = 1;
    rc = 0;
exit:
    Py_XDECREF(p);
    Py_XDECREF(st);
    Py_XDECREF(dp);
    return rc;
}

static int trainer_enter(PyV2VTrainer *self)
{
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "Vec2VecTrainer: not initialised");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Vec2VecTrainer: in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static PyObject *flat_copy(const float *src, int64_t n)
{
    npy_intp dim = n;
    PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(1, &dim, NPY_FLOAT32);
    if (a && n)
        memcpy(PyArray_DATA(a), src, (size_t)n * sizeof(float));
    return (PyObject *)a;
}

static PyObject *metrics_dict(const double *v)
{
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < V2T_V2V_NMETRICS; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (!f || PyDict_SetItemString(d, metric_names[i], f) < 0)
            Py_CLEAR(d);
        Py_XDECREF(f);
    }
    return d;
}

#define GETTER(fname, field, count)                                                                           \
    static PyObject *fname(PyV2VTrainer *self, PyObject *Py_UNUSED(ignored))                                  \
    {                                                                                                         \
        if (trainer_enter(self) < 0)                                                                          \
            return NULL;                                                                                      \
        PyObject *r = flat_copy(self->t.field, self->t.m.count);                                              \
        self->busy = 0;                                                                                       \
        return r;                                                                                             \
    }
GETTER(trainer_params, params, n_params)
GETTER(trainer_grads, grads, n_params)
GETTER(trainer_stats, stats, n_stats)
GETTER(trainer_disc_params, dparams, n_disc_params)
GETTER(trainer_disc_grads, dgrads, n_disc_params)
#undef GETTER

/* step(x [B, d1], y [B, d2], update_disc=True, update_gen=True) -> metrics dict */
static PyObject *trainer_step(PyV2VTrainer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "y", "update_disc", "update_gen", NULL};
    PyObject *xo, *yo, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL;
    int ud = 1, ug = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|pp", kwlist, &xo, &yo, &ud, &ug) || trainer_enter(self) < 0)
        return NULL;
    if (!(x = rows_array(xo, "x", self->t.m.cfg.d1)) || !(y = rows_array(yo, "y", self->t.m.cfg.d2)))
        goto exit;
    if (PyArray_DIM(x, 0) != PyArray_DIM(y, 0)) {
        PyErr_Format(PyExc_ValueError, "y: expected %zd rows like x (one batch from each space), got shape %s",
                     (Py_ssize_t)PyArray_DIM(x, 0), v2t_py_shape_str(y));
        goto exit;
    }
    if (v2t_py_check_finite(x, "x") < 0 || v2t_py_check_finite(y, "y") < 0)
        goto exit;
    double metrics[V2T_V2V_NMETRICS];
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_v2v_step(&self->t, PyArray_DATA(x), PyArray_DATA(y), PyArray_DIM(x, 0), ud, ug, metrics);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = metrics_dict(metrics);
exit:
    self->busy = 0;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

/* train_epoch(X, Y, batch_size, seed, max_steps=0) -> (mean metrics dict, steps) */
static PyObject *trainer_train_epoch(PyV2VTrainer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"X", "Y", "batch_size", "seed", "max_steps", NULL};
    PyObject *xo, *yo, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL;
    Py_ssize_t batch, max_steps = 0;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOnK|n", kwlist, &xo, &yo, &batch, &seed, &max_steps) ||
        trainer_enter(self) < 0)
        return NULL;
    if (!(x = rows_array(xo, "X", self->t.m.cfg.d1)) || !(y = rows_array(yo, "Y", self->t.m.cfg.d2)))
        goto exit;
    double metrics[V2T_V2V_NMETRICS];
    int64_t done = 0;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_v2v_train_epoch(&self->t, PyArray_DATA(x), PyArray_DIM(x, 0), PyArray_DATA(y), PyArray_DIM(y, 0), batch,
                            seed, max_steps, metrics, &done);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(NL)", metrics_dict(metrics), (long long)done);
exit:
    self->busy = 0;
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

static PyObject *trainer_get_step(PyV2VTrainer *self, void *closure)
{
    return PyLong_FromLongLong(self->ready ? self->t.step : 0);
}

static PyObject *trainer_get_flops(PyV2VTrainer *self, void *closure)
{
    return PyFloat_FromDouble(self->ready ? self->t.ex.gemm_flops : 0.0);
}

static PyMethodDef trainer_methods[] = {
    {"params", (PyCFunction)trainer_params, METH_NOARGS, "A copy of the flat generator parameters."},
    {"grads", (PyCFunction)trainer_grads, METH_NOARGS, "A copy of the last step's generator gradient."},
    {"stats", (PyCFunction)trainer_stats, METH_NOARGS, "A copy of the BatchNorm running statistics."},
    {"disc_params", (PyCFunction)trainer_disc_params, METH_NOARGS, "A copy of the discriminator parameters."},
    {"disc_grads", (PyCFunction)trainer_disc_grads, METH_NOARGS, "A copy of the last discriminator gradients."},
    {"step", (PyCFunction)(void (*)(void))trainer_step, METH_VARARGS | METH_KEYWORDS,
     "One training step on a batch from each space; returns the step's metrics."},
    {"train_epoch", (PyCFunction)(void (*)(void))trainer_train_epoch, METH_VARARGS | METH_KEYWORDS,
     "One shuffled pass over both sets; returns (mean metrics, steps taken)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef trainer_getset[] = {
    {"updates", (getter)trainer_get_step, NULL, "Generator updates done so far.", NULL},
    {"matmul_flops", (getter)trainer_get_flops, NULL, "Floating-point operations of all matmuls so far (2 M N K each).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject V2VTrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.Vec2VecTrainer",
    .tp_basicsize = sizeof(PyV2VTrainer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Vec2VecTrainer(config, seed=0, params=None, stats=None, disc_params=None): vec2vec training state.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)trainer_init,
    .tp_dealloc = (destructor)trainer_dealloc,
    .tp_methods = trainer_methods,
    .tp_getset = trainer_getset,
};

static PyMethodDef vec2vec_methods[] = {
    {"vec2vec_sizes", vec2vec_sizes, METH_VARARGS, "Sizes and offsets of the flat vec2vec arrays for a config."},
    {"vec2vec_translate", vec2vec_translate, METH_VARARGS,
     "vec2vec_translate(config, params, stats, x, direction): inference pass (0: X -> Y, 1: Y -> X)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_vec2vec(PyObject *m)
{
    if (PyType_Ready(&V2VTrainerType) < 0)
        return -1;
    Py_INCREF(&V2VTrainerType);
    if (PyModule_AddObject(m, "Vec2VecTrainer", (PyObject *)&V2VTrainerType) < 0) {
        Py_DECREF(&V2VTrainerType);
        return -1;
    }
    if (PyModule_AddFunctions(m, vec2vec_methods) < 0)
        return -1;
    return v2t_py_init_vec2vec_hooks(m);
}
