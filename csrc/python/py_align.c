/* _core.align_* : the row-scaling work of the aligners (means, cross products, affine maps,
 * retrieval ranks) on raw float32 arrays. vec2text_c/align.py validates the user's arrays and
 * does the small d x d factorisations with NumPy; these functions release the GIL. */
#include "py_common.h"

#include "align/cholesky.h"
#include "align/kmeans.h"
#include "align/neighbors.h"
#include "align/moments.h"
#include "align/retrieval.h"

/* Optional float vector argument of length d (None -> NULL). Returns 0 on success. */
static int optional_vector(PyObject *obj, const char *name, npy_intp d, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*out = v2t_py_float_array(obj, name, 1, 1)))
        return -1;
    if (PyArray_DIM(*out, 0) != d) {
        PyErr_Format(PyExc_ValueError, "%s: expected shape [%lld], got %s", name, (long long)d,
                     v2t_py_shape_str(*out));
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

static PyObject *raise_status(v2t_status s) { return v2t_py_raise(s); }

/* col_mean(x[n, d]) -> [d] */
static PyObject *align_col_mean(PyObject *self, PyObject *xo)
{
    PyArrayObject *x = v2t_py_float_array(xo, "x", 2, 2), *out = NULL;
    if (!x)
        return NULL;
    npy_intp n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    out = (PyArrayObject *)PyArray_SimpleNew(1, &d, NPY_FLOAT32);
    if (out) {
        Py_BEGIN_ALLOW_THREADS
        v2t_col_mean(PyArray_DATA(x), d, n, d, PyArray_DATA(out));
        Py_END_ALLOW_THREADS
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

/* cross_product(x[n, d1], y[n, d2], mean_x=None, mean_y=None) -> [d1, d2] = (x - mx)^T (y - my).
 * Passing the same object for y (and for mean_y) selects the symmetric Gram path. */
static PyObject *align_cross_product(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "y", "mean_x", "mean_y", NULL};
    PyObject *xo, *yo, *mxo = Py_None, *myo = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL, *mx = NULL, *my = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO", kwlist, &xo, &yo, &mxo, &myo))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    if (yo == xo) {
        Py_INCREF(x);
        y = x;
    } else if (!(y = v2t_py_float_array(yo, "y", 2, 2))) {
        goto exit;
    }
    npy_intp n = PyArray_DIM(x, 0), d1 = PyArray_DIM(x, 1), d2 = PyArray_DIM(y, 1);
    if (PyArray_DIM(y, 0) != n) {
        PyErr_Format(PyExc_ValueError, "y: expected %lld rows like x, got shape %s", (long long)n,
                     v2t_py_shape_str(y));
        goto exit;
    }
    if (optional_vector(mxo, "mean_x", d1, &mx) < 0)
        goto exit;
    if (myo == mxo && yo == xo) {
        Py_XINCREF(mx);
        my = mx;
    } else if (optional_vector(myo, "mean_y", d2, &my) < 0) {
        goto exit;
    }
    npy_intp dims[2] = {d1, d2};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_cross_product(&ex, PyArray_DATA(x), d1, mx ? PyArray_DATA(mx) : NULL, d1, PyArray_DATA(y), d2,
                              my ? PyArray_DATA(my) : NULL, d2, n, PyArray_DATA(out));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(y);
    Py_XDECREF(mx);
    Py_XDECREF(my);
    Py_XDECREF(out);
    return result;
}

/* gram_and_cross(x[n, d1], y[n, d2], mean_x=None, mean_y=None) -> (gram [d1, d1], cross [d1, d2]) */
static PyObject *align_gram_and_cross(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "y", "mean_x", "mean_y", NULL};
    PyObject *xo, *yo, *mxo = Py_None, *myo = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *y = NULL, *mx = NULL, *my = NULL, *g = NULL, *c = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO", kwlist, &xo, &yo, &mxo, &myo))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(y = v2t_py_float_array(yo, "y", 2, 2)))
        goto exit;
    npy_intp n = PyArray_DIM(x, 0), d1 = PyArray_DIM(x, 1), d2 = PyArray_DIM(y, 1);
    if (PyArray_DIM(y, 0) != n) {
        PyErr_Format(PyExc_ValueError, "y: expected %lld rows like x, got shape %s", (long long)n,
                     v2t_py_shape_str(y));
        goto exit;
    }
    if (optional_vector(mxo, "mean_x", d1, &mx) < 0 || optional_vector(myo, "mean_y", d2, &my) < 0)
        goto exit;
    npy_intp gd[2] = {d1, d1}, cd[2] = {d1, d2};
    if (!(g = (PyArrayObject *)PyArray_SimpleNew(2, gd, NPY_FLOAT32)) ||
        !(c = (PyArrayObject *)PyArray_SimpleNew(2, cd, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_gram_and_cross(&ex, PyArray_DATA(x), mx ? PyArray_DATA(mx) : NULL, d1, PyArray_DATA(y),
                               my ? PyArray_DATA(my) : NULL, d2, n, PyArray_DATA(g), PyArray_DATA(c));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = Py_BuildValue("(OO)", g, c);
exit:
    Py_XDECREF(x);
    Py_XDECREF(y);
    Py_XDECREF(mx);
    Py_XDECREF(my);
    Py_XDECREF(g);
    Py_XDECREF(c);
    return result;
}

/* row_gram(x[n, d], mean=None) -> [n, n] = (x - mean)(x - mean)^T */
static PyObject *align_row_gram(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "mean", NULL};
    PyObject *xo, *mo = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *m = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O", kwlist, &xo, &mo))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    npy_intp n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    if (optional_vector(mo, "mean", d, &m) < 0)
        goto exit;
    npy_intp dims[2] = {n, n};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_row_gram(&ex, PyArray_DATA(x), d, m ? PyArray_DATA(m) : NULL, n, d, PyArray_DATA(out));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(m);
    Py_XDECREF(out);
    return result;
}

/* affine(x[n, d1], w[d1, d2], b[d2]=None) -> [n, d2] = x w + b */
static PyObject *align_affine(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "w", "b", NULL};
    PyObject *xo, *wo, *bo = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O", kwlist, &xo, &wo, &bo))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(w = v2t_py_float_array(wo, "w", 2, 2)))
        goto exit;
    npy_intp n = PyArray_DIM(x, 0), d1 = PyArray_DIM(x, 1), d2 = PyArray_DIM(w, 1);
    if (PyArray_DIM(w, 0) != d1) {
        PyErr_Format(PyExc_ValueError, "x: expected %lld columns to match w of shape %s, got shape %s",
                     (long long)PyArray_DIM(w, 0), v2t_py_shape_str(w), v2t_py_shape_str(x));
        goto exit;
    }
    if (optional_vector(bo, "b", d2, &b) < 0)
        goto exit;
    npy_intp dims[2] = {n, d2};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_affine(&ex, PyArray_DATA(x), d1, n, d1, PyArray_DATA(w), b ? PyArray_DATA(b) : NULL, d2,
                       PyArray_DATA(out));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(out);
    return result;
}

/* Two [n, d] arrays of the same shape. */
static int pair_arrays(PyObject *po, PyObject *to, PyArrayObject **p, PyArrayObject **t)
{
    *p = *t = NULL;
    if (!(*p = v2t_py_float_array(po, "predicted", 2, 2)) || !(*t = v2t_py_float_array(to, "target", 2, 2)))
        return -1;
    if (!PyArray_SAMESHAPE(*p, *t)) {
        PyErr_Format(PyExc_ValueError, "target: expected the shape of predicted, got %s",
                     v2t_py_shape_str(*t));
        return -1;
    }
    return 0;
}

/* row_cosine(p[n, d], t[n, d], mean_p=None, mean_t=None) -> [n] */
static PyObject *align_row_cosine(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"predicted", "target", "mean_p", "mean_t", NULL};
    PyObject *po, *to, *mpo = Py_None, *mto = Py_None, *result = NULL;
    PyArrayObject *p = NULL, *t = NULL, *mp = NULL, *mt = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO", kwlist, &po, &to, &mpo, &mto))
        return NULL;
    if (pair_arrays(po, to, &p, &t) < 0)
        goto exit;
    npy_intp n = PyArray_DIM(p, 0), d = PyArray_DIM(p, 1);
    if (optional_vector(mpo, "mean_p", d, &mp) < 0 || optional_vector(mto, "mean_t", d, &mt) < 0)
        goto exit;
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_row_cosine(PyArray_DATA(p), mp ? PyArray_DATA(mp) : NULL, PyArray_DATA(t), mt ? PyArray_DATA(mt) : NULL, n,
                   d, PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(p);
    Py_XDECREF(t);
    Py_XDECREF(mp);
    Py_XDECREF(mt);
    Py_XDECREF(out);
    return result;
}

/* retrieval_ranks(p[n, d], t[n, d], chunk) -> (rank int64[n], top1 bool[n]) */
static PyObject *align_retrieval_ranks(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"predicted", "target", "chunk_size", NULL};
    PyObject *po, *to, *result = NULL;
    Py_ssize_t chunk;
    PyArrayObject *p = NULL, *t = NULL, *rank = NULL, *top1 = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn", kwlist, &po, &to, &chunk))
        return NULL;
    if (chunk < 1) {
        PyErr_Format(PyExc_ValueError, "chunk_size: expected a positive number of rows, got %zd", chunk);
        return NULL;
    }
    if (pair_arrays(po, to, &p, &t) < 0)
        goto exit;
    npy_intp n = PyArray_DIM(p, 0), d = PyArray_DIM(p, 1);
    if (!(rank = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64)) ||
        !(top1 = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_BOOL)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_retrieval_ranks(&ex, PyArray_DATA(p), PyArray_DATA(t), n, d, chunk, PyArray_DATA(rank),
                                PyArray_DATA(top1));
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = Py_BuildValue("(OO)", rank, top1);
exit:
    Py_XDECREF(p);
    Py_XDECREF(t);
    Py_XDECREF(rank);
    Py_XDECREF(top1);
    return result;
}

