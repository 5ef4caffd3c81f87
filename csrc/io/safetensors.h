/* A validated safetensors file, read with pread (never mapped).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data section.
 * v2t_st_open checks everything before any tensor is used: header length within the file,
 * well-formed JSON, known dtypes, shape products matching byte ranges, ranges inside the
 * data section and not overlapping. Tensor bytes are read from the open file when asked for:
 * a file truncated or rewritten after it was opened gives an error naming it, never SIGBUS (a
 * mapping would fault on the missing pages).
 */
#ifndef V2T_IO_SAFETENSORS_H
#define V2T_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

#define V2T_MAX_NDIM 8
#define V2T_MAX_NAME 512

typedef enum v2t_st_dtype {
    V2T_ST_BOOL, V2T_ST_U8, V2T_ST_I8, V2T_ST_I16, V2T_ST_U16, V2T_ST_I32, V2T_ST_U32,
    V2T_ST_I64, V2T_ST_U64, V2T_ST_F16, V2T_ST_BF16, V2T_ST_F32, V2T_ST_F64,
    V2T_ST_NUM_DTYPES
} v2t_st_dtype;

typedef struct v2t_st_tensor {
    char name[V2T_MAX_NAME];
    v2t_st_dtype dtype;
    int ndim;
    int64_t shape[V2T_MAX_NDIM];
    uint64_t begin, end;  /* byte range relative to the data section */
} v2t_st_tensor;

typedef struct v2t_st {
    char *path;
    int fd;               /* open until v2t_st_close */
    uint64_t file_size;   /* at open */
    size_t data_offset;   /* 8 + header length */
    int num_tensors;
    v2t_st_tensor *tensors; /* sorted by name */
} v2t_st;

/* Open and validate; *out is NULL on failure. */
v2t_status v2t_st_open(const char *path, v2t_st **out);
void v2t_st_close(v2t_st *st);

/* The tensor called `name`, or NULL. */
const v2t_st_tensor *v2t_st_find(const v2t_st *st, const char *name);

const char *v2t_st_dtype_name(v2t_st_dtype d);
size_t v2t_st_dtype_size(v2t_st_dtype d);
int64_t v2t_st_numel(const v2t_st_tensor *t);

/* Weights may be stored as I8 by rows: tensor `W` (I8, rows = its first dimension) and beside it
 * `W.int8_scale` (1-D floating, one entry per row); W's values are q * scale[row]. */
#define V2T_ST_INT8_SCALE_SUFFIX ".int8_scale"

/* Copy a floating tensor (F32, F16, BF16, F64), or an I8 tensor with its row scale, into f32
 * `out` of numel elements, after checking its shape equals `shape[ndim]`; the message names
 * the tensor. */
v2t_status v2t_st_read_f32(const v2t_st *st, const v2t_st_tensor *t, int ndim, const int64_t *shape,
                           float *out);

/* Copy a tensor's bytes as stored (end - begin bytes) into `out`. */
v2t_status v2t_st_read_raw(const v2t_st *st, const v2t_st_tensor *t, void *out);

/* V2T_OK when all n values are finite; else a message naming the file, tensor and element. */
v2t_status v2t_st_check_finite(const v2t_st *st, const v2t_st_tensor *t, const float *v, int64_t n);

/* Find `name` and copy it as f32 into a fresh buffer (caller frees with v2t_free); weights must
 * be finite (a NaN or Inf names the tensor). */
v2t_status v2t_st_load_f32(const v2t_st *st, const char *name, int ndim, const int64_t *shape,
                           float **out);

#endif
