#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/alloc.h"
#include "../core/bf16.h"
#include "json.h"

/* A header larger than this is refused before it is parsed. */
#define V2T_ST_MAX_HEADER ((uint64_t)100 << 20)

static const char *const dtype_names[V2T_ST_NUM_DTYPES] = {
    "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "BF16", "F32", "F64"};
static const size_t dtype_sizes[V2T_ST_NUM_DTYPES] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8};

const char *v2t_st_dtype_name(v2t_st_dtype d) { return (unsigned)d < V2T_ST_NUM_DTYPES ? dtype_names[d] : "?"; }
size_t v2t_st_dtype_size(v2t_st_dtype d) { return (unsigned)d < V2T_ST_NUM_DTYPES ? dtype_sizes[d] : 0; }

int64_t v2t_st_numel(const v2t_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const v2t_st_tensor *)a)->name, ((const v2t_st_tensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b)
{
    const v2t_st_tensor *x = *(const v2t_st_tensor *const *)a, *y = *(const v2t_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end ? 1 : 0; /* an empty tensor before one that starts there */
}

/* One tensor entry: {"dtype": "...", "shape": [...], "data_offsets": [b, e]} */
static v2t_status parse_entry(v2t_json *j, const char *path, v2t_st_tensor *t)
{
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    size_t entry_offset = v2t_json_offset(j);
    V2T_TRY(v2t_json_expect(j, '{'));
    if (!v2t_json_accept(j, '}')) {
        do {
            char key[64];
            V2T_TRY(v2t_json_string(j, key, sizeof key, NULL));
            V2T_TRY(v2t_json_expect(j, ':'));
            if (strcmp(key, "dtype") == 0) {
                char dt[32];
                size_t at = v2t_json_offset(j);
                V2T_TRY(v2t_json_string(j, dt, sizeof dt, NULL));
                int found = -1;
                for (int d = 0; d < V2T_ST_NUM_DTYPES; d++)
                    if (strcmp(dt, dtype_names[d]) == 0)
                        found = d;
                if (found < 0)
                    return v2t_fail(V2T_ERR_FORMAT,
                                    "%s: tensor '%s' has unknown dtype '%s' at byte %zu (expected one of F32, F16, "
                                    "BF16, F64, I64, I32, I16, I8, U8, U16, U32, U64, BOOL)",
                                    path, t->name, dt, at);
                t->dtype = (v2t_st_dtype)found;
                have_dtype = 1;
            } else if (strcmp(key, "shape") == 0) {
                V2T_TRY(v2t_json_expect(j, '['));
                t->ndim = 0;
                if (!v2t_json_accept(j, ']')) {
                    do {
                        uint64_t v;
                        if (t->ndim >= V2T_MAX_NDIM)
                            return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' has more than %d dimensions", path,
                                            t->name, V2T_MAX_NDIM);
                        V2T_TRY(v2t_json_uint(j, &v));
                        t->shape[t->ndim++] = (int64_t)v;
                    } while (v2t_json_accept(j, ','));
                    V2T_TRY(v2t_json_expect(j, ']'));
                }
                have_shape = 1;
            } else if (strcmp(key, "data_offsets") == 0) {
                V2T_TRY(v2t_json_expect(j, '['));
                V2T_TRY(v2t_json_uint(j, &t->begin));
                V2T_TRY(v2t_json_expect(j, ','));
                V2T_TRY(v2t_json_uint(j, &t->end));
                V2T_TRY(v2t_json_expect(j, ']'));
                have_offsets = 1;
            } else {
                V2T_TRY(v2t_json_skip_value(j));
            }
        } while (v2t_json_accept(j, ','));
        V2T_TRY(v2t_json_expect(j, '}'));
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' (entry at byte %zu) lacks '%s'", path, t->name,
                        entry_offset, !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return V2T_OK;
}

static v2t_status check_entry(const char *path, const v2t_st_tensor *t, uint64_t data_size)
{
    if (t->begin > t->end)
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' has data_offsets [%llu, %llu] with begin after end", path,
                        t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return v2t_fail(V2T_ERR_FORMAT,
                        "%s: tensor '%s' has data_offsets [%llu, %llu] past the end of the data section (%llu "
                        "bytes; the file may be truncated)",
                        path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)data_size);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d != 0 && numel > UINT64_MAX / d)
            return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' shape overflows", path, t->name);
        numel *= d;
    }
    uint64_t es = dtype_sizes[t->dtype];
    if (numel > UINT64_MAX / es || numel * es != t->end - t->begin) {
        char shp[128];
        int off = 0;
        shp[0] = 0;
        for (int i = 0; i < t->ndim && off < (int)sizeof shp - 24; i++)
            off += snprintf(shp + off, sizeof shp - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        return v2t_fail(V2T_ERR_FORMAT,
                        "%s: tensor '%s' with shape [%s] and dtype %s needs %llu bytes but data_offsets give %llu",
                        path, t->name, shp, dtype_names[t->dtype], (unsigned long long)(numel * es),
                        (unsigned long long)(t->end - t->begin));
    }
    return V2T_OK;
}

