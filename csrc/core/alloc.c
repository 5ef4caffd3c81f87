#include "alloc.h"

#include <stdlib.h>
#include <string.h>

v2t_status v2t_alloc(void **out, size_t bytes, const char *what)
{
    *out = NULL;
    size_t rounded = (bytes + V2T_ALIGN - 1) / V2T_ALIGN * V2T_ALIGN;
    if (rounded < bytes)
        return v2t_fail(V2T_ERR_NOMEM, "size overflow allocating %s", what);
    if (rounded == 0)
        rounded = V2T_ALIGN;
    void *p = aligned_alloc(V2T_ALIGN, rounded);
    if (!p)
        return v2t_fail(V2T_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    *out = p;
    return V2T_OK;
}

v2t_status v2t_calloc(void **out, size_t bytes, const char *what)
{
    V2T_TRY(v2t_alloc(out, bytes, what));
    memset(*out, 0, bytes);
    return V2T_OK;
}

void v2t_free(void *p) { free(p); }

v2t_status v2t_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return v2t_fail(V2T_ERR_VALUE, "size overflow: %zu * %zu", a, b);
    *out = a * b;
    return V2T_OK;
}

v2t_status v2t_buffer_reserve(v2t_buffer *buf, size_t bytes, const char *what)
{
    if (buf->bytes >= bytes && buf->data)
        return V2T_OK;
    v2t_free(buf->data);
    buf->data = NULL;
    buf->bytes = 0;
    V2T_TRY(v2t_alloc(&buf->data, bytes, what));
    buf->bytes = bytes;
    return V2T_OK;
}

void v2t_buffer_release(v2t_buffer *buf)
{
    v2t_free(buf->data);
    buf->data = NULL;
    buf->bytes = 0;
}
