#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char v2t_error_buf[1024];

/* A message cut at the buffer's end may end inside a UTF-8 character (file names, tokens):
 * drop the incomplete tail so the message stays valid UTF-8. */
static void trim_utf8_tail(char *buf, size_t len)
{
    size_t i = len, cont = 0;
    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80 && cont < 3) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    const unsigned char lead = (unsigned char)buf[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
    if (lead >= 0xC0 && need != cont)
        buf[i - 1] = '\0'; /* the last character is incomplete */
}

v2t_status v2t_fail(v2t_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(v2t_error_buf, sizeof v2t_error_buf, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof v2t_error_buf)
        trim_utf8_tail(v2t_error_buf, sizeof v2t_error_buf - 1);
    return code;
}

const char *v2t_last_error(void) { return v2t_error_buf; }
