/* The process-wide oneDNN engine and the error translation shared by the ops. */
#ifndef V2T_OPS_DNNL_CTX_H
#define V2T_OPS_DNNL_CTX_H

#include <oneapi/dnnl/dnnl.h>

#include "../core/status.h"

/* The CPU engine, created once (thread-safe). NULL with an error set on failure. */
dnnl_engine_t v2t_engine(void);

/* Turn a oneDNN status into a v2t_status with `what` in the message. */
v2t_status v2t_dnnl_check(dnnl_status_t s, const char *what);

#define V2T_DNNL(call, what) V2T_TRY(v2t_dnnl_check((call), (what)))

#endif
