"""Reading weight files: the one safetensors file the C core reads, from any layout a
checkpoint folder comes in.

    model.safetensors                                   read where it lies
    model-0000k-of-0000n.safetensors + model.safetensors.index.json
    pytorch_model.bin
    pytorch_model-0000k-of-0000n.bin + pytorch_model.bin.index.json

Shards are merged, and PyTorch pickles converted (with `torch.load(weights_only=True)`, only
when torch is installed), once, into vec2text_c's own cache ($VEC2TEXT_C_CACHE, else
$XDG_CACHE_HOME/vec2text_c or ~/.cache/vec2text_c), never beside the source files (a Hugging
Face cache may be read-only and is not ours to grow). A cached file is named by a hash of the
sources' paths, sizes and modification times, written to a temporary name and renamed when
complete, so an interrupted conversion is never mistaken for a finished one. Tensors that a
model does not use (a checkpoint that also stores its embedder) are kept and ignored by the
loaders, which name any tensor they need and do not find.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Mapping

__all__ = ["weights_file", "cache_dir", "WEIGHT_PATTERNS"]

# what a checkpoint's weights may be called (hub downloads fetch one layout of these)
WEIGHT_PATTERNS = {
    "safetensors": ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"),
    "bin": ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"),
}


def cache_dir() -> Path:
    d = os.environ.get("VEC2TEXT_C_CACHE")
    if d:
        return Path(d).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vec2text_c"


def _key(files: list[Path], kind: str) -> str:
    h = hashlib.sha256(kind.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _read_index(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable index file ({e})") from None
    wm = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wm, dict) or not wm or not all(isinstance(k, str) and isinstance(v, str) for k, v in wm.items()):
        raise ValueError(f"{path}: expected a JSON object with a non-empty \"weight_map\" of tensor name -> shard file")
    for shard in set(wm.values()):
        if "/" in shard or "\\" in shard or shard in ("", ".", ".."):
            raise ValueError(f"{path}: shard name {shard!r} is not a file name in the same folder")
    return wm


def _shards(index: Path) -> tuple[dict[str, str], list[Path]]:
    wm = _read_index(index)
    files = []
    for shard in sorted(set(wm.values())):
        f = index.parent / shard
        if not f.is_file():
            raise FileNotFoundError(f"{index}: names the shard {shard}, which is not in {index.parent}")
        files.append(f)
    return wm, files


def _st_header(path: Path) -> tuple[dict, int]:
    """(header without __metadata__, offset of the data section) of a safetensors file."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        n = struct.unpack("<Q", head)[0]
        size = path.stat().st_size
        if n > min(size - 8, 100 << 20):
            raise ValueError(f"{path}: not a safetensors file (header length {n} for a file of {size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + n


def _check_agrees(index: Path, wm: Mapping[str, str], found: Mapping[str, str]) -> None:
    """The tensors each shard holds must be the ones the index gives it."""
    for name, shard in wm.items():
        if name not in found:
            raise ValueError(f"{index}: names tensor {name} in {shard}, which does not hold it")
        if found[name] != shard:
            raise ValueError(f"{index}: names tensor {name} in {shard}, but it is in {found[name]}")
    extra = sorted(set(found) - set(wm))
    if extra:
        raise ValueError(f"{index}: the shards hold tensors the index does not name, e.g. {extra[0]} in {found[extra[0]]}")


def _merge_safetensors(index: Path, out: Path) -> None:
    wm, files = _shards(index)
    headers, found = {}, {}
    for f in files:
        h, start = _st_header(f)
        headers[f] = (h, start)
        for name in h:
            if name in found:
                raise ValueError(f"{index}: tensor {name} is in both {found[name]} and {f.name}")
            found[name] = f.name
    _check_agrees(index, wm, found)
    entries, offset = {}, 0
    for f in files:
        h, _ = headers[f]
        for name in sorted(h):
            b, e = h[name]["data_offsets"]
            entries[name] = (f, b, e)
    header, order = {"__metadata__": {"format": "pt", "merged_from": index.name}}, []
    for name in sorted(entries):
        f, b, e = entries[name]
        src = headers[f][0][name]
        header[name] = {"dtype": src["dtype"], "shape": src["shape"], "data_offsets": [offset, offset + (e - b)]}
        order.append((name, f, b, e))
        offset += e - b
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as w:
            w.write(struct.pack("<Q", len(text)))
            w.write(text)
            for name, f, b, e in order:
                with open(f, "rb") as r:
                    r.seek(headers[f][1] + b)
                    data = r.read(e - b)
                if len(data) != e - b:
                    raise ValueError(f"{f}: tensor {name} runs past the end of the file")
                w.write(data)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def _torch_or_error(what: Path, repo: str | None):
    try:
        import torch
    except ImportError:
        who = f" ({repo})" if repo else ""
        raise ImportError(
            f"{what}{who} holds PyTorch pickle weights (.bin), which only torch can read: install it "
            "(pip install torch, or the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu) "
            "and load again; vec2text_c converts them once into its cache and needs torch no more") from None
    return torch


def _convert_bins(files: list[Path], out: Path, index: Path | None, repo: str | None) -> None:
    from ._safetensors_io import save_file

    torch = _torch_or_error(files[0].parent / files[0].name, repo)
    arrays, found = {}, {}
    for f in files:
        try:
            state = torch.load(str(f), map_location="cpu", weights_only=True)
        except Exception as e:  # unpickling errors come in many types
            raise ValueError(f"{f}: cannot read this PyTorch checkpoint: {e}") from e
        if not isinstance(state, Mapping):
            raise ValueError(f"{f}: expected a state dict (name -> tensor), got {type(state).__name__}")
        for name, t in state.items():
            if not isinstance(t, torch.Tensor):
                continue
            if name in found:
                raise ValueError(f"{f}: tensor {name} is also in {found[name]}")
            found[name] = f.name
            t = t.detach().cpu()
            if t.dtype == torch.bfloat16:
                t = t.float()
            arrays[name] = t.contiguous().numpy().copy()
    if index is not None:
        _check_agrees(index, _read_index(index), found)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        save_file(arrays, tmp, metadata={"format": "pt", "converted_from": (index or files[0]).name})
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def weights_file(model_dir: str | os.PathLike, *, repo: str | None = None) -> Path:
    """The single safetensors file holding a checkpoint folder's weights (see the module
    docstring for the layouts; safetensors preferred where a folder has both). repo: the
    repository id the folder came from, for messages."""
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: model directory not found")
    if (d / "model.safetensors").is_file():
        return d / "model.safetensors"
    st_index, bin_index, binf = d / "model.safetensors.index.json", d / "pytorch_model.bin.index.json", d / "pytorch_model.bin"
    if st_index.is_file():
        _, files = _shards(st_index)
        kind, sources, make = "st-shards", [st_index] + files, lambda out: _merge_safetensors(st_index, out)
    elif bin_index.is_file():
        _, files = _shards(bin_index)
        kind, sources, make = "bin-shards", [bin_index] + files, lambda out: _convert_bins(files, out, bin_index, repo)
    elif binf.is_file():
        kind, sources, make = "bin", [binf], lambda out: _convert_bins([binf], out, None, repo)
    else:
        raise FileNotFoundError(
            f"{d}: no weights (model.safetensors, model.safetensors.index.json + shards, pytorch_model.bin or "
            "pytorch_model.bin.index.json + shards)")
    out_dir = cache_dir() / "weights"
    out = out_dir / f"{_key(sources, kind)}.safetensors"
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    make(out)
    return out
