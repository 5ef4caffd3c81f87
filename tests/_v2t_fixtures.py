"""Shared helpers of the vec2text parity and API tests.

The tiny reference models of tests/v2t_reference.py take about a minute to build, so they are
built once into a persistent directory (`$V2T_REF_CACHE`, default
`<tempdir>/vec2text_c_v2tref/<hash of v2t_reference.py>`)
and reused; the harness rebuilds whatever is missing. Reference strings of the real vec2text
0.0.13 are cached next to the models, keyed by the models' file stamps and the exact inputs,
so a rebuilt model or different embeddings recompute them.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

import v2t_reference as ref

N_TARGETS = 16
# one directory per version of the harness, so that a changed harness never reuses stale models
_HARNESS = hashlib.sha256(Path(ref.__file__).read_bytes()).hexdigest()[:12]
REF_ROOT = Path(os.environ.get("V2T_REF_CACHE", Path(tempfile.gettempdir()) / "vec2text_c_v2tref" / _HARNESS))


@lru_cache(maxsize=None)
def artifacts(kind: str):
    return ref.reference_artifacts(kind, REF_ROOT)


@lru_cache(maxsize=None)
def ours(kind: str):
    import vec2text_c
    from vec2text_c.embedders import load_embedder

    art = artifacts(kind)
    embedder = load_embedder(art.embedder_dir, recipe="gtr") if kind == "gtr" else load_embedder(art.embedder_dir)
    return vec2text_c.load_corrector(art.inversion_dir, art.corrector_dir, embedder=embedder)


@lru_cache(maxsize=None)
def sentences() -> tuple:
    return tuple(ref.read_sentences()[5000 : 5000 + 64])


@lru_cache(maxsize=None)
def targets(kind: str) -> np.ndarray:
    """The reference's own target embeddings of N_TARGETS real sentences ([N, 768])."""
    return cached_reference(kind, "embed", list(sentences()[:N_TARGETS]), lambda: ref.reference_embed(
        artifacts(kind).corrector, list(sentences()[:N_TARGETS])).tolist(), as_array=True)


def _stamp(art) -> str:
    h = hashlib.sha256()
    for d in (art.inversion_dir, art.corrector_dir, art.embedder_dir, art.inverter_base_dir, art.corrector_base_dir):
        for f in sorted(Path(d).rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_reference(kind: str, what: str, key_data, compute, as_array: bool = False):
    """compute() (a JSON-able result of the real vec2text), cached on disk under (what, inputs)."""
    art = artifacts(kind)
    h = hashlib.sha256(json.dumps([what, _stamp(art)]).encode())
    if isinstance(key_data, np.ndarray):
        h.update(np.ascontiguousarray(key_data, dtype=np.float32).tobytes())
    else:
        h.update(json.dumps(key_data).encode())
    path = Path(art.root) / "reference_outputs" / f"{kind}_{what}_{h.hexdigest()[:24]}.json"
    if path.is_file():
        value = json.loads(path.read_text(encoding="utf-8"))
    else:
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        os.replace(tmp, path)
    return np.asarray(value, dtype=np.float32) if as_array else value


def reference_strings(kind: str, embeddings: np.ndarray, num_steps, beam: int) -> list[str]:
    c = artifacts(kind).corrector
    return cached_reference(
        kind, f"invert_{num_steps}_{beam}", embeddings, lambda: ref.reference_invert(c, embeddings, num_steps, beam)
    )