static v2t_status parse_header(v2t_st *st, const char *text, size_t len)
{
    v2t_json j;
    v2t_json_init(&j, text, len, 8, st->path);
    int cap = 64;
    v2t_status s;
    V2T_TRY(v2t_calloc((void **)&st->tensors, sizeof(v2t_st_tensor) * (size_t)cap, "safetensors index"));
    V2T_TRY(v2t_json_expect(&j, '{'));
    if (!v2t_json_accept(&j, '}')) {
        do {
            char name[V2T_MAX_NAME];
            V2T_TRY(v2t_json_string(&j, name, sizeof name, NULL));
            V2T_TRY(v2t_json_expect(&j, ':'));
            if (strcmp(name, "__metadata__") == 0) {
                V2T_TRY(v2t_json_skip_value(&j));
                continue;
            }
            if (st->num_tensors == cap) {
                v2t_st_tensor *grown;
                V2T_TRY(v2t_alloc((void **)&grown, sizeof(v2t_st_tensor) * (size_t)cap * 2, "safetensors index"));
                memcpy(grown, st->tensors, sizeof(v2t_st_tensor) * (size_t)cap);
                v2t_free(st->tensors);
                st->tensors = grown;
                cap *= 2;
            }
            v2t_st_tensor *t = &st->tensors[st->num_tensors];
            memset(t, 0, sizeof *t);
            memcpy(t->name, name, strlen(name) + 1);
            V2T_TRY(parse_entry(&j, st->path, t));
            st->num_tensors++;
        } while (v2t_json_accept(&j, ','));
        V2T_TRY(v2t_json_expect(&j, '}'));
    }
    V2T_TRY(v2t_json_finish(&j));

    uint64_t data_size = st->file_size - st->data_offset;
    for (int i = 0; i < st->num_tensors; i++)
        V2T_TRY(check_entry(st->path, &st->tensors[i], data_size));

    qsort(st->tensors, (size_t)st->num_tensors, sizeof(v2t_st_tensor), cmp_name);
    for (int i = 1; i < st->num_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", st->path,
                            st->tensors[i].name);

    /* The data section is the tensors back to back, as the reference reader demands: sorted by
     * their offsets, each begins where the previous ends, the first at 0, and the last ends at
     * the end of the file. A gap, an overlap or trailing bytes mean a damaged file (a header
     * length one byte short shifts every tensor by a byte and leaves one byte over). */
    if (st->num_tensors > 0) {
        v2t_st_tensor **by_begin = NULL;
        V2T_TRY(v2t_alloc((void **)&by_begin, sizeof(*by_begin) * (size_t)st->num_tensors, "safetensors index"));
        for (int i = 0; i < st->num_tensors; i++)
            by_begin[i] = &st->tensors[i];
        qsort(by_begin, (size_t)st->num_tensors, sizeof(*by_begin), cmp_begin);
        s = V2T_OK;
        uint64_t expect = 0;
        for (int i = 0; i < st->num_tensors && s == V2T_OK; i++) {
            const v2t_st_tensor *t = by_begin[i];
            if (t->begin > expect)
                s = v2t_fail(V2T_ERR_FORMAT, "%s: %llu unused bytes before tensor '%s' at data offset %llu (the data "
                             "section must hold the tensors back to back)", st->path,
                             (unsigned long long)(t->begin - expect), t->name, (unsigned long long)t->begin);
            else if (t->begin < expect)
                s = v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' [%llu, %llu] overlaps the data of '%s', which ends at %llu",
                             st->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                             by_begin[i - 1]->name, (unsigned long long)expect);
            expect = t->end;
        }
        v2t_free(by_begin);
        V2T_TRY(s);
        if (expect != data_size)
            return v2t_fail(V2T_ERR_FORMAT, "%s: %llu bytes after the last tensor's data (truncated header length, "
                            "or a damaged file)", st->path, (unsigned long long)(data_size - expect));
    } else if (data_size != 0) {
        return v2t_fail(V2T_ERR_FORMAT, "%s: %llu bytes of data but no tensors in the header", st->path,
                        (unsigned long long)data_size);
    }
    return V2T_OK;
}

