/* Checked, 64-byte aligned allocation. */
#ifndef V2T_CORE_ALLOC_H
#define V2T_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define V2T_ALIGN 64

/* *out = aligned buffer of `bytes` (uninitialised); `what` names it in the error message. */
v2t_status v2t_alloc(void **out, size_t bytes, const char *what);
/* Same, zero-filled. */
v2t_status v2t_calloc(void **out, size_t bytes, const char *what);
void v2t_free(void *p);

/* count * size with overflow detection. */
v2t_status v2t_mul_size(size_t a, size_t b, size_t *out);

/* A growable scratch buffer owned by per-call state. */
typedef struct v2t_buffer {
    void *data;
    size_t bytes;
} v2t_buffer;

/* Make sure buf holds at least `bytes`; contents are not preserved. */
v2t_status v2t_buffer_reserve(v2t_buffer *buf, size_t bytes, const char *what);
void v2t_buffer_release(v2t_buffer *buf);

#endif
