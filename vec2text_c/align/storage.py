"""Saving and loading aligners: a folder with `aligner.json` and `aligner.safetensors`.

The JSON names the format, its version, the aligner class and its constructor parameters;
the safetensors file holds the learned arrays (float32), written by `_safetensors_io.save_file`
and read back through the C core's validated reader.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._safetensors_io import save_file

FORMAT_NAME = "vec2text_c.aligner"
FORMAT_VERSION = 1
CONFIG_FILE = "aligner.json"
WEIGHTS_FILE = "aligner.safetensors"


def save(path: str | os.PathLike, kind: str, params: dict[str, Any], state: dict[str, Any],
         tensors: dict[str, np.ndarray]) -> Path:
    """Write an aligner folder. `params` are constructor arguments, `state` fitted scalars."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in tensors.items()}
    save_file(arrays, folder / WEIGHTS_FILE, {"format": FORMAT_NAME, "class": kind})
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
    from .. import _core

    st = _core.SafeTensors(str(Path(path) / WEIGHTS_FILE))
    return {name: st.get(name) for name in names}