/* n bytes at file offset `off`; a short file (truncated after opening) is an error. */
static v2t_status read_at(const v2t_st *st, void *dst, size_t n, uint64_t off, const char *what)
{
    char *p = dst;
    while (n > 0) {
        size_t want = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(st->fd, p, want, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return v2t_fail(V2T_ERR_IO, "%s: reading %s failed: %s", st->path, what, strerror(errno));
        }
        if (r == 0)
            return v2t_fail(V2T_ERR_IO,
                            "%s: the file ends before the bytes of %s (it was %llu bytes when opened: truncated or "
                            "rewritten since)", st->path, what, (unsigned long long)st->file_size);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return V2T_OK;
}

v2t_status v2t_st_open(const char *path, v2t_st **out)
{
    *out = NULL;
    v2t_st *st;
    V2T_TRY(v2t_calloc((void **)&st, sizeof *st, "safetensors handle"));
    st->fd = -1;
    v2t_status s = V2T_OK;
    int fd = -1;
    size_t plen = strlen(path);
    V2T_CHECK(s, v2t_alloc((void **)&st->path, plen + 1, "path"), fail);
    memcpy(st->path, path, plen + 1);

    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; anything that is
     * not a regular file is refused right after */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        s = v2t_fail(V2T_ERR_IO, "%s: cannot open safetensors file: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        s = v2t_fail(V2T_ERR_IO, "%s: not a regular file (a weights file must be one)", path);
        goto fail;
    }
    if (sb.st_size < 8) {
        s = v2t_fail(V2T_ERR_FORMAT, "%s: file is %lld bytes, too short for the 8-byte safetensors header length",
                     path, (long long)sb.st_size);
        goto fail;
    }
    st->file_size = (uint64_t)sb.st_size;
    st->fd = fd;
    fd = -1;

    unsigned char b[8];
    V2T_CHECK(s, read_at(st, b, 8, 0, "the header length"), fail);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (hlen > st->file_size - 8) {
        s = v2t_fail(V2T_ERR_FORMAT,
                     "%s: header length %llu (bytes 0-7) runs past the end of the %llu-byte file (truncated or not "
                     "a safetensors file)",
                     path, (unsigned long long)hlen, (unsigned long long)st->file_size);
        goto fail;
    }
    if (hlen > V2T_ST_MAX_HEADER) {
        s = v2t_fail(V2T_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit", path,
                     (unsigned long long)hlen, (unsigned long long)V2T_ST_MAX_HEADER);
        goto fail;
    }
    st->data_offset = 8 + (size_t)hlen;
    char *header = NULL;
    V2T_CHECK(s, v2t_alloc((void **)&header, (size_t)hlen + 1, "safetensors header"), fail);
    s = read_at(st, header, (size_t)hlen, 8, "the header");
    if (s == V2T_OK)
        s = parse_header(st, header, (size_t)hlen);
    v2t_free(header);
    if (s != V2T_OK)
        goto fail;
    *out = st;
    return V2T_OK;
fail:
    if (fd >= 0)
        close(fd);
    v2t_st_close(st);
    return s;
}

void v2t_st_close(v2t_st *st)
{
    if (!st)
        return;
    if (st->fd >= 0)
        close(st->fd);
    v2t_free(st->tensors);
    v2t_free(st->path);
    v2t_free(st);
}

const v2t_st_tensor *v2t_st_find(const v2t_st *st, const char *name)
{
    int lo = 0, hi = st->num_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0)
            return &st->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* An I8 tensor stored by rows: value[r, ...] = q[r, ...] * scale[r], the scale a finite 1-D floating
 * tensor named `<name>.int8_scale` with one entry per row (the first dimension). */
static v2t_status read_int8_rows(const v2t_st *st, const v2t_st_tensor *t, float *out)
{
    char sname[V2T_MAX_NAME + sizeof V2T_ST_INT8_SCALE_SUFFIX];
    snprintf(sname, sizeof sname, "%s%s", t->name, V2T_ST_INT8_SCALE_SUFFIX);
    if (t->ndim < 1)
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' is an I8 scalar; I8 weights are stored by rows (1-D or more)",
                        st->path, t->name);
    const v2t_st_tensor *sc = v2t_st_find(st, sname);
    if (!sc)
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' is I8 but the file has no row scale '%s' beside it",
                        st->path, t->name, sname);
    if (sc->dtype == V2T_ST_I8)
        return v2t_fail(V2T_ERR_FORMAT, "%s: row scale '%s' is I8; a floating dtype (F32, F16, BF16) is needed",
                        st->path, sname);
    const int64_t rows = t->shape[0];
    const int64_t n = v2t_st_numel(t);
    const int64_t cols = rows ? n / rows : 0;
    float *scale;
    V2T_TRY(v2t_alloc((void **)&scale, (size_t)(rows ? rows : 1) * sizeof *scale, "int8 row scales"));
    v2t_status s = v2t_st_read_f32(st, sc, 1, &rows, scale);
    if (s == V2T_OK)
        s = v2t_st_check_finite(st, sc, scale, rows);
    enum { SLICE = 65536 };
    signed char *buf = NULL;
    if (s == V2T_OK)
        s = v2t_alloc((void **)&buf, SLICE, "tensor read buffer");
    const uint64_t base = st->data_offset + t->begin;
    for (int64_t i0 = 0; i0 < n && s == V2T_OK; i0 += SLICE) {
        const int64_t m = n - i0 < SLICE ? n - i0 : SLICE;
        s = read_at(st, buf, (size_t)m, base + (uint64_t)i0, t->name);
        for (int64_t i = 0; s == V2T_OK && i < m; i++)
            out[i0 + i] = (float)buf[i] * scale[(i0 + i) / cols];
    }
    v2t_free(buf);
    v2t_free(scale);
    return s;
}

