/* _core.select_distinct_topk, _core.select_best, _core.kernel_cosine_rows: test hooks for the
 * sequence-level selection of the correction loop (compared with NumPy / torch in
 * tests/test_api.py). Not public API. */
#include "py_common.h"

#include "vec2text/select.h"

/* select_distinct_topk(scores float [B, C], ids int [B, C, L], keep) -> (int64 [B, keep], short examples) */
static PyObject *py_select_distinct_topk(PyObject *self, PyObject *args)
{
    PyObject *so, *io;
    long long keep;
    if (!PyArg_ParseTuple(args, "OOL", &so, &io, &keep))
        return NULL;
    PyObject *result = NULL;
    PyArrayObject *sc = NULL, *ids = NULL, *out = NULL;
    if (!(sc = v2t_py_float_array(so, "scores", 2, 2)) || !(ids = v2t_py_ids_array(io, "ids", 3, 3)))
        goto exit;
    const npy_intp B = PyArray_DIM(sc, 0), C = PyArray_DIM(sc, 1), L = PyArray_DIM(ids, 2);
    if (PyArray_DIM(ids, 0) != B || PyArray_DIM(ids, 1) != C) {
        PyErr_Format(PyExc_ValueError, "ids: expected shape [%lld, %lld, L] like scores, got %s", (long long)B,
                     (long long)C, v2t_py_shape_str(ids));
        goto exit;
    }
    npy_intp d[2] = {B, keep > 0 ? keep : 0};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, d, NPY_INT64)))
        goto exit;
    int64_t n_short = 0;
    v2t_status s = v2t_select_distinct_topk(PyArray_DATA(sc), PyArray_DATA(ids), B, C, L, keep, PyArray_DATA(out),
                                            &n_short);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(OL)", out, (long long)n_short);
exit:
    Py_XDECREF(sc);
    Py_XDECREF(ids);
    Py_XDECREF(out);
    return result;
}

/* select_best(scores [B, C]) -> int64 [B] */
static PyObject *py_select_best(PyObject *self, PyObject *arg)
{
    PyArrayObject *sc = v2t_py_float_array(arg, "scores", 2, 2);
    if (!sc)
        return NULL;
    npy_intp d[1] = {PyArray_DIM(sc, 0)};
    PyArrayObject *out = PyArray_DIM(sc, 1) < 1 ? NULL : (PyArrayObject *)PyArray_SimpleNew(1, d, NPY_INT64);
    if (!out && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "scores: expected at least one candidate per row");
    if (out)
        v2t_select_best(PyArray_DATA(sc), d[0], PyArray_DIM(sc, 1), PyArray_DATA(out));
    Py_DECREF(sc);
    return (PyObject *)out;
}

/* kernel_cosine_rows(a [n, D], b [n, D] or [D], reference=False) -> float32 [n] */
static PyObject *py_cosine_rows(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"a", "b", "reference", NULL};
    PyObject *ao, *bo;
    int reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|p", kwlist, &ao, &bo, &reference))
        return NULL;
    PyObject *result = NULL;
    PyArrayObject *a = NULL, *b = NULL, *out = NULL;
    if (!(a = v2t_py_float_array(ao, "a", 2, 2)) || !(b = v2t_py_float_array(bo, "b", 1, 2)))
        goto exit;
    const npy_intp n = PyArray_DIM(a, 0), D = PyArray_DIM(a, 1);
    const int shared = PyArray_NDIM(b) == 1;
    if (PyArray_DIM(b, PyArray_NDIM(b) - 1) != D || (!shared && PyArray_DIM(b, 0) != n)) {
        PyErr_Format(PyExc_ValueError, "b: expected shape [%lld] or [%lld, %lld], got %s", (long long)D, (long long)n,
                     (long long)D, v2t_py_shape_str(b));
        goto exit;
    }
    npy_intp d[1] = {n};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(1, d, NPY_FLOAT32)))
        goto exit;
    (reference ? v2t_cosine_rows_ref : v2t_cosine_rows)(PyArray_DATA(a), D, PyArray_DATA(b), shared ? 0 : D, n, D,
                                                       PyArray_DATA(out));
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(out);
    return result;
}

static PyMethodDef hook_functions[] = {
    {"select_distinct_topk", py_select_distinct_topk, METH_VARARGS,
     "select_distinct_topk(scores [B, C], ids [B, C, L], keep) -> (indices int64 [B, keep], short_examples)"},
    {"select_best", py_select_best, METH_O, "select_best(scores [B, C]) -> int64 [B] (first argmax)"},
    {"kernel_cosine_rows", (PyCFunction)(void (*)(void))py_cosine_rows, METH_VARARGS | METH_KEYWORDS,
     "kernel_cosine_rows(a [n, D], b [n, D] or [D], reference=False) -> float32 [n]"},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_vec2text_hooks(PyObject *m) { return PyModule_AddFunctions(m, hook_functions); }
