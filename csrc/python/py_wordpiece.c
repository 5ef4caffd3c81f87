/* _core.WordPiece: BERT WordPiece tokenizer (csrc/tokenize/wordpiece.h). */
#include "py_common.h"

#include "core/alloc.h"
#include "tokenize/wordpiece.h"

typedef struct {
    PyObject_HEAD
    v2t_wordpiece *wp;
} PyWordPiece;

static void wp_dealloc(PyWordPiece *self)
{
    v2t_wordpiece_free(self->wp);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A str argument as UTF-8 (borrowed from the str object), or NULL with TypeError. */
static const char *utf8_arg(PyObject *o, const char *name, Py_ssize_t *len)
{
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: expected str, got %.100s", name, Py_TYPE(o)->tp_name);
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(o, len);
    if (!s) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s: the text cannot be encoded as UTF-8 (it holds a lone surrogate)", name);
    }
    return s;
}

static int wp_init(PyWordPiece *self, PyObject *args, PyObject *kwds)
{
    V2T_PY_INIT_ONCE(self->wp, "WordPieceTokenizer");
    static char *kwlist[] = {"vocab_file", "vocab_text", "lowercase", "strip_accents", "clean_text",
                             "handle_chinese_chars", "max_input_chars_per_word", "unk_token", "cls_token",
                             "sep_token", "pad_token", "special_tokens", "continuing_prefix", NULL};
    PyObject *path_obj = NULL, *text_obj = Py_None, *special_obj = Py_None, *fast = NULL;
    v2t_wordpiece_config cfg;
    v2t_wordpiece_default_config(&cfg);
    int rc = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O&$OppppizzzzOz", kwlist, PyUnicode_FSConverter, &path_obj,
                                     &text_obj, &cfg.norm.lowercase, &cfg.norm.strip_accents, &cfg.norm.clean_text,
                                     &cfg.norm.handle_chinese_chars, &cfg.max_input_chars_per_word, &cfg.unk_token,
                                     &cfg.cls_token, &cfg.sep_token, &cfg.pad_token, &special_obj,
                                     &cfg.continuing_prefix))
        return -1;
    if ((path_obj != NULL) == (text_obj != Py_None)) {
        PyErr_SetString(PyExc_TypeError, "WordPiece: give exactly one of vocab_file (a path) or vocab_text (str)");
        goto exit;
    }
    if (special_obj != Py_None) {
        fast = PySequence_Fast(special_obj, "special_tokens: expected a sequence of str");
        if (!fast)
            goto exit;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        if (n > V2T_WP_MAX_SPECIAL) {
            PyErr_Format(PyExc_ValueError, "special_tokens: at most %d, got %zd", V2T_WP_MAX_SPECIAL, n);
            goto exit;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t len;
            if (!(cfg.special[i] = utf8_arg(PySequence_Fast_GET_ITEM(fast, i), "special_tokens[i]", &len)))
                goto exit;
        }
        cfg.num_special = (int)n;
    }
    v2t_wordpiece *wp = NULL;
    v2t_status s;
    if (path_obj) {
        const char *path = PyBytes_AS_STRING(path_obj);
        Py_BEGIN_ALLOW_THREADS
        s = v2t_wordpiece_load(path, &cfg, &wp);
        Py_END_ALLOW_THREADS
    } else {
        Py_ssize_t len;
        const char *text = utf8_arg(text_obj, "vocab_text", &len);
        if (!text)
            goto exit;
        Py_BEGIN_ALLOW_THREADS
        s = v2t_wordpiece_create(text, (size_t)len, "vocab_text", &cfg, &wp);
        Py_END_ALLOW_THREADS
    }
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    v2t_wordpiece_free(self->wp);
    self->wp = wp;
    rc = 0;
exit:
    Py_XDECREF(path_obj);
    Py_XDECREF(fast);
    return rc;
}

static int wp_ready(PyWordPiece *self)
{
    if (!self->wp) {
        PyErr_SetString(PyExc_ValueError, "WordPiece object is not initialised");
        return 0;
    }
    return 1;
}

