/* _core.kernel_* : direct access to single kernels, for tests comparing each fast kernel
 * with its naive reference. Not part of the public API. */
#include "py_common.h"

#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/gemm.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/transpose.h"

/* kernel_linear(x[M,in], w[out,in], b[out] or None, act, accumulate, y0[M,out] or None, reference) */
static PyObject *kernel_linear(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "w", "b", "act", "accumulate", "y0", "reference", "bf16", NULL};
    PyObject *xo, *wo, *bo = Py_None, *y0o = Py_None;
    int act = 0, accumulate = 0, reference = 0, bf16 = 0;
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *y = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OipOpp", kwlist, &xo, &wo, &bo, &act, &accumulate, &y0o,
                                     &reference, &bf16))
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
            s = v2t_linear_init(&l, PyArray_DATA(w), bp, in, out, (v2t_act)act, accumulate,
                                bf16 ? V2T_DT_BF16 : V2T_DT_F32);
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

/* kernel_attention(q[B,Tq,H*dk], k[Bk,Tk,H*dk], v[Bk,Tk,H*dk], heads, scale=1, causal=False,
 *                  pos_bias[H,Tq,Tk]=None, mask[Bk,Tk]=None, reference=False, keys_transposed=False);
 * B = Bk * kv_group; keys_transposed hands the kernels a copy of k laid out [Bk, H, dk, Tk], as the
 * decoder caches hold their keys; share_len (int64 [B], with share_group, transposed keys only)
 * tells the fast kernel that row b's first share_len[b] keys/values equal its group's first row's */
