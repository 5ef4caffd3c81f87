/* Cooperative interruption of long calls (Ctrl-C).
 *
 * Decode loops and correction rounds call v2t_poll_interrupt() between steps. The binding
 * layer installs a hook that briefly takes the GIL and runs PyErr_CheckSignals(); when it
 * reports a pending exception the core unwinds with V2T_ERR_INTERRUPTED, freeing everything.
 */
#ifndef V2T_CORE_INTERRUPT_H
#define V2T_CORE_INTERRUPT_H

#include "status.h"

/* hook returns non-zero when the current call should stop. */
typedef int (*v2t_interrupt_hook)(void);

void v2t_set_interrupt_hook(v2t_interrupt_hook hook);

/* V2T_OK, or V2T_ERR_INTERRUPTED (with a message) when the hook asks to stop. */
v2t_status v2t_poll_interrupt(void);

#endif
