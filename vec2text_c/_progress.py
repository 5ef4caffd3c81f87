"""The package's one rule for progress bars.

Every call that can take long (invert_embeddings, invert_strings, the aligners' fit) takes
`progress=None` by default, which shows a tqdm bar when a person is watching: standard error
is a terminal, or the code runs in a Jupyter kernel. Scripts whose output goes to a file, CI
and tests get none. True or False force it either way.
"""
from __future__ import annotations

import sys


def _interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    err = sys.stderr
    try:
        return bool(err is not None and err.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def show_progress(progress, name: str = "progress") -> bool:
    """Whether to show a bar for `progress` (None: when interactive, see the module)."""
    if progress is None:
        return _interactive()
    if progress is True or progress is False:
        return progress
    if type(progress).__name__ == "bool_":  # numpy.bool_
        return bool(progress)
    raise TypeError(f"{name}: expected True, False or None (a bar when a person is watching), got {progress!r}")