static PyObject *kernel_attention(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"q",    "k",    "v",         "heads",           "scale", "causal",
                             "pos_bias", "mask", "reference", "keys_transposed", "share_len", "share_group", NULL};
    PyObject *qo, *ko, *vo, *pbo = Py_None, *mo = Py_None, *so = Py_None;
    int heads, causal = 0, reference = 0, transposed = 0, share_group = 1;
    PyArrayObject *share = NULL;
    float scale = 1.f;
    PyArrayObject *q = NULL, *k = NULL, *v = NULL, *pb = NULL, *mask = NULL, *out = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOi|fpOOppOi", kwlist, &qo, &ko, &vo, &heads, &scale, &causal,
                                     &pbo, &mo, &reference, &transposed, &so, &share_group))
        return NULL;
    if (!(q = v2t_py_float_array(qo, "q", 3, 3)) || !(k = v2t_py_float_array(ko, "k", 3, 3)) ||
        !(v = v2t_py_float_array(vo, "v", 3, 3)))
        goto exit;
    if (pbo != Py_None && !(pb = v2t_py_float_array(pbo, "pos_bias", 3, 3)))
        goto exit;
    if (mo != Py_None && !(mask = v2t_py_ids_array(mo, "mask", 2, 2)))
        goto exit;
    if (so != Py_None) {
        share = (PyArrayObject *)PyArray_FROMANY(so, NPY_INT64, 1, 1, NPY_ARRAY_IN_ARRAY);
        if (!share)
            goto exit;
        if (PyArray_DIM(share, 0) != PyArray_DIM(q, 0) || share_group < 1 || PyArray_DIM(q, 0) % share_group) {
            PyErr_SetString(PyExc_ValueError, "kernel_attention: share_len must have one entry per query row, "
                                              "in groups of share_group");
            goto exit;
        }
    }
    npy_intp B = PyArray_DIM(q, 0), Tq = PyArray_DIM(q, 1), F = PyArray_DIM(q, 2);
    npy_intp Bk = PyArray_DIM(k, 0), Tk = PyArray_DIM(k, 1);
    if (heads <= 0 || F % heads || PyArray_DIM(k, 2) != F || !PyArray_SAMESHAPE(k, v) || Bk <= 0 || B % Bk ||
        (pb && (PyArray_DIM(pb, 0) != heads || PyArray_DIM(pb, 1) != Tq || PyArray_DIM(pb, 2) != Tk)) ||
        (mask && (PyArray_DIM(mask, 0) != Bk || PyArray_DIM(mask, 1) != Tk))) {
        PyErr_SetString(PyExc_ValueError, "kernel_attention: inconsistent shapes");
        goto exit;
    }
    out = (PyArrayObject *)PyArray_ZEROS(3, PyArray_DIMS(q), NPY_FLOAT32, 0);
    if (!out)
        goto exit;
    v2t_attn_args a = {
        .batch = B, .heads = heads, .head_dim = F / heads, .tq = Tq, .tk = Tk, .kv_group = B / Bk,
        .scale = scale, .causal = causal,
        .q = PyArray_DATA(q), .q_bs = Tq * F, .q_rs = F,
        .k = PyArray_DATA(k), .k_bs = Tk * F, .k_rs = F,
        .v = PyArray_DATA(v), .v_bs = Tk * F, .v_rs = F,
        .pos_bias = pb ? PyArray_DATA(pb) : NULL, .pb_hs = Tq * Tk, .pb_rs = Tk,
        .mask = mask ? PyArray_DATA(mask) : NULL, .mask_bs = Tk,
        .out = PyArray_DATA(out), .o_bs = Tq * F, .o_rs = F,
        .share_len = share ? PyArray_DATA(share) : NULL, .share_rs = 1, .share_group = share_group,
    };
    v2t_status s = V2T_OK;
    v2t_buffer scratch = {0}, kt = {0};
    Py_BEGIN_ALLOW_THREADS
    if (transposed) {
        const int64_t hd = F / heads;
        s = v2t_buffer_reserve(&kt, (size_t)(Bk * Tk * F) * sizeof(float), "transposed keys");
        if (s == V2T_OK) {
            const float *src = PyArray_DATA(k);
            float *dst = kt.data;
            for (int64_t b = 0; b < Bk; b++)
                for (int64_t j = 0; j < Tk; j++)
                    for (int64_t f = 0; f < F; f++) /* f = h * hd + d -> [b, h, d, j] */
                        dst[(b * F + f) * Tk + j] = src[(b * Tk + j) * F + f];
            a.k = dst;
            a.k_bs = F * Tk;
            a.k_rs = 1;
            a.k_hs = hd * Tk;
            a.k_ds = Tk;
        }
    }
    if (s == V2T_OK)
        s = reference ? v2t_attention_ref(&a) : v2t_attention(&a, &scratch);
    v2t_buffer_release(&scratch);
    v2t_buffer_release(&kt);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)out;
    out = NULL;
exit:
    Py_XDECREF(q);
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_XDECREF(pb);
    Py_XDECREF(mask);
    Py_XDECREF(share);
    Py_XDECREF(out);
    return result;
}

/* kernel_norm(x[M,D], w[D], b[D] or None, eps, rms, reference): rmsnorm when rms else layernorm */
static PyObject *kernel_norm(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"x", "w", "b", "eps", "rms", "reference", NULL};
    PyObject *xo, *wo, *bo = Py_None;
    float eps = 1e-6f;
    int rms = 1, reference = 0;
    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *y = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|Ofpp", kwlist, &xo, &wo, &bo, &eps, &rms, &reference))
        return NULL;
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(w = v2t_py_float_array(wo, "w", 1, 1)))
        goto exit;
    if (bo != Py_None && !(b = v2t_py_float_array(bo, "b", 1, 1)))
        goto exit;
    npy_intp M = PyArray_DIM(x, 0), D = PyArray_DIM(x, 1);
    if (PyArray_DIM(w, 0) != D || (b && PyArray_DIM(b, 0) != D) || (!rms && !b)) {
        PyErr_SetString(PyExc_ValueError, "kernel_norm: inconsistent shapes (layernorm needs b)");
        goto exit;
    }
    y = (PyArrayObject *)PyArray_ZEROS(2, PyArray_DIMS(x), NPY_FLOAT32, 0);
    if (!y)
        goto exit;
    const float *xp = PyArray_DATA(x), *wp = PyArray_DATA(w), *bp = b ? PyArray_DATA(b) : NULL;
    float *yp = PyArray_DATA(y);
    if (rms)
        (reference ? v2t_rmsnorm_ref : v2t_rmsnorm)(xp, D, M, D, wp, eps, yp, D);
    else
        (reference ? v2t_layernorm_ref : v2t_layernorm)(xp, D, M, D, wp, bp, eps, yp, D);
    result = (PyObject *)y;
    y = NULL;
