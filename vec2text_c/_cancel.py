"""Stopping long calls from another thread, and at interpreter exit.

Ctrl-C stops a call that runs on the main thread (the core polls for signals between steps).
A call running in a worker thread never sees the signal, so every long call also runs under a
`CancelToken`: pass your own as `cancel=` and call `token.cancel()` from any thread, and the call
raises `vec2text_c.Cancelled` at its next check (between decoding steps, correction rounds or
training steps). Calls made without a token get one of their own, and all of those are cancelled
when the interpreter begins to exit: after a KeyboardInterrupt in the main thread, the process
no longer waits for a worker thread's inversion to finish.
"""
from __future__ import annotations

import contextlib
import threading

from . import _core

__all__ = ["CancelToken", "Cancelled", "cancel_scope", "cancel_all"]

CancelToken = _core.CancelToken
Cancelled = _core.Cancelled

_lock = threading.Lock()
_running: dict[int, CancelToken] = {}  # id(token) -> token, for the calls in progress
_tls = threading.local()


@contextlib.contextmanager
def cancel_scope(cancel: CancelToken | None = None):
    """Run the body under `cancel` (or, when None, the token of an enclosing scope on this
    thread, else a new one); yields the token."""
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise TypeError(f"cancel: expected a vec2text_c.CancelToken or None, got {type(cancel).__name__}")
    current = getattr(_tls, "token", None)
    token = cancel if cancel is not None else current
    if token is None:
        token = CancelToken()
    if token is current:
        yield token
        return
    key = id(token)
    with _lock:
        _running[key] = token
    prev = _core._swap_cancel(token)
    _tls.token = token
    try:
        if token.cancelled:
            raise Cancelled("cancelled: the call's CancelToken was cancelled before it started")
        yield token
    finally:
        _core._swap_cancel(prev)
        _tls.token = current
        with _lock:
            if _running.get(key) is token:
                del _running[key]


def cancel_all() -> int:
    """Cancel every call in progress in this process; returns how many tokens were cancelled."""
    with _lock:
        tokens = list(_running.values())
    for t in tokens:
        t.cancel()
    return len(tokens)


# threading's exit hooks run before the interpreter joins the non-daemon threads, so a worker
# that is inverting stops instead of holding the process open
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(cancel_all)
