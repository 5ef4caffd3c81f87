/* Test hooks for the vec2vec pieces: the residual MLP, the discriminator and the losses, each
 * on one batch, for tests against PyTorch twins and finite differences. */
#include "py_common.h"

#include "align/disc.h"
#include "align/resmlp.h"
#include "align/v2v_loss.h"

static PyArrayObject *new_f32(int nd, npy_intp *dims, int zero)
{
    return (PyArrayObject *)(zero ? PyArray_ZEROS(nd, dims, NPY_FLOAT32, 0) : PyArray_SimpleNew(nd, dims, NPY_FLOAT32));
}

/* kernel_resmlp(depth, d_in, d_hidden, d_out, norm, params, stats, x, dy, training=True,
 *               dropout=0.0, seed=0, transposed=True) -> (y, dx, grads, stats_after); norm: 0 batch,
 * 1 layer; transposed: forward products through transposed weight copies (as the trainer runs) */
static PyObject *kernel_resmlp(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"depth", "d_in", "d_hidden", "d_out", "norm", "params", "stats", "x", "dy",
                             "training", "dropout", "seed", "transposed", NULL};
    int depth, norm, training = 1, transposed = 1;
    Py_ssize_t d_in, d_hidden, d_out;
    float dropout = 0.f;
    unsigned long long seed = 0;
    PyObject *po, *so, *xo, *dyo, *result = NULL;
    PyArrayObject *p = NULL, *st0 = NULL, *st = NULL, *x = NULL, *dy = NULL, *y = NULL, *dx = NULL, *g = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "innniOOOO|pfKp", kwlist, &depth, &d_in, &d_hidden, &d_out, &norm,
                                     &po, &so, &xo, &dyo, &training, &dropout, &seed, &transposed))
        return NULL;
    v2t_resmlp m;
    v2t_status s = v2t_resmlp_init(&m, depth, d_in, d_hidden, d_out, (v2t_norm_kind)norm, dropout);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    if (!(p = v2t_py_float_array(po, "params", 1, 1)) || !(x = v2t_py_float_array(xo, "x", 2, 2)) ||
        !(dy = v2t_py_float_array(dyo, "dy", 2, 2)) || !(st0 = v2t_py_float_array(so, "stats", 1, 1)))
        goto exit;
    if (!(st = (PyArrayObject *)PyArray_NewCopy(st0, NPY_CORDER)))
        goto exit;
    npy_intp B = PyArray_DIM(x, 0);
    if (PyArray_DIM(p, 0) != m.n_params || PyArray_DIM(st, 0) != m.n_stats || PyArray_DIM(x, 1) != d_in ||
        PyArray_DIM(dy, 0) != B || PyArray_DIM(dy, 1) != d_out || B < 1) {
        PyErr_Format(PyExc_ValueError, "kernel_resmlp: expected params [%lld], stats [%lld], x [B, %zd], dy [B, %zd]",
                     (long long)m.n_params, (long long)m.n_stats, d_in, d_out);
        goto exit;
    }
    npy_intp yd[2] = {B, d_out}, xd[2] = {B, d_in}, gd = m.n_params;
    if (!(y = new_f32(2, yd, 0)) || !(dx = new_f32(2, xd, 0)) || !(g = new_f32(1, &gd, 1)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    v2t_rng rng;
    v2t_resmlp_tape tape = {0};
    float *wt = NULL;
    v2t_rng_seed(&rng, seed);
    s = v2t_exec_init(&ex);
    if (s == V2T_OK && transposed &&
        (s = v2t_alloc((void **)&wt, (size_t)m.n_params * sizeof(float), "weights")) == V2T_OK)
        v2t_resmlp_transpose_weights(&m, PyArray_DATA(p), wt, NULL);
    if (s == V2T_OK) {
        s = v2t_resmlp_forward(&m, PyArray_DATA(p), wt, PyArray_DATA(st), training, &rng, &ex, PyArray_DATA(x), B,
                               training ? &tape : NULL, PyArray_DATA(y));
        if (s == V2T_OK && training)
            s = v2t_resmlp_backward(&m, PyArray_DATA(p), &ex, &tape, PyArray_DATA(dy), PyArray_DATA(g),
                                    PyArray_DATA(dx));
        v2t_resmlp_tape_release(&tape);
    }
    v2t_free(wt);
    v2t_exec_release(&ex);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(OOOO)", y, dx, g, st);
exit:
    Py_XDECREF(p);
    Py_XDECREF(st0);
    Py_XDECREF(st);
    Py_XDECREF(x);
    Py_XDECREF(dy);
    Py_XDECREF(y);
    Py_XDECREF(dx);
    Py_XDECREF(g);
    return result;
}

/* resmlp_init(depth, d_in, d_hidden, d_out, norm, seed) -> (params, stats), the published init */
static PyObject *resmlp_init(PyObject *self, PyObject *args)
{
    int depth, norm;
    Py_ssize_t d_in, d_hidden, d_out;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "innniK", &depth, &d_in, &d_hidden, &d_out, &norm, &seed))
        return NULL;
    v2t_resmlp m;
    v2t_status s = v2t_resmlp_init(&m, depth, d_in, d_hidden, d_out, (v2t_norm_kind)norm, 0.f);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    npy_intp pd = m.n_params, sd = m.n_stats;
    PyArrayObject *p = new_f32(1, &pd, 0), *st = new_f32(1, &sd, 0);
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