/* cholesky_solve(l[d, d] float64 lower, b[d, k] float64) -> x[d, k] with l l^T x = b */
static PyObject *align_cholesky_solve(PyObject *self, PyObject *args)
{
    PyObject *lo, *bo, *result = NULL;
    PyArrayObject *l = NULL, *x = NULL;
    if (!PyArg_ParseTuple(args, "OO", &lo, &bo))
        return NULL;
    l = (PyArrayObject *)PyArray_FROMANY(lo, NPY_FLOAT64, 2, 2, NPY_ARRAY_IN_ARRAY);
    if (!l)
        goto exit;
    x = (PyArrayObject *)PyArray_FROMANY(bo, NPY_FLOAT64, 2, 2, NPY_ARRAY_ENSURECOPY | NPY_ARRAY_CARRAY);
    if (!x)
        goto exit;
    npy_intp d = PyArray_DIM(l, 0), k = PyArray_DIM(x, 1);
    if (PyArray_DIM(l, 1) != d || PyArray_DIM(x, 0) != d) {
        PyErr_Format(PyExc_ValueError, "cholesky_solve: expected l [d, d] and b [d, k], got %s and %s",
                     v2t_py_shape_str(l), v2t_py_shape_str(x));
        goto exit;
    }
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_cholesky_solve(PyArray_DATA(l), d, PyArray_DATA(x), k);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = (PyObject *)x;
    x = NULL;
exit:
    Py_XDECREF(l);
    Py_XDECREF(x);
    return result;
}