v2t_status v2t_st_read_f32(const v2t_st *st, const v2t_st_tensor *t, int ndim, const int64_t *shape, float *out)
{
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        int a = 0, c = 0;
        want[0] = got[0] = 0;
        for (int i = 0; i < ndim && a < 100; i++)
            a += snprintf(want + a, sizeof want - a, i ? ", %lld" : "%lld", (long long)shape[i]);
        for (int i = 0; i < t->ndim && c < 100; i++)
            c += snprintf(got + c, sizeof got - c, i ? ", %lld" : "%lld", (long long)t->shape[i]);
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' has shape [%s] but the config needs [%s]", st->path,
                        t->name, got, want);
    }
    int64_t n = v2t_st_numel(t);
    const uint64_t base = st->data_offset + t->begin;
    switch (t->dtype) {
    case V2T_ST_F32:
        return read_at(st, out, (size_t)n * 4, base, t->name);
    case V2T_ST_BF16:
    case V2T_ST_F16:
    case V2T_ST_F64: {
        /* read in slices through a small buffer, converting each */
        const size_t es = dtype_sizes[t->dtype];
        enum { SLICE = 16384 };
        unsigned char *buf;
        V2T_TRY(v2t_alloc((void **)&buf, SLICE * es, "tensor read buffer"));
        v2t_status s = V2T_OK;
        for (int64_t i0 = 0; i0 < n && s == V2T_OK; i0 += SLICE) {
            const int64_t m = n - i0 < SLICE ? n - i0 : SLICE;
            s = read_at(st, buf, (size_t)m * es, base + (uint64_t)i0 * es, t->name);
            for (int64_t i = 0; s == V2T_OK && i < m; i++) {
                if (t->dtype == V2T_ST_F64) {
                    double d;
                    memcpy(&d, buf + 8 * i, 8);
                    out[i0 + i] = (float)d;
                } else {
                    uint16_t h = (uint16_t)(buf[2 * i] | (buf[2 * i + 1] << 8));
                    out[i0 + i] = t->dtype == V2T_ST_BF16 ? v2t_bf16_to_f32(h) : v2t_f16_to_f32(h);
                }
            }
        }
        v2t_free(buf);
        return s;
    }
    case V2T_ST_I8:
        return read_int8_rows(st, t, out);
    default:
        return v2t_fail(V2T_ERR_FORMAT,
                        "%s: tensor '%s' has dtype %s; a floating dtype (F32, F16, BF16) or I8 with a '%s' row scale "
                        "is needed", st->path, t->name, dtype_names[t->dtype], V2T_ST_INT8_SCALE_SUFFIX);
    }
}

v2t_status v2t_st_read_raw(const v2t_st *st, const v2t_st_tensor *t, void *out)
{
    return read_at(st, out, (size_t)(t->end - t->begin), st->data_offset + t->begin, t->name);
}

v2t_status v2t_st_check_finite(const v2t_st *st, const v2t_st_tensor *t, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' holds %s at element %lld; the weights must be finite "
                            "(a damaged or diverged checkpoint)", st->path, t->name, isnan(v[i]) ? "NaN" : "Inf",
                            (long long)i);
    return V2T_OK;
}

v2t_status v2t_st_load_f32(const v2t_st *st, const char *name, int ndim, const int64_t *shape, float **out)
{
    *out = NULL;
    const v2t_st_tensor *t = v2t_st_find(st, name);
    if (!t)
        return v2t_fail(V2T_ERR_MISSING, "%s: checkpoint is missing tensor '%s'", st->path, name);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    float *buf;
    V2T_TRY(v2t_alloc((void **)&buf, (size_t)n * sizeof(float), name));
    v2t_status s = v2t_st_read_f32(st, t, ndim, shape, buf);
    if (s == V2T_OK)
        s = v2t_st_check_finite(st, t, buf, n);
    if (s != V2T_OK) {
        v2t_free(buf);
        return s;
    }
    *out = buf;
    return V2T_OK;
}
