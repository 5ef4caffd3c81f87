/* oneDNN matmul with prepacked weights and fused post-ops. See linear.h. */
#include "linear.h"

#include <pthread.h>
#include <string.h>

#include "convert.h"
#include "dnnl_ctx.h"

/* ---- process-wide primitive cache ----
 *
 * One entry per (shape, epilogue, dtype) holds the packed weight layout, chosen once by asking
 * oneDNN for its preferred layout at a probe row count (brgemm blocked layouts; a runtime-M
 * primitive would fall back to plain-layout gemm). Each entry then keeps one primitive per
 * (M, ldx, ldy) actually used, all sharing that weight layout: decode steps reuse one M, so
 * the lookup is a hash hit; a new encoder batch shape pays one primitive creation.
 */

#define V2T_PROBE_M 32
#define V2T_MPRIM_BUCKETS 64

typedef struct m_prim {
    int64_t M, ldx, ldy;
    dnnl_primitive_t prim;
    size_t scratch_bytes;
    struct m_prim *next;
} m_prim;

typedef struct prim_entry {
    int64_t in, out;
    v2t_act act;
    int accumulate, has_bias;
    v2t_dtype dtype;
    dnnl_memory_desc_t wmd; /* packed weights layout */
    size_t probe_scratch;
    m_prim *by_m[V2T_MPRIM_BUCKETS];
    struct prim_entry *next;
} prim_entry;

static prim_entry *g_cache;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static dnnl_alg_kind_t act_alg(v2t_act act)
{
    switch (act) {
    case V2T_ACT_RELU: return dnnl_eltwise_relu;
    case V2T_ACT_GELU_ERF: return dnnl_eltwise_gelu_erf;
    case V2T_ACT_GELU_TANH: return dnnl_eltwise_gelu_tanh;
    default: return dnnl_alg_kind_undef;
    }
}

#define STEP(call, what)                                                                                      \
    do {                                                                                                      \
        s = v2t_dnnl_check((call), (what));                                                                   \
        if (s != V2T_OK)                                                                                      \
            goto done;                                                                                        \
    } while (0)

/* The same for our own calls, which already return a v2t_status with its message. */
#define OWN_STEP(call)                                                                                        \
    do {                                                                                                      \
        s = (call);                                                                                           \
        if (s != V2T_OK)                                                                                      \
            goto done;                                                                                        \
    } while (0)

/* Create a matmul primitive descriptor for M rows with the given weights descriptor
 * (format_tag_any when wmd is NULL). */
static v2t_status make_pd(const prim_entry *e, int64_t M, int64_t ldx, int64_t ldy, const_dnnl_memory_desc_t wmd,
                          dnnl_primitive_desc_t *pd)
{
    dnnl_engine_t eng = v2t_engine();
    if (!eng)
        return V2T_ERR_BACKEND;
    v2t_status s = V2T_OK;
    dnnl_memory_desc_t src = NULL, wts = NULL, bias = NULL, dst = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_dims_t sdims = {M, e->in}, sstrides = {ldx, 1};
    dnnl_dims_t wdims = {e->in, e->out};
    dnnl_dims_t bdims = {1, e->out};
    dnnl_dims_t ddims = {M, e->out}, dstrides = {ldy, 1};
    dnnl_data_type_t wdt = e->dtype == V2T_DT_BF16 ? dnnl_bf16 : dnnl_f32;
    *pd = NULL;
    STEP(dnnl_memory_desc_create_with_strides(&src, 2, sdims, wdt, sstrides), "describing matmul input");
    if (!wmd)
        STEP(dnnl_memory_desc_create_with_tag(&wts, 2, wdims, wdt, dnnl_format_tag_any), "describing weights");
    if (e->has_bias)
        STEP(dnnl_memory_desc_create_with_tag(&bias, 2, bdims, dnnl_f32, dnnl_ab), "describing bias");
    STEP(dnnl_memory_desc_create_with_strides(&dst, 2, ddims, dnnl_f32, dstrides), "describing matmul output");
    STEP(dnnl_primitive_attr_create(&attr), "creating attributes");
    STEP(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting scratchpad mode");
    STEP(dnnl_post_ops_create(&po), "creating post-ops");
    if (e->act != V2T_ACT_NONE)
        STEP(dnnl_post_ops_append_eltwise(po, act_alg(e->act), 0.f, 0.f), "adding activation post-op");
    if (e->accumulate)
        STEP(dnnl_post_ops_append_sum(po, 1.f, 0, dnnl_data_type_undef), "adding residual sum post-op");
    STEP(dnnl_primitive_attr_set_post_ops(attr, po), "attaching post-ops");
    STEP(dnnl_matmul_primitive_desc_create(pd, eng, src, wmd ? wmd : wts, bias, dst, attr),
         "creating matmul descriptor");
done:
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (src)
        dnnl_memory_desc_destroy(src);
    if (wts)
        dnnl_memory_desc_destroy(wts);
    if (bias)
        dnnl_memory_desc_destroy(bias);
    if (dst)
        dnnl_memory_desc_destroy(dst);
    return s;
}

/* Choose the packed weight layout with a probe primitive. */
static v2t_status create_entry(prim_entry *e)
{
    v2t_status s = V2T_OK;
    dnnl_primitive_desc_t pd = NULL;
    OWN_STEP(make_pd(e, V2T_PROBE_M, e->in, e->out, NULL, &pd));
    STEP(dnnl_memory_desc_clone(&e->wmd, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)),
         "querying packed weights layout");
    e->probe_scratch = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return s;
}