/* encode(texts, max_length=0, add_special_tokens=True) -> (ids int32 [total], offsets int64 [n + 1]) */
static PyObject *wp_encode(PyWordPiece *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"texts", "max_length", "add_special_tokens", NULL};
    PyObject *texts_obj, *fast = NULL, *result = NULL;
    long long max_length = 0;
    int add_special = 1;
    const char **ptrs = NULL;
    size_t *lens = NULL;
    PyArrayObject *offsets = NULL, *ids = NULL;
    v2t_buffer flat = {0};
    if (!wp_ready(self) || !PyArg_ParseTupleAndKeywords(args, kwds, "O|Lp", kwlist, &texts_obj, &max_length,
                                                        &add_special))
        return NULL;
    if (PyUnicode_Check(texts_obj) || PyBytes_Check(texts_obj)) {
        PyErr_Format(PyExc_TypeError, "texts: expected a list of str, got a single %.100s",
                     Py_TYPE(texts_obj)->tp_name);
        return NULL;
    }
    if (!(fast = PySequence_Fast(texts_obj, "texts: expected a list of str")))
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (!(ptrs = PyMem_Calloc((size_t)n + 1, sizeof *ptrs)) || !(lens = PyMem_Calloc((size_t)n + 1, sizeof *lens))) {
        PyErr_NoMemory();
        goto exit;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "texts[%zd]: expected str, got %.100s", i, Py_TYPE(o)->tp_name);
            goto exit;
        }
        if (!(ptrs[i] = PyUnicode_AsUTF8AndSize(o, &len))) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "texts[%zd]: the text cannot be encoded as UTF-8 (it holds a lone "
                         "surrogate)", i);
            goto exit;
        }
        lens[i] = (size_t)len;
    }
    npy_intp odim = n + 1;
    if (!(offsets = (PyArrayObject *)PyArray_SimpleNew(1, &odim, NPY_INT64)))
        goto exit;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_wordpiece_encode_batch(self->wp, ptrs, lens, n, max_length, add_special, &flat, PyArray_DATA(offsets));
    Py_END_ALLOW_THREADS
    if (s != V2T_OK) {
        v2t_py_raise(s);
        goto exit;
    }
    npy_intp total = (npy_intp)((int64_t *)PyArray_DATA(offsets))[n];
    if (!(ids = (PyArrayObject *)PyArray_SimpleNew(1, &total, NPY_INT32)))
        goto exit;
    if (total)
        memcpy(PyArray_DATA(ids), flat.data, (size_t)total * sizeof(int32_t));
    result = Py_BuildValue("(OO)", ids, offsets);
exit:
    v2t_buffer_release(&flat);
    PyMem_Free(ptrs);
    PyMem_Free(lens);
    Py_XDECREF(ids);
    Py_XDECREF(offsets);
    Py_XDECREF(fast);
    return result;
}

