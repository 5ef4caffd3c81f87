/* The extension module vec2text_c._core: registers one binding file per exposed type. */
#define V2T_PY_MODULE_MAIN
#include "py_common.h"

#include <oneapi/dnnl/dnnl.h>

static PyObject *onednn_version(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    const dnnl_version_t *v = dnnl_version();
    return Py_BuildValue("(iiis)", v->major, v->minor, v->patch, v->hash ? v->hash : "");
}

static PyMethodDef module_methods[] = {
    {"onednn_version", onednn_version, METH_NOARGS, "(major, minor, patch, hash) of the loaded oneDNN."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_core", "vec2text_c C core (oneDNN transformer ops, decoding, correction loop).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    import_array();
    v2t_py_install_interrupt_hook();
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    static int (*const inits[])(PyObject *) = {
        v2t_py_init_cancel,
        v2t_py_init_safetensors,
        v2t_py_init_kernels,
        v2t_py_init_t5,
        v2t_py_init_align,
        v2t_py_init_mlp,
        v2t_py_init_vec2vec,
        v2t_py_init_generate,
        v2t_py_init_wordpiece,
        v2t_py_init_bert,
        v2t_py_init_vec2text,
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof inits / sizeof inits[0] && !failed; i++)
        failed = inits[i](m) < 0;
    if (failed) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