static v2t_status get_entry(int64_t in, int64_t out, v2t_act act, int accumulate, int has_bias, v2t_dtype dtype,
                            prim_entry **found)
{
    v2t_status s = V2T_OK;
    pthread_mutex_lock(&g_cache_lock);
    prim_entry *e = g_cache;
    for (; e; e = e->next)
        if (e->in == in && e->out == out && e->act == act && e->accumulate == accumulate &&
            e->has_bias == has_bias && e->dtype == dtype)
            break;
    if (!e) {
        s = v2t_calloc((void **)&e, sizeof *e, "matmul cache entry");
        if (s == V2T_OK) {
            e->in = in;
            e->out = out;
            e->act = act;
            e->accumulate = accumulate;
            e->has_bias = has_bias;
            e->dtype = dtype;
            s = create_entry(e);
            if (s == V2T_OK) {
                e->next = g_cache;
                g_cache = e;
            } else {
                if (e->wmd)
                    dnnl_memory_desc_destroy(e->wmd);
                v2t_free(e);
                e = NULL;
            }
        }
    }
    pthread_mutex_unlock(&g_cache_lock);
    *found = e;
    return s;
}

/* The primitive for M rows with the given strides (created on first use, kept for the process). */
static v2t_status get_m_prim(prim_entry *e, int64_t M, int64_t ldx, int64_t ldy, const m_prim **found)
{
    size_t h = (size_t)(M * 31 + ldx * 7 + ldy) % V2T_MPRIM_BUCKETS;
    v2t_status s = V2T_OK;
    dnnl_primitive_desc_t pd = NULL;
    m_prim *mp = NULL;
    pthread_mutex_lock(&g_cache_lock);
    for (mp = e->by_m[h]; mp; mp = mp->next)
        if (mp->M == M && mp->ldx == ldx && mp->ldy == ldy)
            break;
    if (!mp) {
        OWN_STEP(v2t_calloc((void **)&mp, sizeof *mp, "matmul primitive"));
        mp->M = M;
        mp->ldx = ldx;
        mp->ldy = ldy;
        OWN_STEP(make_pd(e, M, ldx, ldy, e->wmd, &pd));
        mp->scratch_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
        STEP(dnnl_primitive_create(&mp->prim, pd), "creating matmul primitive");
        mp->next = e->by_m[h];
        e->by_m[h] = mp;
    }
done:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (s != V2T_OK && mp) {
        v2t_free(mp);
        mp = NULL;
    }
    pthread_mutex_unlock(&g_cache_lock);
    *found = mp;
    return s;
}

/* ---- execution state ---- */

v2t_status v2t_exec_init(v2t_exec *ex)
{
    memset(ex, 0, sizeof *ex);
    dnnl_engine_t eng = v2t_engine();
    if (!eng)
        return V2T_ERR_BACKEND;
    dnnl_stream_t st;
    V2T_DNNL(dnnl_stream_create(&st, eng, dnnl_stream_default_flags), "creating a stream");
    ex->stream = st;
    return V2T_OK;
}

void v2t_exec_release(v2t_exec *ex)
{
    if (ex->stream)
        dnnl_stream_destroy((dnnl_stream_t)ex->stream);
    v2t_buffer_release(&ex->scratch);
    v2t_buffer_release(&ex->stage_in);
    v2t_buffer_release(&ex->stage_out);
    v2t_buffer_release(&ex->pack_a);
    v2t_buffer_release(&ex->pack_b);
    for (int i = 0; i < ex->n_mirrors; i++)
        v2t_free(ex->mirror[i].bf16);
    memset(ex, 0, sizeof *ex);
}

/* ---- layers ---- */

