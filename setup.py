"""Build the C core `vec2text_c._core` against the NumPy C API and oneDNN from PyPI wheels.

oneDNN comes from the `onednn-cpu-gomp` (runtime library) and `onednn-devel-cpu-gomp`
(headers) wheels, which install into the environment prefix (`<prefix>/lib/libdnnl.so.3`,
`<prefix>/include/oneapi/dnnl/`). pip's isolated build uses a temporary prefix, so the files
are located through importlib.metadata rather than fixed paths. The extension gets an
`$ORIGIN`-relative run path to `<prefix>/lib`, and `vec2text_c/_loader.py` preloads the
library by its installed location as a fallback for other layouts (user installs, --target).
"""
import os
import sys
from glob import glob
from importlib import metadata
from pathlib import Path

import numpy
from setuptools import Extension, setup

DEV_DISTS = ("onednn-devel-cpu-gomp", "onednn-devel")
LIB_DISTS = ("onednn-cpu-gomp", "onednn")


def _find_in_dists(names, suffix):
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if ("/" + str(f).replace("\\", "/")).endswith(suffix):
                return Path(dist.locate_file(f)).resolve()
    return None


def find_onednn():
    root = os.environ.get("V2T_ONEDNN_ROOT")  # optional override, never required
    if root:
        return Path(root) / "include", Path(root) / "lib"
    header = _find_in_dists(DEV_DISTS, "oneapi/dnnl/dnnl.h")
    lib = _find_in_dists(LIB_DISTS, "/libdnnl.so.3")
    if header is None or lib is None:
        sys.exit(
            "vec2text_c build: oneDNN not found. The build needs the PyPI wheels "
            "onednn-cpu-gomp and onednn-devel-cpu-gomp (pyproject.toml lists them as build "
            "requirements; with --no-build-isolation install them first)."
        )
    return header.parents[2], lib.parent


inc_dir, lib_dir = find_onednn()
sources = sorted(glob("csrc/**/*.c", recursive=True))

# V2T_SANITIZE=1: an AddressSanitizer + UndefinedBehaviorSanitizer build of the extension for
# .ci/run (the interpreter then runs with libasan preloaded); never for a release.
sanitize = os.environ.get("V2T_SANITIZE", "") not in ("", "0")
san_flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]

ext = Extension(
    "vec2text_c._core",
    sources=sources,
    include_dirs=[numpy.get_include(), str(inc_dir), "csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"), ("_GNU_SOURCE", None)],
    extra_compile_args=[
        "-std=c11",
        *(["-O1", "-g", *san_flags] if sanitize else ["-O3"]),
        "-march=x86-64-v3",  # AVX2 + FMA baseline; oneDNN dispatches AVX-512/AMX itself at run time
        "-fno-math-errno",
        "-fno-trapping-math",  # floating-point selects may be if-converted, so such loops vectorise
        "-fopenmp",  # the few loops of our own (attention heads) share oneDNN's GNU OpenMP runtime
        "-fvisibility=hidden",
        "-Wall",
        "-Wno-unused-function",
    ],
    extra_link_args=[
        f"-L{lib_dir}",
        "-l:libdnnl.so.3",
        # site-packages/vec2text_c/_core.so -> <prefix>/lib
        "-Wl,-rpath,$ORIGIN/../../..",
        "-lm",
        "-lpthread",
        "-fopenmp",
        *(san_flags if sanitize else []),
    ],
)

setup(ext_modules=[ext])
