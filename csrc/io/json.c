#include "json.h"

#include <string.h>

#define V2T_JSON_MAX_DEPTH 64

void v2t_json_init(v2t_json *j, const char *text, size_t len, size_t base_offset, const char *what)
{
    j->p = text;
    j->end = text + len;
    j->base = text;
    j->base_offset = base_offset;
    j->what = what;
}

size_t v2t_json_offset(const v2t_json *j) { return j->base_offset + (size_t)(j->p - j->base); }

static v2t_status json_error(const v2t_json *j, const char *expected)
{
    if (j->p >= j->end)
        return v2t_fail(V2T_ERR_FORMAT, "%s: malformed JSON header: expected %s at byte %zu, found end of header",
                        j->what, expected, v2t_json_offset(j));
    unsigned char c = (unsigned char)*j->p;
    if (c >= 0x20 && c < 0x7f)
        return v2t_fail(V2T_ERR_FORMAT, "%s: malformed JSON header: expected %s at byte %zu, found '%c'", j->what,
                        expected, v2t_json_offset(j), c);
    return v2t_fail(V2T_ERR_FORMAT, "%s: malformed JSON header: expected %s at byte %zu, found byte 0x%02x",
                    j->what, expected, v2t_json_offset(j), c);
}

void v2t_json_skip_ws(v2t_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

v2t_status v2t_json_expect(v2t_json *j, char c)
{
    v2t_json_skip_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return V2T_OK;
    }
    char what[4] = {'\'', c, '\'', 0};
    return json_error(j, what);
}

int v2t_json_accept(v2t_json *j, char c)
{
    v2t_json_skip_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static v2t_status read_hex4(v2t_json *j, unsigned *out)
{
    if (j->end - j->p < 4)
        return json_error(j, "four hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(j->p[i]);
        if (h < 0)
            return json_error(j, "four hex digits");
        v = v * 16 + (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return V2T_OK;
}

static size_t utf8_encode(unsigned cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

v2t_status v2t_json_string(v2t_json *j, char *out, size_t cap, size_t *len)
{
    V2T_TRY(v2t_json_expect(j, '"'));
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end)
            return json_error(j, "closing '\"' of a string");
        unsigned char c = (unsigned char)*j->p;
        char enc[4];
        size_t k;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return json_error(j, "a string character (control bytes must be escaped)");
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end)
                return json_error(j, "an escape sequence");
            char e = *j->p++;
            switch (e) {
            case '"': enc[0] = '"'; k = 1; break;
            case '\\': enc[0] = '\\'; k = 1; break;
            case '/': enc[0] = '/'; k = 1; break;
            case 'b': enc[0] = '\b'; k = 1; break;
            case 'f': enc[0] = '\f'; k = 1; break;
            case 'n': enc[0] = '\n'; k = 1; break;
            case 'r': enc[0] = '\r'; k = 1; break;
            case 't': enc[0] = '\t'; k = 1; break;
            case 'u': {
                unsigned cp;
                V2T_TRY(read_hex4(j, &cp));
                if (cp >= 0xd800 && cp < 0xdc00) { /* surrogate pair */
                    unsigned lo;
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                        return json_error(j, "a low surrogate escape");
                    j->p += 2;
                    V2T_TRY(read_hex4(j, &lo));
                    if (lo < 0xdc00 || lo >= 0xe000)
                        return json_error(j, "a low surrogate escape");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp < 0xe000) {
                    return json_error(j, "a code point (lone low surrogate)");
                }
                k = utf8_encode(cp, enc);
                break;
            }
            default:
                j->p--;
                return json_error(j, "a valid escape character");
            }
        } else {
            enc[0] = (char)c;
            k = 1;
            j->p++;
        }
        if (out) {
            if (n + k >= cap)
                return v2t_fail(V2T_ERR_FORMAT, "%s: string at byte %zu is longer than %zu bytes", j->what,
                                v2t_json_offset(j), cap - 1);
            memcpy(out + n, enc, k);
        }
        n += k;
    }
    if (out)
        out[n] = 0;
    if (len)
        *len = n;
    return V2T_OK;
}

v2t_status v2t_json_uint(v2t_json *j, uint64_t *out)
{
    v2t_json_skip_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return json_error(j, "a non-negative integer");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p - '0');
        if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10)
            return json_error(j, "an integer below 2^63");
        v = v * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return json_error(j, "an integer (no fraction or exponent)");
    *out = v;
    return V2T_OK;
}

static v2t_status skip_literal(v2t_json *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return json_error(j, "a JSON value");
    j->p += n;
    return V2T_OK;
}

static v2t_status skip_number(v2t_json *j)
{
    const char *start = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' || *j->p == 'E' ||
                             *j->p == '+' || *j->p == '-'))
        j->p++;
    if (j->p == start)
        return json_error(j, "a JSON value");
    return V2T_OK;
}

static v2t_status skip_value(v2t_json *j, int depth)
{
    if (depth > V2T_JSON_MAX_DEPTH)
        return v2t_fail(V2T_ERR_FORMAT, "%s: JSON header nested deeper than %d levels at byte %zu", j->what,
                        V2T_JSON_MAX_DEPTH, v2t_json_offset(j));
    v2t_json_skip_ws(j);
    if (j->p >= j->end)
        return json_error(j, "a JSON value");
    switch (*j->p) {
    case '"':
        return v2t_json_string(j, NULL, 0, NULL);
    case '{':
        j->p++;
        if (v2t_json_accept(j, '}'))
            return V2T_OK;
        do {
            V2T_TRY(v2t_json_string(j, NULL, 0, NULL));
            V2T_TRY(v2t_json_expect(j, ':'));
            V2T_TRY(skip_value(j, depth + 1));
        } while (v2t_json_accept(j, ','));
        return v2t_json_expect(j, '}');
    case '[':
        j->p++;
        if (v2t_json_accept(j, ']'))
            return V2T_OK;
        do {
            V2T_TRY(skip_value(j, depth + 1));
        } while (v2t_json_accept(j, ','));
        return v2t_json_expect(j, ']');
    case 't':
        return skip_literal(j, "true");
    case 'f':
        return skip_literal(j, "false");
    case 'n':
        return skip_literal(j, "null");
    default:
        return skip_number(j);
    }
}

v2t_status v2t_json_skip_value(v2t_json *j) { return skip_value(j, 0); }

v2t_status v2t_json_finish(v2t_json *j)
{
    v2t_json_skip_ws(j);
    if (j->p != j->end)
        return json_error(j, "end of header");
    return V2T_OK;
}