static PyObject *wp_token_to_id(PyWordPiece *self, PyObject *tok)
{
    Py_ssize_t len;
    const char *s;
    if (!wp_ready(self) || !(s = utf8_arg(tok, "token", &len)))
        return NULL;
    int32_t id = v2t_wordpiece_token_id(self->wp, s, (size_t)len);
    if (id < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(id);
}

static PyObject *wp_id_to_token(PyWordPiece *self, PyObject *arg)
{
    if (!wp_ready(self))
        return NULL;
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "id: expected int, got %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    const char *t = (id >= 0 && id <= INT32_MAX) ? v2t_wordpiece_token(self->wp, (int32_t)id) : NULL;
    if (!t) {
        PyErr_Format(PyExc_IndexError, "id: expected 0 <= id < %d, got %lld",
                     (int)v2t_wordpiece_vocab_size(self->wp), id);
        return NULL;
    }
    return PyUnicode_DecodeUTF8(t, (Py_ssize_t)strlen(t), "replace");
}

/* vocab() -> list of every token, in id order */
static PyObject *wp_vocab(PyWordPiece *self, PyObject *Py_UNUSED(ignored))
{
    if (!wp_ready(self))
        return NULL;
    int32_t n = v2t_wordpiece_vocab_size(self->wp);
    PyObject *list = PyList_New(n);
    if (!list)
        return NULL;
    for (int32_t i = 0; i < n; i++) {
        const char *t = v2t_wordpiece_token(self->wp, i);
        PyObject *s = PyUnicode_DecodeUTF8(t, (Py_ssize_t)strlen(t), "replace");
        if (!s) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

static PyObject *wp_get_id(PyWordPiece *self, void *which)
{
    if (!wp_ready(self))
        return NULL;
    int32_t ids[4];
    v2t_wordpiece_special_ids(self->wp, &ids[0], &ids[1], &ids[2], &ids[3]);
    return PyLong_FromLong(ids[(intptr_t)which]);
}

static PyObject *wp_get_vocab_size(PyWordPiece *self, void *Py_UNUSED(closure))
{
    if (!wp_ready(self))
        return NULL;
    return PyLong_FromLong(v2t_wordpiece_vocab_size(self->wp));
}

static PyMethodDef wp_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))wp_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(texts, max_length=0, add_special_tokens=True) -> (ids int32 [total], offsets int64 [n + 1]).\n"
     "Ids of texts[i] are ids[offsets[i]:offsets[i+1]]; max_length <= 0: no truncation."},
    {"token_to_id", (PyCFunction)wp_token_to_id, METH_O, "token_to_id(token) -> int or None."},
    {"id_to_token", (PyCFunction)wp_id_to_token, METH_O, "id_to_token(id) -> str."},
    {"vocab", (PyCFunction)wp_vocab, METH_NOARGS, "vocab() -> list of tokens in id order."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef wp_getset[] = {
    {"cls_id", (getter)wp_get_id, NULL, "Id of the [CLS] token.", (void *)0},
    {"sep_id", (getter)wp_get_id, NULL, "Id of the [SEP] token.", (void *)1},
    {"pad_id", (getter)wp_get_id, NULL, "Id of the padding token.", (void *)2},
    {"unk_id", (getter)wp_get_id, NULL, "Id of the unknown token.", (void *)3},
    {"vocab_size", (getter)wp_get_vocab_size, NULL, "Number of tokens.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PyWordPiece_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "vec2text_c._core.WordPiece",
    .tp_basicsize = sizeof(PyWordPiece),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordPiece(vocab_file=None, *, vocab_text=None, lowercase=True, strip_accents=True, clean_text=True,\n"
              "          handle_chinese_chars=True, max_input_chars_per_word=100, unk_token='[UNK]',\n"
              "          cls_token='[CLS]', sep_token='[SEP]', pad_token='[PAD]', special_tokens=None,\n"
              "          continuing_prefix='##')\n"
              "BERT WordPiece tokenizer over a vocab.txt (or its text).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)wp_init,
    .tp_dealloc = (destructor)wp_dealloc,
    .tp_methods = wp_methods,
    .tp_getset = wp_getset,
};

/* kernel_bert_normalize(text, reference=False, lowercase=True, strip_accents=True, clean_text=True,
 *                       handle_chinese_chars=True) -> str: the normaliser alone (test hook). */
static PyObject *kernel_bert_normalize(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"text", "reference", "lowercase", "strip_accents", "clean_text",
                             "handle_chinese_chars", NULL};
    PyObject *text_obj;
    int reference = 0;
    v2t_norm_opts o = {1, 1, 1, 1};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p$pppp", kwlist, &text_obj, &reference, &o.lowercase,
                                     &o.strip_accents, &o.clean_text, &o.handle_chinese_chars))
        return NULL;
    Py_ssize_t len;
    const char *text = utf8_arg(text_obj, "text", &len);
    if (!text)
        return NULL;
    v2t_buffer cps = {0}, out = {0}, pending = {0};
    size_t n = 0, m = 0;
    v2t_status s;
    Py_BEGIN_ALLOW_THREADS
    s = v2t_utf8_decode(text, (size_t)len, &cps, &n, "text");
    if (s == V2T_OK)
        s = reference ? v2t_normalize_ref(&o, cps.data, n, &out, &m) : v2t_normalize(&o, cps.data, n, &out, &m, &pending);
    Py_END_ALLOW_THREADS
    PyObject *result = s == V2T_OK ? PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.data, (Py_ssize_t)m)
                                   : v2t_py_raise(s);
    v2t_buffer_release(&cps);
    v2t_buffer_release(&out);
    v2t_buffer_release(&pending);
    return result;
}

static PyMethodDef module_functions[] = {
    {"kernel_bert_normalize", (PyCFunction)(void (*)(void))kernel_bert_normalize, METH_VARARGS | METH_KEYWORDS,
     "kernel_bert_normalize(text, reference=False, *, lowercase, strip_accents, clean_text, handle_chinese_chars)"
     " -> str (test hook)."},
    {NULL, NULL, 0, NULL},
};

int v2t_py_init_wordpiece(PyObject *m)
{
    if (PyModule_AddFunctions(m, module_functions) < 0)
        return -1;
    if (PyType_Ready(&PyWordPiece_Type) < 0)
        return -1;
    Py_INCREF(&PyWordPiece_Type);
    if (PyModule_AddObject(m, "WordPiece", (PyObject *)&PyWordPiece_Type) < 0) {
        Py_DECREF(&PyWordPiece_Type);
        return -1;
    }
    return 0;
}
