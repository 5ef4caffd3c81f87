/* _core.kernel_* : direct access to single kernels, for tests comparing each fast kernel
 * with its naive reference. Not part of the public API. */
#include "py_common.h"

#include "ops/linear.h"

/* kernel_linear(x[M,in], w[out,in], b[out] or None, act, accumulate, y0[M,out] or None, reference) */
static PyObject *kernel_linear(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "w", "b", "act", "accumulate", "y0", "reference", NULL};
    PyObject *xo, *wo, *bo = Py_None, *y0o = Py_None;
    int act = 0, accumulate = 0, reference = 0;
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *y = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OipOp", kwlist, &xo, &wo, &bo, &act, &accumulate, &y0o,
                                     &reference))
        return NULL;
    if (act < 0 || act > V2T_ACT_GELU_TANH) {
        PyErr_Format(PyExc_ValueError, "act: expected 0..3, got %d", act);
        return NULL;
    }
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(w = v2t_py_float_array(wo, "w", 2, 2)))
        goto exit;
    if (bo != Py_None && !(b = v2t_py_float_array(bo, "b", 1, 1)))
        goto exit;
    npy_intp M = PyArray_DIM(x, 0), in = PyArray_DIM(x, 1), out = PyArray_DIM(w, 0);
    if (PyArray_DIM(w, 1) != in) {
        PyErr_Format(PyExc_ValueError, "w: expected shape [out, %lld], got %s", (long long)in, v2t_py_shape_str(w));
        goto exit;
    }
    if (b && PyArray_DIM(b, 0) != out) {
        PyErr_Format(PyExc_ValueError, "b: expected shape [%lld], got %s", (long long)out, v2t_py_shape_str(b));
        goto exit;
    }
    npy_intp dims[2] = {M, out};
    if (y0o != Py_None) {
        PyArrayObject *y0 = v2t_py_float_array(y0o, "y0", 2, 2);
        if (!y0)
            goto exit;
        if (PyArray_DIM(y0, 0) != M || PyArray_DIM(y0, 1) != out) {
            PyErr_Format(PyExc_ValueError, "y0: expected shape [%lld, %lld], got %s", (long long)M, (long long)out,
                         v2t_py_shape_str(y0));
            Py_DECREF(y0);
            goto exit;
        }
        y = (PyArrayObject *)PyArray_NewCopy(y0, NPY_CORDER);
        Py_DECREF(y0);
    } else {
        y = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    }
    if (!y)
        goto exit;
    const float *bp = b ? PyArray_DATA(b) : NULL;
    if (reference) {
        Py_BEGIN_ALLOW_THREADS
        v2t_linear_ref(PyArray_DATA(w), bp, in, out, (v2t_act)act, accumulate, PyArray_DATA(x), in, M,
                       PyArray_DATA(y), out);
        Py_END_ALLOW_THREADS
    } else {
        v2t_linear l;
        v2t_exec ex;
        v2t_status s;
        Py_BEGIN_ALLOW_THREADS
        s = v2t_exec_init(&ex);
        if (s == V2T_OK) {
            s = v2t_linear_init(&l, PyArray_DATA(w), bp, in, out, (v2t_act)act, accumulate, V2T_DT_F32);
            if (s == V2T_OK) {
                s = v2t_linear_forward(&l, &ex, PyArray_DATA(x), in, M, PyArray_DATA(y), out);
                v2t_linear_release(&l);
            }
            v2t_exec_release(&ex);
        }
        Py_END_ALLOW_THREADS
        if (s != V2T_OK) {
            v2t_py_raise(s);
            goto exit;
        }
    }
    result = (PyObject *)y;
    y = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(y);
    return result;
}

static PyMethodDef kernel_methods[] = {
    {"kernel_linear", (PyCFunction)(void (*)(void))kernel_linear, METH_VARARGS | METH_KEYWORDS,
     "Test hook: oneDNN linear (or the naive reference) on one input."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_kernels(PyObject *m) { return PyModule_AddFunctions(m, kernel_methods); }