/* kernel_disc(depth, d_in, width, params, x, dscore, transposed=1) -> (score, dx, grads, params);
 * params None: fresh (seed 0) */
static PyObject *kernel_disc(PyObject *self, PyObject *args)
{
    int depth;
    Py_ssize_t d_in, width;
    PyObject *po, *xo, *dso, *result = NULL;
    PyArrayObject *p = NULL, *x = NULL, *ds = NULL, *score = NULL, *dx = NULL, *g = NULL;
    int transposed = 1;
    if (!PyArg_ParseTuple(args, "innOOO|p", &depth, &d_in, &width, &po, &xo, &dso, &transposed))
        return NULL;
    v2t_disc d;
    v2t_status s = v2t_disc_init(&d, depth, d_in, width);
    if (s != V2T_OK)
        return v2t_py_raise(s);
    npy_intp gd = d.n_params;
    if (po == Py_None) {
        if (!(p = new_f32(1, &gd, 0)))
            return NULL;
        v2t_rng rng;
        v2t_rng_seed(&rng, 0);
        v2t_disc_default_init(&d, &rng, PyArray_DATA(p));
    } else if (!(p = v2t_py_float_array(po, "params", 1, 1))) {
        return NULL;
    }
    if (!(x = v2t_py_float_array(xo, "x", 2, 2)) || !(ds = v2t_py_float_array(dso, "dscore", 1, 1)))
        goto exit;
    npy_intp B = PyArray_DIM(x, 0);
    if (PyArray_DIM(p, 0) != d.n_params || PyArray_DIM(x, 1) != d_in || PyArray_DIM(ds, 0) != B || B < 1) {
        PyErr_Format(PyExc_ValueError, "kernel_disc: expected params [%lld], x [B, %zd], dscore [B]",
                     (long long)d.n_params, d_in);
        goto exit;
    }
    npy_intp xd[2] = {B, d_in};
    if (!(score = new_f32(1, &B, 0)) || !(dx = new_f32(2, xd, 0)) || !(g = new_f32(1, &gd, 1)))
        goto exit;
    Py_BEGIN_ALLOW_THREADS
    v2t_exec ex;
    v2t_disc_tape tape = {0};
    float *wt = NULL;
    s = v2t_exec_init(&ex);
    if (s == V2T_OK && transposed &&
        (s = v2t_alloc((void **)&wt, (size_t)d.n_params * sizeof(float), "weights")) == V2T_OK)
        v2t_disc_transpose_weights(&d, PyArray_DATA(p), wt, NULL);
    if (s == V2T_OK) {
        s = v2t_disc_forward(&d, PyArray_DATA(p), wt, &ex, PyArray_DATA(x), B, &tape, PyArray_DATA(score));
        if (s == V2T_OK)
            s = v2t_disc_backward(&d, PyArray_DATA(p), &ex, &tape, PyArray_DATA(ds), PyArray_DATA(g), PyArray_DATA(dx));
        v2t_disc_tape_release(&tape);
    }
    v2t_free(wt);
    v2t_exec_release(&ex);
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(OOOO)", score, dx, g, p);
exit:
    Py_XDECREF(p);
    Py_XDECREF(x);
    Py_XDECREF(ds);
    Py_XDECREF(score);
    Py_XDECREF(dx);
    Py_XDECREF(g);
    return result;
}

