/* Status codes and the per-thread error message of the C core.
 *
 * Every core function returns a v2t_status. On failure it leaves a human-readable message
 * (naming the argument, file or tensor, what was expected and what was given) in a
 * thread-local buffer that the binding layer turns into a Python exception.
 */
#ifndef V2T_CORE_STATUS_H
#define V2T_CORE_STATUS_H

typedef enum v2t_status {
    V2T_OK = 0,
    V2T_ERR_NOMEM,       /* allocation failed                         -> MemoryError */
    V2T_ERR_IO,          /* file missing or unreadable                -> FileNotFoundError/OSError */
    V2T_ERR_FORMAT,      /* malformed file contents                   -> ValueError */
    V2T_ERR_VALUE,       /* bad argument value or shape               -> ValueError */
    V2T_ERR_TYPE,        /* bad argument type or dtype                -> TypeError */
    V2T_ERR_MISSING,     /* a tensor the config needs is absent       -> KeyError-like ValueError */
    V2T_ERR_UNSUPPORTED, /* valid request we do not implement         -> NotImplementedError */
    V2T_ERR_BACKEND,     /* oneDNN reported an error                  -> RuntimeError */
    V2T_ERR_INTERRUPTED, /* a signal arrived during a long call       -> KeyboardInterrupt */
    V2T_ERR_CANCELLED    /* the call's cancel flag was raised         -> vec2text_c.Cancelled */
} v2t_status;

/* Record a printf-style message for the current thread and return `code`. */
v2t_status v2t_fail(v2t_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" if none). */
const char *v2t_last_error(void);

/* Propagate a failing status from an expression. */
#define V2T_TRY(expr)                          \
    do {                                       \
        v2t_status v2t_try_st_ = (expr);       \
        if (v2t_try_st_ != V2T_OK)             \
            return v2t_try_st_;                \
    } while (0)

/* Jump to a cleanup label on failure, keeping the status in `st`. */
#define V2T_CHECK(st, expr, label)             \
    do {                                       \
        (st) = (expr);                         \
        if ((st) != V2T_OK)                    \
            goto label;                        \
    } while (0)

#endif
