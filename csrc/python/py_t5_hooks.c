/* _core.t5_relpos_bucket and _core.kernel_gated_act: test hooks for the T5 pieces that are
 * compared one by one with transformers / their naive references. Not public API. */
#include "py_common.h"

#include "nn/t5.h"
#include "ops/gated.h"

/* t5_relpos_bucket(rel int64 array, bidirectional, num_buckets, max_distance) -> int64 array */
static PyObject *t5_relpos_bucket(PyObject *self, PyObject *args)
{
    PyObject *rel_o;
    int bidirectional;
    long long nb, md;
    if (!PyArg_ParseTuple(args, "OpLL", &rel_o, &bidirectional, &nb, &md))
        return NULL;
    if (nb < 4 || md <= nb / 2) {
        PyErr_Format(PyExc_ValueError, "expected num_buckets >= 4 and max_distance > num_buckets/2, got %lld, %lld", nb,
                     md);
        return NULL;
    }
    PyArrayObject *rel = (PyArrayObject *)PyArray_FromAny(rel_o, PyArray_DescrFromType(NPY_INT64), 1, 1,
                                                          NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_FORCECAST, NULL);
    if (!rel)
        return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, PyArray_DIMS(rel), NPY_INT64);
    if (out) {
        const int64_t *r = PyArray_DATA(rel);
        int64_t *o = PyArray_DATA(out);
        for (npy_intp i = 0; i < PyArray_SIZE(rel); i++)
            o[i] = v2t_t5_relpos_bucket(r[i], bidirectional, nb, md);
    }
    Py_DECREF(rel);
    return (PyObject *)out;
}

/* kernel_gated_act(x[M, 2F], act, reference=False) -> [M, F] = act(x[:, :F]) * x[:, F:] */
static PyObject *kernel_gated_act(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "act", "reference", NULL};
    PyObject *xo;
    int act, reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi|p", kwlist, &xo, &act, &reference))
        return NULL;
    if (act < 0 || act > V2T_ACT_GELU_TANH) {
        PyErr_Format(PyExc_ValueError, "act: expected 0..3, got %d", act);
        return NULL;
    }
    PyObject *result = NULL;
    PyArrayObject *x = NULL, *y = NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    const npy_intp M = PyArray_DIM(x, 0), F = PyArray_DIM(x, 1) / 2;
    if (PyArray_DIM(x, 1) % 2) {
        PyErr_Format(PyExc_ValueError, "x: expected an even number of columns, got %s", v2t_py_shape_str(x));
        goto exit;
    }
    npy_intp dims[2] = {M, F};
    if (!(y = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    (reference ? v2t_gated_act_ref : v2t_gated_act)((v2t_act)act, PyArray_DATA(x), 2 * F, M, F, PyArray_DATA(y), F);
    result = (PyObject *)y;
    y = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(y);
    return result;
}

static PyMethodDef hook_methods[] = {
    {"t5_relpos_bucket", t5_relpos_bucket, METH_VARARGS,
     "Test hook: T5 relative position buckets of an int64 array of offsets."},
    {"kernel_gated_act", (PyCFunction)(void (*)(void))kernel_gated_act, METH_VARARGS | METH_KEYWORDS,
     "Test hook: gated activation kernel (or the naive reference)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_t5_hooks(PyObject *m) { return PyModule_AddFunctions(m, hook_methods); }
