/* Cooperative interruption of long calls: Ctrl-C, and cancellation from another thread.
 *
 * Decode loops, correction rounds and training loops call v2t_poll_interrupt() between steps,
 * always on the thread that made the call. Two things stop them:
 *  - the hook the binding layer installs, which briefly takes the GIL and runs
 *    PyErr_CheckSignals() (signals reach only the main thread) -> V2T_ERR_INTERRUPTED;
 *  - the calling thread's cancel flag, an atomic int that any thread may raise (no GIL, no
 *    lock) -> V2T_ERR_CANCELLED.
 * Either way the core unwinds freeing everything.
 */
#ifndef V2T_CORE_INTERRUPT_H
#define V2T_CORE_INTERRUPT_H

#include <stdatomic.h>

#include "status.h"

/* hook returns non-zero when the current call should stop. */
typedef int (*v2t_interrupt_hook)(void);

void v2t_set_interrupt_hook(v2t_interrupt_hook hook);

/* Set the calling thread's cancel flag (NULL: none); returns the previous one. The flag must
 * outlive its use: the caller clears it before freeing it. */
const atomic_int *v2t_swap_thread_cancel(const atomic_int *flag);

/* V2T_OK; V2T_ERR_CANCELLED when this thread's cancel flag is raised; V2T_ERR_INTERRUPTED when
 * the hook asks to stop. */
v2t_status v2t_poll_interrupt(void);

#endif
