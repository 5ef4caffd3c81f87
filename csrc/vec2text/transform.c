#include "transform.h"

#include <stdio.h>
#include <string.h>

#include "../core/alloc.h"

static void key(char *buf, size_t n, const char *prefix, const char *suffix)
{
    snprintf(buf, n, "%s%s", prefix, suffix);
}

v2t_status v2t_embed_transform_dim(const v2t_st *st, const char *prefix, int64_t *dim)
{
    char name[V2T_MAX_NAME];
    key(name, sizeof name, prefix, "0.weight");
    const v2t_st_tensor *t = v2t_st_find(st, name);
    if (!t)
        return v2t_fail(V2T_ERR_MISSING, "%s: tensor '%s' not found (expected the first Linear of the embedding "
                        "transform, shape [D, D])", st->path, name);
    if (t->ndim != 2 || t->shape[0] != t->shape[1] || t->shape[0] < 1)
        return v2t_fail(V2T_ERR_FORMAT, "%s: tensor '%s' must be a square [D, D] matrix, got ndim %d shape [%lld, %lld]",
                        st->path, name, t->ndim, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0));
    *dim = t->shape[0];
    return V2T_OK;
}

v2t_status v2t_embed_transform_load(const v2t_st *st, const char *prefix, int64_t dim, int64_t out_dim,
                                    v2t_embed_transform *out)
{
    memset(out, 0, sizeof *out);
    char name[V2T_MAX_NAME];
    float *w0 = NULL, *b0 = NULL, *w3 = NULL, *b3 = NULL;
    v2t_status s;
    const int64_t s_w0[2] = {dim, dim}, s_b0[1] = {dim}, s_w3[2] = {out_dim, dim}, s_b3[1] = {out_dim};
    key(name, sizeof name, prefix, "0.weight");
    V2T_CHECK(s, v2t_st_load_f32(st, name, 2, s_w0, &w0), done);
    key(name, sizeof name, prefix, "0.bias");
    V2T_CHECK(s, v2t_st_load_f32(st, name, 1, s_b0, &b0), done);
    key(name, sizeof name, prefix, "3.weight");
    V2T_CHECK(s, v2t_st_load_f32(st, name, 2, s_w3, &w3), done);
    key(name, sizeof name, prefix, "3.bias");
    V2T_CHECK(s, v2t_st_load_f32(st, name, 1, s_b3, &b3), done);
    V2T_CHECK(s, v2t_linear_init(&out->first, w0, b0, dim, dim, V2T_ACT_GELU_ERF, 0, V2T_DT_F32), done);
    V2T_CHECK(s, v2t_linear_init(&out->last, w3, b3, dim, out_dim, V2T_ACT_NONE, 0, V2T_DT_F32), done);
    out->dim = dim;
    out->out_dim = out_dim;
done:
    v2t_free(w0);
    v2t_free(b0);
    v2t_free(w3);
    v2t_free(b3);
    if (s != V2T_OK)
        v2t_embed_transform_release(out);
    return s;
}

void v2t_embed_transform_release(v2t_embed_transform *t)
{
    v2t_linear_release(&t->first);
    v2t_linear_release(&t->last);
    memset(t, 0, sizeof *t);
}

// x: [B, D] (ldx), hidden: [B, D], y: [B, R*d_model] (ldy)
v2t_status v2t_embed_transform_forward(const v2t_embed_transform *t, v2t_exec *ex, const float *x, int64_t ldx,
                                       int64_t B, float *hidden, float *y, int64_t ldy)
{
    V2T_TRY(v2t_linear_forward(&t->first, ex, x, ldx, B, hidden, t->dim));
    return v2t_linear_forward(&t->last, ex, hidden, t->dim, B, y, ldy);
}
