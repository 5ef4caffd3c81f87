"""Make oneDNN's shared library loadable before the C core is imported.

The extension carries an `$ORIGIN`-relative run path to `<prefix>/lib`, which covers a normal
virtual environment. For other layouts (user site, `pip install --target`), the library is
located through the installed `onednn-cpu-gomp` distribution and loaded with RTLD_GLOBAL so
that the dynamic linker finds `libdnnl.so.3` already resident.
"""
from __future__ import annotations

import ctypes
import os
from importlib import metadata

_DISTS = ("onednn-cpu-gomp", "onednn")


def _find_libdnnl() -> str | None:
    for name in _DISTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if str(f).replace("\\", "/").endswith("libdnnl.so.3"):
                path = os.path.realpath(dist.locate_file(f))
                if os.path.exists(path):
                    return path
    return None


def preload_onednn() -> None:
    path = _find_libdnnl()
    if path is not None:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
