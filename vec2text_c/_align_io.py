"""Saving and loading aligners: a folder with `aligner.json` and `aligner.safetensors`.

The JSON names the format, its version, the aligner class and its constructor parameters;
the safetensors file holds the learned arrays (float32). The writer is a few lines of Python
(the format is a little-endian u64 header length, a JSON header padded to 8 bytes, then the raw
tensor bytes); files are read back through the C core's validated reader.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "vec2text_c.aligner"
FORMAT_VERSION = 1
CONFIG_FILE = "aligner.json"
WEIGHTS_FILE = "aligner.safetensors"


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write float32 tensors to `path` atomically (through a temporary file)."""
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def save(path: str | os.PathLike, kind: str, params: dict[str, Any], state: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> Path:
    """Write an aligner folder. `params` are constructor arguments, `state` fitted scalars."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / WEIGHTS_FILE, tensors, {"format": FORMAT_NAME, "class": kind})
    config = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "class": kind, "params": params,
              "state": state, "tensors": sorted(tensors)}
    tmp = folder / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / CONFIG_FILE)
    return folder


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated JSON of an aligner folder."""
    folder = Path(path)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder}: not an aligner folder (no {CONFIG_FILE})")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path}: malformed JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ValueError(f"{cfg_path}: expected format {FORMAT_NAME!r}, got {config.get('format')!r}"
                         if isinstance(config, dict) else f"{cfg_path}: expected a JSON object")
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
        raise ValueError(f"{cfg_path}: format_version {version!r} is not supported by this vec2text_c "
                         f"(reads versions 1..{FORMAT_VERSION})")
    for key in ("class", "params", "state", "tensors"):
        if key not in config:
            raise ValueError(f"{cfg_path}: missing key {key!r}")
    return config


def read_tensors(path: str | os.PathLike, names: list[str]) -> dict[str, np.ndarray]:
    """The named tensors of an aligner folder, as float32 arrays."""
    from . import _core

    st = _core.SafeTensors(str(Path(path) / WEIGHTS_FILE))
    return {name: st.get(name) for name in names}
