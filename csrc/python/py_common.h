/* Shared by every binding file: Python + NumPy headers and the argument converters.
 *
 * Binding functions only parse, convert and own references; the core sees raw pointers.
 * Converters guarantee C-contiguous arrays of the exact dtype the core expects and say which
 * argument was wrong, what was expected and what was given.
 */
#ifndef V2T_PY_COMMON_H
#define V2T_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define PY_ARRAY_UNIQUE_SYMBOL v2t_ARRAY_API
#ifndef V2T_PY_MODULE_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "core/status.h"

/* Set a Python exception for a failed core status (message from v2t_last_error). Returns NULL. */
PyObject *v2t_py_raise(v2t_status s);

/* vec2text_c.Cancelled (py_cancel.c), raised for V2T_ERR_CANCELLED. */
extern PyObject *v2t_py_Cancelled;

/* Convert `obj` (ndarray, torch tensor, anything with __array__ or a nested sequence) into a
 * new reference to a C-contiguous float32 array with ndim in [min_ndim, max_ndim]. Any real
 * floating dtype is accepted (and cast); integers, bools, complex and objects raise TypeError.
 * Non-contiguous input is copied. `name` is the argument name used in messages. */
PyArrayObject *v2t_py_float_array(PyObject *obj, const char *name, int min_ndim, int max_ndim);

/* Same for token ids: int32 or int64 (or other integer dtypes within int32 range) -> int32. */
PyArrayObject *v2t_py_ids_array(PyObject *obj, const char *name, int min_ndim, int max_ndim);

/* Raise ValueError naming `name` if the float32 array holds NaN or Inf. Returns 0 on success. */
int v2t_py_check_finite(PyArrayObject *a, const char *name);

/* "[2, 3]"-style shape text for messages (static per-thread buffer). */
const char *v2t_py_shape_str(PyArrayObject *a);

/* Registration hooks, one per binding file (return 0 on success, -1 with an exception). */
int v2t_py_init_cancel(PyObject *m);
int v2t_py_init_safetensors(PyObject *m);
int v2t_py_init_kernels(PyObject *m);
int v2t_py_init_t5(PyObject *m);
int v2t_py_init_t5_hooks(PyObject *m); /* called by v2t_py_init_t5 */
int v2t_py_init_align(PyObject *m);
int v2t_py_init_mlp(PyObject *m);
int v2t_py_init_vec2vec(PyObject *m);
int v2t_py_init_generate(PyObject *m);
int v2t_py_init_wordpiece(PyObject *m);
int v2t_py_init_bert(PyObject *m);
int v2t_py_init_vec2text(PyObject *m);
int v2t_py_init_vec2text_hooks(PyObject *m); /* called by v2t_py_init_vec2text */
int v2t_py_init_vec2vec_hooks(PyObject *m); /* called by v2t_py_init_vec2vec */

/* The loaded model behind a vec2text_c._core.T5 object (borrowed; lives as long as the object),
 * or NULL with TypeError/ValueError set. */
struct v2t_t5_model *v2t_py_t5_model(PyObject *obj);
/* generate's early_stopping argument: True, False or "never" -> V2T_EARLY_STOP_*; -1 with
 * ValueError otherwise (py_generate.c). */
int v2t_py_early_stopping(PyObject *o, int *out);
/* Generated ids [n, T] int32 (v2t_generate's out_ids) -> new int64 array [n, max(lengths)],
 * the array transformers' generate returns. */
PyObject *v2t_py_generated_ids(const int32_t *ids, const int64_t *lengths, int64_t n, int64_t T);

/* A trainer's precision argument: None or "float32" -> 0, "bfloat16" -> 1 (matmuls in bf16 with
 * f32 accumulation, ops/gemm.h); -1 with ValueError otherwise, or when this CPU has no bf16
 * matmuls (convert.c). */
int v2t_py_matmul_precision(PyObject *o, const char *owner, int *bf16);

/* Installs the Ctrl-C hook used by long calls (core/interrupt.h). */
void v2t_py_install_interrupt_hook(void);

/* First statement of a model type's tp_init: a model is immutable once initialised (another
 * thread may be using its memory with the GIL released), so a second __init__ is an error
 * instead of freeing what is in use. */
#define V2T_PY_INIT_ONCE(initialised, tname)                                                              \
    do {                                                                                                  \
        if (initialised) {                                                                                \
            PyErr_Format(PyExc_RuntimeError,                                                              \
                         "%s: already initialised; create a new object instead of calling __init__ again", tname); \
            return -1;                                                                                    \
        }                                                                                                 \
    } while (0)

#endif