/* kmeans(x[n, d], k, max_iter=100, tol=1e-4, seed=0, init=None) -> (centroids, assign, inertia, iters) */
static PyObject *align_kmeans(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "k", "max_iter", "tol", "seed", "init", NULL};
    PyObject *xo, *io = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *c = NULL, *a = NULL;
    Py_ssize_t k;
    int max_iter = 100;
    double tol = 1e-4;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On|idKO", kwlist, &xo, &k, &max_iter, &tol, &seed, &io))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    npy_intp n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    if (k < 1 || k > n || max_iter < 1) {
        PyErr_Format(PyExc_ValueError, "kmeans: expected 1 <= k <= rows (%lld) and max_iter >= 1, got k=%zd, max_iter=%d",
                     (long long)n, k, max_iter);
        goto exit;
    }
    npy_intp cd[2] = {k, d};
    if (io != Py_None) {
        PyArrayObject *init = v2t_py_float_array(io, "init", 2, 2);
        if (!init)
            goto exit;
        if (PyArray_DIM(init, 0) != k || PyArray_DIM(init, 1) != d) {
            PyErr_Format(PyExc_ValueError, "init: expected shape [%zd, %lld], got %s", k, (long long)d,
                         v2t_py_shape_str(init));
            Py_DECREF(init);
            goto exit;
        }
        c = (PyArrayObject *)PyArray_NewCopy(init, NPY_CORDER);
        Py_DECREF(init);
    } else {
        c = (PyArrayObject *)PyArray_SimpleNew(2, cd, NPY_FLOAT32);
    }
    if (!c || !(a = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT32)))
        goto exit;
    v2t_kmeans_config cfg = {.k = k, .max_iter = max_iter, .tol = tol, .seed = seed, .use_init = io != Py_None};
    double inertia;
    int iters;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_kmeans(&ex, PyArray_DATA(x), n, d, &cfg, PyArray_DATA(c), PyArray_DATA(a), &inertia, &iters);
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = Py_BuildValue("(OOdi)", c, a, inertia, iters);
exit:
    Py_XDECREF(x);
    Py_XDECREF(c);
    Py_XDECREF(a);
    return result;
}

