#include "interrupt.h"

#include <stdatomic.h>

static _Atomic(v2t_interrupt_hook) g_hook;

void v2t_set_interrupt_hook(v2t_interrupt_hook hook) { atomic_store(&g_hook, hook); }

v2t_status v2t_poll_interrupt(void)
{
    v2t_interrupt_hook hook = atomic_load(&g_hook);
    if (hook && hook())
        return v2t_fail(V2T_ERR_INTERRUPTED, "interrupted");
    return V2T_OK;
}
