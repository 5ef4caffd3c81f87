/* _core.kernel_resmlp: the vec2vec residual MLP's forward and backward on one batch, for
 * tests against a PyTorch twin. (The Vec2Vec trainer builds on the same C core.) */
#include "py_common.h"

#include "align/resmlp.h"

/* kernel_resmlp(depth, d_in, d_hidden, d_out, norm, params, stats, x, dy, training=True,
 *               dropout=0.0, seed=0) -> (y, dx, grads, stats_after); norm: 0 batch, 1 layer */
static PyObject *kernel_resmlp(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"depth", "d_in", "d_hidden", "d_out", "norm", "params", "stats", "x", "dy",
                             "training", "dropout", "seed", NULL};
    int depth, norm, training = 1;
    Py_ssize_t d_in, d_hidden, d_out;
    float dropout = 0.f;
    unsigned long long seed = 0;
    PyObject *po, *so, *xo, *dyo, *result = NULL;
    PyArrayObject *p = NULL, *st = NULL, *x = NULL, *dy = NULL, *y = NULL, *dx = NULL, *g = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "innniOOOO|pfK", kwlist, &depth, &d_in, &d_hidden, &d_out, &norm,
                                     &po, &so, &xo, &dyo, &training, &dropout, &seed))
        return NULL;
    v2t_resmlp m;
    v2t_status s = v2t_resmlp_init(&m, depth, d_in, d_hidden, d_out, norm ? V2T_NORM_LAYER : V2T_NORM_BATCH, dropout);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    if (!(p = v2t_py_float_array(po, "params", 1, 1)) || !(x = v2t_py_float_array(xo, "x", 2, 2)) ||
        !(dy = v2t_py_float_array(dyo, "dy", 2, 2)))
        goto exit;
    PyArrayObject *st0 = v2t_py_float_array(so, "stats", 1, 1);
    if (!st0)
        goto exit;
    st = (PyArrayObject *)PyArray_NewCopy(st0, NPY_CORDER);
    Py_DECREF(st0);
    if (!st)
        goto exit;
    npy_intp B = PyArray_DIM(x, 0);
    if (PyArray_DIM(p, 0) != m.n_params || PyArray_DIM(st, 0) != m.n_stats || PyArray_DIM(x, 1) != d_in ||
        PyArray_DIM(dy, 0) != B || PyArray_DIM(dy, 1) != d_out) {
        PyErr_Format(PyExc_ValueError, "kernel_resmlp: expected params [%lld], stats [%lld], x [B, %zd], dy [B, %zd]",
                     (long long)m.n_params, (long long)m.n_stats, d_in, d_out);
        goto exit;
    }
    npy_intp yd[2] = {B, d_out}, xd[2] = {B, d_in}, gd = m.n_params;
    if (!(y = (PyArrayObject *)PyArray_SimpleNew(2, yd, NPY_FLOAT32)) ||
        !(dx = (PyArrayObject *)PyArray_SimpleNew(2, xd, NPY_FLOAT32)) ||
        !(g = (PyArrayObject *)PyArray_ZEROS(1, &gd, NPY_FLOAT32, 0)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    v2t_rng rng;
    v2t_resmlp_tape tape = {0};
    v2t_rng_seed(&rng, seed);
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_resmlp_forward(&m, PyArray_DATA(p), PyArray_DATA(st), training, &rng, &ex, PyArray_DATA(x), B,
                               training ? &tape : NULL, PyArray_DATA(y));
        if (s == V2T_OK && training)
            s = v2t_resmlp_backward(&m, PyArray_DATA(p), &ex, &tape, PyArray_DATA(dy), PyArray_DATA(g),
                                    PyArray_DATA(dx));
        v2t_resmlp_tape_release(&tape);
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(OOOO)", y, dx, g, st);
exit:
    Py_XDECREF(p);
    Py_XDECREF(st);
    Py_XDECREF(x);
    Py_XDECREF(dy);
    Py_XDECREF(y);
    Py_XDECREF(dx);
    Py_XDECREF(g);
    return result;
}

/* resmlp_init(depth, d_in, d_hidden, d_out, norm, seed) -> (params, stats) with vec2vec's init */
static PyObject *resmlp_init(PyObject *self, PyObject *args)
{
    int depth, norm;
    Py_ssize_t d_in, d_hidden, d_out;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "innniK", &depth, &d_in, &d_hidden, &d_out, &norm, &seed))
        return NULL;
    v2t_resmlp m;
    v2t_status s = v2t_resmlp_init(&m, depth, d_in, d_hidden, d_out, norm ? V2T_NORM_LAYER : V2T_NORM_BATCH, 0.f);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    npy_intp pd = m.n_params, sd = m.n_stats;
    PyArrayObject *p = (PyArrayObject *)PyArray_SimpleNew(1, &pd, NPY_FLOAT32);
    PyArrayObject *st = (PyArrayObject *)PyArray_SimpleNew(1, &sd, NPY_FLOAT32);
    if (!p || !st) {
        Py_XDECREF(p);
        Py_XDECREF(st);
        return NULL;
    }
    v2t_rng rng;
    v2t_rng_seed(&rng, seed);
    v2t_resmlp_default_init(&m, &rng, PyArray_DATA(p), PyArray_DATA(st));
    return Py_BuildValue("(NN)", p, st);
}

static PyMethodDef vec2vec_methods[] = {
    {"kernel_resmlp", (PyCFunction)(void (*)(void))kernel_resmlp, METH_VARARGS | METH_KEYWORDS,
     "Test hook: vec2vec residual MLP forward + backward on one batch."},
    {"resmlp_init", resmlp_init, METH_VARARGS, "Fresh residual MLP parameters and running statistics."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_vec2vec(PyObject *m) { return PyModule_AddFunctions(m, vec2vec_methods); }