static v2t_status pack_weights(const prim_entry *e, const float *w, void **packed)
{
    dnnl_engine_t eng = v2t_engine();
    v2t_status s = V2T_OK;
    dnnl_memory_desc_t user_md = NULL;
    dnnl_memory_t user_mem = NULL, packed_mem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    size_t bytes = dnnl_memory_desc_get_size(e->wmd);
    /* PyTorch's [out, in] row-major is the [in, out] matrix with strides (1, in): tag "ba". */
    dnnl_dims_t dims = {e->in, e->out};
    *packed = NULL;
    V2T_TRY(v2t_alloc(packed, bytes, "packed weights"));
    STEP(dnnl_memory_desc_create_with_tag(&user_md, 2, dims, dnnl_f32, dnnl_ba), "describing weights");
    STEP(dnnl_memory_create(&user_mem, user_md, eng, (void *)w), "wrapping weights");
    STEP(dnnl_memory_create(&packed_mem, e->wmd, eng, *packed), "wrapping packed weights");
    STEP(dnnl_reorder_primitive_desc_create(&rpd, user_md, eng, e->wmd, eng, NULL), "creating weight reorder");
    STEP(dnnl_primitive_create(&reorder, rpd), "creating weight reorder");
    STEP(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags), "creating a stream");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user_mem}, {DNNL_ARG_TO, packed_mem}};
    STEP(dnnl_primitive_execute(reorder, stream, 2, args), "packing weights");
    STEP(dnnl_stream_wait(stream), "packing weights");
done:
    if (stream)
        dnnl_stream_destroy(stream);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (packed_mem)
        dnnl_memory_destroy(packed_mem);
    if (user_mem)
        dnnl_memory_destroy(user_mem);
    if (user_md)
        dnnl_memory_desc_destroy(user_md);
    if (s != V2T_OK) {
        v2t_free(*packed);
        *packed = NULL;
    }
    return s;
}

v2t_status v2t_linear_init(v2t_linear *l, const float *w, const float *b, int64_t in, int64_t out, v2t_act act,
                           int accumulate, v2t_dtype dtype)
{
    memset(l, 0, sizeof *l);
    if (in <= 0 || out <= 0)
        return v2t_fail(V2T_ERR_VALUE, "linear layer needs positive sizes, got in=%lld out=%lld", (long long)in,
                        (long long)out);
    if (dtype != V2T_DT_F32 && dtype != V2T_DT_BF16)
        return v2t_fail(V2T_ERR_VALUE, "linear layer: unknown weight dtype %d", (int)dtype);
    prim_entry *e;
    V2T_TRY(get_entry(in, out, act, accumulate, b != NULL, dtype, &e));
    l->in = in;
    l->out = out;
    l->act = act;
    l->accumulate = accumulate;
    l->dtype = dtype;
    l->prim = e; /* the cache entry: primitive + packed layout */
    l->scratch_bytes = e->probe_scratch;
    V2T_TRY(pack_weights(e, w, &l->weights));
    if (b) {
        v2t_status s = v2t_alloc((void **)&l->bias, (size_t)out * sizeof(float), "bias");
        if (s != V2T_OK) {
            v2t_linear_release(l);
            return s;
        }
        memcpy(l->bias, b, (size_t)out * sizeof(float));
    }
    return V2T_OK;
}

void v2t_linear_release(v2t_linear *l)
{
    v2t_free(l->weights);
    v2t_free(l->bias);
    memset(l, 0, sizeof *l);
}

/* oneDNN's brgemm kernels (the ones our packed layouts are made for) take only dense rows; a
 * strided operand would drop the matmul to the reference implementation, ~100x slower. So a
 * strided input is staged into a contiguous copy, and a strided output is produced contiguous
 * and scattered back (with its old contents staged first when accumulating). Padding rows
 * (below) go through the same staging. */
static v2t_status matmul_dense(const v2t_linear *l, v2t_exec *ex, const void *x, int64_t M, float *y);

static void copy_rows(const float *src, int64_t lds, int64_t M, int64_t n, float *dst, int64_t ldd)
{
    for (int64_t m = 0; m < M; m++)
        memcpy(dst + m * ldd, src + m * lds, (size_t)n * sizeof(float));
}

/* Row counts seen by oneDNN are bounded so a process keeps a bounded set of primitives per
 * shape: rows go through in slabs of V2T_SLAB; a slab of V2T_SMALL_ROWS or more rows that is not
 * a multiple of V2T_ROW_ALIGN is padded with zero rows (staged) to the next multiple; fewer rows
 * run as they are. That is at most 253 + 15 primitives per weight shape, created when a row
 * count first occurs. The alignment is 4, not 16: beam search with 4 beams computes 4 rows per
 * active example, so its decoder steps never pad or stage (measured 5-6 % faster on the full
 * loop than padding to 16). */
#define V2T_SLAB 1024
#define V2T_ROW_ALIGN 4
#define V2T_SMALL_ROWS 16

