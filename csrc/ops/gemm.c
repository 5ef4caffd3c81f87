/* oneDNN matmul for activations-by-activations products. See gemm.h. */
#include "gemm.h"

#include <pthread.h>
#include <string.h>

#include "convert.h"
#include "dnnl_ctx.h"

/* ---- process-wide primitive cache, keyed by the shape class ---- */

typedef struct gemm_entry {
    int trans_a, trans_b, scaled; /* scaled: alpha != 1 is applied as a runtime scale */
    int bf16;                     /* operands in bf16 (A always untransposed; B too unless mirrored), C in f32 */
    float beta;                   /* 0: no accumulation; otherwise a sum post-op with this scale */
    dnnl_primitive_t prim;
    size_t scratch_bytes;
    struct gemm_entry *next;
} gemm_entry;

static gemm_entry *g_cache;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

#define STEP(call, what)                                                                                      \
    do {                                                                                                      \
        s = v2t_dnnl_check((call), (what));                                                                   \
        if (s != V2T_OK)                                                                                      \
            goto done;                                                                                        \
    } while (0)

static v2t_status create_entry(gemm_entry *e)
{
    dnnl_engine_t eng = v2t_engine();
    if (!eng)
        return V2T_ERR_BACKEND;
    v2t_status s = V2T_OK;
    dnnl_memory_desc_t amd = NULL, bmd = NULL, cmd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const dnnl_dim_t R = DNNL_RUNTIME_DIM_VAL;
    dnnl_dims_t dims = {R, R};
    dnnl_dims_t plain = {R, 1}, transposed = {1, R};
    const dnnl_data_type_t in_dt = e->bf16 ? dnnl_bf16 : dnnl_f32;
    STEP(dnnl_memory_desc_create_with_strides(&amd, 2, dims, in_dt, e->trans_a ? transposed : plain),
         "describing gemm operand A");
    STEP(dnnl_memory_desc_create_with_strides(&bmd, 2, dims, in_dt, e->trans_b ? transposed : plain),
         "describing gemm operand B");
    STEP(dnnl_memory_desc_create_with_strides(&cmd, 2, dims, dnnl_f32, plain), "describing gemm output C");
    STEP(dnnl_primitive_attr_create(&attr), "creating attributes");
    STEP(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting scratchpad mode");
    if (e->scaled)
        STEP(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_WEIGHTS, 0), "setting the alpha scale");
    if (e->beta != 0.f) {
        STEP(dnnl_post_ops_create(&po), "creating post-ops");
        STEP(dnnl_post_ops_append_sum(po, e->beta, 0, dnnl_data_type_undef), "adding the beta sum post-op");
        STEP(dnnl_primitive_attr_set_post_ops(attr, po), "attaching post-ops");
    }
    STEP(dnnl_matmul_primitive_desc_create(&pd, eng, amd, bmd, NULL, cmd, attr), "creating gemm descriptor");
    e->scratch_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    STEP(dnnl_primitive_create(&e->prim, pd), "creating gemm primitive");
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (amd) dnnl_memory_desc_destroy(amd);
    if (bmd) dnnl_memory_desc_destroy(bmd);
    if (cmd) dnnl_memory_desc_destroy(cmd);
    return s;
}

static v2t_status get_entry(int trans_a, int trans_b, int scaled, float beta, int bf16, gemm_entry **found)
{
    v2t_status s = V2T_OK;
    pthread_mutex_lock(&g_cache_lock);
    gemm_entry *e = g_cache;
    for (; e; e = e->next)
        if (e->trans_a == trans_a && e->trans_b == trans_b && e->scaled == scaled && e->beta == beta &&
            e->bf16 == bf16)
            break;
    if (!e) {
        s = v2t_calloc((void **)&e, sizeof *e, "gemm cache entry");
        if (s == V2T_OK) {
            *e = (gemm_entry){.trans_a = trans_a, .trans_b = trans_b, .scaled = scaled, .beta = beta, .bf16 = bf16};
            s = create_entry(e);
            if (s == V2T_OK) {
                e->next = g_cache;
                g_cache = e;
            } else {
                v2t_free(e);
                e = NULL;
            }
        }
    }
    pthread_mutex_unlock(&g_cache_lock);
    *found = e;
    return s;
}

