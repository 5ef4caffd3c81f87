/* _core.generate_with_callback and _core.kernel_topk: the search of decode/ driven by a Python
 * step function (and optionally a retire function, told which examples are finished), and its
 * top-k, for tests against transformers. Not part of the public API. */
#include "py_common.h"

#include <string.h>

#include "core/alloc.h"
#include "decode/decode.h"
#include "ops/logsoftmax.h"
#include "ops/topk.h"

/* State of one generate_with_callback call, seen by the decoder ops below. */
typedef struct py_step_ctx {
    PyObject *step_fn;
    PyObject *retire_fn; /* or NULL */
    int64_t batch;
    int64_t vocab;
    int64_t rows;
    int64_t steps;
    PyObject *exc_type, *exc_value, *exc_tb; /* exception raised inside a step, restored later */
} py_step_ctx;

/* After a Python callback (GIL held): keeps the exception it raised, if any, for the caller
 * to restore once the search has returned, and reports it as a failed decoder call. */
static v2t_status keep_callback_error(py_step_ctx *c, const char *name)
{
    if (!PyErr_Occurred())
        return V2T_OK;
    PyErr_Fetch(&c->exc_type, &c->exc_value, &c->exc_tb);
    return v2t_fail(V2T_ERR_VALUE, "%s raised an exception", name);
}

static v2t_status py_start(void *ctx, int64_t batch, int64_t beams)
{
    py_step_ctx *c = ctx;
    c->rows = batch * beams;
    c->steps = 0;
    return V2T_OK;
}

static PyObject *int32_vector(const int32_t *v, int64_t n)
{
    npy_intp dims[1] = {(npy_intp)n};
    PyObject *a = PyArray_SimpleNew(1, dims, NPY_INT32);
    if (a)
        memcpy(PyArray_DATA((PyArrayObject *)a), v, (size_t)n * sizeof(int32_t));
    return a;
}

/* Calls step_fn(tokens, parents) with the GIL held; copies its [rows, vocab] result. */
static v2t_status py_step(void *ctx, const int32_t *tokens, const int32_t *parents, int64_t rows, float *logits)
{
    py_step_ctx *c = ctx;
    v2t_status st = V2T_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *tok = NULL, *par = NULL, *res = NULL;
    PyArrayObject *arr = NULL;
    if (!(tok = int32_vector(tokens, rows)))
        goto exit;
    if (parents) {
        if (!(par = int32_vector(parents, rows)))
            goto exit;
    } else {
        par = Py_NewRef(Py_None);
    }
    if (!(res = PyObject_CallFunctionObjArgs(c->step_fn, tok, par, NULL)))
        goto exit;
    if (!(arr = v2t_py_float_array(res, "step_fn result", 2, 2)))
        goto exit;
    if (PyArray_DIM(arr, 0) != rows || PyArray_DIM(arr, 1) != c->vocab) {
        PyErr_Format(PyExc_ValueError, "step_fn result: expected logits of shape [%lld, %lld] (rows, vocab), got %s",
                     (long long)rows, (long long)c->vocab, v2t_py_shape_str(arr));
        goto exit;
    }
    memcpy(logits, PyArray_DATA(arr), (size_t)rows * (size_t)c->vocab * sizeof(float));
    c->steps++;
exit:
    st = keep_callback_error(c, "step_fn");
    Py_XDECREF(tok);
    Py_XDECREF(par);
    Py_XDECREF(res);
    Py_XDECREF(arr);
    PyGILState_Release(g);
    return st;
}

/* Calls retire_fn(done) with done a bool array [batch], GIL held. */
static v2t_status py_retire(void *ctx, const unsigned char *done)
{
    py_step_ctx *c = ctx;
    v2t_status st = V2T_OK;
    PyGILState_STATE g = PyGILState_Ensure();
    npy_intp dims[1] = {(npy_intp)c->batch};
    PyObject *a = PyArray_SimpleNew(1, dims, NPY_BOOL), *res = NULL;
    if (a) {
        unsigned char *d = PyArray_DATA((PyArrayObject *)a);
        for (int64_t i = 0; i < c->batch; i++)
            d[i] = done[i] != 0;
        res = PyObject_CallFunctionObjArgs(c->retire_fn, a, NULL);
    }
    st = keep_callback_error(c, "retire_fn");
    Py_XDECREF(a);
    Py_XDECREF(res);
    PyGILState_Release(g);
    return st;
}