static v2t_status forward_slab(const v2t_linear *l, v2t_exec *ex, const float *x, int64_t ldx, int64_t M, float *y,
                               int64_t ldy)
{
    int64_t padded = M < V2T_SMALL_ROWS ? M : (M + V2T_ROW_ALIGN - 1) / V2T_ROW_ALIGN * V2T_ROW_ALIGN;
    const void *src = x;
    if (l->dtype == V2T_DT_BF16) {
        V2T_TRY(v2t_buffer_reserve(&ex->stage_in, (size_t)(padded * l->in) * sizeof(uint16_t), "bf16 matmul input"));
        /* bf16 weights: the f32 input rows are rounded to bf16 (nearest even) into the staging
         * buffer, so oneDNN runs a bf16 x bf16 -> f32 matmul (AMX where the CPU has it) */
        uint16_t *xs = ex->stage_in.data;
        v2t_pack_bf16(x, ldx, 0, M, l->in, xs);
        memset(xs + M * l->in, 0, (size_t)((padded - M) * l->in) * sizeof(uint16_t));
        src = xs;
    } else if (ldx != l->in || padded != M) {
        V2T_TRY(v2t_buffer_reserve(&ex->stage_in, (size_t)(padded * l->in) * sizeof(float), "staged matmul input"));
        float *xs = ex->stage_in.data;
        copy_rows(x, ldx, M, l->in, xs, l->in);
        memset(xs + M * l->in, 0, (size_t)((padded - M) * l->in) * sizeof(float));
        src = xs;
    }
    if (ldy == l->out && padded == M)
        return matmul_dense(l, ex, src, M, y);
    V2T_TRY(v2t_buffer_reserve(&ex->stage_out, (size_t)(padded * l->out) * sizeof(float), "staged matmul output"));
    float *tmp = ex->stage_out.data;
    if (l->accumulate)
        copy_rows(y, ldy, M, l->out, tmp, l->out);
    V2T_TRY(matmul_dense(l, ex, src, padded, tmp));
    copy_rows(tmp, l->out, M, l->out, y, ldy);
    return V2T_OK;
}

v2t_status v2t_linear_forward(const v2t_linear *l, v2t_exec *ex, const float *x, int64_t ldx, int64_t M, float *y,
                              int64_t ldy)
{
    for (int64_t r = 0; r < M; r += V2T_SLAB) {
        int64_t rows = M - r < V2T_SLAB ? M - r : V2T_SLAB;
        V2T_TRY(forward_slab(l, ex, x + r * ldx, ldx, rows, y + r * ldy, ldy));
    }
    return V2T_OK;
}

// x: [M, in] dense (f32, or bf16 for bf16 weights), y: [M, out] dense f32
static v2t_status matmul_dense(const v2t_linear *l, v2t_exec *ex, const void *x, int64_t M, float *y)
{
    const int64_t ldx = l->in, ldy = l->out;
    prim_entry *e = l->prim;
    const m_prim *mp;
    V2T_TRY(get_m_prim(e, M, ldx, ldy, &mp));
    dnnl_engine_t eng = v2t_engine();
    v2t_status s = V2T_OK;
    dnnl_memory_t smem = NULL, wmem = NULL, bmem = NULL, dmem = NULL, scmem = NULL;
    const_dnnl_primitive_desc_t pd;
    V2T_TRY(v2t_buffer_reserve(&ex->scratch, mp->scratch_bytes ? mp->scratch_bytes : 64, "matmul scratchpad"));
    STEP(dnnl_primitive_get_primitive_desc(mp->prim, &pd), "querying matmul primitive");
    STEP(dnnl_memory_create(&smem, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eng, (void *)x),
         "wrapping matmul input");
    STEP(dnnl_memory_create(&wmem, e->wmd, eng, l->weights), "wrapping weights");
    STEP(dnnl_memory_create(&dmem, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), eng, y),
         "wrapping matmul output");
    STEP(dnnl_memory_create(&scmem, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), eng,
                            ex->scratch.data),
         "wrapping scratchpad");
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, smem},
                               {DNNL_ARG_WEIGHTS, wmem},
                               {DNNL_ARG_DST, dmem},
                               {DNNL_ARG_SCRATCHPAD, scmem},
                               {DNNL_ARG_BIAS, NULL}};
    int nargs = 4;
    if (l->bias) {
        STEP(dnnl_memory_create(&bmem, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), eng, l->bias),
             "wrapping bias");
        args[nargs++].memory = bmem;
    }
    STEP(dnnl_primitive_execute(mp->prim, (dnnl_stream_t)ex->stream, nargs, args), "running matmul");
    STEP(dnnl_stream_wait((dnnl_stream_t)ex->stream), "running matmul");
done:
    if (smem) dnnl_memory_destroy(smem);
    if (wmem) dnnl_memory_destroy(wmem);
    if (bmem) dnnl_memory_destroy(bmem);
    if (dmem) dnnl_memory_destroy(dmem);
    if (scmem) dnnl_memory_destroy(scmem);
    return s;
}