int v2t_gemm_bf16_supported(void)
{
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

/* ---- weight mirrors ---- */

/* src [n] -> dst [n] rounded to bf16, in rows of ROW so the packing kernel splits it over the team */
static void round_flat(const float *src, int64_t n, uint16_t *dst)
{
    enum { ROW = 4096 };
    const int64_t rows = n / ROW;
    if (rows)
        v2t_pack_bf16(src, ROW, 0, rows, ROW, dst);
    if (n - rows * ROW)
        v2t_pack_bf16(src + rows * ROW, n - rows * ROW, 0, 1, n - rows * ROW, dst + rows * ROW);
}

v2t_status v2t_gemm_mirror_add(v2t_exec *ex, const float *base, int64_t n)
{
    if (n <= 0)
        return V2T_OK;
    if (ex->n_mirrors >= V2T_EXEC_MAX_MIRRORS)
        return v2t_fail(V2T_ERR_VALUE, "gemm: at most %d weight mirrors per execution state",
                        (int)V2T_EXEC_MAX_MIRRORS);
    v2t_bf16_mirror *m = &ex->mirror[ex->n_mirrors];
    V2T_TRY(v2t_alloc((void **)&m->bf16, (size_t)n * sizeof(uint16_t), "bf16 weight mirror"));
    m->base = base;
    m->n = n;
    ex->n_mirrors++;
    round_flat(base, n, m->bf16);
    return V2T_OK;
}

uint16_t *v2t_gemm_mirror_of(v2t_exec *ex, const float *p, int64_t n)
{
    for (int i = 0; i < ex->n_mirrors; i++) {
        const v2t_bf16_mirror *m = &ex->mirror[i];
        if (p >= m->base && p < m->base + m->n && n <= m->n - (p - m->base))
            return m->bf16 + (p - m->base);
    }
    return NULL;
}

void v2t_gemm_mirror_refresh(v2t_exec *ex, const float *p, int64_t n)
{
    uint16_t *m = v2t_gemm_mirror_of(ex, p, n);
    if (m)
        round_flat(p, n, m);
}

/* ---- execution ---- */

static v2t_status scale_rows(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
            C[m * ldc + n] = beta == 0.f ? 0.f : beta * C[m * ldc + n];
    return V2T_OK;
}

v2t_status v2t_gemm(v2t_exec *ex, int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    if (M < 0 || N < 0 || K < 0)
        return v2t_fail(V2T_ERR_VALUE, "gemm: sizes must be non-negative, got M=%lld N=%lld K=%lld", (long long)M,
                        (long long)N, (long long)K);
    if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || ldc < N)
        return v2t_fail(V2T_ERR_VALUE,
                        "gemm: leading dimensions too small (lda=%lld ldb=%lld ldc=%lld for M=%lld N=%lld K=%lld, "
                        "trans_a=%d trans_b=%d)",
                        (long long)lda, (long long)ldb, (long long)ldc, (long long)M, (long long)N, (long long)K,
                        trans_a, trans_b);
    if (M == 0 || N == 0)
        return V2T_OK;
    if (K == 0 || alpha == 0.f)
        return scale_rows(M, N, beta, C, ldc);
    trans_a = trans_a != 0;
    trans_b = trans_b != 0;
    ex->gemm_flops += 2.0 * (double)M * (double)N * (double)K;
    const int bf16 = ex->gemm_bf16 != 0;
    dnnl_data_type_t in_dt = dnnl_f32;
    const void *a_data = A, *b_data = B;
    if (bf16) {
        if (!v2t_gemm_bf16_supported())
            return v2t_fail(V2T_ERR_VALUE, "bfloat16 matmuls need a CPU with AVX512-BF16 or AMX; this one has "
                                           "neither (use float32)");
        // a dense, untransposed bf16 copy of op(A) [M, K]; B from its weight mirror as it is
        // stored, or a dense bf16 copy of op(B) [K, N]
        V2T_TRY(v2t_buffer_reserve(&ex->pack_a, (size_t)(M * K) * sizeof(uint16_t), "bf16 gemm operand A"));
        v2t_pack_bf16(A, lda, trans_a, M, K, ex->pack_a.data);
        a_data = ex->pack_a.data;
        lda = K;
        trans_a = 0;
        // op(B) is stored as (trans_b ? N : K) rows of (trans_b ? K : N) values with stride ldb
        const uint16_t *bm = v2t_gemm_mirror_of(ex, B, ((trans_b ? N : K) - 1) * ldb + (trans_b ? K : N));
        if (bm) {
            b_data = bm;
        } else {
            V2T_TRY(v2t_buffer_reserve(&ex->pack_b, (size_t)(K * N) * sizeof(uint16_t), "bf16 gemm operand B"));
            v2t_pack_bf16(B, ldb, trans_b, K, N, ex->pack_b.data);
            b_data = ex->pack_b.data;
            ldb = N;
            trans_b = 0;
        }
        in_dt = dnnl_bf16;
    }
    int scaled = alpha != 1.f;
    gemm_entry *e;
    V2T_TRY(get_entry(trans_a, trans_b, scaled, beta, bf16, &e));
    dnnl_engine_t eng = v2t_engine();
    v2t_status s = V2T_OK;
    dnnl_memory_desc_t amd = NULL, bmd = NULL, cmd = NULL, scmd = NULL, almd = NULL;
    dnnl_memory_t amem = NULL, bmem = NULL, cmem = NULL, scmem = NULL, almem = NULL;
    dnnl_dims_t adims = {M, K}, astr = {trans_a ? 1 : lda, trans_a ? lda : 1};
    dnnl_dims_t bdims = {K, N}, bstr = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
    dnnl_dims_t cdims = {M, N}, cstr = {ldc, 1};
    dnnl_dims_t scdims = {(dnnl_dim_t)(e->scratch_bytes ? e->scratch_bytes : 1)};
    dnnl_dims_t aldims = {1};
    float alpha_val = alpha;
    V2T_TRY(v2t_buffer_reserve(&ex->scratch, e->scratch_bytes ? e->scratch_bytes : 64, "gemm scratchpad"));
    STEP(dnnl_memory_desc_create_with_strides(&amd, 2, adims, in_dt, astr), "describing gemm operand A");
    STEP(dnnl_memory_desc_create_with_strides(&bmd, 2, bdims, in_dt, bstr), "describing gemm operand B");
    STEP(dnnl_memory_desc_create_with_strides(&cmd, 2, cdims, dnnl_f32, cstr), "describing gemm output C");
    STEP(dnnl_memory_desc_create_with_tag(&scmd, 1, scdims, dnnl_u8, dnnl_a), "describing scratchpad");
    STEP(dnnl_memory_create(&amem, amd, eng, (void *)a_data), "wrapping gemm operand A");
    STEP(dnnl_memory_create(&bmem, bmd, eng, (void *)b_data), "wrapping gemm operand B");
    STEP(dnnl_memory_create(&cmem, cmd, eng, C), "wrapping gemm output C");
    STEP(dnnl_memory_create(&scmem, scmd, eng, ex->scratch.data), "wrapping scratchpad");
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, amem}, {DNNL_ARG_WEIGHTS, bmem}, {DNNL_ARG_DST, cmem},
                               {DNNL_ARG_SCRATCHPAD, scmem}, {0, NULL}};
    int nargs = 4;
    if (scaled) {
        STEP(dnnl_memory_desc_create_with_tag(&almd, 1, aldims, dnnl_f32, dnnl_a), "describing alpha");
        STEP(dnnl_memory_create(&almem, almd, eng, &alpha_val), "wrapping alpha");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, almem};
    }
    STEP(dnnl_primitive_execute(e->prim, (dnnl_stream_t)ex->stream, nargs, args), "running gemm");
    STEP(dnnl_stream_wait((dnnl_stream_t)ex->stream), "running gemm");
done:
    if (amem) dnnl_memory_destroy(amem);
    if (bmem) dnnl_memory_destroy(bmem);
    if (cmem) dnnl_memory_destroy(cmem);
    if (scmem) dnnl_memory_destroy(scmem);
    if (almem) dnnl_memory_destroy(almem);
    if (amd) dnnl_memory_desc_destroy(amd);
    if (bmd) dnnl_memory_desc_destroy(bmd);
    if (cmd) dnnl_memory_desc_destroy(cmd);
    if (scmd) dnnl_memory_desc_destroy(scmd);
    if (almd) dnnl_memory_desc_destroy(almd);
    return s;
}