int v2t_py_early_stopping(PyObject *o, int *out)
{
    if (PyBool_Check(o)) {
        *out = o == Py_True ? V2T_EARLY_STOP_TRUE : V2T_EARLY_STOP_FALSE;
        return 0;
    }
    if (PyUnicode_Check(o) && PyUnicode_CompareWithASCIIString(o, "never") == 0) {
        *out = V2T_EARLY_STOP_NEVER;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "early_stopping: expected True, False or \"never\", got %R", o);
    return -1;
}

static int parse_id(PyObject *o, const char *name, int allow_none, int32_t *out)
{
    if (allow_none && o == Py_None) {
        *out = -1;
        return 0;
    }
    if (!PyLong_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: expected an int%s, got %.100s", name, allow_none ? " or None" : "",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: expected a non-negative token id, got %lld", name, v);
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

PyObject *v2t_py_generated_ids(const int32_t *ids, const int64_t *lengths, int64_t n, int64_t T)
{
    int64_t L = 0;
    for (int64_t i = 0; i < n; i++)
        L = lengths[i] > L ? lengths[i] : L;
    npy_intp dims[2] = {(npy_intp)n, (npy_intp)L};
    PyObject *a = PyArray_SimpleNew(2, dims, NPY_INT64);
    if (!a)
        return NULL;
    int64_t *dst = PyArray_DATA((PyArrayObject *)a);
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < L; t++)
            dst[i * L + t] = ids[i * T + t];
    return a;
}

static PyObject *generate_with_callback(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"step_fn", "batch", "vocab", "max_length", "num_beams", "num_return_sequences",
                             "length_penalty", "early_stopping", "decoder_start_token_id", "eos_token_id",
                             "pad_token_id", "retire_fn", NULL};
    PyObject *step_fn, *es = Py_False, *start_o = NULL, *eos_o = NULL, *pad_o = NULL, *retire_fn = Py_None;
    long long batch, vocab, max_length = 20, num_beams = 1, nrs = 1;
    double length_penalty = 1.0;
    py_step_ctx c = {0};
    void *ids = NULL, *lengths = NULL;
    PyObject *scores = NULL, *result = NULL, *out_ids = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OLL|LLLdOOOOO", kwlist, &step_fn, &batch, &vocab, &max_length,
                                     &num_beams, &nrs, &length_penalty, &es, &start_o, &eos_o, &pad_o,
                                     &retire_fn))
        return NULL;
    if (retire_fn != Py_None && !PyCallable_Check(retire_fn)) {
        PyErr_Format(PyExc_TypeError, "retire_fn: expected a callable or None, got %.100s", Py_TYPE(retire_fn)->tp_name);
        return NULL;
    }
    if (!PyCallable_Check(step_fn)) {
        PyErr_Format(PyExc_TypeError, "step_fn: expected a callable, got %.100s", Py_TYPE(step_fn)->tp_name);
        return NULL;
    }
    v2t_generate_config cfg = v2t_generate_defaults();
    cfg.max_length = max_length;
    cfg.num_beams = num_beams;
    cfg.num_return_sequences = nrs;
    cfg.length_penalty = length_penalty;
    if (v2t_py_early_stopping(es, &cfg.early_stopping) < 0 ||
        (start_o && parse_id(start_o, "decoder_start_token_id", 0, &cfg.decoder_start_id) < 0) ||
        (eos_o && parse_id(eos_o, "eos_token_id", 1, &cfg.eos_id) < 0) ||
        (pad_o && parse_id(pad_o, "pad_token_id", 0, &cfg.pad_id) < 0))
        return NULL;
    if (vocab < 1 || vocab > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "vocab: expected a vocabulary size in [1, 2^31), got %lld", vocab);
        return NULL;
    }
    v2t_decoder_ops ops = {py_start, py_step, vocab, retire_fn != Py_None ? py_retire : NULL};
    v2t_status st = v2t_generate_check(&ops, batch, &cfg);
    if (st != V2T_OK)
        return v2t_py_raise(st);
    const int64_t n = batch * nrs;
    size_t id_bytes;
    if (v2t_mul_size((size_t)n * sizeof(int32_t), (size_t)max_length, &id_bytes) != V2T_OK ||
        v2t_alloc(&ids, id_bytes, "generated ids") != V2T_OK ||
        v2t_alloc(&lengths, (size_t)n * sizeof(int64_t), "generated lengths") != V2T_OK) {
        PyErr_Format(PyExc_MemoryError, "generate_with_callback: cannot allocate %lld x %lld ids", (long long)n,
                     max_length);
        goto exit;
    }
    if (num_beams > 1) {
        npy_intp dims[1] = {(npy_intp)n};
        if (!(scores = PyArray_ZEROS(1, dims, NPY_FLOAT32, 0)))
            goto exit;
    }
    c.step_fn = step_fn;
    c.retire_fn = retire_fn != Py_None ? retire_fn : NULL;
    c.batch = batch;
    c.vocab = vocab;
    float *score_ptr = scores ? PyArray_DATA((PyArrayObject *)scores) : NULL;
    Py_BEGIN_ALLOW_THREADS
    st = v2t_generate(&ops, &c, batch, &cfg, ids, lengths, score_ptr);
    Py_END_ALLOW_THREADS
    if (c.exc_type) {
        PyErr_Restore(c.exc_type, c.exc_value, c.exc_tb);
        c.exc_type = c.exc_value = c.exc_tb = NULL;
        goto exit;
    }
    if (st != V2T_OK) {
        v2t_py_raise(st);
        goto exit;
    }
    if (!(out_ids = v2t_py_generated_ids(ids, lengths, n, max_length)))
        goto exit;
    result = PyTuple_Pack(2, out_ids, scores ? scores : Py_None);
