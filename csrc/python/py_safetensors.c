/* _core.SafeTensors: a validated, memory-mapped safetensors file. */
#include "py_common.h"

#include "core/alloc.h"
#include "io/safetensors.h"

typedef struct {
    PyObject_HEAD
    v2t_st *st;
} PySafeTensors;

static void st_dealloc(PySafeTensors *self)
{
    v2t_st_close(self->st);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int st_init(PySafeTensors *self, PyObject *args, PyObject *kwds)
{
    V2T_PY_INIT_ONCE(self->st, "SafeTensors");
    static char *kwlist[] = {"path", NULL};
    PyObject *path_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&", kwlist, PyUnicode_FSConverter, &path_obj))
        return -1;
    const char *path = PyBytes_AS_STRING(path_obj);
    v2t_st *st = NULL;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_st_open(path, &st);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_obj);
    if (s != V2T_OK) {
        v2t_py_raise(s);
        return -1;
    }
    v2t_st_close(self->st);
    self->st = st;
    return 0;
}

static int st_ready(PySafeTensors *self)
{
    if (!self->st) {
        PyErr_SetString(PyExc_ValueError, "SafeTensors object is not open");
        return 0;
    }
    return 1;
}

static PyObject *st_keys(PySafeTensors *self, PyObject *Py_UNUSED(ignored))
{
    if (!st_ready(self))
        return NULL;
    PyObject *list = PyList_New(self->st->num_tensors);
    if (!list)
        return NULL;
    for (int i = 0; i < self->st->num_tensors; i++) {
        PyObject *s = PyUnicode_FromString(self->st->tensors[i].name);
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

static const v2t_st_tensor *lookup(PySafeTensors *self, PyObject *name_obj)
{
    if (!st_ready(self))
        return NULL;
    const char *name = PyUnicode_AsUTF8(name_obj);
    if (!name)
        return NULL;
    const v2t_st_tensor *t = v2t_st_find(self->st, name);
    if (!t)
        PyErr_Format(PyExc_KeyError, "%s: no tensor named '%s'", self->st->path, name);
    return t;
}

static PyObject *shape_tuple(const v2t_st_tensor *t)
{
    PyObject *shape = PyTuple_New(t->ndim);
    if (!shape)
        return NULL;
    for (int i = 0; i < t->ndim; i++)
        PyTuple_SET_ITEM(shape, i, PyLong_FromLongLong(t->shape[i]));
    return shape;
}

static PyObject *st_info(PySafeTensors *self, PyObject *name_obj)
{
    const v2t_st_tensor *t = lookup(self, name_obj);
    if (!t)
        return NULL;
    PyObject *shape = shape_tuple(t);
    if (!shape)
        return NULL;
    return Py_BuildValue("(sNKK)", v2t_st_dtype_name(t->dtype), shape, (unsigned long long)t->begin,
                         (unsigned long long)t->end);
}

static int numpy_type(v2t_st_dtype d)
{
    switch (d) {
    case V2T_ST_BOOL: return NPY_BOOL;
    case V2T_ST_U8: return NPY_UINT8;
    case V2T_ST_I8: return NPY_INT8;
    case V2T_ST_I16: return NPY_INT16;
    case V2T_ST_U16: return NPY_UINT16;
    case V2T_ST_I32: return NPY_INT32;
    case V2T_ST_U32: return NPY_UINT32;
    case V2T_ST_I64: return NPY_INT64;
    case V2T_ST_U64: return NPY_UINT64;
    case V2T_ST_F16: return NPY_FLOAT16;
    case V2T_ST_F32: return NPY_FLOAT32;
    case V2T_ST_F64: return NPY_FLOAT64;
    default: return -1;
    }
}

/* get(name) -> a copy as float32 for floating dtypes (BF16 converted), native dtype otherwise. */
static PyObject *st_get(PySafeTensors *self, PyObject *name_obj)
{
    const v2t_st_tensor *t = lookup(self, name_obj);
    if (!t)
        return NULL;
    npy_intp dims[V2T_MAX_NDIM];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = (npy_intp)t->shape[i];
    int floating = t->dtype == V2T_ST_F32 || t->dtype == V2T_ST_F16 || t->dtype == V2T_ST_BF16 ||
                   t->dtype == V2T_ST_F64;
    int typenum = floating ? NPY_FLOAT32 : numpy_type(t->dtype);
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(t->ndim, dims, typenum);
    if (!out)
        return NULL;
    if (floating) {
        v2t_status s = v2t_st_read_f32(self->st, t, t->ndim, t->shape, PyArray_DATA(out));
        if (s != V2T_OK) {
            Py_DECREF(out);
            return v2t_py_raise(s);
        }
    } else {
        v2t_status s = v2t_st_read_raw(self->st, t, PyArray_DATA(out));
        if (s != V2T_OK) {
            Py_DECREF(out);
            return v2t_py_raise(s);
        }
    }
    return (PyObject *)out;
}

/* weight(name) -> float32 copy as the model loaders read it: floating dtypes converted, an I8
 * tensor multiplied by its `<name>.int8_scale` row scale; other dtypes are refused. */
static PyObject *st_weight(PySafeTensors *self, PyObject *name_obj)
{
    const v2t_st_tensor *t = lookup(self, name_obj);
    if (!t)
        return NULL;
    npy_intp dims[V2T_MAX_NDIM];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = (npy_intp)t->shape[i];
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(t->ndim, dims, NPY_FLOAT32);
    if (!out)
        return NULL;
    v2t_status s = v2t_st_read_f32(self->st, t, t->ndim, t->shape, PyArray_DATA(out));
    if (s != V2T_OK) {
        Py_DECREF(out);
        return v2t_py_raise(s);
    }
    return (PyObject *)out;
}

static PyObject *st_len_py(PySafeTensors *self, PyObject *Py_UNUSED(ignored))
{
    if (!st_ready(self))
        return NULL;
    return PyLong_FromLong(self->st->num_tensors);
}

static PyObject *st_path(PySafeTensors *self, void *Py_UNUSED(closure))
{
    if (!st_ready(self))
        return NULL;
    return PyUnicode_DecodeFSDefault(self->st->path);
}

static PyMethodDef st_methods[] = {
    {"keys", (PyCFunction)st_keys, METH_NOARGS, "Tensor names, sorted."},
    {"info", (PyCFunction)st_info, METH_O, "info(name) -> (dtype, shape, begin, end)."},
    {"get", (PyCFunction)st_get, METH_O,
     "get(name) -> ndarray copy (floating dtypes as float32, BF16/F16 converted)."},
    {"weight", (PyCFunction)st_weight, METH_O,
     "weight(name) -> float32 ndarray as the model loaders read it (I8 tensors times their "
     "'<name>.int8_scale' row scale)."},
    {"num_tensors", (PyCFunction)st_len_py, METH_NOARGS, "Number of tensors."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef st_getset[] = {
    {"path", (getter)st_path, NULL, "The file path.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PySafeTensors_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.SafeTensors",
    .tp_basicsize = sizeof(PySafeTensors),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SafeTensors(path): open and validate a safetensors file (memory-mapped).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)st_init,
    .tp_dealloc = (destructor)st_dealloc,
    .tp_methods = st_methods,
    .tp_getset = st_getset,
};

int v2t_py_init_safetensors(PyObject *m)
{
    if (PyType_Ready(&PySafeTensors_Type) < 0)
        return -1;
    Py_INCREF(&PySafeTensors_Type);
    if (PyModule_AddObject(m, "SafeTensors", (PyObject *)&PySafeTensors_Type) < 0) {
        Py_DECREF(&PySafeTensors_Type);
        return -1;
    }
    return 0;
}
