/* vec2text_c._core.CancelToken and the calling thread's current token.
 *
 * A token is an atomic flag. `_swap_cancel(token)` makes it the calling thread's cancel flag
 * for the core (core/interrupt.h) and returns the previous token; the thread holds a strong
 * reference to its current token, so the flag outlives every poll of it. `cancel()` may be
 * called from any thread; the core notices at its next poll and the call raises
 * vec2text_c.Cancelled. */
#include "py_common.h"

#include <stdatomic.h>

#include "core/interrupt.h"

PyObject *v2t_py_Cancelled;

typedef struct {
    PyObject_HEAD
    atomic_int raised;
} CancelTokenObject;

static PyTypeObject CancelTokenType;
static _Thread_local PyObject *t_token; /* strong reference, or NULL */

static PyObject *token_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":CancelToken", kwlist))
        return NULL;
    CancelTokenObject *self = (CancelTokenObject *)type->tp_alloc(type, 0);
    if (self)
        atomic_init(&self->raised, 0);
    return (PyObject *)self;
}

static PyObject *token_cancel(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    atomic_store(&((CancelTokenObject *)self)->raised, 1);
    Py_RETURN_NONE;
}

static PyObject *token_cancelled(PyObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(atomic_load(&((CancelTokenObject *)self)->raised));
}

static PyObject *token_repr(PyObject *self)
{
    return PyUnicode_FromFormat("CancelToken(cancelled=%s)",
                                atomic_load(&((CancelTokenObject *)self)->raised) ? "True" : "False");
}

static PyMethodDef token_methods[] = {
    {"cancel", token_cancel, METH_NOARGS,
     "Ask every call running under this token to stop: safe from any thread; the call raises "
     "vec2text_c.Cancelled at its next check (between decoding steps or rounds)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef token_getset[] = {
    {"cancelled", token_cancelled, NULL, "True once cancel() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CancelTokenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vec2text_c.CancelToken",
    .tp_basicsize = sizeof(CancelTokenObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "CancelToken(): a flag that stops the calls running under it (cancel=token), from any thread.",
    .tp_new = token_new,
    .tp_repr = token_repr,
    .tp_methods = token_methods,
    .tp_getset = token_getset,
};

static PyObject *swap_cancel(PyObject *Py_UNUSED(m), PyObject *arg)
{
    if (arg != Py_None && !PyObject_TypeCheck(arg, &CancelTokenType))
        return PyErr_Format(PyExc_TypeError, "cancel: expected a vec2text_c.CancelToken or None, got %s",
                            Py_TYPE(arg)->tp_name);
    PyObject *prev = t_token; /* the reference passes to the caller */
    if (arg == Py_None) {
        t_token = NULL;
        v2t_swap_thread_cancel(NULL);
    } else {
        Py_INCREF(arg);
        t_token = arg;
        v2t_swap_thread_cancel(&((CancelTokenObject *)arg)->raised);
    }
    if (!prev)
        Py_RETURN_NONE;
    return prev;
}

static PyMethodDef cancel_functions[] = {
    {"_swap_cancel", swap_cancel, METH_O,
     "Make `token` (or None) the calling thread's cancel flag for the core; returns the previous one."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_cancel(PyObject *m)
{
    if (PyType_Ready(&CancelTokenType) < 0)
        return -1;
    Py_INCREF(&CancelTokenType);
    if (PyModule_AddObject(m, "CancelToken", (PyObject *)&CancelTokenType) < 0) {
        Py_DECREF(&CancelTokenType);
        return -1;
    }
    v2t_py_Cancelled = PyErr_NewExceptionWithDoc(
        "vec2text_c.Cancelled",
        "A call stopped because its CancelToken was cancelled (from another thread, or at interpreter exit).",
        PyExc_Exception, NULL);
    if (!v2t_py_Cancelled)
        return -1;
    Py_INCREF(v2t_py_Cancelled);
    if (PyModule_AddObject(m, "Cancelled", v2t_py_Cancelled) < 0) {
        Py_DECREF(v2t_py_Cancelled);
        return -1;
    }
    return PyModule_AddFunctions(m, cancel_functions);
}
