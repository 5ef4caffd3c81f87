#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char v2t_error_buf[1024];

v2t_status v2t_fail(v2t_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v2t_error_buf, sizeof v2t_error_buf, fmt, ap);
    va_end(ap);
    return code;
}

const char *v2t_last_error(void) { return v2t_error_buf; }