/* topk_mean(q[nq, d], keys[nk, d], values[nk, dv], k, return_indices=False) -> out[nq, dv] (, idx[nq, k]) */
static PyObject *align_topk_mean(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"q", "keys", "values", "k", "return_indices", NULL};
    PyObject *qo, *ko, *vo, *result = NULL;
    PyArrayObject *q = NULL, *keys = NULL, *v = NULL, *out = NULL, *idx = NULL;
    Py_ssize_t k;
    int want_idx = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn|p", kwlist, &qo, &ko, &vo, &k, &want_idx))
        return NULL;
    if (!(q = v2t_py_float_array(qo, "q", 2, 2)) || !(keys = v2t_py_float_array(ko, "keys", 2, 2)) ||
        !(v = v2t_py_float_array(vo, "values", 2, 2)))
        goto exit;
    npy_intp nq = PyArray_DIM(q, 0), d = PyArray_DIM(q, 1), nk = PyArray_DIM(keys, 0), dv = PyArray_DIM(v, 1);
    if (PyArray_DIM(keys, 1) != d || PyArray_DIM(v, 0) != nk || k < 1 || k > nk) {
        PyErr_Format(PyExc_ValueError, "topk_mean: expected keys [nk, %lld], values [nk, dv], 1 <= k <= nk; got keys %s, "
                     "values %s, k=%zd", (long long)d, v2t_py_shape_str(keys), v2t_py_shape_str(v), k);
        goto exit;
    }
    npy_intp od[2] = {nq, dv}, id[2] = {nq, k};
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, od, NPY_FLOAT32)) ||
        (want_idx && !(idx = (PyArrayObject *)PyArray_SimpleNew(2, id, NPY_INT64))))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK) {
        s = v2t_topk_mean(&ex, PyArray_DATA(q), nq, PyArray_DATA(keys), nk, d, PyArray_DATA(v), dv, k,
                          PyArray_DATA(out), idx ? PyArray_DATA(idx) : NULL);
        v2t_exec_release(&ex);
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        raise_status(s);
        goto exit;
    }
    result = idx ? Py_BuildValue("(OO)", out, idx) : (Py_INCREF(out), (PyObject *)out);
