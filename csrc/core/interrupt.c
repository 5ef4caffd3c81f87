#include "interrupt.h"

static _Atomic(v2t_interrupt_hook) g_hook;
static _Thread_local const atomic_int *t_cancel;

void v2t_set_interrupt_hook(v2t_interrupt_hook hook) { atomic_store(&g_hook, hook); }

const atomic_int *v2t_swap_thread_cancel(const atomic_int *flag)
{
    const atomic_int *prev = t_cancel;
    t_cancel = flag;
    return prev;
}

v2t_status v2t_poll_interrupt(void)
{
    const atomic_int *c = t_cancel;
    if (c && atomic_load_explicit(c, memory_order_relaxed))
        return v2t_fail(V2T_ERR_CANCELLED, "cancelled: the call's CancelToken was cancelled");
    v2t_interrupt_hook hook = atomic_load(&g_hook);
    if (hook && hook())
        return v2t_fail(V2T_ERR_INTERRUPTED, "interrupted");
    return V2T_OK;
}