exit:
    v2t_free(ids);
    v2t_free(lengths);
    Py_XDECREF(out_ids);
    Py_XDECREF(scores);
    return PyErr_Occurred() ? NULL : result;
}

/* kernel_topk(x[rows, n], k, reference=False) -> (values float32 [rows, k], indices int64 [rows, k]) */
static PyObject *kernel_topk(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "k", "reference", NULL};
    PyObject *xo, *result = NULL;
    long long k;
    int reference = 0;
    PyArrayObject *x = NULL, *vals = NULL, *idx = NULL;
    void *work = NULL, *idx32 = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OL|p", kwlist, &xo, &k, &reference))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    npy_intp rows = PyArray_DIM(x, 0), n = PyArray_DIM(x, 1);
    if (n < 1 || n > INT32_MAX || k < 1 || k > n) {
        PyErr_Format(PyExc_ValueError, "k: expected 1 <= k <= %lld (the row length), got %lld", (long long)n, k);
        goto exit;
    }
    npy_intp dims[2] = {rows, (npy_intp)k};
    if (!(vals = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0)) ||
        !(idx = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0)))
        goto exit;
    int64_t wn = v2t_topk_work_items(n, k);
    if (v2t_alloc(&work, (size_t)wn * sizeof(v2t_topk_item), "top-k scratch") != V2T_OK ||
        v2t_alloc(&idx32, (size_t)k * sizeof(int32_t), "top-k indices") != V2T_OK) {
        PyErr_NoMemory();
        goto exit;
    }
    const float *xp = PyArray_DATA(x);
    float *vp = PyArray_DATA(vals);
    int64_t *ip = PyArray_DATA(idx);
    int32_t *i32 = idx32;
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp r = 0; r < rows; r++) {
        (reference ? v2t_topk_ref : v2t_topk)(xp + r * n, n, k, vp + r * k, i32, wn ? work : NULL);
        for (long long j = 0; j < k; j++)
            ip[r * k + j] = i32[j];
    }
    Py_END_ALLOW_THREADS
    result = PyTuple_Pack(2, (PyObject *)vals, (PyObject *)idx);
exit:
    v2t_free(work);
    v2t_free(idx32);
    Py_XDECREF(x);
    Py_XDECREF(vals);
    Py_XDECREF(idx);
    return result;
}

