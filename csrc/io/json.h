/* A small pull parser for JSON text held in memory (safetensors headers).
 *
 * The cursor never reads past `end`; every function returns V2T_ERR_FORMAT with the byte
 * offset (relative to `base`) in the message when the text is not what it expects.
 */
#ifndef V2T_IO_JSON_H
#define V2T_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "../core/status.h"

typedef struct v2t_json {
    const char *p;      /* current position */
    const char *end;    /* one past the last byte */
    const char *base;   /* start of the text, for offsets in messages */
    size_t base_offset; /* offset of `base` in the file, for messages */
    const char *what;   /* what is being parsed, for messages (e.g. a file path) */
} v2t_json;

void v2t_json_init(v2t_json *j, const char *text, size_t len, size_t base_offset, const char *what);
void v2t_json_skip_ws(v2t_json *j);
/* Consume `c` (after whitespace) or fail. */
v2t_status v2t_json_expect(v2t_json *j, char c);
/* After whitespace: is the next byte `c`? Consumes it when it is. */
int v2t_json_accept(v2t_json *j, char c);
/* Parse a string into out (NUL-terminated, UTF-8); fails if it needs more than cap-1 bytes. */
v2t_status v2t_json_string(v2t_json *j, char *out, size_t cap, size_t *len);
/* Parse a non-negative integer that fits in int64 (no sign, fraction or exponent). */
v2t_status v2t_json_uint(v2t_json *j, uint64_t *out);
/* Skip any value (nesting bounded). */
v2t_status v2t_json_skip_value(v2t_json *j);
/* Fail unless only whitespace remains. */
v2t_status v2t_json_finish(v2t_json *j);
/* Byte offset of the cursor in the file. */
size_t v2t_json_offset(const v2t_json *j);

#endif