exit:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(y);
    return result;
}

/* kernel_gemm(a, b, trans_a, trans_b, alpha=1, beta=0, c0=None, reference=False, bf16=False) -> C
 * a: [M, K] or [K, M] (trans_a), b: [K, N] or [N, K] (trans_b), c0: [M, N]. Operands may be
 * wider than used: a trailing column slice of a view is passed with its row stride.
 * bf16: the mixed-precision product (operands rounded to bf16, f32 accumulation). */
static PyObject *kernel_gemm(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"a", "b", "trans_a", "trans_b", "alpha", "beta", "c0", "reference", "bf16", NULL};
    PyObject *ao, *bo, *c0o = Py_None;
    int ta = 0, tb = 0, reference = 0, bf16 = 0;
    float alpha = 1.f, beta = 0.f;
    PyArrayObject *a = NULL, *b = NULL, *c = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|ppffOpp", kwlist, &ao, &bo, &ta, &tb, &alpha, &beta, &c0o,
                                     &reference, &bf16))
        return NULL;
    if (!(a = v2t_py_float_array(ao, "a", 2, 2)) || !(b = v2t_py_float_array(bo, "b", 2, 2)))
        goto exit;
    npy_intp M = PyArray_DIM(a, ta ? 1 : 0), K = PyArray_DIM(a, ta ? 0 : 1);
    npy_intp N = PyArray_DIM(b, tb ? 0 : 1), Kb = PyArray_DIM(b, tb ? 1 : 0);
    if (Kb != K) {
        PyErr_Format(PyExc_ValueError, "b: inner dimension %lld does not match a's %lld", (long long)Kb,
                     (long long)K);
        goto exit;
    }
    npy_intp dims[2] = {M, N};
    if (c0o != Py_None) {
        PyArrayObject *c0 = v2t_py_float_array(c0o, "c0", 2, 2);
        if (!c0)
            goto exit;
        if (PyArray_DIM(c0, 0) != M || PyArray_DIM(c0, 1) != N) {
            PyErr_Format(PyExc_ValueError, "c0: expected shape [%lld, %lld], got %s", (long long)M, (long long)N,
                         v2t_py_shape_str(c0));
            Py_DECREF(c0);
            goto exit;
        }
        c = (PyArrayObject *)PyArray_NewCopy(c0, NPY_CORDER);
        Py_DECREF(c0);
    } else {
        c = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT32, 0);
    }
    if (!c)
        goto exit;
    const float *ap = PyArray_DATA(a), *bp = PyArray_DATA(b);
    float *cp = PyArray_DATA(c);
    npy_intp lda = PyArray_DIM(a, 1), ldb = PyArray_DIM(b, 1);
    v2t_status s = V2T_OK;
    Py_BEGIN_ALLOW_THREADS
    if (reference) {
        v2t_gemm_ref(ta, tb, M, N, K, alpha, ap, lda, bp, ldb, beta, cp, N);
    } else {
        v2t_exec ex;
        s = v2t_exec_init(&ex);
        if (s == V2T_OK) {
            ex.gemm_bf16 = bf16;
            s = v2t_gemm(&ex, ta, tb, M, N, K, alpha, ap, lda, bp, ldb, beta, cp, N);
            v2t_exec_release(&ex);
        }
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = (PyObject *)c;
    c = NULL;
exit:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    return result;
}

