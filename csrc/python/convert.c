#include "py_common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/gemm.h"

PyObject *v2t_py_raise(v2t_status s)
{
    const char *msg = v2t_last_error();
    PyObject *exc;
    switch (s) {
    case V2T_ERR_NOMEM: exc = PyExc_MemoryError; break;
    case V2T_ERR_IO: exc = PyExc_FileNotFoundError; break;
    case V2T_ERR_TYPE: exc = PyExc_TypeError; break;
    case V2T_ERR_UNSUPPORTED: exc = PyExc_NotImplementedError; break;
    case V2T_ERR_BACKEND: exc = PyExc_RuntimeError; break;
    case V2T_ERR_CANCELLED: exc = v2t_py_Cancelled ? v2t_py_Cancelled : PyExc_RuntimeError; break;
    case V2T_ERR_INTERRUPTED:
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    default: exc = PyExc_ValueError; break;
    }
    if (!msg || !*msg)
        msg = "vec2text_c core error";
    /* bytes that are not UTF-8 (a file name on a non-UTF-8 file system) become \\xNN escapes
     * instead of turning the real error into a UnicodeDecodeError */
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "backslashreplace");
    if (!text)
        return NULL;
    PyErr_SetObject(exc, text);
    Py_DECREF(text);
    return NULL;
}

const char *v2t_py_shape_str(PyArrayObject *a)
{
    static _Thread_local char buf[160];
    int off = snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < PyArray_NDIM(a) && off < (int)sizeof buf - 24; i++)
        off += snprintf(buf + off, sizeof buf - off, i ? ", %lld" : "%lld", (long long)PyArray_DIM(a, i));
    snprintf(buf + off, sizeof buf - off, "]");
    return buf;
}

static PyArrayObject *as_array(PyObject *obj, const char *name)
{
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s: expected an array, got None", name);
        return NULL;
    }
    PyObject *arr = PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
    if (!arr) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected an array-like of numbers, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return (PyArrayObject *)arr;
}

static int check_ndim(PyArrayObject *a, const char *name, int min_ndim, int max_ndim)
{
    int nd = PyArray_NDIM(a);
    if (nd < min_ndim || nd > max_ndim) {
        if (min_ndim == max_ndim)
            PyErr_Format(PyExc_ValueError, "%s: expected a %d-D array, got %d-D with shape %s", name, min_ndim, nd,
                         v2t_py_shape_str(a));
        else
            PyErr_Format(PyExc_ValueError, "%s: expected a %d-D to %d-D array, got %d-D with shape %s", name,
                         min_ndim, max_ndim, nd, v2t_py_shape_str(a));
        return -1;
    }
    return 0;
}

PyArrayObject *v2t_py_float_array(PyObject *obj, const char *name, int min_ndim, int max_ndim)
{
    PyArrayObject *a = as_array(obj, name);
    if (!a)
        return NULL;
    int t = PyArray_TYPE(a);
    if (!PyTypeNum_ISFLOAT(t)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a floating-point array (float32 preferred), got dtype %S", name,
                     (PyObject *)PyArray_DESCR(a));
        Py_DECREF(a);
        return NULL;
    }
    if (check_ndim(a, name, min_ndim, max_ndim) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FromAny(
        (PyObject *)a, PyArray_DescrFromType(NPY_FLOAT32), 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED |
        NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(a);
    return out;
}

PyArrayObject *v2t_py_ids_array(PyObject *obj, const char *name, int min_ndim, int max_ndim)
{
    PyArrayObject *a = as_array(obj, name);
    if (!a)
        return NULL;
    int t = PyArray_TYPE(a);
    if (!PyTypeNum_ISINTEGER(t)) {
        PyErr_Format(PyExc_TypeError, "%s: expected an integer array of token ids (int32 or int64), got dtype %S",
                     name, (PyObject *)PyArray_DESCR(a));
        Py_DECREF(a);
        return NULL;
    }
    if (check_ndim(a, name, min_ndim, max_ndim) < 0) {
        Py_DECREF(a);
        return NULL;
    }
    /* Range check before narrowing to int32. */
    if (PyArray_SIZE(a) > 0 && t != NPY_INT32 && t != NPY_INT16 && t != NPY_INT8 && t != NPY_UINT8 &&
        t != NPY_UINT16) {
        PyArrayObject *wide = (PyArrayObject *)PyArray_FromAny((PyObject *)a, PyArray_DescrFromType(NPY_INT64), 0,
                                                               0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_FORCECAST, NULL);
        if (!wide) {
            Py_DECREF(a);
            return NULL;
        }
        const int64_t *v = PyArray_DATA(wide);
        npy_intp n = PyArray_SIZE(wide);
        for (npy_intp i = 0; i < n; i++) {
            if (v[i] < INT32_MIN || v[i] > INT32_MAX) {
                PyErr_Format(PyExc_ValueError, "%s: token id %lld at flat index %lld is outside the int32 range",
                             name, (long long)v[i], (long long)i);
                Py_DECREF(wide);
                Py_DECREF(a);
                return NULL;
            }
        }
        Py_DECREF(wide);
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FromAny(
        (PyObject *)a, PyArray_DescrFromType(NPY_INT32), 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED |
        NPY_ARRAY_FORCECAST, NULL);
    Py_DECREF(a);
    return out;
}

int v2t_py_check_finite(PyArrayObject *a, const char *name)
{
    const float *v = PyArray_DATA(a);
    npy_intp n = PyArray_SIZE(a);
    for (npy_intp i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            PyErr_Format(PyExc_ValueError, "%s: expected finite values, found %s at flat index %lld", name,
                         isnan(v[i]) ? "NaN" : "Inf", (long long)i);
            return -1;
        }
    }
    return 0;
}

#include "core/interrupt.h"

/* Called from core threads without the GIL: take it briefly and look for pending signals. */
static int python_interrupt_hook(void)
{
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() != 0;
    PyGILState_Release(g);
    return stop;
}

void v2t_py_install_interrupt_hook(void) { v2t_set_interrupt_hook(python_interrupt_hook); }

int v2t_py_matmul_precision(PyObject *o, const char *owner, int *bf16)
{
    *bf16 = 0;
    if (o == Py_None)
        return 0;
    const char *v = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
    if (v && strcmp(v, "float32") == 0)
        return 0;
    if (v && strcmp(v, "bfloat16") == 0) {
        if (!v2t_gemm_bf16_supported()) {
            PyErr_Format(PyExc_ValueError,
                         "%s: precision='bfloat16' needs a CPU with AVX512-BF16 or AMX, and this one has neither; "
                         "use precision='float32'",
                         owner);
            return -1;
        }
        *bf16 = 1;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s: precision must be 'float32' or 'bfloat16', got %R", owner, o);
    return -1;
}