/* kernel_v2v_loss(kind, e, p) -> (loss, d loss / d p); kind "cos" or "vsp" */
static PyObject *kernel_v2v_loss(PyObject *self, PyObject *args)
{
    const char *kind;
    PyObject *eo, *po, *result = NULL;
    PyArrayObject *e = NULL, *p = NULL, *g = NULL;
    float *scratch = NULL;
    if (!PyArg_ParseTuple(args, "sOO", &kind, &eo, &po))
        return NULL;
    const int vsp = strcmp(kind, "vsp") == 0;
    if (!vsp && strcmp(kind, "cos") != 0) {
        PyErr_Format(PyExc_ValueError, "kind: expected 'cos' or 'vsp', got %R", PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    if (!(e = v2t_py_float_array(eo, "e", 2, 2)) || !(p = v2t_py_float_array(po, "p", 2, 2)))
        goto exit;
    if (!PyArray_SAMESHAPE(e, p) || PyArray_DIM(e, 0) < 1) {
        PyErr_Format(PyExc_ValueError, "p: expected the shape of e %s", v2t_py_shape_str(e));
        goto exit;
    }
    npy_intp B = PyArray_DIM(e, 0), D = PyArray_DIM(e, 1), gd[2] = {B, D};
    if (!(g = new_f32(2, gd, 1)))
        goto exit;
    double loss = 0.0;
    v2t_status s = V2T_OK;
    if (vsp && (s = v2t_alloc((void **)&scratch, (size_t)(3 * B * B) * sizeof(float), "VSP scratch")) != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    Py_BEGIN_ALLOW_THREADS
    if (vsp) {
        v2t_exec ex;
        s = v2t_exec_init(&ex);
        if (s == V2T_OK) {
            s = v2t_vsp_loss(&ex, PyArray_DATA(e), PyArray_DATA(p), B, D, 1.f, scratch, &loss, PyArray_DATA(g));
            v2t_exec_release(&ex);
        }
    } else {
        loss = v2t_cos_loss(PyArray_DATA(e), PyArray_DATA(p), B, D, 1.f, PyArray_DATA(g));
    }
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    result = Py_BuildValue("(dO)", loss, g);
exit:
    v2t_free(scratch);
    Py_XDECREF(e);
    Py_XDECREF(p);
    Py_XDECREF(g);
    return result;
}

/* kernel_lsgan(d_real, d_fake) -> (disc_loss, g_real, g_fake, gen_loss, g_gen) */
static PyObject *kernel_lsgan(PyObject *self, PyObject *args)
{
    PyObject *ro, *fo, *result = NULL;
    PyArrayObject *r = NULL, *f = NULL, *gr = NULL, *gf = NULL, *gg = NULL;
    if (!PyArg_ParseTuple(args, "OO", &ro, &fo))
        return NULL;
    if (!(r = v2t_py_float_array(ro, "d_real", 1, 1)) || !(f = v2t_py_float_array(fo, "d_fake", 1, 1)))
        goto exit;
    npy_intp B = PyArray_DIM(r, 0);
    if (PyArray_DIM(f, 0) != B || B < 1) {
        PyErr_Format(PyExc_ValueError, "d_fake: expected %zd scores like d_real, got %s", (Py_ssize_t)B,
                     v2t_py_shape_str(f));
        goto exit;
    }
    if (!(gr = new_f32(1, &B, 0)) || !(gf = new_f32(1, &B, 0)) || !(gg = new_f32(1, &B, 0)))
        goto exit;
    double ld = v2t_lsgan_disc_loss(PyArray_DATA(r), PyArray_DATA(f), B, PyArray_DATA(gr), PyArray_DATA(gf));
    double lg = v2t_lsgan_gen_loss(PyArray_DATA(f), B, 1.f, PyArray_DATA(gg));
    result = Py_BuildValue("(dOOdO)", ld, gr, gf, lg, gg);
exit:
    Py_XDECREF(r);
    Py_XDECREF(f);
    Py_XDECREF(gr);
    Py_XDECREF(gf);
    Py_XDECREF(gg);
    return result;
}

static PyMethodDef hook_methods[] = {
    {"kernel_resmlp", (PyCFunction)(void (*)(void))kernel_resmlp, METH_VARARGS | METH_KEYWORDS,
     "Test hook: vec2vec residual MLP forward + backward on one batch."},
    {"resmlp_init", resmlp_init, METH_VARARGS, "Fresh residual MLP parameters and running statistics."},
    {"kernel_disc", kernel_disc, METH_VARARGS, "Test hook: vec2vec discriminator forward + backward."},
    {"kernel_v2v_loss", kernel_v2v_loss, METH_VARARGS, "Test hook: cosine or VSP loss and its gradient."},
    {"kernel_lsgan", kernel_lsgan, METH_VARARGS, "Test hook: least-squares GAN losses and gradients."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_vec2vec_hooks(PyObject *m) { return PyModule_AddFunctions(m, hook_methods); }
