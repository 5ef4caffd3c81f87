#include "dnnl_ctx.h"

#include <pthread.h>

static dnnl_engine_t g_engine;
static dnnl_status_t g_engine_status = dnnl_success;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;

static void create_engine(void) { g_engine_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0); }

dnnl_engine_t v2t_engine(void)
{
    pthread_once(&g_engine_once, create_engine);
    if (g_engine_status != dnnl_success) {
        v2t_dnnl_check(g_engine_status, "creating the CPU engine");
        return NULL;
    }
    return g_engine;
}

static const char *dnnl_status_name(dnnl_status_t s)
{
    switch (s) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_last_impl_reached: return "no implementation";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown error";
    }
}

v2t_status v2t_dnnl_check(dnnl_status_t s, const char *what)
{
    if (s == dnnl_success)
        return V2T_OK;
    if (s == dnnl_out_of_memory)
        return v2t_fail(V2T_ERR_NOMEM, "oneDNN ran out of memory while %s", what);
    return v2t_fail(V2T_ERR_BACKEND, "oneDNN failed while %s: %s (status %d)", what, dnnl_status_name(s), (int)s);
}
