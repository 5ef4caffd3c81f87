"""Writing safetensors files and converting `pytorch_model.bin` checkpoints.

Reading is done by the C core (`vec2text_c._core.SafeTensors`), which validates the whole
file before any tensor is used. Writing happens rarely (aligners, converted checkpoints) and
is plain Python.
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
    for name in sorted(tensors):
        if isinstance(tensors[name], BF16):
            t = tensors[name]
            data = t.bits.tobytes()
            header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            blobs.append(data)
            continue
        arr = np.ascontiguousarray(tensors[name])
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


def convert_pytorch_bin(bin_path: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """Convert a `pytorch_model.bin` checkpoint to `model.safetensors` beside it (once).

    Needs torch; tensors that share storage (tied embeddings) are written once each under
    their own names. bfloat16 tensors are stored as float32.
    """
    bin_path = Path(bin_path)
    out = Path(out_path) if out_path is not None else bin_path.with_name("model.safetensors")
    if out.exists() and out.stat().st_mtime >= bin_path.stat().st_mtime:
        return out
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{bin_path} is a PyTorch pickle checkpoint; converting it to safetensors needs torch. "
            f"Install torch (pip install torch) and load again, or convert it yourself: "
            f"python -c \"import torch; from safetensors.torch import save_file; "
            f"save_file({{k: v.contiguous() for k, v in torch.load('{bin_path}', map_location='cpu', weights_only=True).items()}}, "
            f"'{out}')\""
        ) from None
    try:
        state = torch.load(str(bin_path), map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise ValueError(f"{bin_path}: cannot read this PyTorch checkpoint to convert it to safetensors: {e}") from e
    if not isinstance(state, Mapping):
        raise ValueError(f"{bin_path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    arrays = {}
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        arrays[name] = t.contiguous().numpy().copy()
    save_file(arrays, out, metadata={"format": "pt", "converted_from": bin_path.name})
    return out


def find_weights(model_dir: str | os.PathLike) -> Path:
    """The safetensors file of a transformers-style directory, converting a .bin if needed."""
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: model directory not found")
    st = d / "model.safetensors"
    if st.is_file():
        return st
    if (d / "model.safetensors.index.json").is_file():
        raise NotImplementedError(f"{d}: sharded safetensors checkpoints are not supported yet; merge the shards into model.safetensors")
    binf = d / "pytorch_model.bin"
    if binf.is_file():
        return convert_pytorch_bin(binf)
    raise FileNotFoundError(f"{d}: no model.safetensors or pytorch_model.bin in this directory")
