"""Writing safetensors files.

Reading is done by the C core (`vec2text_c._core.SafeTensors`), which validates the whole
file before any tensor is used; vec2text_c.weights finds or makes the one file a checkpoint's
weights are read from. Writing happens rarely (aligners, converted checkpoints) and is plain
Python.

Weights may be stored as int8 by rows (`Int8Rows`): the tensor `W` as I8 and `W.int8_scale`
(F32, one entry per row of the first dimension) beside it, W = q * scale[row]. The C core's
loaders read such a pair as the float weight; `merge_int8_rows` does the same for a state dict
read in Python (training that continues from an exported model).
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

_DTYPES = {
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(np.float64): "F64",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.int16): "I16",
    np.dtype(np.int8): "I8",
    np.dtype(np.uint8): "U8",
    np.dtype(np.bool_): "BOOL",
}


class BF16:
    """A float array to be stored as bfloat16 (rounded to nearest even) by `save_file`."""

    def __init__(self, array):
        a = np.ascontiguousarray(array, dtype=np.float32)
        bits = a.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        self.bits = np.where(np.isnan(a), 0x7FC0, rounded).astype("<u2")
        self.shape = a.shape


INT8_SCALE_SUFFIX = ".int8_scale"


class Int8Rows:
    """A float array (1-D or more) to be stored as int8 by rows by `save_file`: each row (first
    dimension) scaled by max|row| / 127 and rounded to nearest; an all-zero row gets scale 0."""

    def __init__(self, array):
        a = np.asarray(array, dtype=np.float32)
        if a.ndim < 1 or not np.isfinite(a).all():
            raise ValueError(f"Int8Rows: expected a finite array of 1 or more dimensions, got shape {a.shape}")
        rows = a.reshape(a.shape[0], -1) if a.shape[0] else a.reshape(0, 0)
        amax = np.abs(rows).max(axis=1) if rows.size else np.zeros(a.shape[0], np.float32)
        self.scale = (amax / 127.0).astype(np.float32)
        safe = np.where(self.scale > 0, self.scale, 1.0).astype(np.float32)
        self.q = np.clip(np.rint(rows / safe[:, None]), -127, 127).astype(np.int8).reshape(a.shape)

    def dequantized(self) -> np.ndarray:
        """The float32 values a reader gets back (q * scale[row])."""
        return self.q.astype(np.float32) * self.scale.reshape((-1,) + (1,) * (self.q.ndim - 1))


def merge_int8_rows(state: dict) -> dict:
    """A state dict (NumPy arrays or torch tensors) with each int8-by-rows pair (`W` I8 and
    `W.int8_scale`) replaced by the float32 `W`; other entries are kept as they are."""
    out = {}
    for name, t in state.items():
        if name.endswith(INT8_SCALE_SUFFIX):
            if name[: -len(INT8_SCALE_SUFFIX)] not in state:
                raise ValueError(f"row scale {name!r} has no I8 tensor {name[: -len(INT8_SCALE_SUFFIX)]!r} beside it")
            continue
        scale = state.get(name + INT8_SCALE_SUFFIX)
        if scale is None:
            out[name] = t
            continue
        shape = (-1,) + (1,) * (len(t.shape) - 1)
        if hasattr(t, "float"):  # torch
            out[name] = t.float() * scale.float().reshape(shape)
        else:
            out[name] = np.asarray(t, np.float32) * np.asarray(scale, np.float32).reshape(shape)
    return out


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit patterns -> float32."""
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def save_file(tensors: Mapping[str, np.ndarray], path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write `tensors` (name -> array) as a safetensors file, atomically."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    tensors = dict(tensors)
    for name in list(tensors):
        if isinstance(tensors[name], Int8Rows):
            t = tensors.pop(name)
            if name + INT8_SCALE_SUFFIX in tensors:
                raise ValueError(f"save_file: {name!r} is stored as int8 rows, and {name + INT8_SCALE_SUFFIX!r} is taken")
            tensors[name], tensors[name + INT8_SCALE_SUFFIX] = t.q, t.scale
    for name in sorted(tensors):
        if isinstance(tensors[name], BF16):
            t = tensors[name]
            data = t.bits.tobytes()
            header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            blobs.append(data)
            continue
        arr = np.asarray(tensors[name], order="C")  # (ascontiguousarray would make a scalar 1-D)
        if arr.dtype not in _DTYPES:
            raise TypeError(f"save_file: tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store here")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