/* kernel_argmax(x[rows, n], reference=False) -> int64 [rows] */
static PyObject *kernel_argmax(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "reference", NULL};
    PyObject *xo, *result = NULL;
    int reference = 0;
    PyArrayObject *x = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p", kwlist, &xo, &reference))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    npy_intp rows = PyArray_DIM(x, 0), n = PyArray_DIM(x, 1);
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "x: expected rows of at least one value, got 0 columns");
        goto exit;
    }
    if (!(out = (PyArrayObject *)PyArray_ZEROS(1, &rows, NPY_INT64, 0)))
        goto exit;
    const float *xp = PyArray_DATA(x);
    int64_t *op = PyArray_DATA(out);
    for (npy_intp r = 0; r < rows; r++)
        op[r] = (reference ? v2t_argmax_ref : v2t_argmax)(xp + r * n, n);
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(out);
    return result;
}

/* kernel_log_softmax(x[rows, n], add[rows], reference=False) -> float32 [rows, n]; rows that
 * hold NaN or have no finite maximum raise ValueError. */
static PyObject *kernel_log_softmax(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "add", "reference", NULL};
    PyObject *xo, *ao, *result = NULL;
    int reference = 0;
    PyArrayObject *x = NULL, *add = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|p", kwlist, &xo, &ao, &reference))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(add = v2t_py_float_array(ao, "add", 1, 1)))
        goto exit;
    npy_intp rows = PyArray_DIM(x, 0), n = PyArray_DIM(x, 1);
    if (n < 1 || PyArray_DIM(add, 0) != rows) {
        PyErr_Format(PyExc_ValueError, "add: expected shape [%lld] for x of shape %s", (long long)rows,
                     v2t_py_shape_str(x));
        goto exit;
    }
    if (!(out = (PyArrayObject *)PyArray_NewCopy(x, NPY_CORDER)))
        goto exit;
    float *op = PyArray_DATA(out);
    const float *ap = PyArray_DATA(add);
    for (npy_intp r = 0; r < rows; r++) {
        if ((reference ? v2t_log_softmax_add_ref : v2t_log_softmax_add)(op + r * n, n, ap[r]) < 0) {
            PyErr_Format(PyExc_ValueError, "x: row %lld holds NaN or has no finite maximum", (long long)r);
            goto exit;
        }
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(add);
    Py_XDECREF(out);
    return result;
}

static PyMethodDef generate_methods[] = {
    {"generate_with_callback", (PyCFunction)(void (*)(void))generate_with_callback, METH_VARARGS | METH_KEYWORDS,
     "generate_with_callback(step_fn, batch, vocab, max_length=20, num_beams=1, num_return_sequences=1, "
     "length_penalty=1.0, early_stopping=False, decoder_start_token_id=0, eos_token_id=1, pad_token_id=0, retire_fn=None)\n"
     "Greedy / beam search of the C core over a Python decoder: step_fn(tokens int32 [rows], parents int32 [rows] "
     "or None) -> logits [rows, vocab]; rows = batch * num_beams, example-major; retire_fn(done bool [batch]) is "
     "called when examples finish (the search reads no logits of their rows afterwards). Returns (ids int64 "
     "[batch * num_return_sequences, L], sequence scores float32 or None for greedy)."},
    {"kernel_topk", (PyCFunction)(void (*)(void))kernel_topk, METH_VARARGS | METH_KEYWORDS,
     "kernel_topk(x[rows, n], k, reference=False) -> (values, indices): torch.topk(largest=True, sorted=True) "
     "with its CPU tie order."},
    {"kernel_argmax", (PyCFunction)(void (*)(void))kernel_argmax, METH_VARARGS | METH_KEYWORDS,
     "kernel_argmax(x[rows, n], reference=False) -> int64 [rows]: torch.argmax (first maximum, NaN first)."},
    {"kernel_log_softmax", (PyCFunction)(void (*)(void))kernel_log_softmax, METH_VARARGS | METH_KEYWORDS,
     "kernel_log_softmax(x[rows, n], add[rows], reference=False) -> float32 [rows, n]: "
     "log_softmax(x) + add per row, as beam search scores candidates."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_generate(PyObject *m) { return PyModule_AddFunctions(m, generate_methods); }