exit:
    Py_XDECREF(q);
    Py_XDECREF(keys);
    Py_XDECREF(v);
    Py_XDECREF(out);
    Py_XDECREF(idx);
    return result;
}

/* centre_normalise(x[n, d], mean=None) -> (x - mean) / |x - mean| row by row */
static PyObject *align_centre_normalise(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "mean", NULL};
    PyObject *xo, *mo = Py_None, *result = NULL;
    PyArrayObject *x = NULL, *m = NULL, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O", kwlist, &xo, &mo))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)))
        goto exit;
    npy_intp n = PyArray_DIM(x, 0), d = PyArray_DIM(x, 1);
    if (optional_vector(mo, "mean", d, &m) < 0)
        goto exit;
    if (!(out = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(x), NPY_FLOAT32)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_centre_normalise(PyArray_DATA(x), n, d, m ? PyArray_DATA(m) : NULL, PyArray_DATA(out));
    Py_END_ALLOW_THREADS
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(m);
    Py_XDECREF(out);
    return result;
}

static PyMethodDef align_methods[] = {
    {"align_kmeans", (PyCFunction)(void (*)(void))align_kmeans, METH_VARARGS | METH_KEYWORDS,
     "Lloyd k-means with k-means++ seeding (or given centroids): (centroids, assign, inertia, iters)."},
    {"align_topk_mean", (PyCFunction)(void (*)(void))align_topk_mean, METH_VARARGS | METH_KEYWORDS,
     "Mean of the values of each query's top-k keys by inner product."},
    {"align_centre_normalise", (PyCFunction)(void (*)(void))align_centre_normalise, METH_VARARGS | METH_KEYWORDS,
     "Subtract a mean and scale rows to unit length."},
    {"align_col_mean", align_col_mean, METH_O, "Column means of x [n, d] (double accumulation)."},
    {"align_cross_product", (PyCFunction)(void (*)(void))align_cross_product, METH_VARARGS | METH_KEYWORDS,
     "(x - mean_x)^T (y - mean_y), streamed over row chunks on oneDNN."},
    {"align_gram_and_cross", (PyCFunction)(void (*)(void))align_gram_and_cross, METH_VARARGS | METH_KEYWORDS,
     "((x - mx)^T (x - mx), (x - mx)^T (y - my)) in one streamed pass on oneDNN."},
    {"align_row_gram", (PyCFunction)(void (*)(void))align_row_gram, METH_VARARGS | METH_KEYWORDS,
     "(x - mean)(x - mean)^T on oneDNN."},
    {"align_affine", (PyCFunction)(void (*)(void))align_affine, METH_VARARGS | METH_KEYWORDS,
     "x w + b on oneDNN."},
    {"align_row_cosine", (PyCFunction)(void (*)(void))align_row_cosine, METH_VARARGS | METH_KEYWORDS,
     "Cosine of each row pair, optionally after subtracting means."},
    {"align_retrieval_ranks", (PyCFunction)(void (*)(void))align_retrieval_ranks, METH_VARARGS | METH_KEYWORDS,
     "Rank (1-indexed) and top-1 flag of each true partner among its chunk, by cosine."},
    {"align_cholesky_solve", align_cholesky_solve, METH_VARARGS, "Solve L L^T X = B (float64)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_align(PyObject *m) { return PyModule_AddFunctions(m, align_methods); }