/* kernel_pack_bf16(src, trans=False, reference=False) -> uint16 array: op(src) rounded to bf16
 * bit patterns, [rows, cols] = src's shape, or its transpose when trans. */
static PyObject *kernel_pack_bf16(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"src", "trans", "reference", NULL};
    PyObject *so;
    int trans = 0, reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|pp", kwlist, &so, &trans, &reference))
        return NULL;
    PyArrayObject *src = v2t_py_float_array(so, "src", 2, 2);
    if (!src)
        return NULL;
    const npy_intp r = PyArray_DIM(src, 0), c = PyArray_DIM(src, 1);
    npy_intp dims[2] = {trans ? c : r, trans ? r : c};
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_UINT16, 0);
    if (!out) {
        Py_DECREF(src);
        return NULL;
    }
    const float *sp = PyArray_DATA(src);
    uint16_t *op = PyArray_DATA(out);
    Py_BEGIN_ALLOW_THREADS
    if (reference)
        v2t_pack_bf16_ref(sp, c, trans, dims[0], dims[1], op);
    else
        v2t_pack_bf16(sp, c, trans, dims[0], dims[1], op);
    Py_END_ALLOW_THREADS
    Py_DECREF(src);
    return (PyObject *)out;
}

/* kernel_transpose(a, reference=False) -> float32 array: a^T, dense. */
static PyObject *kernel_transpose(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"a", "reference", NULL};
    PyObject *ao;
    int reference = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p", kwlist, &ao, &reference))
        return NULL;
    PyArrayObject *a = v2t_py_float_array(ao, "a", 2, 2);
    if (!a)
        return NULL;
    const npy_intp r = PyArray_DIM(a, 0), c = PyArray_DIM(a, 1);
    npy_intp dims[2] = {c, r};
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT32, 0);
    if (!out) {
        Py_DECREF(a);
        return NULL;
    }
    const float *ap = PyArray_DATA(a);
    float *op = PyArray_DATA(out);
    Py_BEGIN_ALLOW_THREADS
    if (reference)
        v2t_transpose_ref(ap, r, c, op);
    else
        v2t_transpose(ap, r, c, op);
    Py_END_ALLOW_THREADS
    Py_DECREF(a);
    return (PyObject *)out;
}

static PyObject *gemm_bf16_supported(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(v2t_gemm_bf16_supported());
}

static PyMethodDef kernel_methods[] = {
    {"gemm_bf16_supported", gemm_bf16_supported, METH_NOARGS,
     "True when this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX): precision='bfloat16' needs it."},
    {"kernel_pack_bf16", (PyCFunction)(void (*)(void))kernel_pack_bf16, METH_VARARGS | METH_KEYWORDS,
     "Test hook: float32 -> bfloat16 packing (or the naive reference), optionally transposed."},
    {"kernel_transpose", (PyCFunction)(void (*)(void))kernel_transpose, METH_VARARGS | METH_KEYWORDS,
     "Test hook: float32 transpose (or the naive reference)."},
    {"kernel_linear", (PyCFunction)(void (*)(void))kernel_linear, METH_VARARGS | METH_KEYWORDS,
     "Test hook: oneDNN linear (or the naive reference) on one input."},
    {"kernel_attention", (PyCFunction)(void (*)(void))kernel_attention, METH_VARARGS | METH_KEYWORDS,
     "Test hook: multi-head attention kernel (or the naive reference)."},
    {"kernel_norm", (PyCFunction)(void (*)(void))kernel_norm, METH_VARARGS | METH_KEYWORDS,
     "Test hook: rmsnorm / layernorm kernel (or the naive reference)."},
    {"kernel_gemm", (PyCFunction)(void (*)(void))kernel_gemm, METH_VARARGS | METH_KEYWORDS,
     "Test hook: oneDNN general matmul C = alpha op(A) op(B) + beta C (or the naive reference)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_kernels(PyObject *m) { return PyModule_AddFunctions(m, kernel_methods); }
